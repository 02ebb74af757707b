# shellcheck shell=bash
# A real Prometheus (part of harness.sh): Debian's `prometheus` binary run as a child process of
# the run, with a config made of the scrape jobs the chart's ServiceMonitor/PodMonitor describe
# and the rule file of its PrometheusRule (install/test/monitoring/promcheck.py converts them);
# queries and alerts through its HTTP API. Everything lives under $WORKDIR/prom.

PROM_BIN=/usr/bin/prometheus
PROM_CHECK="$REPO_ROOT/install/test/monitoring/promcheck.py"

# prom_require: Debian's prometheus package (prometheus, promtool) and python3-yaml, installed
# without recommends when missing.
prom_require() {
    if [[ ! -x "$PROM_BIN" ]] || ! command -v promtool >/dev/null; then
        log_info "installing Debian's prometheus (for a real Prometheus and promtool)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; } ||
            check_fail "cannot install Debian's prometheus package"
    fi
    python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
}

# prom_start RENDERED_CHART RULES TARGET...: writes $WORKDIR/prom/prometheus.yml (1 s scrape and
# evaluation intervals; the scrape jobs of the rendered chart's monitors, each TARGET being
# KIND@ADDRESS[@label=value...] as promcheck.py scrape-config takes it) with RULES as its rule
# file, starts Prometheus on a free port and waits until it is ready. PROM_URL is its address.
prom_start() {
    local rendered="$1" rules="$2" dir="$WORKDIR/prom" port
    shift 2
    mkdir -p "$dir/data"
    cp "$rules" "$dir/rules.yaml"
    promtool check rules "$dir/rules.yaml" >"$WORKDIR/logs/promtool.log" 2>&1 ||
        check_fail "promtool check rules: $(cat "$WORKDIR/logs/promtool.log")"
    {
        printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %s/rules.yaml\n' "$dir"
        python3 "$PROM_CHECK" scrape-config "$rendered" "$@" || check_fail "cannot build the scrape jobs from $rendered"
    } >"$dir/prometheus.yml"
    promtool check config "$dir/prometheus.yml" >>"$WORKDIR/logs/promtool.log" 2>&1 ||
        check_fail "promtool check config: $(cat "$WORKDIR/logs/promtool.log")"
    port="$(host_free_port 19090)"
    (
        setsid "$PROM_BIN" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
            --web.listen-address="127.0.0.1:$port" --log.level=warn \
            </dev/null >>"$WORKDIR/logs/prometheus.log" 2>&1 &
        echo "$!" >"$WORKDIR/pids/prometheus"
    )
    PROM_URL="http://127.0.0.1:$port"
    check_within 30 "Prometheus ready on $PROM_URL" curl -fsS --max-time 2 "$PROM_URL/-/ready"
}

# prom_stop: SIGTERM to our Prometheus (if it runs), bounded.
prom_stop() {
    [[ -n "${WORKDIR:-}" ]] || return 0
    workdir_signal "$WORKDIR/pids/prometheus" "$PROM_BIN" TERM
}

# prom_query EXPR: the instant query's result vector as JSON ([] when empty); fails on an error.
prom_query() {
    local reply
    reply="$(curl -fsS --max-time 5 -G "$PROM_URL/api/v1/query" --data-urlencode "query=$1")" || return 1
    jq -e '.status == "success"' <<<"$reply" >/dev/null || return 1
    jq -c '.data.result' <<<"$reply"
}

# prom_value EXPR: the value of the first sample of EXPR (nothing when there is none).
prom_value() { prom_query "$1" | jq -r '.[0].value[1] // empty'; }

# prom_has EXPR: EXPR returns at least one sample.
prom_has() { [[ "$(prom_query "$1" | jq 'length')" -gt 0 ]]; }

# prom_firing ALERT [LABEL=VALUE...]: ALERT is firing, with those labels, per Prometheus' ALERTS.
prom_firing() {
    local alert="$1" matchers
    shift
    matchers="alertname=\"$alert\",alertstate=\"firing\""
    local pair
    for pair in "$@"; do matchers+=",${pair%%=*}=\"${pair#*=}\""; done
    prom_has "ALERTS{$matchers}"
}

# prom_quiet ALERT [LABEL=VALUE...]: ALERT is not firing with those labels.
prom_quiet() { ! prom_firing "$@"; }

# prom_alert_annotation ALERT KEY: KEY of the first active ALERT (from /api/v1/alerts).
prom_alert_annotation() {
    curl -fsS --max-time 5 "$PROM_URL/api/v1/alerts" |
        jq -r --arg a "$1" --arg k "$2" '[.data.alerts[] | select(.labels.alertname == $a)][0].annotations[$k] // empty'
}

# prom_metric_names: every metric name Prometheus has scraped, one a line.
prom_metric_names() {
    curl -fsS --max-time 5 "$PROM_URL/api/v1/label/__name__/values" | jq -r '.data[]'
}
