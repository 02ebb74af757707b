#!/usr/bin/env bash
# Stops a node started by up.sh and removes everything it made: kubelet, the containers and
# their network namespaces, containerd, every mount under the state dir (pod volumes, staging
# mounts, kubelet's root), the fabric's loop devices, the simulator, the control plane, the
# interfaces and the DNAT rule, the kubepods cgroups, pod logs under /var/log, and the kernel
# settings kubelet changed (restored). Then it checks that nothing is left and says what is.
#
# Usage: down.sh [--keep] [STATE_DIR]
#   STATE_DIR  default: FLASHVOL_NODE_STATE
#   --keep     keep the state dir's logs (FLASHVOL_KEEP_STATE=1 too)
# Exits non-zero when something could not be removed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
. "$here/node.sh"

# Read by node_teardown.
# shellcheck disable=SC2034
NODE_KEEP_STATE="${FLASHVOL_KEEP_STATE:-0}"
state=""
while (($#)); do
    case "$1" in
    --keep) NODE_KEEP_STATE=1; shift ;;
    -h | --help) usage "$0"; exit 0 ;;
    -*) log_die "unknown option '$1' (see --help)" ;;
    *) state="$1"; shift ;;
    esac
done
[[ $(id -u) == 0 ]] || log_die "needs root"
node_load "$state"
node_teardown
