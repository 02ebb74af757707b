#!/usr/bin/env bash
# Hybrid (issue 18) with a real pod on each side. Site A: a class with protectionGroup puts the
# claim's volume into the administrator's group on fa-b, and a pod writes data to it. The group's
# snapshot, replicated to the "cloud" array fa-a (the simulator's admin call stands in for the
# transfer), is restored by a claim naming the source array, group and volume: a second pod
# mounts it on fa-a and reads the same data. Deleting the claims destroys exactly their volumes;
# the replicated snapshot stays on fa-a, as on a real target (its retention is the array's).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "17 a protection group's volume written by a pod, replicated to fa-a, restored there and read by a pod"

ns=node-17
group=node-site-a
class=node-replicated
node_make_namespace "$ns"
before_a="$(sim_live_volumes fa-a)" before_b="$(sim_live_volumes fa-b)"

log_step "the array administrator makes protection group $group on fa-b; class $class names it"
sim_fa_rest fa-b POST "pgroup/$group" '{}' >/dev/null || check_fail "cannot create $group on fa-b"
kubectl apply -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: $class}
provisioner: pure-provisioner
parameters: {backend: block, protectionGroup: $group}
YAML
kube_create_pvc "$ns" data "$class" 1Gi
kube_wait_bound "$ns" data
volume="$(kube_array_name_of_pv "$(kube_pv_of "$ns" data)")"
check_eq "array holding $volume" "$(sim_array_holding "$volume")" fa-b
check_eq "members of $group on fa-b" "$(sim_fa_rest fa-b GET "pgroup/$group" | jq -c .volumes)" "[\"$volume\"]"

log_step "pod writer writes 4 MiB to $volume; deleted before the snapshot (the file system unmounted, consistent)"
node_run_pod "$ns" writer "$NODE_WRITE_SCRIPT" data
node_wait_pod_running "$ns" writer
node_wait_pod_log "$ns" writer ready
written="$(node_pod_log_value "$ns" writer sha-data)"
[[ "$written" =~ ^[0-9a-f]{64}$ ]] || check_fail "writer printed no checksum"
node_delete_pod "$ns" writer

log_step "replication: $group's snapshot on fa-b delivered to fa-a"
sim_fa_rest fa-b POST pgroup "$(jq -n --arg g "$group" '{source: [$g], snap: true, suffix: "r1"}')" >/dev/null ||
    check_fail "cannot snapshot $group on fa-b"
snap_file="$(sim_admin fa-b state | jq -r --arg s "$group.r1.$volume" '.volumes[$s].path')"
sim_admin fa-a replicated-snapshots -X POST -H 'Content-Type: application/json' -d "$(jq -n \
    --arg g "$group" --arg v "$volume" --arg f "$snap_file" \
    '{source_array: "fa-b", pgroup: $g, age_seconds: 120, progress: 1.0,
      volumes: [{name: $v, size: 1073741824, data: $f}]}')" >/dev/null ||
    check_fail "cannot deliver a replicated snapshot to fa-a"

log_step "site B: a claim naming fa-b, $group and $volume restores it on fa-a"
kube_create_pvc "$ns" restored pure-block 1Gi ReadWriteOnce null "$(jq -n --arg g "$group" --arg v "$volume" \
    '{"replica.beta.purestorage.com/array": "fa-b", "replica.beta.purestorage.com/protection-group": $g,
      "replica.beta.purestorage.com/volume": $v}')"
kube_wait_bound "$ns" restored
restored_volume="$(kube_array_name_of_pv "$(kube_pv_of "$ns" restored)")"
check_eq "array of the restored volume" "$(sim_array_holding "$restored_volume")" fa-a
check_within "$NODE_TIMEOUT" "restored: RestoringReplica event naming fa-b:$group.1 and its age" \
    kube_has_event "$ns" restored RestoringReplica "replicated snapshot fa-b:$group\\.1 on FlashArray .*taken [0-9]+ min ago"

log_step "pod reader mounts $restored_volume (fa-a) on the node and reads the data"
node_run_pod "$ns" reader "$NODE_READ_SCRIPT" restored
node_wait_pod_running "$ns" reader
node_wait_pod_log "$ns" reader ready
check_eq "sha256 read from the restored claim" "$(node_pod_log_value "$ns" reader sha-restored)" "$written"
node_delete_pod "$ns" reader

log_step "cleanup: claims deleted, $group destroyed and eradicated on fa-b, class deleted"
node_claims_released "$ns" data restored
check_eq "volumes on fa-a after deleting the claims" "$(sim_live_volumes fa-a)" "$before_a"
check_eq "volumes on fa-b after deleting the claims" "$(sim_live_volumes fa-b)" "$before_b"
sim_fa_rest fa-b DELETE "pgroup/$group" >/dev/null || check_fail "cannot destroy $group on fa-b"
sim_fa_rest fa-b DELETE "pgroup/$group?eradicate=true" >/dev/null || check_fail "cannot eradicate $group on fa-b"
kubectl delete storageclass "$class" >/dev/null
node_scenario_end "$ns"
