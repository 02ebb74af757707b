#!/usr/bin/env bash
# `flashvol-flex doctor --json` as an operator runs it: `kubectl exec ds/pure-flex` into the
# DaemonSet's pod, which sees the host's / as kubelet's /proc/<pid>/root (hostPID), and mounts
# no part of it: so the pod runs on this machine, whose / is a private mount. On the node as the
# suite sets it up, every check of what the suite provides passes (settings, the driver in
# kubelet's plugin dir, the tools, the initiator name, each array verified against the CA the
# chart installed next to the driver, clock, log and lock dirs), and kernel.root_propagation
# says what this machine's / is (a WARN when private: only a containerized kubelet needs it
# shared); then one fault at a time gives a FAIL naming it, and nothing else changes, until it is
# undone:
#   a. fa-a drops every connection: arrays.reachable FAILs for fa-a's address, the exit status is 1;
#   b. the initiator name file holds a literal `$(/sbin/iscsi-iname)` (PSO's classic): iscsi.initiator
#      FAILs naming the file.
# c. flexPath: auto (helm upgrade, and back): the new DaemonSet pod starts here too, installs
#    into the dir it reads from kubelet's command line through kubelet's /, and doctor in it
#    finds the driver where kubelet loads it.
# The checks of what this machine has or lacks itself (iscsid, multipathd, multipath.conf, kernel
# modules: the fabric stands in for them and the kernel here has none) are reported, not asserted.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NODE_DIR/flashvol.sh"
node_scenario_begin "15 doctor in the DaemonSet pod: the node as set up passes, a dropped array and a bad initiator name FAIL by name; flexPath auto runs too"

initiator_file="$NODE_STATE/node-fs/initiatorname.iscsi"
initiator_text="$(cat "$initiator_file")"
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; sim_set_faults_on fa-a "{}" 2>/dev/null || true; printf "%s\n" "$initiator_text" >"$initiator_file"
      flex_path_back; node_scenario_on_exit "$rc"' EXIT
# flex_path_back: the chart's flexPath as the suite installed it (after step c, or when it fails).
flex_path_back() {
    [[ "$(helm get values "$NODE_RELEASE" -n "$NODE_SYSTEM_NAMESPACE" -o json 2>/dev/null | jq -r .flexPath)" == auto ]] || return 0
    flashvol_upgrade "flexPath=$NODE_PLUGIN_DIR" &&
        kubectl -n "$NODE_SYSTEM_NAMESPACE" rollout status daemonset/pure-flex --timeout="${NODE_TIMEOUT}s" >/dev/null
}

# doctor: runs doctor --json in the DaemonSet's pod; sets report (the JSON) and status (exit).
doctor() {
    status=0
    report="$(kubectl -n "$NODE_SYSTEM_NAMESPACE" exec ds/pure-flex -- flashvol-flex doctor --json)" || status=$?
    jq -e '.schemaVersion == 1 and (.checks | length > 0)' >/dev/null 2>&1 <<<"$report" ||
        check_fail "doctor in the pod printed no report (exit $status): ${report:0:400}"
    check_eq "doctor's exit status vs its verdict ok=$(jq .ok <<<"$report")" "$status" \
        "$(jq -r 'if .ok then 0 else 1 end' <<<"$report")"
}
# problems: "STATUS id [subject]" of each check that is neither PASS nor SKIP, sorted.
problems() { jq -r '.checks[] | select(.status == "fail" or .status == "warn") | "\(.status) \(.id) [\(.subject // "")]"' <<<"$report" | sort; }
# report_field ID SUBJECT FIELD: one field of one check ("" for checks without a subject).
report_field() {
    jq -r --arg id "$1" --arg s "$2" --arg f "$3" \
        '[.checks[] | select(.id == $id and (.subject // "") == $s)][0][$f] // empty' <<<"$report"
}

fa_a="$(sim_field fa-a endpoint)"
# untouched: what doctor must leave as it was (it is read-only): the node's files and the hosts
# and connections on the FlashArrays.
untouched() {
    find "$NODE_STATE/node-fs" "$NODE_PLUGIN_DIR" -printf '%p %s %m\n' | sort
    sim_admin fa-a state | jq -c '{hosts, connections}'
    sim_admin fa-b state | jq -c '{hosts, connections}'
}
before="$(untouched)"

log_step "doctor in the DaemonSet's pod on the node as set up"
doctor
kubelet_pid="$(cat "$NODE_STATE/pids/kubelet")"
check_eq "hostRoot in the pod (kubelet's /, through the host's procfs)" "$(jq -r .hostRoot <<<"$report")" "/proc/$kubelet_pid/root"
check_eq "node" "$(jq -r .node <<<"$report")" "$NODE_NAME"
# What this suite sets up must pass: with the arrays' CAs given as flashvol.tls.caCert, which the
# installer copies next to the driver (ca.pem).
not_passing="$(jq -r '.checks[] | select(.id | test("^(settings|install|tools|arrays|clock|dirs)\\.|^iscsi\\.initiator$"))
    | select(.status != "pass" and (.status != "skip" or .id == "install.init"))
    | "\(.status) \(.id) [\(.subject // "")]: \(.saw)"' <<<"$report")"
[[ -z "$not_passing" ]] || check_fail "doctor finds fault with what the suite set up: $(tr '\n' ';' <<<"$not_passing")"
installed_ca="$NODE_PLUGIN_DIR/pure~flex/ca.pem"
for array in fa-a fa-b fb-1; do
    endpoint="$(sim_field "$array" endpoint)"
    check_eq "arrays.reachable of $array" "$(report_field arrays.reachable "$endpoint" status)" pass
    tls="$(report_field arrays.tls "$endpoint" saw)"
    [[ "$tls" == *"$installed_ca"*caCert* ]] ||
        check_fail "arrays.tls of $array does not name the installed CA $installed_ca (flashvol.tls.caCert): $tls"
done
check_eq "iscsi.initiator" "$(report_field iscsi.initiator "" saw)" "$NODE_IQN ($initiator_file)"
# The machine's own / (the topmost mount there in init's table): shared passes, else a WARN
# saying only a containerized kubelet needs it (this machine's is private).
root_tags="$(awk '$5 == "/" { t = "private"; for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) t = "shared" } END { print t }' /proc/1/mountinfo)"
check_eq "kernel.root_propagation on this machine's $root_tags /" "$(report_field kernel.root_propagation "" status)" \
    "$([[ "$root_tags" == shared ]] && echo pass || echo warn)"
[[ "$root_tags" == shared || "$(report_field kernel.root_propagation "" saw)" == *"containerized kubelet"* ]] ||
    check_fail "kernel.root_propagation's WARN does not say when it matters: $(report_field kernel.root_propagation "" saw)"
healthy="$(problems)"
log_step "every check of what the suite set up passes ($(jq -r '.summary | "\(.pass) pass, \(.warn) warn, \(.fail) fail, \(.skip) skip"' <<<"$report"), exit $status"
log_step "this machine itself: $(jq -r '[.checks[] | select(.id | test("^(iscsi\\.iscsid|multipath\\.|kernel\\.)")) | "\(.id) \(.status)"] | join(", ")' <<<"$report")"

# expect_only_new ID SUBJECT: doctor's problems are the healthy node's plus exactly this FAIL.
expect_only_new() {
    local want got
    want="$(printf '%s\nfail %s [%s]\n' "$healthy" "$1" "$2" | sed '/^$/d' | sort)"
    got="$(problems)"
    [[ "$got" == "$want" ]] || check_fail "doctor's problems: expected the healthy node's plus 'fail $1 [$2]', got: $(tr '\n' ';' <<<"$got")"
    check_eq "exit status with a FAIL" "$status" 1
}
# expect_healthy_again: the fault undone, doctor reports what it reported at first.
expect_healthy_again() {
    doctor
    check_eq "doctor's problems once the fault is undone" "$(problems)" "$healthy"
}

log_step "a. fa-a drops every connection"
sim_set_faults_on fa-a '{"drop_rate": 1.0}'
doctor
expect_only_new arrays.reachable "$fa_a"
saw="$(report_field arrays.reachable "$fa_a" saw)"
fix="$(report_field arrays.reachable "$fa_a" fix)"
[[ "$saw" == *"$fa_a"* ]] || check_fail "arrays.reachable does not name fa-a's address $fa_a: $saw"
[[ "$fix" == *MgmtEndPoint* ]] || check_fail "arrays.reachable's fix does not point at MgmtEndPoint: $fix"
for id in arrays.tls arrays.token; do
    check_eq "$id of fa-a after it failed to answer" "$(report_field "$id" "$fa_a" status)" skip
done
log_step "arrays.reachable FAIL [$fa_a]: ${saw:0:120}; fix: ${fix:0:100}"
sim_set_faults_on fa-a '{}'
expect_healthy_again
log_step "fa-a answers again: doctor is back to the healthy report"

log_step "b. the initiator name file holds a literal \$(/sbin/iscsi-iname)"
# shellcheck disable=SC2016 # the literal is the fault
printf 'InitiatorName=$(/sbin/iscsi-iname)\n' >"$initiator_file"
doctor
expect_only_new iscsi.initiator ""
saw="$(report_field iscsi.initiator "" saw)"
fix="$(report_field iscsi.initiator "" fix)"
# shellcheck disable=SC2016 # the literal
[[ "$saw" == *'$(/sbin/iscsi-iname)'* || "$saw" == *"$initiator_file"* ]] ||
    check_fail "iscsi.initiator does not say what is wrong with $initiator_file: $saw"
[[ "$fix" == *"$initiator_file"* ]] || check_fail "iscsi.initiator's fix does not name $initiator_file: $fix"
log_step "iscsi.initiator FAIL: ${saw:0:120}; fix: ${fix:0:100}"
printf '%s\n' "$initiator_text" >"$initiator_file"
expect_healthy_again
log_step "initiator name restored: doctor is back to the healthy report"

[[ "$(untouched)" == "$before" ]] || check_fail "doctor changed the node's files or the arrays' hosts: $(diff <(echo "$before") <(untouched) | head -n 5 | tr '\n' ';')"
log_step "doctor changed nothing on the node or the arrays"

log_step "c. helm upgrade --set flexPath=auto: the DaemonSet reads kubelet's dir and installs through kubelet's /"
driver="$NODE_PLUGIN_DIR/pure~flex/flex"
driver_sum="$(sha256sum "$driver" | cut -d' ' -f1)"
flex_pods() { kubectl -n "$NODE_SYSTEM_NAMESPACE" get pods -l app=pure-flex -o name; }
old_pod="$(flex_pods)"
flashvol_upgrade flexPath=auto || check_fail "helm upgrade --set flexPath=auto failed"
kubectl -n "$NODE_SYSTEM_NAMESPACE" rollout status daemonset/pure-flex --timeout="${NODE_TIMEOUT}s" >/dev/null ||
    check_fail "the auto DaemonSet did not start: $(kubectl -n "$NODE_SYSTEM_NAMESPACE" get pods -l app=pure-flex -o wide | tail -n +2)"
old_pod_gone() { [[ "$(flex_pods)" != *"$old_pod"* ]]; }
check_within "$NODE_TIMEOUT" "the old DaemonSet pod $old_pod to be gone" old_pod_gone
auto_pod="$(flex_pods)"
check_eq "FLASHVOL_PLUGIN_DIR of the new pod" \
    "$(kubectl -n "$NODE_SYSTEM_NAMESPACE" get "$auto_pod" -o 'jsonpath={.spec.containers[0].env[?(@.name=="FLASHVOL_PLUGIN_DIR")].value}')" auto
# The node metrics' statistics dir (flex-stats, read-only, when monitoring.nodeMetrics is on) is
# the one hostPath an auto pod keeps: no volume is ever mounted under it.
check_eq "hostPath volumes of the auto pod besides the statistics dir (none: not even the plugin dir)" \
    "$(kubectl -n "$NODE_SYSTEM_NAMESPACE" get "$auto_pod" -o json |
        jq '[.spec.volumes[] | select(.hostPath and .name != "flex-stats")] | length')" 0
installed_through_kubelet() {
    kubectl -n "$NODE_SYSTEM_NAMESPACE" logs "$auto_pod" 2>/dev/null |
        grep -qF "(kubelet sees $NODE_PLUGIN_DIR/pure~flex)"
}
check_within "$NODE_TIMEOUT" "the auto pod to install into kubelet's dir $NODE_PLUGIN_DIR" installed_through_kubelet
install_line="$(kubectl -n "$NODE_SYSTEM_NAMESPACE" logs "$auto_pod" | grep -F "(kubelet sees $NODE_PLUGIN_DIR/pure~flex)")"
[[ "$install_line" == *" in /proc/$kubelet_pid/root$NODE_PLUGIN_DIR/pure~flex:"* ]] ||
    check_fail "the auto pod did not write through kubelet's / (/proc/$kubelet_pid/root): $install_line"
check_eq "the driver in kubelet's dir after the auto install (same build: rewritten or not, the same bytes)" \
    "$(sha256sum "$driver" | cut -d' ' -f1)" "$driver_sum"
doctor
check_eq "install.driver in the auto pod" "$(report_field install.driver "" status)" pass
check_eq "doctor's problems in the auto pod" "$(problems)" "$healthy"
log_step "the auto pod runs on this machine's $root_tags /, installed through /proc/$kubelet_pid/root, doctor as healthy as before"
flex_path_back || check_fail "the DaemonSet did not roll back to flexPath $NODE_PLUGIN_DIR"
log_step "flexPath back to $NODE_PLUGIN_DIR"
