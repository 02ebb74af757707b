# shellcheck shell=bash
# The shell harness shared by quickstart.sh, tests/e2e, tests/reliability and bench/run.sh: it
# loads every part below (sourced, never executed). An entry point exports FLASHVOL_LOG_TAG (its
# name in log lines) before sourcing this file; a scenario file sources it and calls
# scenario_begin.
#
# Each part owns one concern and prefixes its names (functions and variables) with it, so two
# parts never collide and a name says where it is defined:
#   log.sh       log_*       what the reader sees: tagged log lines, a scenario's steps
#   check.sh     check_*     verdicts: fail with a reason, compare, bounded waits
#   host.sh      host_*      this machine: root, packages, loop devices, the debug build, free ports
#   workdir.sh   workdir_*   the run's work dir: created, shared with scenarios, torn down
#   sim.sh       sim_*       the array simulator: CA, arrays, pure.json, state, faults, REST calls
#   kube.sh      kube_*      the cluster: shipped manifests, ServiceAccount, claims, PVs, events
#   prov.sh      prov_*      provisioner processes and the leader Lease
#   flex.sh      flex_*      the flex driver on a fake node, called as kubelet calls it; its installer
#   prom.sh      prom_*      a real Prometheus with the chart's scrape jobs and alert rules
#   scenario.sh  scenario_*  the frame of one scenario file
#   suite.sh     suite_*     a suite's runner: one cluster, set up once, every scenario in turn
# tests/cluster/lib.sh comes first: its apt_install, require_cmd, parse_kcm_extra_args and usage
# are used as they are.

TESTS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TESTS_LIB_DIR/../.." && pwd)"

# shellcheck source=tests/cluster/lib.sh
. "$REPO_ROOT/tests/cluster/lib.sh"
# shellcheck source=tests/lib/log.sh
. "$TESTS_LIB_DIR/log.sh"
# shellcheck source=tests/lib/check.sh
. "$TESTS_LIB_DIR/check.sh"
# shellcheck source=tests/lib/host.sh
. "$TESTS_LIB_DIR/host.sh"
# shellcheck source=tests/lib/workdir.sh
. "$TESTS_LIB_DIR/workdir.sh"
# shellcheck source=tests/lib/sim.sh
. "$TESTS_LIB_DIR/sim.sh"
# shellcheck source=tests/lib/kube.sh
. "$TESTS_LIB_DIR/kube.sh"
# shellcheck source=tests/lib/prov.sh
. "$TESTS_LIB_DIR/prov.sh"
# shellcheck source=tests/lib/flex.sh
. "$TESTS_LIB_DIR/flex.sh"
# shellcheck source=tests/lib/prom.sh
. "$TESTS_LIB_DIR/prom.sh"
# shellcheck source=tests/lib/scenario.sh
. "$TESTS_LIB_DIR/scenario.sh"
# shellcheck source=tests/lib/suite.sh
. "$TESTS_LIB_DIR/suite.sh"
