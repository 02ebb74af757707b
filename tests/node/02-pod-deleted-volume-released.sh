#!/usr/bin/env bash
# A pod with a block and a file claim is deleted: once `kubectl delete --wait` returns, kubelet
# has had the driver unmount both (the driver log shows kubelet's unmount call-outs), the pod's
# volume dirs are gone, the block volume's staging mount, loop device, by-id link and record
# are gone and the array no longer connects the volume to this node; the file system's bind is
# gone. Then kubelet removes the pod dir itself.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "02 pod deleted: pod dir, staging mount, devices and array connection gone"

ns=node-02
scenario_claims "$ns"

run_pod "$ns" user "$WRITE_SCRIPT" blk fil
wait_pod_running "$ns" user
wait_pod_log "$ns" user ready
uid="$(pod_uid "$ns" user)"
blk_dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$blk_pv"
fil_dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$fil_pv"
staging="$(staging_dir "$blk_pv")"
is_mount_point "$blk_dir" && is_mount_point "$fil_dir" && is_mount_point "$staging" ||
    fail "the pod's volumes are not all mounted"
loop="$(findmnt -n -o SOURCE "$staging")"
serial="$(sim_admin "$blk_array" state | jq -r --arg v "$blk_volume" '.volumes[$v].serial | ascii_downcase')"
link="$NODE_STATE/node-fs/dev/disk/by-id/wwn-0x624a9370$serial"
[[ -L "$link" ]] || fail "no by-id link $link"
hosts="$(connections_of "$blk_array" "$blk_volume")"
[[ -n "$hosts" ]] || fail "$blk_volume is not connected on $blk_array while mounted"
step "mounted: $blk_volume via $loop (host $hosts on $blk_array), file system bound at $fil_dir"

log_mark="$(flex_log_lines)"
step "kubectl delete pod user --wait"
delete_pod "$ns" user
unmounts="$(grep -cE " unmount $NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/($blk_pv|$fil_pv)\$" <<<"$(flex_log_since "$log_mark")" || true)"
expect_eq "kubelet's unmount call-outs for the pod's two volumes" "$unmounts" 2
[[ ! -e "$blk_dir" && ! -e "$fil_dir" ]] || fail "the pod's volume dirs still exist after the delete"
is_mount_point "$staging" && fail "$staging is still mounted"
expect_eq "mounts naming $blk_pv or $fil_pv" "$(($(mount_count "$blk_pv") + $(mount_count "$fil_pv")))" 0
[[ ! -e "$(record_file "$blk_pv")" ]] || fail "the volume record of $blk_pv is still there"
# The fabric's udevd plays the kernel removing a deleted SCSI device: within its 0.2 s poll.
device_gone() { [[ "$(losetup -nO BACK-FILE "$loop" 2>/dev/null)" != */"${serial^^}".img && ! -e "$link" ]]; }
wait_for 5 "$loop and $link to go (the driver deleted the device)" device_gone
expect_eq "hosts $blk_volume is connected to" "$(connections_of "$blk_array" "$blk_volume")" ""
flex_logged_since "$log_mark" "released $blk_volume ($blk_pv)" || fail "the driver did not log releasing $blk_volume"
step "after delete --wait: both unmounted by kubelet's call-outs, staging unmounted, $loop detached, link and record gone, array disconnected"
wait_for 30 "kubelet to remove the pod dir" test ! -e "$NODE_KUBELET_ROOT/pods/$uid"
step "kubelet removed $NODE_KUBELET_ROOT/pods/$uid"

claims_released "$ns" blk fil
scenario_end "$ns"
