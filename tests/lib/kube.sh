# shellcheck shell=bash
# The cluster (part of harness.sh), through kubectl: the shipped install manifests with the test
# pure.json in their Secret, a kubeconfig of the provisioner's ServiceAccount, and what scenarios
# ask of claims, PVs and events, including the "one live array object per claim, none without a
# PV" accounting.

# Names the shipped manifests (install/manifests/flashvol.yaml) give.
KUBE_NAMESPACE=pure-system
KUBE_SERVICE_ACCOUNT=pure
# The provisioner's name in StorageClasses, and its Deployment's.
KUBE_PROVISIONER=pure-provisioner
# The driver our PVs name.
# shellcheck disable=SC2034 # read by the scenarios
KUBE_DRIVER=pure/flex

# kube_install_manifests PURE_JSON: applies install/manifests/flashvol.yaml as shipped, then puts
# PURE_JSON into the shipped Secret, and extracts it again (KUBE_PURE_JSON) the way the pod would
# see it mounted.
kube_install_manifests() {
    local pure_json="$1" manifests="$REPO_ROOT/install/manifests/flashvol.yaml"
    [[ -f "$manifests" ]] || log_die "$manifests is missing"
    kubectl apply -f "$manifests" >"$WORKDIR/logs/apply-manifests.log" 2>&1 ||
        log_die "kubectl apply -f install/manifests/flashvol.yaml failed: $(tail -n 5 "$WORKDIR/logs/apply-manifests.log")"
    # The workloads cannot run here (no scheduler, no kubelet) but must be valid, accepted objects.
    kubectl -n "$KUBE_NAMESPACE" get daemonset pure-flex >/dev/null 2>&1 ||
        log_die "the manifests did not create DaemonSet $KUBE_NAMESPACE/pure-flex"
    kubectl -n "$KUBE_NAMESPACE" get deployment "$KUBE_PROVISIONER" >/dev/null 2>&1 ||
        log_die "the manifests did not create Deployment $KUBE_NAMESPACE/$KUBE_PROVISIONER"
    kubectl -n "$KUBE_NAMESPACE" patch secret pure-provisioner-secret --type merge \
        -p "$(jq -n --arg v "$(base64 -w0 <"$pure_json")" '{data: {"pure.json": $v}}')" >/dev/null ||
        log_die "cannot put the test pure.json into Secret pure-provisioner-secret"
    # What the Deployment's pod would find at /etc/pure/pure.json.
    KUBE_PURE_JSON="$WORKDIR/etc-pure/pure.json"
    (umask 077 && kubectl -n "$KUBE_NAMESPACE" get secret pure-provisioner-secret \
        -o 'jsonpath={.data.pure\.json}' | base64 -d >"$KUBE_PURE_JSON") ||
        log_die "cannot read pure.json back from the Secret"
    workdir_save KUBE_PURE_JSON
}

# kube_service_account_kubeconfig: a kubeconfig (KUBE_SA_KUBECONFIG) with the token of the
# ServiceAccount the manifests create for the provisioner, so only the shipped RBAC applies.
kube_service_account_kubeconfig() {
    KUBE_SA_KUBECONFIG="$WORKDIR/provisioner.kubeconfig"
    "$REPO_ROOT/tests/cluster/sa-kubeconfig.sh" "$KUBE_NAMESPACE" "$KUBE_SERVICE_ACCOUNT" \
        --duration 4h --output "$KUBE_SA_KUBECONFIG" ||
        log_die "cannot mint a token for $KUBE_NAMESPACE/$KUBE_SERVICE_ACCOUNT"
    workdir_save KUBE_SA_KUBECONFIG
}

# kube_make_namespace NS: a fresh namespace for one scenario.
kube_make_namespace() {
    kubectl delete namespace "$1" --ignore-not-found --wait=true >/dev/null 2>&1 || true
    kubectl create namespace "$1" >/dev/null
}

# --- claims and PVs ----------------------------------------------------------------
# kube_create_class NAME PARAMETERS_JSON [FIELDS_JSON]: a StorageClass of pure-provisioner with
# these parameters and extra top-level fields (reclaimPolicy, volumeBindingMode, ...).
kube_create_class() {
    local fields="${3:-}"
    [[ -n "$fields" ]] || fields='{}'
    jq -n --arg name "$1" --argjson params "$2" --argjson fields "$fields" \
        '{apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: {name: $name},
          provisioner: "pure-provisioner", parameters: $params} + $fields' |
        kubectl apply -f - >/dev/null
}

# kube_create_pvc NS NAME CLASS SIZE [ACCESS_MODE] [SELECTOR_JSON] [ANNOTATIONS_JSON]
kube_create_pvc() {
    local ns="$1" name="$2" class="$3" size="$4" mode="${5:-ReadWriteOnce}" selector="${6:-null}" annotations="${7:-null}"
    jq -n --arg ns "$ns" --arg name "$name" --arg class "$class" --arg size "$size" --arg mode "$mode" \
        --argjson selector "$selector" --argjson annotations "$annotations" '{
        apiVersion: "v1", kind: "PersistentVolumeClaim",
        metadata: ({name: $name, namespace: $ns} + (if $annotations then {annotations: $annotations} else {} end)),
        spec: ({storageClassName: $class, accessModes: [$mode], resources: {requests: {storage: $size}}}
               + (if $selector then {selector: $selector} else {} end))
      }' | kubectl create -f - >/dev/null
}

# kube_create_clone NS NAME CLASS SIZE ACCESS_MODE SOURCE: a claim whose spec.dataSource is the
# claim SOURCE (a clone).
kube_create_clone() {
    jq -n --arg ns "$1" --arg name "$2" --arg class "$3" --arg size "$4" --arg mode "$5" --arg source "$6" '{
        apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: {name: $name, namespace: $ns},
        spec: {storageClassName: $class, accessModes: [$mode], resources: {requests: {storage: $size}},
               dataSource: {kind: "PersistentVolumeClaim", name: $source}}
      }' | kubectl create -f - >/dev/null
}

# kube_create_claims NS COUNT PREFIX: COUNT claims PREFIX-0... of 1Gi in one request (even:
# pure-block, odd: pure-file).
kube_create_claims() {
    jq -n --arg ns "$1" --argjson n "$2" --arg p "$3" '{apiVersion: "v1", kind: "List", items: [range($n) | {
        apiVersion: "v1", kind: "PersistentVolumeClaim",
        metadata: {name: "\($p)-\(.)", namespace: $ns},
        spec: {storageClassName: (if . % 2 == 0 then "pure-block" else "pure-file" end),
               accessModes: ["ReadWriteOnce"], resources: {requests: {storage: "1Gi"}}}}]}' |
        kubectl create -f - >/dev/null
}

kube_pvc_phase() { kubectl -n "$1" get pvc "$2" -o 'jsonpath={.status.phase}' 2>/dev/null; }
kube_pvc_bound() { [[ "$(kube_pvc_phase "$1" "$2")" == Bound ]]; }
# kube_wait_bound NS NAME [SECONDS]
kube_wait_bound() { check_within "${3:-$CHECK_TIMEOUT}" "PVC $1/$2 to be Bound" kube_pvc_bound "$1" "$2"; }
kube_pv_of() { kubectl -n "$1" get pvc "$2" -o 'jsonpath={.spec.volumeName}'; }
kube_pv_exists() { kubectl get pv "$1" >/dev/null 2>&1; }
kube_pv_gone() { ! kube_pv_exists "$1"; }

# kube_delete_claims NS: deletes every claim of NS and waits (CHECK_TIMEOUT each) until the PVs
# they were bound to are gone.
kube_delete_claims() {
    local ns="$1" pvs pv
    pvs="$(kubectl -n "$ns" get pvc -o 'jsonpath={range .items[*]}{.spec.volumeName}{"\n"}{end}')"
    kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
    while read -r pv; do
        [[ -z "$pv" ]] || check_within "$CHECK_TIMEOUT" "PV $pv to be deleted" kube_pv_gone "$pv"
    done <<<"$pvs"
}

# kube_array_name_of_pv PV: the volume's name on the array; PSO's PVs carry only
# namespace+volumeName.
kube_array_name_of_pv() {
    kubectl get pv "$1" -o json | jq -er '.spec.flexVolume.options
        | .arrayVolume // "\(.namespace)-\(.volumeName)"'
}

# kube_bound_count NS, kube_claim_count NS: claims of NS that are Bound, and all of them.
kube_bound_count() {
    kubectl -n "$1" get pvc -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Bound$' || true
}
kube_claim_count() { kubectl -n "$1" get pvc -o name | grep -c . || true; }
kube_all_claims_bound() { (($(kube_bound_count "$1") == $(kube_claim_count "$1"))); }
# kube_pv_count_in NS: PVs whose claimRef is in NS.
kube_pv_count_in() {
    kubectl get pv -o json | jq --arg ns "$1" '[.items[] | select(.spec.claimRef.namespace == $ns)] | length'
}
kube_pvs_in_are() { [[ "$(kube_pv_count_in "$1")" == "$2" ]]; }

# kube_check_one_volume_per_claim NS: every claim of NS is Bound to pvc-<its uid>, has exactly
# one live array object across all arrays, and no live object lacks a PV (cluster-wide).
kube_check_one_volume_per_claim() {
    local ns="$1" claims expected mismatched live duplicates missing leaked
    claims="$(kubectl -n "$ns" get pvc -o json)"
    expected="$(jq -r --arg p "$PROV_NAME_PREFIX" '.items[] | "\($p)-pvc-\(.metadata.uid)"' <<<"$claims" | sort)"
    mismatched="$(jq -r '.items[] | "\(.spec.volumeName) pvc-\(.metadata.uid)"' <<<"$claims" | awk '$1 != $2')"
    [[ -z "$mismatched" ]] || check_fail "claims bound to a PV not named after their uid: $mismatched"
    live="$(sim_live_everywhere)"
    duplicates="$(uniq -d <<<"$live")"
    [[ -z "$duplicates" ]] || check_fail "objects live on more than one array (duplicates): $duplicates"
    missing="$(comm -23 <(echo "$expected") <(echo "$live"))"
    [[ -z "$missing" ]] || check_fail "claims without a live array object: $missing"
    leaked="$(kube_orphans)"
    [[ -z "$leaked" ]] || check_fail "live array objects without a PV (orphans): $leaked"
}

# kube_orphans: live array objects named like ours (sim_live_everywhere) that no PV in the
# cluster names (PROV_NAME_PREFIX-<PV name>), one a line.
kube_orphans() {
    comm -23 <(sim_live_everywhere) \
        <(kubectl get pv -o json | jq -r --arg p "$PROV_NAME_PREFIX" '.items[].metadata.name | "\($p)-\(.)"' | sort)
}

# --- resizing ------------------------------------------------------------------------
# kube_resize_pvc NS NAME SIZE: the user changes the claim's storage request; prints kubectl's
# answer (an apiserver refusal included) and returns its status.
kube_resize_pvc() {
    kubectl -n "$1" patch pvc "$2" --type=merge \
        -p "$(jq -cn --arg s "$3" '{spec: {resources: {requests: {storage: $s}}}}')" 2>&1
}

# kube_pvc_capacity NS NAME: the claim's status.capacity; kube_pv_capacity PV: the PV's
# spec.capacity (storage, as the API writes them).
kube_pvc_capacity() { kubectl -n "$1" get pvc "$2" -o 'jsonpath={.status.capacity.storage}'; }
kube_pv_capacity() { kubectl get pv "$1" -o 'jsonpath={.spec.capacity.storage}'; }
kube_pv_capacity_is() { [[ "$(kube_pv_capacity "$1")" == "$2" ]]; }
kube_pvc_capacity_is() { [[ "$(kube_pvc_capacity "$1" "$2")" == "$3" ]]; }

# kube_bytes QUANTITY: a storage quantity as the tests write them (plain bytes or Ki..Pi) in bytes.
kube_bytes() {
    jq -nr --arg q "$1" '$q | capture("^(?<n>[0-9]+)(?<u>[KMGTP]i)?$")
        | (.n | tonumber) * ({"": 1, Ki: 1024, Mi: 1048576, Gi: 1073741824, Ti: 1099511627776,
                               Pi: 1125899906842624}[.u // ""]) | floor'
}

# kube_pvc_conditions NS NAME: the types of the claim's status conditions, space-separated.
kube_pvc_conditions() { kubectl -n "$1" get pvc "$2" -o json | jq -r '[.status.conditions[]?.type] | join(" ")'; }
# kube_pvc_has_condition NS NAME TYPE: the claim's status has a condition of that type.
kube_pvc_has_condition() {
    kubectl -n "$1" get pvc "$2" -o json |
        jq -e --arg t "$3" 'any(.status.conditions[]?; .type == $t)' >/dev/null
}

# kube_finish_fs_resize NS NAME: what kubelet does once `expandfs` succeeded (its
# MarkFSResizeFinished): the claim's capacity becomes the PV's, the resize conditions and the
# storage entry of allocatedResourceStatuses go.
kube_finish_fs_resize() {
    local pv capacity
    pv="$(kube_pv_of "$1" "$2")"
    capacity="$(kube_pv_capacity "$pv")"
    kubectl -n "$1" patch pvc "$2" --subresource=status --type=merge -p "$(jq -cn --arg c "$capacity" '{status: {
        capacity: {storage: $c}, conditions: null, allocatedResourceStatuses: {storage: null}}}')" >/dev/null
}

# kube_pv_lacks_annotation PV KEY
kube_pv_lacks_annotation() {
    kubectl get pv "$1" -o json | jq -e --arg k "$2" '.metadata.annotations // {} | has($k) | not' >/dev/null
}

# --- events --------------------------------------------------------------------------
# kube_events_for NS NAME REASON: messages of the object's events with that reason.
kube_events_for() {
    kubectl -n "$1" get events --field-selector "involvedObject.name=$2,reason=$3" \
        -o 'jsonpath={range .items[*]}{.message}{"\n"}{end}' 2>/dev/null
}

# kube_has_event NS NAME REASON [PATTERN]: the object has an event with that reason (and a
# message matching the extended regex PATTERN).
kube_has_event() {
    kube_events_for "$1" "$2" "$3" | grep -Eq -- "${4:-.}"
}
