#!/usr/bin/env bash
# A 100 TiB claim on a FlashArray with room for it (fa-b's capacity raised to 1 PiB for the
# scenario, as shelves would be added): provisioned (the array volume is 100 TiB, the PV says
# 100Ti), mounted pod-style (thin: the simulator backs it sparsely, as long as this machine's
# file system allows one file to be, and mkfs writes only metadata), data written and read back,
# and deleted (the array volume destroyed).
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "a 100 TiB claim provisions, mounts thin and deletes"

ns=e2e-huge
kube_make_namespace "$ns"
trap 'rc=$?; sim_set_capacity fa-b reset || true; scenario_on_exit "$rc"' EXIT
sim_set_capacity fa-b 1P || check_fail "cannot raise fa-b's capacity"
log_step "fa-b now has 1 PiB of capacity"

kube_create_pvc "$ns" huge pure-block 100Ti ReadWriteOnce '{"matchLabels":{"rack":"b"}}'
# The provisioner caches free space for 10 s: it may see fa-b's old capacity once, then retries.
kube_wait_bound "$ns" huge 90
pv="$(kube_pv_of "$ns" huge)"
volume="$(kube_array_name_of_pv "$pv")"
check_eq "the PV's capacity" "$(kube_pv_capacity "$pv")" 100Ti
check_eq "the size of $volume on fa-b" "$(sim_object_size fa-b "$volume")" $((100 << 40))
log_step "$pv is 100Ti; $volume on fa-b is 100 TiB"

pod="$(cat /proc/sys/kernel/random/uuid)"
flex_mount "$pod" "$pv" "$ns" huge-writer
dir="$(flex_pod_dir "$pod" "$pv")"
sum="$(flex_write_payload "$dir")"
check_eq "the data read back" "$(flex_read_payload "$dir")" "$sum"
backing="$(sim_admin fa-b state | jq -r --arg v "$volume" '.volumes[$v].path')"
log_step "mounted: df shows $(flex_df_bytes "$dir") bytes (a device as long as this host keeps one file: $(stat -c %s "$backing") bytes); $(du -B1 "$backing" | cut -f1) bytes used on the host"
flex_unmount "$pod" "$pv"

kube_delete_claims "$ns"
check_eq "$volume after the claim was deleted" "$(sim_volume_state fa-b "$volume")" destroyed
log_step "the claim is gone, $volume destroyed"
sim_set_capacity fa-b reset
kubectl delete namespace "$ns" --wait=false >/dev/null
