#!/usr/bin/env bash
# The provisioner runs as the Deployment's pod. During a burst of claims its pod is deleted at
# once (--grace-period=0 --force: the ReplicaSet makes a new pod), and later the new pod's
# process is SIGKILLed on the node (kubelet restarts the container). All claims end Bound, and
# the arrays hold exactly one volume per PV: no duplicate, no orphan. Deleting the claims
# destroys exactly those volumes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$NODE_DIR/node.sh"
node_scenario_begin "12 provisioner pod killed during a burst of claims: all Bound, no duplicate or orphan volume"

ns=node-12
count="${FLASHVOL_NODE_BURST:-24}"
node_make_namespace "$ns"
provisioner_pod() {
    kubectl -n "$NODE_SYSTEM_NAMESPACE" get pods -l app=pure-provisioner \
        --field-selector=status.phase=Running -o 'jsonpath={.items[0].metadata.name}' 2>/dev/null
}
first="$(provisioner_pod)"
[[ -n "$first" ]] || check_fail "no running provisioner pod"
before_a="$(sim_live_volumes fa-a)" before_b="$(sim_live_volumes fa-b)"

claims=()
for i in $(seq 1 "$count"); do claims+=("burst-$i"); done
half=$((count / 2))
log_step "create $half claims, force-delete provisioner pod $first, create the rest"
for claim in "${claims[@]:0:half}"; do kube_create_pvc "$ns" "$claim" pure-block 1Gi; done
kubectl -n "$NODE_SYSTEM_NAMESPACE" delete pod "$first" --grace-period=0 --force >/dev/null 2>&1
for claim in "${claims[@]:half}"; do kube_create_pvc "$ns" "$claim" pure-block 1Gi; done
second_running() { local p; p="$(provisioner_pod)"; [[ -n "$p" && "$p" != "$first" ]]; }
check_within "$NODE_TIMEOUT" "the Deployment to run a new provisioner pod" second_running
second="$(provisioner_pod)"

log_step "SIGKILL the provisioner process of pod $second on the node"
container="$(kubectl -n "$NODE_SYSTEM_NAMESPACE" get pod "$second" -o 'jsonpath={.status.containerStatuses[0].containerID}')"
pid="$(node_ctr tasks ls | awk -v id="${container#containerd://}" '$1 == id { print $2 }')"
[[ -n "$pid" && "$(readlink "/proc/$pid/exe")" == */flashvol-provisioner ]] ||
    check_fail "no flashvol-provisioner process for container $container"
kill -KILL "$pid"
restarted() { (($(node_pod_restarts "$NODE_SYSTEM_NAMESPACE" "$second") >= 1)); }
check_within "$NODE_TIMEOUT" "kubelet to restart the provisioner container" restarted

for claim in "${claims[@]}"; do kube_wait_bound "$ns" "$claim" 240; done
expected=()
for claim in "${claims[@]}"; do
    uid="$(kubectl -n "$ns" get pvc "$claim" -o 'jsonpath={.metadata.uid}')"
    check_eq "PV of $claim" "$(kube_pv_of "$ns" "$claim")" "pvc-$uid"
    expected+=("k8s-pvc-$uid")
done
new_volumes="$( (comm -13 <(echo "$before_a") <(sim_live_volumes fa-a); comm -13 <(echo "$before_b") <(sim_live_volumes fa-b)) | sort)"
check_eq "new volumes on the arrays" "$new_volumes" "$(printf '%s\n' "${expected[@]}" | sort)"
log_step "all $count claims Bound; the arrays gained exactly their $count volumes"

node_claims_released "$ns" "${claims[@]}"
check_eq "volumes on fa-a after deleting the claims" "$(sim_live_volumes fa-a)" "$before_a"
check_eq "volumes on fa-b after deleting the claims" "$(sim_live_volumes fa-b)" "$before_b"
log_step "deleting the claims destroyed exactly those volumes"
node_scenario_end "$ns"
