#!/usr/bin/env bash
# Monitoring as Rancher users get it, proven with a real Prometheus: the chart rendered with its
# monitoring objects on (short "for" durations and 1 s intervals through chart values);
# Prometheus scrapes the running provisioner and a node installer with the jobs of the rendered
# ServiceMonitor and PodMonitor and evaluates the rendered PrometheusRule. An array made
# unreachable in the simulator drives flashvol_array_reachable to 0 and FlashvolArrayUnreachable
# to firing; an array filled through /_sim/space drives FlashvolArrayFull; a refused mount on the
# node drives FlashvolNodeMountFailures; every dashboard query runs on that Prometheus and reads
# only metrics it scraped.
set -euo pipefail
# shellcheck source=../lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
scenario_begin "a real Prometheus with the chart's monitors and alert rules: unreachable and full arrays, failing mounts, the dashboard's queries"

ns=e2e-monitoring
dir="$WORKDIR/monitoring"
mkdir -p "$dir"
# Whatever happens, the processes this scenario started go; the shared provisioner comes back
# through the suite (prov_ensure_main).
on_exit() {
    local rc=$?
    prom_stop
    flex_stop_installer
    prov_stop mon 2>/dev/null || true
    sim_admin_send fa-b DELETE faults 2>/dev/null || true
    sim_admin_send fa-a DELETE space 2>/dev/null || true
    scenario_on_exit "$rc"
}
trap on_exit EXIT
prom_require

log_step "render the chart with ServiceMonitor, PrometheusRule, node metrics and PodMonitor on"
"$REPO_ROOT/install/tools/helm.sh" template flashvol "$REPO_ROOT/install/helm/flashvol" -n "$KUBE_NAMESPACE" \
    --api-versions monitoring.coreos.com/v1 \
    --set monitoring.arrayPollSeconds=1 \
    --set monitoring.serviceMonitor.enabled=true,monitoring.serviceMonitor.interval=1s,monitoring.serviceMonitor.scrapeTimeout=1s \
    --set monitoring.prometheusRule.enabled=true,monitoring.prometheusRule.interval=1s \
    --set monitoring.prometheusRule.arrayUnreachable.for=2s,monitoring.prometheusRule.arrayFull.for=2s \
    --set monitoring.prometheusRule.nodeMountFailures.for=0s \
    --set monitoring.nodeMetrics.enabled=true,monitoring.nodeMetrics.podMonitor.enabled=true \
    --set monitoring.nodeMetrics.podMonitor.interval=1s \
    --set "monitoring.nodeMetrics.statsFile=$WORKDIR/node/stats/stats.json" \
    --set-json "flexDriver.nodeSettings={\"logFile\":\"$WORKDIR/node/installer-flex.log\",\"locksDir\":\"$WORKDIR/node/installer-locks\"}" \
    >"$dir/rendered.yaml" 2>"$dir/helm.log" || check_fail "helm template: $(cat "$dir/helm.log")"
python3 "$PROM_CHECK" rules "$dir/rendered.yaml" >"$dir/rules.yaml" || check_fail "no PrometheusRule rendered"
rendered_object() { # KIND NAME: the rendered object as JSON
    python3 -c 'import json, sys, yaml
print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == sys.argv[2] and d["metadata"]["name"] == sys.argv[3]][0]))' \
        "$dir/rendered.yaml" "$1" "$2"
}

log_step "the provisioner as the rendered Deployment runs it (--array-poll-seconds from the chart); the node installer with --metrics-address"
poll_arg="$(rendered_object Deployment pure-provisioner | jq -r '.spec.template.spec.containers[0].args[] | select(startswith("--array-poll-seconds="))')"
check_eq "array poll argument of the rendered Deployment" "$poll_arg" "--array-poll-seconds=1"
prov_stop main
prov_start mon "$poll_arg"
check_within "$CHECK_TIMEOUT" "provisioner mon to lead" prov_leads mon
node_port="$(host_free_port 19809)"
flex_start_installer "$(rendered_object DaemonSet pure-flex)" "$node_port"

log_step "Prometheus with the rendered ServiceMonitor's and PodMonitor's scrape jobs and the rendered rules"
prom_start "$dir/rendered.yaml" "$dir/rules.yaml" \
    "ServiceMonitor@$(prov_http mon)" \
    "PodMonitor@127.0.0.1:$node_port@__meta_kubernetes_pod_node_name=$FLEX_NODE_NAME"
check_within 30 "both targets up" prom_has 'count(up == 1) == 2'
fa_a="$(sim_field fa-a endpoint)"
fa_b="$(sim_field fa-b endpoint)"
check_within 30 "flashvol_array_reachable 1 for fa-b in Prometheus" \
    prom_has "flashvol_array_reachable{array=\"$fa_b\",backend=\"block\"} == 1"
check_eq "FlashArray capacity of fa-a in Prometheus" \
    "$(prom_value "flashvol_array_capacity_bytes{array=\"$fa_a\"}")" "$SIM_FA_A_CAPACITY"
prom_quiet FlashvolArrayUnreachable || check_fail "FlashvolArrayUnreachable fires while every array answers"
prom_quiet FlashvolArrayFull || check_fail "FlashvolArrayFull fires while no array is full"

log_step "a claim provisioned and deleted, so every series of the dashboard has samples"
kube_make_namespace "$ns"
kube_create_pvc "$ns" watched pure-block 1Gi
kube_wait_bound "$ns" watched
pv="$(kube_pv_of "$ns" watched)"
kubectl -n "$ns" delete pvc watched --wait=false >/dev/null
check_within "$CHECK_TIMEOUT" "PV $pv deleted" bash -c "! kubectl get pv '$pv' >/dev/null 2>&1"
check_within 30 "flashvol_deletes_total{outcome=\"success\"} in Prometheus" \
    prom_has 'flashvol_deletes_total{outcome="success"} > 0'

log_step "fa-b stops answering (the simulator drops every connection): reachability 0, FlashvolArrayUnreachable fires naming it"
sim_admin_send fa-b PUT faults '{"drop_rate": 1.0}'
check_within 30 "flashvol_array_reachable 0 for fa-b in Prometheus" \
    prom_has "flashvol_array_reachable{array=\"$fa_b\"} == 0"
check_within 30 "FlashvolArrayUnreachable firing for fa-b" prom_firing FlashvolArrayUnreachable "array=$fa_b" severity=critical
description="$(prom_alert_annotation FlashvolArrayUnreachable description)"
[[ "$description" == *"FlashArray $fa_b"* ]] || check_fail "the alert's description does not name the array: $description"
log_step "FlashvolArrayUnreachable: $description"
prom_quiet FlashvolArrayUnreachable "array=$fa_a" || check_fail "FlashvolArrayUnreachable fires for fa-a, which answers"
sim_admin_send fa-b DELETE faults
check_within 30 "FlashvolArrayUnreachable resolved once fa-b answers again" prom_quiet FlashvolArrayUnreachable

log_step "fa-a reports 90% used (/_sim/space): FlashvolArrayFull fires naming it"
sim_admin_send fa-a PUT space "$(jq -n --argjson used "$((SIM_FA_A_CAPACITY * 9 / 10))" '{used: $used}')"
check_within 30 "FlashvolArrayFull firing for fa-a" prom_firing FlashvolArrayFull "array=$fa_a"
summary="$(prom_alert_annotation FlashvolArrayFull summary)"
check_eq "FlashvolArrayFull summary" "$summary" "Array $fa_a is 90% full"
prom_quiet FlashvolArrayFull "array=$fa_b" || check_fail "FlashvolArrayFull fires for fa-b, which is not full"
sim_admin_send fa-a DELETE space

log_step "a mount the node's driver refuses is counted on the node: FlashvolNodeMountFailures fires naming the node"
check_within 30 "the node's zero counters scraped" \
    prom_has "flashvol_flex_calls_total{callout=\"mount\",reason=\"request\",node=\"$FLEX_NODE_NAME\"} == 0"
# kubelet runs the driver the installer put in place (the one whose node settings name statsFile).
FLEX_BIN="$FLEX_INSTALLED_BIN" flex_exec /nonexistent mount /not/a/pod/dir '{}' >"$dir/refused.json" 2>/dev/null || true
check_eq "reply to the refused mount" "$(jq -r .status "$dir/refused.json")" Failure
check_within 30 "the refused mount counted in Prometheus" \
    prom_has "flashvol_flex_calls_total{callout=\"mount\",reason=\"request\",node=\"$FLEX_NODE_NAME\"} == 1"
check_within 30 "FlashvolNodeMountFailures firing" prom_firing FlashvolNodeMountFailures "node=$FLEX_NODE_NAME" reason=request

log_step "every dashboard query runs on this Prometheus and reads only metrics it scraped"
prom_metric_names >"$dir/scraped-names"
python3 "$PROM_CHECK" dashboard "$REPO_ROOT/install/helm/flashvol/dashboards/flashvol.json" "$dir/scraped-names" ||
    check_fail "the dashboard reads metrics Prometheus did not scrape from flashvol"
queries=0
while IFS= read -r expr; do
    prom_query "$expr" >/dev/null || check_fail "dashboard query refused by Prometheus: $expr"
    queries=$((queries + 1))
done < <(python3 "$PROM_CHECK" exprs "$REPO_ROOT/install/helm/flashvol/dashboards/flashvol.json")
log_step "$queries dashboard queries evaluated"

kubectl delete namespace "$ns" --wait=false >/dev/null
