#!/usr/bin/env bash
# Runs the cluster-level reliability scenarios (tests/reliability/NN-*.sh) on a real control
# plane, set up exactly as tests/e2e/run.sh sets it up (its lib.sh: the array simulator with
# fa-a, fa-b and fb-1, the shipped install manifests, the fake node, the provisioner running with
# the manifests' ServiceAccount token and the Deployment's args), then every scenario in turn.
#
# Usage: tests/reliability/run.sh [PATTERN...]
#   PATTERN  run only scenarios whose file name contains it (e.g. 02 or rbac)
# Needs root. REL_KEEP=1 keeps the test root; REL_SCENARIO_TIMEOUT (600) bounds each scenario.
# The last line is "N passed, N failed" (scenarios); the exit status is non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../e2e/lib.sh
. "$here/../e2e/lib.sh"

SCENARIO_TIMEOUT="${REL_SCENARIO_TIMEOUT:-600}"

select_scenarios() {
    local file name pattern
    for file in "$here"/[0-9][0-9]-*.sh; do
        name="$(basename "$file")"
        if (($# == 0)); then
            echo "$file"
            continue
        fi
        for pattern in "$@"; do
            [[ "$name" == *"$pattern"* ]] && { echo "$file"; break; }
        done
    done
}

# --- inside the cluster (with-cluster.sh run.sh --inside) ---------------------------
inside() {
    local results="$1"
    shift
    e2e_make_root
    E2E_OK=false
    # shellcheck disable=SC2317 # invoked by the trap
    on_exit() {
        e2e_teardown
        if $E2E_OK && [[ "${REL_KEEP:-0}" != 1 ]]; then
            rm -rf "$E2E_ROOT"
        else
            log "test root kept for inspection: $E2E_ROOT (logs in $E2E_ROOT/logs)"
        fi
    }
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    log "test root $E2E_ROOT"
    e2e_make_ca
    sim_start
    e2e_write_pure_json "$E2E_ROOT/pure.json"
    e2e_install_manifests "$E2E_ROOT/pure.json"
    e2e_service_account_kubeconfig
    node_setup
    (ensure_main_provisioner) || die "the provisioner did not start (see $E2E_ROOT/logs/provisioner-main.log)"

    local scenario name start rc
    while IFS= read -r scenario; do
        name="$(basename "$scenario" .sh)"
        printf '\n=== %s\n' "$name"
        start=$SECONDS
        rc=0
        timeout --kill-after=10 "$SCENARIO_TIMEOUT" bash "$scenario" || rc=$?
        ((rc == 124)) && printf '  FAIL: %s did not finish within %ss\n' "$name" "$SCENARIO_TIMEOUT"
        if ((rc == 0)); then
            printf '=== PASS %s (%ss)\n' "$name" $((SECONDS - start))
            echo "pass $name" >>"$results"
        else
            printf '=== FAIL %s (%ss, exit %s)\n' "$name" $((SECONDS - start)) "$rc"
            echo "fail $name" >>"$results"
        fi
        # Faults never outlive their scenario, and the next one finds the shared provisioner.
        for array in fa-a fa-b fb-1; do
            curl -fsS --max-time 10 --cacert "$E2E_CA" -X DELETE "$(sim_field "$array" admin_url)/faults" >/dev/null 2>&1 ||
                log "could not clear the faults of $array"
        done
        (ensure_main_provisioner) || log "could not restart the shared provisioner"
    done < <(select_scenarios "$@")
    ! grep -q '^fail ' "$results" && E2E_OK=true
    $E2E_OK
}

# --- outer run -------------------------------------------------------------------
outer() {
    local scenarios results rc=0 start=$SECONDS
    mapfile -t scenarios < <(select_scenarios "$@")
    ((${#scenarios[@]} > 0)) || die "no scenario matches: $*"
    e2e_prerequisites
    e2e_build
    "$REPO_ROOT/tests/cluster/build.sh" >&2 || die "building the control plane binaries failed"
    results="$(mktemp "${TMPDIR:-/tmp}/flashvol-reliability-results.XXXXXX")"
    "$REPO_ROOT/tests/cluster/with-cluster.sh" bash "$here/run.sh" --inside "$results" "$@" || rc=$?
    local passed failed not_run
    passed="$(grep -c '^pass ' "$results" || true)"
    failed="$(grep -c '^fail ' "$results" || true)"
    not_run=$((${#scenarios[@]} - passed - failed))
    rm -f "$results"
    if ((not_run > 0)); then
        log "$not_run scenario(s) did not run (setup failed, exit $rc)"
        failed=$((failed + not_run))
    fi
    ((rc == 0 || failed > 0)) || failed=1
    log "reliability took $((SECONDS - start))s"
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

case "${1:-}" in
--inside) shift; inside "$@" ;;
-h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' ;;
*) outer "$@" ;;
esac
