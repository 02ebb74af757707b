#!/usr/bin/env bash
# Against a real control plane (run through tests/cluster/with-cluster.sh, which exports
# KUBECONFIG and FLASHVOL_APISERVER_URL): the plain manifests pass server-side validation and
# apply; the ServiceAccounts may do exactly what the components need (kubectl auth can-i); and
# the node installer, with the pure-flex ServiceAccount's own token over TLS, keeps the driver
# while its DaemonSet exists and removes it once the DaemonSet is deleted.
#
#   tests/cluster/with-cluster.sh install/test/apply.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -n "${KUBECONFIG:-}" ]] || fail "KUBECONFIG is not set; run through tests/cluster/with-cluster.sh"
manifests="${INSTALL_DIR}/manifests/flashvol.yaml"
ns=pure-system

# A server-side dry run cannot create the namespace the other objects go into.
kubectl create namespace "${ns}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply --dry-run=server -f "${manifests}" >/dev/null || fail "server-side dry run"
pass "kubectl apply --dry-run=server accepts install/manifests/flashvol.yaml"
kubectl apply -f "${manifests}" >/dev/null || fail "apply"
kubectl -n "${ns}" get secret/pure-provisioner-secret daemonset/pure-flex deployment/pure-provisioner >/dev/null ||
    fail "objects missing after apply"
kubectl get storageclass pure pure-block pure-file >/dev/null || fail "StorageClasses missing"
pass "kubectl apply creates every object"

# can expected(yes|no) serviceaccount verb what [namespace]; what is RESOURCE, RESOURCE/NAME or
# RESOURCE:SUBRESOURCE (kubectl reads "persistentvolumeclaims/status" as the claim named "status").
can() {
    local expected="$1" sa="$2" verb="$3" what="$4" where=(--all-namespaces) subresource=()
    [[ -n "${5:-}" ]] && where=(-n "$5")
    if [[ "${what}" == *:* ]]; then
        subresource=(--subresource "${what#*:}")
        what="${what%%:*}"
    fi
    local got
    got="$(kubectl auth can-i "${verb}" "${what}" "${subresource[@]}" "${where[@]}" --as "system:serviceaccount:${ns}:${sa}" 2>/dev/null || true)"
    [[ "${got}" == "${expected}" ]] || fail "${sa} ${verb} ${what} ${where[*]}: expected ${expected}, got ${got:-error}"
}
# The provisioner: what it does ...
for verb in get list watch create delete patch; do can yes pure "${verb}" persistentvolumes; done
for verb in get list watch; do can yes pure "${verb}" persistentvolumeclaims; can yes pure "${verb}" storageclasses.storage.k8s.io; done
can yes pure patch persistentvolumeclaims:status
can yes pure create events default
can yes pure patch events default
can yes pure create leases.coordination.k8s.io "${ns}"
can yes pure get leases.coordination.k8s.io/pure-provisioner "${ns}"
can yes pure update leases.coordination.k8s.io/pure-provisioner "${ns}"
# ... and nothing else.
can no pure get secrets "${ns}"
can no pure list secrets
can no pure update persistentvolumes
can no pure update persistentvolumeclaims
can no pure delete persistentvolumeclaims
can no pure patch persistentvolumeclaims
can no pure update persistentvolumeclaims:status
can no pure create storageclasses.storage.k8s.io
can no pure delete events default
can no pure update leases.coordination.k8s.io/other-lease "${ns}"
can no pure create leases.coordination.k8s.io default
can no pure get daemonsets.apps/pure-flex "${ns}"
can no pure get nodes
pass "provisioner ServiceAccount: allowed exactly its calls, denied secrets and other verbs"
can yes pure-flex get daemonsets.apps/pure-flex "${ns}"
can no pure-flex get daemonsets.apps/other "${ns}"
can no pure-flex list daemonsets.apps "${ns}"
can no pure-flex get secrets "${ns}"
can no pure-flex get persistentvolumes
pass "installer ServiceAccount: may only get its own DaemonSet"

# The installer on SIGTERM, with the real API server, TLS and the pure-flex token.
flex="$(flex_binary)"
work="$(mktemp -d)"
pid=""
trap '[[ -n "${pid}" ]] && kill "${pid}" 2>/dev/null; rm -rf "${work}"' EXIT
mkdir -p "${work}/sa" "${work}/plugins" "${work}/proc"
kubectl -n "${ns}" create token pure-flex > "${work}/sa/token"
ca_data="$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
if [[ -n "${ca_data}" ]]; then
    base64 -d <<<"${ca_data}" > "${work}/sa/ca.crt"
else
    cp "$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')" "${work}/sa/ca.crt"
fi
api="${FLASHVOL_APISERVER_URL:-$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')}"
kubectl -n "${ns}" get secret pure-provisioner-secret -o jsonpath='{.data.pure\.json}' | base64 -d > "${work}/pure.json"

run_installer() {
    "${flex}" install --plugin-dir "${work}/plugins" --proc "${work}/proc" --config "${work}/pure.json" \
        --source "${flex}" --daemonset pure-flex --namespace "${ns}" --kube-api "${api}" \
        --service-account-dir "${work}/sa" >/dev/null 2>"${work}/installer.log" &
    pid=$!
    for _ in $(seq 100); do grep -q 'INFO: driver pure/flex in' "${work}/installer.log" && break; sleep 0.1; done
    [[ -x "${work}/plugins/pure~flex/flex" ]] || { cat "${work}/installer.log" >&2; fail "not installed"; }
    kill -TERM "${pid}"
    wait "${pid}" || { cat "${work}/installer.log" >&2; fail "installer exited non-zero on SIGTERM"; }
    pid=""
}
run_installer
grep -q 'still exists' "${work}/installer.log" || { cat "${work}/installer.log" >&2; fail "no answer from the API server"; }
[[ -x "${work}/plugins/pure~flex/flex" ]] || fail "SIGTERM removed the driver while the DaemonSet exists"
pass "installer (real API server, its own token): SIGTERM with the DaemonSet present keeps the driver"
kubectl -n "${ns}" delete daemonset pure-flex --wait=true >/dev/null
run_installer
[[ ! -e "${work}/plugins/pure~flex" ]] || { cat "${work}/installer.log" >&2; fail "driver left after the DaemonSet was deleted"; }
pass "installer (real API server): SIGTERM after the DaemonSet is deleted removes driver and credentials"

kubectl delete -f "${manifests}" --ignore-not-found --wait=false >/dev/null || fail "kubectl delete"
pass "kubectl delete removes the manifests"
