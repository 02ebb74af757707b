"""Flex driver benchmark: wall time and peak RSS of `init`, and of `mount`/`unmount` of a block
volume (already formatted) and an NFS volume over the test fabric, with the array simulator
adding 0 ms and 5 ms per call; array calls per call-out from /_sim/stats; and a breakdown of
where a mount's time goes (strace pass: helper programs, mount syscalls, waiting on the array).

Every driver run is a fresh process started the way kubelet starts it (bare environment, argv
only). Wall time is measured around posix_spawn + wait4 with the monotonic clock.

Usage: python3 flexbench.py --flex PATH --setup SETUP_JSON --out RESULT_JSON [--quick]
SETUP_JSON (written by run.sh) names the kubelet root, fabric configs, PV options, simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid

import benchlib

KUBELET_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def spawn(argv: list[str], env: dict[str, str], sample_hwm: bool = False) -> dict:
    """Runs argv to completion; returns wall seconds, exit status, stdout and, with sample_hwm,
    the process's own VmHWM (KiB) sampled from /proc until it exits.

    ru_maxrss from wait4 is useless here: posix_spawn starts the child with vfork semantics, so
    its high-water mark includes this Python process's RSS; peak_rss() measures that instead."""
    read_fd, write_fd = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, write_fd, 1), (os.POSIX_SPAWN_CLOSE, read_fd)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    os.close(write_fd)
    hwm = 0
    if sample_hwm:
        while True:
            done, status, rusage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            hwm = max(hwm, _vm_hwm(pid))
            time.sleep(0.0005)
    else:
        _, status, rusage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with os.fdopen(read_fd, "rb") as pipe:
        stdout = pipe.read()
    return {
        "wall": wall,
        "exit": os.waitstatus_to_exitcode(status),
        "stdout": stdout.decode(errors="replace"),
        "hwm_kib": hwm,
    }


def peak_rss(argv: list[str], env: dict[str, str]) -> tuple[int, dict]:
    """Peak RSS (KiB) of argv and every helper it waits for, from GNU time's %M (time forks, so
    the child starts from time's own small image: about 2 MiB is the floor). Returns it with
    the run's result."""
    with tempfile.NamedTemporaryFile(prefix="flexbench-time.", mode="r") as out:
        result = spawn(["/usr/bin/time", "-f", "%M", "-o", out.name] + argv, env)
        text = out.read().strip().splitlines()
    try:
        return int(text[-1]), result
    except (IndexError, ValueError) as error:
        raise RuntimeError(f"/usr/bin/time wrote no %M for {argv[:3]}: {text}") from error


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def require_success(result: dict, what: str) -> None:
    try:
        status = json.loads(result["stdout"]).get("status")
    except json.JSONDecodeError:
        status = None
    if status != "Success":
        raise RuntimeError(f"flex {what} did not answer Success (exit {result['exit']}): {result['stdout'][:500]}")


class Driver:
    def __init__(self, flex: str, setup: dict):
        self.flex, self.setup = flex, setup
        self.kubelet_root = setup["kubelet_root"]

    def env(self, fabric: str) -> dict[str, str]:
        return {"PATH": KUBELET_PATH, "FLASHVOL_FABRIC_CONFIG": fabric}

    def pod_dir(self, pv: str) -> str:
        path = os.path.join(self.kubelet_root, "pods", str(uuid.uuid4()), "volumes", "pure~flex", pv)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, 0o750)
        return path

    def run(self, argv: list[str], fabric: str, sample_hwm=False, measure_rss=False) -> dict:
        env = self.env(fabric)
        if measure_rss:
            kib, result = peak_rss(argv, env)
            result["time_kib"] = kib
            return result
        return spawn(argv, env, sample_hwm)

    def mount(self, volume: dict, pod_dir: str, sample_hwm=False, measure_rss=False, prefix=()) -> dict:
        argv = list(prefix) + [self.flex, "mount", pod_dir, json.dumps(volume["options"])]
        result = self.run(argv, volume["fabric"], sample_hwm, measure_rss)
        require_success(result, f"mount {pod_dir}")
        return result

    def unmount(self, volume: dict, pod_dir: str, sample_hwm=False, measure_rss=False, prefix=()) -> dict:
        argv = list(prefix) + [self.flex, "unmount", pod_dir]
        result = self.run(argv, volume["fabric"], sample_hwm, measure_rss)
        require_success(result, f"unmount {pod_dir}")
        if os.path.ismount(pod_dir):
            raise RuntimeError(f"unmount said Success but {pod_dir} is still mounted")
        os.rmdir(pod_dir)
        return result


# --- init versus /bin/true ---------------------------------------------------------------------
def bench_init(driver: Driver, iterations: int) -> dict:
    env = {"PATH": KUBELET_PATH}
    true_bin = "/bin/true"
    walls = {"init": [], "true": []}
    for i in range(iterations):
        # Alternate the order so neither always runs first after the sleep/cache effects.
        order = ("init", "true") if i % 2 == 0 else ("true", "init")
        for which in order:
            argv = [driver.flex, "init"] if which == "init" else [true_bin]
            result = spawn(argv, env)
            if which == "init":
                require_success(result, "init")
            walls[which].append(result["wall"])
    rss = {"init": [], "true": []}
    for _ in range(20):
        rss["init"].append(peak_rss([driver.flex, "init"], env)[0])
        rss["true"].append(peak_rss([true_bin], env)[0])
    init_s, true_s = benchlib.summary(walls["init"]), benchlib.summary(walls["true"])
    return {
        "iterations": iterations,
        "init_wall_s": init_s,
        "true_wall_s": true_s,
        "ratio_p50": init_s["p50"] / true_s["p50"],
        "ratio_p99": init_s["p99"] / true_s["p99"],
        "init_maxrss_kib": max(rss["init"]),
        "true_maxrss_kib": max(rss["true"]),
        "samples": walls,
    }


# --- mount / unmount ---------------------------------------------------------------------------
def bench_mounts(driver: Driver, arrays, volume: dict, iterations: int, latency_ms: int) -> dict:
    benchlib.sim_set_latency(arrays, latency_ms)
    # Warm-up: the first mount of a block volume formats it; afterwards it is "already formatted".
    for _ in range(2):
        pod = driver.pod_dir(volume["pv"])
        driver.mount(volume, pod)
        driver.unmount(volume, pod)
    mount_walls, unmount_walls = [], []
    mount_calls, unmount_calls = [], []
    routes_mount: dict[str, int] = {}
    routes_unmount: dict[str, int] = {}
    auths = {"mount": 0, "unmount": 0}
    for i in range(iterations):
        pod = driver.pod_dir(volume["pv"])
        benchlib.sim_reset_stats(arrays)
        result = driver.mount(volume, pod)
        mount_walls.append(result["wall"])
        stats = benchlib.sim_stats(arrays)
        mount_calls.append(stats["total_calls"])
        auths["mount"] += stats["authentications"]
        _merge(routes_mount, stats["calls"])
        benchlib.sim_reset_stats(arrays)
        result = driver.unmount(volume, pod)
        unmount_walls.append(result["wall"])
        stats = benchlib.sim_stats(arrays)
        unmount_calls.append(stats["total_calls"])
        auths["unmount"] += stats["authentications"]
        _merge(routes_unmount, stats["calls"])
    # Peak RSS on a few extra runs: the driver's own (VmHWM sampled from /proc), and the call
    # with every helper program it runs (mount, the iscsiadm stand-in, ...) from GNU time.
    hwm_mount = hwm_unmount = rss_mount = rss_unmount = 0
    for _ in range(min(10, iterations)):
        pod = driver.pod_dir(volume["pv"])
        hwm_mount = max(hwm_mount, driver.mount(volume, pod, sample_hwm=True)["hwm_kib"])
        hwm_unmount = max(hwm_unmount, driver.unmount(volume, pod, sample_hwm=True)["hwm_kib"])
    for _ in range(min(5, iterations)):
        pod = driver.pod_dir(volume["pv"])
        rss_mount = max(rss_mount, driver.mount(volume, pod, measure_rss=True)["time_kib"])
        rss_unmount = max(rss_unmount, driver.unmount(volume, pod, measure_rss=True)["time_kib"])
    return {
        "latency_ms": latency_ms,
        "iterations": iterations,
        "mount_wall_s": benchlib.summary(mount_walls),
        "unmount_wall_s": benchlib.summary(unmount_walls),
        "array_calls_per_mount": sum(mount_calls) / iterations,
        "array_calls_per_unmount": sum(unmount_calls) / iterations,
        "authentications_per_mount": auths["mount"] / iterations,
        "authentications_per_unmount": auths["unmount"] / iterations,
        "routes_per_mount": {k: v / iterations for k, v in routes_mount.items()},
        "routes_per_unmount": {k: v / iterations for k, v in routes_unmount.items()},
        "maxrss_kib_with_helpers": {"mount": rss_mount, "unmount": rss_unmount},
        "driver_vmhwm_kib": {"mount": hwm_mount, "unmount": hwm_unmount},
        "samples": {"mount": mount_walls, "unmount": unmount_walls},
    }


def _merge(into: dict[str, int], calls: dict[str, int]) -> None:
    for route, count in calls.items():
        into[route] = into.get(route, 0) + count


# --- breakdown (strace) --------------------------------------------------------------------------
_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
_DURATION = re.compile(r"<(\d+\.\d+)>\s*$")
_EXEC = re.compile(r'execve\("([^"]+)"')
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>")
_TCP_FD = re.compile(r"^(\w+)\(\d+<TCP(?:v6)?:\[")


def parse_strace(path: str, root_pid: int) -> dict:
    """From `strace -f -ttt -T -yy` output: lifetime of each helper program the driver ran (by
    program), time in mount/umount2 syscalls, and time the driver's threads spent blocked on
    its TCP connections to the arrays (connect, read, write, recv/send, poll on them)."""
    first_seen: dict[int, float] = {}
    last_seen: dict[int, float] = {}
    program: dict[int, str] = {}
    parent: dict[int, int] = {}
    pending: dict[tuple[int, str], str] = {}
    mount_syscalls = 0.0
    tcp_wait = 0.0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            match = _LINE.match(raw)
            if not match:
                continue
            pid, stamp, rest = int(match.group(1)), float(match.group(2)), match.group(3)
            first_seen.setdefault(pid, stamp)
            last_seen[pid] = stamp
            call = rest
            resumed = _RESUMED.match(rest)
            if rest.endswith("<unfinished ...>"):
                name = rest.split("(", 1)[0]
                pending[(pid, name)] = rest
                continue
            if resumed:
                name = resumed.group(1)
                call = pending.pop((pid, name), name + "(") + rest
            exec_match = _EXEC.match(call)
            if exec_match and pid != root_pid:
                program.setdefault(pid, os.path.basename(exec_match.group(1)))
            for clone in ("clone(", "clone3(", "vfork(", "fork("):
                if call.startswith(clone):
                    ret = re.search(r"=\s+(\d+)", call.rsplit(")", 1)[-1])
                    if ret:
                        parent[int(ret.group(1))] = pid
            duration = _DURATION.search(call)
            if not duration:
                continue
            seconds = float(duration.group(1))
            if call.startswith(("mount(", "umount2(")):
                mount_syscalls += seconds
            elif _TCP_FD.match(call) or (call.startswith(("poll(", "ppoll(")) and "TCP" in call):
                tcp_wait += seconds

    def top_child(pid: int) -> int | None:
        """The driver's direct child process this pid descends from (None: a driver thread)."""
        chain = pid
        while chain in parent and parent[chain] != root_pid:
            chain = parent[chain]
        return chain if parent.get(chain) == root_pid and chain in program else None

    helpers: dict[str, float] = {}
    helper_count: dict[str, int] = {}
    for pid, name in program.items():
        if top_child(pid) != pid:
            continue  # a grandchild: inside its parent's lifetime already
        helpers[name] = helpers.get(name, 0.0) + last_seen[pid] - first_seen[pid]
        helper_count[name] = helper_count.get(name, 0) + 1
    total = last_seen.get(root_pid, 0.0) - first_seen.get(root_pid, 0.0)
    return {
        "total_s": total,
        "helpers_s": helpers,
        "helper_runs": helper_count,
        "mount_syscalls_s": mount_syscalls,
        "array_tcp_wait_s": tcp_wait,
    }


def bench_breakdown(driver: Driver, arrays, volume: dict, iterations: int, latency_ms: int, workdir: str) -> dict:
    """A few mount/unmount pairs under strace: where the time goes. strace slows every syscall,
    so the absolute numbers are inflated; the shares are what this pass is for."""
    benchlib.sim_set_latency(arrays, latency_ms)
    sums: dict[str, dict] = {}
    for call in ("mount", "unmount"):
        sums[call] = {"total_s": 0.0, "helpers_s": {}, "helper_runs": {}, "mount_syscalls_s": 0.0, "array_tcp_wait_s": 0.0}
    for i in range(iterations):
        pod = driver.pod_dir(volume["pv"])
        for call in ("mount", "unmount"):
            trace = os.path.join(workdir, f"strace-{volume['kind']}-{latency_ms}-{call}-{i}.txt")
            prefix = ["/usr/bin/strace", "-f", "-ttt", "-T", "-yy", "-qq", "-s", "256", "-o", trace]
            if call == "mount":
                driver.mount(volume, pod, prefix=prefix)
            else:
                driver.unmount(volume, pod, prefix=prefix)
            parsed = parse_strace(trace, _root_pid(trace))
            acc = sums[call]
            acc["total_s"] += parsed["total_s"]
            acc["mount_syscalls_s"] += parsed["mount_syscalls_s"]
            acc["array_tcp_wait_s"] += parsed["array_tcp_wait_s"]
            for name, seconds in parsed["helpers_s"].items():
                acc["helpers_s"][name] = acc["helpers_s"].get(name, 0.0) + seconds
                acc["helper_runs"][name] = acc["helper_runs"].get(name, 0) + parsed["helper_runs"][name]
            os.unlink(trace)
    out = {"latency_ms": latency_ms, "iterations": iterations}
    for call, acc in sums.items():
        n = iterations
        helpers = {k: v / n for k, v in sorted(acc["helpers_s"].items())}
        total = acc["total_s"] / n
        array = acc["array_tcp_wait_s"] / n
        helper_sum = sum(helpers.values())
        out[call] = {
            "total_s": total,
            "helpers_s": helpers,
            "helper_runs": {k: v / n for k, v in sorted(acc["helper_runs"].items())},
            "mount_syscalls_s": acc["mount_syscalls_s"] / n,
            "array_tcp_wait_s": array,
            # What is left: the driver's own code, its process start, and strace's overhead.
            "driver_own_s": max(0.0, total - helper_sum - array),
        }
    return out


def _root_pid(trace: str) -> int:
    with open(trace, encoding="utf-8", errors="replace") as handle:
        match = _LINE.match(handle.readline())
    if not match:
        raise RuntimeError(f"{trace}: not strace -f output")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flex", required=True)
    parser.add_argument("--setup", required=True, help="JSON written by run.sh")
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    setup = benchlib.load_setup(args.setup, ("kubelet_root", "arrays_jsonl", "ca", "volumes"))
    driver = Driver(args.flex, setup)
    arrays = benchlib.sim_arrays(setup["arrays_jsonl"], setup["ca"])
    counts = {"init": 100, "block": 10, "file": 20, "strace": 2} if args.quick else {"init": 1000, "block": 100, "file": 200, "strace": 5}
    result = {"counts": counts, "load_before": benchlib.load_average()}

    print(f"flex: init vs /bin/true, {counts['init']} each, interleaved", file=sys.stderr)
    result["init"] = bench_init(driver, counts["init"])
    result["mounts"] = []
    result["breakdown"] = []
    with tempfile.TemporaryDirectory(prefix="flexbench-strace.") as workdir:
        for latency in (0, 5):
            for volume in setup["volumes"]:
                n = counts[volume["kind"]]
                print(f"flex: {volume['kind']} mount/unmount x{n}, array latency {latency} ms", file=sys.stderr)
                measured = bench_mounts(driver, arrays, volume, n, latency)
                measured["kind"] = volume["kind"]
                result["mounts"].append(measured)
                print(f"flex: {volume['kind']} breakdown under strace x{counts['strace']}, latency {latency} ms", file=sys.stderr)
                breakdown = bench_breakdown(driver, arrays, volume, counts["strace"], latency, workdir)
                breakdown["kind"] = volume["kind"]
                result["breakdown"].append(breakdown)
    benchlib.sim_set_latency(arrays, 0)
    result["load_after"] = benchlib.load_average()
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
