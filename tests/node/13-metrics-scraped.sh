#!/usr/bin/env bash
# The pods' /metrics on the real node, scraped as Prometheus scrapes them (pod IP and the
# container port the chart's PodMonitor / ServiceMonitor name, which the pods' prometheus.io
# annotations agree with; Prometheus' Accept header; a format it parses): the DaemonSet
# pod (the node installer) counts exactly the mount and unmount call-outs kubelet made for a
# pod's volume, failed mounts by reason included; the provisioner pod serves the arrays
# (reachable, capacity, our volumes per array) and the claims pending by class and reason, and
# an array that stops answering goes to reachable 0 and back.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "13 the node's and the provisioner's /metrics scraped as Prometheus does: kubelet's call-outs, arrays, claims"
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; sim_faults fa-b "{}" 2>/dev/null || true; scenario_on_exit "$rc"' EXIT

ns=node-13
dir="$NODE_STATE/scrapes"
mkdir -p "$dir"
node_url="$(scrape_target "$NODE_SYSTEM_NAMESPACE" app=pure-flex metrics)" ||
    fail "no Running pure-flex pod with a container port named metrics (monitoring.nodeMetrics)"
prov_url="$(scrape_target "$NODE_SYSTEM_NAMESPACE" app=pure-provisioner http)" ||
    fail "no Running pure-provisioner pod with a container port named http"
# node_scrape / prov_scrape NAME: one scrape into $dir/NAME.
node_scrape() { scrape "$node_url" "$dir/$1" || fail "scrape of $node_url failed: $(cat "$dir/$1.headers" 2>/dev/null)"; }
prov_scrape() { scrape "$prov_url" "$dir/$1" || fail "scrape of $prov_url failed: $(cat "$dir/$1.headers" 2>/dev/null)"; }
# value NAME SAMPLE [LABEL=VALUE...]: the sample's value in scrape NAME as a plain integer; fails
# when there is no such sample (every series read here exists from the start, zeros included).
value() {
    local name="$1" v
    shift
    v="$(sample "$dir/$name" "$@")"
    [[ -n "$v" ]] || fail "no sample $* in the scrape $name"
    awk -v v="$v" 'BEGIN { printf "%.0f\n", v }'
}
# prov_shows SAMPLE EXPECTED [LABEL=VALUE...]: a fresh scrape of the provisioner has that value.
prov_shows() {
    local metric="$1" expected="$2"
    shift 2
    scrape "$prov_url" "$dir/poll" && [[ "$(value poll "$metric" "$@")" == "$expected" ]]
}
expect_eq "annotated target of the pure-flex pod" "$(annotated_target "$NODE_SYSTEM_NAMESPACE" app=pure-flex)" "$node_url"
expect_eq "annotated target of the pure-provisioner pod" "$(annotated_target "$NODE_SYSTEM_NAMESPACE" app=pure-provisioner)" "$prov_url"
step "targets as the monitors and the prometheus.io annotations resolve them: node $node_url, provisioner $prov_url"

ep_a="$(sim_field fa-a endpoint)" ep_b="$(sim_field fa-b endpoint)" ep_f="$(sim_field fb-1 endpoint)"
prov_scrape before
expect_eq "flashvol_leader of the provisioner pod" "$(value before flashvol_leader)" 1
# The capacities the simulator is started with (flashvol.sh, sim_start): 64G per FlashArray, 1T.
for spec in "$ep_a block $((64 << 30))" "$ep_b block $((64 << 30))" "$ep_f file $((1 << 40))"; do
    read -r ep backend capacity <<<"$spec"
    wait_for "$NODE_TIMEOUT" "flashvol_array_reachable 1 for $ep" prov_shows flashvol_array_reachable 1 "array=$ep" "backend=$backend"
    expect_eq "flashvol_array_capacity_bytes of $ep" "$(value poll flashvol_array_capacity_bytes "array=$ep" "backend=$backend")" "$capacity"
    (($(value poll flashvol_array_last_contact_timestamp_seconds "array=$ep") > 0)) || fail "no last contact time for $ep"
done
step "provisioner: leader; fa-a, fa-b, fb-1 reachable with their capacities and a last contact time"

volumes_a="$(value before flashvol_volumes "array=$ep_a")"
placement="$(value before flashvol_claims_pending class=pure-block reason=placement)"
make_namespace "$ns"
create_pvc "$ns" blk pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
create_pvc "$ns" down pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
# No array has rack=z: the claim stays pending, its passes failing with reason placement.
create_pvc "$ns" nowhere pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"z"}}'
wait_pvc_bound "$ns" blk
wait_pvc_bound "$ns" down
blk_pv="$(pv_of "$ns" blk)" down_pv="$(pv_of "$ns" down)"
wait_for "$NODE_TIMEOUT" "flashvol_volumes of fa-a to count claim blk" prov_shows flashvol_volumes "$((volumes_a + 1))" "array=$ep_a"
wait_for "$NODE_TIMEOUT" "flashvol_claims_pending{reason=placement} to count claim nowhere" \
    prov_shows flashvol_claims_pending "$((placement + 1))" class=pure-block reason=placement
step "claims: blk counted in flashvol_volumes{array=fa-a}; nowhere pending with reason placement"

node_scrape mount-0
log_mark="$(flex_log_lines)"
run_pod "$ns" app "$WRITE_SCRIPT" blk
wait_pod_log "$ns" app ready
pod_dir="$(pod_volume_dir "$ns" app "$blk_pv")"
# The driver counts a call before it replies, so every call kubelet made for the pod is in the file.
node_scrape mount-1
calls="$(flex_count_since "$log_mark" " mount $pod_dir ")"
all_calls="$(grep -cE ' (un)?mount /' <<<"$(flex_log_since "$log_mark")" || true)"
((calls >= 1)) || fail "the driver log has no mount call-out for $pod_dir"
expect_eq "call-outs logged since the pod was created (all for its volume)" "$all_calls" "$calls"
for metric in "flashvol_flex_calls_total callout=mount reason=success" \
    "flashvol_flex_call_duration_seconds_count callout=mount outcome=success"; do
    read -r -a m <<<"$metric"
    expect_eq "increase of ${m[*]}" "$(($(value mount-1 "${m[@]}") - $(value mount-0 "${m[@]}")))" "$calls"
done
expect_eq "flashvol_flex_stats_readable" "$(value mount-1 flashvol_flex_stats_readable)" 1
step "node: $calls mount call-out(s) of kubelet for app's volume, counted as success with a duration"

log_mark="$(flex_log_lines)"
delete_pod "$ns" app
node_scrape unmount-1
calls="$(grep -cE " unmount $pod_dir\$" <<<"$(flex_log_since "$log_mark")" || true)"
expect_eq "kubelet's unmount call-outs for app's volume" "$calls" 1
for metric in "flashvol_flex_calls_total callout=unmount reason=success" \
    "flashvol_flex_call_duration_seconds_count callout=unmount outcome=success"; do
    read -r -a m <<<"$metric"
    expect_eq "increase of ${m[*]}" "$(($(value unmount-1 "${m[@]}") - $(value mount-1 "${m[@]}")))" 1
done
step "node: kubelet's unmount call-out counted"

step "fa-b drops every call: mounts of a pod on claim down fail (counted by reason), fa-b unreachable"
sim_faults fa-b '{"drop_rate": 1.0}'
log_mark="$(flex_log_lines)"
run_pod "$ns" late "$WRITE_SCRIPT" down
wait_for "$NODE_TIMEOUT" "a FailedMount event on pod late" pod_has_event "$ns" late FailedMount
wait_for "$NODE_TIMEOUT" "flashvol_array_reachable 0 for fa-b" prov_shows flashvol_array_reachable 0 "array=$ep_b"
[[ "$(value poll flashvol_array_reachable "array=$ep_a")" == 1 ]] || fail "fa-a reported unreachable while only fa-b drops calls"
sim_faults fa-b '{}'
wait_pod_log "$ns" late ready 180
node_scrape failed-1
late_dir="$(pod_volume_dir "$ns" late "$down_pv")"
failed="$(flex_count_since "$log_mark" " mount $late_dir: ")"
((failed >= 1)) || fail "the driver logged no failed mount of $late_dir"
expect_eq "increase of flashvol_flex_calls_total{callout=mount,reason=refused}" \
    "$(($(value failed-1 flashvol_flex_calls_total callout=mount reason=refused) - $(value unmount-1 flashvol_flex_calls_total callout=mount reason=refused)))" "$failed"
expect_eq "increase of flashvol_flex_call_duration_seconds_count{callout=mount,outcome=failure}" \
    "$(($(value failed-1 flashvol_flex_call_duration_seconds_count callout=mount outcome=failure) - $(value unmount-1 flashvol_flex_call_duration_seconds_count callout=mount outcome=failure)))" "$failed"
wait_for "$NODE_TIMEOUT" "flashvol_array_reachable 1 for fa-b again" prov_shows flashvol_array_reachable 1 "array=$ep_b"
step "node: $failed failed mount(s) counted with reason refused (the driver cannot tell which array holds the volume); provisioner: fa-b reachable 0, then 1 again"

delete_pod "$ns" late
kubectl -n "$ns" delete pvc nowhere --wait=true >/dev/null
wait_for "$NODE_TIMEOUT" "flashvol_claims_pending{reason=placement} back to $placement" \
    prov_shows flashvol_claims_pending "$placement" class=pure-block reason=placement
claims_released "$ns" blk down
wait_for "$NODE_TIMEOUT" "flashvol_volumes of fa-a back to $volumes_a" prov_shows flashvol_volumes "$volumes_a" "array=$ep_a"
step "claims gone: pending and volume counts back"
scenario_end "$ns"
