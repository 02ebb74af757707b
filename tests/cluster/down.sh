#!/usr/bin/env bash
# Stops a control plane started by up.sh: kube-scheduler, kube-controller-manager,
# kube-apiserver, then etcd (SIGTERM, then SIGKILL after FLASHVOL_STOP_GRACE seconds, default 15).
#
# Usage: down.sh [--keep | --keep-logs] [--print-logs] [STATE_DIR]
#   STATE_DIR     default: FLASHVOL_CLUSTER_STATE
#   --keep        keep the state dir (also FLASHVOL_KEEP_STATE=1); otherwise a state dir
#                 that up.sh created itself is removed, one given to up.sh is left in place
#   --keep-logs   keep the state dir but drop the etcd data (~60 MB); what failed runs use,
#                 unless FLASHVOL_KEEP_STATE=1
#   --print-logs  print the last lines of each component's log to stderr first
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep="${FLASHVOL_KEEP_STATE:-0}"
[[ "$keep" == 0 || "$keep" == 1 ]] || die "FLASHVOL_KEEP_STATE='$keep' must be 0 or 1"
print_logs=false
state_dir="${FLASHVOL_CLUSTER_STATE:-}"
while (($#)); do
    case "$1" in
    --keep) keep=1; shift ;;
    --keep-logs) [[ "$keep" == 1 ]] || keep=logs; shift ;;
    --print-logs) print_logs=true; shift ;;
    -h | --help) usage "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) state_dir="$1"; shift ;;
    esac
done
[[ -n "$state_dir" ]] || die "no state dir: pass it or set FLASHVOL_CLUSTER_STATE"
[[ -d "$state_dir/pids" ]] || die "$state_dir is not a cluster state dir (no pids/)"
grace="${FLASHVOL_STOP_GRACE:-15}"
[[ "$grace" =~ ^[0-9]+$ ]] || die "FLASHVOL_STOP_GRACE='$grace' is not a number of seconds"

if $print_logs; then
    for logfile in "$state_dir"/logs/*.log; do
        [[ -s "$logfile" && "$logfile" != */openssl.log ]] || continue
        printf '\n===== last lines of %s =====\n' "$logfile" >&2
        tail -n "${FLASHVOL_LOG_TAIL_LINES:-25}" "$logfile" >&2
    done
fi

# still_ours NAME PID: the pid is alive and still runs the binary we started, so a pid
# recycled by an unrelated process is never signalled.
still_ours() {
    local binary exe
    binary="$(cat "$state_dir/pids/$1.binary" 2>/dev/null)" || return 1
    exe="$(readlink "/proc/$2/exe" 2>/dev/null)" || return 1
    [[ "${exe% (deleted)}" == "$binary" ]]
}

stop() {
    local name="$1" pid waited=0
    [[ -f "$state_dir/pids/$name" ]] || return 0
    pid="$(cat "$state_dir/pids/$name")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && still_ours "$name" "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        while still_ours "$name" "$pid" && ((waited < grace * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if still_ours "$name" "$pid"; then
            log "$name (pid $pid) ignored SIGTERM for ${grace}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$state_dir/pids/$name"
}

for component in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$component"; done

if [[ "$keep" == logs ]]; then
    rm -rf "$state_dir/etcd"
    log "stopped; logs and certificates kept in $state_dir"
elif [[ "$keep" != 1 && -f "$state_dir/.created-by-up" ]]; then
    rm -rf "$state_dir"
else
    log "stopped; state kept in $state_dir"
fi
