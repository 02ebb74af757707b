# shellcheck shell=bash
# Provisioner processes (part of harness.sh): flashvol-provisioner started as the shipped
# Deployment would run it (its args and env, the ServiceAccount's token), several at once by name
# (pids/provisioner-NAME, logs/provisioner-NAME.log), stopped or SIGKILLed; and the leader Lease.
# Scenarios share one provisioner named "main".

# The Lease the replicas elect their leader with.
PROV_LEASE=pure-provisioner
# The prefix of our array object names (the default of PURE_K8S_NAMESPACE): PREFIX-<PV name>.
# shellcheck disable=SC2034 # read by sim.sh, kube.sh and the scenarios
PROV_NAME_PREFIX=k8s

# prov_deployment_json: the shipped Deployment as the cluster holds it; prov_start takes the
# container's args and literal env from it, so the local process runs with what the pod would get.
prov_deployment_json() {
    kubectl -n "$KUBE_NAMESPACE" get deployment "$KUBE_PROVISIONER" -o json
}

# prov_container_env DEPLOYMENT_JSON: the container's literal env, NAME=VALUE a line, with
# PURE_DISCOVERY_CONF pointing at the Secret's pure.json as it is mounted in the pod.
prov_container_env() {
    local var
    while IFS= read -r var; do
        case "$var" in
        PURE_DISCOVERY_CONF=*) echo "PURE_DISCOVERY_CONF=$KUBE_PURE_JSON" ;;
        *) echo "$var" ;;
        esac
    done < <(jq -r '.spec.template.spec.containers[0].env[] | select(.value != null) | "\(.name)=\(.value)"' <<<"$1")
}

# prov_snapshot_cli ARG...: PSO's snapshot CLI as `kubectl exec <provisioner pod> -- snapshot
# ARG...` runs it: the provisioner binary started under the name `snapshot`, with the
# container's env only (no --config), as the ServiceAccount. Its stdout, stderr and exit status
# are the command's.
prov_snapshot_cli() {
    local deployment envs=()
    deployment="$(prov_deployment_json)" || check_fail "cannot read Deployment $KUBE_PROVISIONER"
    mapfile -t envs < <(prov_container_env "$deployment")
    # shellcheck disable=SC2016 # expanded by the inner bash, which execs under the name snapshot
    env -i PATH="$PATH" HOME="$WORKDIR" KUBECONFIG="$KUBE_SA_KUBECONFIG" POD_NAMESPACE="$KUBE_NAMESPACE" \
        "${envs[@]}" bash -c 'exec -a snapshot "$0" "$@"' "$WORKDIR_BIN/flashvol-provisioner" "$@"
}

# prov_start NAME [EXTRA_ARG...]: runs flashvol-provisioner as the shipped Deployment would (its
# args and env, --config pointing at the Secret's pure.json, POD_NAMESPACE and POD_NAME set as
# the downward API would), with the ServiceAccount kubeconfig KUBE_SA_KUBECONFIG. The metrics
# address is 127.0.0.1:<free port>, recorded in pids/provisioner-NAME.http.
prov_start() {
    local name="$1"
    shift
    local deployment port args=() envs=() arg
    deployment="$(prov_deployment_json)" || check_fail "cannot read Deployment $KUBE_PROVISIONER"
    port="$(host_free_port 18080)"
    while IFS= read -r arg; do
        case "$arg" in
        --config=*) args+=("--config=$KUBE_PURE_JSON") ;;
        --http-address=*) args+=("--http-address=127.0.0.1:$port") ;;
        *) args+=("$arg") ;;
        esac
    done < <(jq -r '.spec.template.spec.containers[0].args[]' <<<"$deployment")
    mapfile -t envs < <(prov_container_env "$deployment")
    printf '%q ' "${args[@]}" "$@" >"$WORKDIR/logs/provisioner-$name.cmdline"
    # Started from a subshell so this shell does not track it as a job (no "Killed" notices).
    (
        env -i PATH="$PATH" HOME="$WORKDIR" KUBECONFIG="$KUBE_SA_KUBECONFIG" \
            POD_NAMESPACE="$KUBE_NAMESPACE" POD_NAME="$name" "${envs[@]}" \
            setsid "$WORKDIR_BIN/flashvol-provisioner" "${args[@]}" "$@" \
            </dev/null >>"$WORKDIR/logs/provisioner-$name.log" 2>&1 &
        echo "$!" >"$WORKDIR/pids/provisioner-$name"
    )
    echo "127.0.0.1:$port" >"$WORKDIR/pids/provisioner-$name.http"
    check_within 30 "provisioner $name to serve /healthz on 127.0.0.1:$port" \
        curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz"
}

prov_pid() { cat "$WORKDIR/pids/provisioner-$1" 2>/dev/null; }
prov_log() { echo "$WORKDIR/logs/provisioner-$1.log"; }
prov_http() { cat "$WORKDIR/pids/provisioner-$1.http"; }

# prov_running NAME: the recorded pid is alive and runs our binary.
prov_running() {
    local pid
    pid="$(prov_pid "$1")" || return 1
    workdir_owns "$pid" "$WORKDIR_BIN/flashvol-provisioner"
}

# prov_signal NAME SIGNAL: signals the process and waits (bounded) until it is gone.
prov_signal() {
    workdir_signal "$WORKDIR/pids/provisioner-$1" "$WORKDIR_BIN/flashvol-provisioner" "$2"
    rm -f "$WORKDIR/pids/provisioner-$1.http"
}
prov_stop() { prov_signal "$1" TERM; }
prov_kill() { prov_signal "$1" KILL; }

# prov_kill_all: SIGKILL to every provisioner started in this work dir (teardown).
prov_kill_all() {
    local pidfile
    for pidfile in "$WORKDIR"/pids/provisioner-*; do
        [[ -f "$pidfile" && "$pidfile" != *.http ]] || continue
        prov_kill "${pidfile##*/provisioner-}" || true
    done
}

# prov_leader_gauge NAME: the process's flashvol_leader gauge (1 leads, 0 stands by); nothing
# when it does not answer.
prov_leader_gauge() {
    curl -fsS --max-time 2 "http://$(prov_http "$1")/metrics" 2>/dev/null | sed -n 's/^flashvol_leader //p'
}

# prov_leads NAME: the process says it leads and the Lease names a process started as NAME.
prov_leads() { [[ "$(prov_leader_gauge "$1")" == 1 ]] && prov_lease_held_by "$1"; }

# prov_ensure_main: the scenarios share one provisioner named "main"; a scenario that stops it
# gets it back through this (the suite's runner calls it between scenarios).
prov_ensure_main() {
    prov_running main && return 0
    prov_start main
    check_within "$CHECK_TIMEOUT" "provisioner main to lead (Lease $PROV_LEASE)" prov_leads main
}

# prov_lease_holder: the Lease's holderIdentity (admin view).
prov_lease_holder() {
    kubectl -n "$KUBE_NAMESPACE" get lease "$PROV_LEASE" -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null
}

# prov_lease_held_by NAME: identities start with POD_NAME, which prov_start sets to NAME.
prov_lease_held_by() { [[ "$(prov_lease_holder)" == "$1"_* ]]; }
