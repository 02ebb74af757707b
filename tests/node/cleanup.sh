# shellcheck shell=bash
# What the test node leaves on the machine outside its state dir, and the teardown that removes
# it all: the kernel settings kubelet changes, the propagation of the machine's mounts, the
# kubepods cgroups, kubelet's and containerd's shared paths, mounts and loop devices; then a check
# that nothing is left. Sourced by node.sh, never executed.

# --- kernel settings -----------------------------------------------------------------------
# Kernel settings kubelet changes (cm/container_manager_linux.go setupKernelTunables) and the
# bridge plugin's ip_forward: saved before the node starts, restored by the teardown.
NODE_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)
node_save_sysctls() {
    local key
    [[ -f "$NODE_STATE/sysctls" ]] && return 0
    for key in "${NODE_SYSCTLS[@]}"; do
        printf '%s=%s\n' "$key" "$(sysctl -n "$key")"
    done >"$NODE_STATE/sysctls.tmp"
    mv "$NODE_STATE/sysctls.tmp" "$NODE_STATE/sysctls"
}

node_restore_sysctls() {
    local line
    [[ -f "$NODE_STATE/sysctls" ]] || return 0
    while IFS= read -r line; do
        [[ "$(sysctl -n "${line%%=*}")" == "${line#*=}" ]] || sysctl -qw "$line" >/dev/null ||
            log_info "could not restore $line"
    done <"$NODE_STATE/sysctls"
}

# node_sysctls_changed: prints the saved settings that differ now.
node_sysctls_changed() {
    local line
    [[ -f "$NODE_STATE/sysctls" ]] || return 0
    while IFS= read -r line; do
        [[ "$(sysctl -n "${line%%=*}")" == "${line#*=}" ]] || echo "sysctl ${line%%=*} is $(sysctl -n "${line%%=*}"), was ${line#*=}"
    done <"$NODE_STATE/sysctls"
}

# --- mount propagation -----------------------------------------------------------------------
# The chart's DaemonSet mounts the host's / at /host with mountPropagation: HostToContainer, and
# containerd refuses that unless / is a shared or slave mount ("path "/" is mounted on "/" but
# it is not a shared or slave mount"): the pod never starts. systemd makes every mount shared at
# boot (the equivalent of mount --make-rshared /), so on the nodes users run / is shared; a
# machine booted without systemd, like the test machine (its init is not systemd, / is private),
# is not such a node. So the node gives the machine what systemd gives, and the suite runs the
# DaemonSet users run. Not instead:
# - a chart without the propagation (or a suite-only value): the pod would keep a private copy
#   of every volume mounted when it started, which the driver rightly refuses to release;
# - kubelet and containerd in a mount namespace of their own with / shared: on real nodes they
#   share the machine's namespace with the host's tools, and the scenarios (and the driver's
#   collection through kubelet's namespace) must see the mounts as they are there.
# doctor's kernel.root_propagation reports a node whose / is private.
# Each mount's propagation is recorded before, and the teardown sets back each one that is still
# there (a recursive make-private would wrongly make private what was shared before). Mounts
# made by others while the node ran under a shared parent keep the shared propagation they got.

# node_propagation: "ID STATE MOUNT_POINT" for each mount of this mount namespace, STATE from
# mountinfo's optional fields: shared, slave, shared+slave, unbindable or private. The mount
# point keeps mountinfo's octal escapes (\040 for a space).
node_propagation() {
    awk '{
        shared = slave = unbindable = 0
        for (i = 7; i <= NF && $i != "-"; i++) {
            if ($i ~ /^shared:/) shared = 1
            else if ($i ~ /^master:/) slave = 1
            else if ($i == "unbindable") unbindable = 1
        }
        state = shared && slave ? "shared+slave" : shared ? "shared" : slave ? "slave" : unbindable ? "unbindable" : "private"
        print $1, state, $5
    }' /proc/self/mountinfo
}

# node_root_propagation: the STATE of the topmost mount at /.
node_root_propagation() { node_propagation | awk '$3 == "/" { state = $2 } END { print state }'; }

# node_share_mounts: records every mount's propagation, then makes them shared when / is not
# shared already (containerd accepts a slave /, but systemd makes it shared).
node_share_mounts() {
    [[ -f "$NODE_STATE/propagation" ]] && return 0
    node_propagation >"$NODE_STATE/propagation.tmp"
    mv "$NODE_STATE/propagation.tmp" "$NODE_STATE/propagation"
    local root
    root="$(node_root_propagation)"
    [[ "$root" != shared* ]] || return 0
    log_info "the machine's / is a $root mount; making its mounts shared as systemd does (mount --make-rshared /) until the node stops"
    mount --make-rshared / || log_die "mount --make-rshared / failed: the DaemonSet's /host mount (HostToContainer) needs / shared"
}

# node_set_propagation MOUNT_POINT STATE: that one mount (not its children) back to STATE.
node_set_propagation() {
    case "$2" in
    private) mount --make-private "$1" ;;
    slave) mount --make-slave "$1" ;;
    shared) mount --make-shared "$1" ;;
    shared+slave) mount --make-slave "$1" && mount --make-shared "$1" ;;
    unbindable) mount --make-unbindable "$1" ;;
    *) return 1 ;;
    esac
}

# node_propagation_changes: "MOUNT_POINT WAS NOW" for each recorded mount that is still the
# topmost at its mount point and whose propagation differs now.
node_propagation_changes() {
    [[ -f "$NODE_STATE/propagation" ]] || return 0
    awk 'NR == FNR { was[$1] = $2; where[$1] = $3; next }
         { top[$3] = $1; now[$1] = $2 }
         END { for (id in was) if (top[where[id]] == id && now[id] != was[id]) print where[id], was[id], now[id] }' \
        "$NODE_STATE/propagation" <(node_propagation)
}

node_restore_propagation() {
    local mount_point was now
    while read -r mount_point was now; do
        node_set_propagation "$(printf '%b' "$mount_point")" "$was" ||
            log_info "could not make $mount_point $was again (it is $now)"
    done < <(node_propagation_changes)
}

# --- cgroups ------------------------------------------------------------------------------------
# kubelet makes kubepods (cgroupsPerQOS) in every hierarchy; the teardown removes the ones it made.
node_record_cgroups() {
    local dir
    for dir in /sys/fs/cgroup/*/kubepods; do
        if [[ -d "$dir" ]]; then echo "$dir"; fi
    done >"$NODE_STATE/.cgroups-before"
}

node_remove_cgroups() {
    [[ -f "$NODE_STATE/.cgroups-before" ]] || return 0
    local dir
    for dir in /sys/fs/cgroup/*/kubepods; do
        [[ -d "$dir" ]] || continue
        grep -qxF "$dir" "$NODE_STATE/.cgroups-before" && continue
        find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
        [[ ! -d "$dir" ]] || log_info "cgroup $dir is still in use; left in place"
    done
}

# --- teardown -----------------------------------------------------------------------------------
# node_unmount_under DIR: every mount point at or below DIR, deepest first.
node_unmount_under() {
    local mounts mount_point
    mounts="$(awk -v root="$1" '$5 == root || index($5, root "/") == 1 { print $5 }' /proc/self/mountinfo |
        awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)"
    [[ -n "$mounts" ]] || return 0
    while read -r mount_point; do
        umount "$mount_point" 2>/dev/null || umount -l "$mount_point" 2>/dev/null || true
    done <<<"$mounts"
}

# node_detach_loops: the fabric's loop devices (its records) and any other loop device backed
# by a file of this node's simulated arrays.
node_detach_loops() {
    if [[ -x "$NODE_STATE/fabric/iscsiadm" ]]; then
        "$NODE_STATE/fabric/iscsiadm" -m node --logoutall=all >/dev/null 2>&1 || true
    fi
    local device
    for device in $(node_loop_devices); do losetup -d "$device" 2>/dev/null || true; done
}

# Shared paths kubelet writes to whatever --root-dir says (kubelet.md): the device-plugin socket
# and the pod logs; containerd's network namespaces dir and the CNI plugins' cache. Only what
# this node made is removed.
node_record_shared_paths() {
    [[ -d /var/lib/kubelet ]] || touch "$NODE_STATE/.created-var-lib-kubelet"
    [[ -d /var/log/pods ]] || touch "$NODE_STATE/.created-var-log-pods"
    [[ -d /var/log/containers ]] || touch "$NODE_STATE/.created-var-log-containers"
    [[ -d /var/lib/cni ]] || touch "$NODE_STATE/.created-var-lib-cni"
    [[ -d /run/netns ]] || touch "$NODE_STATE/.created-run-netns"
    # Pod log dirs that exist already are another kubelet's (or a leftover): never removed.
    ls -A /var/log/pods /var/log/containers >"$NODE_STATE/.var-log-before" 2>/dev/null || true
}

node_remove_shared_paths() {
    local entry
    # Pod log dirs <namespace>_<pod>_<uid> and their links: what appeared since the start is
    # this node's (kubelet removes those of deleted pods itself; these are the pods still there).
    for entry in /var/log/pods/* /var/log/containers/*; do
        [[ -e "$entry" || -L "$entry" ]] || continue
        grep -qxF "${entry##*/}" "$NODE_STATE/.var-log-before" 2>/dev/null || rm -rf "$entry"
    done
    rm -f /var/lib/cni/results/flashvol-node-* 2>/dev/null || true
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
    if [[ -f "$NODE_STATE/.created-var-lib-kubelet" ]]; then rm -rf /var/lib/kubelet; fi
    if [[ -f "$NODE_STATE/.created-var-lib-cni" ]]; then rm -rf /var/lib/cni; fi
    if [[ -f "$NODE_STATE/.created-run-containerd" ]]; then rm -rf /run/containerd; fi
    # Empty dirs only: what other programs put there stays.
    local made
    for made in var-log-pods:/var/log/pods var-log-containers:/var/log/containers run-netns:/run/netns; do
        if [[ -f "$NODE_STATE/.created-${made%%:*}" && -d "${made#*:}" ]]; then rmdir "${made#*:}" 2>/dev/null || true; fi
    done
}

# node_teardown: stops and removes everything the node made, in dependency order; safe after a
# partial start and when run twice. Keeps the state dir's logs when NODE_KEEP_STATE=1.
node_teardown() {
    [[ -n "${NODE_STATE:-}" && -d "$NODE_STATE" ]] || return 0
    log_info "stopping the node (state $NODE_STATE)"
    local timings="" step start
    for step in "node_stop kubelet" node_kill_containers "node_stop containerd" node_kill_shims \
        "node_unmount_under $NODE_STATE" "node_stop fabric-udevd" node_detach_loops "node_stop arraysim" \
        node_stop_cluster node_network_down node_remove_cgroups node_remove_shared_paths node_restore_sysctls \
        node_restore_propagation; do
        start=$SECONDS
        $step
        timings+="${step%% "$NODE_STATE"} $((SECONDS - start))s, "
    done
    log_info "teardown steps: ${timings%, }"
    local left
    left="$(node_footprint)"
    [[ -z "$left" ]] || log_info "left behind: $left"
    [[ "$(cat "$NODE_OWNER_FILE" 2>/dev/null)" == "$NODE_STATE" ]] && rm -f "$NODE_OWNER_FILE"
    if [[ "${NODE_KEEP_STATE:-0}" == 1 ]]; then
        rm -rf "$FLASHVOL_CLUSTER_STATE/etcd" "$NODE_STATE/containerd/root" "$NODE_STATE/sim/state"
        log_info "stopped; logs kept in $NODE_STATE"
    else
        rm -rf "$NODE_STATE"
    fi
    [[ -z "$left" ]]
}

node_stop_cluster() {
    [[ -n "${FLASHVOL_CLUSTER_STATE:-}" && -d "$FLASHVOL_CLUSTER_STATE/pids" ]] || return 0
    "$REPO_ROOT/tests/cluster/down.sh" --keep "$FLASHVOL_CLUSTER_STATE" >/dev/null 2>&1 ||
        log_info "tests/cluster/down.sh failed"
}

# node_processes: processes (not scripts: their arguments may name the state dir) that run
# with the state dir in their command line: the node's components and containers' shims.
node_processes() {
    local pid exe
    for pid in $(pgrep -f -- "$NODE_STATE" || true); do
        exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || continue
        case "${exe##*/}" in bash | sh | dash | sleep | timeout | tail) continue ;; esac
        echo "process $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    done
}

# node_footprint: what of this node is still on the machine (empty when nothing): mounts, loop
# devices, interfaces, the DNAT rule, processes, changed kernel settings and mount propagation.
node_footprint() {
    local out=()
    mapfile -t -O 0 out < <(awk -v root="$NODE_STATE" 'index($5, root) == 1 { print "mount " $5 }' /proc/self/mountinfo)
    mapfile -t -O "${#out[@]}" out < <(node_loop_devices | sed 's/^/loop device /')
    local link
    for link in "$NODE_LINK" "$NODE_BRIDGE"; do
        ip link show "$link" >/dev/null 2>&1 && out+=("interface $link")
    done
    grep -qF "flashvol-node:$NODE_STATE" <<<"$(iptables -t nat -S 2>/dev/null)" && out+=("iptables DNAT rule")
    mapfile -t -O "${#out[@]}" out < <(node_processes)
    mapfile -t -O "${#out[@]}" out < <(node_sysctls_changed)
    mapfile -t -O "${#out[@]}" out < <(node_propagation_changes | awk '{ print "mount " $1 " is " $3 ", was " $2 }')
    ((${#out[@]} == 0)) || printf '%s; ' "${out[@]}"
}
