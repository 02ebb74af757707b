# shellcheck shell=bash
# This machine (part of harness.sh): what a run needs of it (root, the Debian packages, loop
# devices), the debug build of the three binaries it runs, and free TCP ports.

# Where host_build leaves the binaries; workdir_create copies them from here (bench/run.sh points
# it at its release build).
HOST_BUILD_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"

# host_prerequisites: root, the packages the harness calls (installed when missing), loop devices.
host_prerequisites() {
    [[ $(id -u) == 0 ]] || log_die "${FLASHVOL_LOG_TAG:-this} needs root (loop devices, mounts)"
    require_cmd jq jq
    require_cmd curl curl
    require_cmd openssl openssl
    require_cmd mkfs.xfs xfsprogs
    require_cmd mkfs.ext4 e2fsprogs
    require_cmd losetup mount
    require_cmd flock util-linux
    require_cmd ss iproute2
    modprobe loop 2>/dev/null || true
    [[ -e /dev/loop-control ]] || log_die "no /dev/loop-control: loop devices are required"
}

# host_build: the debug provisioner, flex driver and array simulator, into HOST_BUILD_DIR.
host_build() {
    log_info "building flashvol-provisioner, flashvol-flex and flashvol-arraysim (debug)"
    (cd "$REPO_ROOT" && cargo build -q -p flashvol-provisioner -p flashvol-flexdriver -p flashvol-arraysim) ||
        log_die "cargo build failed"
    local bin
    for bin in flashvol-provisioner flashvol-flex flashvol-arraysim; do
        [[ -x "$HOST_BUILD_DIR/$bin" ]] || log_die "$HOST_BUILD_DIR/$bin was not built"
    done
}

# host_free_port START: the first TCP port from START on that nothing listens on.
host_free_port() {
    local port="$1" listening
    listening=" $(ss -Htln | awk '{n=split($4,a,":"); printf "%s ", a[n]}')"
    while [[ "$listening" == *" $port "* ]]; do port=$((port + 1)); done
    echo "$port"
}
