#!/usr/bin/env bash
# Two provisioner replicas: only the holder of the Lease acts (the Lease's holderIdentity names
# it, and only its log shows provisioning); when it is SIGKILLed, the standby takes the Lease
# over once it expires and provisions the next claim.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario_begin "two replicas: only the Lease holder acts; the standby takes over when it dies"

ns=e2e-leader
make_namespace "$ns"

provisioned_in_log() { grep -q "claim $ns/$2: provisioned" "$(provisioner_log "$1")"; }
trap 'rc=$?; provisioner_kill replica-1; provisioner_kill replica-2; scenario_on_exit "$rc"' EXIT

step "stop the shared provisioner (SIGTERM releases its Lease)"
provisioner_stop main
step "start replica-1, wait until it holds the Lease, then start replica-2"
provisioner_start replica-1
wait_for "$E2E_TIMEOUT" "replica-1 to hold Lease $E2E_LEASE" provisioner_leads replica-1
provisioner_start replica-2
leader=replica-1 standby=replica-2
step "Lease $E2E_NAMESPACE_SYSTEM/$E2E_LEASE holderIdentity: $(lease_holder)"

step "claim first-claim: provisioned by the leader only"
create_pvc "$ns" first-claim pure-block 1Gi
wait_pvc_bound "$ns" first-claim
provisioned_in_log "$leader" first-claim || fail "the leader's log does not show first-claim provisioned"
! provisioned_in_log "$standby" first-claim || fail "the standby $standby provisioned first-claim too"
lease_held_by "$leader" || fail "the Lease moved to $(lease_holder) although $leader is alive"
curl -fsS "http://$(provisioner_http "$standby")/metrics" | grep -qx 'flashvol_leader 0' ||
    fail "the standby $standby does not report flashvol_leader 0"
step "only $leader logged 'claim $ns/first-claim: provisioned'; $standby reports flashvol_leader 0"

step "SIGKILL the leader $leader (no Lease release): $standby must take over after the Lease expires"
provisioner_kill "$leader"
wait_for 60 "$standby to take Lease $E2E_LEASE over" provisioner_leads "$standby"
step "Lease holderIdentity now: $(lease_holder)"
create_pvc "$ns" second-claim pure-block 1Gi
wait_pvc_bound "$ns" second-claim
provisioned_in_log "$standby" second-claim || fail "the new leader's log does not show second-claim provisioned"
step "$standby provisioned second-claim"

step "clean up: delete the claims while $standby leads, then hand back to the shared provisioner"
pvs=("$(pv_of "$ns" first-claim)" "$(pv_of "$ns" second-claim)")
kubectl -n "$ns" delete pvc --all --wait=false >/dev/null
for pv in "${pvs[@]}"; do wait_for "$E2E_TIMEOUT" "PV $pv to be deleted" pv_gone "$pv"; done
provisioner_stop "$standby"
kubectl delete namespace "$ns" --wait=false >/dev/null
