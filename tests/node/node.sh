# shellcheck shell=bash
# The test node's machinery: processes, network, certificates, images, containerd, kubelet and
# the "reboot". Everything the node creates lives in its state dir, except what kubelet,
# containerd and the CNI plugins put in shared places; cleanup.sh lists each of those and
# node_teardown undoes them. Sourced after lib.sh, never executed.

NODE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

node_prerequisites() {
    [[ $(id -u) == 0 ]] || log_die "the node needs root (containers, mounts, loop devices, network)"
    require_cmd jq jq
    require_cmd curl curl
    require_cmd openssl openssl
    require_cmd ip iproute2
    require_cmd ss iproute2
    require_cmd iptables iptables
    require_cmd containerd containerd
    require_cmd runc runc
    require_cmd gcc gcc
    require_cmd mkfs.xfs xfsprogs
    require_cmd mkfs.ext4 e2fsprogs
    require_cmd losetup mount
    require_cmd flock util-linux
    [[ -x /usr/lib/cni/bridge ]] || apt_install containernetworking-plugins
    [[ -x /bin/busybox ]] && node_file_is_static /bin/busybox || apt_install busybox-static
    modprobe loop 2>/dev/null || true
    [[ -e /dev/loop-control ]] || log_die "no /dev/loop-control: loop devices are required"
}
# node_can_run_here: whether this machine can run the node's containers, without changing it (a
# test mount aside). Prints one line: what it found, or what is missing (and returns 1). The
# last proof is the node starting (up.sh); quickstart.sh asks this first.
node_can_run_here() {
    [[ $(id -u) == 0 ]] || { echo "not root"; return 1; }
    local owner
    owner="$(cat "$NODE_OWNER_FILE" 2>/dev/null)" || owner=""
    if [[ -n "$owner" && -d "$owner" ]] && node_state_is_live "$owner"; then
        echo "a test node already runs on this machine (state $owner), and there can be one only"
        return 1
    fi
    local cgroups controller
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        cgroups="cgroup v2"
        for controller in cpu memory pids; do
            grep -qw "$controller" /sys/fs/cgroup/cgroup.controllers ||
                { echo "no $controller controller in the cgroup v2 hierarchy"; return 1; }
        done
    else
        cgroups="cgroup v1"
        for controller in cpu memory pids; do
            awk '$3 == "cgroup" { print $4 }' /proc/self/mounts | tr ',' '\n' | grep -qx "$controller" ||
                { echo "no cgroup $controller controller mounted"; return 1; }
        done
    fi
    # containerd's snapshotter: an overlay mount must work here (it does not in many containers).
    local probe overlay=ok
    probe="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-overlay-probe.XXXXXX")"
    mkdir -p "$probe"/{lower,upper,work,merged}
    if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
        umount "$probe/merged"
    else
        overlay=""
    fi
    rm -rf "$probe"
    [[ -n "$overlay" ]] || { echo "overlayfs cannot be mounted here"; return 1; }
    local runtime
    if command -v containerd >/dev/null && command -v runc >/dev/null; then
        runtime="$(containerd --version 2>/dev/null | awk '{ print $1, $3 }'), runc $(runc --version 2>/dev/null | awk 'NR == 1 { print $3 }')"
    elif command -v apt-get >/dev/null; then
        runtime="containerd and runc to be installed (apt-get)"
    else
        echo "no containerd and runc, and no apt-get to install them"
        return 1
    fi
    echo "$cgroups (cpu, memory, pids), overlayfs mounts, $runtime"
}

# node_file_is_static FILE: ldd says so (it exits 1 for a static non-PIE binary, hence no pipe).
node_file_is_static() {
    local out
    out="$(LC_ALL=C ldd "$1" 2>&1)" || true
    grep -Eq 'statically linked|not a dynamic executable' <<<"$out"
}

# --- ownership of the machine ------------------------------------------------------------
# node_state_is_live STATE: a process of the node at STATE runs: the up.sh starting it, one of
# its components, or its control plane's. A node whose processes are all gone was killed without
# its teardown (a CI job cut off, a session ended): its leftovers are the next node's to remove.
node_state_is_live() {
    local dir name
    for dir in "$1/pids" "$1/cluster/pids"; do
        for name in "$dir"/*; do
            [[ -f "$name" && "$name" != *.binary ]] || continue
            node_running "${name##*/}" "$dir" && return 0
        done
    done
    return 1
}

# node_claim_machine: refuses when another live node owns the machine's shared paths; tears down
# one whose processes are all gone.
node_claim_machine() {
    if [[ -f "$NODE_OWNER_FILE" ]]; then
        local other
        other="$(cat "$NODE_OWNER_FILE")"
        if [[ ! -d "$other" ]]; then
            log_info "removing the stale $NODE_OWNER_FILE of $other (its state dir is gone)"
        elif node_state_is_live "$other"; then
            log_die "a test node (state $other) runs on this machine; stop it first: tests/node/down.sh $other"
        else
            log_info "the test node of $other was stopped without its teardown (none of its processes runs): tearing it down"
            "$REPO_ROOT/tests/node/down.sh" --keep "$other" >"$NODE_STATE/logs/stale-node-down.log" 2>&1 ||
                log_die "could not tear down the stale node of $other (see $NODE_STATE/logs/stale-node-down.log)"
        fi
    fi
    local link
    for link in "$NODE_LINK" "$NODE_BRIDGE"; do
        ! ip link show "$link" >/dev/null 2>&1 ||
            log_die "interface $link exists: another test node, or a leftover (ip link del $link)"
    done
    echo "$NODE_STATE" >"$NODE_OWNER_FILE"
}

# --- processes ---------------------------------------------------------------------------
# node_launch NAME BINARY ARG...: runs BINARY detached in its own session with a bare
# environment (as a service manager would start it), logging to logs/NAME.log (appended, so a
# restart keeps the history). The pid and binary are recorded for node_stop.
node_launch() {
    local name="$1" binary="$2"
    shift 2
    printf '%q ' "$binary" "$@" >"$NODE_STATE/logs/$name.cmdline"
    echo "$binary" >"$NODE_STATE/pids/$name.binary"
    # From a subshell, so that the caller's shell does not track it as a job (no "Killed" notes).
    (
        setsid env -i PATH="$NODE_PATH" HOME=/root "$binary" "$@" </dev/null >>"$NODE_STATE/logs/$name.log" 2>&1 &
        echo "$!" >"$NODE_STATE/pids/$name"
    )
    # Until setsid and env have exec'd the binary, the pid does not look like it: wait for that.
    local waited=0 pid
    pid="$(cat "$NODE_STATE/pids/$name")"
    until node_running "$name" || ! kill -0 "$pid" 2>/dev/null || ((waited > 100)); do
        sleep 0.05
        waited=$((waited + 1))
    done
}

# node_running NAME [PIDS_DIR]: the pid recorded in PIDS_DIR (the node's) is alive (not a zombie)
# and still runs the binary started (for a script: its interpreter runs it).
node_running() {
    local dir="${2:-$NODE_STATE/pids}" pid binary exe stat
    pid="$(cat "$dir/$1" 2>/dev/null)" || return 1
    binary="$(cat "$dir/$1.binary" 2>/dev/null)" || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
    [[ "${exe% (deleted)}" == "$binary" ]] ||
        [[ "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 2p)" == "$binary" ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# node_stop NAME [SIGNAL] [GRACE]: SIGNAL (TERM), then SIGKILL after GRACE seconds (15).
node_stop() {
    local name="$1" signal="${2:-TERM}" grace="${3:-15}" pid waited=0
    if node_running "$name"; then
        pid="$(cat "$NODE_STATE/pids/$name")"
        kill "-$signal" "$pid" 2>/dev/null || true
        while node_running "$name" && ((waited < grace * 10)); do sleep 0.1; waited=$((waited + 1)); done
        if node_running "$name"; then
            log_info "$name (pid $pid) ignored SIG$signal for ${grace}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$NODE_STATE/pids/$name"
}

# --- network --------------------------------------------------------------------------------
# The node's address sits on one end of a veth pair (kubelet refuses loopback node IPs and the
# dummy link type is not available here). The pods' bridge is created here rather than by the
# bridge plugin so that route_localnet can be set on it: the kubernetes Service is a DNAT to
# the apiserver on 127.0.0.1 (see README.md, "API access from pods").
node_network_up() {
    ip link add "$NODE_LINK" type veth peer name "$NODE_LINK_PEER"
    touch "$NODE_STATE/.network"
    ip addr add "$NODE_IP/32" dev "$NODE_LINK"
    ip link set "$NODE_LINK_PEER" up
    ip link set "$NODE_LINK" up
    ip link add "$NODE_BRIDGE" type bridge
    ip link set "$NODE_BRIDGE" up
    sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.route_localnet=1" >/dev/null
}

# node_dnat_rule: the iptables rule (arguments after -t nat -A/-D) for the kubernetes Service.
node_dnat_rule() {
    echo PREROUTING -i "$NODE_BRIDGE" -d "$NODE_SERVICE_IP/32" -p tcp --dport 443 \
        -m comment --comment "flashvol-node:$NODE_STATE" -j DNAT --to-destination "127.0.0.1:$FLASHVOL_APISERVER_PORT"
}

node_dnat_up() {
    # shellcheck disable=SC2046 # the rule is words on purpose (no value holds whitespace)
    iptables -t nat -A $(node_dnat_rule)
    node_dnat_rule >"$NODE_STATE/.dnat"
}

node_network_down() {
    if [[ -f "$NODE_STATE/.dnat" ]]; then
        # shellcheck disable=SC2046
        iptables -t nat -D $(cat "$NODE_STATE/.dnat") 2>/dev/null || log_info "the DNAT rule was already gone"
        rm -f "$NODE_STATE/.dnat"
    fi
    [[ -f "$NODE_STATE/.network" ]] || return 0
    local link
    # Pod veths still on the bridge (their network namespace outlived the teardown).
    for link in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        ip link del "$link" 2>/dev/null || true
    done
    ip link del "$NODE_BRIDGE" 2>/dev/null || true
    ip link del "$NODE_LINK" 2>/dev/null || true
    rm -f "$NODE_STATE/.network"
}

# --- certificates -----------------------------------------------------------------------------
# node_pki: the kubelet's client certificate (the Node authorizer's identity) and its serving
# certificate, both from the cluster CA.
node_pki() {
    local pki="$NODE_STATE/pki" ca="$FLASHVOL_CLUSTER_STATE/pki/ca"
    mkdir -p "$pki"
    # shellcheck disable=SC2034 # read by pki_issue (tests/cluster/lib.sh)
    PKI_LOG="$NODE_STATE/logs/openssl.log"
    pki_issue "$ca" "$pki/kubelet-client" "/O=system:nodes/CN=system:node:$NODE_NAME" "$PKI_CLIENT_EXT"
    pki_issue "$ca" "$pki/kubelet-serving" "/CN=$NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
    chmod 600 "$pki"/*.key
    write_kubeconfig "$NODE_STATE/kubelet.kubeconfig" "$FLASHVOL_APISERVER_URL" "$ca.crt" \
        "system:node:$NODE_NAME" "$pki/kubelet-client"
}

# --- images -------------------------------------------------------------------------------------
# node_build_images: the pause image (a static C program) and the test image (Debian's static
# busybox with its applets), as OCI tarballs: no registry is reachable from the test machine.
node_build_images() {
    local work="$NODE_STATE/images/work"
    # shellcheck source=../../install/images/oci.sh
    . "$REPO_ROOT/install/images/oci.sh"
    rm -rf "$work"
    mkdir -p "$work/pause" "$work/busybox/bin" "$work/busybox/tmp"
    gcc -static -s -O2 -Wall -Wextra -Werror -o "$work/pause/pause" "$NODE_DIR/images/pause.c" ||
        log_die "building the pause program failed"
    oci_archive "$work/pause" "${NODE_PAUSE_IMAGE%:*}" "${NODE_PAUSE_IMAGE##*:}" '{"Entrypoint":["/pause"]}' \
        "tests/node/images/pause.c, gcc -static" "$NODE_STATE/images/pause.oci.tar" >/dev/null
    node_file_is_static /bin/busybox || log_die "/bin/busybox is not the static build (apt-get install busybox-static)"
    install -m 0755 /bin/busybox "$work/busybox/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [[ "$applet" == busybox ]] || ln -s busybox "$work/busybox/bin/$applet"
    done
    chmod 1777 "$work/busybox/tmp"
    oci_archive "$work/busybox" "${NODE_TEST_IMAGE%:*}" "${NODE_TEST_IMAGE##*:}" \
        '{"Cmd":["sh"],"Env":["PATH=/bin"]}' "Debian busybox-static /bin/busybox and its applets" \
        "$NODE_STATE/images/busybox.oci.tar" >/dev/null
    rm -rf "$work"
}

# --- containerd ---------------------------------------------------------------------------------
node_containerd_config() {
    local c="$NODE_STATE/containerd"
    mkdir -p "$c" "$NODE_STATE/cni/net.d"
    cat >"$c/config.toml" <<EOF
# A private containerd for the flashvol test node (tests/node/node.sh).
version = 2
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$c/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  # The machine has no CAP_SYS_RESOURCE: without it every sandbox fails to start.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$c/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_STATE/cni/net.d"
EOF
    # ipMasq off: pods only talk to addresses of this machine. The IPAM state is private too.
    jq -n --arg bridge "$NODE_BRIDGE" --arg subnet "$NODE_POD_CIDR" --arg ipam "$NODE_STATE/cni/ipam" '{
        cniVersion: "0.4.0", name: "flashvol-node",
        plugins: [{type: "bridge", bridge: $bridge, isGateway: true, isDefaultGateway: true,
                   ipMasq: false, hairpinMode: true,
                   ipam: {type: "host-local", dataDir: $ipam, ranges: [[{subnet: $subnet}]]}},
                  {type: "loopback"}]}' >"$NODE_STATE/cni/net.d/10-flashvol-node.conflist"
}

node_ctr() { ctr --address "$NODE_STATE/containerd/containerd.sock" --namespace k8s.io "$@"; }

node_containerd_start() {
    [[ -d /run/containerd ]] || touch "$NODE_STATE/.created-run-containerd"
    node_launch containerd "$(command -v containerd)" --config "$NODE_STATE/containerd/config.toml"
    local deadline=$((SECONDS + 30))
    until node_ctr version >/dev/null 2>&1; do
        node_running containerd || log_die "containerd exited: $(tail -n 5 "$NODE_STATE/logs/containerd.log")"
        ((SECONDS < deadline)) || log_die "containerd did not answer within 30s"
        sleep 0.2
    done
}

# node_import_image TARBALL: into the k8s.io namespace, where the CRI plugin looks.
node_import_image() {
    node_ctr images import --all-platforms "$1" >>"$NODE_STATE/logs/ctr-import.log" 2>&1 ||
        log_die "importing $1 into containerd failed: $(tail -n 3 "$NODE_STATE/logs/ctr-import.log")"
}

# node_kill_containers: every container of the node killed and deleted, and the network
# namespaces of its pods removed: what a power cut leaves (no CNI DEL, no graceful stop).
node_kill_containers() {
    node_running containerd || return 0
    local ids id pid inodes=" " ns
    ids="$(node_ctr tasks ls -q 2>/dev/null)" || return 0
    for id in $ids; do
        pid="$(node_ctr tasks ls 2>/dev/null | awk -v id="$id" '$1 == id { print $2 }')"
        [[ -n "$pid" && "$pid" != 0 ]] && inodes+="$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) "
        node_ctr tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true
    done
    # containerd's CRI plugin deletes a task once it has exited; delete what it has not.
    local waited=0
    while [[ -n "$(node_ctr tasks ls -q 2>/dev/null)" ]] && ((waited < 100)); do sleep 0.1; waited=$((waited + 1)); done
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks delete --force "$id" >/dev/null 2>&1 || true; done
    for ns in /run/netns/cni-*; do
        [[ -e "$ns" ]] || continue
        if [[ "$inodes" == *" $(stat -L -c %i "$ns" 2>/dev/null) "* ]]; then
            umount "$ns" 2>/dev/null || true
            rm -f "$ns"
        fi
    done
}

# node_kill_shims: container shims of this containerd that outlived it (each serves one pod).
node_kill_shims() {
    local sock="$NODE_STATE/containerd/containerd.sock" pid child
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" || true); do
        for child in $(pgrep -P "$pid" || true); do kill -KILL "$child" 2>/dev/null || true; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# --- kubelet ------------------------------------------------------------------------------------
# node_free_port START: the first TCP port >= START nothing listens on.
node_free_port() {
    local port="$1"
    while [[ -n "$(ss -Htln "sport = :$port")" ]]; do port=$((port + 1)); done
    echo "$port"
}

# node_kubelet_config: KubeletConfiguration for the pinned release (kubelet.md lists why each).
node_kubelet_config() {
    NODE_KUBELET_PORT="$(node_free_port 10250)"
    NODE_KUBELET_HEALTHZ_PORT="$(node_free_port 10248)"
    [[ "$NODE_KUBELET_HEALTHZ_PORT" != "$NODE_KUBELET_PORT" ]] || NODE_KUBELET_HEALTHZ_PORT="$(node_free_port $((NODE_KUBELET_PORT + 1)))"
    local minor="${NODE_K8S_VERSION#v1.}"
    minor="${minor%%.*}"
    {
        cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Served on the node's own address (apiserver -> kubelet for logs and exec), never on the
# machine's other interfaces; webhook authentication and authorization, no anonymous access.
address: $NODE_IP
port: $NODE_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $NODE_KUBELET_HEALTHZ_PORT
tlsCertFile: $NODE_STATE/pki/kubelet-serving.crt
tlsPrivateKeyFile: $NODE_STATE/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $FLASHVOL_CLUSTER_STATE/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failSwapOn: false
volumePluginDir: $NODE_PLUGIN_DIR
makeIPTablesUtilChains: false
# Imported images cannot be pulled again: never collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "0%", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
clusterDomain: cluster.local
serializeImagePulls: false
EOF
        if ((minor >= 27)); then
            echo "containerRuntimeEndpoint: unix://$NODE_STATE/containerd/containerd.sock"
        fi
        if ((minor >= 31)); then
            echo "# The machine has the cgroup v1 layout; kubelet refuses it from 1.35 unless told."
            echo "failCgroupV1: false"
        fi
    } >"$NODE_STATE/kubelet-config.yaml"
    NODE_KUBELET_ARGS=(--config="$NODE_STATE/kubelet-config.yaml"
        --kubeconfig="$NODE_STATE/kubelet.kubeconfig"
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
        --root-dir="$NODE_KUBELET_ROOT" --cert-dir="$NODE_STATE/kubelet-pki" --v=2)
    if ((minor < 27)); then
        NODE_KUBELET_ARGS+=(--container-runtime=remote
            --container-runtime-endpoint="unix://$NODE_STATE/containerd/containerd.sock"
            --pod-infra-container-image="$NODE_PAUSE_IMAGE")
    fi
    printf '%q ' "${NODE_KUBELET_ARGS[@]}" >"$NODE_STATE/kubelet.args"
}

node_kubelet_start() {
    local args
    eval "args=($(cat "$NODE_STATE/kubelet.args"))"
    # shellcheck disable=SC2154 # args is set by the eval
    node_launch kubelet "$NODE_K8S_BIN_DIR/kubelet" "${args[@]}"
    local deadline=$((SECONDS + 60))
    until curl -fsS "http://127.0.0.1:$NODE_KUBELET_HEALTHZ_PORT/healthz" >/dev/null 2>&1; do
        node_running kubelet || log_die "kubelet exited: $(tail -n 5 "$NODE_STATE/logs/kubelet.log")"
        ((SECONDS < deadline)) || log_die "kubelet was not healthy within 60s: $(tail -n 5 "$NODE_STATE/logs/kubelet.log")"
        sleep 0.2
    done
}
node_kubelet_stop() { node_stop kubelet "${1:-TERM}"; }

node_is_ready() {
    [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
node_wait_ready() {
    local deadline=$((SECONDS + NODE_TIMEOUT))
    until node_is_ready; do
        node_running kubelet || log_die "kubelet exited: $(tail -n 5 "$NODE_STATE/logs/kubelet.log")"
        ((SECONDS < deadline)) || log_die "node $NODE_NAME not Ready within ${NODE_TIMEOUT}s: $(tail -n 5 "$NODE_STATE/logs/kubelet.log")"
        sleep 0.5
    done
}

# --- reboot -------------------------------------------------------------------------------------
# node_power_cut: what a reboot does to the node: kubelet, containerd and every container die at
# once (no unmount, no CNI DEL), every mount under the kubelet root and containerd's dirs is
# gone, and the LUNs are gone (the fabric's loop devices detached). What is on disk stays: the
# kubelet root's files, the driver's volume records, the plugin dir. Then containerd is started
# again (as at boot); kubelet is the caller's to start.
node_power_cut() {
    node_stop kubelet KILL 2
    node_kill_containers
    node_stop containerd KILL 2
    node_kill_shims
    node_unmount_under "$NODE_KUBELET_ROOT"
    node_unmount_under "$NODE_STATE/containerd"
    node_detach_loops
}

# shellcheck source=cleanup.sh
. "$NODE_DIR/cleanup.sh"
