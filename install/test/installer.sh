#!/usr/bin/env bash
# The node installer as the DaemonSet runs it: a real flashvol-flex process installs, stays up,
# and on SIGTERM keeps or removes the driver depending on what the API server says about the
# DaemonSet (a stand-in API server answers). Also: `uninstall`, a broken config refused, and the
# call-out statistics served on /metrics (`--metrics-address`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

flex="$(flex_binary)"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
    rm -rf "${work}"
}
trap cleanup EXIT
cat > "${work}/pure.json" <<'JSON'
{"FlashArrays":[{"MgmtEndPoint":"192.0.2.10","APIToken":"b5fa1a43-5e35-4c1f-9cd8-2b8c2dbe0d4e"}]}
JSON
mkdir -p "${work}/proc"

# A stand-in API server: answers every GET with the status and body given, logs the paths.
start_api() { # status body -> sets API to its URL
    python3 - "$1" "$2" "${work}/api.log" > "${work}/api.port" <<'PY' &
import http.server, sys
status, body, log = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + " " + self.headers.get("Authorization", "-") + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
    api_pid=$!
    pids+=("${api_pid}")
    for _ in $(seq 50); do [[ -s "${work}/api.port" ]] && break; sleep 0.1; done
    API="http://127.0.0.1:$(cat "${work}/api.port")"
}

# Runs the installer in the background until the driver is in place; sets PID.
start_installer() { # plugin-dir api-url
    "${flex}" install --plugin-dir "$1" --proc "${work}/proc" --config "${work}/pure.json" \
        --source "${flex}" --daemonset pure-flex --namespace pure-system --kube-api "$2" \
        >/dev/null 2>"${work}/installer.log" &
    local pid=$!
    PID="${pid}"
    pids+=("${pid}")
    # Installed (and SIGTERM blocked) once it logs where the driver is.
    for _ in $(seq 100); do grep -q 'INFO: driver pure/flex in' "${work}/installer.log" && break; sleep 0.1; done
    [[ -x "$1/pure~flex/flex" ]] || { cat "${work}/installer.log" >&2; fail "the driver was not installed"; }
    kill -0 "${pid}" || fail "the installer exited instead of waiting"
}

stop() { # pid: SIGTERM, then its exit status must be 0
    kill -TERM "$1"
    local rc=0
    wait "$1" || rc=$?
    [[ "${rc}" == 0 ]] || { cat "${work}/installer.log" >&2; fail "the installer exited ${rc} on SIGTERM"; }
}

# 1. Rolling update / restart: the DaemonSet still exists -> everything stays.
mkdir "${work}/plugins1"
start_api 200 '{"kind":"DaemonSet","metadata":{"name":"pure-flex","namespace":"pure-system"}}'
start_installer "${work}/plugins1" "${API}"
cmp -s "${flex}" "${work}/plugins1/pure~flex/flex" || fail "the installed driver is not the binary"
[[ "$(stat -c %a "${work}/plugins1/pure~flex/flashvol.json")" == 600 ]] || fail "settings are not 0600"
"${work}/plugins1/pure~flex/flex" init >/dev/null 2>&1 || true # kubelet's first call must not hang
stop "${PID}"
grep -q '^/apis/apps/v1/namespaces/pure-system/daemonsets/pure-flex ' "${work}/api.log" ||
    fail "the installer did not ask about its DaemonSet: $(cat "${work}/api.log")"
[[ -x "${work}/plugins1/pure~flex/flex" && -f "${work}/plugins1/pure~flex/flashvol.json" ]] ||
    fail "SIGTERM during an update removed the driver"
pass "SIGTERM while the DaemonSet exists (update, restart) keeps the driver and settings"

# 2. A restart with the same binary rewrites nothing (kubelet re-probes on every write).
before="$(stat -c '%i %Y' "${work}/plugins1/pure~flex/flex" "${work}/plugins1/pure~flex/flashvol.json")"
"${flex}" install --once --plugin-dir "${work}/plugins1" --proc "${work}/proc" \
    --config "${work}/pure.json" --source "${flex}" 2>>"${work}/installer.log"
[[ "$(stat -c '%i %Y' "${work}/plugins1/pure~flex/flex" "${work}/plugins1/pure~flex/flashvol.json")" == "${before}" ]] ||
    fail "an identical reinstall rewrote files"
pass "reinstalling the same binary and settings leaves the files untouched"

# 3. The DaemonSet is deleted (helm uninstall): SIGTERM removes driver and credentials.
kill "${api_pid}"
: > "${work}/api.port"
start_api 404 '{"kind":"Status","code":404}'
start_installer "${work}/plugins1" "${API}"
stop "${PID}"
[[ ! -e "${work}/plugins1/pure~flex" ]] || fail "driver dir left after the DaemonSet was deleted: $(ls -la "${work}/plugins1/pure~flex")"
pass "SIGTERM after the DaemonSet is deleted removes the driver and its credentials"

# 4. API server unreachable: keep (a missing driver strands mounted volumes).
mkdir "${work}/plugins2"
start_installer "${work}/plugins2" "http://127.0.0.1:9"
stop "${PID}"
[[ -x "${work}/plugins2/pure~flex/flex" ]] || fail "an unreachable API server made the installer remove the driver"
pass "SIGTERM with the API server unreachable keeps the driver"

# 5. `uninstall` by hand removes it.
"${flex}" uninstall --plugin-dir "${work}/plugins2" --proc "${work}/proc" 2>>"${work}/installer.log"
[[ ! -e "${work}/plugins2/pure~flex" ]] || fail "uninstall left files"
pass "flashvol-flex uninstall removes the driver"

# 6. A broken config is refused before anything changes on the node.
mkdir "${work}/plugins3"
echo '{"FlashArrays":[{"MgmtEndPoint":"192.0.2.10"}]}' > "${work}/broken.json"
rc=0
out="$("${flex}" install --once --plugin-dir "${work}/plugins3" --proc "${work}/proc" \
    --config "${work}/broken.json" --source "${flex}" 2>&1)" || rc=$?
[[ "${rc}" != 0 ]] || fail "a config without an APIToken was accepted"
grep -q 'refusing to install.*FlashArrays\[0\].APIToken' <<<"${out}" || fail "unclear refusal: ${out}"
[[ -z "$(ls -A "${work}/plugins3")" ]] || fail "a refused install changed the plugin dir"
pass "a broken pure.json is refused with the key named, and nothing is installed"

# 7. The plugin dir differs from the running kubelet's: a loud warning naming both.
mkdir -p "${work}/proc/4242" "${work}/plugins4"
printf 'kubelet\0--volume-plugin-dir=/var/lib/kubelet/volumeplugins\0' > "${work}/proc/4242/cmdline"
out="$("${flex}" install --once --plugin-dir "${work}/plugins4" \
    --host-plugin-dir /usr/libexec/kubernetes/kubelet-plugins/volume/exec --proc "${work}/proc" \
    --config "${work}/pure.json" --source "${flex}" 2>&1)" || fail "install failed: ${out}"
grep -q 'WARNING: the kubelet on this node (pid 4242) loads FlexVolume drivers from /var/lib/kubelet/volumeplugins' <<<"${out}" ||
    fail "no warning about the plugin dir: ${out}"
pass "a plugin dir other than kubelet's is reported loudly"

# 8. Node metrics: the installer serves the driver's call-out statistics while it waits.
mkdir "${work}/plugins5"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${flex}" install --plugin-dir "${work}/plugins5" --proc "${work}/proc" --config "${work}/pure.json" \
    --source "${flex}" --metrics-address "127.0.0.1:${port}" \
    --node-settings "{\"statsFile\": \"${work}/stats/stats.json\", \"logFile\": \"${work}/flex.log\"}" \
    >/dev/null 2>"${work}/metrics-installer.log" &
metrics_pid=$!
pids+=("${metrics_pid}")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
metrics="$(curl -fsS "http://127.0.0.1:${port}/metrics")" || { cat "${work}/metrics-installer.log" >&2; fail "no /metrics"; }
grep -q '^flashvol_flex_calls_total{callout="mount",reason="success"} 0$' <<<"${metrics}" || fail "no zero counters before any call: ${metrics}"
# kubelet runs the installed driver: a mount of a path that is no pod volume dir is refused and counted.
"${work}/plugins5/pure~flex/flex" mount /not/a/pod/dir '{"kubernetes.io/fsType":"xfs"}' >/dev/null 2>&1 || true
metrics="$(curl -fsS "http://127.0.0.1:${port}/metrics")"
grep -q '^flashvol_flex_calls_total{callout="mount",reason="request"} 1$' <<<"${metrics}" || fail "the refused mount was not counted: ${metrics}"
kill -TERM "${metrics_pid}"
wait "${metrics_pid}" || fail "the installer serving metrics did not exit cleanly on SIGTERM"
rc=0
out="$("${flex}" install --plugin-dir "${work}/plugins5" --proc "${work}/proc" --config "${work}/pure.json" \
    --source "${flex}" --metrics-address "127.0.0.1:${port}" 2>&1)" || rc=$?
if [[ "${rc}" == 0 ]] || ! grep -q 'statsFile' <<<"${out}"; then
    fail "--metrics-address without statsFile: rc ${rc}, ${out}"
fi
pass "the installer serves the driver's call-out statistics on /metrics; without statsFile it refuses"
