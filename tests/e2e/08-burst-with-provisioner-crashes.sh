#!/usr/bin/env bash
# 100 claims created at once while the provisioner is SIGKILLed and restarted twice in the
# middle of the burst: every claim ends Bound to its own PV, and the arrays hold exactly one live
# volume per PV: no duplicate (a crash between the array create and the PV create must not yield
# a second volume) and no leak. Then all 100 are deleted and every volume is destroyed.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "100 claims at once, provisioner SIGKILLed twice: all Bound, no duplicate, no leak"

ns=e2e-burst
count=100
kube_make_namespace "$ns"

pv_count() { kube_pv_count_in "$ns"; }
at_least_pvs() { (($(pv_count) >= $1)); }
all_bound() { (($(kube_bound_count "$ns") == count)); }
# Slow every array call a little, so the burst lasts long enough to crash in its middle.
sim_set_faults '{"latency_ms": 150}' || check_fail "cannot set a latency on the simulated arrays"
trap 'rc=$?; sim_clear_faults || true; scenario_on_exit "$rc"' EXIT

log_step "create $count claims in one request (even: pure-block, odd: pure-file)"
kube_create_claims "$ns" "$count" burst

# Progress is counted in PVs (what the provisioner creates); binding by the PV controller lags.
check_within 120 "the first PVs of the burst" at_least_pvs 1
prov_kill main
log_step "SIGKILLed the provisioner with $(pv_count)/$count PVs created; restarting it"
prov_start main
# The dead leader's Lease must expire first (15 s): only then does the new process act.
check_within 60 "the restarted provisioner to take the Lease over" prov_leads main
before="$(pv_count)"
log_step "the restarted provisioner leads ($before/$count PVs); wait for it to make progress"
((before < count)) || check_fail "the burst finished before the first restart took over (raise the simulated latency)"
check_within 120 "progress after the first restart" at_least_pvs $((before + 3))
before="$(pv_count)"
((before < count)) || check_fail "the burst finished before the second kill (raise the simulated latency)"
prov_kill main
log_step "SIGKILLed the provisioner again with $before/$count PVs created; restarting it"
prov_start main
check_within 60 "the restarted provisioner to take the Lease over" prov_leads main
check_within 240 "all $count claims to be Bound" all_bound
log_step "all $count claims are Bound"
sim_clear_faults || check_fail "cannot clear the latency on the simulated arrays"

log_step "check: every claim has its own PV pvc-<claim uid>, and the arrays hold exactly one live volume each"
claims="$(kubectl -n "$ns" get pvc -o json)"
expected="$(jq -r --arg p "$PROV_NAME_PREFIX" '.items[] | "\($p)-pvc-\(.metadata.uid)"' <<<"$claims" | sort)"
bound_to="$(jq -r '.items[] | "\(.spec.volumeName) pvc-\(.metadata.uid)"' <<<"$claims")"
mismatched="$(awk '$1 != $2' <<<"$bound_to")"
[[ -z "$mismatched" ]] || check_fail "claims bound to a PV not named after their uid: $mismatched"
check_eq "PVs whose claimRef is in $ns" "$(pv_count)" "$count"
live="$(sim_live_everywhere)"
duplicates="$(grep -Fx -f <(echo "$expected") <<<"$live" | uniq -d || true)"
[[ -z "$duplicates" ]] || check_fail "volumes live on more than one array: $duplicates"
without_volume="$(comm -23 <(echo "$expected") <(echo "$live" | sort -u))"
[[ -z "$without_volume" ]] || check_fail "claims without a live array volume: $without_volume"
leaked="$(kube_orphans | sort -u)"
[[ -z "$leaked" ]] || check_fail "live array volumes without a PV (leaked): $leaked"
log_step "$count PVs, $count live volumes (fa-a $(sim_live_volumes fa-a | grep -c "^$PROV_NAME_PREFIX-pvc-" || true), fa-b $(sim_live_volumes fa-b | grep -c "^$PROV_NAME_PREFIX-pvc-" || true), fb-1 $(sim_live_volumes fb-1 | grep -c "^$PROV_NAME_PREFIX-pvc-" || true)), no duplicate, no leak"

log_step "delete all $count claims: every PV goes and every volume is destroyed"
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
check_within 240 "the $count PVs to be deleted" kube_pvs_in_are "$ns" 0
still_live() { sim_live_everywhere | grep -Fx -f <(echo "$expected") || true; }
[[ -z "$(still_live)" ]] || check_fail "volumes still live after their PVs were deleted: $(still_live | head -n 5)"
log_step "all PVs deleted, all $count volumes destroyed"
kubectl delete namespace "$ns" --wait=false >/dev/null
