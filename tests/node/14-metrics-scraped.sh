#!/usr/bin/env bash
# The pods' /metrics on the real node, scraped as Prometheus scrapes them (pod IP and the
# container port the chart's PodMonitor / ServiceMonitor name, which the pods' prometheus.io
# annotations agree with; Prometheus' Accept header; a format it parses): the DaemonSet
# pod (the node installer) counts exactly the mount and unmount call-outs kubelet made for a
# pod's volume, failed mounts by reason included, and its own runs of the driver's collect; the
# provisioner pod serves the arrays (reachable, capacity, our volumes per array) and the claims
# pending by class and reason, and an array that stops answering goes to reachable 0 and back.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "14 the node's and the provisioner's /metrics scraped as Prometheus does: kubelet's call-outs, arrays, claims"
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; sim_set_faults_on fa-b "{}" 2>/dev/null || true; node_scenario_on_exit "$rc"' EXIT

ns=node-14
dir="$NODE_STATE/scrapes"
mkdir -p "$dir"
node_url="$(node_scrape_target "$NODE_SYSTEM_NAMESPACE" app=pure-flex metrics)" ||
    check_fail "no Running pure-flex pod with a container port named metrics (monitoring.nodeMetrics)"
prov_url="$(node_scrape_target "$NODE_SYSTEM_NAMESPACE" app=pure-provisioner http)" ||
    check_fail "no Running pure-provisioner pod with a container port named http"
# scrape_flex_pod / scrape_provisioner_pod NAME: one scrape into $dir/NAME.
scrape_flex_pod() { node_scrape "$node_url" "$dir/$1" || check_fail "scrape of $node_url failed: $(cat "$dir/$1.headers" 2>/dev/null)"; }
scrape_provisioner_pod() { node_scrape "$prov_url" "$dir/$1" || check_fail "scrape of $prov_url failed: $(cat "$dir/$1.headers" 2>/dev/null)"; }
# value NAME SAMPLE [LABEL=VALUE...]: the sample's value in scrape NAME as a plain integer; fails
# when there is no such sample (every series read here exists from the start, zeros included).
value() {
    local name="$1" v
    shift
    v="$(node_sample "$dir/$name" "$@")"
    [[ -n "$v" ]] || check_fail "no sample $* in the scrape $name"
    awk -v v="$v" 'BEGIN { printf "%.0f\n", v }'
}
# provisioner_shows SAMPLE EXPECTED [LABEL=VALUE...]: a fresh scrape of the provisioner has that value.
provisioner_shows() {
    local metric="$1" expected="$2"
    shift 2
    node_scrape "$prov_url" "$dir/poll" && [[ "$(value poll "$metric" "$@")" == "$expected" ]]
}
check_eq "annotated target of the pure-flex pod" "$(node_annotated_target "$NODE_SYSTEM_NAMESPACE" app=pure-flex)" "$node_url"
check_eq "annotated target of the pure-provisioner pod" "$(node_annotated_target "$NODE_SYSTEM_NAMESPACE" app=pure-provisioner)" "$prov_url"
log_step "targets as the monitors and the prometheus.io annotations resolve them: node $node_url, provisioner $prov_url"

ep_a="$(sim_field fa-a endpoint)" ep_b="$(sim_field fa-b endpoint)" ep_f="$(sim_field fb-1 endpoint)"
scrape_provisioner_pod before
check_eq "flashvol_leader of the provisioner pod" "$(value before flashvol_leader)" 1
# The capacities the simulator is started with (flashvol.sh, sim_start): 64G per FlashArray, 1T.
for spec in "$ep_a block $((64 << 30))" "$ep_b block $((64 << 30))" "$ep_f file $((1 << 40))"; do
    read -r ep backend capacity <<<"$spec"
    check_within "$NODE_TIMEOUT" "flashvol_array_reachable 1 for $ep" provisioner_shows flashvol_array_reachable 1 "array=$ep" "backend=$backend"
    check_eq "flashvol_array_capacity_bytes of $ep" "$(value poll flashvol_array_capacity_bytes "array=$ep" "backend=$backend")" "$capacity"
    (($(value poll flashvol_array_last_contact_timestamp_seconds "array=$ep") > 0)) || check_fail "no last contact time for $ep"
done
log_step "provisioner: leader; fa-a, fa-b, fb-1 reachable with their capacities and a last contact time"

volumes_a="$(value before flashvol_volumes "array=$ep_a")"
placement="$(value before flashvol_claims_pending class=pure-block reason=placement)"
node_make_namespace "$ns"
kube_create_pvc "$ns" blk pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_create_pvc "$ns" down pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
# No array has rack=z: the claim stays pending, its passes failing with reason placement.
kube_create_pvc "$ns" nowhere pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"z"}}'
kube_wait_bound "$ns" blk
kube_wait_bound "$ns" down
blk_pv="$(kube_pv_of "$ns" blk)" down_pv="$(kube_pv_of "$ns" down)"
check_within "$NODE_TIMEOUT" "flashvol_volumes of fa-a to count claim blk" provisioner_shows flashvol_volumes "$((volumes_a + 1))" "array=$ep_a"
check_within "$NODE_TIMEOUT" "flashvol_claims_pending{reason=placement} to count claim nowhere" \
    provisioner_shows flashvol_claims_pending "$((placement + 1))" class=pure-block reason=placement
log_step "claims: blk counted in flashvol_volumes{array=fa-a}; nowhere pending with reason placement"

scrape_flex_pod mount-0
# The installer ran the driver's collect when it started (hostPID lets it see kubelet), and that
# run is counted like kubelet's call-outs.
(($(value mount-0 flashvol_flex_calls_total callout=collect reason=success) >= 1)) ||
    check_fail "the installer's collect at start is not counted: $(grep 'callout="collect"' "$dir/mount-0" | tr '\n' ' ')"
log_mark="$(node_flex_log_lines)"
node_run_pod "$ns" app "$NODE_WRITE_SCRIPT" blk
node_wait_pod_log "$ns" app ready
pod_dir="$(node_pod_volume_dir "$ns" app "$blk_pv")"
# The driver counts a call before it replies, so every call kubelet made for the pod is in the file.
scrape_flex_pod mount-1
calls="$(node_flex_count_since "$log_mark" " mount $pod_dir ")"
all_calls="$(grep -cE ' (un)?mount /' <<<"$(node_flex_log_since "$log_mark")" || true)"
((calls >= 1)) || check_fail "the driver log has no mount call-out for $pod_dir"
check_eq "call-outs logged since the pod was created (all for its volume)" "$all_calls" "$calls"
for metric in "flashvol_flex_calls_total callout=mount reason=success" \
    "flashvol_flex_call_duration_seconds_count callout=mount outcome=success"; do
    read -r -a m <<<"$metric"
    check_eq "increase of ${m[*]}" "$(($(value mount-1 "${m[@]}") - $(value mount-0 "${m[@]}")))" "$calls"
done
check_eq "flashvol_flex_stats_readable" "$(value mount-1 flashvol_flex_stats_readable)" 1
log_step "node: the installer's collect counted; $calls mount call-out(s) of kubelet for app's volume, counted as success with a duration"

log_mark="$(node_flex_log_lines)"
node_delete_pod "$ns" app
scrape_flex_pod unmount-1
calls="$(grep -cE " unmount $pod_dir\$" <<<"$(node_flex_log_since "$log_mark")" || true)"
check_eq "kubelet's unmount call-outs for app's volume" "$calls" 1
for metric in "flashvol_flex_calls_total callout=unmount reason=success" \
    "flashvol_flex_call_duration_seconds_count callout=unmount outcome=success"; do
    read -r -a m <<<"$metric"
    check_eq "increase of ${m[*]}" "$(($(value unmount-1 "${m[@]}") - $(value mount-1 "${m[@]}")))" 1
done
log_step "node: kubelet's unmount call-out counted"

log_step "fa-b drops every call: mounts of a pod on claim down fail (counted by reason), fa-b unreachable"
sim_set_faults_on fa-b '{"drop_rate": 1.0}'
log_mark="$(node_flex_log_lines)"
node_run_pod "$ns" late "$NODE_WRITE_SCRIPT" down
node_failed_mount "$ns" late "$down_pv" >/dev/null
check_within "$NODE_TIMEOUT" "flashvol_array_reachable 0 for fa-b" provisioner_shows flashvol_array_reachable 0 "array=$ep_b"
[[ "$(value poll flashvol_array_reachable "array=$ep_a")" == 1 ]] || check_fail "fa-a reported unreachable while only fa-b drops calls"
sim_set_faults_on fa-b '{}'
node_wait_pod_log "$ns" late ready 180
scrape_flex_pod failed-1
late_dir="$(node_pod_volume_dir "$ns" late "$down_pv")"
failed="$(node_flex_count_since "$log_mark" " mount $late_dir: ")"
((failed >= 1)) || check_fail "the driver logged no failed mount of $late_dir"
check_eq "increase of flashvol_flex_calls_total{callout=mount,reason=array}" \
    "$(($(value failed-1 flashvol_flex_calls_total callout=mount reason=array) - $(value unmount-1 flashvol_flex_calls_total callout=mount reason=array)))" "$failed"
check_eq "increase of flashvol_flex_call_duration_seconds_count{callout=mount,outcome=failure}" \
    "$(($(value failed-1 flashvol_flex_call_duration_seconds_count callout=mount outcome=failure) - $(value unmount-1 flashvol_flex_call_duration_seconds_count callout=mount outcome=failure)))" "$failed"
check_within "$NODE_TIMEOUT" "flashvol_array_reachable 1 for fa-b again" provisioner_shows flashvol_array_reachable 1 "array=$ep_b"
log_step "node: $failed failed mount(s) counted with reason array (the driver cannot tell which array holds the volume: fa-b does not answer); provisioner: fa-b reachable 0, then 1 again"

node_delete_pod "$ns" late
kubectl -n "$ns" delete pvc nowhere --wait=true >/dev/null
check_within "$NODE_TIMEOUT" "flashvol_claims_pending{reason=placement} back to $placement" \
    provisioner_shows flashvol_claims_pending "$placement" class=pure-block reason=placement
node_claims_released "$ns" blk down
check_within "$NODE_TIMEOUT" "flashvol_volumes of fa-a back to $volumes_a" provisioner_shows flashvol_volumes "$volumes_a" "array=$ep_a"
log_step "claims gone: pending and volume counts back"
node_scenario_end "$ns"
