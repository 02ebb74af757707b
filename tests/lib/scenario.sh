# shellcheck shell=bash
# The frame of one scenario file (part of harness.sh). A scenario is a bash script
# tests/<suite>/NN-name.sh that its suite's runner (suite.sh) runs in a process of its own, after
# the setup: it sources harness.sh, calls scenario_begin "what it proves", and then checks.

# scenario_begin TITLE: loads the setup's environment, prints the title and, when the scenario
# fails, what helps debugging.
scenario_begin() {
    SCENARIO_TITLE="$1"
    workdir_load
    export PATH="${FLASHVOL_K8S_BIN_DIR:-}:$PATH"
    printf '%s\n' "$1"
    trap scenario_on_exit EXIT
}

# scenario_on_exit [STATUS]: the EXIT trap (STATUS defaults to $?; a scenario that extends the
# trap passes the status it saw first): on failure, the tails of the provisioner and driver logs.
scenario_on_exit() {
    local rc="${1:-$?}"
    ((rc == 0)) && return 0
    {
        printf '  --- diagnostics for: %s\n' "$SCENARIO_TITLE"
        local f
        for f in "$WORKDIR"/logs/provisioner-*.log; do
            [[ -f "$f" ]] || continue
            printf '  --- last lines of %s\n' "$f"
            tail -n 15 "$f" | sed 's/^/    /'
        done
        [[ -f "$WORKDIR/node/flex.log" ]] && {
            printf '  --- last lines of flex.log\n'
            tail -n 10 "$WORKDIR/node/flex.log" | sed 's/^/    /'
        }
    } >&2
    return "$rc"
}
