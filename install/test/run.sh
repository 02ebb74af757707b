#!/usr/bin/env bash
# Every install/ test that needs no cluster, in order:
#   helm      build helm once (cached), then the chart checks (lint, render, PSO values)   chart.sh
#   rendered  install/manifests/flashvol.yaml is a fresh render of the chart     ../check-rendered.sh
#   monitoring ServiceMonitor/PodMonitor/PrometheusRule/dashboard, promtool rule tests  monitoring.sh
#   unit      the node installer's unit tests (cargo)
#   installer the installer as a process: SIGTERM keeps/removes, uninstall, refusals  installer.sh
#   images    static release build, OCI tarball, binaries run from the unpacked image
#   apply     only with a cluster: FLASHVOL_INSTALL_APPLY=1 (uses tests/cluster)         apply.sh
#
#   install/test/run.sh [STEP...]      default: helm rendered monitoring unit installer images
#
# Prints "N passed, N failed" (steps) last; exits non-zero when a step failed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "${here}/../.." && pwd)"

steps=(helm rendered monitoring unit installer images)
[[ "${FLASHVOL_INSTALL_APPLY:-0}" == 1 ]] && steps+=(apply)
[[ $# -gt 0 ]] && steps=("$@")

step_helm() { "${root}/install/tools/helm.sh" version --short && bash "${here}/chart.sh"; }
step_rendered() { bash "${root}/install/check-rendered.sh"; }
step_monitoring() { bash "${here}/monitoring.sh"; }
step_unit() { (cd "${root}" && cargo test --locked -p flashvol-flexdriver --lib install::); }
step_installer() { bash "${here}/installer.sh"; }
step_images() { bash "${root}/install/images/build.sh" && bash "${root}/install/images/test.sh"; }
step_apply() { bash "${root}/tests/cluster/with-cluster.sh" bash "${here}/apply.sh"; }

passed=0 failed=0 failed_steps=()
for step in "${steps[@]}"; do
    declare -F "step_${step}" >/dev/null || { echo "unknown step: ${step}"; exit 2; }
    echo "--- install: ${step}"
    start=$(date +%s)
    if "step_${step}"; then
        passed=$((passed + 1)); echo "--- install: ${step} passed in $(( $(date +%s) - start ))s"
    else
        failed=$((failed + 1)); failed_steps+=("${step}"); echo "--- install: ${step} FAILED after $(( $(date +%s) - start ))s"
    fi
done
[[ ${failed} -gt 0 ]] && echo "failed install steps: ${failed_steps[*]}"
echo "install: ${passed} passed, ${failed} failed"
[[ ${failed} -eq 0 ]]
