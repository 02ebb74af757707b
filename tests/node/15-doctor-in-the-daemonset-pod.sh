#!/usr/bin/env bash
# `flashvol-flex doctor --json` as an operator runs it: `kubectl exec ds/pure-flex` into the
# DaemonSet's pod, which sees the host's / at /host. On the node as the suite sets it up, every
# check of what the suite provides passes (settings, the driver in kubelet's plugin dir, the tools,
# the initiator name, each array verified against the CA the chart installed next to the driver,
# clock, log and lock dirs, the host's / shared); then one fault at a time gives a FAIL naming it,
# and nothing else changes, until it is undone:
#   a. fa-a drops every connection: arrays.reachable FAILs for fa-a's address, the exit status is 1;
#   b. the initiator name file holds a literal `$(/sbin/iscsi-iname)` (PSO's classic): iscsi.initiator
#      FAILs naming the file.
# The checks of what this machine has or lacks itself (iscsid, multipathd, multipath.conf, kernel
# modules: the fabric stands in for them and the kernel here has none) are reported, not asserted.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "15 doctor in the DaemonSet pod: the node as set up passes, a dropped array and a bad initiator name FAIL by name"

initiator_file="$NODE_STATE/node-fs/initiatorname.iscsi"
initiator_text="$(cat "$initiator_file")"
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; sim_set_faults_on fa-a "{}" 2>/dev/null || true; printf "%s\n" "$initiator_text" >"$initiator_file"
      node_scenario_on_exit "$rc"' EXIT

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
check_eq "hostRoot in the pod" "$(jq -r .hostRoot <<<"$report")" /host
check_eq "node" "$(jq -r .node <<<"$report")" "$NODE_NAME"
# What this suite sets up must pass: with the node's root made shared (node.sh) and the arrays'
# CAs given as flashvol.tls.caCert, which the installer copies next to the driver (ca.pem).
not_passing="$(jq -r '.checks[] | select(.id | test("^(settings|install|tools|arrays|clock|dirs)\\.|^iscsi\\.initiator$|^kernel\\.root_propagation$"))
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
