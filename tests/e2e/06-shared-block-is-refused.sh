#!/usr/bin/env bash
# A ReadWriteMany claim on a block class cannot be served (a FlashArray volume is mounted by one
# node at a time): the claim stays Pending with a ProvisioningFailed event that says why, and no
# array volume is created. The same access mode on the file class works.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "ReadWriteMany block claims fail with a clear ProvisioningFailed event"

ns=e2e-rwx
kube_make_namespace "$ns"

log_step "claim pure-block 1Gi ReadWriteMany"
kube_create_pvc "$ns" shared-block pure-block 1Gi ReadWriteMany
check_within "$CHECK_TIMEOUT" "a ProvisioningFailed event on shared-block naming ReadWriteMany" \
    kube_has_event "$ns" shared-block ProvisioningFailed 'ReadWriteMany'
message="$(kube_events_for "$ns" shared-block ProvisioningFailed | tail -n 1)"
log_step "event: $message"
grep -Eqi 'block|FlashArray' <<<"$message" || check_fail "the event does not say that block volumes are the problem: $message"
check_eq "phase of shared-block" "$(kube_pvc_phase "$ns" shared-block)" Pending
uid="$(kubectl -n "$ns" get pvc shared-block -o 'jsonpath={.metadata.uid}')"
for array in fa-a fa-b; do
    check_eq "state of $PROV_NAME_PREFIX-pvc-$uid on $array" "$(sim_volume_state "$array" "$PROV_NAME_PREFIX-pvc-$uid")" absent
done
kube_pv_exists "pvc-$uid" && check_fail "a PV was created for a ReadWriteMany block claim"

log_step "the same access mode on pure-file is provisioned"
kube_create_pvc "$ns" shared-file pure-file 1Gi ReadWriteMany
kube_wait_bound "$ns" shared-file
pv="$(kube_pv_of "$ns" shared-file)"
check_eq "access modes of $pv" "$(kubectl get pv "$pv" -o 'jsonpath={.spec.accessModes[*]}')" ReadWriteMany
check_eq "accessMode option of $pv" "$(kubectl get pv "$pv" -o 'jsonpath={.spec.flexVolume.options.accessMode}')" shared

log_step "clean up"
kube_delete_claims "$ns"
kubectl delete namespace "$ns" --wait=false >/dev/null
