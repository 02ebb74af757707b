#!/usr/bin/env bash
# Benchmarks flashvol: the flex driver (init, mount/unmount of block and NFS volumes over the test
# fabric) and the provisioner on the real control plane (bursts, paced arrivals, deletes, memory
# with many cached objects), with the array simulator adding 0 ms and 5 ms per call; then the same
# provisioner runs for the Go peer (bench/peer, at the library's defaults and at flashvol's limits)
# on the same control plane, for the side-by-side table. Writes
# bench/results/{REPORT.md,flex.json,provisioner.json,peer-*.json,meta.json,*.png}.
#
# Usage: sudo bench/run.sh [--quick] [--only flex|provisioner] [--out DIR] [--kcm-args "FLAGS"]
#   --quick     smaller counts (a smoke run CI can afford: about 8 minutes)
#   --only      run one half; the report is made from whatever JSON is in the output dir
#   --out       result directory (default bench/results)
#   --kcm-args  extra kube-controller-manager flags for the cluster, whitespace-separated, each
#               --name=value (FLASHVOL_KCM_EXTRA_ARGS of tests/cluster/up.sh), e.g.
#               --kcm-args "--kube-api-qps=100 --kube-api-burst=200"; default: none (upstream
#               defaults, client 20 QPS / burst 30). The report states the flags used.
# Environment: BENCH_PHASES=burst,paced,memory (a subset of the provisioner phases, for flashvol
# and the peer alike); BENCH_PEERS=defaults,tuned (which Go peer runs to take; an empty value
# takes none); BENCH_ROUNDS=N (default 1) adds N-1 rounds of the burst and paced phases after the
# first, flashvol then each peer again, into provisioner.round-R.json and peer-LABEL.round-R.json
# (the side-by-side table gives each row's median over the rounds, its range, and the range of the
# per-round ratios); BENCH_KEEP=1 keeps the work dir (provisioner, peer and driver logs and the
# cluster's component logs in logs/cluster/; the simulator's state is on a tmpfs, gone at exit).
# Needs root (loop devices, mounts), like tests/e2e. Builds the release binaries (the flex
# driver statically linked, as shipped), the Go peer (through the Go module proxy), a Python
# venv with matplotlib in bench/.venv, and starts one cluster with tests/cluster/with-cluster.sh.
set -euo pipefail
bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export FLASHVOL_LOG_TAG=bench
# shellcheck source=../tests/lib/harness.sh
. "$bench_dir/../tests/lib/harness.sh"

BENCH_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/bench-bin"
STATIC_TARGET=x86_64-unknown-linux-gnu
VENV="$bench_dir/.venv"
# The e2e arrays are small (8 and 12 GiB) so placement by free space shows in a few claims. A
# benchmark burst asks for 1,000 × 1 GiB, and the provisioner charges each new volume against
# its cached free space: give the simulated FlashArrays room, as a production array would have.
SIM_FA_A_CAPACITY=$((64 << 40))
SIM_FA_B_CAPACITY=$((96 << 40))

# shell_words WORD...: the words as one shell command line, quoting only those that need it.
shell_words() {
    local word out=()
    for word in "$@"; do
        if [[ -n "$word" && "$word" != *[!A-Za-z0-9_./=:,+@%-]* ]]; then
            out+=("$word")
        else
            out+=("'${word//\'/\'\\\'\'}'")
        fi
    done
    printf '%s' "${out[*]}"
}

parse_args() {
    QUICK=0 ONLY="" OUT="$bench_dir/results" KCM_ARGS="" KCM_ARGS_GIVEN=0
    while (($#)); do
        case "$1" in
        --quick) QUICK=1 ;;
        --only)
            [[ "${2:-}" == flex || "${2:-}" == provisioner ]] || log_die "--only takes flex or provisioner, got '${2:-}'"
            ONLY="$2"
            shift
            ;;
        --out)
            [[ -n "${2:-}" ]] || log_die "--out needs a directory"
            OUT="$2"
            shift
            ;;
        --kcm-args)
            (($# >= 2)) || log_die "--kcm-args needs a value, e.g. --kcm-args \"--kube-api-qps=100 --kube-api-burst=200\""
            KCM_ARGS="$2" KCM_ARGS_GIVEN=1
            shift
            ;;
        -h | --help) usage "$0"; exit 0 ;;
        *) log_die "unknown argument '$1' (see --help)" ;;
        esac
        shift
    done
    QUICK_FLAG=()
    if ((QUICK)); then QUICK_FLAG=(--quick); fi
    # BENCH_PHASES limits flashvol's provisioner phases and the peer's alike: same rows for both.
    PHASE_ARGS=()
    local phase
    for phase in ${BENCH_PHASES:+${BENCH_PHASES//,/ }}; do
        [[ "$phase" == burst || "$phase" == paced || "$phase" == memory ]] ||
            log_die "BENCH_PHASES: unknown phase '$phase' (burst, paced, memory)"
        PHASE_ARGS+=(--only "$phase")
    done
    # BENCH_ROUNDS repeats the burst and paced phases of every subject, alternating subjects, so
    # a ratio rests on several runs of each taken in turn, not on one run of each.
    ROUNDS="${BENCH_ROUNDS:-1}"
    [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || log_die "BENCH_ROUNDS must be a whole number of rounds, 1 or more, got '$ROUNDS'"
    ROUND_PHASE_ARGS=()
    local round_phases="${BENCH_PHASES:-burst,paced}"
    for phase in ${round_phases//,/ }; do
        if [[ "$phase" == burst || "$phase" == paced ]]; then ROUND_PHASE_ARGS+=(--only "$phase"); fi
    done
    if ((ROUNDS > 1 && ${#ROUND_PHASE_ARGS[@]} == 0)); then
        log_die "BENCH_ROUNDS repeats the burst and paced phases, and BENCH_PHASES=${BENCH_PHASES:-} has neither"
    fi
    # BENCH_PEERS picks the Go peer's runs: at the library's defaults, tuned to flashvol's limits.
    PEERS=()
    local peers="${BENCH_PEERS-defaults,tuned}" peer
    for peer in ${peers//,/ }; do
        [[ "$peer" == defaults || "$peer" == tuned ]] ||
            log_die "BENCH_PEERS: unknown peer run '$peer' (defaults, tuned)"
        PEERS+=("$peer")
    done
    # Checked now, not minutes later when the cluster starts after the builds.
    parse_kcm_extra_args "$KCM_ARGS" --kcm-args
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
}

# The Go peer, through the Go module proxy (go.sum pins every module; Go's own caches keep it).
build_peer() {
    log_info "building the Go peer (bench/peer)"
    (cd "$bench_dir/peer" && go build -mod=readonly -trimpath -o "$BENCH_BIN/flashvol-bench-peer" .) ||
        log_die "go build of bench/peer failed"
}

build_release() {
    log_info "building the static flex driver and the release provisioner and simulator"
    (cd "$REPO_ROOT" &&
        RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release --target "$STATIC_TARGET" -p flashvol-flexdriver &&
        cargo build -q --release -p flashvol-provisioner -p flashvol-arraysim) || log_die "cargo build --release failed"
    local target="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
    mkdir -p "$BENCH_BIN"
    install -m 0755 "$target/$STATIC_TARGET/release/flashvol-flex" "$BENCH_BIN/flashvol-flex"
    install -m 0755 "$target/release/flashvol-provisioner" "$BENCH_BIN/flashvol-provisioner"
    install -m 0755 "$target/release/flashvol-arraysim" "$BENCH_BIN/flashvol-arraysim"
    ldd "$BENCH_BIN/flashvol-flex" 2>&1 | grep -Eq 'statically linked|not a dynamic executable' ||
        log_die "$BENCH_BIN/flashvol-flex is not statically linked: $(ldd "$BENCH_BIN/flashvol-flex" 2>&1 | head -n 3)"
}

make_venv() {
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
        log_info "creating $VENV with matplotlib"
        python3 -m venv "$VENV" || log_die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$VENV/bin/pip" install -q 'matplotlib>=3.7,<4' || log_die "pip install matplotlib failed"
    fi
}

# --- inside the cluster ---------------------------------------------------------------------
inside() {
    # The harness copies the binaries it runs from here: the release ones.
    HOST_BUILD_DIR="$BENCH_BIN"
    workdir_create
    workdir_cleanup_at_exit "${BENCH_KEEP:-0}"
    trap bench_on_exit EXIT
    # The simulated arrays keep their state and sparse backing files in memory, as real arrays
    # keep their metadata off the provisioner's host: on this disk every create and state save
    # allocated and freed ext4 inodes, over half of the simulator's CPU, on the two cores the
    # control plane needs. The teardown unmounts it with everything else under the work dir.
    mkdir -p "$WORKDIR/sim/state"
    mount -t tmpfs -o mode=0700 flashvol-bench-sim "$WORKDIR/sim/state" || log_die "cannot mount a tmpfs for the simulator's state"
    # Nor do they rewrite their whole state file on every change (the benchmark never restarts
    # them). Even on tmpfs, on an idle machine, a create took 0.37 ms (p50) with that write and
    # 0.27 ms without on an empty array, 0.57 against 0.26 ms once it held 400 volumes, and the
    # simulator spent twice the CPU: CPU the control plane shares, in flashvol's runs only.
    SIM_PERSIST=false
    suite_setup
    # As installed: the driver logs at info (flex_setup_node asks for debug, which is for tests).
    jq '.node.logLevel = "info"' "$FLEX_SETTINGS" >"$FLEX_SETTINGS.new" && mv "$FLEX_SETTINGS.new" "$FLEX_SETTINGS"
    chmod 600 "$FLEX_SETTINGS"

    write_meta
    if [[ "$ONLY" != provisioner ]]; then bench_flex; fi
    if [[ "$ONLY" != flex ]]; then
        bench_provisioner
        bench_peer
        bench_rounds
    fi
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
bench_on_exit() {
    local rc=$? pidfile
    # The harness's teardown knows its own processes; the Go peer is the benchmark's.
    for pidfile in "$WORKDIR"/pids/peer-*; do
        [[ -f "$pidfile" ]] && workdir_signal "$pidfile" "$BENCH_BIN/flashvol-bench-peer" KILL
    done
    # With BENCH_KEEP=1 the cluster's component logs (the controller-manager's above all: what it
    # was still working off when a run started) are kept with the work dir; down.sh removes them.
    if [[ "${BENCH_KEEP:-0}" == 1 && -d "${FLASHVOL_CLUSTER_STATE:-}/logs" ]]; then
        if ! (mkdir -p "$WORKDIR/logs/cluster" && cp -p "$FLASHVOL_CLUSTER_STATE"/logs/* "$WORKDIR/logs/cluster/"); then
            log_info "could not keep the cluster's logs ($FLASHVOL_CLUSTER_STATE/logs)"
        fi
    fi
    (exit "$rc")
    workdir_on_exit
}

# The controller-manager's extra flags come from the cluster's own record (<state>/env, exported
# by with-cluster.sh): what up.sh applied, not what was asked for.
write_meta() {
    local kcm_cmdline="$FLASHVOL_CLUSTER_STATE/logs/kube-controller-manager.cmdline"
    jq -n --arg cmd "$BENCH_COMMAND" --arg k8s "$(kubectl version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion')" \
        --arg kcm_extra "${FLASHVOL_KCM_EXTRA_ARGS:-}" --arg kcm_cmdline "$(cat "$kcm_cmdline" 2>/dev/null)" \
        --arg kubectl "$(kubectl version --client -o json 2>/dev/null | jq -r '.clientVersion.gitVersion')" \
        --arg started "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson quick "$QUICK" \
        --arg flex_size "$(stat -c %s "$BENCH_BIN/flashvol-flex")" \
        --arg ldd "$(ldd "$BENCH_BIN/flashvol-flex" 2>&1 | head -n 1 | sed 's/^[[:space:]]*//')" \
        '{command: $cmd, started: $started, quick: ($quick == 1), kubernetes: $k8s, kubectl: $kubectl,
          flex_binary_bytes: ($flex_size | tonumber), flex_ldd: $ldd,
          kcm_extra_args: [$kcm_extra | splits("\\s+") | select(length > 0)], kcm_cmdline: $kcm_cmdline}' >"$OUT/meta.partial.json"
    "$VENV/bin/python" - "$REPO_ROOT" "$OUT/meta.partial.json" "$OUT/meta.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1] + "/bench")
import benchlib
meta = json.load(open(sys.argv[2]))
meta["machine"] = benchlib.machine_facts(sys.argv[1])
meta["load_at_start"] = benchlib.load_average()
json.dump(meta, open(sys.argv[3], "w"), indent=1)
PY
    rm -f "$OUT/meta.partial.json"
}

bench_flex() {
    local ns=bench-flex block_pv file_pv pod_uid=00000000-0000-0000-0000-000000000000
    kube_make_namespace "$ns"
    kube_create_pvc "$ns" block pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
    kube_create_pvc "$ns" file pure-file 1Gi ReadWriteOnce
    kube_wait_bound "$ns" block
    kube_wait_bound "$ns" file
    block_pv="$(kube_pv_of "$ns" block)"
    file_pv="$(kube_pv_of "$ns" file)"
    jq -n --arg root "$FLEX_KUBELET_ROOT" --arg arrays "$WORKDIR/sim/arrays.jsonl" --arg ca "$SIM_CA" \
        --arg bpv "$block_pv" --argjson bopt "$(flex_options "$block_pv" "$ns" bench "$pod_uid")" --arg bfab "$(flex_fabric_for_pv "$block_pv")" \
        --arg fpv "$file_pv" --argjson fopt "$(flex_options "$file_pv" "$ns" bench "$pod_uid")" --arg ffab "$(flex_fabric_for_pv "$file_pv")" '{
        kubelet_root: $root, arrays_jsonl: $arrays, ca: $ca,
        volumes: [{kind: "block", pv: $bpv, options: $bopt, fabric: $bfab},
                  {kind: "file", pv: $fpv, options: $fopt, fabric: $ffab}]}' >"$WORKDIR/flex-setup.json"
    log_info "flex driver benchmark ($FLEX_BIN, block $block_pv, file $file_pv)"
    "$VENV/bin/python" "$bench_dir/flexbench.py" --flex "$FLEX_BIN" --setup "$WORKDIR/flex-setup.json" \
        --out "$OUT/flex.json" "${QUICK_FLAG[@]}" || log_die "flex benchmark failed"
    kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
}

# bench_provisioner [SUFFIX PHASE_ARG...]: provbench against flashvol's provisioner into
# provisioner${SUFFIX}.json, with the given phases (default: those BENCH_PHASES picks).
bench_provisioner() {
    local suffix="${1:-}" phases=("${PHASE_ARGS[@]}")
    if (($# > 1)); then phases=("${@:2}"); fi
    jq -n --arg state "$FLASHVOL_CLUSTER_STATE" --arg arrays "$WORKDIR/sim/arrays.jsonl" --arg ca "$SIM_CA" \
        --arg pid "$WORKDIR/pids/provisioner-main" --arg metrics "http://$(prov_http main)/metrics" \
        '{cluster_state: $state, arrays_jsonl: $arrays, ca: $ca, provisioner_pid_file: $pid, metrics_url: $metrics}' >"$WORKDIR/prov-setup.json"
    log_info "provisioner benchmark"
    "$VENV/bin/python" "$bench_dir/provbench.py" --setup "$WORKDIR/prov-setup.json" --out "$OUT/provisioner$suffix.json" \
        "${QUICK_FLAG[@]}" "${phases[@]}" || log_die "provisioner benchmark failed"
}

# bench_peer [SUFFIX PHASE_ARG...]: the same runs for the Go peer (bench/peer), into
# peer-LABEL${SUFFIX}.json, once at the library's defaults and once with flashvol's own client
# limits and workers (as the harness started it: the flag on its command line, else the default
# its --help states), after flashvol's provisioner is stopped: both answer claims of
# pure-provisioner.
bench_peer() {
    local qps burst workers
    qps="$(provisioner_setting kube-api-qps)"
    burst="$(provisioner_setting kube-api-burst)"
    workers="$(provisioner_setting workers)"
    prov_stop main
    if [[ " ${PEERS[*]} " == *" defaults "* ]]; then
        PEER_ARGS=()
        peer_measure defaults "$@"
    fi
    if [[ " ${PEERS[*]} " == *" tuned "* ]]; then
        PEER_ARGS=(--kube-api-qps "$qps" --kube-api-burst "$burst" --threadiness "$workers")
        peer_measure tuned "$@"
    fi
}

# bench_rounds: rounds 2..BENCH_ROUNDS of the burst and paced phases, each subject in the same
# order as the first round; flashvol's provisioner is started again (the peer stopped it).
bench_rounds() {
    local round
    for ((round = 2; round <= ROUNDS; round++)); do
        log_info "round $round of $ROUNDS"
        (prov_ensure_main) || log_die "the provisioner did not start again (see $WORKDIR/logs/provisioner-main.log)"
        bench_provisioner ".round-$round" "${ROUND_PHASE_ARGS[@]}"
        bench_peer ".round-$round" "${ROUND_PHASE_ARGS[@]}"
    done
}

# provisioner_setting FLAG: the number the benchmarked provisioner ran with for --FLAG.
provisioner_setting() {
    local flag="$1" cmdline value
    cmdline="$(cat "$WORKDIR/logs/provisioner-main.cmdline")"
    value="$(grep -oE -- "--${flag}[= ][0-9.]+" <<<"$cmdline" | grep -oE '[0-9.]+$')" ||
        value="$("$BENCH_BIN/flashvol-provisioner" --help |
            grep -A1 -E -- "^ +--$flag " | grep -oE '\[default: [0-9.]+\]' | grep -oE '[0-9.]+')" ||
        log_die "--$flag is neither on the provisioner's command line ($cmdline) nor a default in its --help"
    printf '%s\n' "$value"
}

# peer_measure LABEL [SUFFIX PHASE_ARG...]: starts the peer (flags from PEER_ARGS) with the
# provisioner's ServiceAccount, runs provbench against it into peer-LABEL${SUFFIX}.json, stops it.
peer_measure() {
    local label="$1" suffix="${2:-}" pidfile="$WORKDIR/pids/peer-$1" phases=("${PHASE_ARGS[@]}")
    local args=("${PEER_ARGS[@]}")
    if (($# > 2)); then phases=("${@:3}"); fi
    log_info "Go peer benchmark ($label${suffix:+, $suffix}: ${args[*]:-library defaults})"
    (
        env -i PATH="$PATH" HOME="$WORKDIR" setsid "$BENCH_BIN/flashvol-bench-peer" \
            --kubeconfig "$KUBE_SA_KUBECONFIG" "${args[@]}" </dev/null >>"$WORKDIR/logs/peer-$label.log" 2>&1 &
        echo "$!" >"$pidfile"
    )
    jq --arg pid "$pidfile" --arg peer_label "$label" --arg args "${args[*]}" \
        '.provisioner_pid_file = $pid | del(.metrics_url) | .subject = {name: "peer", label: $peer_label, args: $args, array_io: false}' \
        "$WORKDIR/prov-setup.json" >"$WORKDIR/peer-setup.json"
    "$VENV/bin/python" "$bench_dir/provbench.py" --setup "$WORKDIR/peer-setup.json" --out "$OUT/peer-$label$suffix.json" \
        "${QUICK_FLAG[@]}" "${phases[@]}" || log_die "Go peer benchmark ($label) failed (see $WORKDIR/logs/peer-$label.log)"
    workdir_signal "$pidfile" "$BENCH_BIN/flashvol-bench-peer" TERM || log_die "the Go peer ($label) did not stop"
}

# --- outer run ------------------------------------------------------------------------------
outer() {
    host_prerequisites
    apt_install strace time
    build_release
    if [[ "$ONLY" != flex ]]; then build_peer; fi
    make_venv
    "$REPO_ROOT/tests/cluster/build.sh" >&2 || log_die "building the control plane binaries failed"
    local only_arg=()
    if [[ -n "$ONLY" ]]; then only_arg=(--only "$ONLY"); fi
    case "$ONLY" in
    flex) rm -f "$OUT/flex.json" ;;
    provisioner) rm -f "$OUT"/provisioner.json "$OUT"/provisioner.round-*.json "$OUT"/peer-*.json ;;
    *) rm -f "$OUT/flex.json" "$OUT"/provisioner.json "$OUT"/provisioner.round-*.json "$OUT"/peer-*.json ;;
    esac
    # Only --kcm-args sets the controller-manager's flags, so the command in the report says it all.
    if [[ -n "${FLASHVOL_KCM_EXTRA_ARGS:-}" && $KCM_ARGS_GIVEN == 0 ]]; then
        log_info "ignoring FLASHVOL_KCM_EXTRA_ARGS='$FLASHVOL_KCM_EXTRA_ARGS' from the environment: use --kcm-args"
    fi
    if ((${#KCM_EXTRA_ARGS[@]})); then
        log_info "kube-controller-manager extra flags: ${KCM_EXTRA_ARGS[*]}"
    else
        log_info "kube-controller-manager at upstream defaults (no --kcm-args)"
    fi
    BENCH_COMMAND="${BENCH_PHASES:+BENCH_PHASES=$BENCH_PHASES }${BENCH_PEERS+BENCH_PEERS=$BENCH_PEERS }${BENCH_ROUNDS:+BENCH_ROUNDS=$BENCH_ROUNDS }$(shell_words bench/run.sh "$@")" \
        FLASHVOL_KCM_EXTRA_ARGS="${KCM_EXTRA_ARGS[*]}" "$REPO_ROOT/tests/cluster/with-cluster.sh" \
        bash "$bench_dir/run.sh" --inside "${QUICK_FLAG[@]}" "${only_arg[@]}" --out "$OUT" ||
        log_die "the benchmark failed (see above)"
    "$VENV/bin/python" "$bench_dir/report.py" --results "$OUT" || log_die "report generation failed"
    log_info "report: $OUT/REPORT.md"
}

if [[ "${1:-}" == --inside ]]; then
    shift
    parse_args "$@"
    : "${BENCH_COMMAND:?set by the outer run}"
    export BENCH_COMMAND
    inside
else
    parse_args "$@"
    [[ $(id -u) == 0 ]] || log_die "run as root (loop devices, mounts)"
    outer "$@"
fi
