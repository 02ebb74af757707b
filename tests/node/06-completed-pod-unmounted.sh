#!/usr/bin/env bash
# A pod that runs to completion (restartPolicy: Never) keeps its object, but kubelet tears its
# volumes down at once: while `kubectl get pod` still shows it Succeeded, the driver has unmounted
# both claims and released the block volume.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "06 a completed pod is unmounted while it still exists"

ns=node-06
scenario_claims "$ns"

# shellcheck disable=SC2016
run_pod "$ns" job 'for d in /data/*; do echo done > "$d/result"; done; sync' blk fil -- '{"spec":{"restartPolicy":"Never"}}'
wait_for "$NODE_TIMEOUT" "pod job to succeed" pod_phase_is "$ns" job Succeeded
uid="$(pod_uid "$ns" job)"
unmounted() {
    ! is_mount_point "$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$blk_pv" &&
        ! is_mount_point "$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$fil_pv" &&
        not_connected "$blk_array" "$blk_volume"
}
wait_for "$NODE_TIMEOUT" "kubelet to unmount the completed pod's volumes" unmounted
expect_eq "phase of pod job after the unmount" "$(pod_phase "$ns" job)" Succeeded
flex_logged_since 0 " unmount $NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$blk_pv" ||
    fail "the driver log has no unmount call for the completed pod"
expect_eq "mounts of $blk_pv and $fil_pv" "$(($(mount_count "$blk_pv") + $(mount_count "$fil_pv")))" 0
step "job Succeeded and still exists; both claims unmounted, $blk_volume released"

delete_pod "$ns" job
claims_released "$ns" blk fil
scenario_end "$ns"
