#!/usr/bin/env bash
# The provisioner is SIGKILLed in the middle of resizes (a block and a file claim grown at once,
# with every array call slowed so the kill lands between the Resizing event and the array's
# answer); its restarted process converges: each array object has the new size, exactly once,
# the file claim is finished, the block claim waits for kubelet.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "provisioner SIGKILLed mid-resize: the restarted one converges"

ns=e2e-resize-kill
kube_make_namespace "$ns"
gib=$((1 << 30))
trap 'rc=$?; sim_clear_faults || true; scenario_on_exit "$rc"' EXIT

kube_create_pvc "$ns" kill-block pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
kube_create_pvc "$ns" kill-file pure-file 1Gi
for claim in kill-block kill-file; do kube_wait_bound "$ns" "$claim"; done
block="$(kube_array_name_of_pv "$(kube_pv_of "$ns" kill-block)")"
file="$(kube_array_name_of_pv "$(kube_pv_of "$ns" kill-file)")"

sim_set_faults '{"latency_ms": 2000}' || check_fail "cannot slow the simulated arrays"
log_step "grow both claims to 2Gi with every array call taking 2 s"
for claim in kill-block kill-file; do kube_resize_pvc "$ns" "$claim" 2Gi >/dev/null; done
check_within "$CHECK_TIMEOUT" "the provisioner to start resizing" kube_has_event "$ns" kill-block Resizing
prov_kill main
log_step "SIGKILLed the provisioner after Resizing (block: $(sim_object_size fa-b "$block") bytes, file: $(sim_object_size fb-1 "$file") bytes)"
sim_clear_faults || check_fail "cannot clear the latency"
prov_start main
check_within 60 "the restarted provisioner to take the Lease over" prov_leads main

check_within "$CHECK_TIMEOUT" "$block to be 2 GiB" sim_object_size_is fa-b "$block" $((2 * gib))
check_within "$CHECK_TIMEOUT" "$file to be 2 GiB" sim_object_size_is fb-1 "$file" $((2 * gib))
check_within "$CHECK_TIMEOUT" "the file claim to be finished at 2Gi" kube_pvc_capacity_is "$ns" kill-file 2Gi
check_eq "the block claim's capacity (kubelet's to set)" "$(kube_pvc_capacity "$ns" kill-block)" 1Gi
kube_check_one_volume_per_claim "$ns"
log_step "both objects are 2 GiB, once each; the file claim is finished, the block claim waits for kubelet"

log_step "clean up"
kube_delete_claims "$ns"
kubectl delete namespace "$ns" --wait=false >/dev/null
