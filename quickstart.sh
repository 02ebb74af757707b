#!/usr/bin/env bash
# flashvol quickstart: the whole path of a volume, on this machine, in one command.
#
#   ./quickstart.sh                  simulated arrays (two FlashArrays, one FlashBlade) on a real
#                                    kubelet node of this machine, where it can run containers
#   ./quickstart.sh --emulated       the same without containers: the flex driver called the way
#                                    kubelet calls it
#   ./quickstart.sh --config FILE    your arrays: FILE is a PSO pure.json (see install/README.md)
#
# Run as root on a Debian-like machine. It installs the packages it needs, builds what it runs,
# and walks a claim through its whole life in ten numbered steps: bound, array volume created,
# written in one pod, read back in a second, claim deleted, array volume destroyed. It tears
# everything down again, also on failure or Ctrl-C. Exit status 0 means it all worked. It says
# which of its two paths it took, and why:
#
#   real node  the default, where containers can run (root, cgroup cpu/memory/pids, overlayfs
#              mounts, containerd and runc installed or installable with apt-get):
#              tests/node/up.sh starts a local control plane, containerd and kubelet (node
#              flashvol-node-1); the shipped Helm chart installs flashvol's image built from this
#              checkout, so its DaemonSet pod puts the driver into kubelet's plugin dir and its
#              Deployment pod is the provisioner; real pods write and read the volume.
#              tests/node/down.sh tears it down and checks that nothing is left on the machine.
#   emulated   --emulated; where containers cannot run or the node does not start (it falls
#              back, saying why); with --config (the node's iSCSI/NFS tools are the test
#              fabric, for simulated arrays only) or $KUBECONFIG (your cluster's nodes cannot
#              reach the simulated arrays of this machine): the shipped manifests on a local
#              control plane (or $KUBECONFIG's cluster), the provisioner run here with their
#              ServiceAccount, and the flex driver called the way kubelet calls it, over the
#              test fabric or, with --config, this machine's iscsiadm/multipath/NFS client.
#
# Options:
#   --config FILE   real arrays instead of the simulator (emulated path)
#   --emulated      the emulated path, even where containers can run
#   --keep          keep the work dirs (logs, certificates) after the run
#   -h, --help      this text
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export FLASHVOL_LOG_TAG=quickstart
# The real node's helpers; tests/node/lib.sh loads the shell harness (tests/lib/harness.sh).
# shellcheck source=tests/node/lib.sh
. "$REPO/tests/node/lib.sh"
# shellcheck source=tests/node/node.sh
. "$REPO/tests/node/node.sh"
# shellcheck source=tests/node/flashvol.sh
. "$REPO/tests/node/flashvol.sh"

config_file=""
keep=false
emulated=false
while (($#)); do
    case "$1" in
    --config)
        (($# >= 2)) || log_die "--config needs a file"
        [[ -r "$2" ]] || log_die "--config $2: no such readable file"
        config_file="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
        shift 2
        ;;
    --emulated) emulated=true; shift ;;
    --keep) keep=true; shift ;;
    -h | --help) usage "$0"; exit 0 ;;
    *) log_die "unknown argument '$1' (see --help)" ;;
    esac
done
simulated=true
[[ -n "$config_file" ]] && simulated=false
external_cluster=false
[[ -n "${KUBECONFIG:-}" ]] && external_cluster=true

# Where it runs (see the header): decided here, or in step 1 by what the machine can do.
path="" why=""
if $emulated; then
    path=emulated why="--emulated"
elif ! $simulated; then
    path=emulated why="--config names real arrays; the test node's iSCSI/NFS tools are the test fabric, which serves simulated arrays only"
elif $external_cluster; then
    path=emulated why="KUBECONFIG names your cluster, whose nodes cannot reach the simulated arrays on this machine"
fi

TOTAL_STEPS=10
step_number=0 step_start=$SECONDS run_start=$SECONDS step_times=""
# progress TEXT: a numbered step.
progress() {
    ((step_number == 0)) || step_times+="$step_number: $((SECONDS - step_start))s, "
    step_number=$((step_number + 1)) step_start=$SECONDS
    printf '\n\033[1m[%d/%d] %s\033[0m\n' "$step_number" "$TOTAL_STEPS" "$*"
}
say() { printf '      %s\n' "$*"; }
indent() { sed 's/^/      /'; }
path_name() {
    case "$1" in
    node) echo "a real kubelet node on this machine" ;;
    emulated) echo "emulated: the flex driver called the way kubelet calls it, no containers" ;;
    esac
}

NAMESPACE=flashvol-quickstart
CLASS=flashvol-quickstart
CLAIM=demo-claim
# A dir for this run's own files (the node's state dir, its logs, the image build's log).
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-quickstart.XXXXXX")"
cluster_state=""
applied_manifests=false
succeeded=false
# The run's own stdout and stderr, for the teardown: a Ctrl-C during a call whose output is
# discarded (flex_call ... >/dev/null) runs the traps with that redirection still in place.
exec 3>&1 4>&2

# --- teardown -----------------------------------------------------------------------------------
# shellcheck disable=SC2317 # invoked by the traps
teardown() {
    local rc=$?
    trap - EXIT INT TERM
    exec 1>&3 2>&4
    # Best effort from here on: one failing cleanup step must not skip the others.
    set +e
    ((step_number == 0)) || step_times+="$step_number: $((SECONDS - step_start))s, "
    local teardown_start=$SECONDS
    printf '\n\033[1mTearing down\033[0m\n'
    if $external_cluster && $applied_manifests; then
        say "removing what the quickstart created in your cluster"
        kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=false >/dev/null 2>&1 || true
        kubectl delete storageclass "$CLASS" --ignore-not-found >/dev/null 2>&1 || true
        kubectl delete -f "$REPO/install/manifests/flashvol.yaml" --ignore-not-found >/dev/null 2>&1 || true
    fi
    workdir_teardown
    if [[ -n "$cluster_state" ]]; then
        say "stopping the local control plane"
        "$REPO/tests/cluster/down.sh" "$cluster_state" >/dev/null 2>&1 || true
    fi
    if [[ -f "$RUN_DIR/node/node.env" ]]; then
        say "stopping the node: tests/node/down.sh (then it checks that nothing is left)"
        local keep_logs=()
        $keep || ! $succeeded && keep_logs=(--keep)
        if "$REPO/tests/node/down.sh" "${keep_logs[@]}" "$RUN_DIR/node" 2>"$RUN_DIR/node-down.log"; then
            say "nothing left on this machine: no mount, loop device, interface, iptables rule, process or changed kernel setting of the node"
        else
            grep -E 'left behind|error' "$RUN_DIR/node-down.log" | indent
            say "tests/node/down.sh found something left (above)"
            ((rc != 0)) || rc=1
            succeeded=false
        fi
    fi
    rmdir "$RUN_DIR" 2>/dev/null || true
    for dir in "${WORKDIR:-}" "$RUN_DIR"; do
        [[ -n "$dir" && -d "$dir" ]] || continue
        if $keep || ! $succeeded; then
            say "kept: $dir ($(cd "$dir" && find . -maxdepth 3 -name '*.log' | sort | head -n 12 | tr '\n' ' '))"
        else
            rm -rf "$dir"
        fi
    done
    local took="$((SECONDS - run_start))s"
    if $succeeded; then
        printf '\n\033[1mquickstart: success in %s (%s)\033[0m\n' "$took" "$(path_name "$path")"
        say "steps: ${step_times}teardown: $((SECONDS - teardown_start))s"
    elif ((rc == 130 || rc == 143)); then
        printf '\n\033[1mquickstart: interrupted at step %d\033[0m\n' "$step_number"
    else
        printf '\n\033[1mquickstart: FAILED at step %d (exit %d)\033[0m\n' "$step_number" "$rc"
        ((rc != 0)) || rc=1
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- real node ---------------------------------------------------------------------------------
# node_claim_lifecycle: steps 6 to 10, the claim's life with real pods, and what kubelet had the
# driver do on the node and what is on the simulated arrays at each step.
node_claim_lifecycle() {
    local pv volume array sum uid dir staging mark

    progress "Creating claim $NAMESPACE/$CLAIM (StorageClass pure-block from the chart, 1Gi)"
    node_make_namespace "$NAMESPACE"
    kube_create_pvc "$NAMESPACE" "$CLAIM" pure-block 1Gi
    kube_wait_bound "$NAMESPACE" "$CLAIM"
    pv="$(kube_pv_of "$NAMESPACE" "$CLAIM")"
    volume="$(kube_array_name_of_pv "$pv")"
    kubectl -n "$NAMESPACE" get pvc "$CLAIM" | indent
    say "PV $pv → array volume $volume on $(kubectl get pv "$pv" -o 'jsonpath={.spec.flexVolume.options.arrayEndpoint}'), made by the provisioner pod"
    array="$(sim_array_holding "$volume")" || check_fail "$volume is not on any simulated array"
    say "on the array ($array, /_sim/state): $(sim_admin "$array" state | jq -c --arg v "$volume" '.volumes[$v] | {name, serial, size, destroyed: (.destroyed_at != null)}')"

    progress "Pod writer mounts the claim and writes 4 MiB to it"
    mark="$(node_flex_log_lines)"
    node_run_pod "$NAMESPACE" writer "$NODE_WRITE_SCRIPT" "$CLAIM"
    node_wait_pod_log "$NAMESPACE" writer ready
    sum="$(node_pod_log_value "$NAMESPACE" writer "sha-$CLAIM")"
    [[ "$sum" =~ ^[0-9a-f]{64}$ ]] || check_fail "pod writer printed no checksum"
    kubectl -n "$NAMESPACE" get pod writer -o wide | indent
    uid="$(node_pod_uid "$NAMESPACE" writer)"
    dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$pv"
    staging="$(node_staging_dir "$pv")"
    node_flex_logged_since "$mark" " mount $dir " || check_fail "the driver log has no mount call from kubelet for $dir"
    node_is_mount_point "$dir" || check_fail "$dir is not mounted"
    say "kubelet ran the driver the DaemonSet installed: $NODE_PLUGIN_DIR/pure~flex/flex mount $dir {options}"
    say "it formatted $volume once ($(node_flex_count_since "$mark" "formatting $volume ") format in its log $NODE_FLEX_LOG),"
    say "mounted it at $staging ($(findmnt -n -o SOURCE "$staging"): the LUN through the test fabric) and bind-mounted it into the pod"
    say "pod writer: sha256 of /data/$CLAIM/payload is ${sum:0:16}…"

    progress "Deleting pod writer: kubelet unmounts the volume"
    mark="$(node_flex_log_lines)"
    node_delete_pod "$NAMESPACE" writer
    node_flex_logged_since "$mark" " unmount $dir" || check_fail "the driver log has no unmount call from kubelet for $dir"
    check_eq "mounts of $pv on the node" "$(node_mount_count "$pv")" 0
    sim_not_connected "$array" "$volume" || check_fail "$volume is still connected on $array"
    say "kubelet ran the driver's unmount: no mount of $pv left, $volume disconnected from this node on $array"

    progress "Pod reader mounts the claim and reads the data back"
    mark="$(node_flex_log_lines)"
    node_run_pod "$NAMESPACE" reader "$NODE_READ_SCRIPT" "$CLAIM"
    node_wait_pod_log "$NAMESPACE" reader ready
    check_eq "sha256 read back by pod reader" "$(node_pod_log_value "$NAMESPACE" reader "sha-$CLAIM")" "$sum"
    kubectl -n "$NAMESPACE" get pod reader -o wide | indent
    node_flex_logged_since "$mark" "formatting $volume " && check_fail "$volume was formatted again"
    say "mounted again without a format (the driver found its file system)"
    say "pod reader: sha256 ${sum:0:16}…, the data pod writer wrote"
    node_delete_pod "$NAMESPACE" reader

    progress "Deleting the claim: the PV goes and the array volume is destroyed"
    kubectl -n "$NAMESPACE" delete pvc "$CLAIM" --wait=false >/dev/null
    check_within "$NODE_TIMEOUT" "PV $pv to be deleted" kube_pv_gone "$pv"
    say "PV $pv: deleted"
    check_within 60 "$volume to be destroyed on $array" sim_volume_destroyed "$array" "$volume"
    say "on the array ($array): $(sim_admin "$array" state | jq -c --arg v "$volume" '.volumes[$v] | {name, destroyed: (.destroyed_at != null)}') (destroyed, recoverable until eradicated)"
    local left
    left="$(node_is_clean)" || check_fail "left on the node: $left"
    say "nothing of the claim left on the node: no mount, loop device, volume record or array connection"
    kubectl delete namespace "$NAMESPACE" --wait=true --timeout="${NODE_TIMEOUT}s" >/dev/null
}

# node_build: step 2, everything the node runs, built before anything starts (cached later).
node_build() {
    progress "Building flashvol's image and the array simulator; Kubernetes $K8S_VERSION and Helm"
    [[ -f "$(bin_dir_for "$K8S_VERSION")/.complete" ]] ||
        say "(the first run builds Kubernetes $K8S_VERSION from source: about 35 minutes on 2 cores; it is cached)"
    local k8s_bin_dir
    k8s_bin_dir="$("$REPO/tests/cluster/build.sh" --print-dir)" || log_die "building Kubernetes $K8S_VERSION failed"
    helm version --short >/dev/null || log_die "helm (install/tools/helm.sh) does not run"
    flashvol_build "$RUN_DIR/image-build.log"
    say "image $(sed -n 's/^build.sh: \([^ ]*\) .*/\1/p' "$RUN_DIR/image-build.log") (flashvol-flex, flashvol-provisioner: static, from this checkout)"
    say "Kubernetes $K8S_VERSION in $k8s_bin_dir, Helm $(helm version --short)"
}

# node_start: step 3, tests/node/up.sh --no-flashvol. When the node does not start, up.sh has
# removed what it made; this says why (in `why`) and returns 1.
node_start() {
    progress "Starting a Kubernetes node: control plane, containerd, kubelet (tests/node/up.sh)"
    if ! "$REPO/tests/node/up.sh" --no-flashvol --state-dir "$RUN_DIR/node" >/dev/null 2>"$RUN_DIR/node-up.log"; then
        tail -n 25 "$RUN_DIR/node-up.log" | indent
        why="the node did not start here (log: $RUN_DIR/node-up.log): $(grep -m1 -o 'error: .*' "$RUN_DIR/node-up.log" || tail -n 1 "$RUN_DIR/node-up.log")"
        return 1
    fi
}

# node_install_and_use: steps 4 and 5 on the node that started, then the claim's life.
node_install_and_use() {
    node_load "$RUN_DIR/node"
    grep -E 'starting|Ready|up in' "$RUN_DIR/node-up.log" | sed 's/^\[[^]]*\] //; s/; stop with.*//' | indent
    kubectl get nodes -o wide | indent

    progress "Arrays: two simulated FlashArrays and a FlashBlade on the node's address, the test fabric as its iSCSI/NFS tools"
    flashvol_arrays
    say "tools: $NODE_STATE/fabric/{iscsiadm,multipath,multipathd,mount} (loop devices for LUNs, bind mounts for NFS)"

    progress "Installing flashvol with the Helm chart (install/helm/flashvol), as a user would"
    flashvol_install
    say "(values $NODE_STATE/values.yaml: the arrays, the image built here, kubelet's plugin dir, the node's tool paths)"
    kubectl -n "$NODE_SYSTEM_NAMESPACE" get pods -o wide | indent
    say "the DaemonSet pod installed the driver: $NODE_PLUGIN_DIR/pure~flex/flex, the flashvol-flex built from this checkout"
    say "the Deployment pod runs the provisioner, the Secret pure-provisioner-secret mounted at /etc/pure"

    node_claim_lifecycle
}

# --- emulated ----------------------------------------------------------------------------------
# emulated_path: the shipped manifests, the provisioner as a process of this machine, and the
# flex driver called the way kubelet calls it (9 steps after the prerequisites).
emulated_path() {
    progress "Building flashvol (provisioner, flex driver, array simulator)"
    host_build
    say "binaries in $HOST_BUILD_DIR"

    workdir_create
    progress "Arrays"
    if $simulated; then
        sim_make_ca
        sim_start
        sim_write_pure_json "$WORKDIR/pure.json"
        say "simulated arrays (one process, log $WORKDIR/logs/arraysim.log):"
        while read -r line; do say "  $line"; done < <(jq -r '"\(.name) (\(.kind)) at https://\(.endpoint), admin API \(.admin_url)"' "$WORKDIR/sim/arrays.jsonl")
    else
        jq -e '(.FlashArrays // []) + (.FlashBlades // []) | length > 0' "$config_file" >/dev/null 2>&1 ||
            log_die "$config_file is not a pure.json with at least one entry in FlashArrays or FlashBlades"
        say "your arrays from $config_file:"
        while read -r line; do say "  $line"; done < <(jq -r '(.FlashArrays // [])[] | "FlashArray \(.MgmtEndPoint)", ((.FlashBlades // [])[] | "FlashBlade \(.MgmtEndPoint)")' "$config_file")
        install -m 0600 "$config_file" "$WORKDIR/pure.json"
    fi

    progress "Kubernetes control plane"
    if $external_cluster; then
        if ! command -v kubectl >/dev/null; then
            say "no kubectl on PATH: using the pinned one (built on first use)"
            local k8s_bin_dir
            k8s_bin_dir="$("$REPO/tests/cluster/build.sh" --print-dir)"
            export PATH="$k8s_bin_dir:$PATH"
        fi
        kubectl version >/dev/null 2>&1 || log_die "the cluster of KUBECONFIG=$KUBECONFIG does not answer"
        say "using your cluster (KUBECONFIG=$KUBECONFIG): $(kubectl config current-context 2>/dev/null || echo '?')"
        # The teardown deletes what the manifests create; never take over an existing install.
        if kubectl get namespace "$KUBE_NAMESPACE" >/dev/null 2>&1; then
            log_die "namespace $KUBE_NAMESPACE already exists in this cluster: flashvol (or PSO) seems installed; the quickstart would replace and then delete it"
        fi
    else
        say "starting etcd, kube-apiserver, kube-controller-manager on 127.0.0.1 (first run builds them: slow)"
        local up_output
        up_output="$("$REPO/tests/cluster/up.sh")"
        cluster_state="$(sed -n 's/^FLASHVOL_CLUSTER_STATE=//p' <<<"$up_output")"
        [[ -n "$cluster_state" && -f "$cluster_state/env" ]] || log_die "tests/cluster/up.sh did not report a state dir"
        while IFS='=' read -r name value; do
            [[ "$name" =~ ^[A-Z_][A-Z0-9_]*$ ]] && export "$name=$value"
        done <"$cluster_state/env"
        export PATH="$FLASHVOL_K8S_BIN_DIR:$PATH"
        say "control plane $FLASHVOL_K8S_VERSION at $FLASHVOL_APISERVER_URL (logs in $cluster_state/logs)"
    fi

    progress "Installing the manifests (install/manifests/flashvol.yaml) with your pure.json in the Secret"
    applied_manifests=true
    kube_install_manifests "$WORKDIR/pure.json"
    kube_service_account_kubeconfig
    say "namespace $KUBE_NAMESPACE: ServiceAccount $KUBE_SERVICE_ACCOUNT, RBAC, Secret pure-provisioner-secret, StorageClasses: $(kubectl get storageclass -o 'jsonpath={.items[*].metadata.name}')"
    if $external_cluster; then
        # This script's provisioner process is the one to watch: keep the shipped Deployment's pod
        # (which would pull the release image) out of the Lease.
        kubectl -n "$KUBE_NAMESPACE" scale deployment "$KUBE_PROVISIONER" --replicas=0 >/dev/null
        say "(Deployment $KUBE_PROVISIONER scaled to 0: the provisioner runs as a local process below)"
    else
        say "(the Deployment and DaemonSet are applied too; with no kubelet here their pods never run)"
    fi

    progress "Starting the provisioner (as ServiceAccount $KUBE_NAMESPACE/$KUBE_SERVICE_ACCOUNT, with the Deployment's args)"
    prov_ensure_main
    say "pid $(prov_pid main), log $(prov_log main)$($keep || echo ' (kept after the run with --keep)')"
    say "metrics: http://$(prov_http main)/metrics   health: http://$(prov_http main)/healthz"
    say "leader Lease $KUBE_NAMESPACE/$PROV_LEASE held by $(prov_lease_holder)"

    progress "Creating StorageClass $CLASS and claim $NAMESPACE/$CLAIM (1Gi)"
    kubectl apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: $CLASS}
provisioner: $KUBE_PROVISIONER
reclaimPolicy: Delete
parameters: {backend: block}
EOF
    kubectl create namespace "$NAMESPACE" >/dev/null
    kube_create_pvc "$NAMESPACE" "$CLAIM" "$CLASS" 1Gi
    kube_wait_bound "$NAMESPACE" "$CLAIM" 90
    local pv volume array=""
    pv="$(kube_pv_of "$NAMESPACE" "$CLAIM")"
    volume="$(kube_array_name_of_pv "$pv")"
    kubectl -n "$NAMESPACE" get pvc "$CLAIM" | indent
    say "PV $pv → array volume $volume on $(kubectl get pv "$pv" -o 'jsonpath={.spec.flexVolume.options.arrayEndpoint}')"
    if $simulated; then
        array="$(sim_array_holding "$volume")" || check_fail "$volume is not on any simulated array"
        say "on the array ($array, /_sim/state): $(sim_admin "$array" state | jq -c --arg v "$volume" '.volumes[$v] | {name, serial, size, destroyed: (.destroyed_at != null)}')"
    fi

    progress "Mounting it the way kubelet does (flex driver, pod volume dir), writing and reading data"
    if $simulated; then
        flex_setup_node
        say "flex driver installed at $FLEX_BIN (settings $FLEX_SETTINGS, log $WORKDIR/node/flex.log)"
        say "the test fabric stands in for iSCSI (loop devices) and NFS (bind mounts): tests/fabric/"
    else
        flex_setup_node host
        say "flex driver installed at $FLEX_BIN, using this machine's iscsiadm/multipath/mount"
    fi
    flex_check_remount "$pv" "$NAMESPACE"
    say "data written in the first pod read back intact in the second"

    progress "Deleting the claim: the PV goes and the array volume is destroyed"
    kubectl -n "$NAMESPACE" delete pvc "$CLAIM" --wait=false >/dev/null
    check_within 90 "PV $pv to be deleted" kube_pv_gone "$pv"
    say "PV $pv: deleted"
    if $simulated; then
        check_within 60 "$volume to be destroyed on $array" sim_volume_destroyed "$array" "$volume"
        say "on the array ($array): $(sim_admin "$array" state | jq -c --arg v "$volume" '.volumes[$v] | {name, destroyed: (.destroyed_at != null)}') (destroyed, recoverable until eradicated)"
    fi
    say "provisioner metrics after the run:"
    curl -fsS "http://$(prov_http main)/metrics" | grep -E '^flashvol_[a-z_]+_total(\{[^}]*\})? ' | head -n 8 | sed 's/^/        /' || true

    progress "Done: everything worked; tearing down"
    kubectl delete storageclass "$CLASS" >/dev/null
}

# -----------------------------------------------------------------------------------------------
progress "Checking prerequisites (root, loop devices, Debian packages) and whether containers can run here"
host_prerequisites
command -v cargo >/dev/null ||
    log_die "cargo is not installed: install a current Rust toolchain (https://rustup.rs) and run again"
say "ok: $(cargo --version), jq, curl, openssl, xfsprogs, loop devices"
if [[ -z "$path" ]]; then
    if found="$(node_can_run_here)"; then
        path=node why="containers can run here: $found"
    else
        path=emulated why="containers cannot run here: $found"
    fi
fi
say "path: $(path_name "$path") ($why)"

case "$path" in
node)
    node_build
    if node_start; then
        node_install_and_use
    else
        say "falling back to the emulated path: $(path_name emulated) ($why)"
        path=emulated TOTAL_STEPS=$((step_number + 9))
        emulated_path
    fi
    ;;
emulated) emulated_path ;;
esac
succeeded=true
