#!/usr/bin/env bash
# A ReadWriteMany claim on a block class cannot be served (a FlashArray volume is mounted by one
# node at a time): the claim stays Pending with a ProvisioningFailed event that says why, and no
# array volume is created. The same access mode on the file class works.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "ReadWriteMany block claims fail with a clear ProvisioningFailed event"

ns=e2e-rwx
make_namespace "$ns"

step "claim pure-block 1Gi ReadWriteMany"
create_pvc "$ns" shared-block pure-block 1Gi ReadWriteMany
wait_for "$E2E_TIMEOUT" "a ProvisioningFailed event on shared-block naming ReadWriteMany" \
    has_event "$ns" shared-block ProvisioningFailed 'ReadWriteMany'
message="$(events_for "$ns" shared-block ProvisioningFailed | tail -n 1)"
step "event: $message"
grep -Eqi 'block|FlashArray' <<<"$message" || fail "the event does not say that block volumes are the problem: $message"
expect_eq "phase of shared-block" "$(pvc_phase "$ns" shared-block)" Pending
uid="$(kubectl -n "$ns" get pvc shared-block -o 'jsonpath={.metadata.uid}')"
for array in fa-a fa-b; do
    expect_eq "state of $E2E_PREFIX-pvc-$uid on $array" "$(volume_state "$array" "$E2E_PREFIX-pvc-$uid")" absent
done
pv_exists "pvc-$uid" && fail "a PV was created for a ReadWriteMany block claim"

step "the same access mode on pure-file is provisioned"
create_pvc "$ns" shared-file pure-file 1Gi ReadWriteMany
wait_pvc_bound "$ns" shared-file
pv="$(pv_of "$ns" shared-file)"
expect_eq "access modes of $pv" "$(kubectl get pv "$pv" -o 'jsonpath={.spec.accessModes[*]}')" ReadWriteMany
expect_eq "accessMode option of $pv" "$(kubectl get pv "$pv" -o 'jsonpath={.spec.flexVolume.options.accessMode}')" shared

step "clean up"
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
wait_for "$E2E_TIMEOUT" "PV $pv to be deleted" pv_gone "$pv"
kubectl delete namespace "$ns" --wait=false >/dev/null
