#!/usr/bin/env bash
# No array API token leaks. After a full flow at debug log level (the provisioner with --debug,
# the flex driver with the node settings' logLevel debug): a block and a file claim provisioned,
# a claim whose placement fails (ProvisioningFailed), both volumes mounted pod-style through the
# flex driver, data written, unmounted, a mount of a volume that does not exist (the driver's
# error path), the claims deleted and the array objects destroyed. Then none of the APIToken
# values of the test pure.json appears in: the provisioner's log and cmdline files under the test
# root, the flex driver's log and stderr, `kubectl get events -A`, `kubectl get pv,pvc -A`, the
# provisioner's /metrics, /proc/<pid>/cmdline and /proc/<pid>/environ of the provisioner and the
# simulator (the simulator reads its tokens from its --config file, so its cmdline is checked
# too), and no API object other than Secret pure-system/pure-provisioner-secret holds them.
# Logs are also checked with their hex dumps decoded (ureq's trace output splits raw traffic into
# 16-byte lines, where a line-wise grep cannot see a token). Then the same at the most verbose
# level an operator can ask for: RUST_LOG=trace in the Deployment's env (the provisioner README:
# "RUST_LOG overrides"), a block and a file claim provisioned and deleted; that log must not hold
# a token either.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "no APIToken of pure.json in logs, events, PVs, metrics, /proc or non-Secret objects"

ns=rel-tokens
kube_make_namespace "$ns"
tokens="$WORKDIR/api-tokens.txt"
(umask 077 && jq -r '(.FlashArrays // [])[].APIToken, (.FlashBlades // [])[].APIToken' "$WORKDIR/pure.json" >"$tokens")
(($(grep -c . "$tokens") >= 3)) || check_fail "expected the 3 APITokens of the test pure.json, found: $(grep -c . "$tokens")"
while IFS= read -r token; do
    ((${#token} >= 8)) || check_fail "an APIToken of the test pure.json is shorter than 8 characters: a grep for it proves little"
done <"$tokens"
# The provisioner's own credential, the ServiceAccount token, must not leak either.
sa_token="$(kubectl config view --kubeconfig "$KUBE_SA_KUBECONFIG" --raw -o 'jsonpath={.users[0].user.token}')"
[[ -n "$sa_token" ]] || check_fail "no token in the ServiceAccount kubeconfig $KUBE_SA_KUBECONFIG"
secrets="$WORKDIR/secrets-to-hide.txt"
(umask 077 && { cat "$tokens"; echo "$sa_token"; } >"$secrets")

# The runner restarts the shared provisioner with the Deployment's args and env: undo RUST_LOG.
unset_rust_log() {
    kubectl -n "$KUBE_NAMESPACE" set env "deployment/$KUBE_PROVISIONER" RUST_LOG- >/dev/null
}
trap 'rc=$?; prov_stop main || true; prov_stop trace || true; unset_rust_log || true
      scenario_on_exit "$rc"' EXIT

leaks=()
# scan_text WHERE: stdin must contain none of the secrets; a hit is recorded, naming WHERE.
scan_text() {
    local hits
    hits="$(grep -aoF -f "$secrets" | sort -u | while IFS= read -r hit; do
        if grep -qxF -- "$hit" "$tokens"; then echo "APIToken ${hit:0:4}…"; else echo "ServiceAccount token"; fi
    done)" || true
    if [[ -n "$hits" ]]; then
        leaks+=("$1: $(paste -sd, <<<"$hits")")
        printf '  LEAK in %s: %s\n' "$1" "$(paste -sd, <<<"$hits")" >&2
    fi
}
# hex_dumps FILE: the bytes of the hex-dump lines of a log (ureq_proto's trace output,
# "<8 groups of 4 hex digits, '-' as padding>  <16 characters>"), decoded and joined.
hex_dumps() {
    perl -ne 'print pack("H*", $1 =~ s/[\s-]//gr) if /\] ((?:[0-9a-f-]{4} ){7}[0-9a-f-]{4})  /' "$1"
}
# scan_file FILE: line-wise and with its hex dumps decoded.
scan_file() {
    [[ -f "$1" ]] || check_fail "$1 does not exist (nothing to check)"
    # shellcheck disable=SC2094 # scan_text only reads stdin; $1 is just the name in its report
    scan_text "$1" <"$1"
    scan_text "$1 (hex dumps decoded)" < <(hex_dumps "$1")
}

# Positive control: the same grep finds the tokens where they belong (pure.json, the Secret).
grep -qF -f "$tokens" "$WORKDIR/pure.json" || check_fail "the token grep does not even match pure.json"
secret_json="$(kubectl -n "$KUBE_NAMESPACE" get secret pure-provisioner-secret -o 'jsonpath={.data.pure\.json}' | base64 -d)"
while IFS= read -r token; do
    grep -qF -- "$token" <<<"$secret_json" || check_fail "Secret pure-provisioner-secret does not hold APIToken ${token:0:4}…"
done <"$tokens"

# --- the full flow, at debug level ---------------------------------------------------------
log_step "restart the shared provisioner with --debug"
prov_stop main
prov_start main --debug
check_within 60 "the provisioner to lead" prov_leads main
jq -e '.node.logLevel == "debug"' "$FLEX_SETTINGS" >/dev/null ||
    check_fail "the node settings $FLEX_SETTINGS do not set logLevel debug"

log_step "provision a block and a file claim, and one whose selector no array matches"
kube_create_pvc "$ns" block pure-block 1Gi
kube_create_pvc "$ns" file pure-file 1Gi ReadWriteMany
kube_create_pvc "$ns" nowhere pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"nowhere"}}'
kube_wait_bound "$ns" block
kube_wait_bound "$ns" file
check_within 30 "a ProvisioningFailed event for claim nowhere" kube_has_event "$ns" nowhere ProvisioningFailed

pvs=()
for claim in block file; do
    pv="$(kube_pv_of "$ns" "$claim")"
    pvs+=("$pv")
    pod="$(cat /proc/sys/kernel/random/uuid)"
    log_step "mount $claim ($pv) pod-style through the flex driver, write, unmount"
    flex_mount "$pod" "$pv" "$ns" token-check
    flex_write_payload "$(flex_pod_dir "$pod" "$pv")" >/dev/null
    flex_unmount "$pod" "$pv"
done

log_step "flex mount of a volume that does not exist (the driver's error path)"
bogus_dir="$(flex_pod_dir "$(cat /proc/sys/kernel/random/uuid)" pvc-00000000-0000-0000-0000-000000000000)"
mkdir -p "$bogus_dir"
bogus_options="$(kubectl get pv "${pvs[0]}" -o json | jq -c '.spec.flexVolume.options
    + {arrayVolume: "k8s-pvc-00000000-0000-0000-0000-000000000000", volumeName: "pvc-00000000-0000-0000-0000-000000000000",
       "kubernetes.io/fsType": "xfs", "kubernetes.io/readwrite": "rw"}')"
reply="$(flex_exec "$WORKDIR/node/fabric-fa-a.json" mount "$bogus_dir" "$bogus_options" \
    2>>"$WORKDIR/logs/flex-stderr.log")" || true
[[ "$(jq -r '.status' <<<"$reply" 2>/dev/null)" == Failure ]] || check_fail "mounting a missing volume did not fail: $reply"
scan_text "the flex driver's reply to a failed mount" <<<"$reply"
rmdir "$bogus_dir"

log_step "delete the claims; wait for the PVs and array objects to go"
expected="$(kubectl -n "$ns" get pvc -o json | jq -r --arg p "$PROV_NAME_PREFIX" '.items[] | select(.spec.volumeName) | "\($p)-pvc-\(.metadata.uid)"')"
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
for pv in "${pvs[@]}"; do check_within 60 "PV $pv to be deleted" kube_pv_gone "$pv"; done
check_within 30 "the objects of $ns to be destroyed" sim_none_live "$expected"

# --- where the tokens must not be ------------------------------------------------------
log_step "grep for the $(grep -c . "$tokens") APITokens of pure.json (and the ServiceAccount token)"
checked=()
for file in "$WORKDIR"/logs/provisioner-*.log "$WORKDIR"/logs/provisioner-*.cmdline; do
    [[ -f "$file" ]] || continue
    scan_file "$file"
    checked+=("${file#"$WORKDIR"/}")
done
grep -q 'DEBUG' "$(prov_log main)" || check_fail "the provisioner log has no DEBUG line: --debug did not take effect"
scan_file "$WORKDIR/node/flex.log"
grep -q ' DEBUG ' "$WORKDIR/node/flex.log" || check_fail "the flex driver's log has no debug line: logLevel debug did not take effect"
scan_file "$WORKDIR/logs/flex-stderr.log"
checked+=(node/flex.log logs/flex-stderr.log)

scan_text "kubectl get events -A -o yaml" < <(kubectl get events -A -o yaml)
scan_text "kubectl get pv,pvc -A -o yaml" < <(kubectl get pv,pvc -A -o yaml)
scan_text "kubectl get all,cm -A -o yaml" < <(kubectl get all,cm -A -o yaml)
scan_text "leases, service accounts, storage classes" < <(kubectl get leases.coordination.k8s.io,sa,storageclasses -A -o yaml)
checked+=("events" "pv,pvc" "all,cm" "leases,sa,storageclasses")

# Secrets: exactly one holds an APIToken (decoded), and it is pure-system/pure-provisioner-secret.
holders="$(kubectl get secrets -A -o json | jq -r --rawfile t "$tokens" '
    ($t | split("\n") | map(select(length > 0))) as $tokens
    | .items[] | select([(.data // {})[] | (try @base64d catch "") as $v | $tokens[] | . as $x | $v | contains($x)] | any)
    | "\(.metadata.namespace)/\(.metadata.name)"')"
[[ "$holders" == "$KUBE_NAMESPACE/pure-provisioner-secret" ]] ||
    leaks+=("Secrets holding an APIToken: expected only $KUBE_NAMESPACE/pure-provisioner-secret, found: $(paste -sd' ' <<<"$holders")")
checked+=("secrets (only pure-provisioner-secret)")

metrics="$(curl -fsS --max-time 5 "http://$(prov_http main)/metrics")" || check_fail "cannot read the provisioner's /metrics"
grep -q '^flashvol_provisions_total' <<<"$metrics" || check_fail "/metrics has no flashvol_provisions_total: not the provisioner's metrics"
scan_text "the provisioner's /metrics" <<<"$metrics"
checked+=(/metrics)

prov_running main || check_fail "the provisioner is not running: its /proc cannot be checked"
sim_pid="$(cat "$WORKDIR/pids/arraysim")"
for who in "provisioner:$(prov_pid main)" "simulator:$sim_pid"; do
    pid="${who#*:}"
    [[ -r "/proc/$pid/cmdline" && -r "/proc/$pid/environ" ]] || check_fail "cannot read /proc/$pid of the ${who%%:*}"
    scan_text "/proc/$pid/cmdline (${who%%:*})" < <(tr '\0' '\n' <"/proc/$pid/cmdline")
    scan_text "/proc/$pid/environ (${who%%:*})" < <(tr '\0' '\n' <"/proc/$pid/environ")
    checked+=("/proc/${who%%:*}/{cmdline,environ}")
done

if ((${#leaks[@]} == 0)); then
    log_step "no token in: ${checked[*]}"
else
    printf '  FAIL (debug level): API credentials leaked:\n' >&2
    printf '    %s\n' "${leaks[@]}" >&2
fi
debug_leaks=${#leaks[@]}

# --- the same at trace level (RUST_LOG=trace in the Deployment) ---------------------------
log_step "restart the provisioner (as 'trace') with RUST_LOG=trace set in the Deployment's env"
prov_stop main
kubectl -n "$KUBE_NAMESPACE" set env "deployment/$KUBE_PROVISIONER" RUST_LOG=trace >/dev/null ||
    check_fail "cannot set RUST_LOG on Deployment $KUBE_PROVISIONER"
prov_start trace
check_within 60 "the trace-level provisioner to lead" prov_leads trace
trace_log="$(prov_log trace)"
# One after the other, so the hex dumps of concurrent requests do not interleave.
kube_create_pvc "$ns" trace-file pure-file 1Gi
kube_wait_bound "$ns" trace-file
kube_create_pvc "$ns" trace-block pure-block 1Gi
kube_wait_bound "$ns" trace-block
trace_pvs=("$(kube_pv_of "$ns" trace-block)" "$(kube_pv_of "$ns" trace-file)")
kubectl -n "$ns" delete pvc trace-block trace-file --wait=false >/dev/null
for pv in "${trace_pvs[@]}"; do check_within 60 "PV $pv to be deleted" kube_pv_gone "$pv"; done
prov_stop trace
unset_rust_log || check_fail "cannot remove RUST_LOG from Deployment $KUBE_PROVISIONER"
grep -q ' TRACE ' "$trace_log" || check_fail "$trace_log has no TRACE line: RUST_LOG=trace did not take effect"
scan_file "$trace_log"
trace_leaks=$((${#leaks[@]} - debug_leaks))
if ((trace_leaks == 0)); then
    log_step "no token in the trace-level log $trace_log ($(grep -c ' TRACE ' "$trace_log") TRACE lines)"
else
    printf '  FAIL: PRODUCT BUG (provisioner/src/serve/logging.rs, env_logger built from RUST_LOG with no cap on the\n' >&2
    printf '  HTTP libraries): at RUST_LOG=trace, ureq_proto hex-dumps raw array traffic into the log,\n' >&2
    printf '  API token headers included (flexdriver/src/runtime/logger.rs holds libraries to debug for this reason):\n' >&2
    printf '    %s\n' "${leaks[@]:debug_leaks}" >&2
fi

((${#leaks[@]} == 0)) || check_fail "API credentials leaked in ${#leaks[@]} place(s) (${debug_leaks} at debug level, ${trace_leaks} at trace level; listed above)"
kubectl delete namespace "$ns" --wait=false >/dev/null
