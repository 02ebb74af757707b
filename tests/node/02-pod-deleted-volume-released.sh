#!/usr/bin/env bash
# A pod with a block and a file claim is deleted: once `kubectl delete --wait` returns, kubelet
# has had the driver unmount both (the driver log shows kubelet's unmount call-outs), the pod's
# volume dirs are gone, the block volume's staging mount, loop device, by-id link and record
# are gone and the array no longer connects the volume to this node; the file system's bind is
# gone. Then kubelet removes the pod dir itself.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "02 pod deleted: pod dir, staging mount, devices and array connection gone"

ns=node-02
node_scenario_claims "$ns"

node_run_pod "$ns" user "$NODE_WRITE_SCRIPT" blk fil
node_wait_pod_running "$ns" user
node_wait_pod_log "$ns" user ready
uid="$(node_pod_uid "$ns" user)"
blk_dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$blk_pv"
fil_dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$fil_pv"
staging="$(node_staging_dir "$blk_pv")"
node_is_mount_point "$blk_dir" && node_is_mount_point "$fil_dir" && node_is_mount_point "$staging" ||
    check_fail "the pod's volumes are not all mounted"
loop="$(findmnt -n -o SOURCE "$staging")"
serial="$(sim_admin "$blk_array" state | jq -r --arg v "$blk_volume" '.volumes[$v].serial | ascii_downcase')"
link="$NODE_STATE/node-fs/dev/disk/by-id/wwn-0x624a9370$serial"
[[ -L "$link" ]] || check_fail "no by-id link $link"
hosts="$(sim_connections_of "$blk_array" "$blk_volume")"
[[ -n "$hosts" ]] || check_fail "$blk_volume is not connected on $blk_array while mounted"
log_step "mounted: $blk_volume via $loop (host $hosts on $blk_array), file system bound at $fil_dir"

log_mark="$(node_flex_log_lines)"
log_step "kubectl delete pod user --wait"
node_delete_pod "$ns" user
unmounts="$(grep -cE " unmount $NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/($blk_pv|$fil_pv)\$" <<<"$(node_flex_log_since "$log_mark")" || true)"
check_eq "kubelet's unmount call-outs for the pod's two volumes" "$unmounts" 2
[[ ! -e "$blk_dir" && ! -e "$fil_dir" ]] || check_fail "the pod's volume dirs still exist after the delete"
node_is_mount_point "$staging" && check_fail "$staging is still mounted"
check_eq "mounts naming $blk_pv or $fil_pv" "$(($(node_mount_count "$blk_pv") + $(node_mount_count "$fil_pv")))" 0
[[ ! -e "$(node_record_file "$blk_pv")" ]] || check_fail "the volume record of $blk_pv is still there"
# The fabric's udevd plays the kernel removing a deleted SCSI device: within its 0.2 s poll.
device_gone() { [[ "$(losetup -nO BACK-FILE "$loop" 2>/dev/null)" != */"${serial^^}".img && ! -e "$link" ]]; }
check_within 5 "$loop and $link to go (the driver deleted the device)" device_gone
check_eq "hosts $blk_volume is connected to" "$(sim_connections_of "$blk_array" "$blk_volume")" ""
node_flex_logged_since "$log_mark" "released $blk_volume ($blk_pv)" || check_fail "the driver did not log releasing $blk_volume"
log_step "after delete --wait: both unmounted by kubelet's call-outs, staging unmounted, $loop detached, link and record gone, array disconnected"
check_within 30 "kubelet to remove the pod dir" test ! -e "$NODE_KUBELET_ROOT/pods/$uid"
log_step "kubelet removed $NODE_KUBELET_ROOT/pods/$uid"

node_claims_released "$ns" blk fil
node_scenario_end "$ns"
