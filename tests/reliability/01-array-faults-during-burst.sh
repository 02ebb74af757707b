#!/usr/bin/env bash
# 200 claims created in one request and a quarter of them deleted mid-burst while, for the first
# 60 s, every array answers 20% of calls with 503, drops 5% of connections without a reply and
# adds latency spikes of 1-2 s, and the simulator process is restarted (same ports, state from
# disk) in the middle: once the faults stop, every surviving claim ends Bound to its own PV with
# exactly one live array object, every deleted claim's object is destroyed (or was never
# created), no duplicate, no orphan. Then the rest is deleted under the same faults (30 s) and
# every object is destroyed. Prints the time to converge.
#
# The faults stop after a window because the provisioner backs off exponentially per claim (1 s
# doubling to 5 min): under faults that never stop, the slowest of 200 claims can wait minutes
# for its next attempt, which a CI budget cannot hold. What is proven is that nothing is lost,
# duplicated or leaked by the faults, and how long the system takes to settle once they stop.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "200 claims under 5xx, drops, latency spikes and a simulator restart: converges, no duplicate, no orphan"

ns=rel-faults
count="${REL_BURST_COUNT:-200}"
early_deletes=$((count / 4))
kube_make_namespace "$ns"

# Faults change every 2 s: one period in three has a latency spike of 1 to 2 s on every call.
faults_json() { printf '{"error_rate": 0.2, "drop_rate": 0.05, "latency_ms": %d}' "$1"; }
fault_loop() {
    local period=0 latency
    while :; do
        latency=0
        ((period % 3 == 2)) && latency=$((1000 + RANDOM % 1001))
        sim_set_faults "$(faults_json "$latency")" 2>/dev/null || true
        sleep 2
        period=$((period + 1))
    done
}
fault_pid=""
stop_fault_loop() {
    if [[ -n "$fault_pid" ]]; then
        kill "$fault_pid" 2>/dev/null || true
        wait "$fault_pid" 2>/dev/null || true
    fi
    fault_pid=""
    sim_clear_faults || true
}
trap 'rc=$?; stop_fault_loop; scenario_on_exit "$rc"' EXIT

sim_set_faults "$(faults_json 0)" || check_fail "cannot set faults on the simulated arrays"
fault_loop &
fault_pid=$!
log_step "faults on every array: 20% 503, 5% dropped connections, 1-2 s latency spikes"

fault_window="${REL_FAULT_SECONDS:-60}"
start=$SECONDS
log_step "create $count claims in one request (even: pure-block, odd: pure-file)"
kube_create_claims "$ns" "$count" burst
at_least_bound() { (($(kube_bound_count "$ns") >= $1)); }
check_within 180 "the first $((count / 5)) claims to be Bound under faults" at_least_bound $((count / 5))

log_step "restart the simulator mid-burst ($(kube_bound_count "$ns")/$count Bound)"
sim_restart_same_ports || check_fail "the simulator did not come back on its ports (see $WORKDIR/logs/arraysim.log)"
sim_set_faults "$(faults_json 0)" || check_fail "cannot set faults after the restart"

log_step "delete $early_deletes claims mid-burst ($(kube_bound_count "$ns")/$count Bound)"
deleted_objects="$(kubectl -n "$ns" get pvc -o json | jq -r --arg p "$PROV_NAME_PREFIX" --argjson n "$early_deletes" \
    '.items[] | select((.metadata.name | ltrimstr("burst-") | tonumber) < $n) | "\($p)-pvc-\(.metadata.uid)"')"
kubectl -n "$ns" delete pvc $(seq -f 'burst-%g' 0 $((early_deletes - 1))) --wait=false >/dev/null

remaining=$((count - early_deletes))
while ((SECONDS - start < fault_window)) && ! kube_all_claims_bound "$ns"; do sleep 1; done
log_step "faults stop after $((SECONDS - start))s ($(kube_bound_count "$ns")/$remaining Bound)"
stop_fault_loop
faults_off=$SECONDS
check_within 330 "the $remaining remaining claims to be Bound" kube_all_claims_bound "$ns"
bound_after=$((SECONDS - start))
check_within 240 "exactly $remaining PVs for $ns (the deleted claims' PVs gone)" kube_pvs_in_are "$ns" "$remaining"
check_within 240 "the deleted claims' objects to be destroyed" sim_none_live "$deleted_objects"
settled_after=$((SECONDS - start))
log_step "converged: $remaining Bound after ${bound_after}s ($((SECONDS - faults_off))s after the faults stopped), deleted claims cleaned up after ${settled_after}s"
kube_check_one_volume_per_claim "$ns"
log_step "one live object per claim, no duplicate, no orphan ($(sim_live_everywhere | wc -l) live objects)"

log_step "delete the other $remaining claims under the same faults"
expected="$(kubectl -n "$ns" get pvc -o json | jq -r --arg p "$PROV_NAME_PREFIX" '.items[] | "\($p)-pvc-\(.metadata.uid)"')"
sim_set_faults "$(faults_json 0)" || check_fail "cannot set faults on the simulated arrays"
fault_loop &
fault_pid=$!
start=$SECONDS
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
while ((SECONDS - start < 30)) && ! kube_pvs_in_are "$ns" 0; do sleep 1; done
log_step "faults stop after $((SECONDS - start))s ($(kube_pv_count_in "$ns") PVs left)"
stop_fault_loop
check_within 330 "every PV of $ns to be deleted" kube_pvs_in_are "$ns" 0
check_within 120 "every object of $ns to be destroyed" sim_none_live "$expected"
log_step "all PVs deleted and all objects destroyed after $((SECONDS - start))s"
leaked="$(kube_orphans)"
[[ -z "$leaked" ]] || check_fail "live array objects without a PV after the deletes: $leaked"
echo "converge: create+delete burst ${bound_after}s to Bound, ${settled_after}s settled; final deletes $((SECONDS - start))s" >>"$WORKDIR/logs/reliability-timings.log"
kubectl delete namespace "$ns" --wait=false >/dev/null
