#!/usr/bin/env bash
# FlashBlade restores and clones (REST 1.9+: POST file-systems with a source snapshot) and the
# snapshot CLI while an array is down. A file claim's data is snapshotted with
# `snapshot create -n <ns> <claim>` and then changed; a claim annotated
# snapshot.beta.purestorage.com/name mounts the *original* data, in a new file system with the
# claim's size; a clone (spec.dataSource) mounts the source's current data, diverges from it, and
# leaves no snapshot behind on the source. With the blade dropping every connection, `snapshot
# create`, `list` and `delete` fail with exit status 1 and a message naming the blade; once it is
# back they work again.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "FlashBlade restores and clones keep the right data; the CLI fails clearly while an array is down"
trap 'rc=$?; sim_set_faults_on fb-1 "{}" || true; scenario_on_exit "$rc"' EXIT

ns=e2e-fb-copies
kube_make_namespace "$ns"

provisioned_of() { sim_fb_rest GET "file-systems?names=$1" | jq -r '.items[0].provisioned'; }

log_step "a file claim with data, snapshotted with PSO's command, then changed"
kube_create_pvc "$ns" files pure-file 1Gi ReadWriteMany
kube_wait_bound "$ns" files
pv="$(kube_pv_of "$ns" files)"
fs="$(kube_array_name_of_pv "$pv")"
original="$(flex_payload_in_new_pod write "$pv" "$ns")"
snapshot="$(prov_snapshot_cli create -n "$ns" files)" || check_fail "snapshot create failed: $snapshot"
[[ "$snapshot" == "$fs".* ]] || check_fail "file system snapshot $snapshot is not $fs.<suffix>"
changed="$(flex_payload_in_new_pod write "$pv" "$ns")"
[[ "$changed" != "$original" ]] || check_fail "new random data has the old checksum"
log_step "$fs: ${original:0:12}… in snapshot $snapshot, ${changed:0:12}… now"

log_step "restore: a 2Gi claim annotated snapshot.beta.purestorage.com/name: $snapshot"
kube_create_pvc "$ns" restored pure-file 2Gi ReadWriteMany null \
    "$(jq -n --arg s "$snapshot" '{"snapshot.beta.purestorage.com/name": $s}')"
kube_wait_bound "$ns" restored
restored_pv="$(kube_pv_of "$ns" restored)"
restored_fs="$(kube_array_name_of_pv "$restored_pv")"
check_eq "provisioned size of $restored_fs (the claim's, not the snapshot's)" "$(provisioned_of "$restored_fs")" "$((2 << 30))"
check_eq "sha256 in the restored claim (the data at snapshot time)" "$(flex_payload_in_new_pod read "$restored_pv" "$ns")" "$original"
check_eq "sha256 in the source (untouched by the restore)" "$(flex_payload_in_new_pod read "$pv" "$ns")" "$changed"

log_step "clone: a claim with spec.dataSource {kind: PersistentVolumeClaim, name: files}"
kube_create_clone "$ns" copy pure-file 1Gi ReadWriteMany files
kube_wait_bound "$ns" copy
copy_pv="$(kube_pv_of "$ns" copy)"
check_eq "sha256 in the clone (the source's current data)" "$(flex_payload_in_new_pod read "$copy_pv" "$ns")" "$changed"
diverged="$(flex_payload_in_new_pod write "$copy_pv" "$ns")"
check_eq "sha256 in the source after writing to the clone" "$(flex_payload_in_new_pod read "$pv" "$ns")" "$changed"
check_eq "snapshots of $fs (the clone's own snapshot dropped)" \
    "$(prov_snapshot_cli list -n "$ns" files --no-headers | cut -f3)" "$snapshot"
log_step "the clone diverges from its source (${diverged:0:12}…) and left no snapshot behind"

log_step "the blade drops every connection: the CLI fails with exit 1 and names it"
sim_set_faults_on fb-1 '{"drop_rate": 1.0}' || check_fail "cannot take fb-1 down"
for args in "create -n $ns files" "list -n $ns files" "delete $snapshot"; do
    rc=0
    # shellcheck disable=SC2086 # the words of $args are the CLI's arguments
    out="$(prov_snapshot_cli $args 2>&1)" || rc=$?
    check_eq "exit status of snapshot $args while fb-1 is down" "$rc" 1
    [[ "$out" == *"$(sim_field fb-1 endpoint | sed 's|^https://||')"* ]] ||
        check_fail "snapshot $args does not name the blade: $out"
    log_step "snapshot $args: ${out:0:160}"
done
sim_set_faults_on fb-1 '{}' || check_fail "cannot bring fb-1 back"
prov_snapshot_cli delete "$snapshot" || check_fail "snapshot delete $snapshot failed once fb-1 is back"
check_eq "snapshots of $fs after delete" "$(prov_snapshot_cli list -n "$ns" files --no-headers)" ""

log_step "deleting the claims: every file system destroyed, none leaked"
kube_delete_claims "$ns"
check_eq "orphans" "$(kube_orphans)" ""
kubectl delete namespace "$ns" --wait=false >/dev/null
