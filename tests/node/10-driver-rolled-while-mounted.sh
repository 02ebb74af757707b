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
scenario_begin "10 DaemonSet rolled to a new driver build while volumes are mounted"

ns=node-10
scenario_claims "$ns"
create_pvc "$ns" later pure-block 1Gi
wait_pvc_bound "$ns" later

run_pod "$ns" app "$WRITE_SCRIPT" blk fil
wait_pod_log "$ns" app ready
uid="$(pod_uid "$ns" app)"
container="$(kubectl -n "$ns" get pod app -o 'jsonpath={.status.containerStatuses[0].containerID}')"
driver="$NODE_PLUGIN_DIR/pure~flex/flex"
old_sum="$(sha256sum "$driver" | cut -d' ' -f1)"
kubelet_pid="$(cat "$NODE_STATE/pids/kubelet")"
# kubelet logs this each time its prober (re)loads the driver from the plugin dir.
loads() { grep -c 'Loaded volume plugin.*pure/flex' "$NODE_STATE/logs/kubelet.log" || true; }
loads_before="$(loads)"

tag="$NODE_FLASHVOL_IMAGE_TAG-roll$$"
new_sum="$(flashvol_image_rebuilt "$tag")"
[[ "$new_sum" != "$old_sum" ]] || fail "the rebuilt driver is the installed one"
step "helm upgrade --reuse-values --set image.tag=$tag"
helm upgrade "$NODE_RELEASE" "$NODE_CHART" -n "$NODE_SYSTEM_NAMESPACE" --reuse-values \
    --set "image.tag=$tag" >>"$NODE_STATE/logs/helm.log" 2>&1 || fail "helm upgrade failed: $(tail -n 3 "$NODE_STATE/logs/helm.log")"
installed_is_new() { [[ "$(sha256sum "$driver" | cut -d' ' -f1)" == "$new_sum" ]]; }
wait_for "$NODE_TIMEOUT" "the new DaemonSet pod to install the new driver" installed_is_new
kubectl -n "$NODE_SYSTEM_NAMESPACE" rollout status daemonset/pure-flex --timeout="${NODE_TIMEOUT}s" >/dev/null ||
    fail "the DaemonSet did not roll out"
reprobed() { (($(loads) > loads_before)); }
wait_for "$NODE_TIMEOUT" "kubelet to load the driver again (\"Loaded volume plugin\" pure/flex)" reprobed
step "the new build is installed at $driver (sha256 ${new_sum:0:12}…); kubelet re-probed it"

expect_eq "container of app after the roll" "$(kubectl -n "$ns" get pod app -o 'jsonpath={.status.containerStatuses[0].containerID}')" "$container"
for claim in blk fil; do
    dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$(pv_of "$ns" "$claim")"
    expect_eq "mounts at $claim's pod dir after the roll" "$(mounts_at "$dir")" 1
    expect_eq "sha256 of $claim after the roll" \
        "$(pod_exec "$ns" app sh -c "sha256sum /data/$claim/payload | cut -d' ' -f1")" "$(pod_log_value "$ns" app "sha-$claim")"
done
step "pod app untouched: same container, one mount per volume, data readable"

log_mark="$(flex_log_lines)"
run_pod "$ns" next "$WRITE_SCRIPT" later
wait_pod_log "$ns" next ready
flex_logged_since "$log_mark" " mount $NODE_KUBELET_ROOT/pods/$(pod_uid "$ns" next)/volumes/pure~flex/$(pv_of "$ns" later) " ||
    fail "no mount call for pod next after the roll"
installed_is_new || fail "the driver changed again"
log_mark="$(flex_log_lines)"
delete_pod "$ns" app
flex_logged_since "$log_mark" "released $blk_volume ($blk_pv)" || fail "the new build did not release $blk_volume"
expect_eq "kubelet's pid (never restarted)" "$(cat "$NODE_STATE/pids/kubelet")" "$kubelet_pid"
step "the next mount (pod next) and unmount (pod app) ran the new build; kubelet not restarted"

delete_pod "$ns" next
claims_released "$ns" blk fil later
scenario_end "$ns"
