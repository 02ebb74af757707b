#!/usr/bin/env bash
# Smoke test of the test control plane. Proves, against the real controllers:
#   - the pinned versions run (kubectl, kube-apiserver, etcd versions are printed),
#   - the controller-manager loads FlexVolume drivers from the flex plugin dir we give it,
#   - the PV controller binds a hand-made flexVolume PV (driver pure/flex) to its PVC,
#   - it marks a PVC of an externally provisioned class for that provisioner
#     (volume.kubernetes.io/storage-provisioner), which is what our provisioner watches,
#   - RBAC is enforced for a ServiceAccount kubeconfig minted by sa-kubeconfig.sh,
#   - the expand controller grows a flexVolume PV whose claim asks for more,
#   - kube-scheduler considers pods (one that fits no node gets its FailedScheduling event),
#   - with-cluster.sh stops every process afterwards and passes the command's exit status on,
#     also when interrupted (Ctrl-C, SIGTERM) during start-up or while the command runs.
#
# Usage: smoke.sh            (builds the binaries on first use; see README.md)
# Ends with "smoke: N passed, M failed" and exits non-zero when anything failed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"

NAMESPACE=flashvol-smoke
WAIT=90s

# check DESCRIPTION COMMAND...: runs COMMAND, records and prints the outcome.
check() {
    local description="$1"
    shift
    if "$@" >"$SMOKE_WORK/last-check.out" 2>&1; then
        printf 'ok   - %s\n' "$description"
        echo pass >>"$SMOKE_WORK/results"
    else
        printf 'FAIL - %s\n' "$description"
        sed 's/^/       /' "$SMOKE_WORK/last-check.out" | tail -n 20
        echo fail >>"$SMOKE_WORK/results"
    fi
}

# --- checks that run inside the cluster (with-cluster.sh smoke.sh --inside) ---------
jsonpath() { kubectl get "$@" 2>/dev/null; }

versions_match_pin() {
    local server client
    server="$(kubectl version -o json | sed -n '/"serverVersion"/,/}/s/.*"gitVersion": "\([^"]*\)".*/\1/p')"
    client="$(kubectl version -o json | sed -n '/"clientVersion"/,/}/s/.*"gitVersion": "\([^"]*\)".*/\1/p')"
    echo "kube-apiserver $server, kubectl $client, expected $FLASHVOL_K8S_VERSION"
    [[ "$server" == "$FLASHVOL_K8S_VERSION" && "$client" == "$FLASHVOL_K8S_VERSION" ]]
}

static_pv_binds() {
    kubectl apply -f - <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: smoke-static}
provisioner: example.com/none
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: static-claim, namespace: $NAMESPACE}
spec:
  storageClassName: smoke-static
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: smoke-static-pv}
spec:
  storageClassName: smoke-static
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: $NAMESPACE, name: static-claim}
  flexVolume:
    driver: pure/flex
    fsType: ext4
    options: {backend: block, volumeName: k8s-smoke}
EOF
    kubectl wait -n "$NAMESPACE" pvc/static-claim --for=jsonpath='{.status.phase}'=Bound --timeout="$WAIT"
    kubectl wait pv/smoke-static-pv --for=jsonpath='{.status.phase}'=Bound --timeout="$WAIT"
    local claim_uid bound_uid volume_name
    claim_uid="$(jsonpath -n "$NAMESPACE" pvc/static-claim -o 'jsonpath={.metadata.uid}')"
    bound_uid="$(jsonpath pv/smoke-static-pv -o 'jsonpath={.spec.claimRef.uid}')"
    volume_name="$(jsonpath -n "$NAMESPACE" pvc/static-claim -o 'jsonpath={.spec.volumeName}')"
    echo "claim uid $claim_uid, PV claimRef uid $bound_uid, claim volumeName $volume_name"
    [[ -n "$claim_uid" && "$claim_uid" == "$bound_uid" && "$volume_name" == smoke-static-pv ]]
}

dynamic_claim_is_handed_to_external_provisioner() {
    kubectl apply -f - <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: smoke-external}
provisioner: pure-provisioner
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: dynamic-claim, namespace: $NAMESPACE}
spec:
  storageClassName: smoke-external
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
EOF
    kubectl wait -n "$NAMESPACE" pvc/dynamic-claim \
        --for=jsonpath='{.metadata.annotations.volume\.kubernetes\.io/storage-provisioner}'=pure-provisioner \
        --timeout="$WAIT"
    local phase
    phase="$(jsonpath -n "$NAMESPACE" pvc/dynamic-claim -o 'jsonpath={.status.phase}')"
    echo "dynamic-claim phase $phase (no provisioner runs, so it must stay Pending)"
    [[ "$phase" == Pending ]]
}

service_account_kubeconfig_has_exactly_its_rbac() {
    kubectl apply -f - <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: claim-reader, namespace: $NAMESPACE}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: claim-reader, namespace: $NAMESPACE}
rules:
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: claim-reader, namespace: $NAMESPACE}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: claim-reader}
subjects:
- {kind: ServiceAccount, name: claim-reader, namespace: $NAMESPACE}
EOF
    local sa_config="$SMOKE_WORK/claim-reader.kubeconfig" denied
    "$here/sa-kubeconfig.sh" "$NAMESPACE" claim-reader --duration 10m --output "$sa_config"
    KUBECONFIG="$sa_config" kubectl get pvc static-claim -o name || return 1
    # Outside its Role: secrets in its namespace, and cluster-scoped PVs. The refusal names
    # the user, which shows who the token authenticates as (`kubectl auth whoami` would
    # need kubectl >= 1.27; this works for the older pin too).
    if denied="$(KUBECONFIG="$sa_config" kubectl get secrets 2>&1)"; then
        echo "listing secrets was allowed"
        return 1
    fi
    echo "$denied"
    [[ "$denied" == *"User \"system:serviceaccount:$NAMESPACE:claim-reader\" cannot list"* ]] || return 1
    if KUBECONFIG="$sa_config" kubectl get pv 2>&1; then
        echo "listing persistentvolumes was allowed"
        return 1
    fi
}

# A FlexVolume driver that records its call-outs, installed before the cluster starts (as
# our installer does): proves the controller-manager looks in FLASHVOL_FLEX_PLUGIN_DIR.
install_recording_flex_driver() {
    local dir="$1/smoke~recorder"
    mkdir -p "$dir"
    cat >"$dir/recorder" <<'DRIVER'
#!/bin/sh
echo "$*" >>"$(dirname "$0")/calls.log"
case "$1" in
init) echo '{"status":"Success","capabilities":{"attach":false}}' ;;
expandvolume) echo '{"status":"Success"}' ;;
*) echo '{"status":"Not supported"}' ;;
esac
DRIVER
    chmod 755 "$dir/recorder"
}

controller_manager_probes_flex_dir() {
    local calls="$FLASHVOL_FLEX_PLUGIN_DIR/smoke~recorder/calls.log" waited=0
    # The attach/detach controller is the one that loads FlexVolume drivers in the
    # controller-manager (older releases only once a pod needs one): a pod on a node whose
    # attach/detach is controller-managed makes it look. No kubelet runs, so the node
    # never becomes Ready and the pod never starts.
    # Pods are refused until the ServiceAccount controller has made the namespace's default.
    until kubectl get -n "$NAMESPACE" serviceaccount/default >/dev/null 2>&1 || ((waited > 600)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    waited=0
    kubectl apply -f - <<EOF
apiVersion: v1
kind: Node
metadata:
  name: smoke-node
  annotations: {volumes.kubernetes.io/controller-managed-attach-detach: "true"}
---
apiVersion: v1
kind: Pod
metadata: {name: flex-user, namespace: $NAMESPACE}
spec:
  nodeName: smoke-node
  containers: [{name: main, image: registry.invalid/none}]
  volumes: [{name: data, flexVolume: {driver: smoke/recorder}}]
EOF
    until grep -qx init "$calls" 2>/dev/null || ((waited > 600)); do sleep 0.1; waited=$((waited + 1)); done
    echo "call-outs of smoke/recorder: $(tr '\n' ';' <"$calls" 2>/dev/null)"
    grep -qx init "$calls"
}

expander_grows_flex_pv() {
    kubectl apply -f - <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: smoke-expandable}
provisioner: example.com/none
allowVolumeExpansion: true
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: expand-claim, namespace: $NAMESPACE}
spec:
  storageClassName: smoke-expandable
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: smoke-expand-pv}
spec:
  storageClassName: smoke-expandable
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  claimRef: {namespace: $NAMESPACE, name: expand-claim}
  flexVolume: {driver: smoke/recorder}
EOF
    kubectl wait -n "$NAMESPACE" pvc/expand-claim --for=jsonpath='{.status.phase}'=Bound --timeout="$WAIT"
    kubectl patch -n "$NAMESPACE" pvc/expand-claim -p '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}'
    kubectl wait pv/smoke-expand-pv --for=jsonpath='{.spec.capacity.storage}'=2Gi --timeout="$WAIT"
    # FlexVolume is "kubelet-expandable": the controller-manager only records the new size
    # (it does not call the driver's expandvolume; verified on v1.24 and v1.37), the file
    # system resize is the node's part, and no kubelet runs here.
    kubectl get -n "$NAMESPACE" pvc/expand-claim -o 'jsonpath={.status.conditions[*].type}'
}

# No kubelet runs, so no node fits a pod that asks for a label nobody has: the scheduler's
# FailedScheduling event proves it runs, is authorized and watches pods.
scheduler_considers_pods() {
    kubectl apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: unschedulable, namespace: $NAMESPACE}
spec:
  nodeSelector: {flashvol.test/no-such-label: "true"}
  containers: [{name: main, image: registry.invalid/none}]
EOF
    local waited=0 events=""
    until [[ -n "$events" ]] || ((waited > 600)); do
        sleep 0.1
        waited=$((waited + 1))
        events="$(kubectl get events -n "$NAMESPACE" \
            --field-selector involvedObject.name=unschedulable,reason=FailedScheduling \
            -o 'jsonpath={range .items[*]}{.source.component}{.reportingComponent}: {.message}{"\n"}{end}')"
    done
    echo "FailedScheduling events: $events"
    [[ "$events" == *default-scheduler* ]]
}

inside() {
    log "versions:"
    kubectl version >&2
    "$FLASHVOL_K8S_BIN_DIR/etcd" --version | sed -n 1p >&2
    # Let the outer run verify that every process is gone after teardown.
    cat "$FLASHVOL_CLUSTER_STATE"/pids/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler} >"$SMOKE_WORK/pids"
    kubectl create namespace "$NAMESPACE" >/dev/null

    check "kubectl and kube-apiserver run the pinned $FLASHVOL_K8S_VERSION" versions_match_pin
    check "kube-controller-manager probes the drivers in the flex plugin dir" controller_manager_probes_flex_dir
    check "PV controller binds a pre-bound pure/flex PV to its claim" static_pv_binds
    check "PV controller marks a claim of an external class for pure-provisioner" \
        dynamic_claim_is_handed_to_external_provisioner
    check "ServiceAccount kubeconfig has exactly the RBAC of its Role" \
        service_account_kubeconfig_has_exactly_its_rbac
    check "expand controller accepts a flexVolume PV resize (PV capacity grows)" expander_grows_flex_pv
    check "kube-scheduler considers pods (FailedScheduling for one no node fits)" scheduler_considers_pods
    # A failure makes with-cluster.sh print each component's log tail.
    ! grep -q '^fail$' "$SMOKE_WORK/results"
}

# --- outer run ---------------------------------------------------------------------
# none_running PID...: every PID has exited. A zombie counts as exited: it holds no port or
# file any more and only waits for init, which here may reap it a moment later.
none_running() {
    local pid stat
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        stat="${stat##*) }"
        if [[ "${stat:0:1}" != Z ]]; then
            echo "pid $pid is still running: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
            return 1
        fi
    done
}

cluster_processes_are_gone() {
    [[ -s "$SMOKE_WORK/pids" ]] || { echo "the inside run recorded no pids"; return 1; }
    # shellcheck disable=SC2046
    none_running $(cat "$SMOKE_WORK/pids")
}

failing_command_status_is_returned_and_cluster_stopped() {
    local rc=0 state_dir
    # shellcheck disable=SC2016 # expanded by the inner bash, inside the cluster
    FLASHVOL_KEEP_STATE=0 "$here/with-cluster.sh" bash -c \
        'cat "$FLASHVOL_CLUSTER_STATE"/pids/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler} >"$0"; echo "$FLASHVOL_CLUSTER_STATE" >"$0.state"; exit 7' \
        "$SMOKE_WORK/failing-pids" || rc=$?
    state_dir="$(cat "$SMOKE_WORK/failing-pids.state")"
    echo "with-cluster.sh returned $rc"
    # A failed command keeps the state dir for inspection; remove it now.
    [[ -d "$state_dir/logs" ]] || { echo "state dir $state_dir was not kept"; return 1; }
    rm -rf "$state_dir"
    # shellcheck disable=SC2046
    ((rc == 7)) && none_running $(cat "$SMOKE_WORK/failing-pids")
}

# no_process_uses DIR: nothing runs with DIR in its command line (every component gets
# paths of its state dir as arguments).
no_process_uses() {
    local pids
    pids="$(pgrep -f -- "$1" || true)"
    [[ -z "$pids" ]] || { echo "still running with $1: $pids"; return 1; }
}

# interrupt_check SIGNAL WHOM WHEN EXPECTED_STATUS: starts with-cluster.sh (in its own
# session, as a terminal would) with a command that sleeps, sends SIGNAL to WHOM (group:
# the whole process group, as Ctrl-C does; script: with-cluster.sh alone, as a CI timeout
# may) once WHEN (starting: kube-apiserver was launched; running: the command runs), and
# expects EXPECTED_STATUS with no process of that cluster left, the command included.
interrupt_check() {
    local signal="$1" whom="$2" when="$3" expected="$4" state_dir pid rc=0 waited=0 marker
    state_dir="$SMOKE_WORK/interrupt-$signal-$whom-$when"
    marker="$SMOKE_WORK/command-started-$signal-$whom-$when"
    # A background job of this script would start with SIGINT ignored, unlike a command
    # typed at a terminal: env --default-signal restores it.
    # shellcheck disable=SC2016 # expanded by the inner bash
    FLASHVOL_CLUSTER_STATE="$state_dir" env --default-signal=INT setsid "$here/with-cluster.sh" \
        bash -c 'echo "$$" >"$0"; exec sleep 120' "$marker" </dev/null &
    pid=$!
    if [[ "$when" == starting ]]; then
        until [[ -f "$state_dir/pids/kube-apiserver" ]] || ((waited > 600)); do sleep 0.1; waited=$((waited + 1)); done
    else
        until [[ -s "$marker" ]] || ((waited > 1200)); do sleep 0.1; waited=$((waited + 1)); done
    fi
    if [[ "$whom" == group ]]; then kill "-$signal" -- "-$pid"; else kill "-$signal" "$pid"; fi
    waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < 600)); do sleep 0.1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        echo "with-cluster.sh still runs 60s after SIG$signal; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    echo "with-cluster.sh exited $rc after SIG$signal to the $whom while $when"
    local ok=true command_pid=""
    no_process_uses "$state_dir" || ok=false
    [[ -f "$marker" ]] && command_pid="$(cat "$marker")"
    if [[ -n "$command_pid" ]]; then
        none_running "$command_pid" || ok=false
    fi
    [[ "$when" == running || -z "$command_pid" ]] || { echo "the command ran although start was interrupted"; ok=false; }
    # Whatever happened, leave nothing behind for the next check.
    [[ -d "$state_dir/pids" ]] && "$here/down.sh" "$state_dir" >/dev/null 2>&1
    if [[ -n "$command_pid" ]] && grep -q sleep "/proc/$command_pid/cmdline" 2>/dev/null; then
        kill -KILL "$command_pid"
    fi
    rm -rf "$state_dir"
    $ok && ((rc == expected))
}

outer() {
    require_cmd pgrep procps
    # Every check starts its own cluster in a fresh state dir.
    unset FLASHVOL_CLUSTER_STATE FLASHVOL_FLEX_PLUGIN_DIR
    SMOKE_WORK="$(mktemp -d "${TMPDIR:-/tmp}/flashvol-smoke.XXXXXX")"
    export SMOKE_WORK
    trap 'rm -rf "$SMOKE_WORK"' EXIT
    : >"$SMOKE_WORK/results"
    local start=$SECONDS rc=0
    # Builds (first run only) happen before any timing that matters.
    "$here/build.sh" >&2
    install_recording_flex_driver "$SMOKE_WORK/flexvolume"
    FLASHVOL_FLEX_PLUGIN_DIR="$SMOKE_WORK/flexvolume" "$here/with-cluster.sh" "$here/smoke.sh" --inside || rc=$?
    check "the smoke checks ran inside a cluster (with-cluster.sh exit $rc)" test "$rc" -eq 0
    check "with-cluster.sh stopped etcd, kube-apiserver, kube-controller-manager and kube-scheduler" \
        cluster_processes_are_gone
    check "with-cluster.sh returns the command's exit status and stops the cluster" \
        failing_command_status_is_returned_and_cluster_stopped
    check "Ctrl-C while the command runs stops it and the cluster (status 130)" \
        interrupt_check INT group running 130
    check "SIGTERM to with-cluster.sh alone while the command runs stops both (status 143)" \
        interrupt_check TERM script running 143
    check "SIGTERM to with-cluster.sh during start-up stops what was started (status 143)" \
        interrupt_check TERM script starting 143
    local passed failed
    passed="$(grep -c '^pass$' "$SMOKE_WORK/results" || true)"
    failed="$(grep -c '^fail$' "$SMOKE_WORK/results" || true)"
    log "smoke took $((SECONDS - start))s"
    echo "smoke: $passed passed, $failed failed"
    ((failed == 0 && passed > 0))
}

case "${1:-}" in
--inside) inside ;;
"") outer ;;
-h | --help) usage "$0" ;;
*) die "unknown argument '$1' (see --help)" ;;
esac
