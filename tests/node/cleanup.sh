# shellcheck shell=bash
# What the test node leaves on the machine outside its state dir, and the teardown that removes
# it all: the kernel settings kubelet changes, the kubepods cgroups, kubelet's and containerd's
# shared paths, mounts and loop devices; then a check that nothing is left. Sourced by node.sh,
# never executed.

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
        node_stop_cluster node_network_down node_remove_cgroups node_remove_shared_paths node_restore_sysctls; do
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
# devices, interfaces, the DNAT rule, processes, changed kernel settings.
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
    ((${#out[@]} == 0)) || printf '%s; ' "${out[@]}"
}
