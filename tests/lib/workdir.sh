# shellcheck shell=bash
# The run's work dir (part of harness.sh): one directory, WORKDIR, holding everything a run
# makes: copies of the binaries (bin/), certificates (pki/), simulator state (sim/), pure.json,
# the fake node (node/), logs/ and pids/. Its file `env` holds the variables the setup saved, so
# every scenario (a separate bash process) finds the same environment. At the end of a run
# everything started in it is stopped and everything put on the machine removed
# (workdir_teardown); the directory itself is removed after a success unless kept.

# workdir_create: a fresh WORKDIR (exported), with the binaries of HOST_BUILD_DIR copied into
# WORKDIR_BIN, so the whole run uses one build even if target/ is rebuilt meanwhile, and a pid
# check can trust the executable path.
workdir_create() {
    WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-${FLASHVOL_LOG_TAG:-run}.XXXXXX")"
    WORKDIR="$(cd "$WORKDIR" && pwd)"
    mkdir -p "$WORKDIR"/{logs,pids,pki,sim,etc-pure,node}
    : >"$WORKDIR/env"
    export WORKDIR
    workdir_save WORKDIR
    WORKDIR_BIN="$WORKDIR/bin"
    mkdir -p "$WORKDIR_BIN"
    local bin
    for bin in flashvol-provisioner flashvol-flex flashvol-arraysim; do
        install -m 0755 "$HOST_BUILD_DIR/$bin" "$WORKDIR_BIN/$bin" || log_die "cannot copy $bin into $WORKDIR_BIN"
    done
    workdir_save WORKDIR_BIN
}

# workdir_save NAME...: appends NAME=value lines to $WORKDIR/env, for the scenarios.
workdir_save() {
    local name
    for name in "$@"; do printf '%s=%q\n' "$name" "${!name}" >>"$WORKDIR/env"; done
}

# workdir_load: the variables the setup saved (a scenario's first step).
workdir_load() {
    [[ -n "${WORKDIR:-}" && -f "$WORKDIR/env" ]] ||
        log_die "WORKDIR is not set up (run the scenarios through their suite's run.sh)"
    # shellcheck disable=SC1091
    . "$WORKDIR/env"
}

# workdir_owns PID EXE: PID runs EXE (one of the copies in WORKDIR_BIN), so it is ours to
# signal; a pid recycled by another program never is.
workdir_owns() {
    local exe
    exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
    [[ "${exe% (deleted)}" == "$2" ]]
}

# workdir_signal PIDFILE EXE SIGNAL: sends SIGNAL to the process recorded in PIDFILE if it is
# ours and waits (bounded) until it is gone, SIGKILLing it after 20 s; then removes PIDFILE.
workdir_signal() {
    local pidfile="$1" exe="$2" signal="$3" pid waited=0
    pid="$(cat "$pidfile" 2>/dev/null)" || pid=""
    if [[ -n "$pid" ]] && workdir_owns "$pid" "$exe"; then
        kill "-$signal" "$pid" 2>/dev/null || true
        while workdir_owns "$pid" "$exe" && ((waited < 200)); do sleep 0.1; waited=$((waited + 1)); done
        if workdir_owns "$pid" "$exe"; then
            log_info "$(basename "$exe") (pid $pid) ignored SIG$signal for 20s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$pidfile"
}

# workdir_teardown: stops everything the harness started and removes what it put on the machine:
# provisioners, Prometheus, the node installer, the node's mounts, fabric logins and loop
# devices, the installed driver, the simulator. Safe to call twice and after a partial start.
workdir_teardown() {
    [[ -n "${WORKDIR:-}" && -d "$WORKDIR" ]] || return 0
    prov_kill_all
    prom_stop
    flex_stop_installer
    flex_teardown_node
    sim_stop
    return 0
}

# workdir_cleanup_at_exit KEEP: for a run that owns its work dir (a suite, the benchmark): at
# exit, tear down, then remove the work dir after a success unless KEEP is 1, else say where it
# is. Ctrl-C and SIGTERM exit through it too (status 130, 143).
workdir_cleanup_at_exit() {
    WORKDIR_KEEP="$1"
    trap workdir_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
workdir_on_exit() {
    local rc=$?
    workdir_teardown
    if ((rc == 0)) && [[ "$WORKDIR_KEEP" != 1 ]]; then
        rm -rf "$WORKDIR"
    else
        log_info "work dir kept for inspection: $WORKDIR (logs in logs/, the flex driver's in node/)"
    fi
}
