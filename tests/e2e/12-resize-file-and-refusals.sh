#!/usr/bin/env bash
# A grown file claim: the FlashBlade file system's provisioned size and hard limit follow, and
# the provisioner finishes the claim itself (status.capacity, no FileSystemResizePending): NFS
# clients see the new size, no node has anything to do (expandfs says so). Then what must not
# happen: a shrink is refused by the apiserver; growing past the array's free space or past
# 4 PiB is refused by the provisioner with a VolumeResizeFailed event saying why, and by the
# driver's expandfs too; the array volume stays as it was.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "file claims grow and are finished; shrink, past free space and past 4 PiB are refused"

ns=e2e-resize-file
kube_make_namespace "$ns"
gib=$((1 << 30))

log_step "a file claim of 1Gi, mounted in a pod with data"
kube_create_pvc "$ns" shared pure-file 1Gi ReadWriteMany
kube_wait_bound "$ns" shared
pv="$(kube_pv_of "$ns" shared)"
fs="$(kube_array_name_of_pv "$pv")"
pod="$(cat /proc/sys/kernel/random/uuid)"
flex_mount "$pod" "$pv" "$ns" file-writer
sum="$(flex_write_payload "$(flex_pod_dir "$pod" "$pv")")"

log_step "raise it to 3Gi"
kube_resize_pvc "$ns" shared 3Gi >/dev/null || check_fail "the apiserver refused growing a file claim"
check_within "$CHECK_TIMEOUT" "$fs on fb-1 to be provisioned 3 GiB" sim_object_size_is fb-1 "$fs" $((3 * gib))
check_eq "the hard limit of $fs" \
    "$(sim_admin fb-1 state | jq -r --arg f "$fs" '.file_systems[$f].settings.hard_limit_enabled')" true
check_within "$CHECK_TIMEOUT" "the provisioner to finish $ns/shared at 3Gi" kube_pvc_capacity_is "$ns" shared 3Gi
check_within "$CHECK_TIMEOUT" "event VolumeResizeSuccessful" kube_has_event "$ns" shared VolumeResizeSuccessful
! kube_pvc_has_condition "$ns" shared FileSystemResizePending ||
    check_fail "a finished file claim still shows FileSystemResizePending"
log_step "the file system is 3 GiB with its hard limit; the claim is 3Gi, not pending, without any node"
reply="$(flex_expandfs "$pod" "$pv" $((3 * gib)) "$gib")" || check_fail "expandfs on a file volume: $reply"
[[ "$(jq -r .message <<<"$reply")" == *"nothing to do on the node"* ]] ||
    check_fail "expandfs on a file volume should say there is nothing to do on the node: $reply"
check_eq "the data after the resize" "$(flex_read_payload "$(flex_pod_dir "$pod" "$pv")")" "$sum"
flex_unmount "$pod" "$pv"
log_step "expandfs, had kubelet called it, says there is nothing to do on the node; data intact"

log_step "block claims on fa-a (8 GiB) to refuse growing"
kube_create_pvc "$ns" small pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_create_pvc "$ns" huge pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
for claim in small huge; do kube_wait_bound "$ns" "$claim"; done

log_step "a shrink is refused by the apiserver"
if out="$(kube_resize_pvc "$ns" small 512Mi)"; then
    check_fail "shrinking a claim was accepted: $out"
fi
[[ "$out" == *"less than"* ]] || check_fail "the shrink was refused without saying why: $out"
log_step "refused: ${out##*: }"

# refused_growth CLAIM SIZE PATTERN: the provisioner says why (VolumeResizeFailed) and the array
# volume keeps 1 GiB; the driver's expandfs, as kubelet would call it with the PV's new
# capacity, refuses too.
refused_growth() {
    local claim="$1" size="$2" pattern="$3" pv volume reply
    pv="$(kube_pv_of "$ns" "$claim")"
    volume="$(kube_array_name_of_pv "$pv")"
    kube_resize_pvc "$ns" "$claim" "$size" >/dev/null || check_fail "the apiserver refused $size"
    check_within "$CHECK_TIMEOUT" "VolumeResizeFailed on $claim matching '$pattern'" \
        kube_has_event "$ns" "$claim" VolumeResizeFailed "$pattern"
    log_step "$claim → $size: $(kube_events_for "$ns" "$claim" VolumeResizeFailed | head -n 1)"
    check_eq "size of $volume after refusing $size" "$(sim_object_size fa-a "$volume")" "$gib"
    pod="$(cat /proc/sys/kernel/random/uuid)"
    flex_mount "$pod" "$pv" "$ns" refused
    if reply="$(flex_expandfs "$pod" "$pv" "$(kube_bytes "$size")" "$gib")"; then
        check_fail "expandfs grew $claim to $size: $reply"
    fi
    [[ "$reply" == *"nothing changed"* ]] || check_fail "expandfs refused $size without saying why: $reply"
    flex_unmount "$pod" "$pv"
    check_eq "size of $volume after expandfs refused $size" "$(sim_object_size fa-a "$volume")" "$gib"
    check_eq "$claim's capacity" "$(kube_pvc_capacity "$ns" "$claim")" 1Gi
}
refused_growth small 100Gi "growing needs 99Gi more but the array has [^ ]+ free \(refused, nothing changed\)"
refused_growth huge 5Pi "5Pi is over the 4Pi limit of FlashArray volumes \(refused, nothing changed\)"

log_step "clean up"
kube_delete_claims "$ns"
kubectl delete namespace "$ns" --wait=false >/dev/null
