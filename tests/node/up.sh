#!/usr/bin/env bash
# Starts a real Kubernetes node on this machine: the control plane of tests/cluster (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler), a private containerd with runc and a
# bridge CNI network, and kubelet from the same pinned release, joined as node flashvol-node-1.
# Then flashvol as a user installs it: the array simulator on the node's address, the test fabric
# as the node's iSCSI/NFS tools, flashvol's image built from this checkout, and the shipped Helm
# chart, whose DaemonSet pod installs the driver into kubelet's plugin dir and whose Deployment
# pod runs the provisioner.
#
# Usage: up.sh [--version v1.X.Y] [--state-dir DIR] [--no-flashvol]
#   --version      Kubernetes release (default: FLASHVOL_K8S_VERSION, else tests/cluster/versions.env)
#   --state-dir    where everything of the node goes (default: FLASHVOL_NODE_STATE, else a fresh
#                  temp dir); must be empty or absent
#   --no-flashvol  the bare node only (no simulator, fabric or chart)
#
# On success it prints shell assignments (FLASHVOL_NODE_STATE=..., KUBECONFIG=...), also in
# <state>/node.env, and leaves everything running for down.sh. On failure or Ctrl-C it prints
# the last log lines and removes everything it made. Needs root. One node per machine.
# Settings: FLASHVOL_NODE_NAME, FLASHVOL_NODE_IP, FLASHVOL_NODE_POD_CIDR, FLASHVOL_NODE_TIMEOUT
# (see README.md).
set -Eeuo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
. "$here/node.sh"
. "$here/flashvol.sh"

NODE_K8S_VERSION="$K8S_VERSION"
NODE_STATE="${FLASHVOL_NODE_STATE:-}"
with_flashvol=true
while (($#)); do
    case "$1" in
    --version | --state-dir)
        (($# >= 2)) || log_die "$1 needs a value"
        [[ "$1" == --version ]] && NODE_K8S_VERSION="$2" || NODE_STATE="$2"
        shift 2
        ;;
    --no-flashvol) with_flashvol=false; shift ;;
    -h | --help) usage "$0"; exit 0 ;;
    *) log_die "unknown argument '$1' (see --help)" ;;
    esac
done
validate_k8s_version "$NODE_K8S_VERSION"
start=$SECONDS

node_prerequisites
# Builds first (each is cached after the first run): nothing is started while they run.
NODE_K8S_BIN_DIR="$("$REPO_ROOT/tests/cluster/build.sh" --version "$NODE_K8S_VERSION" --print-dir)"
for binary in kubelet kube-scheduler; do
    [[ -x "$NODE_K8S_BIN_DIR/$binary" ]] || log_die "$NODE_K8S_BIN_DIR has no $binary (an older cache; rm -rf it and rebuild)"
done
if $with_flashvol; then helm version --short >/dev/null || log_die "helm (install/tools/helm.sh) does not run"; fi

if [[ -z "$NODE_STATE" ]]; then
    NODE_STATE="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-node.XXXXXX")"
else
    mkdir -p "$NODE_STATE"
    [[ -z "$(ls -A "$NODE_STATE")" ]] || log_die "state dir $NODE_STATE is not empty (a node may run there; use down.sh)"
fi
NODE_STATE="$(cd "$NODE_STATE" && pwd)"
chmod 700 "$NODE_STATE"
mkdir -p "$NODE_STATE"/{logs,pids,images}
# Until the node's own processes run, this script is what shows the node is live (node_claim_machine).
echo "$$" >"$NODE_STATE/pids/up"
echo "$0" >"$NODE_STATE/pids/up.binary"
: >"$NODE_STATE/node.env"
NODE_KUBELET_ROOT="$NODE_STATE/kubelet"
NODE_PLUGIN_DIR="$NODE_STATE/volume-plugins"
NODE_FLEX_LOG="$NODE_STATE/flex.log"
FLASHVOL_CLUSTER_STATE="$NODE_STATE/cluster"
node_save NODE_STATE NODE_K8S_VERSION NODE_K8S_BIN_DIR NODE_NAME NODE_IP NODE_POD_CIDR \
    NODE_KUBELET_ROOT NODE_PLUGIN_DIR NODE_FLEX_LOG FLASHVOL_CLUSTER_STATE

if $with_flashvol; then flashvol_build "$NODE_STATE/logs/image-build.log"; fi

started_ok=false
on_exit() {
    local rc=$?
    rm -f "$NODE_STATE/pids/up" "$NODE_STATE/pids/up.binary"
    $started_ok && return 0
    log_info "start failed (exit $rc); last lines of each log:"
    local f
    for f in "$NODE_STATE"/logs/*.log "$FLASHVOL_CLUSTER_STATE"/logs/*.log; do
        [[ -s "$f" && "$f" != */openssl.log ]] || continue
        printf '\n===== last lines of %s =====\n' "$f" >&2
        tail -n "${FLASHVOL_LOG_TAIL_LINES:-15}" "$f" >&2
    done
    NODE_KEEP_STATE=1 node_teardown || true
}
trap on_exit EXIT
trap 'log_info "failed: $BASH_COMMAND (${BASH_SOURCE[0]##*/} line $LINENO)"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

node_claim_machine
node_save_sysctls
node_record_cgroups
node_record_shared_paths
node_network_up

log_info "starting the control plane ($NODE_K8S_VERSION)"
FLASHVOL_CLUSTER_STATE="$FLASHVOL_CLUSTER_STATE" FLASHVOL_FLEX_PLUGIN_DIR="$NODE_PLUGIN_DIR" \
    "$REPO_ROOT/tests/cluster/up.sh" --version "$NODE_K8S_VERSION" >/dev/null
# shellcheck disable=SC1090 # plain NAME=value lines written by tests/cluster/up.sh
. <(grep -E '^(KUBECONFIG|FLASHVOL_APISERVER_URL|FLASHVOL_APISERVER_PORT)=' "$FLASHVOL_CLUSTER_STATE/env")
export KUBECONFIG PATH="$NODE_K8S_BIN_DIR:$PATH"
node_save KUBECONFIG FLASHVOL_APISERVER_URL FLASHVOL_APISERVER_PORT
node_dnat_up

log_info "starting containerd and kubelet $NODE_K8S_VERSION as node $NODE_NAME ($NODE_IP)"
node_pki
node_build_images
node_containerd_config
node_containerd_start
node_import_image "$NODE_STATE/images/pause.oci.tar"
node_import_image "$NODE_STATE/images/busybox.oci.tar"
node_kubelet_config
node_save NODE_KUBELET_PORT NODE_KUBELET_HEALTHZ_PORT
mkdir -p "$NODE_KUBELET_ROOT" "$NODE_PLUGIN_DIR"
node_kubelet_start
node_wait_ready
log_info "node $NODE_NAME is Ready ($((SECONDS - start))s since start)"

if $with_flashvol; then
    flashvol_arrays
    flashvol_install
    log_info "flashvol installed: driver in $NODE_PLUGIN_DIR/pure~flex, provisioner running"
fi

started_ok=true
log_info "up in $((SECONDS - start))s; stop with: $here/down.sh $NODE_STATE"
printf 'FLASHVOL_NODE_STATE=%s\nKUBECONFIG=%s\n' "$NODE_STATE" "$KUBECONFIG"
