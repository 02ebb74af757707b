#!/usr/bin/env bash
# kubelet restarts while a pod uses a block and a file claim: the container keeps running (same
# container, no restart), there is still exactly one mount at each pod volume dir (kubelet 1.24
# calls `mount` again for volumes it reconstructs: the driver must answer without stacking a
# second mount), the pod still reads and writes, and a later delete unmounts and releases once.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NODE_DIR/node.sh"
node_scenario_begin "07 kubelet restarted while a pod uses volumes: container untouched, one mount, one release"

ns=node-07
node_scenario_claims "$ns"

node_run_pod "$ns" app "$NODE_WRITE_SCRIPT" blk fil
node_wait_pod_log "$ns" app ready
uid="$(node_pod_uid "$ns" app)"
container="$(kubectl -n "$ns" get pod app -o 'jsonpath={.status.containerStatuses[0].containerID}')"
declare -A sum
for claim in blk fil; do sum[$claim]="$(node_pod_log_value "$ns" app "sha-$claim")"; done

log_step "restart kubelet"
log_mark="$(node_flex_log_lines)"
node_kubelet_stop
node_kubelet_start
node_wait_ready
# kubelet reconstructs the pod's volumes and reports the pod again; give its volume manager a
# few reconcile rounds (it acts every 100 ms) before looking.
check_within "$NODE_LONG_TIMEOUT" "pod app to be reported Ready again" kubectl -n "$ns" wait pod/app --for=condition=Ready --timeout=1s
sleep 10
check_eq "container of app after the restart" "$(kubectl -n "$ns" get pod app -o 'jsonpath={.status.containerStatuses[0].containerID}')" "$container"
check_eq "restarts of app's container" "$(node_pod_restarts "$ns" app)" 0
for claim in blk fil; do
    pv="$(kube_pv_of "$ns" "$claim")"
    dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$pv"
    check_eq "mounts at $claim's pod dir after the restart" "$(node_mounts_at "$dir")" 1
    check_eq "sha256 of $claim after the restart" \
        "$(node_pod_exec "$ns" app sh -c "sha256sum /data/$claim/payload | cut -d' ' -f1")" "${sum[$claim]}"
    check_eq "writing to $claim after the restart" \
        "$(node_pod_exec "$ns" app sh -c "echo after > /data/$claim/after && sync && cat /data/$claim/after")" after
done
again="$(node_flex_count_since "$log_mark" " mount $NODE_KUBELET_ROOT/pods/$uid/")"
errors="$(grep -F ' ERROR ' <<<"$(node_flex_log_since "$log_mark")" || true)"
[[ -z "$errors" ]] || check_fail "the driver failed calls after the restart: $errors"
check_eq "mounts of $blk_pv (staging + the pod's bind)" "$(node_mount_count "$blk_pv")" 2
log_step "same container, no restart, one mount per pod dir, data intact and writable (kubelet re-called mount $again time(s))"

log_mark="$(node_flex_log_lines)"
node_delete_pod "$ns" app "$NODE_LONG_TIMEOUT"
check_eq "times $blk_volume was released" "$(node_flex_count_since "$log_mark" "released $blk_volume ($blk_pv)")" 1
sim_not_connected "$blk_array" "$blk_volume" || check_fail "$blk_volume is still connected"
log_step "delete --wait: unmounted and released once"

node_claims_released "$ns" blk fil
node_scenario_end "$ns"
