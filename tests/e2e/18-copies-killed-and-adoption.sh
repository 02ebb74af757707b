#!/usr/bin/env bash
# Copies survive a crash, and adoption on the real control plane. The provisioner is SIGKILLed
# between the array copy and the PV create (every array call slowed, the kill sent as soon as the
# copy is live on the array, the PV checked absent after it) for a FlashArray restore
# (snapshot.beta.purestorage.com/name), a FlashArray clone and a FlashBlade clone
# (spec.dataSource); each restarted provisioner finds the copy by its name, finishes it (grown,
# or given the claim's settings and its temporary `<fs>.clone-<pv>` snapshot dropped) and binds
# the claim to pvc-<uid>: exactly one live array object per claim, the right data. Then an
# administrator's volume, made through the array's REST API, is adopted by a claim
# (flashvol.io/adopt on a class with allowAdoption): Bound to a Retain PV naming it, its data
# mounted; a second claim naming it is refused with an event; deleting the claim keeps the
# volume, and patching the PV to Delete hands it over (destroyed, PV gone).
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "provisioner SIGKILLed between copy and PV: one volume per claim; adoption keeps its safeguards"

ns=e2e-copies-killed
kube_make_namespace "$ns"
# A short Lease, so each restart takes the dead leader's Lease over in seconds.
fast_lease=(--lease-duration-seconds=4 --renew-deadline-seconds=3 --retry-period-seconds=1)
# Every array call is delayed this long while a copy is made: the call after the copy (growing
# it, or giving a file system the claim's settings) keeps the PV at least this far away, and the
# copy is polled every 0.1 s.
latency_ms=1500
# The runner restarts the shared provisioner with the Deployment's args only once this one stops.
trap 'rc=$?; sim_clear_faults || true; prov_stop main || true
      kubectl delete storageclass e2e-adopt --ignore-not-found >/dev/null 2>&1 || true; scenario_on_exit "$rc"' EXIT

restart_provisioner() {
    prov_start main "${fast_lease[@]}"
    check_within 60 "the provisioner to lead (Lease $PROV_LEASE)" prov_leads main
}
uid_of() { kubectl -n "$ns" get pvc "$1" -o 'jsonpath={.metadata.uid}'; }
object_live() { [[ "$(sim_volume_state "$1" "$2")" == live ]]; }
# fb_snapshot_state NAME: live, destroyed or absent (eradicated) on fb-1.
fb_snapshot_state() {
    sim_admin fb-1 state | jq -r --arg s "$1" '[.snapshots[] | select(.name == $s)][0] as $o
        | if $o == null then "absent" elif $o.destroyed_at == null then "live" else "destroyed" end'
}

# kill_once_copied CLAIM ARRAY: waits (polling every 0.1 s) until CLAIM's copy, named after its
# uid, is live on ARRAY, SIGKILLs the provisioner, and checks that the kill landed before the PV.
kill_once_copied() {
    local claim="$1" array="$2" uid copy
    uid="$(uid_of "$claim")"
    copy="$PROV_NAME_PREFIX-pvc-$uid"
    CHECK_INTERVAL=0.1 check_within "$CHECK_TIMEOUT" "$copy to be copied on $array" object_live "$array" "$copy"
    prov_kill main
    kube_pv_gone "pvc-$uid" || check_fail "PV pvc-$uid existed at the kill: it did not land between the copy and the PV"
    log_step "SIGKILLed the provisioner: $copy live on $array ($(sim_object_size "$array" "$copy") bytes), no PV pvc-$uid"
}

# restart_and_finish CLAIM: the arrays back to speed, the provisioner restarted; it must find the
# copy by its name and finish it ("already exists ... (earlier attempt); reusing it" in its log,
# never a second copy), and bind CLAIM to pvc-<uid>.
restart_and_finish() {
    local claim="$1" uid
    uid="$(uid_of "$claim")"
    sim_clear_faults || check_fail "cannot clear the latency"
    restart_provisioner
    kube_wait_bound "$ns" "$claim"
    check_eq "PV of $claim" "$(kube_pv_of "$ns" "$claim")" "pvc-$uid"
    grep -Fq "claim $ns/$claim: $PROV_NAME_PREFIX-pvc-$uid already exists on " "$(prov_log main)" ||
        check_fail "the restarted provisioner did not log that it reused $PROV_NAME_PREFIX-pvc-$uid"
}

log_step "provisioner restarted with a 4 s Lease; a block and a file claim with data"
prov_stop main
restart_provisioner
kube_create_pvc "$ns" data pure-block 1Gi
kube_create_pvc "$ns" files pure-file 1Gi ReadWriteMany
kube_wait_bound "$ns" data
kube_wait_bound "$ns" files
pv="$(kube_pv_of "$ns" data)"
volume="$(kube_array_name_of_pv "$pv")"
array="$(sim_array_holding "$volume")" || check_fail "$volume is not live on any array"
files_pv="$(kube_pv_of "$ns" files)"
files_fs="$(kube_array_name_of_pv "$files_pv")"
original="$(flex_payload_in_new_pod write "$pv" "$ns")"
snapshot="$(prov_snapshot_cli create -n "$ns" data)" || check_fail "snapshot create failed: $snapshot"
changed="$(flex_payload_in_new_pod write "$pv" "$ns")"
files_data="$(flex_payload_in_new_pod write "$files_pv" "$ns")"
log_step "$volume on $array: ${original:0:12}… in $snapshot, ${changed:0:12}… now; $files_fs: ${files_data:0:12}…"

log_step "FlashArray restore: a 2Gi claim annotated with $snapshot, killed after the copy"
sim_set_faults "{\"latency_ms\": $latency_ms}" || check_fail "cannot slow the simulated arrays"
kube_create_pvc "$ns" restored pure-block 2Gi ReadWriteOnce null \
    "$(jq -n --arg s "$snapshot" '{"snapshot.beta.purestorage.com/name": $s}')"
kill_once_copied restored "$array"
restart_and_finish restored
restored_pv="$(kube_pv_of "$ns" restored)"
check_eq "size of the restored volume on $array (grown by the restarted provisioner)" \
    "$(sim_object_size "$array" "$PROV_NAME_PREFIX-$restored_pv")" "$((2 << 30))"
check_eq "sha256 in the restored claim (the data at snapshot time)" "$(flex_payload_in_new_pod read "$restored_pv" "$ns")" "$original"
log_step "the restarted provisioner finished the copy: Bound to $restored_pv, 2 GiB, the snapshot's data"

log_step "FlashArray clone: a 2Gi claim with spec.dataSource data, killed after the copy"
sim_set_faults "{\"latency_ms\": $latency_ms}" || check_fail "cannot slow the simulated arrays"
kube_create_clone "$ns" clone pure-block 2Gi ReadWriteOnce data
kill_once_copied clone "$array"
restart_and_finish clone
clone_pv="$(kube_pv_of "$ns" clone)"
check_eq "size of the cloned volume on $array" "$(sim_object_size "$array" "$PROV_NAME_PREFIX-$clone_pv")" "$((2 << 30))"
check_eq "sha256 in the clone (the source's current data)" "$(flex_payload_in_new_pod read "$clone_pv" "$ns")" "$changed"
log_step "the restarted provisioner finished the clone: Bound to $clone_pv, 2 GiB, the source's data"

log_step "FlashBlade clone: a 2Gi claim with spec.dataSource files, killed after the copy"
sim_set_faults "{\"latency_ms\": $latency_ms}" || check_fail "cannot slow the simulated arrays"
kube_create_clone "$ns" fb-clone pure-file 2Gi ReadWriteMany files
kill_once_copied fb-clone fb-1
fb_clone_pv="pvc-$(uid_of fb-clone)"
check_eq "state of the clone's snapshot $files_fs.clone-$fb_clone_pv at the kill" \
    "$(fb_snapshot_state "$files_fs.clone-$fb_clone_pv")" live
restart_and_finish fb-clone
check_eq "state of the clone's snapshot $files_fs.clone-$fb_clone_pv after the restart" \
    "$(fb_snapshot_state "$files_fs.clone-$fb_clone_pv")" absent
check_eq "snapshots of $files_fs" "$(prov_snapshot_cli list -n "$ns" files --no-headers)" ""
check_eq "provisioned size of the cloned file system (the claim's, not its source's)" \
    "$(sim_object_size fb-1 "$PROV_NAME_PREFIX-$fb_clone_pv")" "$((2 << 30))"
check_eq "sha256 in the FlashBlade clone" "$(flex_payload_in_new_pod read "$fb_clone_pv" "$ns")" "$files_data"
log_step "the restarted provisioner finished the file system clone and dropped its snapshot"

kube_check_one_volume_per_claim "$ns"
log_step "every claim Bound to pvc-<its uid>, exactly one live array object each, no orphan"

log_step "adoption: an administrator's volume e2e-legacy-db on $array (a copy of $snapshot, made through REST)"
sim_fa_rest "$array" POST volume/e2e-legacy-db "$(jq -n --arg s "$snapshot" '{source: $s}')" >/dev/null ||
    check_fail "cannot create e2e-legacy-db on $array"
kube_create_class e2e-adopt '{"backend": "block", "allowAdoption": "true"}'
kube_create_pvc "$ns" adopted e2e-adopt 1Gi ReadWriteOnce null '{"flashvol.io/adopt": "e2e-legacy-db"}'
kube_wait_bound "$ns" adopted
adopted_pv="$(kube_pv_of "$ns" adopted)"
check_eq "PV of the adopting claim" "$adopted_pv" "pvc-$(uid_of adopted)"
check_eq "the adopted PV's array volume, adopted annotation, reclaim policy, capacity" \
    "$(kubectl get pv "$adopted_pv" -o json | jq -r '[.spec.flexVolume.options.arrayVolume,
        .metadata.annotations["flashvol.io/adopted"], .spec.persistentVolumeReclaimPolicy,
        .spec.capacity.storage] | join(" ")')" "e2e-legacy-db e2e-legacy-db Retain 1Gi"
check_eq "sha256 in the adopting claim (the volume's existing data)" "$(flex_payload_in_new_pod read "$adopted_pv" "$ns")" "$original"
log_step "Bound to $adopted_pv (Retain), naming e2e-legacy-db, its data mounted"

log_step "a second claim adopting e2e-legacy-db is refused"
kube_create_pvc "$ns" adopted-again e2e-adopt 1Gi ReadWriteOnce null '{"flashvol.io/adopt": "e2e-legacy-db"}'
check_within "$CHECK_TIMEOUT" "adopted-again: event saying e2e-legacy-db is the volume of $adopted_pv" \
    kube_has_event "$ns" adopted-again ProvisioningFailed "e2e-legacy-db cannot be adopted: it is already the volume of PV $adopted_pv"
check_eq "phase of adopted-again" "$(kube_pvc_phase "$ns" adopted-again)" Pending
kubectl -n "$ns" delete pvc adopted-again --wait=false >/dev/null

log_step "deleting the adopting claim keeps e2e-legacy-db; the PV patched to Delete hands it over"
kubectl -n "$ns" delete pvc adopted --wait=false >/dev/null
pv_phase_is() { [[ "$(kubectl get pv "$1" -o 'jsonpath={.status.phase}')" == "$2" ]]; }
check_within "$CHECK_TIMEOUT" "$adopted_pv to be Released" pv_phase_is "$adopted_pv" Released
check_eq "state of e2e-legacy-db with its PV Released" "$(sim_volume_state "$array" e2e-legacy-db)" live
kubectl patch pv "$adopted_pv" --type merge -p '{"spec": {"persistentVolumeReclaimPolicy": "Delete"}}' >/dev/null
check_within "$CHECK_TIMEOUT" "$adopted_pv to be deleted" kube_pv_gone "$adopted_pv"
check_eq "state of e2e-legacy-db after its PV was handed over with Delete" "$(sim_volume_state "$array" e2e-legacy-db)" destroyed

log_step "deleting the claims: every volume destroyed, none leaked"
kube_delete_claims "$ns"
check_eq "orphans" "$(kube_orphans)" ""
kubectl delete storageclass e2e-adopt >/dev/null
kubectl delete namespace "$ns" --wait=false >/dev/null
