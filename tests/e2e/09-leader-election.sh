#!/usr/bin/env bash
# Two provisioner replicas: only the holder of the Lease acts (the Lease's holderIdentity names
# it, and only its log shows provisioning); when it is SIGKILLed, the standby takes the Lease
# over once it expires and provisions the next claim.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "two replicas: only the Lease holder acts; the standby takes over when it dies"

ns=e2e-leader
kube_make_namespace "$ns"

provisioned_in_log() { grep -q "claim $ns/$2: provisioned" "$(prov_log "$1")"; }
trap 'rc=$?; prov_kill replica-1; prov_kill replica-2; scenario_on_exit "$rc"' EXIT

log_step "stop the shared provisioner (SIGTERM releases its Lease)"
prov_stop main
log_step "start replica-1, wait until it holds the Lease, then start replica-2"
prov_start replica-1
check_within "$CHECK_TIMEOUT" "replica-1 to hold Lease $PROV_LEASE" prov_leads replica-1
prov_start replica-2
leader=replica-1 standby=replica-2
log_step "Lease $KUBE_NAMESPACE/$PROV_LEASE holderIdentity: $(prov_lease_holder)"

log_step "claim first-claim: provisioned by the leader only"
kube_create_pvc "$ns" first-claim pure-block 1Gi
kube_wait_bound "$ns" first-claim
provisioned_in_log "$leader" first-claim || check_fail "the leader's log does not show first-claim provisioned"
! provisioned_in_log "$standby" first-claim || check_fail "the standby $standby provisioned first-claim too"
prov_lease_held_by "$leader" || check_fail "the Lease moved to $(prov_lease_holder) although $leader is alive"
[[ "$(prov_leader_gauge "$standby")" == 0 ]] ||
    check_fail "the standby $standby does not report flashvol_leader 0"
log_step "only $leader logged 'claim $ns/first-claim: provisioned'; $standby reports flashvol_leader 0"

log_step "SIGKILL the leader $leader (no Lease release): $standby must take over after the Lease expires"
prov_kill "$leader"
check_within 60 "$standby to take Lease $PROV_LEASE over" prov_leads "$standby"
log_step "Lease holderIdentity now: $(prov_lease_holder)"
kube_create_pvc "$ns" second-claim pure-block 1Gi
kube_wait_bound "$ns" second-claim
provisioned_in_log "$standby" second-claim || check_fail "the new leader's log does not show second-claim provisioned"
log_step "$standby provisioned second-claim"

log_step "clean up: delete the claims while $standby leads, then hand back to the shared provisioner"
kube_delete_claims "$ns"
prov_stop "$standby"
kubectl delete namespace "$ns" --wait=false >/dev/null
