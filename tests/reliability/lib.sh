# shellcheck shell=bash
# Helpers the reliability scenarios share on top of tests/e2e/lib.sh (sourced, never executed):
# fault sets on all simulated arrays, a simulator restart on the same ports, claim bursts and the
# "one live array object per PV, none without" accounting.

# shellcheck source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

REL_ARRAYS=(fa-a fa-b fb-1)

# set_faults JSON: replaces the fault set of every simulated array (see tests/arraysim/README.md).
set_faults() {
    local array
    for array in "${REL_ARRAYS[@]}"; do
        curl -fsS --max-time 10 --cacert "$E2E_CA" -X POST -d "$1" "$(sim_field "$array" admin_url)/faults" >/dev/null ||
            return 1
    done
}

clear_faults() {
    local array
    for array in "${REL_ARRAYS[@]}"; do
        curl -fsS --max-time 10 --cacert "$E2E_CA" -X DELETE "$(sim_field "$array" admin_url)/faults" >/dev/null ||
            return 1
    done
}

# sim_restart_same_ports: stops the simulator process and serves the same arrays again on the
# same ports from the state on disk, as an array's management service restarting would look to
# the provisioner (connections refused for a moment, then the same endpoint). Faults are not
# kept across the restart.
sim_restart_same_ports() {
    local config="$E2E_ROOT/sim/arrays.json" fixed="$E2E_ROOT/sim/arrays-fixed.json" fresh="$E2E_ROOT/sim/arrays.jsonl.new"
    jq --slurpfile live "$E2E_ROOT/sim/arrays.jsonl" \
        '.arrays |= map(. as $a | .listen = ([$live[] | select(.name == $a.name)][0].endpoint))' \
        "$config" >"$fixed" || return 1
    sim_stop
    setsid "$E2E_BIN_DIR/flashvol-arraysim" --config "$fixed" \
        </dev/null >"$fresh" 2>>"$E2E_ROOT/logs/arraysim.log" &
    echo "$!" >"$E2E_ROOT/pids/arraysim"
    local deadline=$((SECONDS + 30))
    until [[ $(grep -c '"admin_url"' "$fresh" 2>/dev/null) == 3 ]]; do
        kill -0 "$(cat "$E2E_ROOT/pids/arraysim")" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
    mv "$fresh" "$E2E_ROOT/sim/arrays.jsonl"
}

# create_claims NS COUNT PREFIX: COUNT claims in one request (even: pure-block, odd: pure-file).
create_claims() {
    jq -n --arg ns "$1" --argjson n "$2" --arg p "$3" '{apiVersion: "v1", kind: "List", items: [range($n) | {
        apiVersion: "v1", kind: "PersistentVolumeClaim",
        metadata: {name: "\($p)-\(.)", namespace: $ns},
        spec: {storageClassName: (if . % 2 == 0 then "pure-block" else "pure-file" end),
               accessModes: ["ReadWriteOnce"], resources: {requests: {storage: "1Gi"}}}}]}' |
        kubectl create -f - >/dev/null
}

bound_count() {
    kubectl -n "$1" get pvc -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Bound$' || true
}
claim_count() { kubectl -n "$1" get pvc -o name | grep -c . || true; }
all_claims_bound() { (($(bound_count "$1") == $(claim_count "$1"))); }
pv_count_in() {
    kubectl get pv -o json | jq --arg ns "$1" '[.items[] | select(.spec.claimRef.namespace == $ns)] | length'
}
pvs_in_are() { [[ "$(pv_count_in "$1")" == "$2" ]]; }

# live_everywhere: every live k8s-pvc-* object on every array, one line each (duplicates kept).
live_everywhere() {
    local array
    for array in "${REL_ARRAYS[@]}"; do live_array_volumes "$array"; done | grep "^$E2E_PREFIX-pvc-" | sort || true
}

# check_one_volume_per_claim NS: every claim of NS is Bound to pvc-<its uid>, has exactly one live
# array object across all arrays, and no live object lacks a PV (cluster-wide).
check_one_volume_per_claim() {
    local ns="$1" claims expected mismatched live duplicates missing all_pvs leaked
    claims="$(kubectl -n "$ns" get pvc -o json)"
    expected="$(jq -r --arg p "$E2E_PREFIX" '.items[] | "\($p)-pvc-\(.metadata.uid)"' <<<"$claims" | sort)"
    mismatched="$(jq -r '.items[] | "\(.spec.volumeName) pvc-\(.metadata.uid)"' <<<"$claims" | awk '$1 != $2')"
    [[ -z "$mismatched" ]] || fail "claims bound to a PV not named after their uid: $mismatched"
    live="$(live_everywhere)"
    duplicates="$(uniq -d <<<"$live")"
    [[ -z "$duplicates" ]] || fail "objects live on more than one array (duplicates): $duplicates"
    missing="$(comm -23 <(echo "$expected") <(echo "$live"))"
    [[ -z "$missing" ]] || fail "claims without a live array object: $missing"
    all_pvs="$(kubectl get pv -o json | jq -r --arg p "$E2E_PREFIX" '.items[].metadata.name | "\($p)-\(.)"' | sort)"
    leaked="$(comm -23 <(echo "$live") <(echo "$all_pvs"))"
    [[ -z "$leaked" ]] || fail "live array objects without a PV (orphans): $leaked"
}

# none_live NAMES: none of the named objects (one per line) is live on any array.
none_live() { [[ -z "$(live_everywhere | grep -Fx -f <(echo "$1") || true)" ]]; }
