#!/usr/bin/env bash
# The provisioner SIGKILLed at random moments, at least 10 times, during a burst of claim
# creates and then during the burst of their deletes: every claim ends Bound to its own PV with
# exactly one live array object (no duplicate from a create repeated after a crash, no orphan
# from a crash between the array call and the PV), and after the deletes every PV is gone and
# every object destroyed. The provisioner runs with the shipped Deployment's args plus a 4 s
# Lease (instead of 15 s) so the kills fit in the CI budget; each restart still waits for the
# dead process's Lease to expire before acting.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "provisioner SIGKILLed >= 10 times during create and delete bursts: no duplicate, no leak"

ns=rel-kills
count="${REL_KILL_COUNT:-100}"
kube_make_namespace "$ns"
fast_lease=(--lease-duration-seconds=4 --renew-deadline-seconds=3 --retry-period-seconds=1)
# The runner restarts the shared provisioner with the Deployment's args only once this one stops.
trap 'rc=$?; sim_set_faults "{}" || true; prov_stop main || true; scenario_on_exit "$rc"' EXIT

prov_stop main
prov_start main "${fast_lease[@]}"
check_within 60 "the provisioner to lead" prov_leads main

kills=0
# kill_during PHASE DONE_CHECK: one SIGKILL after a random 0.5-2.5 s of leadership, then a
# restart that waits to lead again. Prints whether the burst was still running at the kill.
kill_during() {
    sleep "$((RANDOM % 3)).$((RANDOM % 10))"
    sleep 0.5
    local mid=no
    "$2" || mid=yes
    prov_kill main
    kills=$((kills + 1))
    prov_start main "${fast_lease[@]}"
    check_within 60 "the restarted provisioner to lead" prov_leads main
    [[ $mid == yes ]]
}

# Slow array calls so the bursts outlast several kill/restart cycles.
sim_set_faults '{"latency_ms": 400}' || check_fail "cannot set a latency on the simulated arrays"
log_step "create $count claims in one request"
kube_create_claims "$ns" "$count" kill
creates_done() { kube_all_claims_bound "$ns"; }
mid_create=0
for _ in 1 2 3 4 5 6; do
    if kill_during create creates_done; then mid_create=$((mid_create + 1)); fi
done
log_step "$kills SIGKILLs so far, $mid_create of them while claims were still being provisioned ($(kube_bound_count "$ns")/$count Bound)"
((mid_create >= 2)) || check_fail "only $mid_create kills landed in the create burst (raise the latency)"
check_within 300 "all $count claims to be Bound" kube_all_claims_bound "$ns"
check_within 60 "exactly $count PVs for $ns" kube_pvs_in_are "$ns" "$count"
kube_check_one_volume_per_claim "$ns"
log_step "all $count Bound, one live object each, no duplicate, no orphan"

expected="$(kubectl -n "$ns" get pvc -o json | jq -r --arg p "$PROV_NAME_PREFIX" '.items[] | "\($p)-pvc-\(.metadata.uid)"')"
log_step "delete all $count claims"
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
deletes_done() { kube_pvs_in_are "$ns" 0; }
mid_delete=0
for _ in 1 2 3 4 5; do
    if kill_during delete deletes_done; then mid_delete=$((mid_delete + 1)); fi
done
log_step "$kills SIGKILLs in all, $mid_delete of them while PVs were still being deleted"
((kills >= 10)) || check_fail "only $kills kills"
((mid_delete >= 1)) || check_fail "no kill landed in the delete burst (raise the latency)"
check_within 300 "every PV of $ns to be deleted" deletes_done
check_within 60 "every object of $ns to be destroyed" sim_none_live "$expected"
leaked="$(kube_orphans)"
[[ -z "$leaked" ]] || check_fail "live array objects without a PV: $leaked"
log_step "every PV deleted, every object destroyed, nothing leaked"
kubectl delete namespace "$ns" --wait=false >/dev/null
