#!/usr/bin/env bash
# The DaemonSet is rolled to a new driver build (helm upgrade with a new image tag, as a user
# upgrades) while a pod has volumes mounted: the new DaemonSet pod replaces the driver in kubelet's
# plugin dir, the mounted pod is untouched (same container, same mounts, data readable), and the
# next mount and unmount run the new build (the only driver file there is), without a kubelet
# restart.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NODE_DIR/node.sh"
. "$NODE_DIR/flashvol.sh"
node_scenario_begin "10 DaemonSet rolled to a new driver build while volumes are mounted"

ns=node-10
node_scenario_claims "$ns"
kube_create_pvc "$ns" later pure-block 1Gi
kube_wait_bound "$ns" later

node_run_pod "$ns" app "$NODE_WRITE_SCRIPT" blk fil
node_wait_pod_log "$ns" app ready
uid="$(node_pod_uid "$ns" app)"
container="$(kubectl -n "$ns" get pod app -o 'jsonpath={.status.containerStatuses[0].containerID}')"
driver="$NODE_PLUGIN_DIR/pure~flex/flex"
old_sum="$(sha256sum "$driver" | cut -d' ' -f1)"
kubelet_pid="$(cat "$NODE_STATE/pids/kubelet")"
# kubelet logs this each time its prober (re)loads the driver from the plugin dir.
loads() { grep -c 'Loaded volume plugin.*pure/flex' "$NODE_STATE/logs/kubelet.log" || true; }
loads_before="$(loads)"

tag="$NODE_FLASHVOL_IMAGE_TAG-roll$$"
new_sum="$(flashvol_image_rebuilt "$tag")"
[[ "$new_sum" != "$old_sum" ]] || check_fail "the rebuilt driver is the installed one"
log_step "helm upgrade --reuse-values --set image.tag=$tag"
flashvol_upgrade "image.tag=$tag" || check_fail "helm upgrade failed"
installed_is_new() { [[ "$(sha256sum "$driver" | cut -d' ' -f1)" == "$new_sum" ]]; }
check_within "$NODE_TIMEOUT" "the new DaemonSet pod to install the new driver" installed_is_new
kubectl -n "$NODE_SYSTEM_NAMESPACE" rollout status daemonset/pure-flex --timeout="${NODE_TIMEOUT}s" >/dev/null ||
    check_fail "the DaemonSet did not roll out"
reprobed() { (($(loads) > loads_before)); }
check_within "$NODE_TIMEOUT" "kubelet to load the driver again (\"Loaded volume plugin\" pure/flex)" reprobed
log_step "the new build is installed at $driver (sha256 ${new_sum:0:12}…); kubelet re-probed it"

check_eq "container of app after the roll" "$(kubectl -n "$ns" get pod app -o 'jsonpath={.status.containerStatuses[0].containerID}')" "$container"
for claim in blk fil; do
    dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$(kube_pv_of "$ns" "$claim")"
    check_eq "mounts at $claim's pod dir after the roll" "$(node_mounts_at "$dir")" 1
    check_eq "sha256 of $claim after the roll" \
        "$(node_pod_exec "$ns" app sh -c "sha256sum /data/$claim/payload | cut -d' ' -f1")" "$(node_pod_log_value "$ns" app "sha-$claim")"
done
log_step "pod app untouched: same container, one mount per volume, data readable"

log_mark="$(node_flex_log_lines)"
node_run_pod "$ns" next "$NODE_WRITE_SCRIPT" later
node_wait_pod_log "$ns" next ready
node_flex_logged_since "$log_mark" " mount $NODE_KUBELET_ROOT/pods/$(node_pod_uid "$ns" next)/volumes/pure~flex/$(kube_pv_of "$ns" later) " ||
    check_fail "no mount call for pod next after the roll"
installed_is_new || check_fail "the driver changed again"
log_mark="$(node_flex_log_lines)"
node_delete_pod "$ns" app
node_flex_logged_since "$log_mark" "released $blk_volume ($blk_pv)" || check_fail "the new build did not release $blk_volume"
check_eq "kubelet's pid (never restarted)" "$(cat "$NODE_STATE/pids/kubelet")" "$kubelet_pid"
log_step "the next mount (pod next) and unmount (pod app) ran the new build; kubelet not restarted"

node_delete_pod "$ns" next
node_claims_released "$ns" blk fil later
node_scenario_end "$ns"
