#!/usr/bin/env bash
# Block claims used by a real pod, one on each FlashArray: kubelet calls the installed driver
# (its log shows kubelet's own mount call-outs with the pod's keys), the pod's data lands on the
# array volume (the staging mount is the loop device of the volume's backing file), each volume
# is formatted once, and a second pod reads the data back.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
node_scenario_begin "01 block claims on both FlashArrays used by a real pod: data written and read back, formatted once"

ns=node-01
node_make_namespace "$ns"
kube_create_pvc "$ns" blk-a pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
kube_create_pvc "$ns" blk-b pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
kube_wait_bound "$ns" blk-a
kube_wait_bound "$ns" blk-b
declare -A pv volume array
for claim in blk-a blk-b; do
    pv[$claim]="$(kube_pv_of "$ns" "$claim")"
    volume[$claim]="$(kube_array_name_of_pv "${pv[$claim]}")"
    array[$claim]="$(sim_array_holding "${volume[$claim]}")" || check_fail "${volume[$claim]} is on no array"
done
check_eq "array of blk-a (selector rack=a)" "${array[blk-a]}" fa-a
check_eq "array of blk-b (selector rack=b)" "${array[blk-b]}" fa-b
log_step "blk-a is ${volume[blk-a]} on fa-a, blk-b is ${volume[blk-b]} on fa-b"

log_mark="$(node_flex_log_lines)"
log_step "pod writer writes 4 MiB to each"
node_run_pod "$ns" writer "$NODE_WRITE_SCRIPT" blk-a blk-b
node_wait_pod_running "$ns" writer
node_wait_pod_log "$ns" writer ready
uid="$(node_pod_uid "$ns" writer)"
declare -A sum
for claim in blk-a blk-b; do
    sum[$claim]="$(node_pod_log_value "$ns" writer "sha-$claim")"
    [[ "${sum[$claim]}" =~ ^[0-9a-f]{64}$ ]] || check_fail "writer printed no checksum for $claim"
done

for claim in blk-a blk-b; do
    p="${pv[$claim]}" dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/${pv[$claim]}"
    # kubelet's own call: the pod dir it made and the keys only kubelet sends.
    calls="$(node_flex_log_since "$log_mark" | grep -F " mount $dir " || true)"
    [[ -n "$calls" ]] || check_fail "the driver log has no mount call for $dir"
    for key in "\"kubernetes.io/pod.uid\": \"$uid\"" '"kubernetes.io/pod.name": "writer"' \
        "\"kubernetes.io/pod.namespace\": \"$ns\"" '"kubernetes.io/readwrite": "rw"' \
        "\"kubernetes.io/pvOrVolumeName\": \"$p\""; do
        grep -qF -- "$key" <<<"$calls" || check_fail "kubelet's mount call for $p lacks $key: $calls"
    done
    formats="$(node_flex_count_since "$log_mark" "formatting ${volume[$claim]} ")"
    check_eq "times ${volume[$claim]} was formatted" "$formats" 1
    staging="$(node_staging_dir "$p")"
    node_is_mount_point "$staging" || check_fail "$staging (staging) is not mounted"
    node_is_mount_point "$dir" || check_fail "$dir (pod dir) is not mounted"
    check_eq "device of the pod dir vs the staging mount" "$(node_device_of_mount "$dir")" "$(node_device_of_mount "$staging")"
    loop="$(findmnt -n -o SOURCE "$staging")"
    serial="$(sim_admin "${array[$claim]}" state | jq -r --arg v "${volume[$claim]}" '.volumes[$v].serial')"
    backing="$(losetup -nO BACK-FILE "$loop")"
    [[ "$backing" == */volumes/$serial.img ]] || check_fail "$staging is on $loop backed by $backing, not volume serial $serial"
    check_eq "sha256 of $claim's data seen on the node" "$(sha256sum "$staging/payload" | cut -d' ' -f1)" "${sum[$claim]}"
    log_step "$claim: kubelet called mount with the pod's keys; formatted once; $staging on $loop ($serial.img); data on the array volume"
done

log_step "delete writer (--wait), then pod reader reads the data back"
node_delete_pod "$ns" writer
log_mark="$(node_flex_log_lines)"
node_run_pod "$ns" reader "$NODE_READ_SCRIPT" blk-a blk-b
node_wait_pod_running "$ns" reader
node_wait_pod_log "$ns" reader ready
for claim in blk-a blk-b; do
    check_eq "sha256 of $claim read by the second pod" "$(node_pod_log_value "$ns" reader "sha-$claim")" "${sum[$claim]}"
    node_flex_logged_since "$log_mark" "formatting ${volume[$claim]} " && check_fail "${volume[$claim]} was formatted again"
    node_flex_logged_since "$log_mark" "${volume[$claim]} already has a xfs file system: not formatting" ||
        check_fail "the driver did not log finding the existing file system of ${volume[$claim]}"
done
log_step "reader read both checksums back; no second format"

node_delete_pod "$ns" reader
node_claims_released "$ns" blk-a blk-b
node_scenario_end "$ns"
