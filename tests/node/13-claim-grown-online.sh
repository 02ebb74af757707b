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
scenario_begin "13 a block claim grown under a running pod: array volume and xfs grown online, data intact, capacity and volume stats follow"

ns=node-13
gib=$((1 << 30))
expect_eq "allowVolumeExpansion of the chart's pure-block class" \
    "$(kubectl get storageclass pure-block -o 'jsonpath={.allowVolumeExpansion}')" true
make_namespace "$ns"
create_pvc "$ns" grow pure-block 1Gi
wait_pvc_bound "$ns" grow
pv="$(pv_of "$ns" grow)"
volume="$(array_volume_of "$pv")"
array="$(array_holding "$volume")" || fail "$volume is on no array"
expect_eq "size of $volume on $array" "$(volume_size "$array" "$volume")" "$gib"

run_pod "$ns" app "$WRITE_SCRIPT" grow
wait_pod_running "$ns" app
wait_pod_log "$ns" app ready
sum="$(pod_log_value "$ns" app sha-grow)"
[[ "$sum" =~ ^[0-9a-f]{64}$ ]] || fail "app printed no checksum"
before="$(pod_df_bytes "$ns" app /data/grow)"
((before > 0 && before <= gib)) || fail "df in the pod shows $before bytes for a 1 GiB volume"
step "pod app wrote 4 MiB to $volume on $array; df in the pod shows $before bytes"

stat_capacity() { kubelet_volume_stat kubelet_volume_stats_capacity_bytes "$ns" grow; }
stat_capacity_over() { local v; v="$(stat_capacity)"; [[ -n "$v" ]] && ((v > $1)); }
wait_for "$NODE_TIMEOUT" "kubelet_volume_stats_capacity_bytes for $ns/grow" stat_capacity_over 0
used="$(kubelet_volume_stat kubelet_volume_stats_used_bytes "$ns" grow)"
{ [[ -n "$used" ]] && ((used >= 4 << 20)); } || fail "kubelet_volume_stats_used_bytes for $ns/grow is '$used', not the 4 MiB written"
expect_eq "kubelet_volume_stats_capacity_bytes vs df in the pod" "$(stat_capacity)" "$before"
step "kubelet's metrics endpoint reports the claim: capacity $before bytes, used $used bytes"

log_mark="$(flex_log_lines)"
step "raise the claim's request to 3Gi while app runs"
kubectl -n "$ns" patch pvc grow --type=merge -p '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}' >/dev/null
wait_for "$NODE_TIMEOUT" "$volume on $array to grow to 3 GiB" volume_size_is "$array" "$volume" $((3 * gib))
wait_for "$NODE_TIMEOUT" "event FileSystemResizeRequired on $ns/grow" pod_has_event "$ns" grow FileSystemResizeRequired
expect_eq "PV $pv's capacity" "$(kubectl get pv "$pv" -o 'jsonpath={.spec.capacity.storage}')" 3Gi
step "the provisioner pod grew $volume to 3 GiB ($(pod_events "$ns" grow Resizing | head -n 1))"

wait_for "$NODE_TIMEOUT" "kubelet to set $ns/grow's capacity to 3Gi" pvc_capacity_is "$ns" grow 3Gi
calls="$(flex_log_since "$log_mark" | grep -F "expandfs " || true)"
[[ -n "$calls" ]] || fail "the driver log shows no expandfs call from kubelet"
# Only the resize conditions must go: 1.37 also reports others (e.g. `Unused`).
left="$(pvc_conditions "$ns" grow | tr ' ' '\n' | grep -E 'Resiz|ResizeError' || true)"
expect_eq "$ns/grow's resize conditions after the resize" "$left" ""
after="$(pod_df_bytes "$ns" app /data/grow)"
((after > 2 * gib + gib / 2 && after <= 3 * gib)) || fail "df in the pod shows $after bytes after growing to 3 GiB"
expect_eq "sha256 of the data after the resize" \
    "$(pod_exec "$ns" app sh -c "sha256sum /data/grow/payload | cut -d' ' -f1")" "$sum"
expect_eq "restarts of app's container" "$(pod_restarts "$ns" app)" 0
expect_eq "the pod's writes after the resize" \
    "$(pod_exec "$ns" app sh -c "echo after > /data/grow/after && sync && cat /data/grow/after")" after
step "kubelet called expandfs ($(tail -n 1 <<<"$calls" | sed 's/.*expandfs //'))"
step "df in the running pod shows $after bytes; data intact, no restart; the claim is 3Gi, no resize condition left"

wait_for "$NODE_TIMEOUT" "kubelet_volume_stats_capacity_bytes for $ns/grow to follow" stat_capacity_over $((2 * gib))
expect_eq "kubelet_volume_stats_capacity_bytes vs df in the pod" "$(stat_capacity)" "$after"
step "kubelet's metrics follow: capacity $after bytes"

delete_pod "$ns" app
claims_released "$ns" grow
scenario_end "$ns"
