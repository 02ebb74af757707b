# shellcheck shell=bash
# A suite's runner (part of harness.sh): every NN-*.sh scenario of a suite under ONE control
# plane; used by tests/e2e/run.sh and tests/reliability/run.sh, which set
#   SUITE_DIR               the directory holding run.sh and the NN-*.sh scenarios
#   SUITE_NAME              for messages ("e2e", "reliability")
#   SUITE_SCENARIO_TIMEOUT  seconds a scenario may take before it fails
#   SUITE_KEEP              1 keeps the work dir even after a success
# may define suite_after_scenario (run between scenarios), then call: suite_main "$@"
#
# Outside the cluster it builds what is needed and re-runs run.sh --inside under
# tests/cluster/with-cluster.sh; inside, it sets up the simulator, the shipped manifests, the
# fake node and the provisioner once, then runs every scenario in turn, each bounded.
# The last line is "N passed, N failed" (scenarios); the exit status is non-zero on any failure.

# suite_select [PATTERN...]: the scenario files whose name contains a PATTERN (all without one).
suite_select() {
    local file name pattern
    for file in "$SUITE_DIR"/[0-9][0-9]-*.sh; do
        name="$(basename "$file")"
        if (($# == 0)); then
            echo "$file"
            continue
        fi
        for pattern in "$@"; do
            [[ "$name" == *"$pattern"* ]] && {
                echo "$file"
                break
            }
        done
    done
}

# --- inside the cluster (with-cluster.sh run.sh --inside) ---------------------------
# suite_inside RESULTS [PATTERN...]: sets up once, runs the scenarios; a line "pass NAME" or
# "fail NAME" per scenario goes to the file RESULTS.
suite_inside() {
    local results="$1"
    shift
    workdir_create
    workdir_cleanup_at_exit "$SUITE_KEEP"

    suite_setup

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
        (prov_ensure_main) || log_info "could not restart the shared provisioner"
    done < <(suite_select "$@")
    ! grep -q '^fail ' "$results"
}

# suite_setup: the world every scenario (and the benchmark) runs in, in a fresh WORKDIR: the
# simulated arrays and their pure.json, the shipped manifests with it in their Secret, the fake
# node with the driver installed, and the shared provisioner "main", leading.
suite_setup() {
    log_info "work dir $WORKDIR"
    sim_make_ca
    sim_start
    sim_write_pure_json "$WORKDIR/pure.json"
    log_info "applying install/manifests/flashvol.yaml (Secret pure-provisioner-secret gets the test pure.json)"
    kube_install_manifests "$WORKDIR/pure.json"
    kube_service_account_kubeconfig
    flex_setup_node
    log_info "starting the provisioner as $KUBE_NAMESPACE/$KUBE_SERVICE_ACCOUNT with the Deployment's args"
    (prov_ensure_main) || log_die "the provisioner did not start (see $WORKDIR/logs/provisioner-main.log)"
}

# --- outer run -------------------------------------------------------------------
suite_outer() {
    local scenarios results rc=0 start=$SECONDS
    mapfile -t scenarios < <(suite_select "$@")
    ((${#scenarios[@]} > 0)) || log_die "no scenario matches: $*"
    host_prerequisites
    host_build
    "$REPO_ROOT/tests/cluster/build.sh" >&2 || log_die "building the control plane binaries failed"
    results="$(mktemp "${TMPDIR:-/tmp}/flashvol-$SUITE_NAME-results.XXXXXX")"
    "$REPO_ROOT/tests/cluster/with-cluster.sh" bash "$SUITE_DIR/run.sh" --inside "$results" "$@" || rc=$?
    local passed failed not_run
    passed="$(grep -c '^pass ' "$results" || true)"
    failed="$(grep -c '^fail ' "$results" || true)"
    not_run=$((${#scenarios[@]} - passed - failed))
    rm -f "$results"
    if ((not_run > 0)); then
        log_info "$not_run scenario(s) did not run (setup failed, exit $rc)"
        failed=$((failed + not_run))
    fi
    ((rc == 0 || failed > 0)) || failed=1
    log_info "$SUITE_NAME took $((SECONDS - start))s"
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

suite_main() {
    case "${1:-}" in
    --inside)
        shift
        suite_inside "$@"
        ;;
    -h | --help) usage "$SUITE_DIR/run.sh" ;;
    *) suite_outer "$@" ;;
    esac
}
