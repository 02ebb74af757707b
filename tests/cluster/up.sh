#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (RBAC + Node
# authorizer, service-account token signing), kube-controller-manager (all controllers,
# so the PV binder and expander run, with a FlexVolume plugin dir of our choosing) and
# kube-scheduler (so DaemonSet and Deployment pods get a node once one joins).
# There is no kubelet: tests/node/ adds one; the e2e tests play the kubelet themselves.
#
# Usage: up.sh [--state-dir DIR] [--flex-dir DIR] [--version v1.X.Y]
#   --state-dir  where certificates, kubeconfigs, data, pids and logs go
#                (default: FLASHVOL_CLUSTER_STATE, else a fresh temp dir)
#   --flex-dir   kube-controller-manager --flex-volume-plugin-dir
#                (default: FLASHVOL_FLEX_PLUGIN_DIR, else <state>/flexvolume)
#   --version    kubernetes release (default: FLASHVOL_K8S_VERSION, else versions.env)
#
# Ports: FLASHVOL_APISERVER_PORT (16443), FLASHVOL_ETCD_PORT (12379, peer +1),
# FLASHVOL_KCM_PORT (10357), FLASHVOL_SCHEDULER_PORT (10359); a port in use is skipped for
# the next free one.
# FLASHVOL_CLUSTER_TIMEOUT bounds the wait for health (seconds, default 180).
# FLASHVOL_KCM_EXTRA_ARGS: extra kube-controller-manager flags, whitespace-separated, appended
# after ours (so a single-valued flag given here wins), e.g.
#   FLASHVOL_KCM_EXTRA_ARGS="--kube-api-qps=100 --kube-api-burst=200"
# Every word must start with -- (--name=value, no quotes); anything else fails before any
# component starts. Default: none, i.e. upstream defaults (client 20 QPS / burst 30).
#
# On success it prints shell assignments (KUBECONFIG=..., FLASHVOL_CLUSTER_STATE=...) on
# stdout, also saved as <state>/env, and leaves the processes running for down.sh. The env
# records the controller-manager's extra flags as applied (FLASHVOL_KCM_EXTRA_ARGS='...', words
# joined by one space; '' when none).
# On failure or Ctrl-C it prints the tail of each log and stops whatever it started.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

state_dir="${FLASHVOL_CLUSTER_STATE:-}"
flex_dir="${FLASHVOL_FLEX_PLUGIN_DIR:-}"
version="$K8S_VERSION"
while (($#)); do
    case "$1" in
    --state-dir | --flex-dir | --version)
        (($# >= 2)) || die "$1 needs a value"
        case "$1" in
        --state-dir) state_dir="$2" ;;
        --flex-dir) flex_dir="$2" ;;
        --version) version="$2" ;;
        esac
        shift 2
        ;;
    -h | --help) usage "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
validate_k8s_version "$version"
timeout_s="${FLASHVOL_CLUSTER_TIMEOUT:-180}"
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] || die "FLASHVOL_CLUSTER_TIMEOUT='$timeout_s' is not a positive number of seconds"
for var in FLASHVOL_APISERVER_PORT FLASHVOL_ETCD_PORT FLASHVOL_KCM_PORT FLASHVOL_SCHEDULER_PORT; do
    value="${!var:-}"
    [[ -z "$value" || ("$value" =~ ^[1-9][0-9]{0,4}$ && "$value" -le 65535) ]] ||
        die "$var='$value' is not a TCP port (1-65535)"
done
parse_kcm_extra_args "${FLASHVOL_KCM_EXTRA_ARGS:-}"

require_cmd openssl openssl
require_cmd curl curl
require_cmd ss iproute2
require_cmd setsid util-linux

bin_dir="$("$CLUSTER_DIR/build.sh" --version "$version" --print-dir)"

if [[ -z "$state_dir" ]]; then
    state_dir="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-cluster.XXXXXX")"
    touch "$state_dir/.created-by-up"
else
    mkdir -p "$state_dir"
    [[ -z "$(ls -A "$state_dir")" ]] || die "state dir $state_dir is not empty (a cluster may be running there; use down.sh)"
fi
state_dir="$(cd "$state_dir" && pwd)"
flex_dir="${flex_dir:-$state_dir/flexvolume}"
mkdir -p "$flex_dir" "$state_dir/pki" "$state_dir/logs" "$state_dir/pids"
flex_dir="$(cd "$flex_dir" && pwd)"
chmod 700 "$state_dir"

# Anything below that fails, or a Ctrl-C, stops what was started. After a successful
# start (started_ok) the EXIT trap leaves the cluster running.
started_ok=false
on_exit() {
    local rc=$?
    $started_ok && return 0
    log "start failed (exit $rc); last lines of each log:"
    "$CLUSTER_DIR/down.sh" --print-logs --keep-logs "$state_dir" >&2 || true
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- ports -------------------------------------------------------------------------
# pick_port VAR START: sets VAR to the first port >= START that nothing listens on and
# that this run has not already taken (a global, not $(...), so taken_ports persists).
port_in_use() { [[ -n "$(ss -Htln "sport = :$1")" ]]; }
taken_ports=" "
apiserver_port="" etcd_port="" etcd_peer_port="" kcm_port="" scheduler_port=""
pick_port() {
    local var="$1" port="$2"
    while port_in_use "$port" || [[ "$taken_ports" == *" $port "* ]]; do
        port=$((port + 1))
        ((port < 65535)) || die "no free TCP port found from $2 upward"
    done
    taken_ports+="$port "
    printf -v "$var" '%s' "$port"
}
# Only a setting: nothing routes to this range, no packet is ever sent there.
service_cidr=10.96.0.0/24
service_first_ip=10.96.0.1

# --- certificates ------------------------------------------------------------------
pki="$state_dir/pki"
PKI_LOG="$state_dir/logs/openssl.log"

# issue NAME SUBJECT EXTENSIONS [CA]: key + certificate signed by CA (default: the cluster CA).
issue() { pki_issue "$pki/${4:-ca}" "$pki/$1" "$2" "$3"; }

log "generating certificates in $pki"
pki_new_ca "$pki/ca" flashvol-test-ca
# The aggregation layer's front-proxy CA, as kubeadm sets it up; without it every
# component that delegates authentication logs a missing requestheader CA bundle.
pki_new_ca "$pki/front-proxy-ca" flashvol-test-front-proxy-ca
client_ext="$PKI_CLIENT_EXT"
issue apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$service_first_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue admin "/O=system:masters/CN=flashvol-admin" "$client_ext"
issue controller-manager "/CN=system:kube-controller-manager" "$client_ext"
# The identity the bootstrap RBAC policy binds to system:kube-scheduler and
# system:volume-scheduler, as kubeadm issues it.
issue scheduler "/CN=system:kube-scheduler" "$client_ext"
issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client_ext"
issue front-proxy-client "/CN=front-proxy-client" "$client_ext" front-proxy-ca
# The service-account token signing pair (apiserver signs, controller-manager mints).
pki_new_key "$pki/sa.key"
pki_openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
chmod 600 "$pki"/*.key

# cluster_kubeconfig FILE USER CERT_NAME: a kubeconfig for this cluster with an embedded client
# certificate from pki/.
cluster_kubeconfig() {
    write_kubeconfig "$1" "https://127.0.0.1:$apiserver_port" "$pki/ca.crt" "$2" "$pki/$3"
}

# --- processes ---------------------------------------------------------------------
# launch NAME BINARY ARGS...: runs detached in its own session (so a Ctrl-C aimed at our
# caller reaches only our traps, which then stop it in order), logging to logs/NAME.log.
launch() {
    local name="$1" binary="$2"
    shift 2
    printf '%q ' "$binary" "$@" >"$state_dir/logs/$name.cmdline"
    setsid "$binary" "$@" </dev/null >"$state_dir/logs/$name.log" 2>&1 &
    printf '%s\n' "$!" >"$state_dir/pids/$name"
    # down.sh checks this before signalling, so a recycled pid is never killed.
    printf '%s\n' "$binary" >"$state_dir/pids/$name.binary"
}

# is_running PID: alive and not a zombie (kill -0 succeeds on an exited, unreaped child).
is_running() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# listens PID PORT: PID itself listens on PORT. Free ports are picked before the
# components start, so another cluster starting at the same moment can take one first;
# then our component fails to bind, and a health probe would reach the other one.
listens() {
    ss -Htlnp "sport = :$2" | grep "pid=$1," >/dev/null
}

# wait_until NAME PORT DESCRIPTION COMMAND...: polls until process NAME listens on PORT and
# COMMAND succeeds. Returns 1 when NAME exits first (the caller decides whether that was
# a port taken meanwhile) and fails the start after the timeout.
wait_until() {
    local name="$1" port="$2" what="$3" deadline=$((SECONDS + timeout_s)) pid
    shift 3
    pid="$(cat "$state_dir/pids/$name")"
    until listens "$pid" "$port" && "$@" >/dev/null 2>&1; do
        is_running "$pid" || return 1
        ((SECONDS < deadline)) || die "$name: no $what within ${timeout_s}s"
        sleep 0.5
    done
    log "$name: $what"
}

# start_component NAME: runs start_NAME (pick ports, launch, wait until healthy). Ports
# are checked free just before, but a parallel run can still take one first; then our
# process fails to bind and exits, and it is started again on other ports.
start_component() {
    local name="$1" attempt
    for attempt in 1 2 3; do
        "start_$name" && return 0
        local port conflict=false
        for port in "${component_ports[@]}"; do port_in_use "$port" && conflict=true; done
        $conflict || die "$name exited while starting"
        log "$name: port ${component_ports[*]} was taken by another process meanwhile; retrying"
        mv "$state_dir/logs/$name.log" "$state_dir/logs/$name.attempt-$attempt.log"
    done
    die "$name: no free port after 3 attempts"
}
component_ports=()

# Plain HTTP is acceptable for etcd here: it listens on loopback only, and only the
# apiserver talks to it. --unsafe-no-fsync: test data is thrown away anyway.
start_etcd() {
    pick_port etcd_port "${FLASHVOL_ETCD_PORT:-12379}"
    pick_port etcd_peer_port $((etcd_port + 1))
    component_ports=("$etcd_port" "$etcd_peer_port")
    rm -rf "$state_dir/etcd"
    log "starting etcd on 127.0.0.1:$etcd_port"
    launch etcd "$bin_dir/etcd" \
        --name=flashvol \
        --data-dir="$state_dir/etcd" \
        --listen-client-urls="http://127.0.0.1:$etcd_port" \
        --advertise-client-urls="http://127.0.0.1:$etcd_port" \
        --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
        --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
        --initial-cluster="flashvol=http://127.0.0.1:$etcd_peer_port" \
        --initial-cluster-state=new \
        --unsafe-no-fsync \
        --log-level=warn
    wait_until etcd "$etcd_port" "healthy" etcd_healthy
}
etcd_healthy() { curl -fsS "http://127.0.0.1:$etcd_port/health" | grep '"health":"true"' >/dev/null; }

# The loopback advertise address cannot go into Endpoints (validation forbids loopback),
# hence --endpoint-reconciler-type=none (tests/node/ routes the Service's ClusterIP itself).
# kubelets are reached at their InternalIP first (as kubeadm does): test nodes' names resolve
# nowhere.
start_kube-apiserver() {
    pick_port apiserver_port "${FLASHVOL_APISERVER_PORT:-16443}"
    component_ports=("$apiserver_port")
    log "starting kube-apiserver on 127.0.0.1:$apiserver_port"
    launch kube-apiserver "$bin_dir/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$etcd_port" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --secure-port="$apiserver_port" \
        --cert-dir="$state_dir/apiserver" \
        --tls-cert-file="$pki/apiserver.crt" \
        --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname \
        --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
        --requestheader-allowed-names=front-proxy-client \
        --requestheader-username-headers=X-Remote-User \
        --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --proxy-client-cert-file="$pki/front-proxy-client.crt" \
        --proxy-client-key-file="$pki/front-proxy-client.key" \
        --authorization-mode=Node,RBAC \
        --anonymous-auth=true \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$pki/sa.pub" \
        --service-account-signing-key-file="$pki/sa.key" \
        --service-cluster-ip-range="$service_cidr" \
        --endpoint-reconciler-type=none \
        --allow-privileged=true \
        --profiling=false \
        --v=1
    wait_until kube-apiserver "$apiserver_port" "ready (/readyz)" apiserver_ready
}
apiserver_ready() {
    curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
        "https://127.0.0.1:$apiserver_port/readyz" | grep -x ok >/dev/null
}

# own_client_flags NAME PORT: what kube-controller-manager and kube-scheduler share: their own
# kubeconfig (<state>/NAME.kubeconfig) for API calls and delegated authentication and
# authorization, and a secure port on 127.0.0.1 with a certificate self-signed into <state>/NAME.
# /healthz is on the always-allowed path list, so the probes need no credentials.
own_client_flags() {
    printf '%s\n' --kubeconfig="$state_dir/$1.kubeconfig" \
        --authentication-kubeconfig="$state_dir/$1.kubeconfig" \
        --authorization-kubeconfig="$state_dir/$1.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port="$2" --cert-dir="$state_dir/$1"
}

start_kube-controller-manager() {
    pick_port kcm_port "${FLASHVOL_KCM_PORT:-10357}"
    component_ports=("$kcm_port")
    log "starting kube-controller-manager on 127.0.0.1:$kcm_port (flex plugins: $flex_dir;" \
        "extra flags: ${KCM_EXTRA_ARGS[*]:-none})"
    local own
    mapfile -t own < <(own_client_flags controller-manager "$kcm_port")
    launch kube-controller-manager "$bin_dir/kube-controller-manager" \
        "${own[@]}" \
        --controllers='*' \
        --flex-volume-plugin-dir="$flex_dir" \
        --service-account-private-key-file="$pki/sa.key" \
        --root-ca-file="$pki/ca.crt" \
        --use-service-account-credentials=true \
        --cluster-signing-cert-file="$pki/ca.crt" \
        --cluster-signing-key-file="$pki/ca.key" \
        --service-cluster-ip-range="$service_cidr" \
        --leader-elect=false \
        --profiling=false \
        --v=2 \
        "${KCM_EXTRA_ARGS[@]}"
    wait_until kube-controller-manager "$kcm_port" "healthy (/healthz)" kcm_healthy
}
kcm_healthy() { curl -fsSk "https://127.0.0.1:$kcm_port/healthz" | grep -x ok >/dev/null; }

# No leader election: one scheduler per cluster.
start_kube-scheduler() {
    pick_port scheduler_port "${FLASHVOL_SCHEDULER_PORT:-10359}"
    component_ports=("$scheduler_port")
    log "starting kube-scheduler on 127.0.0.1:$scheduler_port"
    local own
    mapfile -t own < <(own_client_flags scheduler "$scheduler_port")
    launch kube-scheduler "$bin_dir/kube-scheduler" \
        "${own[@]}" \
        --leader-elect=false \
        --profiling=false \
        --v=1
    wait_until kube-scheduler "$scheduler_port" "healthy (/healthz)" scheduler_healthy
}
scheduler_healthy() { curl -fsSk "https://127.0.0.1:$scheduler_port/healthz" | grep -x ok >/dev/null; }

start_component etcd
start_component kube-apiserver
cluster_kubeconfig "$state_dir/admin.kubeconfig" flashvol-admin admin
cluster_kubeconfig "$state_dir/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
cluster_kubeconfig "$state_dir/scheduler.kubeconfig" system:kube-scheduler scheduler
start_component kube-controller-manager
start_component kube-scheduler

cat >"$state_dir/env" <<EOF
FLASHVOL_CLUSTER_STATE=$state_dir
KUBECONFIG=$state_dir/admin.kubeconfig
FLASHVOL_K8S_BIN_DIR=$bin_dir
FLASHVOL_K8S_VERSION=$version
FLASHVOL_FLEX_PLUGIN_DIR=$flex_dir
FLASHVOL_APISERVER_URL=https://127.0.0.1:$apiserver_port
FLASHVOL_APISERVER_PORT=$apiserver_port
FLASHVOL_ETCD_PORT=$etcd_port
FLASHVOL_KCM_PORT=$kcm_port
FLASHVOL_SCHEDULER_PORT=$scheduler_port
FLASHVOL_KCM_EXTRA_ARGS='${KCM_EXTRA_ARGS[*]}'
EOF
started_ok=true
log "cluster $version up; admin kubeconfig: $state_dir/admin.kubeconfig; stop with: $CLUSTER_DIR/down.sh $state_dir"
cat "$state_dir/env"
