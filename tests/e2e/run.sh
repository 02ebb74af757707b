#!/usr/bin/env bash
# Runs the end-to-end scenarios (tests/e2e/NN-*.sh) against a real control plane: builds the
# binaries once, starts ONE cluster with tests/cluster/with-cluster.sh, and inside it the array
# simulator (fa-a, fa-b, fb-1), the shipped install manifests (Secret swapped for the test
# pure.json), the flex driver on a fake node, and the provisioner as a process with the
# manifests' ServiceAccount token. Then every scenario runs in turn.
#
# Usage: tests/e2e/run.sh [PATTERN...]
#   PATTERN  run only scenarios whose file name contains it (e.g. 04 or leader)
# Needs root (loop devices, mounts). E2E_KEEP=1 keeps the work dir even after a success.
# The last line is "N passed, N failed" (scenarios); the exit status is non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export FLASHVOL_LOG_TAG=e2e
# shellcheck source=../lib/harness.sh
. "$here/../lib/harness.sh"

SUITE_DIR="$here"
SUITE_NAME=e2e
# Per-scenario bound: a stuck scenario fails instead of hanging the suite.
SUITE_SCENARIO_TIMEOUT="${E2E_SCENARIO_TIMEOUT:-420}"
SUITE_KEEP="${E2E_KEEP:-0}"

suite_main "$@"
