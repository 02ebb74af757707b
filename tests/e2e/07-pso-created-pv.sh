#!/usr/bin/env bash
# A PV exactly as PSO 2.x wrote it (flexVolume driver pure/flex, options backend / namespace /
# volumeName / accessMode / labels / volumeMode and no array key, provisioned-by
# pure-provisioner, reclaim Delete, no flashvol finalizer), imported with kubectl next to the
# array volume PSO had created (made here through the array's REST API), bound to its claim:
# it mounts pod-style (the driver finds the volume by name on the configured arrays) and, when
# the claim is deleted, the provisioner destroys the array volume and deletes the PV.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "a PV created by PSO 2.x mounts and deletes"

ns=e2e-pso
kube_make_namespace "$ns"

# import_pso_pv BACKEND ARRAY FS_TYPE: creates the array object, the claim and the PV.
import_pso_pv() {
    local backend="$1" array="$2" fs_type="$3" uid pv volume claim="pso-$1" class
    uid="$(cat /proc/sys/kernel/random/uuid)"
    pv="pvc-$uid"
    volume="$PROV_NAME_PREFIX-$pv"
    class="pure-$backend"
    if [[ "$backend" == block ]]; then
        sim_fa_rest "$array" POST "volume/$volume" '{"size": 1073741824}' >/dev/null || check_fail "cannot create $volume on $array"
    else
        sim_fb_rest POST "file-systems" "$(jq -n --arg n "$volume" '{name: $n, provisioned: 1073741824,
            hard_limit_enabled: true, nfs: {v3_enabled: true, rules: "*(rw,no_root_squash)"}}')" >/dev/null ||
            check_fail "cannot create $volume on $array"
    fi
    log_step "created $volume on $array through its REST API, as PSO had"
    kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $pv
  annotations:
    pv.kubernetes.io/provisioned-by: pure-provisioner
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: $class
  claimRef: {namespace: $ns, name: $claim}
  flexVolume:
    driver: pure/flex
    fsType: $fs_type
    options:
      accessMode: exclusive
      backend: $backend
      labels: ""
      namespace: $PROV_NAME_PREFIX
      volumeMode: ""
      volumeName: $pv
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $claim, namespace: $ns}
spec:
  storageClassName: $class
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
  volumeName: $pv
YAML
    kube_wait_bound "$ns" "$claim"
    log_step "imported PV $pv (no array keys in its options) is Bound to $claim"
    flex_check_remount "$pv" "$ns"
    log_step "delete claim $claim: the provisioner must find $volume by name, destroy it and delete $pv"
    kubectl -n "$ns" delete pvc "$claim" --wait=false >/dev/null
    check_within "$CHECK_TIMEOUT" "PV $pv to be deleted" kube_pv_gone "$pv"
    check_within "$CHECK_TIMEOUT" "$volume to be destroyed on $array" sim_volume_destroyed "$array" "$volume"
    log_step "PV $pv is gone and $volume is destroyed on $array"
}

import_pso_pv block fa-b xfs
import_pso_pv file fb-1 nfs

kubectl delete namespace "$ns" --wait=false >/dev/null
