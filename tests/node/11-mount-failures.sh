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
node_scenario_begin "11 array unreachable, volume missing, failure after connect: the event says why, nothing left behind"

ns=node-11
node_make_namespace "$ns"
kube_create_pvc "$ns" down pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_create_pvc "$ns" missing pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
kube_create_pvc "$ns" half pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
for claim in down missing half; do kube_wait_bound "$ns" "$claim"; done
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; sim_set_faults_on fa-a "{}" 2>/dev/null || true; node_scenario_on_exit "$rc"' EXIT

# leftovers_of CLAIM ARRAY: prints what of the claim's volume is on the node or connected to it:
# mounts, the volume record, array connections, a loop device of its backing file.
leftovers_of() {
    local pv volume serial
    pv="$(kube_pv_of "$ns" "$1")"
    volume="$(kube_array_name_of_pv "$pv")"
    (($(node_mount_count "$pv") == 0)) || echo "$(node_mount_count "$pv") mount(s) of $pv"
    [[ ! -e "$(node_record_file "$pv")" ]] || echo "the volume record of $pv"
    [[ -z "$(sim_connections_of "$2" "$volume")" ]] || echo "$volume connected to $(sim_connections_of "$2" "$volume") on $2"
    serial="$(sim_admin "$2" state | jq -r --arg v "$volume" '.volumes[$v].serial')"
    ! grep -q "/$serial.img\$" <<<"$(losetup -nO BACK-FILE)" || echo "a loop device of $volume"
}
# nothing_of CLAIM ARRAY: the scenario fails at once when something of the claim is left.
nothing_of() {
    local left
    left="$(leftovers_of "$@")"
    [[ -z "$left" ]] || check_fail "left behind: $(tr '\n' ';' <<<"$left")"
}

log_step "a. fa-a drops every API call; pod on claim 'down'"
sim_set_faults_on fa-a '{"drop_rate": 1.0}'
node_run_pod "$ns" a "$NODE_WRITE_SCRIPT" down
message="$(node_failed_mount "$ns" a "$(kube_pv_of "$ns" down)")"
down_endpoint="$(sim_field fa-a endpoint)"
[[ "$message" == *"$down_endpoint"* ]] || check_fail "the FailedMount event does not name the unreachable array $down_endpoint: $message"
nothing_of down fa-a
sim_set_faults_on fa-a '{}'
log_step "event: ${message:0:160}…; nothing left behind; fa-a answers again"
node_wait_pod_log "$ns" a ready 180
log_step "pod a started once fa-a answered"

log_step "b. the volume of claim 'missing' is destroyed on fa-b; pod on it"
missing_volume="$(kube_array_name_of_pv "$(kube_pv_of "$ns" missing)")"
sim_fa_rest fa-b DELETE "volume/$missing_volume" >/dev/null || check_fail "could not destroy $missing_volume"
node_run_pod "$ns" b "$NODE_WRITE_SCRIPT" missing
message="$(node_failed_mount "$ns" b "$missing_volume")"
nothing_of missing fa-b
sim_fa_rest fa-b PUT "volume/$missing_volume" '{"action": "recover"}' >/dev/null || check_fail "could not recover $missing_volume"
log_step "event: ${message:0:160}…; nothing left behind; volume recovered"
node_wait_pod_log "$ns" b ready 180
log_step "pod b started once the volume was back"

log_step "c. fa-a fails its port listing (after the volume is connected); pod on claim 'half'"
sim_set_faults_on fa-a '{"rules": [{"method": "GET", "path": "/api/*/port", "count": 1000, "action": {"kind": "status", "status": 500}}]}'
node_run_pod "$ns" c "$NODE_WRITE_SCRIPT" half
message="$(node_failed_mount "$ns" c "$(kube_pv_of "$ns" half)")"
log_step "event: ${message:0:160}…"
uid_c="$(node_pod_uid "$ns" c)"
node_delete_pod "$ns" c "$NODE_LONG_TIMEOUT"
# The fault stays until kubelet's last mount of pod c has ended: a retry in flight would
# otherwise succeed, and the check below would see a mount kubelet is about to unmount.
node_wait_flex_calls_of_pod_end "$uid_c"
sim_set_faults_on fa-a '{}'
# A driver may roll back at once or collect such leftovers on its next call: give it one.
node_run_pod "$ns" d "$NODE_READ_SCRIPT" down
node_wait_pod_log "$ns" d ready
left="$(leftovers_of half fa-a)"
if [[ -n "$left" ]]; then
    node_fail_later "pod c's failed mounts left behind after it was deleted (and another mount since): $(tr '\n' ';' <<<"$left")"
else
    log_step "pod c deleted after failed mounts (and another mount since): nothing of its volume left"
fi

node_delete_pod "$ns" d
node_delete_pod "$ns" a
node_delete_pod "$ns" b
node_claims_released "$ns" down missing half
node_scenario_end "$ns"
