#!/usr/bin/env bash
# A pod running as a non-root user with an fsGroup writes to its block and file claims. kubelet
# passes the fsGroup to the driver (mounterArgs.FsGroup; the driver says fsGroup: false, so
# kubelet does not walk the volume), and the driver gives the volume's root to that group,
# g+rwx and setgid, as flexdriver/README.md documents: new files get the group.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "05 fsGroup + non-root runAsUser: the pod writes; volume root group-owned and setgid"

ns=node-05
node_scenario_claims "$ns"

# shellcheck disable=SC2016 # the pod's shell expands it
script='echo "id=$(id -u):$(id -g)"
for d in /data/*; do n=${d##*/}
  if echo mine > "$d/mine" 2>/tmp/err; then echo "write-$n=ok"; else echo "write-$n=$(cat /tmp/err)"; fi
  echo "file-$n=$(stat -c %u:%g "$d/mine" 2>/dev/null)"
  echo "root-$n=$(stat -c "%g %A" "$d")"
done; echo ready; exec sleep 3600'
log_mark="$(node_flex_log_lines)"
node_run_pod "$ns" app "$script" blk fil -- \
    '{"spec":{"securityContext":{"runAsUser":1000,"runAsGroup":3000,"fsGroup":2000}}}'
node_wait_pod_log "$ns" app ready
check_eq "the pod's user" "$(node_pod_log_value "$ns" app id)" 1000:3000
for claim in blk fil; do
    calls="$(grep -F " mount $NODE_KUBELET_ROOT/pods/$(node_pod_uid "$ns" app)/volumes/pure~flex/$(kube_pv_of "$ns" "$claim") " \
        <<<"$(node_flex_log_since "$log_mark")" || true)"
    grep -qF '"kubernetes.io/mounterArgs.FsGroup": "2000"' <<<"$calls" || check_fail "kubelet did not pass fsGroup 2000 for $claim"
    check_eq "writing as user 1000 to $claim" "$(node_pod_log_value "$ns" app "write-$claim")" ok
    check_eq "owner of the new file on $claim" "$(node_pod_log_value "$ns" app "file-$claim")" 1000:2000
    root="$(node_pod_log_value "$ns" app "root-$claim")"
    [[ "$root" =~ ^2000\ d...rws ]] || check_fail "the root of $claim is '$root', not group 2000 with g=rws"
    log_step "$claim: kubelet passed fsGroup 2000; user 1000 wrote; file 1000:2000; root '$root'"
done

node_delete_pod "$ns" app
node_claims_released "$ns" blk fil
node_scenario_end "$ns"
