#!/usr/bin/env bash
# A pod that runs to completion (restartPolicy: Never) keeps its object, but kubelet tears its
# volumes down at once: while `kubectl get pod` still shows it Succeeded, the driver has unmounted
# both claims and released the block volume.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "06 a completed pod is unmounted while it still exists"

ns=node-06
node_scenario_claims "$ns"

# shellcheck disable=SC2016
node_run_pod "$ns" job 'for d in /data/*; do echo done > "$d/result"; done; sync' blk fil -- '{"spec":{"restartPolicy":"Never"}}'
check_within "$NODE_TIMEOUT" "pod job to succeed" node_pod_phase_is "$ns" job Succeeded
uid="$(node_pod_uid "$ns" job)"
unmounted() {
    ! node_is_mount_point "$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$blk_pv" &&
        ! node_is_mount_point "$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$fil_pv" &&
        sim_not_connected "$blk_array" "$blk_volume"
}
check_within "$NODE_TIMEOUT" "kubelet to unmount the completed pod's volumes" unmounted
check_eq "phase of pod job after the unmount" "$(node_pod_phase "$ns" job)" Succeeded
node_flex_logged_since 0 " unmount $NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$blk_pv" ||
    check_fail "the driver log has no unmount call for the completed pod"
check_eq "mounts of $blk_pv and $fil_pv" "$(($(node_mount_count "$blk_pv") + $(node_mount_count "$fil_pv")))" 0
log_step "job Succeeded and still exists; both claims unmounted, $blk_volume released"

node_delete_pod "$ns" job
node_claims_released "$ns" blk fil
node_scenario_end "$ns"
