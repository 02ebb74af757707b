#!/usr/bin/env bash
# Deleting a claim of a Delete class removes the PV and destroys the array volume (block and
# file); a Retain class keeps both the PV (Released) and the array volume, and deleting that PV
# by hand still keeps the array volume.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "delete destroys the array volume; Retain keeps PV and volume"

ns=e2e-delete
kube_make_namespace "$ns"
kube_create_class e2e-retain-block '{"backend": "block"}' '{"reclaimPolicy": "Retain"}'
kube_create_class e2e-retain-file '{"backend": "file"}' '{"reclaimPolicy": "Retain"}'

pv_phase_is() { [[ "$(kubectl get pv "$1" -o 'jsonpath={.status.phase}' 2>/dev/null)" == "$2" ]]; }

log_step "Delete classes: claims on pure-block and pure-file"
kube_create_pvc "$ns" gone-block pure-block 1Gi
kube_create_pvc "$ns" gone-file pure-file 1Gi
for claim in gone-block gone-file; do
    kube_wait_bound "$ns" "$claim"
    pv="$(kube_pv_of "$ns" "$claim")"
    volume="$(kube_array_name_of_pv "$pv")"
    array="$(sim_array_holding "$volume")" || check_fail "$volume is not live on any array"
    log_step "delete claim $claim: expect PV $pv gone and $volume destroyed on $array"
    kubectl -n "$ns" delete pvc "$claim" --wait=false >/dev/null
    check_within "$CHECK_TIMEOUT" "PV $pv to be deleted" kube_pv_gone "$pv"
    check_within "$CHECK_TIMEOUT" "$volume to be destroyed on $array" sim_volume_destroyed "$array" "$volume"
    log_step "PV $pv is gone and $volume is destroyed (not eradicated) on $array"
done

log_step "Retain classes: claims on e2e-retain-block and e2e-retain-file"
kube_create_pvc "$ns" kept-block e2e-retain-block 1Gi
kube_create_pvc "$ns" kept-file e2e-retain-file 1Gi
for claim in kept-block kept-file; do
    kube_wait_bound "$ns" "$claim"
    pv="$(kube_pv_of "$ns" "$claim")"
    volume="$(kube_array_name_of_pv "$pv")"
    array="$(sim_array_holding "$volume")" || check_fail "$volume is not live on any array"
    check_eq "$pv reclaim policy" "$(kubectl get pv "$pv" -o 'jsonpath={.spec.persistentVolumeReclaimPolicy}')" Retain
    log_step "delete claim $claim: expect PV $pv Released and $volume still live on $array"
    kubectl -n "$ns" delete pvc "$claim" --wait=false >/dev/null
    check_within "$CHECK_TIMEOUT" "PV $pv to be Released" pv_phase_is "$pv" Released
    # Give the provisioner time to (wrongly) act on the Released PV before checking it did not.
    sleep 3
    kube_pv_exists "$pv" || check_fail "PV $pv of a Retain class was deleted"
    check_eq "state of $volume on $array after its Retain claim was deleted" "$(sim_volume_state "$array" "$volume")" live
    log_step "delete PV $pv by hand: it goes, and $volume stays live"
    kubectl delete pv "$pv" --wait=false >/dev/null
    check_within "$CHECK_TIMEOUT" "PV $pv to be deleted" kube_pv_gone "$pv"
    sleep 2
    check_eq "state of $volume on $array after its Retain PV was deleted" "$(sim_volume_state "$array" "$volume")" live
    # Clean up as an administrator would, so later leak checks start from a clean array.
    if [[ "$array" == fa-* ]]; then
        sim_fa_rest "$array" DELETE "volume/$volume" >/dev/null || check_fail "cannot destroy $volume on $array"
    else
        sim_fb_rest PATCH "file-systems?names=$volume" '{"destroyed": true}' >/dev/null || check_fail "cannot destroy $volume on $array"
    fi
done

kubectl delete storageclass e2e-retain-block e2e-retain-file >/dev/null
kubectl delete namespace "$ns" --wait=false >/dev/null
