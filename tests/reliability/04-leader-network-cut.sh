#!/usr/bin/env bash
# Two provisioner replicas, each reaching the API server through its own TCP proxy (socat) that
# this scenario controls. The leader's proxy is cut (the whole socat process group killed: the
# listener, so new connections are refused, and every forked relay, so established connections
# die). The old leader must stop acting (log line "stepping down" / "lost", flashvol_leader 0 or
# process gone) BEFORE the standby takes the Lease over, so there are never two active writers;
# claims created during and after the cut are all Bound exactly once; with the proxy restored,
# the old leader (restarted if it exited, as the provisioner README says it does) is a healthy
# standby. Prints the failover time: cut -> standby holds the Lease -> first claim created after
# the cut Bound. Lease 6 s, renew deadline 4 s, retry 1 s.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "leader's API connection cut: it stops before the standby takes over; claims Bound once"

require_cmd socat socat
ns=rel-netcut
fast_lease=(--lease-duration-seconds=6 --renew-deadline-seconds=4 --retry-period-seconds=1)
kube_make_namespace "$ns"

# --- per-replica API proxies ---------------------------------------------------------
api_server="$(kubectl config view --kubeconfig "$KUBE_SA_KUBECONFIG" --raw -o 'jsonpath={.clusters[0].cluster.server}')"
[[ "$api_server" =~ ^https://127\.0\.0\.1:([0-9]+)$ ]] ||
    check_fail "the ServiceAccount kubeconfig's server is not https://127.0.0.1:<port>: $api_server"
api_port="${BASH_REMATCH[1]}"

# proxy_start NAME PORT: socat 127.0.0.1:PORT -> the API server, in its own process group (one
# forked child per connection, all in that group); the pid (= group id) goes to pids/proxy-NAME.
proxy_start() {
    local name="$1" port="$2" pid
    (
        setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$api_port" \
            </dev/null >>"$WORKDIR/logs/proxy-$name.log" 2>&1 &
        echo "$!" >"$WORKDIR/pids/proxy-$name"
    )
    pid="$(cat "$WORKDIR/pids/proxy-$name")"
    check_within 10 "proxy $name to listen on 127.0.0.1:$port" proxy_answers "$port"
    [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]] || check_fail "proxy $name (pid $pid) does not lead its own process group"
}
proxy_answers() { curl -sk --max-time 2 -o /dev/null "https://127.0.0.1:$1/healthz"; }
proxy_group_alive() { pgrep -g "$1" >/dev/null 2>&1; }

# proxy_cut NAME: SIGKILL to the proxy's whole process group: the listener and every relay.
proxy_cut() {
    local pgid
    pgid="$(cat "$WORKDIR/pids/proxy-$1" 2>/dev/null)" || return 0
    # Only a group whose leader is still our socat (never a recycled pid).
    if [[ "$(readlink "/proc/$pgid/exe" 2>/dev/null)" == */socat ]] || proxy_group_alive "$pgid"; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
        local waited=0
        while proxy_group_alive "$pgid" && ((waited < 50)); do sleep 0.1; waited=$((waited + 1)); done
        ! proxy_group_alive "$pgid" || { log_info "proxy $1: process group $pgid survived SIGKILL"; return 1; }
    fi
    rm -f "$WORKDIR/pids/proxy-$1"
}

# replica_kubeconfig NAME PORT: the ServiceAccount kubeconfig with its server moved to the proxy
# (same 127.0.0.1 address, so the API server's certificate still validates).
replica_kubeconfig() {
    local file="$WORKDIR/kubeconfig-$1"
    (umask 077 && cp "$KUBE_SA_KUBECONFIG" "$file")
    kubectl config set-cluster flashvol --kubeconfig "$file" --server "https://127.0.0.1:$2" >/dev/null
    echo "$file"
}

start_replica() { KUBE_SA_KUBECONFIG="$(replica_kubeconfig "$1" "$2")" prov_start "$1" "${fast_lease[@]}"; }

# Clean up: replicas and proxies are ours; the runner restarts the shared provisioner.
trap 'rc=$?; prov_kill replica-1 || true; prov_kill replica-2 || true
      proxy_cut replica-1 || true; proxy_cut replica-2 || true; scenario_on_exit "$rc"' EXIT

# millis TIMESTAMP: env_logger's RFC 3339 stamp ([2026-11-28T00:49:08.356Z ...) in epoch ms.
millis() { date -u -d "$1" +%s%3N; }
# first_log_ms NAME REGEX: epoch ms of the first log line of replica NAME matching REGEX.
first_log_ms() {
    local line
    line="$(grep -E -m1 -- "$2" "$(prov_log "$1")" || true)"
    [[ -n "$line" ]] || return 1
    millis "$(sed -E 's/^\[([^ ]+) .*/\1/' <<<"$line")"
}
now_ms() { date -u +%s%3N; }
seconds_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", (b - a) / 1000}'; }
# stopped_acting NAME: the process is gone, or it answers flashvol_leader 0 (no answer from a
# live process counts as still acting).
stopped_acting() { ! prov_running "$1" || [[ "$(prov_leader_gauge "$1")" == 0 ]]; }

# --- two replicas, each behind its own proxy ----------------------------------------------
port_1="$(host_free_port 26443)"
proxy_start replica-1 "$port_1"
port_2="$(host_free_port $((port_1 + 1)))"
proxy_start replica-2 "$port_2"
log_step "API server 127.0.0.1:$api_port; replica-1 via proxy :$port_1, replica-2 via proxy :$port_2"

log_step "stop the shared provisioner; start replica-1, wait until it leads, then replica-2"
prov_stop main
start_replica replica-1 "$port_1"
check_within 60 "replica-1 to lead" prov_leads replica-1
start_replica replica-2 "$port_2"
reports_standby() { [[ "$(prov_leader_gauge "$1")" == 0 ]]; }
check_within 30 "replica-2 to stand by (flashvol_leader 0)" reports_standby replica-2
leader=replica-1 standby=replica-2 leader_port="$port_1"

kube_create_pvc "$ns" before-cut pure-block 1Gi
kube_wait_bound "$ns" before-cut
prov_lease_held_by "$leader" || check_fail "the Lease moved to $(prov_lease_holder) before the cut"
log_step "before-cut Bound through $leader's proxy; Lease holder $(prov_lease_holder)"

# --- the cut --------------------------------------------------------------------------
log_step "cut $leader's proxy (SIGKILL to socat's process group)"
cut_ms="$(now_ms)"
proxy_cut "$leader" || check_fail "the proxy of $leader survived the cut"
proxy_answers "$leader_port" && check_fail "the cut proxy on :$leader_port still accepts connections"
kube_create_claims "$ns" 4 during-cut
first_claim=during-cut-0

# Poll about every 100 ms (plus the kubectl round trips): within one round the Lease is read
# first, then the old leader: a round that sees the standby holding the Lease while the old
# leader still says it leads has caught two active writers.
old_stopped_ms="" lease_moved_ms="" bound_ms=""
deadline=$((SECONDS + 60))
while [[ -z "$old_stopped_ms" || -z "$lease_moved_ms" || -z "$bound_ms" ]]; do
    ((SECONDS < deadline)) || check_fail "failover incomplete after 60s: old leader stopped: ${old_stopped_ms:-no}, Lease moved: ${lease_moved_ms:-no}, $first_claim Bound: ${bound_ms:-no}"
    holder="$(prov_lease_holder)" || holder=""
    if [[ -z "$lease_moved_ms" && "$holder" == "$standby"_* ]]; then lease_moved_ms="$(now_ms)"; fi
    if [[ -z "$old_stopped_ms" ]] && stopped_acting "$leader"; then old_stopped_ms="$(now_ms)"; fi
    if [[ -n "$lease_moved_ms" && -z "$old_stopped_ms" ]]; then
        check_fail "TWO ACTIVE WRITERS: $standby holds the Lease while $leader is alive and does not report flashvol_leader 0"
    fi
    if [[ -z "$bound_ms" ]] && kube_pvc_bound "$ns" "$first_claim"; then bound_ms="$(now_ms)"; fi
    sleep 0.1
done

# The same order from the processes' own log stamps (milliseconds, one clock).
down_ms="$(first_log_ms "$leader" 'stepping down|lost to another replica|lost the leader lease')" ||
    check_fail "$leader's log never says it stopped leading (expected 'stepping down' or 'lost')"
up_ms="$(first_log_ms "$standby" 'taking lease .* over|is now the leader')" ||
    check_fail "$standby's log never says it took the Lease"
((down_ms < up_ms)) ||
    check_fail "TWO ACTIVE WRITERS: $standby took the Lease at $up_ms ms, before $leader stepped down at $down_ms ms"
late="$(grep -F ': provisioned' "$(prov_log "$leader")" | while IFS= read -r line; do
    stamp="$(sed -E 's/^\[([^ ]+) .*/\1/' <<<"$line")"
    (($(millis "$stamp") > down_ms)) && echo "$line"
done || true)"
[[ -z "$late" ]] || check_fail "$leader provisioned after it stepped down: $late"
log_step "$leader stepped down $(seconds_between "$cut_ms" "$down_ms")s after the cut (log), $standby took the Lease $(seconds_between "$down_ms" "$up_ms")s later (log)"
log_step "polled: $leader stopped acting at +$(seconds_between "$cut_ms" "$old_stopped_ms")s, Lease held by $standby at +$(seconds_between "$cut_ms" "$lease_moved_ms")s"
failover="$(seconds_between "$cut_ms" "$bound_ms")"
printf '  failover: cut -> %s holds the Lease %ss -> first claim created after the cut Bound %ss\n' \
    "$standby" "$(seconds_between "$cut_ms" "$lease_moved_ms")" "$failover"

kube_create_claims "$ns" 4 after-cut
check_within 60 "every claim of $ns to be Bound" kube_all_claims_bound "$ns"
check_within 30 "exactly 9 PVs for $ns" kube_pvs_in_are "$ns" 9
kube_check_one_volume_per_claim "$ns"
log_step "9 claims (1 before, 4 during, 4 after the cut) Bound, one live object each, no duplicate, no orphan"

# --- restore the proxy: the old leader comes back as a standby ----------------------
log_step "restore $leader's proxy"
proxy_start "$leader" "$leader_port"
if prov_running "$leader"; then
    log_step "$leader is still running (it did not exit)"
else
    log_step "$leader exited after losing the Lease (as documented); restart it"
    start_replica "$leader" "$leader_port"
fi
healthy_standby() {
    curl -fsS --max-time 2 "http://$(prov_http "$1")/readyz" >/dev/null &&
        reports_standby "$1" && prov_lease_held_by "$standby"
}
check_within 30 "$leader to be a ready standby" healthy_standby "$leader"
for _ in 1 2 3 4 5 6; do
    sleep 0.5
    healthy_standby "$leader" || check_fail "$leader is not a steady standby (readyz/flashvol_leader/Lease holder $(prov_lease_holder))"
done
kube_create_pvc "$ns" after-restore pure-file 1Gi
kube_wait_bound "$ns" after-restore
grep -q "claim $ns/after-restore: provisioned" "$(prov_log "$standby")" ||
    check_fail "$standby (the leader) did not log after-restore provisioned"
! grep -q "claim $ns/after-restore: provisioned" "$(prov_log "$leader")" ||
    check_fail "the standby $leader provisioned after-restore too"
log_step "$leader is a ready standby (readyz 200, flashvol_leader 0); $standby provisioned after-restore"

log_step "clean up: delete the claims while $standby leads"
expected="$(kubectl -n "$ns" get pvc -o json | jq -r --arg p "$PROV_NAME_PREFIX" '.items[] | "\($p)-pvc-\(.metadata.uid)"')"
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
check_within 60 "every PV of $ns to be deleted" kube_pvs_in_are "$ns" 0
check_within 30 "every object of $ns to be destroyed" sim_none_live "$expected"
kubectl delete namespace "$ns" --wait=false >/dev/null
