#!/usr/bin/env bash
# Runs the cluster-level reliability scenarios (tests/reliability/NN-*.sh) on a real control
# plane, set up exactly as tests/e2e/run.sh sets it up (the shared harness tests/lib: the array
# simulator with fa-a, fa-b and fb-1, the shipped install manifests, the fake node, the
# provisioner running with the manifests' ServiceAccount token and the Deployment's args), then
# every scenario in turn.
#
# Usage: tests/reliability/run.sh [PATTERN...]
#   PATTERN  run only scenarios whose file name contains it (e.g. 02 or rbac)
# Needs root. REL_KEEP=1 keeps the work dir; REL_SCENARIO_TIMEOUT (600) bounds each scenario.
# The last line is "N passed, N failed" (scenarios); the exit status is non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export FLASHVOL_LOG_TAG=reliability
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"

SUITE_DIR="$here"
SUITE_NAME=reliability
# Per-scenario bound: a stuck scenario fails instead of hanging the suite.
SUITE_SCENARIO_TIMEOUT="${REL_SCENARIO_TIMEOUT:-600}"
SUITE_KEEP="${REL_KEEP:-0}"

# Faults never outlive their scenario.
suite_after_scenario() {
    sim_clear_faults 2>/dev/null || log_info "could not clear the faults of every simulated array"
}

suite_main "$@"
