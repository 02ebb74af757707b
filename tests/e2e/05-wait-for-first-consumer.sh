#!/usr/bin/env bash
# A WaitForFirstConsumer class: the claim stays Pending, with no PV and no array volume, until
# the scheduler's volume.kubernetes.io/selected-node annotation appears (set here by hand, as the
# scheduler would for the first pod using it); then it is provisioned and Bound.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "WaitForFirstConsumer: provisioned only once a node is selected"

ns=e2e-wffc
make_namespace "$ns"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: e2e-wffc-block}
provisioner: pure-provisioner
volumeBindingMode: WaitForFirstConsumer
parameters: {backend: block}
YAML
# The node the scheduler would pick (no kubelet runs it; the object is what the scheduler names).
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: $E2E_NODE_NAME, labels: {kubernetes.io/hostname: $E2E_NODE_NAME}}
YAML

step "claim on e2e-wffc-block without selected-node"
create_pvc "$ns" late e2e-wffc-block 1Gi
wait_for "$E2E_TIMEOUT" "the PV controller's WaitForFirstConsumer event on late" has_event "$ns" late WaitForFirstConsumer
# Give the provisioner time to (wrongly) act before checking it did not.
sleep 5
expect_eq "phase of late without selected-node" "$(pvc_phase "$ns" late)" Pending
uid="$(kubectl -n "$ns" get pvc late -o 'jsonpath={.metadata.uid}')"
pv_exists "pvc-$uid" && fail "a PV was created before a node was selected"
for array in fa-a fa-b; do
    expect_eq "state of $E2E_PREFIX-pvc-$uid on $array" "$(volume_state "$array" "$E2E_PREFIX-pvc-$uid")" absent
done
step "late stays Pending: no PV, no array volume, WaitForFirstConsumer event"

step "annotate volume.kubernetes.io/selected-node=$E2E_NODE_NAME, as the scheduler does"
kubectl -n "$ns" annotate pvc late "volume.kubernetes.io/selected-node=$E2E_NODE_NAME" >/dev/null
wait_pvc_bound "$ns" late
pv="$(pv_of "$ns" late)"
expect_eq "PV of late" "$pv" "pvc-$uid"
array="$(array_holding "$E2E_PREFIX-$pv")" || fail "$E2E_PREFIX-$pv is not live on any array"
step "late is Bound to $pv ($E2E_PREFIX-$pv on $array)"

step "clean up"
kubectl -n "$ns" delete pvc late --wait=false >/dev/null
wait_for "$E2E_TIMEOUT" "PV $pv to be deleted" pv_gone "$pv"
kubectl delete storageclass e2e-wffc-block >/dev/null
kubectl delete namespace "$ns" --wait=false >/dev/null
