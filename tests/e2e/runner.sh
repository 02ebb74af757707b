# shellcheck shell=bash
# Runs a suite of NN-*.sh scenarios under ONE control plane; shared by tests/e2e and
# tests/reliability. Sourced by a suite's run.sh (after lib.sh), which sets:
#   SUITE_DIR               the directory holding run.sh and the NN-*.sh scenarios
#   SUITE_NAME              for messages ("e2e", "reliability")
#   SUITE_SCENARIO_TIMEOUT  seconds a scenario may take before it fails
#   SUITE_KEEP              1 keeps the test root even after a success
# may define suite_after_scenario (run between scenarios), then calls: suite_main "$@"
#
# Outside the cluster it builds what is needed and re-runs run.sh --inside under
# tests/cluster/with-cluster.sh; inside, it sets up the simulator, the shipped manifests, the
# fake node and the provisioner once (lib.sh), then runs every scenario in turn, each bounded.
# The last line is "N passed, N failed" (scenarios); the exit status is non-zero on any failure.

select_scenarios() {
    local file name pattern
    for file in "$SUITE_DIR"/[0-9][0-9]-*.sh; do
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
suite_inside() {
    local results="$1"
    shift
    e2e_make_root
    E2E_OK=false
    # shellcheck disable=SC2317 # invoked by the trap
    on_exit() {
        e2e_teardown
        if $E2E_OK && [[ "$SUITE_KEEP" != 1 ]]; then
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
    log "applying install/manifests/flashvol.yaml (Secret pure-provisioner-secret gets the test pure.json)"
    e2e_install_manifests "$E2E_ROOT/pure.json"
    e2e_service_account_kubeconfig
    node_setup
    log "starting the provisioner as $E2E_NAMESPACE_SYSTEM/$E2E_SERVICE_ACCOUNT with the Deployment's args"
    (ensure_main_provisioner) || die "the provisioner did not start (see $E2E_ROOT/logs/provisioner-main.log)"

    local scenario name start rc
    while IFS= read -r scenario; do
        name="$(basename "$scenario" .sh)"
        printf '\n=== %s\n' "$name"
        start=$SECONDS
        rc=0
        timeout --kill-after=10 "$SUITE_SCENARIO_TIMEOUT" bash "$scenario" || rc=$?
        ((rc == 124)) && printf '  FAIL: %s did not finish within %ss\n' "$name" "$SUITE_SCENARIO_TIMEOUT"
        if ((rc == 0)); then
            printf '=== PASS %s (%ss)\n' "$name" $((SECONDS - start))
            echo "pass $name" >>"$results"
        else
            printf '=== FAIL %s (%ss, exit %s)\n' "$name" $((SECONDS - start)) "$rc"
            echo "fail $name" >>"$results"
        fi
        if declare -F suite_after_scenario >/dev/null; then suite_after_scenario; fi
        # Every scenario finds the shared provisioner running, whatever the last one did.
        (ensure_main_provisioner) || log "could not restart the shared provisioner"
    done < <(select_scenarios "$@")
    ! grep -q '^fail ' "$results" && E2E_OK=true
    $E2E_OK
}

# --- outer run -------------------------------------------------------------------
suite_outer() {
    local scenarios results rc=0 start=$SECONDS
    mapfile -t scenarios < <(select_scenarios "$@")
    ((${#scenarios[@]} > 0)) || die "no scenario matches: $*"
    e2e_prerequisites
    e2e_build
    "$REPO_ROOT/tests/cluster/build.sh" >&2 || die "building the control plane binaries failed"
    results="$(mktemp "${TMPDIR:-/tmp}/flashvol-$SUITE_NAME-results.XXXXXX")"
    "$REPO_ROOT/tests/cluster/with-cluster.sh" bash "$SUITE_DIR/run.sh" --inside "$results" "$@" || rc=$?
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
    log "$SUITE_NAME took $((SECONDS - start))s"
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

suite_main() {
    case "${1:-}" in
    --inside) shift; suite_inside "$@" ;;
    -h | --help) sed -n '2,/^set /p' "$SUITE_DIR/run.sh" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *) suite_outer "$@" ;;
    esac
}
