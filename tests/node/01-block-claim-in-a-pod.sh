#!/usr/bin/env bash
# Block claims used by a real pod, one on each FlashArray: kubelet calls the installed driver
# (its log shows kubelet's own mount call-outs with the pod's keys), the pod's data lands on the
# array volume (the staging mount is the loop device of the volume's backing file), each volume
# is formatted once, and a second pod reads the data back.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "01 block claims on both FlashArrays used by a real pod: data written and read back, formatted once"

ns=node-01
make_namespace "$ns"
create_pvc "$ns" blk-a pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"a"}}'
create_pvc "$ns" blk-b pure-block 1Gi ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
wait_pvc_bound "$ns" blk-a
wait_pvc_bound "$ns" blk-b
declare -A pv volume array
for claim in blk-a blk-b; do
    pv[$claim]="$(pv_of "$ns" "$claim")"
    volume[$claim]="$(array_volume_of "${pv[$claim]}")"
    array[$claim]="$(array_holding "${volume[$claim]}")" || fail "${volume[$claim]} is on no array"
done
expect_eq "array of blk-a (selector rack=a)" "${array[blk-a]}" fa-a
expect_eq "array of blk-b (selector rack=b)" "${array[blk-b]}" fa-b
step "blk-a is ${volume[blk-a]} on fa-a, blk-b is ${volume[blk-b]} on fa-b"

log_mark="$(flex_log_lines)"
step "pod writer writes 4 MiB to each"
run_pod "$ns" writer "$WRITE_SCRIPT" blk-a blk-b
wait_pod_running "$ns" writer
wait_pod_log "$ns" writer ready
uid="$(pod_uid "$ns" writer)"
declare -A sum
for claim in blk-a blk-b; do
    sum[$claim]="$(pod_log_value "$ns" writer "sha-$claim")"
    [[ "${sum[$claim]}" =~ ^[0-9a-f]{64}$ ]] || fail "writer printed no checksum for $claim"
done

for claim in blk-a blk-b; do
    p="${pv[$claim]}" dir="$NODE_KUBELET_ROOT/pods/$uid/volumes/pure~flex/${pv[$claim]}"
    # kubelet's own call: the pod dir it made and the keys only kubelet sends.
    calls="$(flex_log_since "$log_mark" | grep -F " mount $dir " || true)"
    [[ -n "$calls" ]] || fail "the driver log has no mount call for $dir"
    for key in "\"kubernetes.io/pod.uid\": \"$uid\"" '"kubernetes.io/pod.name": "writer"' \
        "\"kubernetes.io/pod.namespace\": \"$ns\"" '"kubernetes.io/readwrite": "rw"' \
        "\"kubernetes.io/pvOrVolumeName\": \"$p\""; do
        grep -qF -- "$key" <<<"$calls" || fail "kubelet's mount call for $p lacks $key: $calls"
    done
    formats="$(flex_count_since "$log_mark" "formatting ${volume[$claim]} ")"
    expect_eq "times ${volume[$claim]} was formatted" "$formats" 1
    staging="$(staging_dir "$p")"
    is_mount_point "$staging" || fail "$staging (staging) is not mounted"
    is_mount_point "$dir" || fail "$dir (pod dir) is not mounted"
    expect_eq "device of the pod dir vs the staging mount" "$(device_of_mount "$dir")" "$(device_of_mount "$staging")"
    loop="$(findmnt -n -o SOURCE "$staging")"
    serial="$(sim_admin "${array[$claim]}" state | jq -r --arg v "${volume[$claim]}" '.volumes[$v].serial')"
    backing="$(losetup -nO BACK-FILE "$loop")"
    [[ "$backing" == */volumes/$serial.img ]] || fail "$staging is on $loop backed by $backing, not volume serial $serial"
    expect_eq "sha256 of $claim's data seen on the node" "$(sha256sum "$staging/payload" | cut -d' ' -f1)" "${sum[$claim]}"
    step "$claim: kubelet called mount with the pod's keys; formatted once; $staging on $loop ($serial.img); data on the array volume"
done

step "delete writer (--wait), then pod reader reads the data back"
delete_pod "$ns" writer
log_mark="$(flex_log_lines)"
run_pod "$ns" reader "$READ_SCRIPT" blk-a blk-b
wait_pod_running "$ns" reader
wait_pod_log "$ns" reader ready
for claim in blk-a blk-b; do
    expect_eq "sha256 of $claim read by the second pod" "$(pod_log_value "$ns" reader "sha-$claim")" "${sum[$claim]}"
    flex_logged_since "$log_mark" "formatting ${volume[$claim]} " && fail "${volume[$claim]} was formatted again"
    flex_logged_since "$log_mark" "${volume[$claim]} already has a xfs file system: not formatting" ||
        fail "the driver did not log finding the existing file system of ${volume[$claim]}"
done
step "reader read both checksums back; no second format"

delete_pod "$ns" reader
claims_released "$ns" blk-a blk-b
scenario_end "$ns"
