#!/usr/bin/env bash
# Placement: a claim's selector picks arrays by their pure.json Labels (matchLabels and
# matchExpressions); without a selector the FlashArray with the most free space wins, whatever
# its place in pure.json, and the choice follows the arrays' real usage; a selector no array
# matches fails with a ProvisioningFailed event naming the selector.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "placement by array labels and by free capacity"

ns=e2e-placement
make_namespace "$ns"

# lands_on CLAIM: the simulated array holding the claim's volume.
lands_on() { array_holding "$(array_name_of_pv "$(pv_of "$ns" "$1")")"; }
free_bytes() { fa_rest "$1" GET 'array?space=true' | jq -r '(if type == "array" then .[0] else . end) | .capacity - .total'; }

step "selector rack=a → fa-a, rack=b → fa-b, rack in (b) → fa-b, rack notin (b) → fa-a"
create_pvc "$ns" sel-a pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
create_pvc "$ns" sel-b pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
create_pvc "$ns" expr-in-b pure-block 1Gi ReadWriteOnce '{"matchExpressions":[{"key":"rack","operator":"In","values":["b"]}]}'
create_pvc "$ns" expr-notin-b pure-block 1Gi ReadWriteOnce '{"matchExpressions":[{"key":"rack","operator":"NotIn","values":["b"]}]}'
for pair in sel-a:fa-a sel-b:fa-b expr-in-b:fa-b expr-notin-b:fa-a; do
    claim="${pair%%:*}"
    wait_pvc_bound "$ns" "$claim"
    expect_eq "array of $claim" "$(lands_on "$claim")" "${pair#*:}"
done
expect_eq "labels option of the PV of sel-b" \
    "$(kubectl get pv "$(pv_of "$ns" sel-b)" -o 'jsonpath={.spec.flexVolume.options.labels}')" "rack=b"

step "selector rack=nowhere → Pending with ProvisioningFailed naming the selector"
create_pvc "$ns" sel-none pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"nowhere"}}'
wait_for "$E2E_TIMEOUT" "a ProvisioningFailed event on sel-none naming rack=nowhere" \
    has_event "$ns" sel-none ProvisioningFailed 'rack=nowhere'
expect_eq "phase of sel-none" "$(pvc_phase "$ns" sel-none)" Pending

free_a="$(free_bytes fa-a)"
free_b="$(free_bytes fa-b)"
step "free space now: fa-a $((free_a >> 20)) MiB (listed first), fa-b $((free_b >> 20)) MiB"
((free_b > free_a)) || fail "test setup: fa-b should have more free space than fa-a"
create_pvc "$ns" roomiest-1 pure-block 1Gi
wait_pvc_bound "$ns" roomiest-1
expect_eq "array of roomiest-1 (no selector)" "$(lands_on roomiest-1)" fa-b
step "no selector → fa-b, the array with more free space, although fa-a is listed first"

# Fill fa-b the way data would: a volume created by an administrator whose blocks are all
# allocated, until fa-b has less free space than fa-a.
fill=$((free_b - free_a + (1 << 30)))
fa_rest fa-b POST volume/e2e-filler "$(jq -n --argjson s "$fill" '{size: $s}')" >/dev/null ||
    fail "cannot create the filler volume on fa-b"
filler="$(sim_admin fa-b state | jq -r '.volumes["e2e-filler"].path')"
fallocate -l "$fill" "$filler" || fail "cannot allocate $fill bytes in $filler"
step "wrote $((fill >> 20)) MiB into volume e2e-filler on fa-b: now fa-a $(($(free_bytes fa-a) >> 20)) MiB free, fa-b $(($(free_bytes fa-b) >> 20)) MiB"
# The provisioner caches each array's free space for --space-cache-seconds (10 by default, the
# Deployment does not change it): a placement within that window may still see the old figure.
step "wait 11s for the provisioner's free-space cache to expire"
sleep 11
create_pvc "$ns" roomiest-2 pure-block 1Gi
wait_pvc_bound "$ns" roomiest-2
expect_eq "array of roomiest-2 (no selector, fa-b filled)" "$(lands_on roomiest-2)" fa-a
step "no selector → fa-a, now the array with more free space"

step "a claim larger than any array's free space fails with ProvisioningFailed"
create_pvc "$ns" too-big pure-block 64Gi
wait_for "$E2E_TIMEOUT" "a ProvisioningFailed event on too-big" has_event "$ns" too-big ProvisioningFailed
step "too-big: $(events_for "$ns" too-big ProvisioningFailed | tail -n 1)"

step "clean up"
fa_rest fa-b DELETE volume/e2e-filler >/dev/null
fa_rest fa-b DELETE 'volume/e2e-filler?eradicate=true' >/dev/null || true
pvs=()
for claim in sel-a sel-b expr-in-b expr-notin-b roomiest-1 roomiest-2; do pvs+=("$(pv_of "$ns" "$claim")"); done
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
for pv in "${pvs[@]}"; do wait_for "$E2E_TIMEOUT" "PV $pv to be deleted" pv_gone "$pv"; done
kubectl delete namespace "$ns" --wait=false >/dev/null
