#!/usr/bin/env bash
# Chart checks without a cluster: helm lint, rendering with every plugin dir preset and bad values,
# RBAC limits, and a PSO 2.x values file giving the same Secret as PSO's own chart.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
render() { "${HELM}" template flashvol "${CHART}" --namespace pure-system "$@"; }

"${HELM}" lint --strict "${CHART}" >/dev/null || { "${HELM}" lint --strict "${CHART}"; fail "helm lint"; }
"${HELM}" lint --strict "${CHART}" -f "${INSTALL_DIR}/test/pso-values.yaml" >/dev/null || fail "helm lint with pso-values.yaml"
"${HELM}" lint --strict "${CHART}" -f "${INSTALL_DIR}/manifests/example-values.yaml" >/dev/null || fail "helm lint with example values"
pass "helm lint --strict (defaults, PSO values, example values)"

# Every kind the chart promises, once each where it must be unique.
render > "${work}/default.yaml"
for kind in Secret ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding StorageClass Deployment DaemonSet; do
    grep -q "^kind: ${kind}$" "${work}/default.yaml" || fail "no ${kind} rendered"
done
[[ "$(grep -c '^kind: StorageClass$' "${work}/default.yaml")" == 3 ]] || fail "expected 3 StorageClasses"
pass "default render has every object kind"

# RBAC: no wildcards, nothing about secrets, and exactly the verbs the components use.
rbac="$(render --show-only templates/rbac.yaml)"
grep -v '^\s*#' <<<"${rbac}" | grep -q '\*' && fail "RBAC contains a wildcard"
grep -q secrets <<<"${rbac}" && fail "RBAC mentions secrets"
grep -q 'verbs: \["get", "list", "watch", "create", "delete", "patch"\]' <<<"${rbac}" || fail "persistentvolumes verbs"
grep -q 'resourceNames: \["pure-flex"\]' <<<"${rbac}" || fail "the flex role is not limited to its DaemonSet"
pass "RBAC: no wildcards, no secrets, verbs as documented"

# Plugin dir presets and auto.
check_flex_path() { # value expected-hostPath
    local out
    out="$(render --set "flexPath=$1" --show-only templates/flex-daemon.yaml)"
    if [[ "$2" == auto ]]; then
        grep -q -- '--plugin-dir=auto' <<<"${out}" && grep -q 'hostPID: true' <<<"${out}" &&
            grep -q 'path: /$' <<<"${out}" || fail "flexPath=auto"
    else
        grep -q "path: $2$" <<<"${out}" && grep -q -- "--host-plugin-dir=$2$" <<<"${out}" ||
            fail "flexPath=$1 does not give $2"
    fi
}
check_flex_path default /usr/libexec/kubernetes/kubelet-plugins/volume/exec
check_flex_path rke /var/lib/kubelet/volumeplugins
check_flex_path rancher /var/lib/kubelet/volumeplugins
check_flex_path flatcar /var/lib/kubelet/volumeplugins
check_flex_path gke /home/kubernetes/flexvolume
check_flex_path openshift4 /etc/kubernetes/kubelet-plugins/volume/exec
check_flex_path aks /etc/kubernetes/volumeplugins
check_flex_path /opt/libexec/kubernetes/kubelet-plugins/volume/exec/ /opt/libexec/kubernetes/kubelet-plugins/volume/exec
check_flex_path auto auto
pass "flexPath presets, custom paths and auto"

# Bad values fail with a message naming the value.
expect_failure() { # message values...
    local msg="$1" out
    shift
    if out="$(render "$@" 2>&1)"; then fail "rendering with $* should fail"; fi
    grep -q -- "${msg}" <<<"${out}" || fail "rendering with $* failed without naming ${msg}: ${out}"
}
expect_failure 'flexPath "relative/dir"' --set flexPath=relative/dir
expect_failure 'flasharray.sanType "nvme"' --set flasharray.sanType=nvme
expect_failure 'storageclass.pureBackend "nfs"' --set storageclass.pureBackend=nfs
expect_failure 'storageclass.allowVolumeExpansion "maybe"' --set storageclass.allowVolumeExpansion=maybe
expect_failure 'flasharray.defaultFSType "zfs"' --set flasharray.defaultFSType=zfs
expect_failure 'flashblade.hardLimit "maybe"' --set flashblade.hardLimit=maybe
printf 'arrays: "FlashArrays: ["\n' > "${work}/bad-arrays.yaml"
expect_failure 'arrays is not valid YAML or JSON' -f "${work}/bad-arrays.yaml"
pass "bad values are refused, naming the value"

# The shipped classes allow growing claims unless the value turns it off (PSO values files, which
# never had the key, get it on).
classes="$(render --show-only templates/storageclass.yaml)"
[[ "$(grep -c '^allowVolumeExpansion: true$' <<<"${classes}")" == 3 ]] || fail "allowVolumeExpansion on by default: ${classes}"
classes="$(render --set storageclass.allowVolumeExpansion=false --show-only templates/storageclass.yaml)"
[[ "$(grep -c '^allowVolumeExpansion: false$' <<<"${classes}")" == 3 ]] || fail "allowVolumeExpansion=false: ${classes}"
classes="$(render -f "${INSTALL_DIR}/test/pso-values.yaml" --show-only templates/storageclass.yaml)"
[[ "$(grep -c '^allowVolumeExpansion: true$' <<<"${classes}")" == 3 ]] || fail "allowVolumeExpansion with PSO values"
pass "StorageClasses allow volume expansion unless storageclass.allowVolumeExpansion=false"

# Rancher's form gives arrays as a string; it must end up as the same JSON.
cat > "${work}/rancher.yaml" <<'YAML'
arrays: |
  FlashArrays:
    - MgmtEndPoint: "10.0.0.5"
      APIToken: "token-a"
YAML
got="$(render -f "${work}/rancher.yaml" --show-only templates/secret.yaml | secret_pure_json)"
[[ "${got}" == '{"FlashArrays":[{"APIToken":"token-a","MgmtEndPoint":"10.0.0.5"}]}' ]] ||
    fail "arrays as a string rendered ${got}"
pass "arrays given as a YAML string (Rancher form) render the same pure.json"

# Old clusters: no seccompProfile before 1.19; everything renders for 1.14.
render --kube-version v1.14.0 > "${work}/old.yaml" || fail "rendering for Kubernetes 1.14"
grep -q seccompProfile "${work}/old.yaml" && fail "seccompProfile rendered for 1.14"
grep -q seccompProfile "${work}/default.yaml" || fail "no seccompProfile for a current cluster"
pass "renders for Kubernetes 1.14 (no seccompProfile) and current clusters"

# A PSO 2.x values file: the same Secret as PSO's own chart, and every PSO setting arrives.
pso="$(render -f "${INSTALL_DIR}/test/pso-values.yaml")"
ours="$(secret_pure_json <<<"$(render -f "${INSTALL_DIR}/test/pso-values.yaml" --show-only templates/secret.yaml)")"
theirs="$("${HELM}" template pso "${INSTALL_DIR}/test/pso-secret-chart" -f "${INSTALL_DIR}/test/pso-values.yaml" | secret_pure_json)"
[[ -n "${theirs}" && "${ours}" == "${theirs}" ]] || fail "Secret differs from PSO's: ours ${ours} theirs ${theirs}"
pass "PSO values file: pure.json is byte-identical to what PSO 2.7.1's chart rendered"

ds="$(render -f "${INSTALL_DIR}/test/pso-values.yaml" --show-only templates/flex-daemon.yaml)"
[[ "$(env_value PURE_FLASHARRAY_SAN_TYPE <<<"${ds}")" == FC ]] || fail "sanType"
[[ "$(env_value PURE_K8S_NAMESPACE <<<"${ds}")" == prodk8s ]] || fail "namespace.pure"
[[ "$(env_value PURE_DEFAULT_BLOCK_FS_TYPE <<<"${ds}")" == ext4 ]] || fail "defaultFSType"
[[ "$(env_value PURE_DEFAULT_BLOCK_FS_OPT <<<"${ds}")" == "-q -E nodiscard" ]] || fail "defaultFSOpt"
[[ "$(env_value PURE_DEFAULT_BLOCK_MNT_OPT <<<"${ds}")" == "discard,noatime" ]] || fail "defaultMountOpt"
[[ "$(env_value PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT <<<"${ds}")" == false ]] || fail "preemptAttachments"
[[ "$(env_value PURE_ISCSI_LOGIN_TIMEOUT <<<"${ds}")" == 30 ]] || fail "iSCSILoginTimeout"
[[ "$(env_value PURE_ISCSI_ALLOWED_CIDRS <<<"${ds}")" == "10.20.0.0/16,10.21.0.0/16" ]] || fail "iSCSIAllowedCIDR"
grep -q 'path: /var/lib/kubelet/volumeplugins$' <<<"${ds}" || fail "flexPath"
grep -q 'storage.example.com/pure: "true"' <<<"${ds}" || fail "flexDaemon.nodeSelector"
grep -q 'node-role.kubernetes.io/master' <<<"${ds}" || fail "flexDaemon.tolerations"
grep -q -- '- --debug' <<<"${ds}" || fail "app.debug"
grep -q 'image: ghcr.io/flashvol/flashvol:' <<<"${ds}" || fail "PSO's image was not replaced"
grep -q 'purestorage/k8s' <<<"${pso}" && fail "PSO's image is still rendered"
grep -q 'storageclass.kubernetes.io/is-default-class: "true"' <<<"${pso}" || fail "isPureDefault"
dep="$(render -f "${INSTALL_DIR}/test/pso-values.yaml" --show-only templates/provisioner.yaml)"
[[ "$(env_value PURE_DEFAULT_ENABLE_FB_NFS_SNAPSHOT <<<"${dep}")" == true ]] || fail "snapshotDirectoryEnabled"
pass "PSO values file: every PSO setting reaches the pods"

# What the node installer does with that Secret and environment: the same code as in the pod.
flex="$(flex_binary)"
secret_pure_json <<<"$(render -f "${INSTALL_DIR}/test/pso-values.yaml" --show-only templates/secret.yaml)" > "${work}/pure.json"
mkdir "${work}/plugins" "${work}/proc"
env_args=()
for var in PURE_FLASHARRAY_SAN_TYPE PURE_K8S_NAMESPACE PURE_DEFAULT_BLOCK_FS_TYPE PURE_DEFAULT_BLOCK_FS_OPT \
    PURE_DEFAULT_BLOCK_MNT_OPT PURE_PREEMPT_RWO_ATTACHMENTS_DEFAULT PURE_ISCSI_LOGIN_TIMEOUT \
    PURE_ISCSI_ALLOWED_CIDRS FLASHVOL_NODE_SETTINGS; do
    env_args+=("${var}=$(env_value "${var}" <<<"${ds}")")
done
env -i "${env_args[@]}" "${flex}" install --once --plugin-dir "${work}/plugins" --proc "${work}/proc" \
    --config "${work}/pure.json" --source "${flex}" 2>"${work}/install.log" ||
    { cat "${work}/install.log" >&2; fail "the installer refused the PSO values file's Secret"; }
settings="${work}/plugins/pure~flex/flashvol.json"
jq -e '.flashvol.namePrefix == "prodk8s" and .flashvol.block.sanType == "FC" and .flashvol.block.fsType == "ext4"
       and .flashvol.block.iscsiLoginTimeoutSeconds == 30 and .flashvol.block.preemptRwoAttachments == false
       and (.FlashArrays | length) == 2 and .FlashBlades[0].NfsEndPoint == "10.20.3.6"' "${settings}" >/dev/null ||
    fail "node settings file: $(cat "${settings}")"
[[ "$(stat -c %a "${settings}")" == 600 ]] || fail "node settings file is not 0600"
pass "installer accepts the PSO Secret and environment; flashvol.json carries them, mode 0600"

# flashvol.tls.caCert: the arrays' CA reaches both pods. The Secret holds it as ca.pem (the
# provisioner's /etc/pure/ca.pem, named by pure.json's tls.caFile); the installer copies it next
# to the driver and points flashvol.json at that copy.
for n in 1 2; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=array CA ${n}" \
        -keyout "${work}/ca${n}.key" -out "${work}/ca${n}.pem" 2>/dev/null || fail "openssl: a CA for the test"
done
cat "${work}/ca1.pem" "${work}/ca2.pem" > "${work}/cas.pem"
ca_values() { # pem-file [extra tls keys as JSON] -> values file
    jq -n --rawfile pem "$1" --argjson extra "${2:-{\}}" \
        '{arrays: {FlashArrays: [{MgmtEndPoint: "10.0.0.5", APIToken: "token-a"}]},
          flashvol: {tls: ({caCert: $pem} + $extra), namePrefix: "p"}}' > "${work}/ca-values.json"
    echo "${work}/ca-values.json"
}
secret="$(render -f "$(ca_values "${work}/cas.pem")" --show-only templates/secret.yaml)"
jq -e '.flashvol == {tls: {caFile: "/etc/pure/ca.pem"}, namePrefix: "p"}' <<<"$(secret_pure_json <<<"${secret}")" >/dev/null ||
    fail "pure.json with caCert: $(secret_pure_json <<<"${secret}")"
sed -n 's/^  ca.pem: \(.*\)$/\1/p' <<<"${secret}" | base64 -d > "${work}/secret-ca.pem"
cmp -s "${work}/secret-ca.pem" "${work}/cas.pem" || fail "the Secret's ca.pem is not the CA given"
ds="$(render -f "${work}/ca-values.json" --show-only templates/flex-daemon.yaml)"
[[ "$(env_value FLASHVOL_CA_FILE <<<"${ds}")" == /etc/pure/ca.pem ]] || fail "the DaemonSet is not given the CA"
grep -q 'ca.pem' <<<"$(render --show-only templates/secret.yaml)" && fail "ca.pem in the Secret without caCert"
env_value FLASHVOL_CA_FILE <<<"$(render --show-only templates/flex-daemon.yaml)" 2>/dev/null &&
    fail "FLASHVOL_CA_FILE set without caCert"
pass "flashvol.tls.caCert: ca.pem in the Secret, tls.caFile names it, the DaemonSet installs it"

printf 'not a certificate\n' > "${work}/not-pem.pem"
expect_failure 'flashvol.tls.caCert must be' -f "$(ca_values "${work}/not-pem.pem")"
expect_failure 'flashvol.tls.caCert.*or flashvol.tls.caFile' -f "$(ca_values "${work}/cas.pem" '{"caFile":"/x.pem"}')"
pass "caCert that is not PEM, or with caFile too, is refused naming the value"

mkdir "${work}/plugins-ca"
secret_pure_json <<<"${secret}" > "${work}/pure-ca.json"
env -i FLASHVOL_CA_FILE="${work}/secret-ca.pem" "${flex}" install --once --plugin-dir "${work}/plugins-ca" \
    --proc "${work}/proc" --config "${work}/pure-ca.json" --source "${flex}" 2>"${work}/install.log" ||
    { cat "${work}/install.log" >&2; fail "the installer refused the CA"; }
installed="${work}/plugins-ca/pure~flex/ca.pem"
cmp -s "${installed}" "${work}/cas.pem" || fail "the installed ca.pem is not the Secret's"
[[ "$(stat -c %a "${installed}")" == 644 ]] || fail "ca.pem is not 0644"
jq -e --arg ca "${installed}" '.flashvol.tls == {caFile: $ca}' "${work}/plugins-ca/pure~flex/flashvol.json" >/dev/null ||
    fail "flashvol.json does not name the installed CA: $(jq -c .flashvol "${work}/plugins-ca/pure~flex/flashvol.json")"
printf -- '-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n' > "${work}/garbage.pem"
mkdir "${work}/plugins-bad-ca"
if out="$(env -i FLASHVOL_CA_FILE="${work}/garbage.pem" "${flex}" install --once --plugin-dir "${work}/plugins-bad-ca" \
    --proc "${work}/proc" --config "${work}/pure-ca.json" --source "${flex}" 2>&1)"; then
    fail "the installer accepted a CA that is no certificate"
fi
grep -q "${work}/garbage.pem.*flashvol.tls.caCert.*not a certificate" <<<"${out}" || fail "unclear refusal of a bad CA: ${out}"
[[ -z "$(ls -A "${work}/plugins-bad-ca")" ]] || fail "a refused CA changed the plugin dir"
pass "installer copies the CA next to the driver (0644) and names it in flashvol.json; a bad CA is refused"
