#!/usr/bin/env bash
# Hybrid (issue 18). Site A: a class with protectionGroup puts every new volume into the
# administrator's protection group, only on the FlashArray where that group is live (fa-b here,
# although fa-a would win on free space otherwise), and the PV records the group. Data written
# in a pod is in the group's next snapshot, and a replicated copy of that snapshot delivered to
# the "cloud" array (fa-a, through the simulator's replication admin call; a newer one still in
# transfer) is listed there with its transfer state under <source array>:<group>.<n>.<volume>.
# Site B: a claim naming fa-b, the group and the volume mounts the data as of the completed
# snapshot on fa-a, grown to the claim, with an event naming the snapshot and its age; a volume
# not in the group, a smaller claim and an unreachable cloud array fail clearly. A class naming a
# group no array has, and the group once destroyed, fail their claims too; nothing is left on
# any array.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "protectionGroup classes join the administrator's group; replicated snapshots land on the cloud array"

ns=e2e-hybrid
group=e2e-site-a
kube_make_namespace "$ns"

# write_data PV: writes 4 MiB in a fresh pod; prints the sha256.
write_data() { flex_payload_in_new_pod write "$1" "$ns"; }

# read_data PV: the sha256 of its payload, read in a fresh pod.
read_data() { flex_payload_in_new_pod read "$1" "$ns"; }

# no_volume_for NS CLAIM: no array holds the claim's volume, live or destroyed, and it has no PV.
no_volume_for() {
    local uid array
    uid="$(kubectl -n "$1" get pvc "$2" -o 'jsonpath={.metadata.uid}')"
    for array in fa-a fa-b; do
        check_eq "state of $PROV_NAME_PREFIX-pvc-$uid on $array" \
            "$(sim_volume_state "$array" "$PROV_NAME_PREFIX-pvc-$uid")" absent
    done
    ! kube_pv_exists "pvc-$uid" || check_fail "claim $1/$2 has a PV"
}

log_step "the array administrator makes protection group $group on fa-b only"
sim_fa_rest fa-b POST "pgroup/$group" '{}' >/dev/null || check_fail "cannot create $group on fa-b"
kube_create_class e2e-replicated "$(jq -n --arg g "$group" '{backend: "block", protectionGroup: $g}')"
kube_create_class e2e-no-such-group '{"backend": "block", "protectionGroup": "e2e-nowhere"}'

log_step "a claim of class e2e-replicated lands on fa-b and joins $group"
kube_create_pvc "$ns" data e2e-replicated 1Gi
kube_wait_bound "$ns" data
pv="$(kube_pv_of "$ns" data)"
volume="$(kube_array_name_of_pv "$pv")"
check_eq "array holding $volume" "$(sim_array_holding "$volume")" fa-b
check_eq "members of $group on fa-b" \
    "$(sim_fa_rest fa-b GET "pgroup/$group" | jq -c .volumes)" "[\"$volume\"]"
check_eq "PV option protectionGroup" \
    "$(kubectl get pv "$pv" -o 'jsonpath={.spec.flexVolume.options.protectionGroup}')" "$group"
written="$(write_data "$pv")"
log_step "$pv ($volume on fa-b) holds data ${written:0:12}…"

log_step "replication: $group's snapshot on fa-b, delivered to the cloud array fa-a (and a newer one still in transfer)"
sim_fa_rest fa-b POST pgroup "$(jq -n --arg g "$group" '{source: [$g], snap: true, suffix: "r1"}')" >/dev/null ||
    check_fail "cannot snapshot $group on fa-b"
snap_file="$(sim_admin fa-b state | jq -r --arg s "$group.r1.$volume" '.volumes[$s].path')"
for progress in 1.0 0.4; do
    sim_admin fa-a replicated-snapshots -X POST -H 'Content-Type: application/json' -d "$(jq -n \
        --arg g "$group" --arg v "$volume" --arg f "$snap_file" --argjson p "$progress" \
        '{source_array: "fa-b", pgroup: $g, age_seconds: 300, progress: $p,
          volumes: [{name: $v, size: 1073741824, data: $f}]}')" >/dev/null ||
        check_fail "cannot deliver a replicated snapshot to fa-a"
done
rows="$(sim_fa_rest fa-a GET "pgroup/fa-b:$group" '{"snap": true, "transfer": true}')"
check_eq "replicated snapshots on fa-a (name progress complete)" \
    "$(jq -r '.[] | "\(.name) \(.progress) \(.completed != null)"' <<<"$rows" | tr '\n' ';')" \
    "fa-b:$group.1 1 true;fa-b:$group.2 0.4 false;"
check_eq "volume snapshots of fa-b:$group.1 on fa-a" \
    "$(sim_fa_rest fa-a GET "volume/fa-b:$group.1" '{"snap": true, "pgroup": true}' | jq -r '.[] | "\(.name) \(.source)"')" \
    "fa-b:$group.1.$volume fa-b:$volume"
check_eq "sha256 of the replicated snapshot's data on fa-a" \
    "$(sim_admin fa-a state | jq -r --arg s "fa-b:$group.1.$volume" '.volumes[$s].path' | xargs sha256sum | cut -d' ' -f1)" \
    "$(sha256sum "$snap_file" | cut -d' ' -f1)"
check_eq "array connections of fa-a" "$(sim_fa_rest fa-a GET array/connection | jq -r '.[].array_name')" fa-b

# replica_claim NAME SIZE VOLUME: a pure-block claim restoring VOLUME of fa-b's $group.
replica_claim() {
    kube_create_pvc "$ns" "$1" pure-block "$2" ReadWriteOnce null "$(jq -n --arg g "$group" --arg v "$3" \
        '{"replica.beta.purestorage.com/array": "fa-b", "replica.beta.purestorage.com/protection-group": $g,
          "replica.beta.purestorage.com/volume": $v}')"
}

log_step "site B: a 2Gi claim naming fa-b, $group and $volume restores the newest completed replica on fa-a"
replica_claim restored 2Gi "$volume"
kube_wait_bound "$ns" restored
restored_pv="$(kube_pv_of "$ns" restored)"
restored_volume="$(kube_array_name_of_pv "$restored_pv")"
check_eq "array of the restored volume" "$(sim_array_holding "$restored_volume")" fa-a
check_eq "PV capacity of the restored claim" "$(kubectl get pv "$restored_pv" -o 'jsonpath={.spec.capacity.storage}')" 2Gi
check_eq "sha256 in the restored claim (the data as of the replicated snapshot)" "$(read_data "$restored_pv")" "$written"
check_within "$CHECK_TIMEOUT" "restored: RestoringReplica event naming fa-b:$group.1, its age and the skipped transfer" \
    kube_has_event "$ns" restored RestoringReplica "replicated snapshot fa-b:$group\\.1 on FlashArray .*taken [0-9]+ min ago.*skipped 1 snapshot\\(s\\) still in transfer"
log_step "event: $(kube_events_for "$ns" restored RestoringReplica | tail -n 1)"

log_step "replica refusals: a volume not in the group, a smaller claim, the cloud array unreachable"
replica_claim not-in-group 1Gi k8s-pvc-not-replicated
replica_claim too-small 512Mi "$volume"
check_within "$CHECK_TIMEOUT" "not-in-group: event saying no completed snapshot contains it" \
    kube_has_event "$ns" not-in-group ProvisioningFailed "no completed replicated snapshot of fa-b:$group contains volume k8s-pvc-not-replicated"
check_within "$CHECK_TIMEOUT" "too-small: event naming the snapshot's size" \
    kube_has_event "$ns" too-small ProvisioningFailed "less than the 1Gi of replicated snapshot"
sim_set_faults_on fa-a '{"rules": [{"method": "GET", "path": "/api/*/pgroup/*", "count": 1000, "action": {"kind": "status", "status": 503}}]}'
replica_claim unreachable 1Gi "$volume"
check_within "$CHECK_TIMEOUT" "unreachable: event saying fa-a cannot list replicated snapshots" \
    kube_has_event "$ns" unreachable ProvisioningFailed "cannot list replicated snapshots of fa-b:$group"
sim_set_faults_on fa-a '{}'
kubectl -n "$ns" delete pvc unreachable --wait=false >/dev/null
for claim in not-in-group too-small; do
    check_eq "phase of $claim" "$(kube_pvc_phase "$ns" "$claim")" Pending
    no_volume_for "$ns" "$claim"
done

log_step "a class naming a group no array has: Pending, event, nothing created"
kube_create_pvc "$ns" nowhere e2e-no-such-group 1Gi
check_within "$CHECK_TIMEOUT" "nowhere: event saying the group is on no array" \
    kube_has_event "$ns" nowhere ProvisioningFailed "protection group e2e-nowhere is not live on any FlashArray"
log_step "event: $(kube_events_for "$ns" nowhere ProvisioningFailed | tail -n 1)"
check_eq "phase of nowhere" "$(kube_pvc_phase "$ns" nowhere)" Pending
no_volume_for "$ns" nowhere

log_step "the administrator destroys $group: a new claim fails, nothing created; the bound claim keeps its volume"
sim_fa_rest fa-b DELETE "pgroup/$group" >/dev/null || check_fail "cannot destroy $group on fa-b"
kube_create_pvc "$ns" after-destroy e2e-replicated 1Gi
check_within "$CHECK_TIMEOUT" "after-destroy: event saying the group is destroyed" \
    kube_has_event "$ns" after-destroy ProvisioningFailed "destroyed on FlashArray"
check_eq "phase of after-destroy" "$(kube_pvc_phase "$ns" after-destroy)" Pending
no_volume_for "$ns" after-destroy
check_eq "state of $volume on fa-b" "$(sim_volume_state fa-b "$volume")" live

log_step "cleanup: claims deleted, $volume destroyed, the group eradicated"
kube_delete_claims "$ns"
check_within "$CHECK_TIMEOUT" "$volume destroyed on fa-b" sim_volume_destroyed fa-b "$volume"
sim_fa_rest fa-b DELETE "pgroup/$group?eradicate=true" >/dev/null || check_fail "cannot eradicate $group"
kubectl delete storageclass e2e-replicated e2e-no-such-group >/dev/null
kubectl delete namespace "$ns" --wait=false >/dev/null
