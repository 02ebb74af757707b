#!/usr/bin/env bash
# PSO's snapshot runbook on a real node, for a block and a file claim: a pod writes data; the
# snapshot CLI runs in the provisioner's Deployment pod as users run it (`kubectl exec
# deploy/pure-provisioner -- /snapshot create -n <ns> <claim>`) while the pod keeps the volume
# mounted; the data changes; claims annotated snapshot.beta.purestorage.com/name and clones
# (spec.dataSource) are mounted by kubelet in a second pod next to the still-mounted sources: the
# restores hold the data at snapshot time, the clones the current data, and writing to a clone
# leaves its source as it was. `snapshot list` and `snapshot delete` run the same way.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "16 snapshot CLI in the provisioner pod, restores and clones mounted by kubelet next to their sources"

ns=node-16
node_make_namespace "$ns"
# snapshot ARG...: PSO's CLI in the provisioner's Deployment pod.
snapshot() { kubectl -n "$NODE_SYSTEM_NAMESPACE" exec deploy/pure-provisioner -- /snapshot "$@" 2>/dev/null; }
# shellcheck disable=SC2016 # expanded by the pod's shell
REWRITE_SCRIPT='set -e
for d in "$@"; do dd if=/dev/urandom of="/data/$d/payload" bs=1M count=4 2>/dev/null; done
sync
for d in "$@"; do echo "sha-$d=$(sha256sum "/data/$d/payload" | cut -d" " -f1)"; done'
# SUMS_SCRIPT: prints "sha-<claim>=<sha256>" of every mounted claim's payload.
# shellcheck disable=SC2016 # expanded by the pod's shell
SUMS_SCRIPT='for d in /data/*; do echo "sha-${d##*/}=$(sha256sum "$d/payload" | cut -d" " -f1)"; done'
# rewrite POD CLAIM...: the pod replaces each claim's payload; prints "sha-<claim>=<sha256>" lines.
rewrite() { local pod="$1"; shift; node_pod_exec "$ns" "$pod" sh -c "$REWRITE_SCRIPT" rewrite "$@"; }
sha_in() { sed -n "s/^sha-$2=//p" <<<"$1"; }

kube_create_pvc "$ns" data pure-block 1Gi ReadWriteOnce
kube_create_pvc "$ns" files pure-file 1Gi ReadWriteMany
kube_wait_bound "$ns" data
kube_wait_bound "$ns" files

log_step "pod writer writes 4 MiB to each claim and keeps them mounted"
node_run_pod "$ns" writer "$NODE_WRITE_SCRIPT" data files
node_wait_pod_running "$ns" writer
node_wait_pod_log "$ns" writer ready
declare -A before after snap
for claim in data files; do
    before[$claim]="$(node_pod_log_value "$ns" writer "sha-$claim")"
    [[ "${before[$claim]}" =~ ^[0-9a-f]{64}$ ]] || check_fail "writer printed no checksum for $claim"
done

log_step "kubectl exec deploy/pure-provisioner -- /snapshot create -n $ns <claim> (PSO's command)"
for claim in data files; do
    volume="$(kube_array_name_of_pv "$(kube_pv_of "$ns" "$claim")")"
    snap[$claim]="$(snapshot create -n "$ns" "$claim")" || check_fail "snapshot create -n $ns $claim failed: ${snap[$claim]}"
    [[ "${snap[$claim]}" =~ ^${volume}\.[A-Za-z0-9_-]+$ ]] || check_fail "snapshot ${snap[$claim]} is not $volume.<suffix>"
    listed="$(snapshot list -n "$ns" "$claim" --no-headers)" || check_fail "snapshot list -n $ns $claim failed"
    check_eq "snapshot list -n $ns $claim" "$(cut -f3 <<<"$listed")" "${snap[$claim]}"
    log_step "$claim: snapshot ${snap[$claim]}"
done

log_step "the writer changes the data after the snapshots"
out="$(rewrite writer data files)" || check_fail "the writer could not rewrite its data"
for claim in data files; do
    after[$claim]="$(sha_in "$out" "$claim")"
    [[ "${after[$claim]}" =~ ^[0-9a-f]{64}$ && "${after[$claim]}" != "${before[$claim]}" ]] ||
        check_fail "rewriting $claim gave checksum '${after[$claim]}'"
done

log_step "restore claims (annotation) and clone claims (spec.dataSource) of both"
for claim in data files; do
    class=pure-block mode=ReadWriteOnce
    [[ "$claim" == files ]] && class=pure-file mode=ReadWriteMany
    kube_create_pvc "$ns" "$claim-restored" "$class" 1Gi "$mode" null \
        "$(jq -n --arg s "${snap[$claim]}" '{"snapshot.beta.purestorage.com/name": $s}')"
    kube_create_clone "$ns" "$claim-clone" "$class" 1Gi "$mode" "$claim"
done
for claim in data-restored files-restored data-clone files-clone; do kube_wait_bound "$ns" "$claim"; done

log_step "pod reader mounts the four copies while writer still has their sources mounted"
node_run_pod "$ns" reader "$NODE_READ_SCRIPT" data-restored files-restored data-clone files-clone
node_wait_pod_running "$ns" reader "$NODE_LONG_TIMEOUT"
node_wait_pod_log "$ns" reader ready
for claim in data files; do
    check_eq "sha256 in $claim-restored (the data at snapshot time)" "$(node_pod_log_value "$ns" reader "sha-$claim-restored")" "${before[$claim]}"
    check_eq "sha256 in $claim-clone (the source's current data)" "$(node_pod_log_value "$ns" reader "sha-$claim-clone")" "${after[$claim]}"
done

log_step "writing to the clones leaves their sources as they were"
out="$(rewrite reader data-clone files-clone)" || check_fail "the reader could not write to the clones"
now="$(node_pod_exec "$ns" writer sh -c "$SUMS_SCRIPT")"
for claim in data files; do
    [[ "$(sha_in "$out" "$claim-clone")" != "${after[$claim]}" ]] || check_fail "$claim-clone did not change"
    check_eq "sha256 in $claim after writing to its clone" "$(sha_in "$now" "$claim")" "${after[$claim]}"
done

node_delete_pod "$ns" reader
node_delete_pod "$ns" writer
log_step "snapshot delete <name> in the provisioner pod; the list is empty after it"
for claim in data files; do
    snapshot delete "${snap[$claim]}" >/dev/null || check_fail "snapshot delete ${snap[$claim]} failed"
    check_eq "snapshot list -n $ns $claim after delete" "$(snapshot list -n "$ns" "$claim" --no-headers)" ""
done
node_claims_released "$ns" data files data-restored files-restored data-clone files-clone
node_scenario_end "$ns"
