"""Shared pieces of the benchmark harness: statistics, a minimal Kubernetes API client (stdlib
only, client certificate from the test cluster's PKI), the array simulator's admin API, and the
machine/version facts every result file carries.

Kept dependency-free so the measuring processes never load matplotlib; only report.py does.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass


# --- statistics ---------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): always a value that was really observed."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


def summary(values: list[float]) -> dict:
    """count, min, median (p50), p90, p99, max and mean of a sample."""
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


# --- Prometheus text -----------------------------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str, name: str) -> list[tuple[dict, float]]:
    """Samples of one metric family from Prometheus text format: [(labels, value)]."""
    samples = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = _SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        labels = dict(_LABEL.findall(match.group(3) or ""))
        try:
            value = float(match.group(4))
        except ValueError as error:
            raise ValueError(f"metric {name}: value {match.group(4)!r} is not a number") from error
        samples.append((labels, value))
    return samples


def counter_delta(before: str, after: str, name: str, keys: tuple[str, ...]) -> dict[str, float]:
    """Increase of a counter between two scrapes, summed by the given label keys ("a/b")."""

    def totals(text: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in parse_metrics(text, name):
            key = "/".join(labels.get(k, "") for k in keys)
            out[key] = out.get(key, 0.0) + value
        return out

    first, second = totals(before), totals(after)
    delta = {k: second.get(k, 0.0) - first.get(k, 0.0) for k in set(first) | set(second)}
    return {k: v for k, v in sorted(delta.items()) if v}


# --- HTTPS with a pinned CA ------------------------------------------------------------------
def tls_context(ca_file: str, cert_file: str | None = None, key_file: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


class HttpError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: bytes):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]!r}")
        self.status = status


class Endpoint:
    """One keep-alive HTTPS connection per thread to one server."""

    def __init__(self, base_url: str, context: ssl.SSLContext, timeout: float = 60.0):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f"expected an https:// URL, got {base_url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.prefix = parsed.path.rstrip("/")
        self.context, self.timeout = context, timeout
        self.local = threading.local()
        self.requests = 0  # requests this client made (to subtract from server-side counts)
        self.lock = threading.Lock()

    def connection(self) -> http.client.HTTPSConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
            self.local.conn = conn
        return conn

    def request(self, method: str, path: str, body=None, content_type="application/json", ok=(200, 201, 202)):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        with self.lock:
            self.requests += 1
        for attempt in (1, 2):
            conn = self.connection()
            try:
                conn.request(method, self.prefix + path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, ConnectionError, ssl.SSLError):
                # A keep-alive connection the server closed: one fresh attempt.
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        if response.status not in ok:
            raise HttpError(method, path, response.status, payload)
        return payload

    def json(self, method: str, path: str, body=None, **kwargs):
        payload = self.request(method, path, body, **kwargs)
        return json.loads(payload) if payload else None


# --- Kubernetes ------------------------------------------------------------------------------
def kube_from_cluster_state(state_dir: str) -> Endpoint:
    """Admin client (system:masters certificate) for the cluster tests/cluster/up.sh started."""
    env = read_env_file(os.path.join(state_dir, "env"))
    url = env.get("FLASHVOL_APISERVER_URL")
    if not url:
        raise ValueError(f"{state_dir}/env has no FLASHVOL_APISERVER_URL")
    pki = os.path.join(state_dir, "pki")
    return Endpoint(url, tls_context(f"{pki}/ca.crt", f"{pki}/admin.crt", f"{pki}/admin.key"))


def load_setup(path: str, required: tuple[str, ...]) -> dict:
    """The setup JSON run.sh writes for a benchmark half; exits naming the file and what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            setup = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"{path}: cannot read the setup JSON: {error}") from error
    if not isinstance(setup, dict):
        raise SystemExit(f"{path}: the setup JSON must be an object")
    for key in required:
        if key not in setup:
            raise SystemExit(f"{path}: missing key {key!r}")
    return setup


def read_env_file(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                out[key.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return out


class Watch(threading.Thread):
    """Streams watch events of one collection, stamping each with the local monotonic clock on
    arrival. `on_event(kind, obj, t)` runs on this thread."""

    def __init__(self, kube: Endpoint, path: str, resource_version: str, on_event):
        super().__init__(daemon=True)
        self.kube, self.path, self.rv, self.on_event = kube, path, resource_version, on_event
        self.stopped = threading.Event()
        self.error: Exception | None = None
        self.conn: http.client.HTTPSConnection | None = None

    def run(self):
        try:
            while not self.stopped.is_set():
                self._stream()
        except Exception as error:  # reported by the caller through .error
            if not self.stopped.is_set():
                self.error = error

    def _stream(self):
        sep = "&" if "?" in self.path else "?"
        path = f"{self.kube.prefix}{self.path}{sep}watch=1&allowWatchBookmarks=true&resourceVersion={self.rv}&timeoutSeconds=3600"
        self.conn = http.client.HTTPSConnection(self.kube.host, self.kube.port, context=self.kube.context, timeout=3600)
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        if response.status != 200:
            raise HttpError("WATCH", self.path, response.status, response.read())
        while not self.stopped.is_set():
            line = response.readline()
            if not line:
                return  # server ended the watch: resume from the last resourceVersion
            now = time.monotonic()
            event = json.loads(line)
            obj = event.get("object", {})
            if event.get("type") == "ERROR":
                raise RuntimeError(f"watch {self.path}: {obj}")
            self.rv = obj.get("metadata", {}).get("resourceVersion", self.rv)
            if event.get("type") != "BOOKMARK":
                self.on_event(event["type"], obj, now)

    def stop(self):
        self.stopped.set()
        if self.conn is not None:
            try:
                self.conn.sock and self.conn.sock.shutdown(2)
            except OSError:
                pass


def list_resource_version(kube: Endpoint, path: str) -> str:
    listing = kube.json("GET", path + ("&" if "?" in path else "?") + "limit=1")
    return listing["metadata"]["resourceVersion"]


# --- array simulator admin API -------------------------------------------------------------
@dataclass
class SimArray:
    name: str
    kind: str
    admin: Endpoint


def sim_arrays(arrays_jsonl: str, ca_file: str) -> list[SimArray]:
    """The arrays tests/lib/sim.sh sim_start serves (one JSON line per array)."""
    context = tls_context(ca_file)
    arrays = []
    with open(arrays_jsonl, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                info = json.loads(line)
                arrays.append(SimArray(info["name"], info["kind"], Endpoint(info["admin_url"], context)))
    if not arrays:
        raise ValueError(f"{arrays_jsonl} names no simulated array")
    return arrays


def sim_set_latency(arrays: list[SimArray], latency_ms: int) -> None:
    for array in arrays:
        array.admin.json("PUT", "/faults", {"latency_ms": latency_ms})


def sim_eradicate_destroyed(arrays: list[SimArray]) -> int:
    """Eradicates every destroyed object on the arrays, as their eradication delay would; returns
    how many."""
    return sum(array.admin.json("POST", "/eradicate")["eradicated"] for array in arrays)


def sim_reset_stats(arrays: list[SimArray]) -> None:
    for array in arrays:
        array.admin.request("DELETE", "/stats", ok=(200, 204))


def sim_stats(arrays: list[SimArray]) -> dict:
    """Calls per "METHOD route", authentications and TLS connections, summed over the arrays, plus
    per array."""
    calls: dict[str, int] = {}
    total = auths = connections = 0
    per_array = {}
    for array in arrays:
        stats = array.admin.json("GET", "/stats")
        per_array[array.name] = stats
        total += stats["total_calls"]
        auths += stats["authentications"]
        connections += stats["connections"]
        for route, count in stats["calls"].items():
            calls[route] = calls.get(route, 0) + count
    return {"calls": dict(sorted(calls.items())), "total_calls": total, "authentications": auths,
            "connections": connections, "per_array": per_array}


# --- machine and versions --------------------------------------------------------------------
def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_facts(repo_root: str) -> dict:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_mib": mem_kib // 1024,
        "kernel": platform.release(),
        "git_rev": _run(["git", "-C", repo_root, "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_run(["git", "-C", repo_root, "status", "--porcelain", "--untracked-files=no"])),
        "rustc": _run(["rustc", "--version"]),
        "python": platform.python_version(),
    }


def load_average() -> list[float]:
    return [float(x) for x in open("/proc/loadavg", encoding="utf-8").read().split()[:3]]


# The processes whose CPU time a run accounts for, by the base name of their program: the
# control plane, the provisioner under test (flashvol's or the Go peer), the simulated arrays,
# and this benchmark process (it creates and watches the claims).
BENCH_CLIENT = "bench-client"
CPU_COMPONENTS = {
    "kube-apiserver": "apiserver",
    "etcd": "etcd",
    "kube-controller-manager": "controller-manager",
    "kube-scheduler": "scheduler",
    "flashvol-provisioner": "provisioner",
    "flashvol-bench-peer": "provisioner",
    "flashvol-arraysim": "array simulator",
    BENCH_CLIENT: "bench client",
}


def stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/PID/stat line after the program's name, from the state (field 3)
    on. The name may hold spaces and parentheses: the fields follow the last ')'."""
    return stat[stat.rindex(")") + 2:].split()


def cpu_ticks_by_component(processes: list[tuple[str, str]]) -> dict[str, int]:
    """Sums utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks) by component,
    from (program, stat line) pairs; processes of no component are left out."""
    ticks: dict[str, int] = {}
    for program, stat in processes:
        component = CPU_COMPONENTS.get(os.path.basename(program))
        if component is None:
            continue
        fields = stat_fields(stat)
        ticks[component] = ticks.get(component, 0) + int(fields[11]) + int(fields[12])
    return ticks


def cpu_ticks() -> dict[str, int]:
    """CPU clock ticks each component's processes on this machine have used so far."""
    processes = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                program = handle.read().split(b"\0", 1)[0].decode(errors="replace")
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited while we looked
        processes.append((BENCH_CLIENT if int(pid) == os.getpid() else program, stat))
    return cpu_ticks_by_component(processes)


def cpu_seconds(before: dict[str, int], after: dict[str, int], hz: int | None = None) -> dict[str, float]:
    """CPU seconds each component used between two `cpu_ticks` readings (one that restarted in
    between counts from its start)."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    used = {}
    for name in sorted(after):
        ticks = after[name] - before.get(name, 0)
        used[name] = round((ticks if ticks >= 0 else after[name]) / hz, 2)
    return used
