#!/usr/bin/env bash
# Runs every flashvol test, as CI does: installs what the tests need, then runs each suite in turn.
#
#   tests/run-all.sh            all suites
#   tests/run-all.sh rust sdk   only the named suites (see SUITES below)
#
# Needs root (loop devices, mounts) and a Debian-like machine. Each suite prints its own progress;
# the last line is the summary "N passed, N failed" (suites, not individual tests).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SUITES=(prereqs lint rust static sdk install cluster e2e node reliability)
[ $# -gt 0 ] && SUITES=("$@")

log() { printf '\n==> %s\n' "$*"; }

suite_prereqs() {
  local missing=()
  command -v mkfs.xfs >/dev/null || missing+=(xfsprogs)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  command -v losetup >/dev/null || missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  command -v openssl >/dev/null || missing+=(openssl)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  python3 -c 'import jsonschema' 2>/dev/null || missing+=(python3-jsonschema) # doctor's JSON schema
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  modprobe loop 2>/dev/null || true
  [ -e /dev/loop-control ] || { echo "no /dev/loop-control: loop devices are required"; return 1; }
}

suite_lint() {
  bash tests/layout-check.sh && cargo fmt --all -- --check && cargo clippy --workspace --all-targets --locked -- -D warnings &&
    python3 -m unittest discover -s bench -p 'test_*.py'
}

suite_rust() {
  cargo test --workspace --locked
}

# The flex driver must run inside containerized kubelets without host libraries.
suite_static() {
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
    --target x86_64-unknown-linux-gnu -p flashvol-flexdriver || return 1
  local bin=target/x86_64-unknown-linux-gnu/release/flashvol-flex
  ldd "$bin" 2>&1 | grep -q 'statically linked' || { echo "$bin is not statically linked"; ldd "$bin"; return 1; }
  local out
  out=$(env -i "$bin" init 2>&1)
  echo "static flashvol-flex init -> $out"
  echo "$out" | jq -e '.status == "Success" and .capabilities.attach == false' >/dev/null
}

suite_sdk() { bash tests/sdk/run.sh; }
suite_install() { bash install/test/run.sh; }
# The control plane itself, then the shipped manifests applied to it (dry-run and real) with
# `kubectl auth can-i` checks of the ServiceAccounts' RBAC.
suite_cluster() {
  bash tests/cluster/smoke.sh && bash tests/cluster/with-cluster.sh bash install/test/apply.sh
}
suite_e2e() { bash tests/e2e/run.sh; }
# A real kubelet node: flashvol's chart installed on it, real pods using its volumes (tests/node/).
# FLASHVOL_NODE_VERSIONS picks the Kubernetes releases (default: the pinned default only).
suite_node() { bash tests/node/run.sh; }
suite_reliability() { bash tests/reliability/run.sh; }

passed=0 failed=0 failed_names=()
for s in "${SUITES[@]}"; do
  if ! declare -F "suite_$s" >/dev/null; then echo "unknown suite: $s"; exit 2; fi
  log "suite $s"
  start=$(date +%s)
  if "suite_$s"; then
    passed=$((passed + 1)); log "suite $s passed in $(( $(date +%s) - start ))s"
  else
    failed=$((failed + 1)); failed_names+=("$s"); log "suite $s FAILED after $(( $(date +%s) - start ))s"
    [ "$s" = prereqs ] && break
  fi
done
[ $failed -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
