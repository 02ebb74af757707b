#!/usr/bin/env bash
# The shipped RBAC, asked through `kubectl auth can-i --as=system:serviceaccount:...`: the
# provisioner's ServiceAccount can do exactly what provisioning needs (PVs, reading claims and
# classes, patching claims' status to finish a file resize, events, its own Lease) and nothing
# broader: no Secrets, no wildcard, no pods or nodes, no writes to claims themselves or
# classes, no other Lease, no RBAC or impersonation. The node DaemonSet's ServiceAccount can read
# its own DaemonSet and nothing else.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "RBAC: the provisioner and node ServiceAccounts can do what they need and nothing broader"

sys="$KUBE_NAMESPACE"
checked=0
# can SA ARGS...: the ServiceAccount may do it.
can() {
    local sa="$1"
    shift
    checked=$((checked + 1))
    kubectl auth can-i "$@" --as="system:serviceaccount:$sys:$sa" >/dev/null 2>&1 ||
        check_fail "$sa should be allowed to: $*"
}
# cannot SA ARGS...: the ServiceAccount is refused.
cannot() {
    local sa="$1"
    shift
    checked=$((checked + 1))
    if kubectl auth can-i "$@" --as="system:serviceaccount:$sys:$sa" >/dev/null 2>&1; then
        check_fail "$sa must NOT be allowed to: $*"
    fi
}

log_step "the provisioner ($sys/$KUBE_SERVICE_ACCOUNT) can do what it needs"
p="$KUBE_SERVICE_ACCOUNT"
for verb in get list watch create delete patch; do can "$p" "$verb" persistentvolumes; done
for verb in get list watch; do
    can "$p" "$verb" persistentvolumeclaims --all-namespaces
    can "$p" "$verb" storageclasses.storage.k8s.io
done
# A grown file claim's status is finished by the provisioner (block claims: by kubelet).
can "$p" patch persistentvolumeclaims --subresource=status --all-namespaces
can "$p" create events -n default
can "$p" patch events -n default
can "$p" create leases.coordination.k8s.io -n "$sys"
can "$p" get "leases.coordination.k8s.io/$PROV_LEASE" -n "$sys"
can "$p" update "leases.coordination.k8s.io/$PROV_LEASE" -n "$sys"

log_step "and nothing broader"
cannot "$p" '*' '*' --all-namespaces
cannot "$p" '*' persistentvolumes
cannot "$p" get '*' --all-namespaces
for verb in get list watch; do
    cannot "$p" "$verb" secrets -n "$sys"
    cannot "$p" "$verb" secrets --all-namespaces
done
cannot "$p" update persistentvolumes
cannot "$p" deletecollection persistentvolumes
for verb in create update patch delete; do
    cannot "$p" "$verb" persistentvolumeclaims -n default
    cannot "$p" "$verb" storageclasses.storage.k8s.io
done
cannot "$p" update persistentvolumeclaims --subresource=status -n default
cannot "$p" get persistentvolumeclaims --subresource=status -n default
for verb in get list create delete; do
    cannot "$p" "$verb" pods -n default
    cannot "$p" "$verb" nodes
done
cannot "$p" create pods/exec -n default
cannot "$p" get configmaps -n "$sys"
cannot "$p" create serviceaccounts/token -n "$sys"
cannot "$p" update leases.coordination.k8s.io/some-other-lease -n "$sys"
cannot "$p" delete "leases.coordination.k8s.io/$PROV_LEASE" -n "$sys"
cannot "$p" create leases.coordination.k8s.io -n default
cannot "$p" update daemonsets.apps -n "$sys"
cannot "$p" create clusterrolebindings.rbac.authorization.k8s.io
cannot "$p" bind clusterroles.rbac.authorization.k8s.io
cannot "$p" escalate clusterroles.rbac.authorization.k8s.io
cannot "$p" impersonate serviceaccounts --all-namespaces

log_step "the node DaemonSet (pure-flex) can read its own DaemonSet only"
can pure-flex get daemonsets.apps/pure-flex -n "$sys"
cannot pure-flex get daemonsets.apps/other -n "$sys"
cannot pure-flex list daemonsets.apps -n "$sys"
cannot pure-flex '*' '*' --all-namespaces
cannot pure-flex get secrets -n "$sys"
cannot pure-flex get persistentvolumes
cannot pure-flex list pods --all-namespaces
cannot pure-flex get nodes

# No rule of either account grants a wildcard on resources or verbs (the default discovery rules
# of every authenticated user name non-resource URLs only).
for sa in "$p" pure-flex; do
    wild="$(kubectl auth can-i --list --as="system:serviceaccount:$sys:$sa" -n "$sys" |
        awk 'NR > 1 && $1 != "[]" && ($1 ~ /^\*/ || $0 ~ /\[[^]]*\*[^]]*\]$/)')"
    [[ -z "$wild" ]] || check_fail "$sa has a wildcard rule: $wild"
done
log_step "$checked can-i checks hold; no wildcard rule"
