#!/usr/bin/env python3
"""Checks of the chart's monitoring objects, shared by install/test/monitoring.sh (no cluster)
and the e2e scenario with a real Prometheus (tests/e2e/15-monitoring-with-prometheus.sh).

    promcheck.py rules RENDERED.yaml                 PrometheusRule spec -> Prometheus rule file (stdout)
    promcheck.py scrape-config RENDERED.yaml KIND@ADDRESS[@LABEL=VALUE...]...
                                                     the scrape job of each ServiceMonitor/PodMonitor named,
                                                     scraping ADDRESS with those target labels (stdout)
    promcheck.py alerts RULES.yaml RUNBOOK.md NAMES  every alert: summary, description, runbook_url
                                                     whose anchor is a RUNBOOK.md heading; known metrics only
    promcheck.py dashboard DASHBOARD.json NAMES      loads, every panel query and variable names known metrics
    promcheck.py exprs DASHBOARD.json                the panel queries, Grafana variables filled in, one a line

NAMES is a file with one metric name a line (from the code: the provisioner's and the node
installer's exposition, or from a real Prometheus' /api/v1/label/__name__/values).
Exits non-zero with the reasons on stderr when a check fails.
"""

import json
import re
import sys

import yaml

# PromQL words that are not metric names: operators, modifiers, aggregations and functions
# (functions are also recognised by the "(" that follows them).
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2", "sum", "min", "max", "avg", "count", "stddev",
    "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def fail(problems):
    for p in problems:
        print("promcheck: " + p, file=sys.stderr)
    sys.exit(1 if problems else 0)


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def read_names(path):
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def documents(path, kind):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d and d.get("kind") == kind]


def cmd_rules(rendered):
    rules = documents(rendered, "PrometheusRule")
    if len(rules) != 1:
        fail([f"{rendered}: expected one PrometheusRule, found {len(rules)}"])
    yaml.safe_dump(rules[0]["spec"], sys.stdout, sort_keys=False, width=1000)


def scrape_job(rendered, kind, address, labels):
    """The scrape job prometheus-operator would generate from the monitor's endpoint, with the
    pod's address given as a static target (the e2e runs the programs as local processes) and
    `labels` standing in for the Kubernetes discovery labels its relabelings read."""
    monitors = documents(rendered, kind)
    if len(monitors) != 1:
        fail([f"{rendered}: expected one {kind}, found {len(monitors)}"])
    monitor = monitors[0]
    key = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
    endpoint = monitor["spec"][key][0]
    meta = monitor["metadata"]
    job = {
        "job_name": f'{kind.lower()}/{meta["namespace"]}/{meta["name"]}',
        "metrics_path": endpoint.get("path", "/metrics"),
        "scheme": endpoint.get("scheme", "http"),
        "static_configs": [{"targets": [address], "labels": {"namespace": meta["namespace"], **labels}}],
    }
    for field, prom in [("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout")]:
        if field in endpoint:
            job[prom] = endpoint[field]
    relabel = [
        {
            "source_labels": r.get("sourceLabels", []),
            "target_label": r["targetLabel"],
            "action": r.get("action", "replace").lower(),
        }
        for r in endpoint.get("relabelings", [])
    ]
    if relabel:
        job["relabel_configs"] = relabel
    return job


def cmd_scrape_config(rendered, targets):
    jobs = []
    for target in targets:
        kind, address, *pairs = target.split("@")
        jobs.append(scrape_job(rendered, kind, address, dict(p.split("=", 1) for p in pairs)))
    yaml.safe_dump({"scrape_configs": jobs}, sys.stdout, sort_keys=False)


def anchors(runbook):
    """GitHub's anchors of the Markdown headings."""
    with open(runbook) as f:
        heads = [l.lstrip("#").strip() for l in f if l.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in heads}


def cmd_alerts(rules_file, runbook, names_file):
    with open(rules_file) as f:
        groups = yaml.safe_load(f)["groups"]
    names, heads, problems, seen = read_names(names_file), anchors(runbook), [], 0
    for group in groups:
        for rule in group["rules"]:
            alert = rule.get("alert")
            if not alert:
                continue
            seen += 1
            ann = rule.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    problems.append(f"{alert}: no {key}")
            anchor = ann.get("runbook_url", "").rpartition("#")[2]
            if anchor != alert.lower() or anchor not in heads:
                problems.append(f"{alert}: runbook_url #{anchor} is not the section '## {alert}' of {runbook}")
            if "severity" not in rule.get("labels", {}):
                problems.append(f"{alert}: no severity label")
            for name in sorted(metric_names(rule["expr"]) - names):
                problems.append(f"{alert}: reads {name}, which nothing exports")
    if seen == 0:
        problems.append(f"{rules_file}: no alerts")
    fail(problems)


def panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def cmd_dashboard(path, names_file):
    with open(path) as f:
        dashboard = json.load(f)
    names, problems, queries = read_names(names_file), [], 0
    for p in panels(dashboard):
        for t in p.get("targets", []):
            queries += 1
            expr = t.get("expr", "")
            found = metric_names(expr)
            if not found:
                problems.append(f"panel {p.get('title')!r}: query names no metric: {expr}")
            for name in sorted(found - names):
                problems.append(f"panel {p.get('title')!r}: {name} is not exported")
    for v in dashboard.get("templating", {}).get("list", []):
        m = re.match(r"label_values\((\w+)", v.get("query", "") if isinstance(v.get("query"), str) else "")
        if v.get("type") == "query" and (not m or m.group(1) not in names):
            problems.append(f"variable {v.get('name')}: {v.get('query')} does not read an exported metric")
    if queries == 0:
        problems.append(f"{path}: no queries")
    if not dashboard.get("uid") or not dashboard.get("title"):
        problems.append(f"{path}: no uid or title")
    fail(problems)


def cmd_exprs(path):
    with open(path) as f:
        dashboard = json.load(f)
    for p in panels(dashboard):
        for t in p.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "1m")
            print(re.sub(r"\$\w+", ".*", expr))


def main(argv):
    commands = {
        "rules": (cmd_rules, 1),
        "alerts": (cmd_alerts, 3),
        "dashboard": (cmd_dashboard, 2),
        "exprs": (cmd_exprs, 1),
    }
    if len(argv) >= 3 and argv[0] == "scrape-config":
        return cmd_scrape_config(argv[1], argv[2:])
    if not argv or argv[0] not in commands or len(argv) - 1 != commands[argv[0]][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    command, _ = commands[argv[0]]
    command(*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
