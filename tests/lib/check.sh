# shellcheck shell=bash
# Verdicts (part of harness.sh): a check that does not hold ends the scenario (or the quickstart)
# with "  FAIL: <why>" on stderr and exit status 1.

# The bound of a wait for a claim, PV, event or array object, in seconds (E2E_TIMEOUT overrides
# it). Provisioning normally takes well under a second here.
# shellcheck disable=SC2034 # read by the other parts and the scenarios
CHECK_TIMEOUT="${E2E_TIMEOUT:-60}"

# check_fail WHY: the check fails here, saying why.
check_fail() {
    printf '  FAIL: %s\n' "$*" >&2
    exit 1
}

# check_eq WHAT ACTUAL EXPECTED
check_eq() {
    [[ "$2" == "$3" ]] || check_fail "$1: expected '$3', got '$2'"
}

# check_within SECONDS WHAT COMMAND...: polls COMMAND (quietly) every CHECK_INTERVAL seconds
# (0.5 unless set, e.g. `CHECK_INTERVAL=0.1 check_within ...` to catch a short-lived state) until
# it succeeds; fails with "timed out after SECONDSs waiting for: WHAT" when it has not by then.
check_within() {
    local limit="$1" what="$2" deadline
    shift 2
    deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || check_fail "timed out after ${limit}s waiting for: $what"
        sleep "${CHECK_INTERVAL:-0.5}"
    done
}
