#!/usr/bin/env bash
# Mounts that fail, as kubelet sees them:
#   a. the FlashArray does not answer: the pod's FailedMount event carries the driver's message,
#      nothing is left on the node or the array, and the pod starts once the array answers again;
#   b. the volume is missing on the array (destroyed behind Kubernetes' back): the event names
#      it, and the pod starts once the volume is recovered;
#   c. a step after the volume was connected fails (the array's port list): kubelet removes the
#      pod dir and never calls unmount for it, so the driver must not leave the connection and
#      its volume record behind once the pod is deleted (at the latest after its next call).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "11 array unreachable, volume missing, failure after connect: the event says why, nothing left behind"

ns=node-11
make_namespace "$ns"
create_pvc "$ns" down pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
create_pvc "$ns" missing pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
create_pvc "$ns" half pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
for claim in down missing half; do wait_pvc_bound "$ns" "$claim"; done
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; sim_faults fa-a "{}" 2>/dev/null || true; scenario_on_exit "$rc"' EXIT

# leftovers_of CLAIM ARRAY: prints what of the claim's volume is on the node or connected to it:
# mounts, the volume record, array connections, a loop device of its backing file.
leftovers_of() {
    local pv volume serial
    pv="$(pv_of "$ns" "$1")"
    volume="$(array_volume_of "$pv")"
    (($(mount_count "$pv") == 0)) || echo "$(mount_count "$pv") mount(s) of $pv"
    [[ ! -e "$(record_file "$pv")" ]] || echo "the volume record of $pv"
    [[ -z "$(connections_of "$2" "$volume")" ]] || echo "$volume connected to $(connections_of "$2" "$volume") on $2"
    serial="$(sim_admin "$2" state | jq -r --arg v "$volume" '.volumes[$v].serial')"
    ! grep -q "/$serial.img\$" <<<"$(losetup -nO BACK-FILE)" || echo "a loop device of $volume"
}
# nothing_of CLAIM ARRAY: the scenario fails at once when something of the claim is left.
nothing_of() {
    local left
    left="$(leftovers_of "$@")"
    [[ -z "$left" ]] || fail "left behind: $(tr '\n' ';' <<<"$left")"
}

step "a. fa-a drops every API call; pod on claim 'down'"
sim_faults fa-a '{"drop_rate": 1.0}'
run_pod "$ns" a "$WRITE_SCRIPT" down
wait_for "$NODE_TIMEOUT" "a FailedMount event on pod a" pod_has_event "$ns" a FailedMount
message="$(pod_events "$ns" a FailedMount | tail -n 1)"
down_endpoint="$(sim_field fa-a endpoint)"
[[ "$message" == *"$down_endpoint"* ]] || fail "the FailedMount event does not name the unreachable array $down_endpoint: $message"
nothing_of down fa-a
sim_faults fa-a '{}'
step "event: ${message:0:160}…; nothing left behind; fa-a answers again"
wait_pod_log "$ns" a ready 180
step "pod a started once fa-a answered"

step "b. the volume of claim 'missing' is destroyed on fa-b; pod on it"
missing_volume="$(array_volume_of "$(pv_of "$ns" missing)")"
fa_rest fa-b DELETE "volume/$missing_volume" || fail "could not destroy $missing_volume"
run_pod "$ns" b "$WRITE_SCRIPT" missing
wait_for "$NODE_TIMEOUT" "a FailedMount event on pod b" pod_has_event "$ns" b FailedMount "$missing_volume"
message="$(pod_events "$ns" b FailedMount | grep -F "$missing_volume" | tail -n 1)"
nothing_of missing fa-b
fa_rest fa-b PUT "volume/$missing_volume" '{"action": "recover"}' || fail "could not recover $missing_volume"
step "event: ${message:0:160}…; nothing left behind; volume recovered"
wait_pod_log "$ns" b ready 180
step "pod b started once the volume was back"

step "c. fa-a fails its port listing (after the volume is connected); pod on claim 'half'"
sim_faults fa-a '{"rules": [{"method": "GET", "path": "/api/*/port", "count": 1000, "action": {"kind": "status", "status": 500}}]}'
run_pod "$ns" c "$WRITE_SCRIPT" half
wait_for "$NODE_TIMEOUT" "a FailedMount event on pod c" pod_has_event "$ns" c FailedMount
message="$(pod_events "$ns" c FailedMount | tail -n 1)"
step "event: ${message:0:160}…"
delete_pod "$ns" c "$NODE_LONG_TIMEOUT"
sim_faults fa-a '{}'
# A driver may roll back at once or collect such leftovers on its next call: give it one.
run_pod "$ns" d "$READ_SCRIPT" down
wait_pod_log "$ns" d ready
left="$(leftovers_of half fa-a)"
if [[ -n "$left" ]]; then
    fail_later "pod c's failed mounts left behind after it was deleted (and another mount since): $(tr '\n' ';' <<<"$left")"
else
    step "pod c deleted after failed mounts (and another mount since): nothing of its volume left"
fi

delete_pod "$ns" d
delete_pod "$ns" a
delete_pod "$ns" b
claims_released "$ns" down missing half
scenario_end "$ns"
