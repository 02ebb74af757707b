#!/usr/bin/env bash
# A pod mounts its claims with `readOnly: true` (the pod's persistentVolumeClaim.readOnly, the
# only read-only switch kubelet passes to a flex driver): kubelet sends readwrite=ro, the pod
# reads the data a writer left, and every write fails with EROFS (block and file).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "04 readOnly claims: data readable, writes fail with EROFS"

ns=node-04
node_scenario_claims "$ns"

node_run_pod "$ns" writer "$NODE_WRITE_SCRIPT" blk fil
node_wait_pod_log "$ns" writer ready
declare -A sum
for claim in blk fil; do sum[$claim]="$(node_pod_log_value "$ns" writer "sha-$claim")"; done
node_delete_pod "$ns" writer

# shellcheck disable=SC2016 # the pod's shell expands it
script='for d in /data/*; do n=${d##*/}
  echo "sha-$n=$(sha256sum "$d/payload" | cut -d" " -f1)"
  if touch "$d/new" 2>/tmp/err; then echo "write-$n=allowed"; else echo "write-$n=$(cat /tmp/err)"; fi
done; echo ready; exec sleep 3600'
log_mark="$(node_flex_log_lines)"
node_run_pod "$ns" reader "$script" blk:ro fil:ro
node_wait_pod_log "$ns" reader ready
uid="$(node_pod_uid "$ns" reader)"
for claim in blk fil; do
    pv="$(kube_pv_of "$ns" "$claim")"
    dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$pv"
    calls="$(grep -F " mount $dir " <<<"$(node_flex_log_since "$log_mark")" || true)"
    grep -qF '"kubernetes.io/readwrite": "ro"' <<<"$calls" ||
        check_fail "kubelet's mount call for $claim did not say readwrite=ro"
    check_eq "sha256 of $claim read through the read-only mount" "$(node_pod_log_value "$ns" reader "sha-$claim")" "${sum[$claim]}"
    write="$(node_pod_log_value "$ns" reader "write-$claim")"
    [[ "$write" == *"Read-only file system"* ]] || check_fail "writing to read-only $claim gave: $write"
    [[ ",$(findmnt -n -o OPTIONS "$dir")," == *,ro,* ]] || check_fail "$dir is not mounted ro: $(findmnt -n -o OPTIONS "$dir")"
    log_step "$claim: kubelet sent readwrite=ro; data read back; write failed: $write"
done
[[ ",$(findmnt -n -o OPTIONS "$(node_staging_dir "$(kube_pv_of "$ns" blk)")")," == *,rw,* ]] ||
    check_fail "the staging mount of blk became read-only"

node_delete_pod "$ns" reader
node_claims_released "$ns" blk fil
node_scenario_end "$ns"
