#!/usr/bin/env bash
# A pod mounts its claims with `readOnly: true` (the pod's persistentVolumeClaim.readOnly, the
# only read-only switch kubelet passes to a flex driver): kubelet sends readwrite=ro, the pod
# reads the data a writer left, and every write fails with EROFS (block and file).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "04 readOnly claims: data readable, writes fail with EROFS"

ns=node-04
scenario_claims "$ns"

run_pod "$ns" writer "$WRITE_SCRIPT" blk fil
wait_pod_log "$ns" writer ready
declare -A sum
for claim in blk fil; do sum[$claim]="$(pod_log_value "$ns" writer "sha-$claim")"; done
delete_pod "$ns" writer

# shellcheck disable=SC2016 # the pod's shell expands it
script='for d in /data/*; do n=${d##*/}
  echo "sha-$n=$(sha256sum "$d/payload" | cut -d" " -f1)"
  if touch "$d/new" 2>/tmp/err; then echo "write-$n=allowed"; else echo "write-$n=$(cat /tmp/err)"; fi
done; echo ready; exec sleep 3600'
log_mark="$(flex_log_lines)"
run_pod "$ns" reader "$script" blk:ro fil:ro
wait_pod_log "$ns" reader ready
uid="$(pod_uid "$ns" reader)"
for claim in blk fil; do
    pv="$(pv_of "$ns" "$claim")"
    dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/$pv"
    calls="$(grep -F " mount $dir " <<<"$(flex_log_since "$log_mark")" || true)"
    grep -qF '"kubernetes.io/readwrite": "ro"' <<<"$calls" ||
        fail "kubelet's mount call for $claim did not say readwrite=ro"
    expect_eq "sha256 of $claim read through the read-only mount" "$(pod_log_value "$ns" reader "sha-$claim")" "${sum[$claim]}"
    write="$(pod_log_value "$ns" reader "write-$claim")"
    [[ "$write" == *"Read-only file system"* ]] || fail "writing to read-only $claim gave: $write"
    [[ ",$(findmnt -n -o OPTIONS "$dir")," == *,ro,* ]] || fail "$dir is not mounted ro: $(findmnt -n -o OPTIONS "$dir")"
    step "$claim: kubelet sent readwrite=ro; data read back; write failed: $write"
done
[[ ",$(findmnt -n -o OPTIONS "$(staging_dir "$(pv_of "$ns" blk)")")," == *,rw,* ]] ||
    fail "the staging mount of blk became read-only"

delete_pod "$ns" reader
claims_released "$ns" blk fil
scenario_end "$ns"
