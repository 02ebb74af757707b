#!/usr/bin/env bash
# Runs a command against a fresh control plane: starts it with up.sh, runs COMMAND with
# KUBECONFIG (admin, system:masters), FLASHVOL_CLUSTER_STATE, FLASHVOL_FLEX_PLUGIN_DIR,
# FLASHVOL_APISERVER_URL, ... exported and the pinned kubectl first on PATH, then always
# stops the cluster (on success, failure, Ctrl-C or SIGTERM). Exits with COMMAND's status
# (130/143 when interrupted).
#
# Usage: with-cluster.sh COMMAND [ARG...]
# up.sh's options come from the environment (FLASHVOL_CLUSTER_STATE, FLASHVOL_FLEX_PLUGIN_DIR,
# FLASHVOL_K8S_VERSION, ports, FLASHVOL_KCM_EXTRA_ARGS); see up.sh --help. When COMMAND fails,
# the last lines of each component log are printed and the state dir is kept for inspection.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($#)) || die "usage: with-cluster.sh COMMAND [ARG...]"
[[ "$1" != -h && "$1" != --help ]] || { usage "$0"; exit 0; }

state_dir=""
up_output=""
child_pid=""
command_rc=0

# shellcheck disable=SC2317 # invoked by the traps below
teardown() {
    local rc=$?
    trap - EXIT INT TERM
    ((command_rc != 0)) || command_rc=$rc
    [[ -z "$up_output" ]] || rm -f "$up_output"
    if [[ -n "$state_dir" ]]; then
        if ((command_rc == 0)); then
            "$CLUSTER_DIR/down.sh" "$state_dir" || command_rc=1
        else
            "$CLUSTER_DIR/down.sh" --print-logs --keep-logs "$state_dir" || true
        fi
    fi
    exit "$command_rc"
}

# interrupted STATUS: stops up.sh or the command (a signal aimed at this script alone must
# not leave either running), waits for it, then exits into teardown. It sends SIGTERM even
# for Ctrl-C: a background job of a non-interactive shell ignores SIGINT.
# shellcheck disable=SC2317 # invoked by the traps below
interrupted() {
    trap - INT TERM
    if [[ -n "$child_pid" ]]; then
        kill -TERM "$child_pid" 2>/dev/null || true
        wait "$child_pid" 2>/dev/null || true
    fi
    command_rc="$1"
    exit "$1"
}
trap teardown EXIT
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

# run_child COMMAND...: runs COMMAND in the background and waits, so that a signal runs
# our trap at once (instead of after the command ends) and is passed on to it; stdin is
# passed on explicitly (a background job would get /dev/null). Sets child_rc.
child_rc=0
run_child() {
    "$@" <&0 &
    child_pid=$!
    child_rc=0
    wait "$child_pid" || child_rc=$?
    child_pid=""
}

up_output="$(mktemp "${TMPDIR:-/tmp}/flashvol-up.XXXXXX")"
run_child "$CLUSTER_DIR/up.sh" >"$up_output"
state_dir="$(sed -n 's/^FLASHVOL_CLUSTER_STATE=//p' "$up_output")"
rm -f "$up_output"
((child_rc == 0)) || exit "$child_rc"
[[ -n "$state_dir" && -f "$state_dir/env" ]] || die "up.sh did not report a state dir"

# The env file is written by up.sh: plain NAME=value lines; a value that may hold spaces
# (FLASHVOL_KCM_EXTRA_ARGS) is in single quotes, and never contains one.
while IFS='=' read -r name value; do
    [[ "$name" =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "unexpected line in $state_dir/env: $name"
    if [[ "$value" == \'*\' ]]; then value="${value:1:${#value}-2}"; fi
    export "$name=$value"
done <"$state_dir/env"
export PATH="$FLASHVOL_K8S_BIN_DIR:$PATH"

run_child "$@"
command_rc=$child_rc
exit "$command_rc"
