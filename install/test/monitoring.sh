#!/usr/bin/env bash
# The chart's monitoring objects without a cluster (docs/MONITORING.md):
#   - no monitoring.coreos.com object by default, nor when the cluster lacks the API;
#   - with the API: ServiceMonitor, Service, PodMonitor, PrometheusRule and the dashboard
#     ConfigMap as documented, node metrics wired into the DaemonSet;
#   - promtool check rules / test rules (install/test/monitoring/rules-test.yaml) on the rendered
#     rules; every alert with summary, description, severity and a runbook_url into
#     docs/RUNBOOK.md;
#   - every metric an alert or dashboard query reads is exported by the code (names from the
#     provisioner's registrations and the node exposition, which promtool check metrics lints).
# Installs Debian's prometheus (for promtool) and python3-yaml when missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

check="${INSTALL_DIR}/test/monitoring/promcheck.py"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
render() { "${HELM}" template flashvol "${CHART}" --namespace pure-system "$@"; }
operator=(--api-versions monitoring.coreos.com/v1)
everything=()
for value in serviceMonitor.enabled prometheusRule.enabled nodeMetrics.enabled nodeMetrics.podMonitor.enabled grafanaDashboard.enabled; do
    everything+=(--set "monitoring.${value}=true")
done

need() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    [[ $(id -u) == 0 ]] || fail "$1 is missing: apt-get install $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null; } ||
        fail "cannot install $2"
}
need promtool prometheus
python3 -c 'import yaml' 2>/dev/null || need /usr/lib/python3/dist-packages/yaml python3-yaml

# 1. Off by default, and never on a cluster without the prometheus-operator API.
render > "${work}/default.yaml"
! grep -q 'monitoring.coreos.com' "${work}/default.yaml" || fail "the default render has monitoring.coreos.com objects"
! grep -q 'flashvol-dashboard\|--metrics-address\|statsFile\|9809' "${work}/default.yaml" || fail "the default render has monitoring parts"
render "${everything[@]}" > "${work}/no-api.yaml"
! grep -q 'monitoring.coreos.com' "${work}/no-api.yaml" || fail "monitoring.coreos.com objects rendered for a cluster without the API"
pass "no monitoring.coreos.com object by default, nor without the API when enabled"

# 2. Everything on, on a cluster serving the API.
render "${operator[@]}" "${everything[@]}" > "${work}/all.yaml"
"${HELM}" lint --strict "${CHART}" "${everything[@]}" >/dev/null || fail "helm lint with monitoring on"
for kind in ServiceMonitor PodMonitor PrometheusRule; do
    [[ "$(grep -c "^kind: ${kind}$" "${work}/all.yaml")" == 1 ]] || fail "expected one ${kind}"
done
python3 - "${work}/all.yaml" "${CHART}/dashboards/flashvol.json" <<'PY' || fail "monitoring objects are not as documented"
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
svc = by[("Service", "pure-provisioner-metrics")]
sm = by[("ServiceMonitor", "pure-provisioner")]
assert all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()), "ServiceMonitor does not select the Service"
assert svc["spec"]["selector"] == {"app": "pure-provisioner"} and svc["spec"]["ports"][0]["targetPort"] == "http"
cm = by[("ConfigMap", "flashvol-dashboard")]
assert cm["metadata"]["namespace"] == "cattle-dashboards" and cm["metadata"]["labels"]["grafana_dashboard"] == "1", "Rancher's Grafana sidecar would not load the dashboard"
assert json.loads(cm["data"]["flashvol.json"]) == json.load(open(sys.argv[2])), "the ConfigMap does not carry the dashboard file"
ds = by[("DaemonSet", "pure-flex")]["spec"]["template"]["spec"]
c = ds["containers"][0]
assert "--metrics-address=0.0.0.0:9809" in c["args"] and c["ports"] == [{"name": "metrics", "containerPort": 9809, "protocol": "TCP"}]
env = {e["name"]: e.get("value") for e in c["env"]}
assert json.loads(env["FLASHVOL_NODE_SETTINGS"])["statsFile"] == "/run/flashvol-flex/stats.json"
assert {"name": "flex-stats", "mountPath": "/run/flashvol-flex", "readOnly": True} in c["volumeMounts"]
assert {"name": "flex-stats", "hostPath": {"path": "/run/flashvol-flex", "type": "DirectoryOrCreate"}} in ds["volumes"]
annotations = by[("DaemonSet", "pure-flex")]["spec"]["template"]["metadata"]["annotations"]
assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {"prometheus.io/scrape": "true", "prometheus.io/port": "9809", "prometheus.io/path": "/metrics"}, "pure-flex pods lack the scrape annotations"
pm = by[("PodMonitor", "pure-flex")]
assert pm["spec"]["selector"]["matchLabels"] == {"app": "pure-flex"} and pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
dep = by[("Deployment", "pure-provisioner")]["spec"]["template"]["spec"]["containers"][0]
assert "--array-poll-seconds=60" in dep["args"]
PY
pass "with the API: ServiceMonitor and Service, PodMonitor, PrometheusRule, dashboard ConfigMap for Rancher's Grafana, node metrics in the DaemonSet"

# Values: a node setting of the user's wins; bad values are refused, naming them.
got="$(render --set monitoring.nodeMetrics.enabled=true --set-json 'flexDriver.nodeSettings={"statsFile":"/var/run/mine.json"}' --show-only templates/flex-daemon.yaml)"
grep -q 'mine.json' <<<"${got}" || fail "flexDriver.nodeSettings.statsFile was overridden"
bad() { # message values...
    local msg="$1" out
    shift
    if out="$(render "${operator[@]}" "$@" 2>&1)"; then fail "rendering with $* should fail"; fi
    grep -q -- "${msg}" <<<"${out}" || fail "rendering with $* failed without naming ${msg}: ${out}"
}
bad 'arrayPollSeconds' --set monitoring.arrayPollSeconds=0
bad 'arrayFull.percent' --set monitoring.prometheusRule.enabled=true,monitoring.prometheusRule.arrayFull.percent=150
bad 'statsFile' --set monitoring.nodeMetrics.enabled=true,monitoring.nodeMetrics.statsFile=relative.json
pass "node settings of the user's win; bad monitoring values are refused, naming them"

# 3. The alert rules, as rendered with their defaults (node metrics on: every alert present).
python3 "${check}" rules "${work}/all.yaml" > "${work}/rules.yaml"
promtool check rules "${work}/rules.yaml" >/dev/null || { promtool check rules "${work}/rules.yaml"; fail "promtool check rules"; }
cp "${INSTALL_DIR}/test/monitoring/rules-test.yaml" "${work}/"
promtool test rules "${work}/rules-test.yaml" || fail "promtool test rules"
pass "promtool check rules and test rules: each alert fires and stays quiet as its tests say"

# 4. Metric names from the code, not from a list written by hand.
(cd "${ROOT_DIR}" && cargo run -q --locked -p flashvol-provisioner --example metric_names) > "${work}/names" ||
    fail "cannot list the provisioner's metrics"
(cd "${ROOT_DIR}" && cargo run -q --locked -p flashvol-flexdriver --example node_metrics) > "${work}/node.prom" ||
    fail "cannot print the node metrics"
promtool check metrics < "${work}/node.prom" || fail "promtool check metrics on the node exposition"
grep -v '^#' "${work}/node.prom" | sed 's/[{ ].*//' | sort -u >> "${work}/names"
python3 "${check}" alerts "${work}/rules.yaml" "${ROOT_DIR}/docs/RUNBOOK.md" "${work}/names" ||
    fail "alerts without summary, description, severity or runbook section, or reading unknown metrics"
python3 "${check}" dashboard "${CHART}/dashboards/flashvol.json" "${work}/names" ||
    fail "the dashboard reads metrics nothing exports"
pass "every alert has summary, description, severity and a RUNBOOK.md section; alerts and dashboard read only exported metrics"
