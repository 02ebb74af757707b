#!/usr/bin/env bash
# A WaitForFirstConsumer class: the claim stays Pending, with no PV and no array volume, until
# the scheduler's volume.kubernetes.io/selected-node annotation appears (set here by hand, as the
# scheduler would for the first pod using it); then it is provisioned and Bound.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "WaitForFirstConsumer: provisioned only once a node is selected"

ns=e2e-wffc
kube_make_namespace "$ns"
kube_create_class e2e-wffc-block '{"backend": "block"}' '{"volumeBindingMode": "WaitForFirstConsumer"}'
# The node the scheduler would pick (no kubelet runs it; the object is what the scheduler names).
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: $FLEX_NODE_NAME, labels: {kubernetes.io/hostname: $FLEX_NODE_NAME}}
YAML

log_step "claim on e2e-wffc-block without selected-node"
kube_create_pvc "$ns" late e2e-wffc-block 1Gi
check_within "$CHECK_TIMEOUT" "the PV controller's WaitForFirstConsumer event on late" kube_has_event "$ns" late WaitForFirstConsumer
# Give the provisioner time to (wrongly) act before checking it did not.
sleep 5
check_eq "phase of late without selected-node" "$(kube_pvc_phase "$ns" late)" Pending
uid="$(kubectl -n "$ns" get pvc late -o 'jsonpath={.metadata.uid}')"
kube_pv_exists "pvc-$uid" && check_fail "a PV was created before a node was selected"
for array in fa-a fa-b; do
    check_eq "state of $PROV_NAME_PREFIX-pvc-$uid on $array" "$(sim_volume_state "$array" "$PROV_NAME_PREFIX-pvc-$uid")" absent
done
log_step "late stays Pending: no PV, no array volume, WaitForFirstConsumer event"

log_step "annotate volume.kubernetes.io/selected-node=$FLEX_NODE_NAME, as the scheduler does"
kubectl -n "$ns" annotate pvc late "volume.kubernetes.io/selected-node=$FLEX_NODE_NAME" >/dev/null
kube_wait_bound "$ns" late
pv="$(kube_pv_of "$ns" late)"
check_eq "PV of late" "$pv" "pvc-$uid"
array="$(sim_array_holding "$PROV_NAME_PREFIX-$pv")" || check_fail "$PROV_NAME_PREFIX-$pv is not live on any array"
log_step "late is Bound to $pv ($PROV_NAME_PREFIX-$pv on $array)"

log_step "clean up"
kubectl -n "$ns" delete pvc late --wait=false >/dev/null
check_within "$CHECK_TIMEOUT" "PV $pv to be deleted" kube_pv_gone "$pv"
kubectl delete storageclass e2e-wffc-block >/dev/null
kubectl delete namespace "$ns" --wait=false >/dev/null
