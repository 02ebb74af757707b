#!/usr/bin/env bash
# Two pods on the node use one volume at the same time: a ReadWriteOnce block claim (one
# staging mount, one bind per pod, both pods see each other's files) and a ReadWriteMany file
# claim. When the first pod goes, the volume stays staged and connected and the second pod keeps
# writing; it is released only after the last pod.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "03 two pods, one volume (RWO block, RWX file): one staging mount, released after the last pod"

ns=node-03
node_scenario_claims "$ns"

# shellcheck disable=SC2016 # the pod's shell expands it
script='for d in /data/*; do hostname > "$d/from-$(hostname)"; done; sync; echo ready; exec sleep 3600'
log_mark="$(node_flex_log_lines)"
node_run_pod "$ns" one "$script" blk fil
node_wait_pod_log "$ns" one ready
node_run_pod "$ns" two "$script" blk fil
node_wait_pod_log "$ns" two ready
staging="$(node_staging_dir "$blk_pv")"
check_eq "mounts at the staging dir" "$(node_mounts_at "$staging")" 1
check_eq "mounts of $blk_pv (staging + one bind per pod)" "$(node_mount_count "$blk_pv")" 3
check_eq "mounts of $fil_pv (one per pod)" "$(node_mount_count "$fil_pv")" 2
check_eq "times $blk_volume was formatted" "$(node_flex_count_since "$log_mark" "formatting $blk_volume ")" 1
for claim in blk fil; do
    check_eq "pod one reading two's file on $claim" "$(node_pod_exec "$ns" one cat "/data/$claim/from-two")" two
done
log_step "one staging mount and two binds of $blk_volume; both pods see each other's files on both claims"

log_step "delete pod one (--wait): the volume stays for pod two"
log_mark="$(node_flex_log_lines)"
node_delete_pod "$ns" one
node_is_mount_point "$staging" || check_fail "$staging was unmounted while pod two uses it"
sim_connected "$blk_array" "$blk_volume" || check_fail "$blk_volume was disconnected while pod two uses it"
node_flex_logged_since "$log_mark" "$blk_pv stays staged: still mounted at" ||
    check_fail "the driver did not log keeping $blk_pv staged"
check_eq "mounts of $fil_pv" "$(node_mount_count "$fil_pv")" 1
for claim in blk fil; do
    check_eq "pod two writing to $claim after one left" \
        "$(node_pod_exec "$ns" two sh -c "echo still > /data/$claim/after && sync && cat /data/$claim/after")" still
done
log_step "pod two still writes to both; $blk_volume still staged and connected"

log_mark="$(node_flex_log_lines)"
node_delete_pod "$ns" two
node_is_mount_point "$staging" && check_fail "$staging is still mounted after the last pod"
sim_not_connected "$blk_array" "$blk_volume" || check_fail "$blk_volume is still connected after the last pod"
check_eq "mounts of $blk_pv and $fil_pv" "$(($(node_mount_count "$blk_pv") + $(node_mount_count "$fil_pv")))" 0
check_eq "times $blk_volume was released" "$(node_flex_count_since "$log_mark" "released $blk_volume ($blk_pv)")" 1
log_step "after the last pod: released once, nothing mounted"

node_claims_released "$ns" blk fil
node_scenario_end "$ns"
