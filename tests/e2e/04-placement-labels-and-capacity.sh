#!/usr/bin/env bash
# Placement: a claim's selector picks arrays by their pure.json Labels (matchLabels and
# matchExpressions); without a selector the FlashArray with the most free space wins, whatever
# its place in pure.json, and the choice follows the arrays' real usage; a selector no array
# matches fails with a ProvisioningFailed event naming the selector.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "placement by array labels and by free capacity"

ns=e2e-placement
kube_make_namespace "$ns"

# lands_on CLAIM: the simulated array holding the claim's volume.
lands_on() { sim_array_holding "$(kube_array_name_of_pv "$(kube_pv_of "$ns" "$1")")"; }
free_bytes() { sim_fa_rest "$1" GET 'array?space=true' | jq -r '(if type == "array" then .[0] else . end) | .capacity - .total'; }

log_step "selector rack=a → fa-a, rack=b → fa-b, rack in (b) → fa-b, rack notin (b) → fa-a"
kube_create_pvc "$ns" sel-a pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_create_pvc "$ns" sel-b pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
kube_create_pvc "$ns" expr-in-b pure-block 1Gi ReadWriteOnce '{"matchExpressions":[{"key":"rack","operator":"In","values":["b"]}]}'
kube_create_pvc "$ns" expr-notin-b pure-block 1Gi ReadWriteOnce '{"matchExpressions":[{"key":"rack","operator":"NotIn","values":["b"]}]}'
for pair in sel-a:fa-a sel-b:fa-b expr-in-b:fa-b expr-notin-b:fa-a; do
    claim="${pair%%:*}"
    kube_wait_bound "$ns" "$claim"
    check_eq "array of $claim" "$(lands_on "$claim")" "${pair#*:}"
done
check_eq "labels option of the PV of sel-b" \
    "$(kubectl get pv "$(kube_pv_of "$ns" sel-b)" -o 'jsonpath={.spec.flexVolume.options.labels}')" "rack=b"

log_step "selector rack=nowhere → Pending with ProvisioningFailed naming the selector"
kube_create_pvc "$ns" sel-none pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"nowhere"}}'
check_within "$CHECK_TIMEOUT" "a ProvisioningFailed event on sel-none naming rack=nowhere" \
    kube_has_event "$ns" sel-none ProvisioningFailed 'rack=nowhere'
check_eq "phase of sel-none" "$(kube_pvc_phase "$ns" sel-none)" Pending

free_a="$(free_bytes fa-a)"
free_b="$(free_bytes fa-b)"
log_step "free space now: fa-a $((free_a >> 20)) MiB (listed first), fa-b $((free_b >> 20)) MiB"
((free_b > free_a)) || check_fail "test setup: fa-b should have more free space than fa-a"
kube_create_pvc "$ns" roomiest-1 pure-block 1Gi
kube_wait_bound "$ns" roomiest-1
check_eq "array of roomiest-1 (no selector)" "$(lands_on roomiest-1)" fa-b
log_step "no selector → fa-b, the array with more free space, although fa-a is listed first"

# Fill fa-b the way data would: a volume created by an administrator whose blocks are all
# allocated, until fa-b has less free space than fa-a.
fill=$((free_b - free_a + (1 << 30)))
sim_fa_rest fa-b POST volume/e2e-filler "$(jq -n --argjson s "$fill" '{size: $s}')" >/dev/null ||
    check_fail "cannot create the filler volume on fa-b"
filler="$(sim_admin fa-b state | jq -r '.volumes["e2e-filler"].path')"
fallocate -l "$fill" "$filler" || check_fail "cannot allocate $fill bytes in $filler"
log_step "wrote $((fill >> 20)) MiB into volume e2e-filler on fa-b: now fa-a $(($(free_bytes fa-a) >> 20)) MiB free, fa-b $(($(free_bytes fa-b) >> 20)) MiB"
# The provisioner caches each array's free space for --space-cache-seconds (10 by default, the
# Deployment does not change it): a placement within that window may still see the old figure.
log_step "wait 11s for the provisioner's free-space cache to expire"
sleep 11
kube_create_pvc "$ns" roomiest-2 pure-block 1Gi
kube_wait_bound "$ns" roomiest-2
check_eq "array of roomiest-2 (no selector, fa-b filled)" "$(lands_on roomiest-2)" fa-a
log_step "no selector → fa-a, now the array with more free space"

log_step "a claim larger than any array's free space fails with ProvisioningFailed"
kube_create_pvc "$ns" too-big pure-block 64Gi
check_within "$CHECK_TIMEOUT" "a ProvisioningFailed event on too-big" kube_has_event "$ns" too-big ProvisioningFailed
log_step "too-big: $(kube_events_for "$ns" too-big ProvisioningFailed | tail -n 1)"

log_step "clean up"
sim_fa_rest fa-b DELETE volume/e2e-filler >/dev/null
sim_fa_rest fa-b DELETE 'volume/e2e-filler?eradicate=true' >/dev/null || true
kube_delete_claims "$ns"
kubectl delete namespace "$ns" --wait=false >/dev/null
