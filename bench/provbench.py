"""Provisioner benchmark on the real control plane (tests/cluster): a burst of claims created at
once (time until all are Bound, PVC/s, claim→PV latency from watch events stamped locally),
Kubernetes API requests and array calls per claim, the same for deleting them, with the array
simulator at 0 ms and 5 ms per call; the provisioner's own ceiling (claims already annotated as
the controller-manager would, and the same claims created while the provisioner is stopped, as a
backlog it meets all at once); a paced run (claims arriving at a fixed rate); and the
provisioner's RSS with many PVs and claims in its caches.

The same runs measure the Go peer (bench/peer) when the setup names it as the subject; the peer
does no array I/O, so it runs at 0 ms only.

Usage: python3 provbench.py --setup SETUP_JSON --out RESULT_JSON [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import benchlib

CLIENT_THREADS = 32
STORAGE_PROVISIONER_KEY = "volume.kubernetes.io/storage-provisioner"
PROVISIONER_NAME = "pure-provisioner"
WAIT_LIMIT_S = 900
# A settled cluster: the controller-manager's controllers (the kube-system-service-accounts flow
# schema) sent at most this many requests in one window. Busy, it sends 20/s at upstream limits.
SETTLE_WINDOW_S = 3.0
SETTLE_QUIET_REQUESTS = 3
# The memory phase's 10,000 pre-bound pairs cost the controller-manager about 8 requests each
# to bind: over an hour at its default 20 requests/s, which the next subject must wait out.
SETTLE_LIMIT_S = 5400


class Tracker:
    """Local arrival times of watch events: claim Bound, PV added, PV deleted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.bound: dict[str, float] = {}  # claim name -> first seen Bound
        # claim name -> first seen with the controller-manager's storage-provisioner annotation,
        # which the provisioner waits for before it takes the claim
        self.annotated: dict[str, float] = {}
        self.pv_added: dict[str, float] = {}  # PV name -> first seen
        self.pv_deleted: dict[str, float] = {}

    def on_claim(self, kind: str, obj: dict, now: float) -> None:
        name = obj["metadata"]["name"]
        annotations = obj["metadata"].get("annotations") or {}
        with self.changed:
            if STORAGE_PROVISIONER_KEY in annotations:
                self.annotated.setdefault(name, now)
            if obj.get("status", {}).get("phase") == "Bound":
                self.bound.setdefault(name, now)
            self.changed.notify_all()

    def on_pv(self, kind: str, obj: dict, now: float) -> None:
        name = obj["metadata"]["name"]
        with self.changed:
            if kind == "DELETED":
                self.pv_deleted.setdefault(name, now)
            else:
                self.pv_added.setdefault(name, now)
            self.changed.notify_all()

    def wait(self, done, what: str, watches) -> None:
        deadline = time.monotonic() + WAIT_LIMIT_S
        with self.changed:
            while not done():
                for watch in watches:
                    if watch.error:
                        raise RuntimeError(f"watch failed while waiting for {what}: {watch.error}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out after {WAIT_LIMIT_S}s waiting for {what}")
                self.changed.wait(1.0)


def claim_body(namespace: str, name: str, storage_class: str, size: str = "1Gi", selector=None, annotations=None) -> dict:
    spec = {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if selector:
        spec["selector"] = selector
    metadata = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def ensure_namespace(kube: benchlib.Endpoint, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    kube.request("POST", "/api/v1/namespaces", body, ok=(201, 409))


class ApiCounter:
    """apiserver_request_total (by verb/resource) and the priority-and-fairness flow schemas
    (which single out the provisioner's ServiceAccount) between two scrapes, minus what this
    benchmark itself sent."""

    def __init__(self, kube: benchlib.Endpoint):
        self.kube = kube
        self.before = ""
        self.own_before = 0

    def start(self) -> None:
        self.before = self.kube.request("GET", "/metrics").decode()
        self.own_before = self.kube.requests

    def stop(self) -> dict:
        own = self.kube.requests - self.own_before - 1  # minus the scrape itself
        after = self.kube.request("GET", "/metrics").decode()
        by_verb = benchlib.counter_delta(self.before, after, "apiserver_request_total", ("verb", "resource"))
        flows = benchlib.counter_delta(self.before, after, "apiserver_flowcontrol_dispatched_requests_total", ("flow_schema",))
        return {"by_verb_resource": by_verb, "by_flow_schema": flows, "benchmark_own_requests": own}


def unsettled_objects(claims: list[dict], pvs: list[dict]) -> list[str]:
    """What keeps the cluster from being settled: a claim or PV that is not Bound (pending,
    released, lost) or is being deleted. A run leaves none when it and the controller-manager
    are done; the memory phase's pairs count as settled once the controller-manager bound them."""
    out = []
    for kind, items in (("claim", claims), ("PV", pvs)):
        for item in items:
            meta = item["metadata"]
            name = f"{meta['namespace']}/{meta['name']}" if "namespace" in meta else meta["name"]
            phase = (item.get("status") or {}).get("phase", "Pending")
            if meta.get("deletionTimestamp"):
                out.append(f"{kind} {name} being deleted")
            elif phase != "Bound":
                out.append(f"{kind} {name} {phase}")
    return out


def settle(kube: benchlib.Endpoint, what: str) -> dict:
    """Waits until the previous run's (or subject's) claims and PVs are gone or Bound and the
    controller-manager has caught up (a quiet window on its flow schema), so that every run
    starts on the same idle cluster. Returns how long that took and what it waited for."""
    t0 = time.monotonic()
    most_unsettled, example, busy_windows = 0, [], 0
    while True:
        if time.monotonic() - t0 > SETTLE_LIMIT_S:
            raise RuntimeError(f"the cluster did not settle within {SETTLE_LIMIT_S}s before {what}: "
                               f"{most_unsettled} claims/PVs unsettled at most (e.g. {example}), "
                               f"{busy_windows} busy controller-manager windows")
        claims = kube.json("GET", "/api/v1/persistentvolumeclaims")["items"]
        pvs = kube.json("GET", "/api/v1/persistentvolumes")["items"]
        unsettled = unsettled_objects(claims, pvs)
        if unsettled:
            if len(unsettled) > most_unsettled:
                most_unsettled, example = len(unsettled), unsettled[:3]
            time.sleep(2.0)
            continue
        before = kube.request("GET", "/metrics").decode()
        time.sleep(SETTLE_WINDOW_S)
        after = kube.request("GET", "/metrics").decode()
        flows = benchlib.counter_delta(before, after, "apiserver_flowcontrol_dispatched_requests_total", ("flow_schema",))
        kcm_requests = flows.get("kube-system-service-accounts", 0.0)
        if kcm_requests <= SETTLE_QUIET_REQUESTS:
            waited = time.monotonic() - t0
            print(f"provisioner: cluster settled before {what} after {waited:.1f} s "
                  f"({most_unsettled} claims/PVs unsettled at most, {busy_windows} busy controller-manager windows)",
                  file=sys.stderr)
            return {"waited_s": waited, "most_unsettled_objects": most_unsettled, "unsettled_example": example,
                    "kcm_busy_windows": busy_windows, "kcm_requests_in_quiet_window": kcm_requests,
                    "window_s": SETTLE_WINDOW_S}
        busy_windows += 1


def provisioner_pid(pid_file: str) -> int:
    with open(pid_file, encoding="utf-8") as handle:
        return int(handle.read().strip())


def process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat (R, S, T for stopped, ...)."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
        return benchlib.stat_fields(handle.read())[0]


STOP_LIMIT_S = 5.0


@contextlib.contextmanager
def stopped(pid: int):
    """Process `pid` stopped (SIGSTOP) for the `with` block, continued (SIGCONT) on the way out
    whatever happens. Yields `release()`, which continues it earlier and returns the monotonic
    time it did. Refuses to go on until the kernel shows the process stopped: a wrong pid or a
    process that ignores the stop would otherwise measure nothing."""
    os.kill(pid, signal.SIGSTOP)
    released: list[float] = []

    def release() -> float:
        if not released:
            released.append(time.monotonic())
            os.kill(pid, signal.SIGCONT)
        return released[0]

    try:
        deadline = time.monotonic() + STOP_LIMIT_S
        while process_state(pid) not in ("T", "t"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"process {pid} was sent SIGSTOP but is not stopped after {STOP_LIMIT_S:.0f} s "
                                   f"(state {process_state(pid)})")
            time.sleep(0.01)
        yield release
    finally:
        release()


def provisioner_rss(pid_file: str) -> dict:
    pid = provisioner_pid(pid_file)
    out = {"pid": pid}
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(line.split()[1])
    return out


def run_claims(ctx: dict, namespace: str, count: int, rate: float | None, latency_ms: int, label: str,
               preannotated: bool = False, held: bool = False) -> dict:
    """Creates `count` claims (all at once, or `rate` per second), waits until all are Bound,
    then deletes them all at once and waits until every PV is gone. `preannotated` claims carry
    the controller-manager's storage-provisioner annotation from the start, which takes the
    controller-manager's (rate-limited) step out of the provisioning path. `held` claims (a
    pre-annotated burst) are created while the provisioner is stopped and it is continued once
    they are all in the benchmark's own watch: what it then does is its own ceiling, apart from
    the pace of this client's creates, which a provisioner that keeps up only follows."""
    if held and (rate or not preannotated):
        raise ValueError("a held run is a burst of pre-annotated claims")
    kube, arrays = ctx["kube"], ctx["arrays"]
    settled = settle(kube, f"run {label}")
    # Every run starts on arrays holding what the first one found, as a real array holds what
    # it eradicated: none of the volumes earlier runs destroyed. (When the simulator still
    # rewrote its state file on each change, they made each later create dearer.)
    eradicated = benchlib.sim_eradicate_destroyed(arrays)
    ensure_namespace(kube, namespace)
    benchlib.sim_set_latency(arrays, latency_ms)
    tracker = Tracker()
    pv_rv = benchlib.list_resource_version(kube, "/api/v1/persistentvolumes")
    claim_rv = benchlib.list_resource_version(kube, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    watches = [
        benchlib.Watch(kube, "/api/v1/persistentvolumes", pv_rv, tracker.on_pv),
        benchlib.Watch(kube, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", claim_rv, tracker.on_claim),
    ]
    for watch in watches:
        watch.start()
    names = [f"{label}-{i:05d}" for i in range(count)]
    sent: dict[str, float] = {}
    uid: dict[str, str] = {}
    selector = {"matchLabels": {"rack": "a"}} if ctx["block_selector"] else None
    annotations = {STORAGE_PROVISIONER_KEY: PROVISIONER_NAME} if preannotated else None

    api = ApiCounter(kube)
    benchlib.sim_reset_stats(arrays)
    api.start()
    rss_before = provisioner_memory(ctx)
    cpu_before = benchlib.cpu_ticks()
    t0 = time.monotonic()

    def create(index_name):
        index, name = index_name
        if rate:
            delay = t0 + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        started = time.monotonic()
        created = kube.json("POST", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
                            claim_body(namespace, name, "pure-block", selector=selector, annotations=annotations))
        sent[name] = started
        uid[name] = created["metadata"]["uid"]

    hold = stopped(provisioner_pid(ctx["provisioner_pid_file"])) if held else contextlib.nullcontext()
    with hold as release:
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(create, enumerate(names)))
        created_all = time.monotonic()
        if held:
            # In the benchmark's watch, the claims are in the apiserver's watch cache, which
            # sends each event to every watcher, the stopped provisioner's too.
            tracker.wait(lambda: all(n in tracker.annotated for n in names),
                         f"the {count} claims of {namespace} in the benchmark's watch", watches)
            early = [n for n in names if f"pvc-{uid[n]}" in tracker.pv_added]
            if early:
                raise RuntimeError(f"{len(early)} PVs appeared while the provisioner was stopped "
                                   f"(e.g. for {early[0]}): another provisioner answers these claims")
            released = release()
    tracker.wait(lambda: all(f"pvc-{uid[n]}" in tracker.pv_added for n in names),
                 f"the PVs of {count} claims in {namespace}", watches)
    pvs_all = max(tracker.pv_added[f"pvc-{uid[n]}"] for n in names)
    tracker.wait(lambda: len(tracker.bound) >= count and all(f"pvc-{uid[n]}" in tracker.pv_added for n in names),
                 f"{count} claims in {namespace} to be Bound", watches)
    bound_all = max(tracker.bound[n] for n in names)
    create_api = api.stop()
    create_sim = benchlib.sim_stats(arrays)
    create_cpu = benchlib.cpu_seconds(cpu_before, benchlib.cpu_ticks())
    rss_bound = provisioner_memory(ctx)

    to_pv = [tracker.pv_added[f"pvc-{uid[n]}"] - sent[n] for n in names]
    to_bound = [tracker.bound[n] - sent[n] for n in names]
    # Split at the controller-manager's annotation: before it the claim is not ours yet.
    annotated = [n for n in names if n in tracker.annotated]
    to_annotated = [tracker.annotated[n] - sent[n] for n in annotated]
    annotated_to_pv = [tracker.pv_added[f"pvc-{uid[n]}"] - tracker.annotated[n] for n in annotated]
    result = {
        "label": label,
        "latency_ms": latency_ms,
        "count": count,
        "arrival_rate_per_s": rate,
        "preannotated": preannotated,
        "held": held,
        "settled": settled,
        "eradicated_before": eradicated,
        "create": {
            "client_create_s": created_all - t0,
            "first_create_to_all_bound_s": bound_all - t0,
            "throughput_pvc_per_s": count / (bound_all - t0),
            "first_create_to_all_pvs_s": pvs_all - t0,
            "throughput_pv_per_s": count / (pvs_all - t0),
            "claim_to_pv_s": benchlib.summary(to_pv),
            "claim_to_annotated_s": benchlib.summary(to_annotated),
            "annotated_to_pv_s": benchlib.summary(annotated_to_pv),
            "claim_to_bound_s": benchlib.summary(to_bound),
            "api": create_api,
            "api_requests_per_claim_all_clients": sum(create_api["by_verb_resource"].values()) / count,
            "array": create_sim,
            "array_calls_per_claim": create_sim["total_calls"] / count,
            "cpu_s": create_cpu,
            "samples_claim_to_pv_s": to_pv,
            "pv_arrival_offsets_s": sorted(tracker.pv_added[f"pvc-{uid[n]}"] - t0 for n in names),
        },
        "provisioner_rss_kib": {"before": rss_before, "all_bound": rss_bound},
    }
    if held:
        result["create"].update({
            "held_s": released - t0,
            "release_to_all_pvs_s": pvs_all - released,
            "throughput_pv_per_s_after_release": count / (pvs_all - released),
            "release_to_pv_s": benchlib.summary([tracker.pv_added[f"pvc-{uid[n]}"] - released for n in names]),
        })

    # Delete every claim at once; the PV controller releases the PVs, the provisioner destroys
    # the array volumes, drops its finalizer and deletes the PVs.
    benchlib.sim_reset_stats(arrays)
    api.start()
    deleted: dict[str, float] = {}
    cpu_before = benchlib.cpu_ticks()
    d0 = time.monotonic()

    def delete(name):
        deleted[name] = time.monotonic()
        kube.request("DELETE", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}", ok=(200, 202))

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(delete, names))
    tracker.wait(lambda: all(f"pvc-{uid[n]}" in tracker.pv_deleted for n in names),
                 f"the {count} PVs of {namespace} to be deleted", watches)
    gone_all = max(tracker.pv_deleted[f"pvc-{uid[n]}"] for n in names)
    delete_api = api.stop()
    delete_sim = benchlib.sim_stats(arrays)
    delete_cpu = benchlib.cpu_seconds(cpu_before, benchlib.cpu_ticks())
    for watch in watches:
        watch.stop()
    claim_to_gone = [tracker.pv_deleted[f"pvc-{uid[n]}"] - deleted[n] for n in names]
    result["delete"] = {
        "first_delete_to_all_pvs_gone_s": gone_all - d0,
        "throughput_pv_per_s": count / (gone_all - d0),
        "claim_delete_to_pv_gone_s": benchlib.summary(claim_to_gone),
        "api": delete_api,
        "api_requests_per_claim_all_clients": sum(delete_api["by_verb_resource"].values()) / count,
        "array": delete_sim,
        "array_calls_per_delete": delete_sim["total_calls"] / count,
        "cpu_s": delete_cpu,
    }
    result["provisioner_rss_kib"]["after_delete"] = provisioner_memory(ctx)
    result["load_after"] = benchlib.load_average()
    return result


MEMORY_NAMESPACE = "bench-memory"
MEMORY_CLASS = "bench-not-ours"


def memory_pair(index: int) -> tuple[dict, dict, dict, dict]:
    """The memory phase's pair `index`, already Bound as the controller-manager leaves a bound
    pair: the claim names its PV and carries `bind-completed`, and once the claim's uid is known
    (`memory_pv_claim_ref`) the PV's claimRef has it; both statuses say Bound. Then the
    controller-manager finds nothing to write for them, where a merely pre-bound pair cost it
    about 8 requests (over an hour at its 20 requests/s for 10,000, which the next subject
    waited out). Returns (claim, PV without claimRef uid, claim status, PV status)."""
    name = f"mem-{index:05d}"
    pv = f"bench-pv-{index:05d}"
    claim = claim_body(MEMORY_NAMESPACE, name, MEMORY_CLASS, annotations={"pv.kubernetes.io/bind-completed": "yes"})
    claim["spec"]["volumeName"] = pv
    volume = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv, "labels": {"flashvol-bench": "memory"}},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": MEMORY_CLASS,
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": MEMORY_NAMESPACE, "name": name},
            "flexVolume": {"driver": "pure/flex", "fsType": "xfs", "options": {
                "backend": "block", "namespace": "k8s", "volumeName": pv, "accessMode": "",
                "arrayVolume": f"k8s-{pv}", "arrayEndpoint": "127.0.0.1:443", "volumeMode": "Filesystem"}},
        }}
    # Kubernetes 1.37's controller-manager marks every claim no pod uses with this condition (one
    # status write per claim, ~7 minutes for 10,000 at 20 requests/s): set as it sets it, nothing
    # is left to write. Older releases keep it as any other condition.
    unused = {"type": "Unused", "status": "True", "reason": "NoPodsUsingPVC",
              "message": "No pods are currently referencing this PVC",
              "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    claim_status = {"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                               "conditions": [unused]}}
    pv_status = {"status": {"phase": "Bound"}}
    return claim, volume, claim_status, pv_status


def memory_pv_claim_ref(volume: dict, claim_uid: str) -> dict:
    """The pair's PV bound to the claim `claim_uid`: a claimRef without a uid is only a
    pre-binding, which the controller-manager completes with writes of its own."""
    volume["spec"]["claimRef"]["uid"] = claim_uid
    return volume


def heap_bytes(metrics_text: str) -> dict:
    """`flashvol_heap_bytes{kind}` from a /metrics page: the allocator's own account (bytes by
    kind); empty for a subject that does not export it (the Go peer)."""
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith('flashvol_heap_bytes{kind="'):
            labels, value = line.rsplit(" ", 1)
            out[labels[len('flashvol_heap_bytes{kind="'):-2]] = int(float(value))
    return out


def provisioner_memory(ctx: dict) -> dict:
    """RSS (status: VmRSS, VmHWM, RssAnon, RssFile) and, from flashvol's /metrics when the setup
    names it, the allocator's counters: RssAnon − resident is thread stacks and the like,
    resident − allocated is what jemalloc holds for reuse, allocated is live data."""
    out = provisioner_rss(ctx["provisioner_pid_file"])
    if ctx.get("metrics_url"):
        try:
            with urllib.request.urlopen(ctx["metrics_url"], timeout=5) as response:
                out["heap_bytes"] = heap_bytes(response.read().decode())
        except OSError as e:
            out["heap_error"] = str(e)
    return out


def remove_memory_pairs(kube: benchlib.Endpoint, count: int) -> float:
    """Deletes the memory phase's pairs, so that the next subject's runs (and later rounds) find
    the cluster this subject's runs found. When they stayed, the first subject ran on an empty
    cluster and the next one beside 10,000 pairs the controller-manager resyncs, which alone took
    the paced p99 from ~25 ms to 300-800 ms. The harness takes the storage-protection finalizers
    off itself: the controller-manager's protection controllers would need 20,000 writes, 17
    minutes at its default 20 requests/s. Returns the seconds it took."""
    t0 = time.monotonic()
    claims = f"/api/v1/namespaces/{MEMORY_NAMESPACE}/persistentvolumeclaims"
    kube.request("DELETE", claims, ok=(200,))
    kube.request("DELETE", "/api/v1/persistentvolumes?labelSelector=flashvol-bench%3Dmemory", ok=(200,))
    merge = "application/merge-patch+json"
    no_finalizers = {"metadata": {"finalizers": None}}

    def release(i):
        claim, volume, _, _ = memory_pair(i)
        kube.request("PATCH", f"{claims}/{claim['metadata']['name']}", no_finalizers, content_type=merge, ok=(200, 404))
        kube.request("PATCH", f"/api/v1/persistentvolumes/{volume['metadata']['name']}", no_finalizers,
                     content_type=merge, ok=(200, 404))

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(release, range(count)))
    return time.monotonic() - t0


def run_memory(ctx: dict, count: int) -> dict:
    """`count` claims of a class that is not ours, each bound to a flex PV shaped like the ones
    we create (`memory_pair`): both land in the provisioner's PV and claim caches as a running
    cluster's bound claims and PVs do. Memory is read before and after, with the allocator's
    own account where the subject exports it."""
    kube = ctx["kube"]
    namespace = MEMORY_NAMESPACE
    settled = settle(kube, "the memory phase")
    ensure_namespace(kube, namespace)
    kube.request("POST", "/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": MEMORY_CLASS},
        "provisioner": "example.com/none", "reclaimPolicy": "Retain"}, ok=(201, 409))
    rss_before = provisioner_memory(ctx)
    t0 = time.monotonic()
    merge = "application/merge-patch+json"

    def create(i):
        claim, volume, claim_status, pv_status = memory_pair(i)
        name, pv = claim["metadata"]["name"], volume["metadata"]["name"]
        claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
        # 409: a pair an earlier memory phase left (each removes its own); it is what this one
        # must cache.
        try:
            uid = kube.json("POST", claims, claim, ok=(201,))["metadata"]["uid"]
        except benchlib.HttpError as e:
            if e.status != 409:
                raise
            uid = kube.json("GET", f"{claims}/{name}")["metadata"]["uid"]
        kube.request("POST", "/api/v1/persistentvolumes", memory_pv_claim_ref(volume, uid), ok=(201, 409))
        kube.request("PATCH", f"/api/v1/persistentvolumes/{pv}/status", pv_status, content_type=merge, ok=(200,))
        kube.request("PATCH", f"{claims}/{name}/status", claim_status, content_type=merge, ok=(200,))

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(create, range(count)))
    created_s = time.monotonic() - t0
    # What one cached pair weighs as JSON (the apiserver's view, managedFields included).
    sizes = {
        "pv": len(kube.request("GET", "/api/v1/persistentvolumes/bench-pv-00000")),
        "claim": len(kube.request("GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/mem-00000")),
    }
    # Let the watch events reach the provisioner's caches, then take the steady value.
    samples = []
    for _ in range(10):
        time.sleep(2)
        samples.append(provisioner_memory(ctx))
    removed_s = remove_memory_pairs(kube, count)
    return {
        "objects": {"claims": count, "pvs": count},
        "settled": settled,
        "create_s": created_s,
        "object_json_bytes": sizes,
        "rss_before_kib": rss_before,
        "rss_samples_kib": samples,
        "rss_after_kib": samples[-1],
        "removed_s": removed_s,
        "load_after": benchlib.load_average(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("burst", "paced", "memory"), action="append")
    args = parser.parse_args()
    setup = benchlib.load_setup(args.setup, ("cluster_state", "arrays_jsonl", "ca", "provisioner_pid_file"))
    ctx = {
        "kube": benchlib.kube_from_cluster_state(setup["cluster_state"]),
        "arrays": benchlib.sim_arrays(setup["arrays_jsonl"], setup["ca"]),
        "provisioner_pid_file": setup["provisioner_pid_file"],
        "metrics_url": setup.get("metrics_url"),
        "block_selector": False,
    }
    counts = ({"burst": 100, "paced_seconds": 5, "memory": 1000} if args.quick
              else {"burst": 1000, "paced_seconds": 20, "memory": 10000})
    phases = args.only or ["burst", "paced", "memory"]
    subject = setup.get("subject", {"name": "flashvol"})
    latencies = (0,) if subject.get("array_io") is False else (0, 5)
    result = {"counts": counts, "load_before": benchlib.load_average(), "runs": [], "subject": subject,
              "arrays": [a.name for a in ctx["arrays"]]}
    if "burst" in phases:
        for latency in latencies:
            print(f"provisioner: burst of {counts['burst']} claims, array latency {latency} ms", file=sys.stderr)
            result["runs"].append(run_claims(ctx, f"bench-burst-{latency}", counts["burst"], None, latency, f"burst{latency}"))
        # The provisioner's own capacity, without waiting for the controller-manager's annotation.
        print(f"provisioner: burst of {counts['burst']} pre-annotated claims, array latency 0 ms", file=sys.stderr)
        result["runs"].append(run_claims(ctx, "bench-burst-pre-0", counts["burst"], None, 0, "burst0-pre", preannotated=True))
        print(f"provisioner: backlog of {counts['burst']} pre-annotated claims created while it is stopped", file=sys.stderr)
        result["runs"].append(run_claims(ctx, "bench-backlog-0", counts["burst"], None, 0, "backlog0",
                                         preannotated=True, held=True))
    if "paced" in phases:
        for latency in latencies:
            n = 20 * counts["paced_seconds"]
            print(f"provisioner: {n} claims paced at 20/s, array latency {latency} ms", file=sys.stderr)
            result["runs"].append(run_claims(ctx, f"bench-paced-{latency}", n, 20.0, latency, f"paced{latency}"))
    benchlib.sim_set_latency(ctx["arrays"], 0)
    if "memory" in phases:
        print(f"provisioner: RSS with {counts['memory']} claims and PVs cached", file=sys.stderr)
        result["memory"] = run_memory(ctx, counts["memory"])
    result["provisioner_final_rss_kib"] = provisioner_memory(ctx)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
