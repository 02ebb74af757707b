#!/usr/bin/env bash
# Mints a kubeconfig for a ServiceAccount, so a test can run a component (our provisioner)
# as a plain process with exactly the RBAC that the install manifests grant it.
#
# Usage: sa-kubeconfig.sh NAMESPACE SERVICEACCOUNT [--duration 1h] [--output FILE]
#   --duration  token lifetime passed to `kubectl create token` (default 1h)
#   --output    write the kubeconfig there (mode 600) instead of stdout
# Talks to the cluster named by KUBECONFIG (the admin kubeconfig that up.sh writes) and
# takes the server URL and CA from it. The ServiceAccount must already exist.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=1h
output=""
positional=()
while (($#)); do
    case "$1" in
    --duration | --output)
        (($# >= 2)) || die "$1 needs a value"
        if [[ "$1" == --duration ]]; then duration="$2"; else output="$2"; fi
        shift 2
        ;;
    -h | --help) usage "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) positional+=("$1"); shift ;;
    esac
done
((${#positional[@]} == 2)) || die "usage: sa-kubeconfig.sh NAMESPACE SERVICEACCOUNT [--duration 1h] [--output FILE]"
namespace="${positional[0]}"
account="${positional[1]}"
# Kubernetes object names: DNS-1123 labels (namespace) and subdomains (ServiceAccount).
[[ "$namespace" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "'$namespace' is not a valid namespace name"
[[ "$account" =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] || die "'$account' is not a valid ServiceAccount name"
[[ "$duration" =~ ^([0-9]+(h|m|s))+$ ]] || die "--duration '$duration' is not a duration like 1h or 30m"
[[ -n "${KUBECONFIG:-}" ]] || die "KUBECONFIG is not set (use the admin kubeconfig from up.sh)"

kubectl="kubectl"
[[ -n "${FLASHVOL_K8S_BIN_DIR:-}" ]] && kubectl="$FLASHVOL_K8S_BIN_DIR/kubectl"
command -v "$kubectl" >/dev/null || die "kubectl not found (run under with-cluster.sh or set FLASHVOL_K8S_BIN_DIR)"

server="$("$kubectl" config view --raw --minify -o 'jsonpath={.clusters[0].cluster.server}')"
ca_data="$("$kubectl" config view --raw --minify -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}')"
[[ -n "$server" && -n "$ca_data" ]] || die "the current context of $KUBECONFIG has no server or CA data"
token="$("$kubectl" create token "$account" -n "$namespace" --duration="$duration")" ||
    die "could not create a token for serviceaccount $namespace/$account"

render() {
    cat <<YAML
apiVersion: v1
kind: Config
clusters:
- name: flashvol
  cluster:
    server: $server
    certificate-authority-data: $ca_data
users:
- name: system:serviceaccount:$namespace:$account
  user:
    token: $token
contexts:
- name: flashvol
  context:
    cluster: flashvol
    namespace: $namespace
    user: system:serviceaccount:$namespace:$account
current-context: flashvol
YAML
}
if [[ -n "$output" ]]; then
    (umask 077 && render >"$output")
else
    render
fi
