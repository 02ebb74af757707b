"""Turns the JSON a benchmark run wrote (meta.json, flex.json, provisioner.json) into
REPORT.md and PNG plots in the same directory. A hand-written analysis.md there, if any, is
included verbatim (why a target is missed, what the profile showed).

Usage: python report.py --results DIR
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys

TARGETS = {
    "init_ratio": 1.5,
    "burst_pvc_per_s": 50.0,
    "paced_p99_s": 1.0,
    "rss_mib": 40.0,
}


# kube-controller-manager's API client limits when no flag sets them (upstream defaults, the same
# in every release we run). They bound how fast claims are annotated and bound.
KCM_DEFAULT_CLIENT = {"--kube-api-qps": "20", "--kube-api-burst": "30"}


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported only when plotting, so that the
    formatting here can be unit-tested without matplotlib (bench/test_bench.py)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def kcm_extra_args(meta: dict) -> list[str]:
    """The extra kube-controller-manager flags of the run (`bench/run.sh --kcm-args`). A
    meta.json from before the option existed has no key: that cluster ran upstream defaults."""
    return [str(arg) for arg in meta.get("kcm_extra_args") or []]


def kcm_client_limits(args: list[str]) -> tuple[str, str]:
    """(QPS, burst) of the controller-manager's API client: the last `--kube-api-qps=` /
    `--kube-api-burst=` wins, as in its flag parser; otherwise upstream's default."""
    limits = dict(KCM_DEFAULT_CLIENT)
    for arg in args:
        name, sep, value = arg.partition("=")
        if sep and name in limits:
            limits[name] = value
    return limits["--kube-api-qps"], limits["--kube-api-burst"]


def kcm_tuned(args: list[str]) -> bool:
    """Whether the flags change the controller-manager's client limits."""
    return kcm_client_limits(args) != kcm_client_limits([])


def kcm_flags_text(args: list[str]) -> str:
    """The controller-manager's flags for the report header."""
    qps, burst = kcm_client_limits(args)
    if not args:
        return f"upstream defaults (client {qps} QPS / burst {burst})"
    return f"extra flags `{' '.join(args)}` (client {qps} QPS / burst {burst})"


def kcm_row_label(args: list[str]) -> str:
    """The controller-manager's state, appended to each provisioner target it takes part in."""
    qps, burst = kcm_client_limits(args)
    if kcm_tuned(args):
        return f"controller-manager tuned: {qps} QPS / burst {burst}"
    if args:
        return f"controller-manager with extra flags, client at upstream defaults ({qps} QPS / burst {burst})"
    return f"controller-manager at upstream defaults ({qps} QPS / burst {burst})"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def load(path: str):
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"{path}: cannot read it: {error}") from error


# A burst of pre-annotated claims created while the provisioner was stopped (provbench's `held`
# runs): its rates and latencies count from the moment it was continued.
BACKLOG = "backlog"
BACKLOG_SENTENCE = ("*backlog*: the pre-annotated burst again, but created while the provisioner was stopped "
                    "(SIGSTOP) and continued (SIGCONT) once every claim was in the benchmark's own watch; its "
                    "rows count from that moment, so they are the provisioner's own ceiling, apart from the pace "
                    "of the benchmark's creates that a provisioner keeping up only follows.")


def run_kind(run: dict) -> str:
    if run.get("held"):
        return BACKLOG
    kind = "burst" if run["arrival_rate_per_s"] is None else f"paced {run['arrival_rate_per_s']:.0f}/s"
    return kind + (", pre-annotated" if run.get("preannotated") else "")


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def header(meta: dict) -> list[str]:
    m = meta["machine"]
    dirty = " (with uncommitted changes)" if m.get("git_dirty") else ""
    return [
        "# flashvol benchmark report",
        "",
        f"- command: `{meta['command'].strip()}`{' (quick smoke run: small counts)' if meta.get('quick') else ''}",
        f"- started: {meta['started']}",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_mib']} MiB memory, Linux {m['kernel']}",
        f"- load average at start: {' / '.join(f'{x:.2f}' for x in meta['load_at_start'])} (1/5/15 min)",
        f"- versions: git {m['git_rev']}{dirty}, {m['rustc']}, Kubernetes {meta['kubernetes']} "
        f"(kubectl {meta['kubectl']}), Python {m['python']}",
        f"- flex driver binary: {meta['flex_binary_bytes'] / 1e6:.1f} MB, `ldd`: {meta['flex_ldd']}",
        f"- kube-controller-manager: {kcm_flags_text(kcm_extra_args(meta))}",
        "",
        "All times are wall-clock, measured on this machine by the harness (`bench/`), never by "
        "tests. Percentiles are nearest-rank (always an observed value).",
        "",
    ]


def targets_table(flex, prov, kcm_args: list[str] | None = None) -> list[str]:
    rows = ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    kcm = "; " + kcm_row_label(kcm_args or [])
    if flex:
        ratio = flex["init"]["ratio_p50"]
        rows.append(f"| flex `init` within {TARGETS['init_ratio']}× a fork+exec of `/bin/true` (median) | "
                    f"{ratio:.2f}× ({ms(flex['init']['init_wall_s']['p50'])} vs {ms(flex['init']['true_wall_s']['p50'])}) | "
                    f"{verdict(ratio <= TARGETS['init_ratio'])} |")
        auth = max(max(m["authentications_per_mount"], m["authentications_per_unmount"]) for m in flex["mounts"])
        rows.append(f"| flex: one authentication per process (each call-out is a process and talks to one array) | "
                    f"at most {auth:.2f} per mount or unmount | {verdict(auth <= 1.0)} |")
    if prov:
        for run in prov["runs"]:
            c = run["create"]
            if run.get("held"):
                rate = c["throughput_pv_per_s_after_release"]
                rows.append(f"| ≥ {TARGETS['burst_pvc_per_s']:.0f} PVC/s: a backlog of {run['count']} claims already annotated, "
                            f"created while the provisioner was stopped, array +{run['latency_ms']} ms/call (PVs created "
                            f"by the provisioner, from when it was continued) | {rate:.1f} PV/s (all {run['count']} PVs "
                            f"{c['release_to_all_pvs_s']:.1f} s after) | {verdict(rate >= TARGETS['burst_pvc_per_s'])} |")
            elif run["arrival_rate_per_s"] is None:
                rate = c["throughput_pv_per_s"]
                pre = " already annotated as the controller-manager would" if run.get("preannotated") else ""
                rows.append(f"| ≥ {TARGETS['burst_pvc_per_s']:.0f} PVC/s: {run['count']} claims{pre} at once, array +{run['latency_ms']} ms/call "
                            f"(PVs created by the provisioner){kcm} | {rate:.1f} PV/s (all {run['count']} PVs in {c['first_create_to_all_pvs_s']:.1f} s) | "
                            f"{verdict(rate >= TARGETS['burst_pvc_per_s'])} |")
                bound = c["throughput_pvc_per_s"]
                rows.append(f"| ≥ {TARGETS['burst_pvc_per_s']:.0f} PVC/s: same burst, until every claim is Bound (the controller-manager binds){kcm} | "
                            f"{bound:.1f} PVC/s (all Bound in {c['first_create_to_all_bound_s']:.1f} s) | "
                            f"{verdict(bound >= TARGETS['burst_pvc_per_s'])} |")
            else:
                p99 = c["claim_to_pv_s"]["p99"]
                rows.append(f"| p99 claim→PV < {TARGETS['paced_p99_s']:.0f} s at {run['arrival_rate_per_s']:.0f} PVC/s, array +{run['latency_ms']} ms/call{kcm} | "
                            f"{ms(p99)} (n={run['count']}) | {verdict(p99 < TARGETS['paced_p99_s'])} |")
                own = c.get("annotated_to_pv_s", {})
                if own.get("count"):
                    rows.append(f"| … of which the provisioner's own share (claim annotated by the controller-manager → PV), p99 | "
                                f"{ms(own['p99'])} | {verdict(own['p99'] < TARGETS['paced_p99_s'])} |")
        auths = sum(r["create"]["array"]["authentications"] + r["delete"]["array"]["authentications"] for r in prov["runs"])
        arrays = len(prov.get("arrays", [])) or 3
        rows.append(f"| provisioner: one authentication per array per process lifetime (logins are lazy: the first "
                    f"call to an array may fall in a run) | {auths} authentications during all runs, "
                    f"{arrays} arrays | {verdict(auths <= arrays)} |")
        if "memory" in prov:
            mem = prov["memory"]
            rss = mem["rss_after_kib"]["VmRSS"]
            rows.append(f"| provisioner RSS ≤ {TARGETS['rss_mib']:.0f} MB with {mem['objects']['pvs']} PVs and "
                        f"{mem['objects']['claims']} claims cached | {mib(rss)} (peak {mib(mem['rss_after_kib']['VmHWM'])}) | "
                        f"{verdict(rss <= TARGETS['rss_mib'] * 1e6 / 1024)} |")
    return rows + [""]


def flex_section(flex: dict, out_dir: str) -> list[str]:
    init = flex["init"]
    lines = [
        "## Flex driver",
        "",
        f"Release build, statically linked, installed as `<plugin dir>/pure~flex/flex` and run as kubelet runs it "
        f"(bare environment, argv only), through `posix_spawn` + `wait4` from a Python runner. "
        f"Load average during the flex runs: {' / '.join(f'{x:.2f}' for x in flex['load_before'])} before, "
        f"{' / '.join(f'{x:.2f}' for x in flex['load_after'])} after.",
        "",
        f"### `init` versus `/bin/true` ({init['iterations']} each, interleaved)",
        "",
        "| program | p50 | p90 | p99 | max | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for name, key, rss in (("flashvol-flex init", "init_wall_s", "init_maxrss_kib"), ("/bin/true", "true_wall_s", "true_maxrss_kib")):
        s = init[key]
        lines.append(f"| {name} | {ms(s['p50'])} | {ms(s['p90'])} | {ms(s['p99'])} | {ms(s['max'])} | {mib(init[rss])} |")
    lines += ["", f"Ratio init / true: {init['ratio_p50']:.2f}× at the median, {init['ratio_p99']:.2f}× at p99.", "",
              "![init vs true](init_vs_true.png)", "",
              "### `mount` / `unmount`", "",
              "Block: a FlashArray volume already formatted (xfs), over the test fabric (the iSCSI stand-in exposes "
              "the LUN as a loop device); each pair is a full stage + bind and unbind + unstage (host lookup, "
              "connect, login/rescan, device wait, blkid, mount; unmount, device delete, disconnect). "
              "File: a FlashBlade file system, NFS mount stand-in (bind mount of the simulator's directory). "
              "Peak RSS: the driver's own VmHWM (sampled from /proc on 10 extra runs) and the peak of the call "
              "including its helper programs (GNU `time -f %M`, 5 extra runs; about 1 MiB is time's own floor).", "",
              "| volume | array latency | call | n | p50 | p90 | p99 | max | array calls / call | driver VmHWM | peak RSS with helpers |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in flex["mounts"]:
        for call in ("mount", "unmount"):
            s = m[f"{call}_wall_s"]
            calls = m[f"array_calls_per_{call}"]
            lines.append(f"| {m['kind']} | {m['latency_ms']} ms | {call} | {s['count']} | {ms(s['p50'])} | {ms(s['p90'])} | "
                         f"{ms(s['p99'])} | {ms(s['max'])} | {calls:.1f} | {mib(m['driver_vmhwm_kib'][call])} | "
                         f"{mib(m['maxrss_kib_with_helpers'][call])} |")
    lines += ["", "Array calls per call-out (averaged over the runs, at 0 ms):", ""]
    for m in flex["mounts"]:
        if m["latency_ms"] != 0:
            continue
        for call in ("mount", "unmount"):
            routes = ", ".join(f"`{k}` {v:g}" for k, v in m[f"routes_per_{call}"].items()) or "none"
            lines.append(f"- {m['kind']} {call}: {routes}; authentications per {call} {m[f'authentications_per_{call}']:.2f}")
    lines += ["", "Added array latency versus the change in median wall time (is the driver's array I/O serial, and is "
              "that all the latency adds?):", "",
              "| volume | call | array calls | expected +5 ms × calls | measured Δp50 |", "|---|---|---|---|---|"]
    by = {(m["kind"], m["latency_ms"]): m for m in flex["mounts"]}
    for kind in ("block", "file"):
        if (kind, 0) in by and (kind, 5) in by:
            for call in ("mount", "unmount"):
                calls = by[(kind, 0)][f"array_calls_per_{call}"]
                delta = by[(kind, 5)][f"{call}_wall_s"]["p50"] - by[(kind, 0)][f"{call}_wall_s"]["p50"]
                lines.append(f"| {kind} | {call} | {calls:.1f} | {ms(calls * 0.005)} | {ms(delta)} |")
    lines += ["", "![mount and unmount wall time](flex_mounts.png)", "", "### Where a mount's time goes (strace pass)", "",
              "A few extra pairs run under `strace -f -ttt -T -yy`. strace slows every system call, so the totals are "
              "inflated against the table above; the split is what this pass is for. *helpers*: lifetime of each "
              "program the driver ran (mount, blkid, the iSCSI/NFS stand-ins, which are shell scripts calling curl, "
              "jq and losetup); *mount syscalls*: time inside mount(2)/umount2(2), in the driver or in mount(8); "
              "*array wait*: the driver's threads blocked on their TCP connections to the arrays (connect, TLS, "
              "request, reply); *driver's own*: the rest — process start, parsing, sysfs/mountinfo reads, locks, "
              "record files, strace overhead.", "",
              "| volume | latency | call | n | total | helpers (runs) | of which mount syscalls | array wait | driver's own |",
              "|---|---|---|---|---|---|---|---|---|"]
    for b in flex["breakdown"]:
        for call in ("mount", "unmount"):
            d = b[call]
            helpers = "; ".join(f"{k} {ms(v)} ({d['helper_runs'][k]:g})" for k, v in d["helpers_s"].items()) or "none"
            lines.append(f"| {b['kind']} | {b['latency_ms']} ms | {call} | {b['iterations']} | {ms(d['total_s'])} | {helpers} | "
                         f"{ms(d['mount_syscalls_s'])} | {ms(d['array_tcp_wait_s'])} | {ms(d['driver_own_s'])} |")
    lines.append("")
    plot_flex(flex, out_dir)
    return lines


def plot_flex(flex: dict, out_dir: str) -> None:
    plt = pyplot()
    init = flex["init"]
    fig, ax = plt.subplots(figsize=(7, 4))
    samples = [[x * 1000 for x in init["samples"]["true"]], [x * 1000 for x in init["samples"]["init"]]]
    ax.boxplot(samples, tick_labels=["/bin/true", "flashvol-flex init"], showfliers=True, whis=(1, 99))
    ax.set_ylabel("wall time per call (ms)")
    ax.set_title(f"init vs fork+exec of /bin/true ({init['iterations']} each, interleaved)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "init_vs_true.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 5))
    labels, data = [], []
    for m in flex["mounts"]:
        for call in ("mount", "unmount"):
            labels.append(f"{m['kind']}\n{call}\n+{m['latency_ms']} ms")
            data.append([x * 1000 for x in m["samples"][call]])
    ax.boxplot(data, tick_labels=labels, whis=(1, 99))
    ax.set_ylabel("wall time per call (ms)")
    ax.set_title("flex mount / unmount (boxes: quartiles, whiskers: p1..p99)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "flex_mounts.png"), dpi=110)
    plt.close(fig)


def provisioner_section(prov: dict, out_dir: str, kcm_args: list[str] | None = None) -> list[str]:
    kcm_args = kcm_args or []
    qps, burst = kcm_client_limits([])
    kcm_sentence = f"Its client is limited to {qps} requests/s (burst {burst}) by default (`--kube-api-qps`, `--kube-api-burst`)"
    if kcm_args:
        kcm_sentence += f"; this run started it with {kcm_flags_text(kcm_args)}."
    else:
        kcm_sentence += ", which this run kept (`bench/run.sh --kcm-args` changes it)."
    lines = [
        "## Provisioner",
        "",
        "Release build, started as the shipped Deployment would start it (its args and env, leader election on, "
        "default limits: 200 QPS / burst 400, 16 workers) with the ServiceAccount token of the shipped RBAC, "
        "against the real kube-apiserver and kube-controller-manager (the PV controller binds). Claims of "
        "`pure-block` (1Gi) are created by a Python client with 32 connections; the claim→PV latency is "
        "from the moment the create request was sent to the arrival of the PV's ADDED watch event, both on "
        "the local monotonic clock (not object timestamps, which have 1 s resolution). Array: two simulated "
        "FlashArrays and one FlashBlade in one `flashvol-arraysim` process.",
        "",
        "The claim→PV time has two parts: the kube-controller-manager's PV controller first annotates the claim "
        "with `volume.kubernetes.io/storage-provisioner` (until then the claim is not ours), then the provisioner "
        "creates the volume and the PV. Binding (claim `Bound`) is again the controller-manager's work. "
        + kcm_sentence,
        "",
        "| run | array latency | claims | client create time | all PVs after | PV/s | all Bound after | Bound/s | load after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in prov["runs"]:
        c = run["create"]
        kind = run_kind(run)
        lines.append(f"| {kind} | {run['latency_ms']} ms | {run['count']} | {c['client_create_s']:.1f} s | "
                     f"{c['first_create_to_all_pvs_s']:.1f} s | {c['throughput_pv_per_s']:.1f} | "
                     f"{c['first_create_to_all_bound_s']:.1f} s | {c['throughput_pvc_per_s']:.1f} | {run['load_after'][0]:.2f} |")
    lines += backlog_lines(prov)
    lines += ["", "Latency per claim (p50 / p99):", "",
              "| run | array latency | claim → annotated (controller-manager) | annotated → PV (provisioner) | claim → PV | claim → Bound |",
              "|---|---|---|---|---|---|"]
    for run in prov["runs"]:
        c = run["create"]
        kind = run_kind(run)
        cells = []
        for key in ("claim_to_annotated_s", "annotated_to_pv_s", "claim_to_pv_s", "claim_to_bound_s"):
            s_ = c[key]
            cells.append(f"{ms(s_['p50'])} / {ms(s_['p99'])}" if s_.get("count") else "n/a")
        lines.append(f"| {kind} | {run['latency_ms']} ms | " + " | ".join(cells) + " |")
    lines += ["", "Deleting them all at once (claim delete sent → PV DELETED event):", "",
              "| run | array latency | PVs | all gone after | PV/s | p50 | p99 |", "|---|---|---|---|---|---|---|"]
    for run in prov["runs"]:
        d = run["delete"]
        kind = run_kind(run)
        s = d["claim_delete_to_pv_gone_s"]
        lines.append(f"| {kind} | {run['latency_ms']} ms | {run['count']} | {d['first_delete_to_all_pvs_gone_s']:.1f} s | "
                     f"{d['throughput_pv_per_s']:.1f} | {ms(s['p50'])} | {ms(s['p99'])} |")
    lines += ["", "### Requests per claim", "",
              "Kubernetes API: `apiserver_request_total` before/after each phase, minus the benchmark client's own "
              "requests, divided by the claims. This includes the kube-controller-manager (PV binder, events). The "
              "provisioner alone: its ServiceAccount falls in the `service-accounts` priority-and-fairness flow "
              "schema (`apiserver_flowcontrol_dispatched_requests_total`); the controller-manager's controllers use "
              "`kube-system-service-accounts`. Array calls: `/_sim/stats` of all three arrays.", ""]
    for run in prov["runs"]:
        for phase in ("create", "delete"):
            p = run[phase]
            api = p["api"]
            total = sum(api["by_verb_resource"].values()) - api["benchmark_own_requests"]
            flows = api["by_flow_schema"]
            prov_req = flows.get("service-accounts", 0)
            verbs = ", ".join(f"{k} {v / run['count']:.2f}" for k, v in api["by_verb_resource"].items() if v / run["count"] >= 0.01)
            arr = p["array"]
            routes = ", ".join(f"`{k}` {v / run['count']:.2f}" for k, v in arr["calls"].items())
            lines += [f"- **{run['label']} {phase}** (n={run['count']}): API requests per claim, all clients except the "
                      f"benchmark: {total / run['count']:.2f}; provisioner (`service-accounts` flow): "
                      f"{prov_req / run['count']:.2f}; flows: "
                      + ", ".join(f"{k} {v:g}" for k, v in flows.items()),
                      f"  - by verb/resource (incl. the benchmark's {api['benchmark_own_requests']} own): {verbs}",
                      f"  - array calls per claim: {arr['total_calls'] / run['count']:.2f} ({routes}); "
                      f"authentications: {arr['authentications']}; TLS connections: {arr.get('connections', 'not counted')}"]
    lines.append("")
    if "memory" in prov:
        mem = prov["memory"]
        lines += ["### Memory", "",
                  f"{mem['objects']['claims']} claims of a class that is not ours, each created already Bound to a flex PV shaped "
                  f"like ours (claim `volumeName` and `bind-completed`, PV `claimRef` with the claim's uid, both statuses "
                  f"Bound; {mem['create_s']:.0f} s to create), so both land in the provisioner's claim and PV caches. "
                  f"RSS (VmRSS) before: {mib(mem['rss_before_kib']['VmRSS'])}; after, steady: "
                  f"{mib(mem['rss_after_kib']['VmRSS'])} (anonymous {mib(mem['rss_after_kib'].get('RssAnon', 0))}); "
                  f"peak over the whole run (VmHWM): {mib(mem['rss_after_kib']['VmHWM'])}; threads: "
                  f"{mem['rss_after_kib'].get('Threads')}."
                  + (f" One PV is {mem['object_json_bytes']['pv']} bytes of JSON and one claim "
                     f"{mem['object_json_bytes']['claim']} (as the apiserver serves them, managedFields included); "
                     f"the RSS grew {(mem['rss_after_kib']['VmRSS'] - mem['rss_before_kib']['VmRSS']) * 1024 / mem['objects']['pvs']:.0f} "
                     f"bytes per PV + claim pair." if "object_json_bytes" in mem else ""), ""]
    lines += memory_attribution(prov)
    if prov["runs"]:
        lines += ["![claim to PV latency](provisioner_latency.png)", "", "![PVs created over time](provisioner_progress.png)", ""]
        plot_provisioner(prov, out_dir)
    return lines


def backlog_lines(prov: dict) -> list[str]:
    """What the backlog runs did from when the provisioner was continued; the provisioner
    section's tables count every run from each claim's create, which for these includes the stop."""
    lines = []
    for run in prov["runs"]:
        if run.get("held"):
            c = run["create"]
            s = c["release_to_pv_s"]
            lines += ["", f"{BACKLOG_SENTENCE} The provisioner was stopped for {c['held_s']:.1f} s; from when it "
                      f"was continued, all {run['count']} PVs took {c['release_to_all_pvs_s']:.2f} s "
                      f"({c['throughput_pv_per_s_after_release']:.1f} PV/s), p50 / p99 {ms(s['p50'])} / {ms(s['p99'])}. "
                      "In the tables of this section its times count from each claim's create, the stop included."]
    return lines


def memory_points(prov: dict) -> list[tuple[str, dict]]:
    """Each reading of the provisioner's memory, in the order they were taken: before and after
    every run, then the memory phase."""
    points = []
    for run in prov.get("runs", []):
        for when, key in (("before", "before"), ("all Bound", "all_bound"), ("after delete", "after_delete")):
            reading = run.get("provisioner_rss_kib", {}).get(key)
            if reading:
                points.append((f"{run['label']}: {when}", reading))
    if "memory" in prov:
        mem = prov["memory"]
        points.append(("memory phase: before", mem["rss_before_kib"]))
        points.append((f"memory phase: {mem['objects']['pvs']} PVs + {mem['objects']['claims']} claims cached", mem["rss_after_kib"]))
    return points


def memory_attribution(prov: dict) -> list[str]:
    """Where the resident memory is, at every reading that has the allocator's account
    (`flashvol_heap_bytes`): the binary's pages (RssFile), live heap data (allocated), what the
    allocator holds for reuse (resident − allocated), and other anonymous memory (RssAnon −
    resident: thread stacks, TLS, the allocator's metadata outside its count)."""
    rows = [(label, r) for label, r in memory_points(prov) if r.get("heap_bytes", {}).get("resident") is not None]
    if not rows:
        return []
    lines = ["#### Where the memory is", "",
             "From `/proc/<pid>/status` and the provisioner's `flashvol_heap_bytes` (jemalloc's own counters) "
             "read at the same moment. The burst phases' garbage shows as *held for reuse*; *live heap* is the "
             "caches and queues.", "",
             "| reading | VmRSS | binary pages (RssFile) | live heap (allocated) | held for reuse (resident − allocated) | other anonymous |",
             "|---|---|---|---|---|---|"]
    for label, r in rows:
        heap = r["heap_bytes"]
        resident_kib, allocated_kib = heap["resident"] / 1024, heap["allocated"] / 1024
        other = r.get("RssAnon", 0) - resident_kib
        lines.append(f"| {label} | {mib(r['VmRSS'])} | {mib(r.get('RssFile', 0))} | {mib(allocated_kib)} | "
                     f"{mib(resident_kib - allocated_kib)} | {mib(max(other, 0))} |")
    return lines + [""]


def plot_provisioner(prov: dict, out_dir: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for run in prov["runs"]:
        values = sorted(x * 1000 for x in run["create"]["samples_claim_to_pv_s"])
        ys = [(i + 1) / len(values) for i in range(len(values))]
        ax.plot(values, ys, label=f"{run['label']} (n={run['count']}, +{run['latency_ms']} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("claim create sent → PV ADDED seen (ms, log)")
    ax.set_ylabel("fraction of claims")
    ax.set_title("provisioner: claim → PV latency (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "provisioner_latency.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    for run in prov["runs"]:
        offsets = run["create"]["pv_arrival_offsets_s"]
        ax.plot(offsets, range(1, len(offsets) + 1), label=f"{run['label']} (+{run['latency_ms']} ms)")
    ax.set_xlabel("seconds since the first claim was sent")
    ax.set_ylabel("PVs created")
    ax.set_title("provisioner: PVs created over time")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "provisioner_progress.png"), dpi=110)
    plt.close(fig)


# --- side by side with the Go peer ------------------------------------------------------------

def run_at_zero(prov: dict, kind: str):
    """The run of this kind (see run_kind) at 0 ms array latency, if measured."""
    return next((r for r in prov["runs"] if r["latency_ms"] == 0 and run_kind(r) == kind), None)


def ratio(ours: float, theirs: float) -> str:
    """Two decimals, or two significant digits below 0.01 (ms against minutes is not 0.00×)."""
    if not theirs:
        return "—"
    value = ours / theirs
    decimals = 2 if value >= 0.01 or value <= 0 else 1 - math.floor(math.log10(value))
    return f"{value:.{decimals}f}×"


def first_settle(result: dict):
    """How the subject's first run (or its memory phase, when it ran alone) waited for a settled
    cluster; None for results from before the harness waited."""
    first = result["runs"][0] if result.get("runs") else result.get("memory")
    return (first or {}).get("settled")


def settled_sentence(prov: dict, peers: dict) -> list[str]:
    """Says that (and how long) each subject waited for the previous one's claims, PVs and
    controller-manager work to be done: without it the rows do not compare like with like."""
    subjects = [("flashvol", prov)] + [(f"peer {label}", peers[label]) for label in sorted(peers)]
    waits = [(name, first_settle(result)) for name, result in subjects]
    if any(settle is None for _, settle in waits):
        missing = ", ".join(name for name, settle in waits if settle is None)
        return [f"**Not comparable like with like:** {missing} started without waiting for a settled "
                "cluster (results from before the harness waited); the previous subject's objects may "
                "still have been in the controller-manager's work.", ""]
    window = waits[0][1]["window_s"]
    def one(name: str, settle: dict) -> str:
        busy = settle["kcm_busy_windows"]
        return (f"{name} {settle['waited_s']:.1f} s ({settle['most_unsettled_objects']} claims/PVs unsettled at most, "
                f"{busy} busy controller-manager window{'' if busy == 1 else 's'})")
    detail = "; ".join(one(name, settle) for name, settle in waits)
    return [f"Every subject, and every run, started on a settled cluster: the previous run's claims and PVs "
            f"gone or Bound, none being deleted, and the controller-manager caught up (its controllers "
            f"quiet for {window:.0f} s). Wait before each subject's first run: {detail}.", ""]


def cpu_total(cpu_s):
    """A getter summing the per-process CPU seconds `cpu_s` reads (None when not measured)."""
    def get(result: dict):
        by_process = cpu_s(result)
        return sum(by_process.values()) if by_process else None
    return get


def rounds_of(result) -> list:
    """A subject's results, one per round (BENCH_ROUNDS): a list as given, or one result alone."""
    return result if isinstance(result, list) else [result]


def over_rounds(values: list, fmt) -> str:
    """One cell: the value of a single round, or the median round's value and the range."""
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median_low(values))} ({fmt(min(values))}–{fmt(max(values))})"


def ratio_over_rounds(ours: list, theirs: list, pairs: list) -> str:
    """The ratio of the medians, and with several rounds the range of the per-round ratios
    (each of flashvol's rounds against the peer's round that followed it)."""
    text = ratio(statistics.median_low(ours), statistics.median_low(theirs))
    per_round = [a / b for a, b in pairs if b]
    if len(per_round) > 1:
        text += f" ({min(per_round):.2f}–{max(per_round):.2f})"
    return text


def rounds_sentence(prov: list, peers: dict) -> list[str]:
    counts = {len(prov)} | {len(rounds) for rounds in peers.values()}
    if counts == {1}:
        return []
    return [f"The burst and paced phases ran in {len(prov)} rounds (`BENCH_ROUNDS`): flashvol, then each peer, "
            "then again. A cell with several rounds gives the median round's value (the lower middle one "
            "for an even count) and the range in brackets; its ratio is that of the medians, with the "
            "range of the per-round ratios (each flashvol round against the peer round that followed it) "
            "in brackets. The memory phase ran once, in the first round: its rows, and the RSS rows, are "
            "of the first round.", ""]


def side_by_side(prov, peers: dict) -> list[str]:
    """The table REPORT.md opens with: flashvol against the Go peer (bench/peer) measured in the
    same bench/run.sh invocation, each peer setup in its own columns with the ratio flashvol/peer.
    `prov` and each of `peers` are one result or a list of them, one per round (BENCH_ROUNDS).
    Ratios over 1 favour flashvol for rates, under 1 for times, requests and memory."""
    prov = rounds_of(prov)
    peers = {label: rounds_of(result) for label, result in peers.items()}
    labels = sorted(peers)
    head = "| measure | flashvol | " + " | ".join(
        f"peer {label} ({peers[label][0]['subject'].get('args') or 'library defaults'}) | flashvol/peer"
        for label in labels) + " |"
    kinds = [run_kind(r) for r in prov[0]["runs"] if r["latency_ms"] == 0]
    lines = [
        "## flashvol against a Go provisioner, side by side", "",
        "The Go peer is `bench/peer`: an external provisioner on sig-storage-lib-external-provisioner v13 "
        "(the library most Go provisioners use) returning PVs of flashvol's shape without array I/O; flashvol "
        "ran against the simulated arrays at 0 ms. Both ran on the same control plane in this one "
        "`bench/run.sh` invocation, one after the other, with the provisioner ServiceAccount's token.", "",
        *rounds_sentence(prov, peers),
        *settled_sentence(prov[0], {label: rounds[0] for label, rounds in peers.items()}),
        *([BACKLOG_SENTENCE, ""] if BACKLOG in kinds else []),
        head, "|---|---|" + "---|---|" * len(labels)]

    def row(name: str, value, fmt, peers_have_it: bool = True, first_round_only: bool = False) -> None:
        def values(rounds: list) -> list:
            return [value(result) for result in (rounds[:1] if first_round_only else rounds)]
        ours = values(prov)
        if ours[0] is None:
            return
        cells = []
        for label in labels:
            theirs = values(peers[label]) if peers_have_it else [None]
            pairs = [(a, b) for a, b in zip(ours, theirs) if a is not None and b is not None]
            theirs = [v for v in theirs if v is not None]
            cells += ["—", "—"] if not theirs else [
                over_rounds(theirs, fmt), ratio_over_rounds([v for v in ours if v is not None], theirs, pairs)]
        lines.append(f"| {name} | {over_rounds([v for v in ours if v is not None], fmt)} | " + " | ".join(cells) + " |")

    def create(kind: str, *keys):
        def get(result: dict):
            run = run_at_zero(result, kind)
            if run is None:
                return None
            value = run["create"]
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            return value
        return get

    def drain(kind: str):
        # PV/s counts from the first claim sent, so it cannot exceed the client's own create rate
        # by much: a provisioner that keeps up shows the client's speed. How long the PVs took
        # after the last claim was created is the provisioner's backlog at that moment. Bursts
        # only: a paced run's last claim is one claim, its latency the other rows give.
        def get(result: dict):
            run = run_at_zero(result, kind)
            if run is None or run.get("arrival_rate_per_s") or "client_create_s" not in run["create"]:
                return None
            return run["create"]["first_create_to_all_pvs_s"] - run["create"]["client_create_s"]
        return get

    for kind in kinds:
        if kind == BACKLOG:
            row(f"{kind}: PV/s", create(kind, "throughput_pv_per_s_after_release"), lambda v: f"{v:.1f}")
            row(f"{kind}: continued → all PVs", create(kind, "release_to_all_pvs_s"), lambda v: f"{v:.2f} s")
            row(f"{kind}: continued → PV p50", create(kind, "release_to_pv_s", "p50"), ms)
            row(f"{kind}: continued → PV p99", create(kind, "release_to_pv_s", "p99"), ms)
        else:
            row(f"{kind}: PV/s", create(kind, "throughput_pv_per_s"), lambda v: f"{v:.1f}")
            row(f"{kind}: last claim created → all PVs", drain(kind), lambda v: f"{v:.2f} s")
            row(f"{kind}: claim→PV p50", create(kind, "claim_to_pv_s", "p50"), ms)
            row(f"{kind}: claim→PV p99", create(kind, "claim_to_pv_s", "p99"), ms)
            if "pre-annotated" not in kind:
                # The controller-manager's annotation, not the provisioner, sets most of a
                # claim's wait here, and its pace varies by round: the provisioner's own share.
                for p in ("p50", "p99"):
                    row(f"{kind}: annotated → PV {p} (the provisioner's share)",
                        create(kind, "annotated_to_pv_s", p), ms)
            row(f"{kind}: Bound/s", create(kind, "throughput_pvc_per_s"), lambda v: f"{v:.1f}")
        row(f"{kind}: API requests per claim (all clients)", create(kind, "api_requests_per_claim_all_clients"),
            lambda v: f"{v:.2f}")
        # CPU from the first claim created until every claim is Bound, per process (/proc).
        row(f"{kind}: CPU seconds, the provisioner", create(kind, "cpu_s", "provisioner"), lambda v: f"{v:.2f}")
        # The peer makes no array calls: the simulator idles through its runs.
        row(f"{kind}: CPU seconds, the array simulator (flashvol's arrays)", create(kind, "cpu_s", "array simulator"),
            lambda v: f"{v:.2f}", peers_have_it=False)
        row(f"{kind}: CPU seconds, every process (control plane, provisioner, arrays, bench client)",
            cpu_total(create(kind, "cpu_s")), lambda v: f"{v:.2f}")
    row("RSS idle (before the first run)",
        lambda r: r["runs"][0]["provisioner_rss_kib"]["before"]["VmRSS"] if r["runs"] else None, mib,
        first_round_only=True)
    row("RSS with the memory phase's PVs and claims cached",
        lambda r: r["memory"]["rss_after_kib"]["VmRSS"] if r.get("memory") else None, mib, first_round_only=True)
    row("peak RSS (VmHWM) over the whole run", lambda r: r["provisioner_final_rss_kib"]["VmHWM"], mib,
        first_round_only=True)
    return lines + [""]


def round_files(names: list[str], prefix: str) -> dict[str, list[str]]:
    """The result files `<prefix><label>.json` and `<prefix><label>.round-<n>.json` by label, each
    label's files in round order (the first round has no suffix)."""
    found: dict[str, dict[int, str]] = {}
    for name in names:
        match = re.fullmatch(re.escape(prefix) + r"(.*?)(?:\.round-([1-9][0-9]*))?\.json", name)
        if match:
            found.setdefault(match.group(1), {})[int(match.group(2) or 1)] = name
    return {label: [rounds[n] for n in sorted(rounds)] for label, rounds in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True)
    args = parser.parse_args()
    out = args.results
    meta = load(os.path.join(out, "meta.json"))
    if meta is None:
        raise SystemExit(f"{out}/meta.json is missing: run bench/run.sh first")
    flex = load(os.path.join(out, "flex.json"))
    prov = load(os.path.join(out, "provisioner.json"))
    if flex is None and prov is None:
        raise SystemExit(f"{out} holds neither flex.json nor provisioner.json")
    kcm_args = kcm_extra_args(meta)
    peers = {label: [load(os.path.join(out, name)) for name in names]
             for label, names in round_files(os.listdir(out), "peer-").items()}
    prov_rounds = round_files(os.listdir(out), "provisioner").get("", [])
    lines = header(meta)
    if prov and peers:
        lines += side_by_side([load(os.path.join(out, name)) for name in prov_rounds], peers)
    lines += targets_table(flex, prov, kcm_args)
    analysis = os.path.join(out, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis, encoding="utf-8") as handle:
            lines += [handle.read().rstrip(), ""]
    if flex:
        lines += flex_section(flex, out)
    if prov:
        lines += provisioner_section(prov, out, kcm_args)
    lines += ["## Raw data", "", "`meta.json`, `flex.json`, `provisioner.json` and `peer-*.json` next to this "
              "file hold every sample and counter this report was made from.", ""]
    with open(os.path.join(out, "REPORT.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
