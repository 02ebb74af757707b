#!/usr/bin/env bash
# Growing block claims end to end. The real controller manager's expand controller resizes flex
# PVs with its no-op plugin: it raises the PV's capacity and marks the claim
# FileSystemResizePending without asking any driver. The provisioner grows the FlashArray volume
# (events Resizing, FileSystemResizeRequired) and leaves the claim's capacity to kubelet; kubelet's
# part is played here: `expandfs` on the node as kubelet calls it, then its status update.
# xfs grows online, in the running pod; ext4 offline, across a pod restart (the next mount grows
# it), and online too where this machine has CAP_SYS_RESOURCE. Data survives both.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "block claims grow: array volume, device and file system, online (xfs) and offline (ext4)"

ns=e2e-resize-block
kube_make_namespace "$ns"
kube_create_class e2e-ext4 '{"backend": "block", "fsType": "ext4"}' '{"allowVolumeExpansion": true}'
check_eq "allowVolumeExpansion of the shipped pure-block class" \
    "$(kubectl get storageclass pure-block -o 'jsonpath={.allowVolumeExpansion}')" true

gib=$((1 << 30))
# grow_claim CLAIM: the user asks for 3Gi; the controller manager and the provisioner do their
# parts; checked up to the point where kubelet takes over.
grow_claim() {
    local claim="$1" pv volume array
    pv="$(kube_pv_of "$ns" "$claim")"
    volume="$(kube_array_name_of_pv "$pv")"
    array="$(sim_array_holding "$volume")"
    log_step "$claim: raise the request to 3Gi"
    kube_resize_pvc "$ns" "$claim" 3Gi >/dev/null || check_fail "the apiserver refused growing $claim"
    check_within "$CHECK_TIMEOUT" "the controller manager to raise PV $pv to 3Gi" \
        kube_pv_capacity_is "$pv" 3Gi
    check_within "$CHECK_TIMEOUT" "the controller manager to mark $claim FileSystemResizePending" \
        kube_pvc_has_condition "$ns" "$claim" FileSystemResizePending
    log_step "the controller manager raised PV $pv to 3Gi and marked $claim FileSystemResizePending"
    check_within "$CHECK_TIMEOUT" "$volume on $array to grow to 3 GiB" \
        sim_object_size_is "$array" "$volume" $((3 * gib))
    check_within "$CHECK_TIMEOUT" "event Resizing on $claim" \
        kube_has_event "$ns" "$claim" Resizing "from 1Gi to 3Gi"
    check_within "$CHECK_TIMEOUT" "event FileSystemResizeRequired on $claim" \
        kube_has_event "$ns" "$claim" FileSystemResizeRequired
    check_eq "$claim's capacity while the node has not grown it (kubelet's to set)" \
        "$(kube_pvc_capacity "$ns" "$claim")" 1Gi
    log_step "the provisioner grew $volume on $array to 3 GiB; the claim stays 1Gi until the node grew it"
}

# kubelet_expands POD CLAIM: kubelet's NodeExpand (`expandfs` with the PV's new capacity and the
# claim's old one), then its status update; the pod sees the new size and its data.
kubelet_expands() {
    local pod="$1" claim="$2" pv dir reply size
    pv="$(kube_pv_of "$ns" "$claim")"
    dir="$(flex_pod_dir "$pod" "$pv")"
    reply="$(flex_expandfs "$pod" "$pv" "$(kube_bytes "$(kube_pv_capacity "$pv")")" \
        "$(kube_bytes "$(kube_pvc_capacity "$ns" "$claim")")")" || check_fail "expandfs failed: $reply"
    log_step "expandfs: $(jq -r .message <<<"$reply")"
    size="$(flex_df_bytes "$dir")"
    ((size > 2 * gib + gib / 2 && size <= 3 * gib)) || check_fail "df in the pod shows $size bytes for a 3 GiB volume"
    kube_finish_fs_resize "$ns" "$claim"
    check_eq "$claim's capacity after kubelet finished" "$(kube_pvc_capacity "$ns" "$claim")" 3Gi
    check_within "$CHECK_TIMEOUT" "the controller manager to drop PV $pv's pre-resize annotation" \
        kube_pv_lacks_annotation "$pv" volume.alpha.kubernetes.io/pre-resize-capacity
    log_step "df in the pod shows $size bytes; the claim is 3Gi and no longer pending"
}

kube_create_pvc "$ns" grow-xfs pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_create_pvc "$ns" grow-ext4 e2e-ext4 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
for claim in grow-xfs grow-ext4; do kube_wait_bound "$ns" "$claim"; done

log_step "xfs, online: a pod writes 4 MiB, the claim grows while the pod runs"
pv="$(kube_pv_of "$ns" grow-xfs)"
pod="$(cat /proc/sys/kernel/random/uuid)"
flex_mount "$pod" "$pv" "$ns" xfs-writer
sum="$(flex_write_payload "$(flex_pod_dir "$pod" "$pv")")"
grow_claim grow-xfs
kubelet_expands "$pod" grow-xfs
check_eq "the data in the running pod after the resize" "$(flex_read_payload "$(flex_pod_dir "$pod" "$pv")")" "$sum"
flex_unmount "$pod" "$pv"

log_step "ext4, offline: the pod stops, the claim grows, the next pod's mount grows the file system"
pv="$(kube_pv_of "$ns" grow-ext4)"
pod="$(cat /proc/sys/kernel/random/uuid)"
flex_mount "$pod" "$pv" "$ns" ext4-writer
sum="$(flex_write_payload "$(flex_pod_dir "$pod" "$pv")")"
flex_unmount "$pod" "$pv"
grow_claim grow-ext4
pod="$(cat /proc/sys/kernel/random/uuid)"
flex_mount "$pod" "$pv" "$ns" ext4-reader
kubelet_expands "$pod" grow-ext4
check_eq "the data after the restart" "$(flex_read_payload "$(flex_pod_dir "$pod" "$pv")")" "$sum"

if grep -q '^CapEff:' /proc/self/status && (($(printf '%d' "0x$(awk '/^CapEff:/ {print $2}' /proc/self/status)") & (1 << 24))); then
    log_step "ext4, online (this machine has CAP_SYS_RESOURCE): 3Gi → 4Gi in the running pod"
    kube_resize_pvc "$ns" grow-ext4 4Gi >/dev/null
    volume="$(kube_array_name_of_pv "$pv")"
    check_within "$CHECK_TIMEOUT" "$volume to grow to 4 GiB" sim_object_size_is fa-b "$volume" $((4 * gib))
    check_within "$CHECK_TIMEOUT" "PV $pv at 4Gi" kube_pv_capacity_is "$pv" 4Gi
    reply="$(flex_expandfs "$pod" "$pv" $((4 * gib)) $((3 * gib)))" || check_fail "online ext4 expandfs: $reply"
    size="$(flex_df_bytes "$(flex_pod_dir "$pod" "$pv")")"
    ((size > 3 * gib + gib / 2)) || check_fail "df shows $size bytes after growing ext4 online to 4 GiB"
    check_eq "the data after the online ext4 resize" "$(flex_read_payload "$(flex_pod_dir "$pod" "$pv")")" "$sum"
else
    log_step "ext4 online not tried: this machine lacks CAP_SYS_RESOURCE, which the kernel asks for (a node's kubelet has it)"
fi
flex_unmount "$pod" "$pv"

log_step "clean up"
kube_delete_claims "$ns"
kubectl delete storageclass e2e-ext4 >/dev/null
kubectl delete namespace "$ns" --wait=false >/dev/null
