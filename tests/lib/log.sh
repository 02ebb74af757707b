# shellcheck shell=bash
# What the reader sees (part of harness.sh):
#   - log_info, log_die: "[TAG HH:MM:SS] message" on stderr. TAG is FLASHVOL_LOG_TAG, which each
#     entry point exports as its own name (quickstart, e2e, reliability, bench), so every line,
#     a scenario's included, names the command the user ran;
#   - log_step: one line of a scenario's progress, on stdout.

log_info() { printf '[%s %s] %s\n' "${FLASHVOL_LOG_TAG:-flashvol}" "$(date -u +%H:%M:%S)" "$*" >&2; }
log_die() {
    log_info "error: $*"
    exit 1
}
log_step() { printf '  - %s\n' "$*"; }

# tests/cluster/lib.sh's helpers (apt_install, require_cmd) report through its `log`, which says
# "[cluster …]"; in a run of the harness they speak for the caller, so their lines carry its tag.
log() { log_info "$@"; }
