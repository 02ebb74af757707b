#!/usr/bin/env bash
# The last pod of a block volume is force-deleted while kubelet is down; its container keeps
# running and writing. After the restart kubelet finds the orphaned pod and calls `unmount`, and
# kills the container. The driver must not release the volume (delete its device, disconnect it
# on the array) while the file system is still mounted in the container's mount namespace: on a
# real array the container's last writes and the file system's final flush would go to a
# disconnected LUN. It answers Failure until the container is gone; kubelet retries. Proven here:
#   - at no moment is the volume disconnected, or its device gone, while any mount namespace on
#     the node still holds the file system (sampled while kubelet tears the pod down);
#   - every write the container acknowledged (fsync'd, then printed) is on the volume afterwards;
#   - in the end the volume is unmounted and released, and nothing is left.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NODE_DIR/node.sh"
node_scenario_begin "08 pod force-deleted while kubelet is down: released only after its container is gone, no acknowledged write lost"

ns=node-08
node_make_namespace "$ns"
kube_create_pvc "$ns" blk pure-block 1Gi
kube_wait_bound "$ns" blk
pv="$(kube_pv_of "$ns" blk)"
volume="$(kube_array_name_of_pv "$pv")"
array="$(sim_array_holding "$volume")" || check_fail "$volume is on no array"

# Each number is appended and fsync'd before the pod prints "ack=N": a printed ack is a write
# the application was told is durable.
# shellcheck disable=SC2016 # the pod's shell expands it
script='i=0; echo ready
while true; do i=$((i + 1)); echo "$i" >> /data/blk/acks; sync; echo "ack=$i"; sleep 0.05; done'
node_run_pod "$ns" writer "$script" blk
node_wait_pod_log "$ns" writer ready
uid="$(node_pod_uid "$ns" writer)"
staging="$(node_staging_dir "$pv")"
dev="$(node_device_of_mount "$staging")"
[[ -n "$dev" ]] || check_fail "$staging is not mounted"
# containerd writes the container's output while kubelet is down; follow the file, since
# kubelet removes it with the pod.
container_log="$(ls /var/log/pods/"${ns}_writer_$uid"/main/*.log)"
acks="$NODE_STATE/scenario-08-acks.log"
tail -n +1 -F "$container_log" >"$acks" 2>/dev/null &
tail_pid=$!
# The mount namespaces other than the host's that hold the file system now: the container's.
# They are checked again, and nothing else, the moment the driver lets go of the device, so the
# check takes microseconds, not a scan of every process.
host_ns="$(readlink /proc/self/ns/mnt)"
holders=()
for f in /proc/[0-9]*/mountinfo; do
    pid="${f#/proc/}" pid="${pid%/mountinfo}"
    ns_of="$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" || continue
    [[ "$ns_of" != "$host_ns" && " ${seen_ns:-} " != *" $ns_of "* ]] || continue
    awk -v d="$dev" '$3 == d { found = 1 } END { exit !found }' "$f" 2>/dev/null || continue
    seen_ns="${seen_ns:-} $ns_of"
    holders+=("$f")
done
((${#holders[@]} > 0)) || check_fail "no container mount namespace holds $dev while the pod runs"
loop_name="$(basename "$(findmnt -n -o SOURCE "$staging")")"
delete_entry="$NODE_STATE/node-fs/sys/block/$loop_name/device/delete"
# watch_release: waits for the driver's first step of letting go of the volume (the device's
# sysfs delete, or the volume record gone), then says how many of the container namespaces
# still hold the file system at that moment.
watch_release() {
    until [[ "$(cat "$delete_entry" 2>/dev/null || echo gone)" != "" || ! -e "$(node_record_file "$pv")" ]]; do
        sleep 0.01
    done
    local f held=0
    for f in "${holders[@]}"; do
        awk -v d="$dev" '$3 == d { found = 1 } END { exit !found }' "$f" 2>/dev/null && held=$((held + 1))
    done
    echo "released with $held container mount namespace(s) still holding $dev"
}
# shellcheck disable=SC2154 # rc is set by the trap itself
trap 'rc=$?; kill "$tail_pid" "${watch_pid:-}" 2>/dev/null || true; node_scenario_on_exit "$rc"' EXIT

log_step "stop kubelet; force-delete pod writer; its container keeps writing"
node_kubelet_stop
kubectl -n "$ns" delete pod writer --grace-period=0 --force --wait=false >/dev/null 2>&1
check_within 30 "the API to forget pod writer" node_pod_gone "$ns" writer
before="$(grep -c '^.*ack=' "$acks" || true)"
sleep 1
(($(grep -c 'ack=' "$acks" || true) > before)) || check_fail "the orphaned container stopped writing while kubelet was down"
watch_release >"$NODE_STATE/scenario-08-watch" &
watch_pid=$!

log_step "start kubelet: it unmounts the orphaned pod's volume and kills its container"
node_kubelet_start
node_wait_ready
check_within "$NODE_LONG_TIMEOUT" "$volume to be released" sim_not_connected "$array" "$volume"
wait "$watch_pid" || true
watch_pid=""
observed="$(cat "$NODE_STATE/scenario-08-watch")"
check_within "$NODE_LONG_TIMEOUT" "kubelet to remove the pod dir" test ! -e "$NODE_KUBELET_ROOT/pods/$uid"
kill "$tail_pid" 2>/dev/null || true
last_ack="$(sed -n 's/.*ack=\([0-9]*\)$/\1/p' "$acks" | tail -n 1)"
[[ -n "$last_ack" ]] || check_fail "no acknowledged write was seen"
log_step "released: $observed; last acknowledged write: $last_ack"
[[ "$observed" == "released with 0 container mount namespace(s)"* ]] ||
    node_fail_later "the driver released $volume while the file system was still mounted: $observed"

log_step "a new pod reads the acknowledged writes back"
node_run_pod "$ns" reader 'tail -n 1 /data/blk/acks | sed "s/^/last=/"; echo ready; exec sleep 3600' blk
node_wait_pod_log "$ns" reader ready
last_on_disk="$(node_pod_log_value "$ns" reader last)"
((last_on_disk >= last_ack)) || check_fail "the volume holds writes up to $last_on_disk, but the container acknowledged $last_ack"
log_step "the volume holds every acknowledged write (up to $last_on_disk >= $last_ack)"

node_delete_pod "$ns" reader
node_claims_released "$ns" blk
node_scenario_end "$ns"
