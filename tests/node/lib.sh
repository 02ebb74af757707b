# shellcheck shell=bash disable=SC2034 # settings are for the scripts that source this file
# Shared helpers of the real-node suite (tests/node/): settings, the node's state file, output,
# bounded waits, and what the scenarios ask of the cluster, the node and the simulated arrays.
# The machinery that starts and stops the node is in node.sh, flashvol's part in flashvol.sh.
# Sourced, never executed.

NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$NODE_DIR/../.." && pwd)"
# apt_install / require_cmd, pki_* and the pinned Kubernetes versions come from the cluster scripts.
# shellcheck source=../cluster/lib.sh
. "$REPO_ROOT/tests/cluster/lib.sh"

# --- settings (environment, see README.md) -----------------------------------------
NODE_NAME="${FLASHVOL_NODE_NAME:-flashvol-node-1}"
# The node's address: on a veth end the suite creates, never the machine's own. The default is
# from 198.18.0.0/15 (RFC 2544, for tests), which a CI machine's own networks do not use.
NODE_IP="${FLASHVOL_NODE_IP:-198.18.0.1}"
NODE_POD_CIDR="${FLASHVOL_NODE_POD_CIDR:-198.18.1.0/24}"
# Interfaces the suite creates (and deletes): the veth pair holding NODE_IP and the pods' bridge.
NODE_LINK=flashvol0
NODE_LINK_PEER=flashvol0p
NODE_BRIDGE=flashvolbr0
# The `kubernetes` Service's ClusterIP: the first address of up.sh's service range.
NODE_SERVICE_IP=10.96.0.1
NODE_PAUSE_IMAGE=flashvol.test/pause:1
NODE_TEST_IMAGE=flashvol.test/busybox:1
# Where the chart is installed.
NODE_SYSTEM_NAMESPACE=pure-system
# One node per machine: kubelet's device-plugin socket, /var/log/pods and the kubepods cgroups
# are shared paths. This file names the state dir of the node that owns them.
NODE_OWNER_FILE=/run/flashvol-node.owner
# Bounded waits (seconds).
NODE_TIMEOUT="${FLASHVOL_NODE_TIMEOUT:-120}"
# Waits kubelet 1.24 stretches by its 2m3s volume wait ("unmounted volumes=[...]: timed out
# waiting for the condition"): after a kubelet restart it does not see volumes it mounted again
# for a reconstructed pod until then, and a pod whose mount keeps failing is deleted only then.
NODE_LONG_TIMEOUT="${FLASHVOL_NODE_LONG_TIMEOUT:-300}"

# --- output ------------------------------------------------------------------------
log() { printf '[node %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# step TEXT: one line of a scenario's progress, on stdout.
step() { printf '  - %s\n' "$*"; }
# fail TEXT: the scenario fails here, saying why.
fail() {
    printf '  FAIL: %s\n' "$*" >&2
    exit 1
}
expect_eq() { [[ "$2" == "$3" ]] || fail "$1: expected '$3', got '$2'"; }
# fail_later TEXT: the scenario fails, but only at scenario_end, so that what follows (the rest
# of the outcome, the cleanup) still runs and is reported.
NODE_LATER_FAILURES=()
fail_later() {
    printf '  FAIL (reported at the end): %s\n' "$*" >&2
    NODE_LATER_FAILURES+=("$*")
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

# --- the node's state file -----------------------------------------------------------
# node_save NAME...: appends NAME=value lines to $NODE_STATE/node.env (read by every script).
node_save() {
    local name
    for name in "$@"; do printf '%s=%q\n' "$name" "${!name}" >>"$NODE_STATE/node.env"; done
}

# node_load [STATE]: reads the state of a running node (default: FLASHVOL_NODE_STATE) and puts
# the pinned kubectl first on PATH.
node_load() {
    NODE_STATE="${1:-${FLASHVOL_NODE_STATE:-}}"
    [[ -n "$NODE_STATE" && -f "$NODE_STATE/node.env" ]] ||
        die "no node state at '${NODE_STATE}' (start one with tests/node/up.sh; set FLASHVOL_NODE_STATE)"
    # shellcheck disable=SC1091
    . "$NODE_STATE/node.env"
    export KUBECONFIG FLASHVOL_NODE_STATE="$NODE_STATE"
    [[ -z "${NODE_K8S_BIN_DIR:-}" ]] || export PATH="$NODE_K8S_BIN_DIR:$PATH"
}

# --- pods ------------------------------------------------------------------------------
make_namespace() {
    kubectl delete namespace "$1" --ignore-not-found --wait=true >/dev/null 2>&1 || true
    kubectl create namespace "$1" >/dev/null
    # Pods are refused until the ServiceAccount controller has made the namespace's default.
    wait_for 30 "ServiceAccount $1/default" kubectl -n "$1" get serviceaccount default
}

# create_pvc NS NAME CLASS SIZE [ACCESS_MODE] [SELECTOR_JSON]
create_pvc() {
    local ns="$1" name="$2" class="$3" size="$4" mode="${5:-ReadWriteOnce}" selector="${6:-null}"
    jq -n --arg ns "$ns" --arg name "$name" --arg class "$class" --arg size "$size" --arg mode "$mode" \
        --argjson selector "$selector" '{
        apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: {name: $name, namespace: $ns},
        spec: ({storageClassName: $class, accessModes: [$mode], resources: {requests: {storage: $size}}}
               + (if $selector then {selector: $selector} else {} end))}' | kubectl create -f - >/dev/null
}
pvc_phase() { kubectl -n "$1" get pvc "$2" -o 'jsonpath={.status.phase}' 2>/dev/null; }
pvc_is_bound() { [[ "$(pvc_phase "$1" "$2")" == Bound ]]; }
wait_pvc_bound() { wait_for "${3:-$NODE_TIMEOUT}" "PVC $1/$2 to be Bound" pvc_is_bound "$1" "$2"; }
pv_of() { kubectl -n "$1" get pvc "$2" -o 'jsonpath={.spec.volumeName}'; }

# scenario_claims NS: a fresh namespace NS with two Bound claims, blk (pure-block,
# ReadWriteOnce) and fil (pure-file, ReadWriteMany), the pair most scenarios use. Sets blk_pv,
# fil_pv, blk_volume (the volume's name on its array) and blk_array (fa-a or fa-b).
scenario_claims() {
    make_namespace "$1"
    create_pvc "$1" blk pure-block 1Gi
    create_pvc "$1" fil pure-file 1Gi ReadWriteMany
    wait_pvc_bound "$1" blk
    wait_pvc_bound "$1" fil
    blk_pv="$(pv_of "$1" blk)"
    fil_pv="$(pv_of "$1" fil)"
    blk_volume="$(array_volume_of "$blk_pv")"
    blk_array="$(array_holding "$blk_volume")" || fail "$blk_volume is on no array"
}
pv_gone() { ! kubectl get pv "$1" >/dev/null 2>&1; }
# array_volume_of PV: the volume's (or file system's) name on the array.
array_volume_of() {
    kubectl get pv "$1" -o json | jq -er '.spec.flexVolume.options | .arrayVolume // "\(.namespace)-\(.volumeName)"'
}

# run_pod NS NAME SCRIPT [CLAIM[:ro]]... [-- POD_JSON_PATCH]: a pod of the test image running
# `sh -c SCRIPT`, each claim mounted at /data/<claim> (read-only for :ro). The pod is on this
# node (the scheduler places it; there is one node) and never pulls.
# POD_JSON_PATCH is merged into the pod (jq `*`), e.g. '{"spec":{"restartPolicy":"Never"}}'.
run_pod() {
    local ns="$1" name="$2" script="$3" patch='{}' claims=() arg
    shift 3
    while (($#)); do
        arg="$1"
        shift
        if [[ "$arg" == -- ]]; then patch="$1"; break; fi
        claims+=("$arg")
    done
    local claims_json
    claims_json="$(printf '%s\n' "${claims[@]}" | jq -R . | jq -s 'map(select(length > 0))')"
    jq -n --arg ns "$ns" --arg name "$name" --arg script "$script" --arg image "$NODE_TEST_IMAGE" \
        --argjson claims "$claims_json" --argjson patch "$patch" '
        def claim: split(":") | {name: .[0], ro: (.[1] == "ro")};
        {apiVersion: "v1", kind: "Pod", metadata: {name: $name, namespace: $ns},
         spec: {terminationGracePeriodSeconds: 2, enableServiceLinks: false,
           containers: [{name: "main", image: $image, imagePullPolicy: "Never",
             command: ["sh", "-c", $script],
             volumeMounts: [$claims[] | claim | {name: .name, mountPath: "/data/\(.name)"}]}],
           volumes: [$claims[] | claim | {name: .name,
             persistentVolumeClaim: ({claimName: .name} + (if .ro then {readOnly: true} else {} end))}]}}
        * $patch' | kubectl create -f - >/dev/null
}
pod_phase() { kubectl -n "$1" get pod "$2" -o 'jsonpath={.status.phase}' 2>/dev/null; }
pod_uid() { kubectl -n "$1" get pod "$2" -o 'jsonpath={.metadata.uid}'; }
pod_is_running() { [[ "$(pod_phase "$1" "$2")" == Running ]]; }
pod_phase_is() { [[ "$(pod_phase "$1" "$2")" == "$3" ]]; }
pod_gone() { ! kubectl -n "$1" get pod "$2" >/dev/null 2>&1; }
wait_pod_running() { wait_for "${3:-$NODE_TIMEOUT}" "pod $1/$2 to run" pod_is_running "$1" "$2"; }
# pod_log_has NS POD TEXT: the pod's output has a line equal to TEXT.
pod_log_has() { grep -qxF -- "$3" <<<"$(kubectl -n "$1" logs "$2" 2>/dev/null)"; }
wait_pod_log() { wait_for "${4:-$NODE_TIMEOUT}" "pod $1/$2 to print '$3'" pod_log_has "$1" "$2" "$3"; }
# pod_log_value NS POD KEY: the last "KEY=value" line the pod printed, value only.
pod_log_value() { kubectl -n "$1" logs "$2" 2>/dev/null | sed -n "s/^$3=//p" | tail -n 1; }
# pod_exec NS POD COMMAND...: runs COMMAND in the pod's container.
pod_exec() { local ns="$1" pod="$2"; shift 2; kubectl -n "$ns" exec "$pod" -c main -- "$@"; }
# pod_restarts NS POD: how often kubelet restarted the container.
pod_restarts() { kubectl -n "$1" get pod "$2" -o 'jsonpath={.status.containerStatuses[0].restartCount}'; }
# delete_pod NS POD: `kubectl delete --wait` (kubelet has unmounted its volumes when it returns).
delete_pod() { kubectl -n "$1" delete pod "$2" --wait=true --timeout="${3:-${NODE_TIMEOUT}}s" >/dev/null; }
# pod_events NS POD REASON: messages of the pod's events with that reason.
pod_events() {
    kubectl -n "$1" get events --field-selector "involvedObject.name=$2,reason=$3" \
        -o 'jsonpath={range .items[*]}{.message}{"\n"}{end}' 2>/dev/null
}
pod_has_event() { grep -Eq -- "${4:-.}" <<<"$(pod_events "$1" "$2" "$3")"; }

# --- what is on the node ---------------------------------------------------------------
# pod_volume_dir NS POD PV: where kubelet asks the driver to mount the PV for that pod.
pod_volume_dir() { echo "$NODE_KUBELET_ROOT/pods/$(pod_uid "$1" "$2")/volumes/pure~flex/$3"; }
staging_dir() { echo "$NODE_KUBELET_ROOT/plugins/kubernetes.io/flexvolume/pure/flex/mounts/$1"; }
record_file() { echo "$NODE_KUBELET_ROOT/plugins/kubernetes.io/flexvolume/pure/flex/records/$1.json"; }

# mounts_of PV: this mount namespace's mount points that name the PV (staging and pod binds).
mounts_of() { awk -v pv="/$1" '{ if (index($5, pv) > 0) print $5 }' /proc/self/mountinfo; }
mount_count() { mounts_of "$1" | grep -c . || true; }
is_mount_point() { mountpoint -q "$1"; }
# mount_namespaces_with DEVICE: how many mount namespaces on the machine hold a mount of DEVICE
# (major:minor): the host's, and those of containers that still have it.
mount_namespaces_with() {
    local dev="$1" f pid ns scanned=" " holding=0
    for f in /proc/[0-9]*/mountinfo; do
        pid="${f#/proc/}"
        ns="$(readlink "/proc/${pid%/mountinfo}/ns/mnt" 2>/dev/null)" || continue
        [[ "$scanned" == *" $ns "* ]] && continue
        scanned+="$ns "
        awk -v d="$dev" '$3 == d { found = 1 } END { exit !found }' "$f" 2>/dev/null && holding=$((holding + 1))
    done
    echo "$holding"
}
# device_of_mount DIR: major:minor of the file system mounted at DIR.
device_of_mount() { awk -v d="$1" '$5 == d { print $3; exit }' /proc/self/mountinfo; }
# node_loop_devices: loop devices whose backing file is a simulated volume of this node.
node_loop_devices() {
    losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v root="$NODE_STATE/" 'index($2, root) == 1 { print $1 }'
}
# flex_log: the driver's log file on this node (its node setting logFile).
flex_log() { cat "$NODE_FLEX_LOG" 2>/dev/null || true; }
flex_log_lines() { flex_log | wc -l; }
# flex_log_since LINE: the driver's log after line LINE (from flex_log_lines).
flex_log_since() { flex_log | tail -n +"$(($1 + 1))"; }
# flex_logged_since MARK TEXT: the driver logged a line containing TEXT after line MARK. (No
# `| grep -q` here or below: with pipefail, grep quitting early fails the writer with SIGPIPE.)
flex_logged_since() { grep -qF -- "$2" <<<"$(flex_log_since "$1")"; }
# flex_count_since MARK TEXT: how many lines containing TEXT the driver logged after line MARK.
flex_count_since() { grep -cF -- "$2" <<<"$(flex_log_since "$1")" || true; }

# --- the simulated arrays -----------------------------------------------------------
# sim_field ARRAY FIELD: endpoint, admin_url or ca_cert of a simulated array.
sim_field() {
    jq -rs --arg n "$1" --arg f "$2" 'map(select(.name == $n))[0][$f] // empty' "$NODE_STATE/sim/arrays.jsonl"
}
# sim_admin ARRAY PATH [CURL_ARG...]: https://<array>/_sim/PATH.
sim_admin() {
    local array="$1" path="$2"
    shift 2
    curl -fsS --max-time 10 --cacert "$(sim_field "$array" ca_cert)" "$@" "$(sim_field "$array" admin_url)/$path"
}
# volume_state ARRAY NAME: live, destroyed or absent (FlashArray volume or FlashBlade file system).
volume_state() {
    sim_admin "$1" state | jq -r --arg v "$2" '((.volumes // .file_systems)[$v]) as $o
        | if $o == null then "absent" elif $o.destroyed_at == null then "live" else "destroyed" end'
}
# array_holding NAME: the simulated array with a live object of that name.
array_holding() {
    local array
    for array in fa-a fa-b fb-1; do
        [[ "$(volume_state "$array" "$1")" == live ]] && { echo "$array"; return 0; }
    done
    return 1
}
# connections_of ARRAY VOLUME: hosts the volume is connected to, one per line.
connections_of() {
    sim_admin "$1" state | jq -r --arg v "$2" '.connections[] | select(.volume == $v) | .host'
}
# live_volumes ARRAY: names of the live volumes / file systems (snapshots excluded), sorted.
live_volumes() {
    sim_admin "$1" state | jq -r '(.volumes // .file_systems) | to_entries[]
        | select(.value.destroyed_at == null and (.value.snapshot_of // null) == null) | .key' | sort
}
# fa_rest ARRAY METHOD PATH [JSON]: one FlashArray REST call with a fresh session, as an
# administrator's script would make it (behind Kubernetes' back).
fa_rest() {
    local array="$1" method="$2" path="$3" body="${4:-}" base version jar ca rc=0
    base="https://$(sim_field "$array" endpoint)"
    ca="$(sim_field "$array" ca_cert)"
    version="$(curl -fsS --cacert "$ca" "$base/api/api_version" | jq -r '.version[-1]')"
    jar="$(mktemp "$NODE_STATE/cookies.XXXXXX")"
    curl -fsS --cacert "$ca" -c "$jar" -H 'Content-Type: application/json' \
        -d "{\"api_token\": \"node-token-$array\"}" "$base/api/$version/auth/session" >/dev/null &&
        curl -fsS --cacert "$ca" -b "$jar" -H 'Content-Type: application/json' \
            -X "$method" ${body:+-d "$body"} "$base/api/$version/$path" >/dev/null || rc=$?
    rm -f "$jar"
    return "$rc"
}

# sim_faults ARRAY JSON: replaces the array's fault set ('{}' clears it).
sim_faults() { sim_admin "$1" faults -X PUT -H 'Content-Type: application/json' -d "$2" >/dev/null; }

# --- scenario frame ------------------------------------------------------------------
# Scenarios that stop kubelet (node.sh) start it again when they fail midway, so the next
# scenario finds a working node.
# scenario_begin TITLE: loads the node, prints the title; on failure prints what helps.
scenario_begin() {
    NODE_SCENARIO_TITLE="$1"
    node_load
    printf '%s\n' "$1"
    trap scenario_on_exit EXIT
}

scenario_on_exit() {
    local rc="${1:-$?}"
    if declare -F node_kubelet_start >/dev/null && ! node_running kubelet; then
        log "starting kubelet again after the scenario"
        (node_kubelet_start && node_wait_ready) || log "kubelet did not come back"
    fi
    ((rc == 0)) && return 0
    {
        printf '  --- diagnostics for: %s\n' "$NODE_SCENARIO_TITLE"
        printf '  --- pods\n'
        kubectl get pods -A -o wide 2>&1 | sed 's/^/    /'
        printf '  --- last lines of the driver log\n'
        tail -n 15 "$NODE_FLEX_LOG" 2>/dev/null | sed 's/^/    /'
        printf '  --- last kubelet lines mentioning volumes\n'
        grep -iE 'flex|volume|mount' "$NODE_STATE/logs/kubelet.log" 2>/dev/null | tail -n 10 | sed 's/^/    /'
    } >&2
    return "$rc"
}

# node_reset: after a failed scenario, what it left behind is removed (the failure has been
# reported), so that the next scenario starts on a clean node: the scenarios' namespaces, flex
# and staging mounts, volume records, this node's array connections and the fabric's devices.
node_reset() {
    local ns array host volume mount_point
    for ns in $(kubectl get namespaces -o name | sed -n 's|^namespace/\(node-[0-9][0-9]\)$|\1|p'); do
        kubectl delete namespace "$ns" --wait=true --timeout=240s >/dev/null 2>&1 || log "namespace $ns is stuck"
    done
    awk -v r="$NODE_KUBELET_ROOT/" 'index($5, r) == 1 && $5 ~ /pure~flex|flexvolume\/pure/ { print length($5), $5 }' \
        /proc/self/mountinfo | sort -rn | cut -d' ' -f2- | while read -r mount_point; do
        umount -l "$mount_point" 2>/dev/null || true
    done
    rm -f "$(dirname "$(record_file x)")"/*.json
    for array in fa-a fa-b; do
        sim_admin "$array" state | jq -r '.connections[] | "\(.host) \(.volume)"' | while read -r host volume; do
            fa_rest "$array" DELETE "host/$host/volume/$volume" || log "could not disconnect $volume from $host on $array"
        done
    done
    "$NODE_STATE/fabric/iscsiadm" -m session --rescan >/dev/null 2>&1 || true
}

# node_is_clean: nothing of any claim is left on the node: no flex mount, no staging mount,
# no loop device, no volume record, no array connection. Prints what is left.
node_is_clean() {
    local left=() array
    mapfile -t -O "${#left[@]}" left < <(awk -v r="$NODE_KUBELET_ROOT/" 'index($5, r) == 1 && $5 ~ /pure~flex|flexvolume\/pure/ { print "mount " $5 }' /proc/self/mountinfo)
    mapfile -t -O "${#left[@]}" left < <(node_loop_devices | sed 's/^/loop device /')
    mapfile -t -O "${#left[@]}" left < <(find "$(dirname "$(record_file x)")" -name '*.json' -printf 'volume record %f\n' 2>/dev/null)
    for array in fa-a fa-b; do
        mapfile -t -O "${#left[@]}" left < <(sim_admin "$array" state | jq -r '.connections[] | "connection \(.host) -> \(.volume) on '"$array"'"')
    done
    ((${#left[@]} == 0)) && return 0
    printf '%s\n' "${left[@]}"
    return 1
}

# --- pod scripts (busybox sh) -----------------------------------------------------------
# WRITE_SCRIPT: writes 4 MiB of random data to every mounted claim that has none yet (a
# restarted container must not overwrite what it wrote before), syncs, prints
# "sha-<claim>=<sha256>" per claim and "ready", then waits to be stopped.
# shellcheck disable=SC2016 # expanded by the pod's shell
WRITE_SCRIPT='set -e
for d in /data/*; do [ -e "$d/payload" ] || dd if=/dev/urandom of="$d/payload" bs=1M count=4 2>/dev/null; done
sync
for d in /data/*; do echo "sha-${d##*/}=$(sha256sum "$d/payload" | cut -d" " -f1)"; done
echo ready
exec sleep 3600'
# READ_SCRIPT: prints "sha-<claim>=<sha256>" of every claim's payload and "ready", then waits.
# shellcheck disable=SC2016
READ_SCRIPT='for d in /data/*; do echo "sha-${d##*/}=$(sha256sum "$d/payload" | cut -d" " -f1)"; done
echo ready
exec sleep 3600'

# claims_released NS CLAIM...: deletes the claims and waits for their PVs (and so their array
# volumes) to be gone.
claims_released() {
    local ns="$1" claim pvs=() pv
    shift
    for claim in "$@"; do pvs+=("$(pv_of "$ns" "$claim")"); done
    kubectl -n "$ns" delete pvc "$@" --wait=false >/dev/null
    for pv in "${pvs[@]}"; do
        [[ -z "$pv" ]] || wait_for "$NODE_TIMEOUT" "PV $pv to be deleted" pv_gone "$pv"
    done
}

# scenario_end NS: the namespace goes, and nothing of any claim is left on the node.
scenario_end() {
    kubectl delete namespace "$1" --wait=true --timeout="${NODE_TIMEOUT}s" >/dev/null ||
        fail "namespace $1 was not deleted within ${NODE_TIMEOUT}s"
    local left
    left="$(node_is_clean)" || fail "left on the node after the scenario: $left"
    step "nothing left on the node: no flex mount, no loop device, no array connection"
    ((${#NODE_LATER_FAILURES[@]} == 0)) || fail "$(printf '%s; ' "${NODE_LATER_FAILURES[@]}")"
}

# mounts_at DIR: how many mounts are stacked at exactly DIR.
mounts_at() { awk -v d="$1" '$5 == d { n++ } END { print n + 0 }' /proc/self/mountinfo; }
# connected ARRAY VOLUME: the volume is connected to some host on the array.
connected() { [[ -n "$(connections_of "$1" "$2")" ]]; }
not_connected() { ! connected "$1" "$2"; }
