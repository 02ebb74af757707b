#!/usr/bin/env bash
# Each provisioned PV mounts into a pod the way kubelet does it (the installed driver called as
# `<plugin dir>/pure~flex/flex mount <pod volume dir> <options JSON>` with kubelet's keys), over
# the test fabric (loop devices for FlashArray LUNs, bind mounts for FlashBlade NFS): data written
# in one pod is intact in the next. After the last unmount the node's host is disconnected from
# the FlashArray volume and the driver's staging mount is gone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "PVs mount pod-style through the flex driver; data survives unmount and remount"

ns=e2e-mount
make_namespace "$ns"

step "kubelet's probe: flex init answers Success with attach false"
init="$(flex_call "$E2E_ROOT/node/fabric-fa-a.json" init)"
expect_eq "init capabilities.attach" "$(jq -r '.capabilities.attach' <<<"$init")" false

step "create claims on pure-block (selector rack=a), pure-block (rack=b) and pure-file"
create_pvc "$ns" block-a pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
create_pvc "$ns" block-b pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
create_pvc "$ns" shared-file pure-file 1Gi ReadWriteMany
for claim in block-a block-b shared-file; do wait_pvc_bound "$ns" "$claim"; done

for claim in block-a block-b shared-file; do
    pv="$(pv_of "$ns" "$claim")"
    volume="$(array_name_of_pv "$pv")"
    array="$(array_holding "$volume")"
    step "$claim → $pv ($volume on $array)"
    mount_write_remount_check "$pv" "$ns"
    staging="$E2E_KUBELET_ROOT/plugins/kubernetes.io/flexvolume/pure/flex/mounts/$pv"
    ! mountpoint -q "$staging" 2>/dev/null || fail "staging mount $staging is still mounted after the last unmount"
    if [[ "$array" == fa-* ]]; then
        hosts="$(sim_admin "$array" state | jq -r --arg v "$volume" '[.connections[] | select(.volume == $v) | .host] | join(",")')"
        expect_eq "hosts still connected to $volume on $array after the last unmount" "$hosts" ""
        step "the node's host is disconnected from $volume after the last unmount"
    fi
done

step "the driver registered this node as a host on both FlashArrays, by its IQN and named after the node"
for array in fa-a fa-b; do
    hosts="$(sim_admin "$array" state | jq -r --arg iqn "$E2E_IQN" '[.hosts[] | select(.iqn | index($iqn)) | .name] | join(",")')"
    [[ "$hosts" == "$E2E_NODE_NAME"* && "$hosts" != *,* ]] ||
        fail "hosts with IQN $E2E_IQN on $array: expected one named after $E2E_NODE_NAME, got '$hosts'"
    step "$array: host $hosts has initiator $E2E_IQN"
done

step "clean up"
pvs=("$(pv_of "$ns" block-a)" "$(pv_of "$ns" block-b)" "$(pv_of "$ns" shared-file)")
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
for pv in "${pvs[@]}"; do wait_for "$E2E_TIMEOUT" "PV $pv to be deleted" pv_gone "$pv"; done
kubectl delete namespace "$ns" --wait=false >/dev/null
