#!/usr/bin/env bash
# Each provisioned PV mounts into a pod the way kubelet does it (the installed driver called as
# `<plugin dir>/pure~flex/flex mount <pod volume dir> <options JSON>` with kubelet's keys), over
# the test fabric (loop devices for FlashArray LUNs, bind mounts for FlashBlade NFS): data written
# in one pod is intact in the next. After the last unmount the node's host is disconnected from
# the FlashArray volume and the driver's staging mount is gone.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "PVs mount pod-style through the flex driver; data survives unmount and remount"

ns=e2e-mount
kube_make_namespace "$ns"

log_step "kubelet's probe: flex init answers Success with attach false"
init="$(flex_call "$WORKDIR/node/fabric-fa-a.json" init)"
check_eq "init capabilities.attach" "$(jq -r '.capabilities.attach' <<<"$init")" false

log_step "create claims on pure-block (selector rack=a), pure-block (rack=b) and pure-file"
kube_create_pvc "$ns" block-a pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_create_pvc "$ns" block-b pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
kube_create_pvc "$ns" shared-file pure-file 1Gi ReadWriteMany
for claim in block-a block-b shared-file; do kube_wait_bound "$ns" "$claim"; done

for claim in block-a block-b shared-file; do
    pv="$(kube_pv_of "$ns" "$claim")"
    volume="$(kube_array_name_of_pv "$pv")"
    array="$(sim_array_holding "$volume")"
    log_step "$claim → $pv ($volume on $array)"
    flex_check_remount "$pv" "$ns"
    staging="$FLEX_KUBELET_ROOT/plugins/kubernetes.io/flexvolume/pure/flex/mounts/$pv"
    ! mountpoint -q "$staging" 2>/dev/null || check_fail "staging mount $staging is still mounted after the last unmount"
    if [[ "$array" == fa-* ]]; then
        hosts="$(sim_admin "$array" state | jq -r --arg v "$volume" '[.connections[] | select(.volume == $v) | .host] | join(",")')"
        check_eq "hosts still connected to $volume on $array after the last unmount" "$hosts" ""
        log_step "the node's host is disconnected from $volume after the last unmount"
    fi
done

log_step "the driver registered this node as a host on both FlashArrays, by its IQN and named after the node"
for array in fa-a fa-b; do
    hosts="$(sim_admin "$array" state | jq -r --arg iqn "$FLEX_IQN" '[.hosts[] | select(.iqn | index($iqn)) | .name] | join(",")')"
    [[ "$hosts" == "$FLEX_NODE_NAME"* && "$hosts" != *,* ]] ||
        check_fail "hosts with IQN $FLEX_IQN on $array: expected one named after $FLEX_NODE_NAME, got '$hosts'"
    log_step "$array: host $hosts has initiator $FLEX_IQN"
done

log_step "clean up"
kube_delete_claims "$ns"
kubectl delete namespace "$ns" --wait=false >/dev/null
