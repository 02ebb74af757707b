#!/usr/bin/env bash
# The node "reboots" (node_power_cut: kubelet, containerd and containers killed, every mount and
# loop device gone, containerd and kubelet started again): the pod comes back on its own with
# its data, and the volume is not formatted again.
# Then the field failure PSO had (kubernetes#83803, pods stuck Terminating after reboots): the
# driver is also gone from kubelet's plugin dir at boot, so kubelet runs before the DaemonSet has
# put it back. Once the DaemonSet pod has reinstalled it, kubelet (not restarted) mounts the
# remaining pod's volume and finishes deleting the pod that was deleted meanwhile.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NODE_DIR/node.sh"
node_scenario_begin "09 node reboot: pods come back with their data, also when kubelet starts before the driver is reinstalled"

ns=node-09
node_scenario_claims "$ns"
kube_create_pvc "$ns" other pure-block 1Gi
kube_wait_bound "$ns" other
other_pv="$(kube_pv_of "$ns" other)"
other_volume="$(kube_array_name_of_pv "$other_pv")"
other_array="$(sim_array_holding "$other_volume")" || check_fail "$other_volume is on no array"

node_run_pod "$ns" keep "$NODE_WRITE_SCRIPT" blk fil
node_wait_pod_log "$ns" keep ready
declare -A sum
for claim in blk fil; do sum[$claim]="$(node_pod_log_value "$ns" keep "sha-$claim")"; done

# booted_again: containerd and kubelet started after a power cut.
booted_again() {
    node_containerd_start
    node_kubelet_start
    node_wait_ready
}
# data_intact POD: the pod runs again and reads both checksums back.
data_intact() {
    local claim
    node_pod_is_running "$ns" "$1" || return 1
    for claim in blk fil; do
        [[ "$(node_pod_exec "$ns" "$1" sh -c "sha256sum /data/$claim/payload | cut -d' ' -f1")" == "${sum[$claim]}" ]] || return 1
    done
}

log_step "power cut: kubelet, containerd and containers killed, mounts and LUNs gone"
log_mark="$(node_flex_log_lines)"
node_power_cut
check_eq "mounts under the kubelet root after the cut" "$(awk -v r="$NODE_KUBELET_ROOT" 'index($5, r) == 1' /proc/self/mountinfo | wc -l)" 0
check_eq "loop devices after the cut" "$(node_loop_devices | wc -l)" 0
booted_again
check_within "$NODE_LONG_TIMEOUT" "pod keep to run again with its data" data_intact keep
node_flex_logged_since "$log_mark" "formatting $blk_volume " && check_fail "$blk_volume was formatted again after the reboot"
node_flex_logged_since "$log_mark" "$blk_volume already has a xfs file system: not formatting" ||
    check_fail "the driver did not log finding $blk_volume's file system"
log_step "pod keep is back with its data (restarts: $(node_pod_restarts "$ns" keep)); not formatted again"

node_run_pod "$ns" leaving "$NODE_WRITE_SCRIPT" other
node_wait_pod_log "$ns" leaving ready
log_step "power cut with the driver gone from the plugin dir; pod leaving is deleted after boot"
node_power_cut
rm -rf "$NODE_PLUGIN_DIR/pure~flex"
node_containerd_start
node_kubelet_start
kubelet_pid="$(cat "$NODE_STATE/pids/kubelet")"
kubectl -n "$ns" delete pod leaving --wait=false >/dev/null
node_wait_ready
check_within "$NODE_TIMEOUT" "the DaemonSet pod to reinstall the driver" test -x "$NODE_PLUGIN_DIR/pure~flex/flex"
log_step "the DaemonSet pod reinstalled $NODE_PLUGIN_DIR/pure~flex/flex"
check_within "$NODE_LONG_TIMEOUT" "pod keep to run again with its data" data_intact keep
check_within "$NODE_LONG_TIMEOUT" "pod leaving to be deleted" node_pod_gone "$ns" leaving
check_eq "kubelet's pid (never restarted)" "$(cat "$NODE_STATE/pids/kubelet")" "$kubelet_pid"
unmatched="$(grep -c 'no volume plugin matched' "$NODE_STATE/logs/kubelet.log" || true)"
log_step "without a kubelet restart: keep is back with its data, leaving is gone (kubelet logged "no volume plugin matched" $unmatched time(s))"
# kubelet could not reconstruct leaving's volume without the driver and only removed its empty
# dir: nobody calls `unmount` for it, yet the volume must not stay connected to this node.
released() { sim_not_connected "$other_array" "$other_volume" && [[ ! -e "$(node_record_file "$other_pv")" ]]; }
deadline=$((SECONDS + 60))
until released || ((SECONDS > deadline)); do sleep 1; done
released || node_fail_later "$other_volume (pod leaving, deleted while the driver was missing) is still connected to this node or recorded 60s later"

node_delete_pod "$ns" keep
node_claims_released "$ns" blk fil other
node_scenario_end "$ns"
