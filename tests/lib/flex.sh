# shellcheck shell=bash
# The flex driver on a fake node (part of harness.sh): installed the way the DaemonSet installs
# it (and, for node metrics, the installer itself kept running), and called exactly as kubelet
# calls it (a bare environment, a pod volume dir, the PV's
# options plus kubelet's keys), over the test fabric (tests/fabric: loop devices stand in for
# FlashArray LUNs, bind mounts for FlashBlade NFS exports); and the node's teardown.

# flex_setup_node [host]: installs the driver as the DaemonSet does (binary at
# <plugin dir>/pure~flex/flex, settings file flashvol.json next to it, root-only), and a fake
# node around it: kubelet root, by-id and sysfs dirs, iSCSI initiator name, and one fabric
# config per FlashArray (tests/fabric/iscsiadm asks one simulator which LUNs this initiator
# sees). With "host" (real arrays) the driver uses this machine's own devices and tools; only
# its log and locks go into the work dir, and a "node" section of pure.json is kept.
flex_setup_node() {
    local mode="${1:-fabric}" node_dir="$WORKDIR/node" plugin_dir="${FLASHVOL_FLEX_PLUGIN_DIR:-$WORKDIR/node/plugins}"
    FLEX_KUBELET_ROOT="$node_dir/kubelet"
    FLEX_DIR="$plugin_dir/pure~flex"
    FLEX_BIN="$FLEX_DIR/flex"
    FLEX_SETTINGS="$FLEX_DIR/flashvol.json"
    FLEX_NODE_NAME="e2e-node-1"
    FLEX_IQN="iqn.2026-11.io.flashvol.e2e:node-1"
    mkdir -p "$FLEX_KUBELET_ROOT" "$FLEX_DIR"
    install -m 0755 "$WORKDIR_BIN/flashvol-flex" "$FLEX_BIN"
    echo "$FLEX_DIR" >"$WORKDIR/.flex-installed"
    if [[ "$mode" == host ]]; then
        FLEX_NODE_NAME="$(hostname)"
        (umask 077 && jq --arg node "$node_dir" '.node = ({logFile: "\($node)/flex.log", locksDir: "\($node)/locks"} + (.node // {}))' \
            "$KUBE_PURE_JSON" >"$FLEX_SETTINGS")
        workdir_save FLEX_KUBELET_ROOT FLEX_DIR FLEX_BIN FLEX_SETTINGS FLEX_NODE_NAME
        return 0
    fi
    mkdir -p "$node_dir/dev/disk/by-id" "$node_dir/dev/mapper" "$node_dir/sys/block"
    printf 'InitiatorName=%s\n' "$FLEX_IQN" >"$node_dir/initiatorname.iscsi"
    local fabric="$REPO_ROOT/tests/fabric"
    (umask 077 && jq --arg node "$node_dir" --arg name "$FLEX_NODE_NAME" --arg fabric "$fabric" '. + {node: {
        nodeName: $name, logFile: "\($node)/flex.log", logLevel: "debug", locksDir: "\($node)/locks",
        deviceDir: "\($node)/dev/disk/by-id", mapperDir: "\($node)/dev/mapper", sysfsRoot: "\($node)/sys",
        iscsiInitiatorFile: "\($node)/initiatorname.iscsi",
        tools: {iscsiadm: "\($fabric)/iscsiadm", multipath: "\($fabric)/multipath",
                multipathd: "\($fabric)/multipathd", mount: "\($fabric)/mount"},
        deadlines: {arrayCallSeconds: 30, deviceWaitSeconds: 30, lockWaitSeconds: 120}}}' \
        "$KUBE_PURE_JSON" >"$FLEX_SETTINGS")
    local array
    for array in fa-a fa-b; do
        jq -n --arg fa "$(sim_field "$array" admin_url)" --arg fb "$(sim_field fb-1 admin_url)" \
            --arg ca "$SIM_CA" --arg iqn "$FLEX_IQN" --arg node "$node_dir" --arg array "$array" '{
            faAdminUrl: $fa, fbAdminUrl: $fb, faCaCert: $ca, fbCaCert: $ca, initiator: $iqn,
            sysfsRoot: "\($node)/sys", deviceDir: "\($node)/dev/disk/by-id",
            stateDir: "\($node)/fabric-\($array)"}' >"$node_dir/fabric-$array.json"
    done
    workdir_save FLEX_KUBELET_ROOT FLEX_DIR FLEX_BIN FLEX_SETTINGS FLEX_NODE_NAME FLEX_IQN
}

# flex_teardown_node: unmounts everything under the work dir (deepest first, lazily, so a busy
# mount never stops the rest), logs the fabric out (it detaches its loop devices), detaches any
# loop device still backed by a file under the work dir, and removes the installed driver.
flex_teardown_node() {
    local mounts mount_point
    mounts="$(awk -v root="$WORKDIR/" 'index($5, root) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)"
    if [[ -n "$mounts" ]]; then
        while read -r mount_point; do umount -l "$mount_point" 2>/dev/null || true; done <<<"$mounts"
    fi
    local fabric
    for fabric in "$WORKDIR"/node/fabric-*.json; do
        [[ -f "$fabric" ]] || continue
        FLASHVOL_FABRIC_CONFIG="$fabric" "$REPO_ROOT/tests/fabric/iscsiadm" -m node --logoutall=all >/dev/null 2>&1 || true
    done
    # A loop device whose backing file lies under the work dir and that the fabric lost track of.
    losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v root="$WORKDIR/" 'index($2, root) == 1 {print $1}' |
        while read -r device; do losetup -d "$device" 2>/dev/null || true; done
    if [[ -f "$WORKDIR/.flex-installed" ]]; then
        rm -rf "$(cat "$WORKDIR/.flex-installed")"
    fi
}

# flex_start_installer DAEMONSET_JSON METRICS_PORT: the node installer as the DaemonSet runs it
# (`flashvol-flex install` with the DaemonSet's driver name, node settings and --metrics-address
# port, staying up), into its own plugin dir $WORKDIR/node/installer-plugins, serving the
# node's call-out statistics on 127.0.0.1:METRICS_PORT. It has no API access here, so the
# DaemonSet check on SIGTERM is left out. FLEX_INSTALLED_BIN is the driver it installed.
flex_start_installer() {
    local ds="$1" port="$2" plugin_dir="$WORKDIR/node/installer-plugins" args=() arg
    mkdir -p "$plugin_dir" "$WORKDIR/node/installer-proc"
    while IFS= read -r arg; do
        case "$arg" in
        --driver=*) args+=("$arg") ;;
        --metrics-address=*) args+=("--metrics-address=127.0.0.1:$port") ;;
        esac
    done < <(jq -r '.spec.template.spec.containers[0].args[]' <<<"$ds")
    (
        env -i PATH="$PATH" NODE_NAME="$FLEX_NODE_NAME" \
            FLASHVOL_NODE_SETTINGS="$(jq -r '.spec.template.spec.containers[0].env[] | select(.name == "FLASHVOL_NODE_SETTINGS") | .value' <<<"$ds")" \
            setsid "$WORKDIR_BIN/flashvol-flex" install --plugin-dir "$plugin_dir" --proc "$WORKDIR/node/installer-proc" \
            --config "$KUBE_PURE_JSON" "${args[@]}" </dev/null >>"$WORKDIR/logs/node-installer.log" 2>&1 &
        echo "$!" >"$WORKDIR/pids/node-installer"
    )
    # shellcheck disable=SC2034 # read by the scenarios
    FLEX_INSTALLED_BIN="$plugin_dir/pure~flex/flex"
    check_within 30 "the node installer to serve /metrics on 127.0.0.1:$port" \
        curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz"
}

# flex_stop_installer: SIGTERM to the node installer (if it runs), bounded.
flex_stop_installer() {
    [[ -n "${WORKDIR:-}" ]] || return 0
    workdir_signal "$WORKDIR/pids/node-installer" "$WORKDIR_BIN/flashvol-flex" TERM
}

flex_pod_dir() { echo "$FLEX_KUBELET_ROOT/pods/$1/volumes/pure~flex/$2"; }

# flex_fabric_for_pv PV: the fabric config of the FlashArray holding the PV's volume. A real node
# sees every array's LUNs through one iscsiadm; the stand-in asks one simulator, so the
# kubelet stand-in picks the right one (file PVs only need the FlashBlade, any config will do).
flex_fabric_for_pv() {
    local volume array
    # Real arrays (no simulator): the driver uses the machine's own tools, no fabric.
    [[ -f "$WORKDIR/sim/arrays.jsonl" ]] || {
        echo /nonexistent
        return 0
    }
    volume="$(kube_array_name_of_pv "$1")"
    array="$(sim_array_holding "$volume")" || array=fa-a
    [[ "$array" == fb-1 ]] && array=fa-a
    echo "$WORKDIR/node/fabric-$array.json"
}

# flex_exec FABRIC_CONFIG ARG...: the installed driver run as kubelet runs it: a bare
# environment, argv only. Its reply is on stdout; its stderr goes where the caller sends it.
flex_exec() {
    local fabric="$1"
    shift
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        FLASHVOL_FABRIC_CONFIG="$fabric" "$FLEX_BIN" "$@"
}

# flex_call FABRIC_CONFIG ARG...: flex_exec, then prints the reply; fails unless its status is
# Success.
flex_call() {
    local fabric="$1" reply status
    shift
    reply="$(flex_exec "$fabric" "$@" 2>"$WORKDIR/logs/flex-stderr.log")" || true
    status="$(jq -r '.status' <<<"$reply" 2>/dev/null)" || status=""
    [[ "$status" == Success ]] || check_fail "flex $1 failed: ${reply:-<no output>} $(cat "$WORKDIR/logs/flex-stderr.log")"
    echo "$reply"
}

# flex_options PV NS POD_NAME POD_UID: the options JSON kubelet passes to `flex mount` for PV in
# that pod: the PV's flexVolume options plus kubelet's own keys.
flex_options() {
    kubectl get pv "$1" -o json | jq -c --arg pv "$1" --arg ns "$2" --arg pod "$3" --arg uid "$4" '
        (.spec.flexVolume.options // {}) + {
          "kubernetes.io/fsType": (.spec.flexVolume.fsType // ""),
          "kubernetes.io/readwrite": "rw",
          "kubernetes.io/pvOrVolumeName": $pv,
          "kubernetes.io/pod.name": $pod, "kubernetes.io/pod.namespace": $ns,
          "kubernetes.io/pod.uid": $uid, "kubernetes.io/serviceAccount.name": "default"}'
}

# flex_expandfs POD_UID PV NEW_BYTES OLD_BYTES: kubelet's NodeExpand for a flex PV with
# attach:false (pkg/volume/flexvolume/expander.go): `flex expandfs <options> "" <pod volume dir>
# <new> <old>`, the options being the PV's plus kubelet's fsType, readwrite and pvOrVolumeName.
# Prints the reply; returns 0 when it is Success.
flex_expandfs() {
    local uid="$1" pv="$2" options reply
    options="$(kubectl get pv "$pv" -o json | jq -c --arg pv "$pv" '(.spec.flexVolume.options // {}) + {
        "kubernetes.io/fsType": (.spec.flexVolume.fsType // ""), "kubernetes.io/readwrite": "rw",
        "kubernetes.io/pvOrVolumeName": $pv}')"
    reply="$(flex_exec "$(flex_fabric_for_pv "$pv")" expandfs "$options" "" "$(flex_pod_dir "$uid" "$pv")" "$3" "$4" \
        2>>"$WORKDIR/logs/flex-stderr.log")" || true
    echo "$reply"
    [[ "$(jq -r .status <<<"$reply" 2>/dev/null)" == Success ]]
}

# flex_df_bytes DIR: the size of the file system mounted at DIR, as df shows it in the pod.
flex_df_bytes() { df -B1 --output=size "$1" | tail -n 1 | tr -d ' '; }

# flex_mount POD_UID PV [NS] [POD_NAME]: kubelet's SetUp for a flex PV: mkdir the pod volume
# dir, then `flex mount <dir> <options + kubelet's keys>`.
flex_mount() {
    local uid="$1" pv="$2" ns="${3:-default}" pod="${4:-pod-$1}" dir options
    dir="$(flex_pod_dir "$uid" "$pv")"
    mkdir -p "$(dirname "$dir")"
    [[ -d "$dir" ]] || mkdir -m 0750 "$dir"
    options="$(flex_options "$pv" "$ns" "$pod" "$uid")"
    flex_call "$(flex_fabric_for_pv "$pv")" mount "$dir" "$options" >/dev/null
    mountpoint -q "$dir" || check_fail "flex mount said Success but $dir is not a mount point"
}

# flex_unmount POD_UID PV: kubelet's TearDown: `flex unmount <dir>`, then remove the dir.
flex_unmount() {
    local dir fabric
    dir="$(flex_pod_dir "$1" "$2")"
    fabric="$(flex_fabric_for_pv "$2" 2>/dev/null)" || fabric="$WORKDIR/node/fabric-fa-a.json"
    flex_call "$fabric" unmount "$dir" >/dev/null
    ! mountpoint -q "$dir" || check_fail "flex unmount said Success but $dir is still mounted"
    rmdir "$dir"
}

# flex_write_payload DIR: the pod writes 4 MiB of random data into its volume; prints its sha256.
flex_write_payload() {
    head -c 4194304 /dev/urandom >"$1/payload.bin"
    sync
    sha256sum "$1/payload.bin" | cut -d' ' -f1
}
flex_read_payload() { sha256sum "$1/payload.bin" | cut -d' ' -f1; }

# flex_payload_in_new_pod write|read PV NS: a fresh pod mounts PV, writes 4 MiB of random data
# (write) or reads the payload (read), and unmounts; prints the payload's sha256.
flex_payload_in_new_pod() {
    local pod sum name=reader
    [[ "$1" == write ]] && name=writer
    pod="$(cat /proc/sys/kernel/random/uuid)"
    flex_mount "$pod" "$2" "$3" "$name"
    sum="$("flex_${1}_payload" "$(flex_pod_dir "$pod" "$2")")"
    flex_unmount "$pod" "$2"
    echo "$sum"
}

# flex_check_remount PV NS: the pod-style data check of one PV: mount into pod A, write,
# unmount, mount into pod B, data intact, unmount.
flex_check_remount() {
    local pv="$1" ns="$2" pod_a pod_b sum
    pod_a="$(cat /proc/sys/kernel/random/uuid)"
    pod_b="$(cat /proc/sys/kernel/random/uuid)"
    log_step "mount $pv into pod $pod_a through $FLEX_BIN (as kubelet would) and write 4 MiB"
    flex_mount "$pod_a" "$pv" "$ns" writer
    sum="$(flex_write_payload "$(flex_pod_dir "$pod_a" "$pv")")"
    log_step "unmount it from pod $pod_a"
    flex_unmount "$pod_a" "$pv"
    log_step "mount $pv into a second pod $pod_b and check the data (sha256 ${sum:0:12}…)"
    flex_mount "$pod_b" "$pv" "$ns" reader
    check_eq "sha256 of the data read back in the second pod" "$(flex_read_payload "$(flex_pod_dir "$pod_b" "$pv")")" "$sum"
    log_step "data intact in the second pod; unmount it"
    flex_unmount "$pod_b" "$pv"
}
