#!/usr/bin/env bash
# 100 claims created at once while the provisioner is SIGKILLed and restarted twice in the
# middle of the burst: every claim ends Bound to its own PV, and the arrays hold exactly one live
# volume per PV: no duplicate (a crash between the array create and the PV create must not yield
# a second volume) and no leak. Then all 100 are deleted and every volume is destroyed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "100 claims at once, provisioner SIGKILLed twice: all Bound, no duplicate, no leak"

ns=e2e-burst
count=100
make_namespace "$ns"

bound_count() { kubectl -n "$ns" get pvc -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Bound$' || true; }
pv_count() { kubectl get pv -o json | jq --arg ns "$ns" '[.items[] | select(.spec.claimRef.namespace == $ns)] | length'; }
at_least_pvs() { (($(pv_count) >= $1)); }
all_bound() { (($(bound_count) == count)); }
set_latency() {
    local array
    for array in fa-a fa-b fb-1; do
        curl -fsS --cacert "$E2E_CA" -X POST -d "{\"latency_ms\": $1}" "$(sim_field "$array" admin_url)/faults" >/dev/null ||
            return 1
    done
}
# Slow every array call a little, so the burst lasts long enough to crash in its middle.
set_latency 150 || fail "cannot set a latency on the simulated arrays"
trap 'rc=$?; set_latency 0 || true; scenario_on_exit "$rc"' EXIT

step "create $count claims in one request (even: pure-block, odd: pure-file)"
jq -n --arg ns "$ns" --argjson n "$count" '{apiVersion: "v1", kind: "List", items: [range($n) | {
    apiVersion: "v1", kind: "PersistentVolumeClaim",
    metadata: {name: "burst-\(.)", namespace: $ns},
    spec: {storageClassName: (if . % 2 == 0 then "pure-block" else "pure-file" end),
           accessModes: ["ReadWriteOnce"], resources: {requests: {storage: "1Gi"}}}}]}' |
    kubectl create -f - >/dev/null

# Progress is counted in PVs (what the provisioner creates); binding by the PV controller lags.
wait_for 120 "the first PVs of the burst" at_least_pvs 1
provisioner_kill main
step "SIGKILLed the provisioner with $(pv_count)/$count PVs created; restarting it"
provisioner_start main
# The dead leader's Lease must expire first (15 s): only then does the new process act.
wait_for 60 "the restarted provisioner to take the Lease over" provisioner_leads main
before="$(pv_count)"
step "the restarted provisioner leads ($before/$count PVs); wait for it to make progress"
((before < count)) || fail "the burst finished before the first restart took over (raise the simulated latency)"
wait_for 120 "progress after the first restart" at_least_pvs $((before + 3))
before="$(pv_count)"
((before < count)) || fail "the burst finished before the second kill (raise the simulated latency)"
provisioner_kill main
step "SIGKILLed the provisioner again with $before/$count PVs created; restarting it"
provisioner_start main
wait_for 60 "the restarted provisioner to take the Lease over" provisioner_leads main
wait_for 240 "all $count claims to be Bound" all_bound
step "all $count claims are Bound"
set_latency 0 || fail "cannot clear the latency on the simulated arrays"

step "check: every claim has its own PV pvc-<claim uid>, and the arrays hold exactly one live volume each"
claims="$(kubectl -n "$ns" get pvc -o json)"
expected="$(jq -r --arg p "$E2E_PREFIX" '.items[] | "\($p)-pvc-\(.metadata.uid)"' <<<"$claims" | sort)"
bound_to="$(jq -r '.items[] | "\(.spec.volumeName) pvc-\(.metadata.uid)"' <<<"$claims")"
mismatched="$(awk '$1 != $2' <<<"$bound_to")"
[[ -z "$mismatched" ]] || fail "claims bound to a PV not named after their uid: $mismatched"
expect_eq "PVs whose claimRef is in $ns" "$(pv_count)" "$count"
live="$(for array in fa-a fa-b fb-1; do live_array_volumes "$array"; done | sort)"
duplicates="$(grep -Fx -f <(echo "$expected") <<<"$live" | uniq -d || true)"
[[ -z "$duplicates" ]] || fail "volumes live on more than one array: $duplicates"
without_volume="$(comm -23 <(echo "$expected") <(echo "$live" | sort -u))"
[[ -z "$without_volume" ]] || fail "claims without a live array volume: $without_volume"
all_pvs="$(kubectl get pv -o json | jq -r --arg p "$E2E_PREFIX" '.items[].metadata.name | "\($p)-\(.)"' | sort)"
leaked="$(comm -23 <(grep "^$E2E_PREFIX-pvc-" <<<"$live" | sort -u) <(echo "$all_pvs"))"
[[ -z "$leaked" ]] || fail "live array volumes without a PV (leaked): $leaked"
step "$count PVs, $count live volumes (fa-a $(live_array_volumes fa-a | grep -c "^$E2E_PREFIX-pvc-" || true), fa-b $(live_array_volumes fa-b | grep -c "^$E2E_PREFIX-pvc-" || true), fb-1 $(live_array_volumes fb-1 | grep -c "^$E2E_PREFIX-pvc-" || true)), no duplicate, no leak"

step "delete all $count claims: every PV goes and every volume is destroyed"
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
no_pv_left() { [[ "$(pv_count)" == 0 ]]; }
wait_for 240 "the $count PVs to be deleted" no_pv_left
still_live() { for array in fa-a fa-b fb-1; do live_array_volumes "$array"; done | grep -Fx -f <(echo "$expected") || true; }
[[ -z "$(still_live)" ]] || fail "volumes still live after their PVs were deleted: $(still_live | head -n 5)"
step "all PVs deleted, all $count volumes destroyed"
kubectl delete namespace "$ns" --wait=false >/dev/null
