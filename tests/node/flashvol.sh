# shellcheck shell=bash
# flashvol on the test node: the array simulator on the node's address, the test fabric as the
# node's iSCSI/multipath/NFS tools, flashvol's image from this checkout in the node's containerd,
# and the shipped Helm chart installed as a user would, with documented values only.
# Sourced after lib.sh and node.sh, never executed.

NODE_CHART="$REPO_ROOT/install/helm/flashvol"
NODE_RELEASE=flashvol
NODE_FLASHVOL_IMAGE_NAME=ghcr.io/flashvol/flashvol

helm() { "$REPO_ROOT/install/tools/helm.sh" "$@"; }

# flashvol_upgrade KEY=VALUE...: `helm upgrade --reuse-values --set KEY=VALUE...` of the installed
# release, as a user changes one setting; output to logs/helm.log. Fails (status 1, the log's last
# lines on stderr) when helm does; the caller waits for what the change rolls.
flashvol_upgrade() {
    local sets=() setting
    for setting in "$@"; do sets+=(--set "$setting"); done
    helm upgrade "$NODE_RELEASE" "$NODE_CHART" -n "$NODE_SYSTEM_NAMESPACE" --reuse-values "${sets[@]}" \
        >>"$NODE_STATE/logs/helm.log" 2>&1 && return 0
    echo "helm upgrade --set $*: $(tail -n 3 "$NODE_STATE/logs/helm.log")" >&2
    return 1
}

# flashvol_build LOG: the simulator (debug build, like the e2e suite's) and flashvol's image
# (install/images/build.sh: the static release binaries of this checkout), into target/; the
# image build's output goes to LOG. Needs no node: up.sh and quickstart.sh build before they
# start anything.
flashvol_build() {
    log_info "building flashvol-arraysim and flashvol's image from this checkout"
    (cd "$REPO_ROOT" && cargo build -q --locked -p flashvol-arraysim) || log_die "cargo build -p flashvol-arraysim failed"
    "$REPO_ROOT/install/images/build.sh" >"$1" 2>&1 || log_die "install/images/build.sh failed: $(tail -n 5 "$1")"
}

# flashvol_arrays: the simulator (a copy of the build in the state dir) and the fabric.
flashvol_arrays() {
    mkdir -p "$NODE_STATE/bin"
    install -m 0755 "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/flashvol-arraysim" "$NODE_STATE/bin/"
    flashvol_sim_start
    flashvol_fabric_install
}

# --- simulator --------------------------------------------------------------------------------
# Two FlashArrays (labels rack=a / rack=b, so claims can be placed on either) and a FlashBlade,
# on the node's address: pods (the provisioner) reach them through the pod network, the driver
# on the host directly. Each array makes its own CA, valid for that address.
flashvol_sim_start() {
    local config="$NODE_STATE/sim/arrays.json"
    mkdir -p "$NODE_STATE/sim"
    jq -n --arg ip "$NODE_IP" --arg root "$NODE_STATE/sim/state" '{
        state_root: $root,
        arrays: [
          {kind: "flasharray", name: "fa-a", listen: "\($ip):0", api_token: "node-token-fa-a",
           capacity: "64G", iscsi_portals: ["\($ip):3260"], tls_sans: [$ip]},
          {kind: "flasharray", name: "fa-b", listen: "\($ip):0", api_token: "node-token-fa-b",
           capacity: "64G", iscsi_portals: ["\($ip):3261"], tls_sans: [$ip]},
          {kind: "flashblade", name: "fb-1", listen: "\($ip):0", api_token: "T-node-token-fb-1",
           capacity: "1T", data_vips: [$ip], management_vip: $ip, tls_sans: [$ip]}
        ]}' >"$config"
    node_launch arraysim "$NODE_STATE/bin/flashvol-arraysim" --config "$config"
    # node_launch appends stdout to the log: the simulator's JSON lines are picked from it.
    local deadline=$((SECONDS + 30))
    until [[ $(grep -c '"admin_url"' "$NODE_STATE/logs/arraysim.log" 2>/dev/null) == 3 ]]; do
        node_running arraysim || log_die "the simulator exited: $(tail -n 5 "$NODE_STATE/logs/arraysim.log")"
        ((SECONDS < deadline)) || log_die "the simulator did not report its 3 arrays within 30s"
        sleep 0.2
    done
    grep '"admin_url"' "$NODE_STATE/logs/arraysim.log" >"$NODE_STATE/sim/arrays.jsonl"
    log_info "simulated arrays: $(jq -rs 'map("\(.name) \(.endpoint)") | join(", ")' "$NODE_STATE/sim/arrays.jsonl")"
}

# --- the fabric as the node's tools ----------------------------------------------------------------
# The stand-ins and their configuration are copied into one dir of the node: kubelet runs the
# driver with kubelet's environment, so the tools find fabric.json next to themselves.
flashvol_fabric_install() {
    local dir="$NODE_STATE/fabric" fs="$NODE_STATE/node-fs" tool
    mkdir -p "$dir" "$fs/dev/disk/by-id" "$fs/dev/mapper" "$fs/sys/block" "$fs/locks"
    for tool in iscsiadm multipath multipathd mount udevd luns.sh; do
        install -m 0755 "$REPO_ROOT/tests/fabric/$tool" "$dir/$tool"
    done
    NODE_IQN="iqn.2026-12.io.flashvol.node:$NODE_NAME"
    printf 'InitiatorName=%s\n' "$NODE_IQN" >"$fs/initiatorname.iscsi"
    jq -s --arg iqn "$NODE_IQN" --arg fs "$fs" --arg state "$dir/state" --arg ip "$NODE_IP" '{
        flashArrays: map(select(.kind == "flasharray") | {adminUrl: .admin_url, caCert: .ca_cert}),
        flashBlades: map(select(.kind == "flashblade") | {adminUrl: .admin_url, caCert: .ca_cert, nfsEndpoints: [$ip]}),
        initiator: $iqn, sysfsRoot: "\($fs)/sys", deviceDir: "\($fs)/dev/disk/by-id", stateDir: $state}' \
        "$NODE_STATE/sim/arrays.jsonl" >"$dir/fabric.json"
    node_save NODE_IQN
    # The kernel's part: a deleted SCSI device goes at once.
    node_launch fabric-udevd "$dir/udevd"
}

# --- the chart ---------------------------------------------------------------------------------------
# flashvol_values: the values file a user of this node would write: the arrays, the image built
# here (never pulled), kubelet's plugin dir, and the node settings that make the driver use the
# fabric (node.tools.*, deviceDir, sysfsRoot, ...; flexDriver.nodeSettings), and the node
# metrics on (monitoring.nodeMetrics: the driver counts its call-outs in a file of the state dir,
# the DaemonSet pod serves them on /metrics; the array metrics polled every 5 s).
# flashvol.tls.caCert: the simulated arrays' CAs (each array makes its own), which the chart gives
# to the provisioner pod and the installer to the driver on the host: both verify every array.
flashvol_values() {
    local fs="$NODE_STATE/node-fs" fabric="$NODE_STATE/fabric"
    jq -n --slurpfile arrays <(jq -s . "$NODE_STATE/sim/arrays.jsonl") \
        --rawfile cas <(jq -r .ca_cert "$NODE_STATE/sim/arrays.jsonl" | xargs -d '\n' cat) \
        --arg image "$NODE_FLASHVOL_IMAGE_NAME" --arg tag "$NODE_FLASHVOL_IMAGE_TAG" \
        --arg plugins "$NODE_PLUGIN_DIR" --arg node "$NODE_NAME" --arg log "$NODE_FLEX_LOG" \
        --arg fs "$fs" --arg fabric "$fabric" --arg ip "$NODE_IP" --arg state "$NODE_STATE" '
        ($arrays[0] | map({key: .name, value: .endpoint}) | from_entries) as $ep
        | {arrays: {
             FlashArrays: [
               {MgmtEndPoint: $ep["fa-a"], APIToken: "node-token-fa-a", Labels: {rack: "a"}},
               {MgmtEndPoint: $ep["fa-b"], APIToken: "node-token-fa-b", Labels: {rack: "b"}}],
             FlashBlades: [
               {MgmtEndPoint: $ep["fb-1"], APIToken: "T-node-token-fb-1", NfsEndPoint: $ip, Labels: {rack: "f"}}]},
           image: {name: $image, tag: $tag, pullPolicy: "Never"},
           flexPath: $plugins,
           app: {debug: true},
           flashvol: {tls: {caCert: $cas}},
           monitoring: {arrayPollSeconds: 5, nodeMetrics: {enabled: true, statsFile: "\($state)/flex-stats/stats.json"}},
           flexDriver: {nodeSettings: {
             nodeName: $node, logFile: $log, logLevel: "debug", locksDir: "\($fs)/locks",
             deviceDir: "\($fs)/dev/disk/by-id", mapperDir: "\($fs)/dev/mapper", sysfsRoot: "\($fs)/sys",
             iscsiInitiatorFile: "\($fs)/initiatorname.iscsi",
             tools: {iscsiadm: "\($fabric)/iscsiadm", multipath: "\($fabric)/multipath",
                     multipathd: "\($fabric)/multipathd", mount: "\($fabric)/mount"},
             deadlines: {arrayCallSeconds: 20, deviceWaitSeconds: 20, lockWaitSeconds: 120}}}}' \
        >"$NODE_STATE/values.yaml"
}

# flashvol_install: flashvol's image (a copy in the state dir) imported into the node's
# containerd, then the chart installed and its pods ready, with the driver of this checkout.
flashvol_install() {
    local version
    version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml" | head -n1)"
    NODE_FLASHVOL_IMAGE_TAG="$version"
    NODE_FLASHVOL_IMAGE_TAR="$NODE_STATE/images/flashvol.oci.tar"
    cp "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/images/flashvol-$version.oci.tar" "$NODE_FLASHVOL_IMAGE_TAR"
    node_save NODE_FLASHVOL_IMAGE_TAG NODE_FLASHVOL_IMAGE_TAR
    node_import_image "$NODE_FLASHVOL_IMAGE_TAR"
    flashvol_values
    log_info "helm install $NODE_RELEASE $NODE_CHART -n $NODE_SYSTEM_NAMESPACE -f $NODE_STATE/values.yaml"
    helm install "$NODE_RELEASE" "$NODE_CHART" --namespace "$NODE_SYSTEM_NAMESPACE" --create-namespace \
        -f "$NODE_STATE/values.yaml" >"$NODE_STATE/logs/helm.log" 2>&1 ||
        log_die "helm install failed: $(tail -n 5 "$NODE_STATE/logs/helm.log")"
    flashvol_wait_ready
    # The driver under test: the DaemonSet installed exactly the binary built from this checkout.
    local built
    built="$(sha256sum "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/x86_64-unknown-linux-gnu/release/flashvol-flex" | cut -d' ' -f1)"
    [[ "$(sha256sum "$NODE_PLUGIN_DIR/pure~flex/flex" | cut -d' ' -f1)" == "$built" ]] ||
        log_die "the driver the DaemonSet installed is not the flashvol-flex built from this checkout"
}

# flashvol_wait_ready: the DaemonSet's pod has installed the driver into kubelet's plugin dir and
# the provisioner's pod is ready.
flashvol_wait_ready() {
    local deadline=$((SECONDS + NODE_TIMEOUT))
    until [[ -x "$NODE_PLUGIN_DIR/pure~flex/flex" && -f "$NODE_PLUGIN_DIR/pure~flex/flashvol.json" ]] &&
        kubectl -n "$NODE_SYSTEM_NAMESPACE" rollout status daemonset/pure-flex --timeout=1s >/dev/null 2>&1 &&
        kubectl -n "$NODE_SYSTEM_NAMESPACE" rollout status deployment/pure-provisioner --timeout=1s >/dev/null 2>&1; do
        ((SECONDS < deadline)) || {
            kubectl -n "$NODE_SYSTEM_NAMESPACE" get pods -o wide >&2
            log_die "flashvol's pods were not ready within ${NODE_TIMEOUT}s"
        }
        sleep 1
    done
}

# flashvol_image_rebuilt TAG: another build of flashvol's image under TAG, whose flashvol-flex
# differs from the installed one (bytes appended after the ELF image: the kernel ignores them),
# imported into the node's containerd; prints the new driver's sha256. What a user gets from a
# new release, without a second cargo build.
flashvol_image_rebuilt() {
    local tag="$1" work="$NODE_STATE/images/rebuild" layer
    rm -rf "$work"
    mkdir -p "$work/layout" "$work/rootfs"
    tar -xf "$NODE_FLASHVOL_IMAGE_TAR" -C "$work/layout"
    layer="$(jq -r '.[0].Layers[0]' "$work/layout/manifest.json")"
    tar -xzf "$work/layout/$layer" -C "$work/rootfs"
    printf '\nflashvol test build %s\n' "$tag" >>"$work/rootfs/flashvol-flex"
    local config
    config="$(jq -c '.config' "$work/layout/blobs/sha256/$(jq -r '.[0].Config' "$work/layout/manifest.json" | sed 's|.*/||')")"
    # shellcheck source=../../install/images/oci.sh
    . "$REPO_ROOT/install/images/oci.sh"
    oci_archive "$work/rootfs" "$NODE_FLASHVOL_IMAGE_NAME" "$tag" "$config" \
        "tests/node: flashvol-flex with a build marker" "$NODE_STATE/images/flashvol-$tag.oci.tar" >/dev/null
    node_import_image "$NODE_STATE/images/flashvol-$tag.oci.tar"
    sha256sum "$work/rootfs/flashvol-flex" | cut -d' ' -f1
    rm -rf "$work"
}
