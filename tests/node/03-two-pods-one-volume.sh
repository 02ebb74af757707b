#!/usr/bin/env bash
# Two pods on the node use one volume at the same time: a ReadWriteOnce block claim (one
# staging mount, one bind per pod, both pods see each other's files) and a ReadWriteMany file
# claim. When the first pod goes, the volume stays staged and connected and the second pod keeps
# writing; it is released only after the last pod.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "03 two pods, one volume (RWO block, RWX file): one staging mount, released after the last pod"

ns=node-03
scenario_claims "$ns"

# shellcheck disable=SC2016 # the pod's shell expands it
script='for d in /data/*; do hostname > "$d/from-$(hostname)"; done; sync; echo ready; exec sleep 3600'
log_mark="$(flex_log_lines)"
run_pod "$ns" one "$script" blk fil
wait_pod_log "$ns" one ready
run_pod "$ns" two "$script" blk fil
wait_pod_log "$ns" two ready
staging="$(staging_dir "$blk_pv")"
expect_eq "mounts at the staging dir" "$(mounts_at "$staging")" 1
expect_eq "mounts of $blk_pv (staging + one bind per pod)" "$(mount_count "$blk_pv")" 3
expect_eq "mounts of $fil_pv (one per pod)" "$(mount_count "$fil_pv")" 2
expect_eq "times $blk_volume was formatted" "$(flex_count_since "$log_mark" "formatting $blk_volume ")" 1
for claim in blk fil; do
    expect_eq "pod one reading two's file on $claim" "$(pod_exec "$ns" one cat "/data/$claim/from-two")" two
done
step "one staging mount and two binds of $blk_volume; both pods see each other's files on both claims"

step "delete pod one (--wait): the volume stays for pod two"
log_mark="$(flex_log_lines)"
delete_pod "$ns" one
is_mount_point "$staging" || fail "$staging was unmounted while pod two uses it"
connected "$blk_array" "$blk_volume" || fail "$blk_volume was disconnected while pod two uses it"
flex_logged_since "$log_mark" "$blk_pv stays staged: still mounted at" ||
    fail "the driver did not log keeping $blk_pv staged"
expect_eq "mounts of $fil_pv" "$(mount_count "$fil_pv")" 1
for claim in blk fil; do
    expect_eq "pod two writing to $claim after one left" \
        "$(pod_exec "$ns" two sh -c "echo still > /data/$claim/after && sync && cat /data/$claim/after")" still
done
step "pod two still writes to both; $blk_volume still staged and connected"

log_mark="$(flex_log_lines)"
delete_pod "$ns" two
is_mount_point "$staging" && fail "$staging is still mounted after the last pod"
not_connected "$blk_array" "$blk_volume" || fail "$blk_volume is still connected after the last pod"
expect_eq "mounts of $blk_pv and $fil_pv" "$(($(mount_count "$blk_pv") + $(mount_count "$fil_pv")))" 0
expect_eq "times $blk_volume was released" "$(flex_count_since "$log_mark" "released $blk_volume ($blk_pv)")" 1
step "after the last pod: released once, nothing mounted"

claims_released "$ns" blk fil
scenario_end "$ns"
