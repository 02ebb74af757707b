#!/usr/bin/env bash
# Block (pure-block, and the default-backend class pure) and file (pure-file) claims are
# provisioned by our provisioner and bound by the real PV controller; every field of the PV that
# kubelet, the PV controller and the driver rely on is checked, and the volume exists on the
# array the PV names.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "block and file claims are provisioned and bound, PV fields as specified"

ns=e2e-provision
kube_make_namespace "$ns"

# verify_pv NS CLAIM BACKEND SIZE_EXPECTED ARRAY_KIND: the PV of a bound claim.
verify_pv() {
    local claim="$2" backend="$3" capacity="$4" pv pv_json claim_uid volume endpoint array
    pv="$(kube_pv_of "$ns" "$claim")"
    claim_uid="$(kubectl -n "$ns" get pvc "$claim" -o 'jsonpath={.metadata.uid}')"
    check_eq "PV name of $claim" "$pv" "pvc-$claim_uid"
    pv_json="$(kubectl get pv "$pv" -o json)"
    field() { jq -r "$1" <<<"$pv_json"; }
    check_eq "$pv flexVolume.driver" "$(field .spec.flexVolume.driver)" "$KUBE_DRIVER"
    check_eq "$pv options.backend" "$(field .spec.flexVolume.options.backend)" "$backend"
    check_eq "$pv options.namespace (name prefix)" "$(field .spec.flexVolume.options.namespace)" "$PROV_NAME_PREFIX"
    check_eq "$pv options.volumeName" "$(field .spec.flexVolume.options.volumeName)" "$pv"
    check_eq "$pv options.arrayVolume" "$(field .spec.flexVolume.options.arrayVolume)" "$PROV_NAME_PREFIX-$pv"
    check_eq "$pv claimRef" "$(field '.spec.claimRef | "\(.namespace)/\(.name)/\(.uid)"')" "$ns/$claim/$claim_uid"
    check_eq "$pv capacity" "$(field '.spec.capacity.storage')" "$capacity"
    check_eq "$pv reclaim policy" "$(field .spec.persistentVolumeReclaimPolicy)" Delete
    check_eq "$pv storageClassName" "$(field .spec.storageClassName)" "$(kubectl -n "$ns" get pvc "$claim" -o 'jsonpath={.spec.storageClassName}')"
    check_eq "$pv provisioned-by annotation" "$(field '.metadata.annotations["pv.kubernetes.io/provisioned-by"]')" "$KUBE_PROVISIONER"
    check_eq "$pv has our finalizer" "$(field '.metadata.finalizers // [] | index("flashvol.io/array-volume") != null')" true
    check_eq "$pv access modes" "$(field '.spec.accessModes | join(",")')" ReadWriteOnce
    volume="$PROV_NAME_PREFIX-$pv"
    endpoint="$(field .spec.flexVolume.options.arrayEndpoint)"
    array="$(sim_array_holding "$volume")" || check_fail "no simulated array holds a live $volume"
    check_eq "array named by options.arrayEndpoint" "$endpoint" "$(sim_field "$array" endpoint)"
    case "$backend" in
    block) [[ "$array" == fa-* ]] || check_fail "block volume $volume landed on $array, not a FlashArray" ;;
    file)
        [[ "$array" == fb-1 ]] || check_fail "file system $volume landed on $array, not the FlashBlade"
        check_eq "$pv options.nfsEndpoint" "$(field .spec.flexVolume.options.nfsEndpoint)" 127.0.0.2
        ;;
    esac
    log_step "PV $pv: driver, options, claimRef, capacity $capacity, Delete, provisioned-by, finalizer ok; $volume is live on $array"
}

log_step "create claims: pure-block 1Gi, pure 2Gi (default backend block), pure-file 3Gi"
kube_create_pvc "$ns" block-claim pure-block 1Gi
kube_create_pvc "$ns" default-claim pure 2Gi
kube_create_pvc "$ns" file-claim pure-file 3Gi
for claim in block-claim default-claim file-claim; do
    kube_wait_bound "$ns" "$claim"
    log_step "$claim is Bound to $(kube_pv_of "$ns" "$claim") by the PV controller"
done
verify_pv "$ns" block-claim block 1Gi
verify_pv "$ns" default-claim block 2Gi
verify_pv "$ns" file-claim file 3Gi

log_step "the provisioner recorded ProvisioningSucceeded on each claim"
for claim in block-claim default-claim file-claim; do
    [[ -n "$(kube_events_for "$ns" "$claim" ProvisioningSucceeded)" ]] || check_fail "no ProvisioningSucceeded event on $claim"
done

log_step "clean up: delete the claims and wait for their PVs to go"
kube_delete_claims "$ns"
kubectl delete namespace "$ns" --wait=false >/dev/null
