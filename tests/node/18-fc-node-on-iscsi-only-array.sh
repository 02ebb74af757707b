#!/usr/bin/env bash
# A node set to FC (flasharray.sanType, a helm upgrade as users make it) and a claim on a
# FlashArray with iSCSI ports only, as Pure Cloud Block Store is (the simulator's admin call takes
# fa-a's FC ports away): kubelet's FailedMount event names the array and the fix, and the array is
# left as it was: no host registered or changed, no connection, nothing on the node. Set back to
# iSCSI (the fix the event names), the same pod starts on the same iSCSI-only array.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NODE_DIR/flashvol.sh"
node_scenario_begin "18 FC node, iSCSI-only array (Cloud Block Store): refused by name, the array untouched; iSCSI mounts"

ns=node-18
node_make_namespace "$ns"
kube_create_pvc "$ns" cloud pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_wait_bound "$ns" cloud
pv="$(kube_pv_of "$ns" cloud)"
volume="$(kube_array_name_of_pv "$pv")"
settings="$NODE_PLUGIN_DIR/pure~flex/flashvol.json"

# san_type_set ISCSI|FC: the chart's flasharray.sanType, upgraded in place; returns once the
# rolled DaemonSet pod has written it into the node's settings file, which every call reads.
san_type_set() {
    flashvol_upgrade "flasharray.sanType=$1" || check_fail "helm upgrade failed"
    settings_say() { [[ "$(jq -r '.flashvol.block.sanType' "$settings" 2>/dev/null)" == "$1" ]]; }
    check_within "$NODE_TIMEOUT" "the node's settings to say sanType $1" settings_say "$1"
    kubectl -n "$NODE_SYSTEM_NAMESPACE" rollout status daemonset/pure-flex --timeout="${NODE_TIMEOUT}s" >/dev/null ||
        check_fail "the DaemonSet did not roll out"
}
fc_set=false
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; sim_admin_send fa-a DELETE fc_wwns 2>/dev/null || true; if $fc_set; then (san_type_set ISCSI) || true; fi; node_scenario_on_exit "$rc"' EXIT

# The array as the refusal must leave it: its hosts (with their initiators) and connections.
array_hosts() { sim_admin fa-a state | jq -cS '{hosts, connections}'; }

log_step "fa-a loses its FC ports (iSCSI only, as Cloud Block Store); the chart sets the nodes to FC"
sim_admin_send fa-a PUT fc_wwns '{"wwns": []}' || check_fail "the simulator refused to drop fa-a's FC ports"
check_eq "fa-a's FC target ports" "$(sim_fa_rest fa-a GET port | jq -c '[.[] | select(.wwn != null)]')" "[]"
fc_set=true
san_type_set FC
before="$(array_hosts)"

node_run_pod "$ns" app "$NODE_WRITE_SCRIPT" cloud
message="$(node_failed_mount "$ns" app "Fibre Channel")"
endpoint="$(sim_field fa-a endpoint)"
for part in "FlashArray ${endpoint#https://} has no Fibre Channel ports (only iSCSI)" "Cloud Block Store" "sanType to ISCSI"; do
    [[ "$message" == *"$part"* ]] || check_fail "the FailedMount event does not say '$part': $message"
done
node_pod_is_running "$ns" app && check_fail "pod app runs although its volume was refused"
check_eq "fa-a's hosts and connections after the refused mounts" "$(array_hosts)" "$before"
check_eq "mounts of $pv" "$(node_mount_count "$pv")" 0
[[ ! -e "$(node_record_file "$pv")" ]] || check_fail "the refused mount left the volume record of $pv"
! grep -q "$(sim_admin fa-a state | jq -r --arg v "$volume" '.volumes[$v].serial').img\$" <<<"$(losetup -nO BACK-FILE)" ||
    check_fail "a loop device of $volume after the refused mount"
log_step "event: ${message:0:200}…; fa-a's hosts and connections unchanged, nothing on the node"

san_type_set ISCSI
fc_set=false
node_wait_pod_log "$ns" app ready "$NODE_LONG_TIMEOUT"
log_step "set back to iSCSI, pod app started on the iSCSI-only fa-a"

node_delete_pod "$ns" app
sim_admin_send fa-a DELETE fc_wwns
node_claims_released "$ns" cloud
node_scenario_end "$ns"
