#!/usr/bin/env bash
# The real-node suite (tests/run-all.sh node): for each Kubernetes release, starts a node with
# flashvol installed by its chart (up.sh), runs the scenarios NN-*.sh against it, stops it
# (down.sh) and checks that nothing of it is left on the machine.
#
# Usage: run.sh [SCENARIO...]     e.g. run.sh 01 02   (default: all, in order)
# FLASHVOL_NODE_VERSIONS: releases to run on, space-separated (default: the pinned default
# release of tests/cluster/versions.env; e.g. "v1.37.2 v1.24.17" for both pins).
# FLASHVOL_KEEP_STATE=1 keeps each node's logs. Prints one line per scenario with its time and
# ends with "node: N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
. "$here/node.sh"

read -r -a versions <<<"${FLASHVOL_NODE_VERSIONS:-$K8S_VERSION}"
scenarios=()
if (($#)); then
    for name in "$@"; do
        matches=("$here/$name"*.sh)
        [[ -f "${matches[0]}" ]] || log_die "no scenario $name in $here"
        scenarios+=("${matches[0]}")
    done
else
    scenarios=("$here"/[0-9][0-9]-*.sh)
fi

results="$(mktemp "${TMPDIR:-/tmp}/flashvol-node-results.XXXXXX")"
NODE_STATE=""
# shellcheck disable=SC2317 # invoked by the traps
stop_node() {
    [[ -n "$NODE_STATE" ]] || return 0
    local state="$NODE_STATE"
    NODE_STATE=""
    FLASHVOL_KEEP_STATE="${FLASHVOL_KEEP_STATE:-0}" "$here/down.sh" "$state" || echo "fail down $state" >>"$results"
}
trap 'stop_node; rm -f "$results"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for version in "${versions[@]}"; do
    log_info "=== Kubernetes $version: starting the node"
    start=$SECONDS
    NODE_STATE="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-node.XXXXXX")"
    if ! "$here/up.sh" --version "$version" --state-dir "$NODE_STATE" >/dev/null; then
        echo "fail $version up" >>"$results"
        NODE_STATE=""
        continue
    fi
    echo "time $version up $((SECONDS - start))" >>"$results"
    log_info "node up in $((SECONDS - start))s"
    for scenario in "${scenarios[@]}"; do
        name="$(basename "$scenario" .sh)"
        start=$SECONDS
        if FLASHVOL_NODE_STATE="$NODE_STATE" bash "$scenario"; then
            echo "pass $version $name $((SECONDS - start))" >>"$results"
            printf 'ok   %s %s (%ss)\n' "$version" "$name" "$((SECONDS - start))"
        else
            echo "fail $version $name $((SECONDS - start))" >>"$results"
            printf 'FAIL %s %s (%ss)\n' "$version" "$name" "$((SECONDS - start))"
            # Whatever the scenario left must not fail the next one.
            (node_load "$NODE_STATE" && node_reset) || log_info "could not reset the node after $name"
        fi
    done
    start=$SECONDS
    state="$NODE_STATE"
    stop_node
    if grep -q "^fail down $state" "$results"; then
        printf 'FAIL %s teardown left something behind (see above)\n' "$version"
    else
        echo "pass $version teardown $((SECONDS - start))" >>"$results"
        printf 'ok   %s teardown: nothing left on the machine (%ss)\n' "$version" "$((SECONDS - start))"
    fi
done

passed="$(grep -c '^pass ' "$results" || true)"
failed="$(grep -c '^fail ' "$results" || true)"
log_info "times: $(awk '$1 == "time" { printf "%s up %ss; ", $2, $4 } $1 == "pass" || $1 == "fail" { printf "%s %s %ss; ", $2, $3, $4 }' "$results")"
echo "node: $passed passed, $failed failed"
((failed == 0 && passed > 0))
