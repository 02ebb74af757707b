#!/usr/bin/env bash
# PSO 2.x's snapshot workflow unchanged, and clones: `snapshot create -n <ns> <claim>` (the
# provisioner binary started as `snapshot` with the container's env, as `kubectl exec` runs it)
# prints the snapshot's name; data changed after it; a claim annotated
# snapshot.beta.purestorage.com/name mounts the *original* data; a claim with
# spec.dataSource: PersistentVolumeClaim mounts a copy of the source that diverges from it; a
# snapshot from a FlashArray protection group (an array-side schedule) restores too. Refusals
# are ProvisioningFailed events (smaller claim, missing source, FlashBlade copy, VolumeSnapshot)
# or CLI exit codes (3: no such claim, not bound; 2: usage). FlashBlade file systems snapshot,
# list and delete through the CLI.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "snapshot CLI, restore annotation and clones keep the right data"

ns=e2e-snap
kube_make_namespace "$ns"

# cli_status ARG...: the snapshot CLI's exit status (its output goes to the log).
cli_status() {
    local rc=0
    prov_snapshot_cli "$@" >>"$WORKDIR/logs/snapshot-cli.log" 2>&1 || rc=$?
    echo "$rc"
}

# write_data PV: writes 4 MiB in a fresh pod; prints the sha256.
write_data() { flex_payload_in_fresh_pod write "$1" "$ns"; }

# read_data PV: the sha256 of its payload, read in a fresh pod.
read_data() { flex_payload_in_fresh_pod read "$1" "$ns"; }

log_step "a block claim with data"
kube_create_pvc "$ns" data pure-block 1Gi
kube_wait_bound "$ns" data
pv="$(kube_pv_of "$ns" data)"
volume="$(kube_array_name_of_pv "$pv")"
array="$(sim_array_holding "$volume")" || check_fail "$volume is not live on any array"
original="$(write_data "$pv")"
log_step "$pv ($volume on $array) holds data ${original:0:12}…"

log_step "snapshot create -n $ns data (PSO's command): prints the snapshot's name"
snapshot="$(prov_snapshot_cli create -n "$ns" data)" || check_fail "snapshot create failed: $snapshot"
[[ "$snapshot" =~ ^${volume}\.[A-Za-z0-9_-]+$ ]] || check_fail "snapshot name $snapshot is not $volume.<suffix>"
listed="$(prov_snapshot_cli list -n "$ns" data --no-headers)" || check_fail "snapshot list failed"
check_eq "snapshot list -n $ns data (namespace, claim, snapshot)" "$(cut -f1-3 <<<"$listed")" "$(printf '%s\t%s\t%s' "$ns" data "$snapshot")"
log_step "snapshot $snapshot created and listed"

changed="$(write_data "$pv")"
[[ "$changed" != "$original" ]] || check_fail "new random data has the old checksum"
log_step "data of $pv changed to ${changed:0:12}… after the snapshot"

log_step "restore: a claim annotated snapshot.beta.purestorage.com/name: $snapshot"
kube_create_pvc "$ns" restored pure-block 1Gi ReadWriteOnce null \
    "$(jq -n --arg s "$snapshot" '{"snapshot.beta.purestorage.com/name": $s}')"
kube_wait_bound "$ns" restored
restored_pv="$(kube_pv_of "$ns" restored)"
check_eq "array of the restored volume" "$(sim_array_holding "$(kube_array_name_of_pv "$restored_pv")")" "$array"
check_eq "sha256 in the restored claim (the data at snapshot time)" "$(read_data "$restored_pv")" "$original"
log_step "the restored claim mounts the original data, on the snapshot's array"

log_step "clone: a 2Gi claim with spec.dataSource {kind: PersistentVolumeClaim, name: data}"
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: copy, namespace: $ns}
spec:
  storageClassName: pure-block
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
  dataSource: {kind: PersistentVolumeClaim, name: data}
EOF
kube_wait_bound "$ns" copy
copy_pv="$(kube_pv_of "$ns" copy)"
copy_volume="$(kube_array_name_of_pv "$copy_pv")"
check_eq "PV capacity of the clone" "$(kubectl get pv "$copy_pv" -o 'jsonpath={.spec.capacity.storage}')" 2Gi
check_eq "size of $copy_volume on $array (grown after the copy)" \
    "$(sim_admin "$array" state | jq -r --arg v "$copy_volume" '.volumes[$v].size')" "$((2 << 30))"
check_eq "sha256 in the clone" "$(read_data "$copy_pv")" "$changed"
diverged="$(write_data "$copy_pv")"
check_eq "sha256 in the source after writing to the clone" "$(read_data "$pv")" "$changed"
log_step "the clone copied the source's current data, grew to 2Gi, and diverges from it (${diverged:0:12}…)"

log_step "a protection group snapshot (an array-side schedule) of $volume restores too"
sim_fa_rest "$array" POST "pgroup/e2e-daily" "$(jq -n --arg v "$volume" '{vollist: [$v]}')" >/dev/null ||
    check_fail "cannot create protection group on $array"
sim_fa_rest "$array" POST pgroup '{"source": ["e2e-daily"], "snap": true, "suffix": "n1"}' >/dev/null ||
    check_fail "cannot snapshot protection group on $array"
kube_create_pvc "$ns" from-schedule pure-block 1Gi ReadWriteOnce null \
    "$(jq -n --arg s "e2e-daily.n1.$volume" '{"snapshot.beta.purestorage.com/name": $s}')"
kube_wait_bound "$ns" from-schedule
check_eq "sha256 in the claim restored from e2e-daily.n1.$volume" "$(read_data "$(kube_pv_of "$ns" from-schedule)")" "$changed"
all="$(prov_snapshot_cli list -n "$ns" data --no-headers | cut -f3 | sort | tr '\n' ' ')"
check_eq "snapshot list -n $ns data" "$all" "$(printf '%s\n' "$snapshot" "e2e-daily.n1.$volume" | sort | tr '\n' ' ')"

log_step "refusals are ProvisioningFailed events, never a blank volume"
kube_create_pvc "$ns" too-small pure-block 512Mi ReadWriteOnce null \
    "$(jq -n --arg s "$snapshot" '{"snapshot.beta.purestorage.com/name": $s}')"
kube_create_pvc "$ns" not-ours pure-block 1Gi ReadWriteOnce null \
    '{"snapshot.beta.purestorage.com/name": "oracle-prod.nightly"}'
kube_create_pvc "$ns" on-blade pure-file 1Gi ReadWriteOnce null \
    "$(jq -n --arg s "$snapshot" '{"snapshot.beta.purestorage.com/name": $s}')"
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: clone-of-nothing, namespace: $ns}
spec:
  storageClassName: pure-block
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
  dataSource: {kind: PersistentVolumeClaim, name: no-such-claim}
EOF
check_within "$CHECK_TIMEOUT" "too-small: event naming the snapshot's size" \
    kube_has_event "$ns" too-small ProvisioningFailed "less than the 1Gi of snapshot"
check_within "$CHECK_TIMEOUT" "not-ours: event refusing a volume outside Kubernetes" \
    kube_has_event "$ns" not-ours ProvisioningFailed "not a volume flashvol manages"
check_within "$CHECK_TIMEOUT" "on-blade: event saying FlashBlade cannot copy" \
    kube_has_event "$ns" on-blade ProvisioningFailed "cannot be copied onto a FlashBlade"
check_within "$CHECK_TIMEOUT" "clone-of-nothing: event saying the source does not exist" \
    kube_has_event "$ns" clone-of-nothing ProvisioningFailed "no-such-claim does not exist"
for claim in too-small not-ours on-blade clone-of-nothing; do
    check_eq "phase of $claim" "$(kube_pvc_phase "$ns" "$claim")" Pending
done
kubectl -n "$ns" delete pvc too-small not-ours on-blade clone-of-nothing --wait=false >/dev/null

log_step "the CLI refuses what it cannot snapshot (exit 3) and bad arguments (exit 2)"
check_eq "snapshot create of a claim that does not exist" "$(cli_status create -n "$ns" ghost)" 3
kube_create_pvc "$ns" elsewhere e2e-no-such-class 1Gi
check_eq "snapshot create of an unbound claim" "$(cli_status create -n "$ns" elsewhere)" 3
check_eq "snapshot create without a claim" "$(cli_status create)" 2
check_eq "snapshot delete of a volume outside Kubernetes" "$(cli_status delete oracle-prod.nightly)" 3
kubectl -n "$ns" delete pvc elsewhere --wait=false >/dev/null

log_step "FlashBlade: snapshot create, list and delete a file claim"
kube_create_pvc "$ns" files pure-file 1Gi ReadWriteMany
kube_wait_bound "$ns" files
fs="$(kube_array_name_of_pv "$(kube_pv_of "$ns" files)")"
fs_snapshot="$(prov_snapshot_cli create -n "$ns" files)" || check_fail "snapshot create of a file claim failed: $fs_snapshot"
[[ "$fs_snapshot" == "$fs".* ]] || check_fail "file system snapshot $fs_snapshot is not $fs.<suffix>"
check_eq "snapshot list -n $ns files" "$(prov_snapshot_cli list -n "$ns" files --no-headers | cut -f3)" "$fs_snapshot"
prov_snapshot_cli delete "$fs_snapshot" || check_fail "snapshot delete $fs_snapshot failed"
check_eq "snapshot list -n $ns files after delete" "$(prov_snapshot_cli list -n "$ns" files --no-headers)" ""
log_step "file system snapshot $fs_snapshot created, listed and destroyed"

log_step "snapshot delete $snapshot (PSO's command): destroyed on $array, repeat converges"
prov_snapshot_cli delete "$snapshot" || check_fail "snapshot delete $snapshot failed"
check_eq "state of $snapshot on $array" "$(sim_volume_state "$array" "$snapshot")" destroyed
prov_snapshot_cli delete "$snapshot" || check_fail "repeated snapshot delete $snapshot failed"

log_step "deleting the claims: every volume destroyed, none leaked"
kube_delete_claims "$ns"
check_eq "orphans" "$(kube_orphans)" ""
kubectl delete namespace "$ns" --wait=false >/dev/null
