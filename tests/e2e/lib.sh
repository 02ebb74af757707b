# shellcheck shell=bash
# Shared helpers for the e2e scenarios (tests/e2e/NN-*.sh), tests/e2e/run.sh and quickstart.sh
# (other suites source it too). Sourced, never executed.
#
# What it owns:
#   - the test root (E2E_ROOT): copies of the binaries, certificates, simulator state, pure.json,
#     the fake node (kubelet root, by-id and sysfs dirs, fabric state), logs and pids; saved in
#     $E2E_ROOT/env so every scenario (a separate bash process) finds the same environment;
#   - bounded waits that say what they waited for;
#   - starting the array simulator (two FlashArrays with different Labels and capacities, one
#     FlashBlade) behind one test CA, writing pure.json;
#   - installing the shipped manifests and swapping the Secret's pure.json for the test one;
#   - starting, stopping and SIGKILLing provisioner processes that run with the ServiceAccount
#     token of the manifests and the args/env of the shipped Deployment;
#   - calling the flex driver exactly as kubelet does (pod dir + options JSON);
#   - teardown: provisioners, mounts under the test root, the fabric's loop devices, simulator.

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
# apt_install / require_cmd and the pinned Kubernetes version come from the cluster scripts.
# shellcheck source=../cluster/lib.sh
. "$REPO_ROOT/tests/cluster/lib.sh"

E2E_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
E2E_NAMESPACE_SYSTEM=pure-system
E2E_SERVICE_ACCOUNT=pure
E2E_PROVISIONER_NAME=pure-provisioner
E2E_LEASE=pure-provisioner
# The driver name and array name prefix our PVs must carry (used by the scenarios).
# shellcheck disable=SC2034
E2E_DRIVER=pure/flex
# shellcheck disable=SC2034
E2E_PREFIX=k8s
# Bounded waits (seconds). Provisioning normally takes well under a second here.
E2E_TIMEOUT="${E2E_TIMEOUT:-60}"

# --- output ------------------------------------------------------------------------
log() { printf '[e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# step TEXT: one line of a scenario's progress, on stdout.
step() { printf '  - %s\n' "$*"; }
# fail TEXT: the scenario fails here, saying why.
fail() {
    printf '  FAIL: %s\n' "$*" >&2
    exit 1
}
# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
    [[ "$2" == "$3" ]] || fail "$1: expected '$3', got '$2'"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND (quietly) until it succeeds; fails the
# scenario with the description after SECONDS.
wait_for() {
    local limit="$1" what="$2" deadline
    shift 2
    deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for: $what"
        sleep 0.5
    done
}

# --- environment shared between run.sh and the scenarios ---------------------------
# e2e_save_env NAME...: appends NAME=value lines to $E2E_ROOT/env.
e2e_save_env() {
    local name
    for name in "$@"; do printf '%s=%q\n' "$name" "${!name}" >>"$E2E_ROOT/env"; done
}

e2e_load_env() {
    [[ -n "${E2E_ROOT:-}" && -f "$E2E_ROOT/env" ]] || die "E2E_ROOT is not set up (run the scenarios through tests/e2e/run.sh)"
    # shellcheck disable=SC1091
    . "$E2E_ROOT/env"
}

# --- prerequisites and build -------------------------------------------------------
e2e_prerequisites() {
    [[ $(id -u) == 0 ]] || die "the e2e tests need root (loop devices, mounts)"
    require_cmd jq jq
    require_cmd curl curl
    require_cmd openssl openssl
    require_cmd mkfs.xfs xfsprogs
    require_cmd mkfs.ext4 e2fsprogs
    require_cmd losetup mount
    require_cmd flock util-linux
    require_cmd ss iproute2
    modprobe loop 2>/dev/null || true
    [[ -e /dev/loop-control ]] || die "no /dev/loop-control: loop devices are required"
}

e2e_build() {
    log "building flashvol-provisioner, flashvol-flex and flashvol-arraysim (debug)"
    (cd "$REPO_ROOT" && cargo build -q -p flashvol-provisioner -p flashvol-flexdriver -p flashvol-arraysim) ||
        die "cargo build failed"
    local bin
    for bin in flashvol-provisioner flashvol-flex flashvol-arraysim; do
        [[ -x "$E2E_TARGET_DIR/$bin" ]] || die "$E2E_TARGET_DIR/$bin was not built"
    done
}

# --- test root and teardown --------------------------------------------------------
e2e_make_root() {
    E2E_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-e2e.XXXXXX")"
    E2E_ROOT="$(cd "$E2E_ROOT" && pwd)"
    mkdir -p "$E2E_ROOT"/{logs,pids,pki,sim,etc-pure,node}
    : >"$E2E_ROOT/env"
    export E2E_ROOT
    e2e_save_env E2E_ROOT
    e2e_stage_binaries
}

# e2e_stage_binaries: copies the provisioner and simulator into the test root, so the whole run
# uses one build even if target/ is rebuilt meanwhile, and a pid check can trust the exe path.
e2e_stage_binaries() {
    E2E_BIN_DIR="$E2E_ROOT/bin"
    mkdir -p "$E2E_BIN_DIR"
    local bin
    for bin in flashvol-provisioner flashvol-flex flashvol-arraysim; do
        install -m 0755 "$E2E_TARGET_DIR/$bin" "$E2E_BIN_DIR/$bin" || die "cannot copy $bin into $E2E_BIN_DIR"
    done
    e2e_save_env E2E_BIN_DIR
}

# e2e_teardown: stops everything the e2e helpers started and removes what they put on the
# machine. Safe to call twice and after a partial start.
e2e_teardown() {
    [[ -n "${E2E_ROOT:-}" && -d "$E2E_ROOT" ]] || return 0
    local pidfile
    for pidfile in "$E2E_ROOT"/pids/provisioner-*; do
        [[ -f "$pidfile" && "$pidfile" != *.http ]] || continue
        provisioner_kill "${pidfile##*/provisioner-}" || true
    done
    # Deepest mount first, lazily, so a busy mount never stops the rest.
    local mounts mount_point
    mounts="$(awk -v root="$E2E_ROOT/" 'index($5, root) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)"
    if [[ -n "$mounts" ]]; then
        while read -r mount_point; do umount -l "$mount_point" 2>/dev/null || true; done <<<"$mounts"
    fi
    local fabric
    for fabric in "$E2E_ROOT"/node/fabric-*.json; do
        [[ -f "$fabric" ]] || continue
        FLASHVOL_FABRIC_CONFIG="$fabric" "$REPO_ROOT/tests/fabric/iscsiadm" -m node --logoutall=all >/dev/null 2>&1 || true
    done
    # A loop device whose backing file lies under the test root and that the fabric lost track of.
    losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v root="$E2E_ROOT/" 'index($2, root) == 1 {print $1}' |
        while read -r device; do losetup -d "$device" 2>/dev/null || true; done
    sim_stop
    if [[ -f "$E2E_ROOT/.flex-installed" ]]; then
        rm -rf "$(cat "$E2E_ROOT/.flex-installed")"
    fi
    return 0
}

# --- certificates ------------------------------------------------------------------
# e2e_make_ca: one CA and one serving certificate for 127.0.0.1/localhost, used by every
# simulated array, so pure.json's single "flashvol.tls.caFile" pins all of them.
e2e_make_ca() {
    local pki="$E2E_ROOT/pki"
    {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key" &&
            openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=flashvol-e2e-array-ca" -days 2 -sha256 \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -out "$pki/ca.crt" &&
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/array.key" &&
            openssl req -new -key "$pki/array.key" -subj "/CN=flashvol-e2e-array" -out "$pki/array.csr" &&
            printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
                'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$pki/array.ext" &&
            openssl x509 -req -in "$pki/array.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
                -days 2 -sha256 -extfile "$pki/array.ext" -out "$pki/array.crt"
    } >>"$E2E_ROOT/logs/openssl.log" 2>&1 || die "openssl failed (see $E2E_ROOT/logs/openssl.log)"
    chmod 600 "$pki"/*.key
    E2E_CA="$pki/ca.crt"
    e2e_save_env E2E_CA
}

# --- array simulator ---------------------------------------------------------------
# Capacities: fa-a is listed first in pure.json but has less room than fa-b, so a claim without
# a selector landing on fa-b proves that free space, not list order, decides.
E2E_FA_A_CAPACITY=$((8 << 30))
E2E_FA_B_CAPACITY=$((12 << 30))

# sim_start: serves fa-a, fa-b (FlashArrays) and fb-1 (FlashBlade) from one simulator process.
sim_start() {
    local config="$E2E_ROOT/sim/arrays.json" pki="$E2E_ROOT/pki"
    jq -n --arg cert "$pki/array.crt" --arg key "$pki/array.key" --arg root "$E2E_ROOT/sim/state" \
        --argjson a "$E2E_FA_A_CAPACITY" --argjson b "$E2E_FA_B_CAPACITY" '{
        state_root: $root,
        arrays: [
          {kind: "flasharray", name: "fa-a", listen: "127.0.0.1:0", api_token: "e2e-token-fa-a",
           capacity: $a, iscsi_portals: ["127.0.0.1:3260"], tls_cert: $cert, tls_key: $key},
          {kind: "flasharray", name: "fa-b", listen: "127.0.0.1:0", api_token: "e2e-token-fa-b",
           capacity: $b, iscsi_portals: ["127.0.0.1:3261"], tls_cert: $cert, tls_key: $key},
          {kind: "flashblade", name: "fb-1", listen: "127.0.0.1:0", api_token: "T-e2e-token-fb-1",
           capacity: "1T", data_vips: ["127.0.0.2"], tls_cert: $cert, tls_key: $key}
        ]}' >"$config"
    setsid "$E2E_BIN_DIR/flashvol-arraysim" --config "$config" \
        </dev/null >"$E2E_ROOT/sim/arrays.jsonl" 2>"$E2E_ROOT/logs/arraysim.log" &
    echo "$!" >"$E2E_ROOT/pids/arraysim"
    local deadline=$((SECONDS + 30))
    until [[ $(grep -c '"admin_url"' "$E2E_ROOT/sim/arrays.jsonl" 2>/dev/null) == 3 ]]; do
        kill -0 "$(cat "$E2E_ROOT/pids/arraysim")" 2>/dev/null ||
            die "the simulator exited: $(tail -n 5 "$E2E_ROOT/logs/arraysim.log")"
        ((SECONDS < deadline)) || die "the simulator did not report its 3 arrays within 30s"
        sleep 0.2
    done
    log "simulated arrays: $(jq -rs 'map("\(.name) \(.endpoint)") | join(", ")' "$E2E_ROOT/sim/arrays.jsonl")"
}

sim_stop() {
    local pidfile="$E2E_ROOT/pids/arraysim" pid
    [[ -f "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$E2E_BIN_DIR/flashvol-arraysim"* ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 50)); do sleep 0.1; waited=$((waited + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# sim_field ARRAY FIELD: endpoint or admin_url of a simulated array.
sim_field() {
    local value
    value="$(jq -rs --arg n "$1" --arg f "$2" 'map(select(.name == $n))[0][$f] // empty' "$E2E_ROOT/sim/arrays.jsonl")"
    [[ -n "$value" ]] || fail "no simulated array named $1"
    echo "$value"
}

# sim_admin ARRAY PATH: GET https://<array>/_sim/PATH.
sim_admin() {
    curl -fsS --max-time 10 --cacert "$E2E_CA" "$(sim_field "$1" admin_url)/$2"
}

# volume_state ARRAY NAME: live, destroyed or absent (FlashArray volume or FlashBlade file system).
volume_state() {
    sim_admin "$1" state | jq -r --arg v "$2" '
        ((.volumes // .file_systems)[$v]) as $o
        | if $o == null then "absent" elif $o.destroyed_at == null then "live" else "destroyed" end'
}

# live_array_volumes ARRAY: names of the live (not destroyed) volumes / file systems, sorted.
live_array_volumes() {
    sim_admin "$1" state | jq -r '(.volumes // .file_systems) | to_entries[]
        | select(.value.destroyed_at == null and (.value.snapshot_of // null) == null) | .key' | sort
}

# array_holding NAME: which simulated array has a live object of that name.
array_holding() {
    local array
    for array in fa-a fa-b fb-1; do
        if [[ "$(volume_state "$array" "$1")" == live ]]; then
            echo "$array"
            return 0
        fi
    done
    return 1
}

# fa_rest ARRAY METHOD PATH [JSON]: one FlashArray REST 1.x call with a fresh session, the way
# an administrator's script would (api_token → session cookie).
fa_rest() {
    local array="$1" method="$2" path="$3" body="${4:-}" base token version jar
    base="$(sim_field "$array" endpoint)"
    base="https://${base#https://}"
    token="$(jq -r --arg n "$array" '.arrays[] | select(.name == $n) | .api_token' "$E2E_ROOT/sim/arrays.json")"
    version="$(curl -fsS --cacert "$E2E_CA" "$base/api/api_version" | jq -r '.version[-1]')"
    jar="$(mktemp "$E2E_ROOT/cookies.XXXXXX")"
    curl -fsS --cacert "$E2E_CA" -c "$jar" -H 'Content-Type: application/json' \
        -d "$(jq -n --arg t "$token" '{api_token: $t}')" "$base/api/$version/auth/session" >/dev/null || {
        rm -f "$jar"
        return 1
    }
    local rc=0
    curl -fsS --cacert "$E2E_CA" -b "$jar" -H 'Content-Type: application/json' -X "$method" \
        ${body:+-d "$body"} "$base/api/$version/$path" || rc=$?
    rm -f "$jar"
    return "$rc"
}

# fb_rest METHOD PATH [JSON]: one FlashBlade REST 1.x call on fb-1 (api-token login →
# x-auth-token), e.g. fb_rest PATCH 'file-systems?names=x' '{"destroyed":true}'.
fb_rest() {
    local method="$1" path="$2" body="${3:-}" base version auth
    base="$(sim_field fb-1 endpoint)"
    base="https://${base#https://}"
    version="$(curl -fsS --cacert "$E2E_CA" "$base/api/api_version" | jq -r '.versions[-1]')"
    auth="$(curl -fsS --cacert "$E2E_CA" -D - -o /dev/null -X POST -H "api-token: T-e2e-token-fb-1" "$base/api/login" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "x-auth-token" {print $2}')"
    [[ -n "$auth" ]] || return 1
    curl -fsS --cacert "$E2E_CA" -H "x-auth-token: $auth" -H 'Content-Type: application/json' -X "$method" \
        ${body:+-d "$body"} "$base/api/$version/$path"
}

# --- pure.json, manifests, ServiceAccount ------------------------------------------
# e2e_write_pure_json FILE: PSO's pure.json for the three simulated arrays, with the test CA.
e2e_write_pure_json() {
    jq -n --arg faa "$(sim_field fa-a endpoint)" --arg fab "$(sim_field fa-b endpoint)" \
        --arg fb "$(sim_field fb-1 endpoint)" --arg ca "$E2E_CA" '{
        FlashArrays: [
          {MgmtEndPoint: $faa, APIToken: "e2e-token-fa-a", Labels: {rack: "a"}},
          {MgmtEndPoint: $fab, APIToken: "e2e-token-fa-b", Labels: {rack: "b"}}
        ],
        FlashBlades: [
          {MgmtEndPoint: $fb, APIToken: "T-e2e-token-fb-1", NfsEndPoint: "127.0.0.2", Labels: {rack: "f"}}
        ],
        flashvol: {tls: {caFile: $ca}}
      }' >"$1"
    chmod 600 "$1"
}

# e2e_install_manifests PURE_JSON: applies install/manifests/flashvol.yaml as shipped, then puts
# PURE_JSON into the shipped Secret, and extracts it again the way the pod would see it mounted.
e2e_install_manifests() {
    local pure_json="$1" manifests="$REPO_ROOT/install/manifests/flashvol.yaml"
    [[ -f "$manifests" ]] || die "$manifests is missing"
    kubectl apply -f "$manifests" >"$E2E_ROOT/logs/apply-manifests.log" 2>&1 ||
        die "kubectl apply -f install/manifests/flashvol.yaml failed: $(tail -n 5 "$E2E_ROOT/logs/apply-manifests.log")"
    # The workloads cannot run here (no scheduler, no kubelet) but must be valid, accepted objects.
    kubectl -n "$E2E_NAMESPACE_SYSTEM" get daemonset pure-flex >/dev/null 2>&1 ||
        die "the manifests did not create DaemonSet $E2E_NAMESPACE_SYSTEM/pure-flex"
    kubectl -n "$E2E_NAMESPACE_SYSTEM" get deployment "$E2E_PROVISIONER_NAME" >/dev/null 2>&1 ||
        die "the manifests did not create Deployment $E2E_NAMESPACE_SYSTEM/$E2E_PROVISIONER_NAME"
    kubectl -n "$E2E_NAMESPACE_SYSTEM" patch secret pure-provisioner-secret --type merge \
        -p "$(jq -n --arg v "$(base64 -w0 <"$pure_json")" '{data: {"pure.json": $v}}')" >/dev/null ||
        die "cannot put the test pure.json into Secret pure-provisioner-secret"
    # What the Deployment's pod would find at /etc/pure/pure.json.
    E2E_MOUNTED_PURE_JSON="$E2E_ROOT/etc-pure/pure.json"
    (umask 077 && kubectl -n "$E2E_NAMESPACE_SYSTEM" get secret pure-provisioner-secret \
        -o 'jsonpath={.data.pure\.json}' | base64 -d >"$E2E_MOUNTED_PURE_JSON") ||
        die "cannot read pure.json back from the Secret"
    e2e_save_env E2E_MOUNTED_PURE_JSON
}

# e2e_service_account_kubeconfig: a kubeconfig with the token of the ServiceAccount the
# manifests create for the provisioner, so only the shipped RBAC applies.
e2e_service_account_kubeconfig() {
    E2E_SA_KUBECONFIG="$E2E_ROOT/provisioner.kubeconfig"
    "$REPO_ROOT/tests/cluster/sa-kubeconfig.sh" "$E2E_NAMESPACE_SYSTEM" "$E2E_SERVICE_ACCOUNT" \
        --duration 4h --output "$E2E_SA_KUBECONFIG" || die "cannot mint a token for $E2E_NAMESPACE_SYSTEM/$E2E_SERVICE_ACCOUNT"
    e2e_save_env E2E_SA_KUBECONFIG
}

# --- provisioner processes ---------------------------------------------------------
# free_port START: the first TCP port from START on that nothing listens on.
free_port() {
    local port="$1" listening
    listening=" $(ss -Htln | awk '{n=split($4,a,":"); printf "%s ", a[n]}')"
    while [[ "$listening" == *" $port "* ]]; do port=$((port + 1)); done
    echo "$port"
}

# deployment_json: the shipped Deployment as the cluster holds it; provisioner_start takes the
# container's args and literal env from it, so the local process runs with what the pod would get.
deployment_json() {
    kubectl -n "$E2E_NAMESPACE_SYSTEM" get deployment "$E2E_PROVISIONER_NAME" -o json
}

# provisioner_start NAME [EXTRA_ARG...]: runs flashvol-provisioner as the shipped Deployment
# would (its args and env, --config pointing at the Secret's pure.json, POD_NAMESPACE and
# POD_NAME set as the downward API would), with the ServiceAccount kubeconfig. The metrics
# address is 127.0.0.1:<free port>, recorded in $E2E_ROOT/pids/provisioner-NAME.http.
provisioner_start() {
    local name="$1"
    shift
    local deployment port args=() envs=() arg
    deployment="$(deployment_json)" || fail "cannot read Deployment $E2E_PROVISIONER_NAME"
    port="$(free_port 18080)"
    while IFS= read -r arg; do
        case "$arg" in
        --config=*) args+=("--config=$E2E_MOUNTED_PURE_JSON") ;;
        --http-address=*) args+=("--http-address=127.0.0.1:$port") ;;
        *) args+=("$arg") ;;
        esac
    done < <(jq -r '.spec.template.spec.containers[0].args[]' <<<"$deployment")
    while IFS= read -r arg; do
        case "$arg" in
        PURE_DISCOVERY_CONF=*) envs+=("PURE_DISCOVERY_CONF=$E2E_MOUNTED_PURE_JSON") ;;
        *) envs+=("$arg") ;;
        esac
    done < <(jq -r '.spec.template.spec.containers[0].env[] | select(.value != null) | "\(.name)=\(.value)"' <<<"$deployment")
    printf '%q ' "${args[@]}" "$@" >"$E2E_ROOT/logs/provisioner-$name.cmdline"
    # Started from a subshell so this shell does not track it as a job (no "Killed" notices).
    (
        env -i PATH="$PATH" HOME="$E2E_ROOT" KUBECONFIG="$E2E_SA_KUBECONFIG" \
            POD_NAMESPACE="$E2E_NAMESPACE_SYSTEM" POD_NAME="$name" "${envs[@]}" \
            setsid "$E2E_BIN_DIR/flashvol-provisioner" "${args[@]}" "$@" \
            </dev/null >>"$E2E_ROOT/logs/provisioner-$name.log" 2>&1 &
        echo "$!" >"$E2E_ROOT/pids/provisioner-$name"
    )
    echo "127.0.0.1:$port" >"$E2E_ROOT/pids/provisioner-$name.http"
    wait_for 30 "provisioner $name to serve /healthz on 127.0.0.1:$port" \
        curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz"
}

provisioner_pid() { cat "$E2E_ROOT/pids/provisioner-$1" 2>/dev/null; }
provisioner_log() { echo "$E2E_ROOT/logs/provisioner-$1.log"; }
provisioner_http() { cat "$E2E_ROOT/pids/provisioner-$1.http"; }

# provisioner_running NAME: the recorded pid is alive and runs our binary (a pid recycled by
# another program is never signalled).
provisioner_running() {
    local pid exe
    pid="$(provisioner_pid "$1")" || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
    [[ "${exe% (deleted)}" == "$E2E_BIN_DIR/flashvol-provisioner" ]]
}

# provisioner_signal NAME SIGNAL: signals the process and waits (bounded) until it is gone.
provisioner_signal() {
    local name="$1" signal="$2" pid waited=0
    if provisioner_running "$name"; then
        pid="$(provisioner_pid "$name")"
        kill "-$signal" "$pid" 2>/dev/null || true
        while provisioner_running "$name" && ((waited < 200)); do sleep 0.1; waited=$((waited + 1)); done
        if provisioner_running "$name"; then
            log "provisioner $name ignored SIG$signal for 20s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$E2E_ROOT/pids/provisioner-$name" "$E2E_ROOT/pids/provisioner-$name.http"
}
provisioner_stop() { provisioner_signal "$1" TERM; }
provisioner_kill() { provisioner_signal "$1" KILL; }

# provisioner_leads NAME: the process says it leads (its flashvol_leader gauge is 1) and the
# Lease names a process started as NAME.
provisioner_leads() {
    curl -fsS --max-time 2 "http://$(provisioner_http "$1")/metrics" | grep -qx 'flashvol_leader 1' &&
        lease_held_by "$1"
}

# ensure_main_provisioner: the scenarios share one provisioner named "main"; a scenario that
# stops it starts it again through this.
ensure_main_provisioner() {
    provisioner_running main && return 0
    provisioner_start main
    wait_for "$E2E_TIMEOUT" "provisioner main to lead (Lease $E2E_LEASE)" provisioner_leads main
}

# lease_holder: the Lease's holderIdentity (admin view).
lease_holder() {
    kubectl -n "$E2E_NAMESPACE_SYSTEM" get lease "$E2E_LEASE" -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null
}

# lease_held_by NAME: identities start with POD_NAME, which provisioner_start sets to NAME.
lease_held_by() { [[ "$(lease_holder)" == "$1"_* ]]; }

# --- claims and volumes ------------------------------------------------------------
# make_namespace NS: a fresh namespace for one scenario.
make_namespace() {
    kubectl delete namespace "$1" --ignore-not-found --wait=true >/dev/null 2>&1 || true
    kubectl create namespace "$1" >/dev/null
}

# create_pvc NS NAME CLASS SIZE [ACCESS_MODE] [SELECTOR_JSON] [ANNOTATIONS_JSON]
create_pvc() {
    local ns="$1" name="$2" class="$3" size="$4" mode="${5:-ReadWriteOnce}" selector="${6:-null}" annotations="${7:-null}"
    jq -n --arg ns "$ns" --arg name "$name" --arg class "$class" --arg size "$size" --arg mode "$mode" \
        --argjson selector "$selector" --argjson annotations "$annotations" '{
        apiVersion: "v1", kind: "PersistentVolumeClaim",
        metadata: ({name: $name, namespace: $ns} + (if $annotations then {annotations: $annotations} else {} end)),
        spec: ({storageClassName: $class, accessModes: [$mode], resources: {requests: {storage: $size}}}
               + (if $selector then {selector: $selector} else {} end))
      }' | kubectl create -f - >/dev/null
}

pvc_phase() { kubectl -n "$1" get pvc "$2" -o 'jsonpath={.status.phase}' 2>/dev/null; }
pvc_is_bound() { [[ "$(pvc_phase "$1" "$2")" == Bound ]]; }
wait_pvc_bound() { wait_for "${3:-$E2E_TIMEOUT}" "PVC $1/$2 to be Bound" pvc_is_bound "$1" "$2"; }
pv_of() { kubectl -n "$1" get pvc "$2" -o 'jsonpath={.spec.volumeName}'; }
pv_exists() { kubectl get pv "$1" >/dev/null 2>&1; }
pv_gone() { ! pv_exists "$1"; }

# array_name_of_pv PV: the volume's name on the array; PSO's PVs carry only namespace+volumeName.
array_name_of_pv() {
    kubectl get pv "$1" -o json | jq -er '.spec.flexVolume.options
        | .arrayVolume // "\(.namespace)-\(.volumeName)"'
}

# events_for NS NAME REASON: messages of the claim's events with that reason.
events_for() {
    kubectl -n "$1" get events --field-selector "involvedObject.name=$2,reason=$3" \
        -o 'jsonpath={range .items[*]}{.message}{"\n"}{end}' 2>/dev/null
}

# has_event NS NAME REASON [PATTERN]: the object has an event with that reason (and a message
# matching the extended regex PATTERN).
has_event() {
    events_for "$1" "$2" "$3" | grep -Eq -- "${4:-.}"
}

# --- the node: flex driver as kubelet runs it --------------------------------------
# node_setup: installs the driver the way the DaemonSet does (binary at
# <plugin dir>/pure~flex/flex, settings file flashvol.json next to it, root-only), and a fake
# node around it: kubelet root, by-id and sysfs dirs, iSCSI initiator name, and one fabric
# config per FlashArray (tests/fabric/iscsiadm asks one simulator which LUNs this initiator sees).
# With E2E_NODE_MODE=host (real arrays) the driver uses this machine's own devices and tools;
# only its log and locks go into the test root, and a "node" section of pure.json is kept.
node_setup() {
    local node="$E2E_ROOT/node" plugin_dir="${FLASHVOL_FLEX_PLUGIN_DIR:-$E2E_ROOT/node/plugins}"
    E2E_KUBELET_ROOT="$node/kubelet"
    E2E_FLEX_DIR="$plugin_dir/pure~flex"
    E2E_FLEX="$E2E_FLEX_DIR/flex"
    E2E_FLEX_SETTINGS="$E2E_FLEX_DIR/flashvol.json"
    E2E_NODE_NAME="e2e-node-1"
    E2E_IQN="iqn.2026-11.io.flashvol.e2e:node-1"
    mkdir -p "$E2E_KUBELET_ROOT" "$E2E_FLEX_DIR"
    install -m 0755 "$E2E_BIN_DIR/flashvol-flex" "$E2E_FLEX"
    echo "$E2E_FLEX_DIR" >"$E2E_ROOT/.flex-installed"
    if [[ "${E2E_NODE_MODE:-fabric}" == host ]]; then
        E2E_NODE_NAME="$(hostname)"
        (umask 077 && jq --arg node "$node" '.node = ({logFile: "\($node)/flex.log", locksDir: "\($node)/locks"} + (.node // {}))' \
            "$E2E_MOUNTED_PURE_JSON" >"$E2E_FLEX_SETTINGS")
        e2e_save_env E2E_KUBELET_ROOT E2E_FLEX_DIR E2E_FLEX E2E_FLEX_SETTINGS E2E_NODE_NAME
        return 0
    fi
    mkdir -p "$node/dev/disk/by-id" "$node/dev/mapper" "$node/sys/block"
    printf 'InitiatorName=%s\n' "$E2E_IQN" >"$node/initiatorname.iscsi"
    local fabric="$REPO_ROOT/tests/fabric"
    (umask 077 && jq --arg node "$node" --arg name "$E2E_NODE_NAME" --arg fabric "$fabric" '. + {node: {
        nodeName: $name, logFile: "\($node)/flex.log", logLevel: "debug", locksDir: "\($node)/locks",
        deviceDir: "\($node)/dev/disk/by-id", mapperDir: "\($node)/dev/mapper", sysfsRoot: "\($node)/sys",
        iscsiInitiatorFile: "\($node)/initiatorname.iscsi",
        tools: {iscsiadm: "\($fabric)/iscsiadm", multipath: "\($fabric)/multipath",
                multipathd: "\($fabric)/multipathd", mount: "\($fabric)/mount"},
        deadlines: {arrayCallSeconds: 30, deviceWaitSeconds: 30, lockWaitSeconds: 120}}}' \
        "$E2E_MOUNTED_PURE_JSON" >"$E2E_FLEX_SETTINGS")
    local array
    for array in fa-a fa-b; do
        jq -n --arg fa "$(sim_field "$array" admin_url)" --arg fb "$(sim_field fb-1 admin_url)" \
            --arg ca "$E2E_CA" --arg iqn "$E2E_IQN" --arg node "$node" --arg array "$array" '{
            faAdminUrl: $fa, fbAdminUrl: $fb, faCaCert: $ca, fbCaCert: $ca, initiator: $iqn,
            sysfsRoot: "\($node)/sys", deviceDir: "\($node)/dev/disk/by-id",
            stateDir: "\($node)/fabric-\($array)"}' >"$node/fabric-$array.json"
    done
    e2e_save_env E2E_KUBELET_ROOT E2E_FLEX_DIR E2E_FLEX E2E_FLEX_SETTINGS E2E_NODE_NAME E2E_IQN
}

pod_dir() { echo "$E2E_KUBELET_ROOT/pods/$1/volumes/pure~flex/$2"; }

# fabric_for_pv PV: the fabric config of the FlashArray holding the PV's volume. A real node
# sees every array's LUNs through one iscsiadm; the stand-in asks one simulator, so the
# kubelet stand-in picks the right one (file PVs only need the FlashBlade, any config will do).
fabric_for_pv() {
    local volume array
    # Real arrays (no simulator): the driver uses the machine's own tools, no fabric.
    [[ -f "$E2E_ROOT/sim/arrays.jsonl" ]] || { echo /nonexistent; return 0; }
    volume="$(array_name_of_pv "$1")"
    array="$(array_holding "$volume")" || array=fa-a
    [[ "$array" == fb-1 ]] && array=fa-a
    echo "$E2E_ROOT/node/fabric-$array.json"
}

# flex_call FABRIC_CONFIG ARG...: runs the installed driver as kubelet does: a bare environment,
# one JSON document on stdout. Prints the reply; fails unless its status is Success.
flex_call() {
    local fabric="$1" reply status
    shift
    reply="$(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        FLASHVOL_FABRIC_CONFIG="$fabric" "$E2E_FLEX" "$@" 2>"$E2E_ROOT/logs/flex-stderr.log")" || true
    status="$(jq -r '.status' <<<"$reply" 2>/dev/null)" || status=""
    [[ "$status" == Success ]] || fail "flex $1 failed: ${reply:-<no output>} $(cat "$E2E_ROOT/logs/flex-stderr.log")"
    echo "$reply"
}

# flex_mount POD_UID PV [NS] [POD_NAME]: kubelet's SetUp for a flex PV: mkdir the pod volume dir,
# then `flex mount <dir> <options + kubelet's keys>`.
flex_mount() {
    local uid="$1" pv="$2" ns="${3:-default}" pod="${4:-pod-$1}" dir options
    dir="$(pod_dir "$uid" "$pv")"
    mkdir -p "$(dirname "$dir")"
    [[ -d "$dir" ]] || mkdir -m 0750 "$dir"
    options="$(kubectl get pv "$pv" -o json | jq -c --arg pv "$pv" --arg ns "$ns" --arg pod "$pod" --arg uid "$uid" '
        (.spec.flexVolume.options // {}) + {
          "kubernetes.io/fsType": (.spec.flexVolume.fsType // ""),
          "kubernetes.io/readwrite": "rw",
          "kubernetes.io/pvOrVolumeName": $pv,
          "kubernetes.io/pod.name": $pod, "kubernetes.io/pod.namespace": $ns,
          "kubernetes.io/pod.uid": $uid, "kubernetes.io/serviceAccount.name": "default"}')"
    flex_call "$(fabric_for_pv "$pv")" mount "$dir" "$options" >/dev/null
    mountpoint -q "$dir" || fail "flex mount said Success but $dir is not a mount point"
}

# flex_unmount POD_UID PV: kubelet's TearDown: `flex unmount <dir>`, then remove the dir.
flex_unmount() {
    local dir fabric
    dir="$(pod_dir "$1" "$2")"
    fabric="$(fabric_for_pv "$2" 2>/dev/null)" || fabric="$E2E_ROOT/node/fabric-fa-a.json"
    flex_call "$fabric" unmount "$dir" >/dev/null
    ! mountpoint -q "$dir" || fail "flex unmount said Success but $dir is still mounted"
    rmdir "$dir"
}

# write_data DIR: writes 4 MiB of random data; prints its sha256.
write_data() {
    head -c 4194304 /dev/urandom >"$1/payload.bin"
    sync
    sha256sum "$1/payload.bin" | cut -d' ' -f1
}
read_data() { sha256sum "$1/payload.bin" | cut -d' ' -f1; }

# mount_write_remount_check PV NS: the pod-style data check of one PV: mount into pod A, write,
# unmount, mount into pod B, data intact, unmount.
mount_write_remount_check() {
    local pv="$1" ns="$2" pod_a pod_b sum
    pod_a="$(cat /proc/sys/kernel/random/uuid)"
    pod_b="$(cat /proc/sys/kernel/random/uuid)"
    step "mount $pv into pod $pod_a through $E2E_FLEX (as kubelet would) and write 4 MiB"
    flex_mount "$pod_a" "$pv" "$ns" writer
    sum="$(write_data "$(pod_dir "$pod_a" "$pv")")"
    step "unmount it from pod $pod_a"
    flex_unmount "$pod_a" "$pv"
    step "mount $pv into a second pod $pod_b and check the data (sha256 ${sum:0:12}…)"
    flex_mount "$pod_b" "$pv" "$ns" reader
    expect_eq "sha256 of the data read back in the second pod" "$(read_data "$(pod_dir "$pod_b" "$pv")")" "$sum"
    step "data intact in the second pod; unmount it"
    flex_unmount "$pod_b" "$pv"
}

# --- scenario frame ----------------------------------------------------------------
# scenario_begin TITLE: prints the title and, when the scenario fails, what helps debugging.
scenario_begin() {
    E2E_SCENARIO_TITLE="$1"
    e2e_load_env
    export PATH="${FLASHVOL_K8S_BIN_DIR:-}:$PATH"
    printf '%s\n' "$1"
    trap scenario_on_exit EXIT
}

# scenario_on_exit [STATUS]: the EXIT trap (STATUS defaults to $?; a scenario that extends the
# trap passes the status it saw first).
scenario_on_exit() {
    local rc="${1:-$?}"
    ((rc == 0)) && return 0
    {
        printf '  --- diagnostics for: %s\n' "$E2E_SCENARIO_TITLE"
        local f
        for f in "$E2E_ROOT"/logs/provisioner-*.log; do
            [[ -f "$f" ]] || continue
            printf '  --- last lines of %s\n' "$f"
            tail -n 15 "$f" | sed 's/^/    /'
        done
        [[ -f "$E2E_ROOT/node/flex.log" ]] && { printf '  --- last lines of flex.log\n'; tail -n 10 "$E2E_ROOT/node/flex.log" | sed 's/^/    /'; }
    } >&2
    return "$rc"
}
