# shellcheck shell=bash disable=SC2034 # settings are for the scripts that source this file
# Shared helpers of the real-node suite (tests/node/): settings, the node's state file, and what
# the scenarios ask of pods and the node. The machinery that starts and stops the node is in
# node.sh, flashvol's part in flashvol.sh. Sourced, never executed.
#
# Output, verdicts and bounded waits (log_*, check_*), claims and events (kube_*) and the
# simulated arrays (sim_*) come from the shell harness tests/lib (its README), which also loads
# tests/cluster/lib.sh (apt_install, require_cmd, pki_*, the pinned Kubernetes versions). Every
# name this suite defines starts with node_ (lib.sh, node.sh, cleanup.sh) or flashvol_
# (flashvol.sh), so none collides with the harness's.

NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Log lines say "[node HH:MM:SS]" unless an entry point that runs the node (quickstart) named itself.
export FLASHVOL_LOG_TAG="${FLASHVOL_LOG_TAG:-node}"
# shellcheck source=../lib/harness.sh
. "$NODE_DIR/../lib/harness.sh"

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
# The harness's default bound (kube_wait_bound, ...) is the node's.
CHECK_TIMEOUT="$NODE_TIMEOUT"

# --- verdicts ------------------------------------------------------------------------
# node_fail_later TEXT: the scenario fails, but only at node_scenario_end, so that what follows (the rest
# of the outcome, the cleanup) still runs and is reported.
NODE_LATER_FAILURES=()
node_fail_later() {
    printf '  FAIL (reported at the end): %s\n' "$*" >&2
    NODE_LATER_FAILURES+=("$*")
}

# --- the node's state file -----------------------------------------------------------
# node_save NAME...: appends NAME=value lines to $NODE_STATE/node.env (read by every script).
node_save() {
    local name
    for name in "$@"; do printf '%s=%q\n' "$name" "${!name}" >>"$NODE_STATE/node.env"; done
}

# node_load [STATE]: reads the state of a running node (default: FLASHVOL_NODE_STATE), points
# the harness's simulator queries (sim_*) at its simulator and puts the pinned kubectl first on
# PATH.
node_load() {
    NODE_STATE="${1:-${FLASHVOL_NODE_STATE:-}}"
    [[ -n "$NODE_STATE" && -f "$NODE_STATE/node.env" ]] ||
        log_die "no node state at '${NODE_STATE}' (start one with tests/node/up.sh; set FLASHVOL_NODE_STATE)"
    # shellcheck disable=SC1091
    . "$NODE_STATE/node.env"
    SIM_DIR="$NODE_STATE/sim"
    export KUBECONFIG FLASHVOL_NODE_STATE="$NODE_STATE"
    [[ -z "${NODE_K8S_BIN_DIR:-}" ]] || export PATH="$NODE_K8S_BIN_DIR:$PATH"
}

# --- pods ------------------------------------------------------------------------------
# node_make_namespace NS: a fresh namespace that takes pods.
node_make_namespace() {
    kube_make_namespace "$1"
    # Pods are refused until the ServiceAccount controller has made the namespace's default.
    check_within 30 "ServiceAccount $1/default" kubectl -n "$1" get serviceaccount default
}

# node_scenario_claims NS: a fresh namespace NS with two Bound claims, blk (pure-block,
# ReadWriteOnce) and fil (pure-file, ReadWriteMany), the pair most scenarios use. Sets blk_pv,
# fil_pv, blk_volume (the volume's name on its array) and blk_array (fa-a or fa-b).
node_scenario_claims() {
    node_make_namespace "$1"
    kube_create_pvc "$1" blk pure-block 1Gi
    kube_create_pvc "$1" fil pure-file 1Gi ReadWriteMany
    kube_wait_bound "$1" blk
    kube_wait_bound "$1" fil
    blk_pv="$(kube_pv_of "$1" blk)"
    fil_pv="$(kube_pv_of "$1" fil)"
    blk_volume="$(kube_array_name_of_pv "$blk_pv")"
    blk_array="$(sim_array_holding "$blk_volume")" || check_fail "$blk_volume is on no array"
}

# node_run_pod NS NAME SCRIPT [CLAIM[:ro]]... [-- POD_JSON_PATCH]: a pod of the test image running
# `sh -c SCRIPT`, each claim mounted at /data/<claim> (read-only for :ro). The pod is on this
# node (the scheduler places it; there is one node) and never pulls.
# POD_JSON_PATCH is merged into the pod (jq `*`), e.g. '{"spec":{"restartPolicy":"Never"}}'.
node_run_pod() {
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
node_pod_phase() { kubectl -n "$1" get pod "$2" -o 'jsonpath={.status.phase}' 2>/dev/null; }
node_pod_uid() { kubectl -n "$1" get pod "$2" -o 'jsonpath={.metadata.uid}'; }
node_pod_is_running() { [[ "$(node_pod_phase "$1" "$2")" == Running ]]; }
node_pod_phase_is() { [[ "$(node_pod_phase "$1" "$2")" == "$3" ]]; }
node_pod_gone() { ! kubectl -n "$1" get pod "$2" >/dev/null 2>&1; }
node_wait_pod_running() { check_within "${3:-$NODE_TIMEOUT}" "pod $1/$2 to run" node_pod_is_running "$1" "$2"; }
# node_pod_log_has NS POD TEXT: the pod's output has a line equal to TEXT.
node_pod_log_has() { grep -qxF -- "$3" <<<"$(kubectl -n "$1" logs "$2" 2>/dev/null)"; }
node_wait_pod_log() { check_within "${4:-$NODE_TIMEOUT}" "pod $1/$2 to print '$3'" node_pod_log_has "$1" "$2" "$3"; }
# node_pod_log_value NS POD KEY: the last "KEY=value" line the pod printed, value only.
node_pod_log_value() { kubectl -n "$1" logs "$2" 2>/dev/null | sed -n "s/^$3=//p" | tail -n 1; }
# node_pod_exec NS POD COMMAND...: runs COMMAND in the pod's container.
node_pod_exec() { local ns="$1" pod="$2"; shift 2; kubectl -n "$ns" exec "$pod" -c main -- "$@"; }
# node_pod_df_bytes NS POD DIR: the size of the file system at DIR as `df` in the pod's container shows it
# (printf, not print: mawk prints numbers past 2^31 as 3.15412e+09).
node_pod_df_bytes() { node_pod_exec "$1" "$2" df -P -k "$3" | awk 'NR == 2 { printf "%.0f\n", $2 * 1024 }'; }
# node_pod_restarts NS POD: how often kubelet restarted the container.
node_pod_restarts() { kubectl -n "$1" get pod "$2" -o 'jsonpath={.status.containerStatuses[0].restartCount}'; }
# node_delete_pod NS POD: `kubectl delete --wait` (kubelet has unmounted its volumes when it returns).
node_delete_pod() { kubectl -n "$1" delete pod "$2" --wait=true --timeout="${3:-${NODE_TIMEOUT}}s" >/dev/null; }
# node_failed_mount NS POD TEXT: waits (NODE_TIMEOUT at most) for a FailedMount event of the pod
# whose message contains TEXT (the claim's PV name, say), then prints the last such message. Not
# any FailedMount: kubelet's own volumes fail with their own, such as the service account token's
# "failed to sync configmap cache" in a namespace kubelet has just started to watch.
node_failed_mount() {
    local ns="$1" pod="$2" text="$3"
    has_it() { kube_events_for "$ns" "$pod" FailedMount | grep -qF -- "$text"; }
    check_within "$NODE_TIMEOUT" "a FailedMount event on pod $pod with '$text'" has_it
    kube_events_for "$ns" "$pod" FailedMount | grep -F -- "$text" | tail -n 1
}
# node_wait_flex_calls_of_pod_end UID [QUIET]: waits (NODE_TIMEOUT at most) until no driver call
# for the pod's volume dirs has run for QUIET seconds (3) in a row. A pod deleted while a mount
# of it was failing and retrying may still have a mount in flight when the API has forgotten the
# pod: kubelet lets that call finish, and unmounts it if it succeeded.
node_wait_flex_calls_of_pod_end() {
    local uid="$1" quiet="${2:-3}" since="$SECONDS" start="$SECONDS"
    while ((SECONDS - since < quiet)); do
        pgrep -f -- "pure~flex/flex [a-z]+ $NODE_KUBELET_ROOT/pods/$uid/" >/dev/null && since="$SECONDS"
        ((SECONDS - start <= NODE_TIMEOUT)) || check_fail "driver calls for pod $uid still run after ${NODE_TIMEOUT}s"
        sleep 0.1
    done
}

# --- what is on the node ---------------------------------------------------------------
# node_kubelet_volume_stat NAME NS CLAIM: the value of the kubelet metric NAME (e.g.
# kubelet_volume_stats_capacity_bytes) for the claim, read from kubelet's metrics endpoint
# through the apiserver's node proxy; empty while kubelet reports none. kubelet refreshes volume
# stats once per volumeStatsAggPeriod (1 min by default).
node_kubelet_volume_stat() {
    kubectl get --raw "/api/v1/nodes/$NODE_NAME/proxy/metrics" 2>/dev/null |
        awk -v m="$1" -v ns="namespace=\"$2\"" -v c="persistentvolumeclaim=\"$3\"" \
            '!done && index($1, m "{") == 1 && index($1, ns) && index($1, c) { printf "%.0f\n", $2; done = 1 }'
}
# node_pod_volume_dir NS POD PV: where kubelet asks the driver to mount the PV for that pod.
node_pod_volume_dir() { echo "$NODE_KUBELET_ROOT/pods/$(node_pod_uid "$1" "$2")/volumes/pure~flex/$3"; }
node_staging_dir() { echo "$NODE_KUBELET_ROOT/plugins/kubernetes.io/flexvolume/pure/flex/mounts/$1"; }
node_record_file() { echo "$NODE_KUBELET_ROOT/plugins/kubernetes.io/flexvolume/pure/flex/records/$1.json"; }

# node_mounts_of PV: this mount namespace's mount points that name the PV (staging and pod binds).
node_mounts_of() { awk -v pv="/$1" '{ if (index($5, pv) > 0) print $5 }' /proc/self/mountinfo; }
node_mount_count() { node_mounts_of "$1" | grep -c . || true; }
node_is_mount_point() { mountpoint -q "$1"; }
# node_mount_namespaces_with DEVICE: how many mount namespaces on the machine hold a mount of DEVICE
# (major:minor): the host's, and those of containers that still have it.
node_mount_namespaces_with() {
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
# node_device_of_mount DIR: major:minor of the file system mounted at DIR.
node_device_of_mount() { awk -v d="$1" '$5 == d { print $3; exit }' /proc/self/mountinfo; }
# node_loop_devices: loop devices whose backing file is a simulated volume of this node.
node_loop_devices() {
    losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v root="$NODE_STATE/" 'index($2, root) == 1 { print $1 }'
}
# node_flex_log: the driver's log file on this node (its node setting logFile).
node_flex_log() { cat "$NODE_FLEX_LOG" 2>/dev/null || true; }
node_flex_log_lines() { node_flex_log | wc -l; }
# node_flex_log_since LINE: the driver's log after line LINE (from node_flex_log_lines).
node_flex_log_since() { node_flex_log | tail -n +"$(($1 + 1))"; }
# node_flex_logged_since MARK TEXT: the driver logged a line containing TEXT after line MARK. (No
# `| grep -q` here or below: with pipefail, grep quitting early fails the writer with SIGPIPE.)
node_flex_logged_since() { grep -qF -- "$2" <<<"$(node_flex_log_since "$1")"; }
# node_flex_count_since MARK TEXT: how many lines containing TEXT the driver logged after line MARK.
node_flex_count_since() { grep -cF -- "$2" <<<"$(node_flex_log_since "$1")" || true; }

# --- /metrics, scraped as Prometheus scrapes a pod -----------------------------------------
# node_scrape_target NS SELECTOR PORT_NAME: http://<pod IP>:<port>/metrics of the Running pod
# matching SELECTOR, <port> being its container port named PORT_NAME: the target the prometheus-operator
# makes of a PodMonitor endpoint `port: PORT_NAME`, or of a ServiceMonitor whose Service has
# `targetPort: PORT_NAME`.
node_scrape_target() {
    kubectl -n "$1" get pods -l "$2" --field-selector status.phase=Running -o json | jq -er --arg port "$3" '
        .items | if length == 1 then .[0] else error("\(length) Running pods") end
        | (.spec.containers[].ports // [] | .[] | select(.name == $port) | .containerPort) as $p
        | "http://\(.status.podIP):\($p)/metrics"'
}
# node_annotated_target NS SELECTOR: the target a Prometheus that discovers pods by annotation
# makes of the Running pod matching SELECTOR: http://<pod IP>:<prometheus.io/port><prometheus.io/path>,
# when prometheus.io/scrape is "true".
node_annotated_target() {
    kubectl -n "$1" get pods -l "$2" --field-selector status.phase=Running -o json | jq -er '
        .items | if length == 1 then .[0] else error("\(length) Running pods") end
        | .metadata.annotations as $a | select($a["prometheus.io/scrape"] == "true")
        | "http://\(.status.podIP):\($a["prometheus.io/port"])\($a["prometheus.io/path"] // "/metrics")"'
}
# node_scrape URL FILE: GET URL with Prometheus' Accept header into FILE; fails unless the reply is
# 200 in a format Prometheus parses: OpenMetrics 1.0.0 (ending in "# EOF") or the text format 0.0.4.
node_scrape() {
    local headers="$2.headers"
    curl -fsS --max-time 10 -D "$headers" -o "$2" \
        -H 'Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1' "$1" ||
        return 1
    if grep -qi '^content-type: application/openmetrics-text; *version=1.0.0' "$headers"; then
        [[ "$(tail -n 1 "$2")" == "# EOF" ]]
    else
        grep -qi '^content-type: text/plain; *version=0.0.4' "$headers"
    fi
}
# node_sample FILE NAME [LABEL=VALUE...]: the value of the sample NAME in the scraped FILE whose
# labels include every LABEL=VALUE (the first such sample; nothing when there is none).
node_sample() {
    local file="$1" name="$2"
    shift 2
    awk -v name="$name" -v want="$(printf '%s\n' "$@")" '
        BEGIN { n = split(want, pairs, "\n") }
        /^#/ { next }
        {
            metric = $1; sub(/\{.*/, "", metric)
            if (metric != name) next
            labels = ""; if (index($0, "{") > 0) { labels = $0; sub(/^[^{]*\{/, ",", labels); sub(/\}[^}]*$/, ",", labels) }
            for (i = 1; i <= n; i++) {
                if (pairs[i] == "") continue
                split(pairs[i], kv, "=")
                if (index(labels, "," kv[1] "=\"" substr(pairs[i], length(kv[1]) + 2) "\",") == 0) next
            }
            print $NF; exit
        }' "$file"
}

# --- scenario frame ------------------------------------------------------------------
# Scenarios that stop kubelet (node.sh) start it again when they fail midway, so the next
# scenario finds a working node.
# node_scenario_begin TITLE: loads the node, prints the title; on failure prints what helps.
node_scenario_begin() {
    NODE_SCENARIO_TITLE="$1"
    node_load "${FLASHVOL_NODE_STATE:-}"
    printf '%s\n' "$1"
    trap node_scenario_on_exit EXIT
}

node_scenario_on_exit() {
    local rc="${1:-$?}"
    if declare -F node_kubelet_start >/dev/null && ! node_running kubelet; then
        log_info "starting kubelet again after the scenario"
        (node_kubelet_start && node_wait_ready) || log_info "kubelet did not come back"
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
        kubectl delete namespace "$ns" --wait=true --timeout=240s >/dev/null 2>&1 || log_info "namespace $ns is stuck"
    done
    awk -v r="$NODE_KUBELET_ROOT/" 'index($5, r) == 1 && $5 ~ /pure~flex|flexvolume\/pure/ { print length($5), $5 }' \
        /proc/self/mountinfo | sort -rn | cut -d' ' -f2- | while read -r mount_point; do
        umount -l "$mount_point" 2>/dev/null || true
    done
    rm -f "$(dirname "$(node_record_file x)")"/*.json
    for array in fa-a fa-b; do
        sim_admin "$array" state | jq -r '.connections[] | "\(.host) \(.volume)"' | while read -r host volume; do
            sim_fa_rest "$array" DELETE "host/$host/volume/$volume" >/dev/null || log_info "could not disconnect $volume from $host on $array"
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
    mapfile -t -O "${#left[@]}" left < <(find "$(dirname "$(node_record_file x)")" -name '*.json' -printf 'volume record %f\n' 2>/dev/null)
    for array in fa-a fa-b; do
        mapfile -t -O "${#left[@]}" left < <(sim_admin "$array" state | jq -r '.connections[] | "connection \(.host) -> \(.volume) on '"$array"'"')
    done
    ((${#left[@]} == 0)) && return 0
    printf '%s\n' "${left[@]}"
    return 1
}

# --- pod scripts (busybox sh) -----------------------------------------------------------
# NODE_WRITE_SCRIPT: writes 4 MiB of random data to every mounted claim that has none yet (a
# restarted container must not overwrite what it wrote before), syncs, prints
# "sha-<claim>=<sha256>" per claim and "ready", then waits to be stopped.
# shellcheck disable=SC2016 # expanded by the pod's shell
NODE_WRITE_SCRIPT='set -e
for d in /data/*; do [ -e "$d/payload" ] || dd if=/dev/urandom of="$d/payload" bs=1M count=4 2>/dev/null; done
sync
for d in /data/*; do echo "sha-${d##*/}=$(sha256sum "$d/payload" | cut -d" " -f1)"; done
echo ready
exec sleep 3600'
# NODE_READ_SCRIPT: prints "sha-<claim>=<sha256>" of every claim's payload and "ready", then waits.
# shellcheck disable=SC2016
NODE_READ_SCRIPT='for d in /data/*; do echo "sha-${d##*/}=$(sha256sum "$d/payload" | cut -d" " -f1)"; done
echo ready
exec sleep 3600'

# node_claims_released NS CLAIM...: deletes the claims and waits for their PVs (and so their array
# volumes) to be gone.
node_claims_released() {
    local ns="$1" claim pvs=() pv
    shift
    for claim in "$@"; do pvs+=("$(kube_pv_of "$ns" "$claim")"); done
    kubectl -n "$ns" delete pvc "$@" --wait=false >/dev/null
    for pv in "${pvs[@]}"; do
        [[ -z "$pv" ]] || check_within "$NODE_TIMEOUT" "PV $pv to be deleted" kube_pv_gone "$pv"
    done
}

# node_scenario_end NS: the namespace goes, and nothing of any claim is left on the node.
node_scenario_end() {
    kubectl delete namespace "$1" --wait=true --timeout="${NODE_TIMEOUT}s" >/dev/null ||
        check_fail "namespace $1 was not deleted within ${NODE_TIMEOUT}s"
    local left
    left="$(node_is_clean)" || check_fail "left on the node after the scenario: $left"
    log_step "nothing left on the node: no flex mount, no loop device, no array connection"
    ((${#NODE_LATER_FAILURES[@]} == 0)) || check_fail "$(printf '%s; ' "${NODE_LATER_FAILURES[@]}")"
}

# node_mounts_at DIR: how many mounts are stacked at exactly DIR.
node_mounts_at() { awk -v d="$1" '$5 == d { n++ } END { print n + 0 }' /proc/self/mountinfo; }
