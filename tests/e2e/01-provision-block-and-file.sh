#!/usr/bin/env bash
# Block (pure-block, and the default-backend class pure) and file (pure-file) claims are
# provisioned by our provisioner and bound by the real PV controller; every field of the PV that
# kubelet, the PV controller and the driver rely on is checked, and the volume exists on the
# array the PV names.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "block and file claims are provisioned and bound, PV fields as specified"

ns=e2e-provision
make_namespace "$ns"

# check_pv NS CLAIM BACKEND SIZE_EXPECTED ARRAY_KIND: the PV of a bound claim.
check_pv() {
    local claim="$2" backend="$3" capacity="$4" pv pv_json claim_uid volume endpoint array
    pv="$(pv_of "$ns" "$claim")"
    claim_uid="$(kubectl -n "$ns" get pvc "$claim" -o 'jsonpath={.metadata.uid}')"
    expect_eq "PV name of $claim" "$pv" "pvc-$claim_uid"
    pv_json="$(kubectl get pv "$pv" -o json)"
    field() { jq -r "$1" <<<"$pv_json"; }
    expect_eq "$pv flexVolume.driver" "$(field .spec.flexVolume.driver)" "$E2E_DRIVER"
    expect_eq "$pv options.backend" "$(field .spec.flexVolume.options.backend)" "$backend"
    expect_eq "$pv options.namespace (name prefix)" "$(field .spec.flexVolume.options.namespace)" "$E2E_PREFIX"
    expect_eq "$pv options.volumeName" "$(field .spec.flexVolume.options.volumeName)" "$pv"
    expect_eq "$pv options.arrayVolume" "$(field .spec.flexVolume.options.arrayVolume)" "$E2E_PREFIX-$pv"
    expect_eq "$pv claimRef" "$(field '.spec.claimRef | "\(.namespace)/\(.name)/\(.uid)"')" "$ns/$claim/$claim_uid"
    expect_eq "$pv capacity" "$(field '.spec.capacity.storage')" "$capacity"
    expect_eq "$pv reclaim policy" "$(field .spec.persistentVolumeReclaimPolicy)" Delete
    expect_eq "$pv storageClassName" "$(field .spec.storageClassName)" "$(kubectl -n "$ns" get pvc "$claim" -o 'jsonpath={.spec.storageClassName}')"
    expect_eq "$pv provisioned-by annotation" "$(field '.metadata.annotations["pv.kubernetes.io/provisioned-by"]')" "$E2E_PROVISIONER_NAME"
    expect_eq "$pv has our finalizer" "$(field '.metadata.finalizers // [] | index("flashvol.io/array-volume") != null')" true
    expect_eq "$pv access modes" "$(field '.spec.accessModes | join(",")')" ReadWriteOnce
    volume="$E2E_PREFIX-$pv"
    endpoint="$(field .spec.flexVolume.options.arrayEndpoint)"
    array="$(array_holding "$volume")" || fail "no simulated array holds a live $volume"
    expect_eq "array named by options.arrayEndpoint" "$endpoint" "$(sim_field "$array" endpoint)"
    case "$backend" in
    block) [[ "$array" == fa-* ]] || fail "block volume $volume landed on $array, not a FlashArray" ;;
    file)
        [[ "$array" == fb-1 ]] || fail "file system $volume landed on $array, not the FlashBlade"
        expect_eq "$pv options.nfsEndpoint" "$(field .spec.flexVolume.options.nfsEndpoint)" 127.0.0.2
        ;;
    esac
    step "PV $pv: driver, options, claimRef, capacity $capacity, Delete, provisioned-by, finalizer ok; $volume is live on $array"
}

step "create claims: pure-block 1Gi, pure 2Gi (default backend block), pure-file 3Gi"
create_pvc "$ns" block-claim pure-block 1Gi
create_pvc "$ns" default-claim pure 2Gi
create_pvc "$ns" file-claim pure-file 3Gi
for claim in block-claim default-claim file-claim; do
    wait_pvc_bound "$ns" "$claim"
    step "$claim is Bound to $(pv_of "$ns" "$claim") by the PV controller"
done
check_pv "$ns" block-claim block 1Gi
check_pv "$ns" default-claim block 2Gi
check_pv "$ns" file-claim file 3Gi

step "the provisioner recorded ProvisioningSucceeded on each claim"
for claim in block-claim default-claim file-claim; do
    [[ -n "$(events_for "$ns" "$claim" ProvisioningSucceeded)" ]] || fail "no ProvisioningSucceeded event on $claim"
done

step "clean up: delete the claims and wait for their PVs to go"
pvs=("$(pv_of "$ns" block-claim)" "$(pv_of "$ns" default-claim)" "$(pv_of "$ns" file-claim)")
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
for pv in "${pvs[@]}"; do wait_for "$E2E_TIMEOUT" "PV $pv to be deleted" pv_gone "$pv"; done
kubectl delete namespace "$ns" --wait=false >/dev/null
