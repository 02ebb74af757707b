#!/usr/bin/env bash
# flashvol quickstart: the whole path of a volume, on this machine, in one command.
#
#   ./quickstart.sh                  simulated arrays (two FlashArrays, one FlashBlade)
#   ./quickstart.sh --config FILE    your arrays: FILE is a PSO pure.json (see install/README.md)
#
# Run as root on a Debian-like machine (loop devices and mounts are used). It installs the
# packages it needs, builds flashvol, starts a local Kubernetes control plane (or uses the
# cluster of $KUBECONFIG when set, without starting one), installs the shipped manifests,
# starts the provisioner with the manifests' ServiceAccount, provisions a claim, mounts it the
# way kubelet would through the flex driver, writes and reads data, deletes the claim, and
# tears everything down again (also on failure or Ctrl-C). Exit status 0 means it all worked.
#
# Options:
#   --config FILE   real arrays instead of the simulator. Mounting then uses this machine's own
#                   iscsiadm/multipath/NFS client (FILE's "node" section may point elsewhere).
#   --keep          keep the work dir (logs, certificates) after the run
#   -h, --help      this text
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export FLASHVOL_LOG_TAG=quickstart
# shellcheck source=tests/lib/harness.sh
. "$REPO/tests/lib/harness.sh"

config_file=""
keep=false
while (($#)); do
    case "$1" in
    --config)
        (($# >= 2)) || log_die "--config needs a file"
        config_file="$2"
        shift 2
        ;;
    --keep) keep=true; shift ;;
    -h | --help) usage "$0"; exit 0 ;;
    *) log_die "unknown argument '$1' (see --help)" ;;
    esac
done
if [[ -n "$config_file" ]]; then
    [[ -r "$config_file" ]] || log_die "--config $config_file: no such readable file"
    config_file="$(cd "$(dirname "$config_file")" && pwd)/$(basename "$config_file")"
fi
simulated=true
[[ -n "$config_file" ]] && simulated=false
external_cluster=false
[[ -n "${KUBECONFIG:-}" ]] && external_cluster=true

TOTAL_STEPS=10
step_number=0
# progress TEXT: a numbered step.
progress() {
    step_number=$((step_number + 1))
    printf '\n\033[1m[%d/%d] %s\033[0m\n' "$step_number" "$TOTAL_STEPS" "$*"
}
say() { printf '      %s\n' "$*"; }

NAMESPACE=flashvol-quickstart
CLASS=flashvol-quickstart
CLAIM=demo-claim
cluster_state=""
applied_manifests=false
succeeded=false
# The run's own stdout and stderr, for the teardown: a Ctrl-C during a call whose output is
# discarded (flex_call ... >/dev/null) runs the traps with that redirection still in place.
exec 3>&1 4>&2

# shellcheck disable=SC2317 # invoked by the traps
teardown() {
    local rc=$?
    trap - EXIT INT TERM
    exec 1>&3 2>&4
    # Best effort from here on: one failing cleanup step must not skip the others.
    set +e
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
    if [[ -n "${WORKDIR:-}" ]]; then
        if $keep || ! $succeeded; then
            say "work dir kept: $WORKDIR (logs in $WORKDIR/logs)"
        else
            rm -rf "$WORKDIR"
        fi
    fi
    if $succeeded; then
        printf '\n\033[1mquickstart: success\033[0m\n'
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

# ---------------------------------------------------------------------------------------
progress "Checking prerequisites (root, loop devices, Debian packages)"
host_prerequisites
command -v cargo >/dev/null ||
    log_die "cargo is not installed: install a current Rust toolchain (https://rustup.rs) and run again"
say "ok: $(cargo --version), jq, curl, openssl, xfsprogs, loop devices"

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
    install -m 0600 "$config_file" "$WORKDIR/pure.json"
    say "your arrays from $config_file:"
    while read -r line; do say "  $line"; done < <(jq -r '(.FlashArrays // [])[] | "FlashArray \(.MgmtEndPoint)", ((.FlashBlades // [])[] | "FlashBlade \(.MgmtEndPoint)")' "$config_file")
fi

progress "Kubernetes control plane"
if $external_cluster; then
    if ! command -v kubectl >/dev/null; then
        say "no kubectl on PATH: using the pinned one (built on first use)"
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
pv="$(kube_pv_of "$NAMESPACE" "$CLAIM")"
volume="$(kube_array_name_of_pv "$pv")"
kubectl -n "$NAMESPACE" get pvc "$CLAIM" | sed 's/^/      /'
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
succeeded=true
