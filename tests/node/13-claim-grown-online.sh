#!/usr/bin/env bash
# A block claim grown while a real pod uses it. The user raises the claim's request; the
# controller manager raises the PV itself (flex PVs get its no-op expander) and marks the claim;
# the provisioner pod grows the FlashArray volume; the real kubelet calls the installed driver's
# `expandfs` on the running pod's volume (rescan: the fabric's loop device takes the new length;
# xfs_growfs). `df` in the pod shows the grown file system, the data is intact, the container was
# not restarted, and kubelet sets the claim's capacity and clears its conditions. kubelet reports
# kubelet_volume_stats_* for the claim (the driver's supportsMetrics), and they follow the growth.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "13 a block claim grown under a running pod: array volume and xfs grown online, data intact, capacity and volume stats follow"

ns=node-13
gib=$((1 << 30))
check_eq "allowVolumeExpansion of the chart's pure-block class" \
    "$(kubectl get storageclass pure-block -o 'jsonpath={.allowVolumeExpansion}')" true
node_make_namespace "$ns"
kube_create_pvc "$ns" grow pure-block 1Gi
kube_wait_bound "$ns" grow
pv="$(kube_pv_of "$ns" grow)"
volume="$(kube_array_name_of_pv "$pv")"
array="$(sim_array_holding "$volume")" || check_fail "$volume is on no array"
check_eq "size of $volume on $array" "$(sim_object_size "$array" "$volume")" "$gib"

node_run_pod "$ns" app "$NODE_WRITE_SCRIPT" grow
node_wait_pod_running "$ns" app
node_wait_pod_log "$ns" app ready
sum="$(node_pod_log_value "$ns" app sha-grow)"
[[ "$sum" =~ ^[0-9a-f]{64}$ ]] || check_fail "app printed no checksum"
before="$(node_pod_df_bytes "$ns" app /data/grow)"
((before > 0 && before <= gib)) || check_fail "df in the pod shows $before bytes for a 1 GiB volume"
log_step "pod app wrote 4 MiB to $volume on $array; df in the pod shows $before bytes"

stat_capacity() { node_kubelet_volume_stat kubelet_volume_stats_capacity_bytes "$ns" grow; }
stat_capacity_over() { local v; v="$(stat_capacity)"; [[ -n "$v" ]] && ((v > $1)); }
check_within "$NODE_TIMEOUT" "kubelet_volume_stats_capacity_bytes for $ns/grow" stat_capacity_over 0
used="$(node_kubelet_volume_stat kubelet_volume_stats_used_bytes "$ns" grow)"
{ [[ -n "$used" ]] && ((used >= 4 << 20)); } || check_fail "kubelet_volume_stats_used_bytes for $ns/grow is '$used', not the 4 MiB written"
check_eq "kubelet_volume_stats_capacity_bytes vs df in the pod" "$(stat_capacity)" "$before"
log_step "kubelet's metrics endpoint reports the claim: capacity $before bytes, used $used bytes"

log_mark="$(node_flex_log_lines)"
log_step "raise the claim's request to 3Gi while app runs"
kube_resize_pvc "$ns" grow 3Gi >/dev/null
check_within "$NODE_TIMEOUT" "$volume on $array to grow to 3 GiB" sim_object_size_is "$array" "$volume" $((3 * gib))
check_within "$NODE_TIMEOUT" "event FileSystemResizeRequired on $ns/grow" kube_has_event "$ns" grow FileSystemResizeRequired
check_eq "PV $pv's capacity" "$(kube_pv_capacity "$pv")" 3Gi
log_step "the provisioner pod grew $volume to 3 GiB ($(kube_events_for "$ns" grow Resizing | head -n 1))"

check_within "$NODE_TIMEOUT" "kubelet to set $ns/grow's capacity to 3Gi" kube_pvc_capacity_is "$ns" grow 3Gi
calls="$(node_flex_log_since "$log_mark" | grep -F "expandfs " || true)"
[[ -n "$calls" ]] || check_fail "the driver log shows no expandfs call from kubelet"
# Only the resize conditions must go: 1.37 also reports others (e.g. `Unused`).
left="$(kube_pvc_conditions "$ns" grow | tr ' ' '\n' | grep -E 'Resiz|ResizeError' || true)"
check_eq "$ns/grow's resize conditions after the resize" "$left" ""
after="$(node_pod_df_bytes "$ns" app /data/grow)"
((after > 2 * gib + gib / 2 && after <= 3 * gib)) || check_fail "df in the pod shows $after bytes after growing to 3 GiB"
check_eq "sha256 of the data after the resize" \
    "$(node_pod_exec "$ns" app sh -c "sha256sum /data/grow/payload | cut -d' ' -f1")" "$sum"
check_eq "restarts of app's container" "$(node_pod_restarts "$ns" app)" 0
check_eq "the pod's writes after the resize" \
    "$(node_pod_exec "$ns" app sh -c "echo after > /data/grow/after && sync && cat /data/grow/after")" after
log_step "kubelet called expandfs ($(tail -n 1 <<<"$calls" | sed 's/.*expandfs //'))"
log_step "df in the running pod shows $after bytes; data intact, no restart; the claim is 3Gi, no resize condition left"

check_within "$NODE_TIMEOUT" "kubelet_volume_stats_capacity_bytes for $ns/grow to follow" stat_capacity_over $((2 * gib))
check_eq "kubelet_volume_stats_capacity_bytes vs df in the pod" "$(stat_capacity)" "$after"
log_step "kubelet's metrics follow: capacity $after bytes"

node_delete_pod "$ns" app
node_claims_released "$ns" grow
node_scenario_end "$ns"
