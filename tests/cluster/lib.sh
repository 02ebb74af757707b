# shellcheck shell=bash
# Shared helpers for the tests/cluster scripts: paths, pinned versions, logging and
# the prerequisites every script installs for itself on a fresh Debian machine.
# Sourced, never executed.

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$CLUSTER_DIR/versions.env"

# FLASHVOL_K8S_VERSION picks another release (e.g. the older pin) without editing versions.env.
K8S_VERSION="${FLASHVOL_K8S_VERSION:-$K8S_VERSION}"
FLASHVOL_CACHE_ROOT="${FLASHVOL_CACHE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/flashvol/k8s}"

# usage SCRIPT: prints the comment block at the top of SCRIPT (its help text).
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"; }

log() { printf '[cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Binaries of one release live together: kube-apiserver, kube-controller-manager, kubectl, etcd.
bin_dir_for() { printf '%s/%s\n' "$FLASHVOL_CACHE_ROOT" "$1"; }

# validate_k8s_version VERSION: only vMAJOR.MINOR.PATCH tags are accepted, because the
# staging modules are pinned by deriving v0.MINOR.PATCH from it.
validate_k8s_version() {
    [[ "$1" =~ ^v1\.[0-9]+\.[0-9]+$ ]] ||
        die "kubernetes version '$1' is not of the form v1.MINOR.PATCH"
}

# parse_kcm_extra_args VALUE [SOURCE]: splits VALUE (FLASHVOL_KCM_EXTRA_ARGS; SOURCE names it
# in errors) at whitespace into the array KCM_EXTRA_ARGS, the flags up.sh appends to
# kube-controller-manager's command line. Every word must be a flag of its own, `--name` or
# `--name=value` (a value given as a separate word would be taken for a stray argument), and
# quotes are refused: nothing here interprets them, so `--x="a b"` could only be split wrongly,
# and <state>/env records the value in single quotes.
parse_kcm_extra_args() {
    local source="${2:-FLASHVOL_KCM_EXTRA_ARGS}" word
    KCM_EXTRA_ARGS=()
    read -r -d '' -a KCM_EXTRA_ARGS <<<"$1" || true
    for word in "${KCM_EXTRA_ARGS[@]}"; do
        [[ "$word" =~ ^--[A-Za-z0-9] ]] ||
            die "$source: '$word' is not a flag: each whitespace-separated word must be one flag starting with -- (--name or --name=value, e.g. --kube-api-qps=100)"
        [[ "$word" != *[\'\"]* ]] ||
            die "$source: '$word' contains a quote; quotes are not interpreted (words are split at whitespace, values cannot contain it)"
    done
}

# apt_install PKG...: installs what is missing; refreshes the package lists once when a
# package is unknown (a fresh machine has none). Quiet when everything is present.
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep 'install ok installed' >/dev/null ||
            missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] || die "missing packages ${missing[*]}: install them (needs root)"
    log "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
            die "apt-get install ${missing[*]} failed"
    fi
}

# require_cmd CMD PACKAGE: makes CMD available, installing PACKAGE when it is absent.
require_cmd() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found even after installing $2"
}

# --- certificates (openssl, EC P-256) ----------------------------------------------
# Their stderr goes to PKI_LOG (default /dev/null); the caller sets it to a log of its own.
pki_openssl() { openssl "$@" 2>>"${PKI_LOG:-/dev/null}"; }

pki_new_key() { pki_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# pki_new_ca PREFIX CN: a self-signed CA, PREFIX.key and PREFIX.crt.
pki_new_ca() {
    pki_new_key "$1.key"
    pki_openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 7 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$1.crt"
}

# pki_issue CA_PREFIX PREFIX SUBJECT EXTENSIONS: PREFIX.key and PREFIX.crt, signed by the CA
# CA_PREFIX.crt / CA_PREFIX.key, with EXTENSIONS (openssl extfile lines).
pki_issue() {
    local ca="$1" out="$2" subject="$3" extensions="$4"
    pki_new_key "$out.key"
    pki_openssl req -new -key "$out.key" -subj "$subject" -out "$out.csr"
    printf '%s\n' "$extensions" >"$out.ext"
    pki_openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" \
        -CAcreateserial -days 7 -sha256 -extfile "$out.ext" -out "$out.crt"
    rm -f "$out.csr" "$out.ext"
}

# Extensions of a TLS client certificate.
# shellcheck disable=SC2034 # used by the scripts that source this file
PKI_CLIENT_EXT=$'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'

# write_kubeconfig FILE SERVER_URL CA_FILE USER CERT_PREFIX: a kubeconfig (mode 0600) with the
# client certificate CERT_PREFIX.crt / .key embedded.
write_kubeconfig() {
    local file="$1" server="$2" ca="$3" user="$4" cert="$5"
    cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: flashvol
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$ca")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$cert.crt")
    client-key-data: $(base64 -w0 <"$cert.key")
contexts:
- name: flashvol
  context:
    cluster: flashvol
    user: $user
current-context: flashvol
KUBECONFIG
    chmod 600 "$file"
}
