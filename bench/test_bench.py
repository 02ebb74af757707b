"""Unit tests of the harness's own arithmetic, parsers and report wording (no cluster, no arrays,
no matplotlib): python3 -m unittest discover -s bench -p 'test_*.py'"""

import os
import subprocess
import tempfile
import unittest

import benchlib
import flexbench
import provbench
import report


class PercentileTests(unittest.TestCase):
    def test_nearest_rank_returns_an_observed_value(self):
        values = [5.0, 1.0, 4.0, 2.0, 3.0]
        self.assertEqual(benchlib.percentile(values, 50), 3.0)
        self.assertEqual(benchlib.percentile(values, 99), 5.0)
        self.assertEqual(benchlib.percentile(values, 0), 1.0)
        self.assertEqual(benchlib.percentile(values, 20), 1.0)
        self.assertEqual(benchlib.percentile(values, 21), 2.0)

    def test_p99_of_a_hundred_samples_is_the_99th(self):
        values = [float(i) for i in range(1, 101)]
        self.assertEqual(benchlib.percentile(values, 99), 99.0)
        self.assertEqual(benchlib.percentile(values, 100), 100.0)

    def test_empty_sample_and_bad_rank_are_refused(self):
        with self.assertRaisesRegex(ValueError, "empty"):
            benchlib.percentile([], 50)
        with self.assertRaisesRegex(ValueError, "outside"):
            benchlib.percentile([1.0], 101)

    def test_summary_of_nothing_says_so(self):
        self.assertEqual(benchlib.summary([]), {"count": 0})
        self.assertEqual(benchlib.summary([2.0, 4.0])["mean"], 3.0)


METRICS_BEFORE = """# HELP apiserver_request_total x
apiserver_request_total{code="201",component="apiserver",resource="persistentvolumes",verb="POST"} 3
apiserver_request_total{code="200",component="apiserver",resource="persistentvolumeclaims",verb="LIST"} 7
apiserver_request_total_other{verb="POST"} 100
"""
METRICS_AFTER = """apiserver_request_total{code="201",component="apiserver",resource="persistentvolumes",verb="POST"} 13
apiserver_request_total{code="409",component="apiserver",resource="persistentvolumes",verb="POST"} 2
apiserver_request_total{code="200",component="apiserver",resource="persistentvolumeclaims",verb="LIST"} 7
apiserver_request_total_other{verb="POST"} 500
"""


class MetricsTests(unittest.TestCase):
    def test_only_the_named_family_is_read(self):
        samples = benchlib.parse_metrics(METRICS_BEFORE, "apiserver_request_total")
        self.assertEqual(len(samples), 2)
        self.assertEqual(samples[0][0]["verb"], "POST")

    def test_delta_sums_over_other_labels_and_drops_unchanged(self):
        delta = benchlib.counter_delta(METRICS_BEFORE, METRICS_AFTER, "apiserver_request_total", ("verb", "resource"))
        self.assertEqual(delta, {"POST/persistentvolumes": 12.0})

    def test_a_value_that_is_not_a_number_is_an_error_naming_the_metric(self):
        with self.assertRaisesRegex(ValueError, "apiserver_request_total"):
            benchlib.parse_metrics('apiserver_request_total{verb="GET"} lots\n', "apiserver_request_total")


# The driver (100) with a helper thread (101) talking to the array, a mount(8) child (102) that
# runs a grandchild (103), and its own umount2.
STRACE = """100 1000.000000 execve("/flex", ["/flex", "mount"], 0x7ff /* 2 vars */) = 0 <0.000300>
100 1000.001000 clone3({flags=CLONE_VM|CLONE_THREAD, ...} => {parent_tid=[101]}, 88) = 101 <0.000050>
101 1000.002000 connect(5<TCP:[1234]>, {sa_family=AF_INET, sin_port=htons(443)}, 16) = 0 <0.001000>
101 1000.003000 read(5<TCP:[127.0.0.1:40000->127.0.0.1:443]>,  <unfinished ...>
100 1000.003500 futex(0x1, FUTEX_WAIT, 0, NULL) = 0 <0.005000>
101 1000.010000 <... read resumed>"HTTP/1.1 200 OK", 4096) = 17 <0.007000>
101 1000.010500 read(6</etc/pure.json>, "{", 10) = 1 <0.000100>
100 1000.011000 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD) = 102 <0.000400>
102 1000.011200 execve("/usr/bin/mount", ["mount", "/dev/loop0", "/x"], 0x1) = 0 <0.000500>
102 1000.012000 clone(child_stack=NULL, flags=SIGCHLD) = 103 <0.000100>
103 1000.012100 execve("/usr/bin/helper", ["helper"], 0x1) = 0 <0.000300>
103 1000.013000 exit_group(0) = ?
102 1000.014000 mount("/dev/loop0", "/x", "xfs", 0, NULL) = 0 <0.004000>
102 1000.019000 exit_group(0) = ?
100 1000.020000 umount2("/y", 0) = 0 <0.001500>
100 1000.030000 exit_group(0) = ?
"""


class StraceTests(unittest.TestCase):
    def setUp(self):
        handle = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        handle.write(STRACE)
        handle.close()
        self.path = handle.name
        self.parsed = flexbench.parse_strace(self.path, flexbench._root_pid(self.path))

    def tearDown(self):
        os.unlink(self.path)

    def test_total_is_the_driver_process_lifetime(self):
        self.assertAlmostEqual(self.parsed["total_s"], 0.030)

    def test_helpers_are_direct_children_only_by_program(self):
        self.assertEqual(list(self.parsed["helpers_s"]), ["mount"])
        self.assertAlmostEqual(self.parsed["helpers_s"]["mount"], 1000.019 - 1000.0112)
        self.assertEqual(self.parsed["helper_runs"], {"mount": 1})

    def test_mount_syscalls_are_counted_wherever_they_run(self):
        self.assertAlmostEqual(self.parsed["mount_syscalls_s"], 0.0055)

    def test_array_wait_counts_tcp_syscalls_only_including_resumed_ones(self):
        self.assertAlmostEqual(self.parsed["array_tcp_wait_s"], 0.008)


META = {
    "command": "bench/run.sh", "started": "2026-01-01T00:00:00Z", "quick": False, "kubernetes": "v1.37.2",
    "kubectl": "v1.37.2", "flex_binary_bytes": 6_000_000, "flex_ldd": "statically linked", "load_at_start": [1.0, 1.0, 1.0],
    "machine": {"nproc": 2, "cpu_model": "x", "memory_mib": 1024, "kernel": "6", "git_rev": "abc", "rustc": "rustc", "python": "3"},
}
TUNED = ["--kube-api-qps=100", "--kube-api-burst=200"]


def _create(**extra):
    quantiles = {"count": 10, "p50": 0.01, "p99": 0.05}
    return {"throughput_pv_per_s": 40.0, "first_create_to_all_pvs_s": 25.0, "throughput_pvc_per_s": 20.0,
            "first_create_to_all_bound_s": 50.0, "claim_to_pv_s": quantiles, "annotated_to_pv_s": quantiles,
            "array": {"authentications": 0}, **extra}


PROV = {"runs": [
    {"count": 1000, "latency_ms": 0, "arrival_rate_per_s": None, "create": _create(), "delete": {"array": {"authentications": 0}}},
    {"count": 400, "latency_ms": 5, "arrival_rate_per_s": 20.0, "create": _create(), "delete": {"array": {"authentications": 0}}},
]}


class ControllerManagerFlagsTests(unittest.TestCase):
    def test_no_flags_are_upstream_defaults(self):
        self.assertEqual(report.kcm_client_limits([]), ("20", "30"))
        self.assertEqual(report.kcm_flags_text([]), "upstream defaults (client 20 QPS / burst 30)")
        self.assertEqual(report.kcm_row_label([]), "controller-manager at upstream defaults (20 QPS / burst 30)")

    def test_a_meta_from_before_the_option_means_upstream_defaults(self):
        self.assertEqual(report.kcm_extra_args(META), [])
        self.assertIn("- kube-controller-manager: upstream defaults (client 20 QPS / burst 30)", report.header(META))

    def test_tuned_flags_are_named_in_the_header_and_the_limits_in_the_rows(self):
        meta = dict(META, kcm_extra_args=TUNED)
        self.assertEqual(report.kcm_extra_args(meta), TUNED)
        self.assertIn("- kube-controller-manager: extra flags `--kube-api-qps=100 --kube-api-burst=200` "
                      "(client 100 QPS / burst 200)", report.header(meta))
        self.assertEqual(report.kcm_row_label(TUNED), "controller-manager tuned: 100 QPS / burst 200")

    def test_the_last_occurrence_of_a_flag_wins_and_similar_names_do_not_count(self):
        args = ["--kube-api-qps=50", "--kube-api-qps-extra=7", "--kube-api-qps=75", "--kube-api-content-type=x"]
        self.assertEqual(report.kcm_client_limits(args), ("75", "30"))
        self.assertTrue(report.kcm_tuned(args))

    def test_other_flags_are_not_called_tuned(self):
        self.assertFalse(report.kcm_tuned(["--v=4"]))
        self.assertEqual(report.kcm_row_label(["--v=4"]),
                         "controller-manager with extra flags, client at upstream defaults (20 QPS / burst 30)")
        self.assertIn("`--v=4`", report.kcm_flags_text(["--v=4"]))

    def test_every_provisioner_throughput_and_latency_target_is_labelled(self):
        for args, label in (([], "controller-manager at upstream defaults"), (TUNED, "controller-manager tuned: 100 QPS")):
            rows = [r for r in report.targets_table(None, PROV, args) if r.startswith("| ")][1:]  # minus the header
            labelled = [r for r in rows if label in r]
            # burst: PV/s and Bound/s; paced: p99 (its "of which the provisioner's own share"
            # continuation and the authentication row are not the controller-manager's).
            self.assertEqual(len(labelled), 3, rows)
            self.assertTrue(all(r.startswith(("| ≥ 50 PVC/s", "| p99 claim→PV")) for r in labelled))
            self.assertEqual(len(rows), 5)

    def test_the_provisioner_section_says_whether_the_defaults_were_kept(self):
        kept = "\n".join(report.provisioner_section({"runs": []}, "/nonexistent", []))
        self.assertIn("which this run kept", kept)
        tuned = "\n".join(report.provisioner_section({"runs": []}, "/nonexistent", TUNED))
        self.assertIn("this run started it with extra flags `--kube-api-qps=100 --kube-api-burst=200`", tuned)


class BacklogTests(unittest.TestCase):
    def test_the_backlog_target_counts_from_when_the_provisioner_was_continued(self):
        held = {"count": 1000, "latency_ms": 0, "arrival_rate_per_s": None, "preannotated": True, "held": True,
                "create": _create(throughput_pv_per_s_after_release=125.0, release_to_all_pvs_s=8.0),
                "delete": {"array": {"authentications": 0}}}
        rows = report.targets_table(None, {"runs": PROV["runs"] + [held]}, [])
        backlog = [r for r in rows if "backlog" in r]
        self.assertEqual(len(backlog), 1, rows)
        self.assertIn("| 125.0 PV/s (all 1000 PVs 8.0 s after) | met |", backlog[0])

    def test_the_provisioner_section_gives_the_backlog_from_when_it_was_continued(self):
        held = {"count": 1000, "held": True, "create": {
            "held_s": 3.96, "release_to_all_pvs_s": 2.5, "throughput_pv_per_s_after_release": 400.0,
            "release_to_pv_s": {"p50": 1.2, "p99": 2.4}}}
        text = "\n".join(report.backlog_lines({"runs": PROV["runs"] + [held]}))
        self.assertIn("The provisioner was stopped for 4.0 s; from when it was continued, all 1000 PVs took "
                      "2.50 s (400.0 PV/s), p50 / p99 1200.0 ms / 2400.0 ms.", text)
        self.assertEqual(report.backlog_lines(PROV), [])

    def test_a_held_run_must_be_a_burst_of_pre_annotated_claims(self):
        for rate, preannotated in ((20.0, True), (None, False)):
            with self.assertRaisesRegex(ValueError, "a held run is a burst of pre-annotated claims"):
                provbench.run_claims({}, "ns", 10, rate, 0, "x", preannotated=preannotated, held=True)

    def test_the_process_is_stopped_inside_and_running_again_after_whatever_happens(self):
        child = subprocess.Popen(["sleep", "60"])
        try:
            with provbench.stopped(child.pid) as release:
                self.assertIn(provbench.process_state(child.pid), ("T", "t"))
            self.assertNotIn(provbench.process_state(child.pid), ("T", "t"))
            with self.assertRaises(KeyError):
                with provbench.stopped(child.pid):
                    raise KeyError("the run failed")
            self.assertNotIn(provbench.process_state(child.pid), ("T", "t"))
            with provbench.stopped(child.pid) as release:
                released = release()
                self.assertNotIn(provbench.process_state(child.pid), ("T", "t"))
                self.assertEqual(release(), released)  # continued once, at the first call
        finally:
            child.kill()
            child.wait()

    def test_a_process_name_with_parentheses_and_spaces_does_not_hide_its_state(self):
        with tempfile.TemporaryDirectory() as tmp:
            odd = os.path.join(tmp, "a) S (b")
            os.symlink("/bin/sleep", odd)
            child = subprocess.Popen([odd, "60"])
            try:
                with provbench.stopped(child.pid):
                    self.assertEqual(provbench.process_state(child.pid), "T")
            finally:
                child.kill()
                child.wait()


def fake_settle(waited_s: float, unsettled: int = 0, busy: int = 0) -> dict:
    return {"waited_s": waited_s, "most_unsettled_objects": unsettled, "unsettled_example": [],
            "kcm_busy_windows": busy, "kcm_requests_in_quiet_window": 0.0, "window_s": 3.0}


def fake_result(pv_per_s: float, rss_kib: int, subject=None, settled=None) -> dict:
    run = {"latency_ms": 0, "arrival_rate_per_s": None, "preannotated": False,
           "create": {"throughput_pv_per_s": pv_per_s, "throughput_pvc_per_s": pv_per_s / 2,
                      "claim_to_pv_s": {"p50": 0.5, "p99": 1.0}, "api_requests_per_claim_all_clients": 6.0},
           "provisioner_rss_kib": {"before": {"VmRSS": rss_kib}}}
    if settled:
        run["settled"] = settled
    result = {"runs": [run], "provisioner_final_rss_kib": {"VmHWM": rss_kib * 2},
              "memory": {"rss_after_kib": {"VmRSS": rss_kib * 3}}}
    if subject:
        result["subject"] = subject
    return result


class SideBySideTests(unittest.TestCase):
    def test_cpu_rows_split_the_provisioner_the_arrays_and_every_process(self):
        ours = fake_result(90.0, 20480)
        ours["runs"][0]["create"]["cpu_s"] = {"apiserver": 6.0, "provisioner": 0.5, "array simulator": 1.0}
        peer = fake_result(100.0, 40960, {"args": "--threadiness 16"})
        peer["runs"][0]["create"]["cpu_s"] = {"apiserver": 6.49, "provisioner": 1.0, "array simulator": 0.01}
        table = "\n".join(report.side_by_side(ours, {"tuned": peer}))
        self.assertIn("| burst: CPU seconds, the provisioner | 0.50 | 1.00 | 0.50× |", table)
        self.assertIn("| burst: CPU seconds, the array simulator (flashvol's arrays) | 1.00 | — | — |", table)
        self.assertIn("every process (control plane, provisioner, arrays, bench client) | 7.50 | 7.50 | 1.00× |", table)

    def test_runs_measured_before_cpu_accounting_have_no_cpu_rows(self):
        table = "\n".join(report.side_by_side(fake_result(90.0, 20480), {"tuned": fake_result(1.0, 1, {"args": ""})}))
        self.assertNotIn("CPU seconds", table)

    def test_each_peer_gets_its_value_and_the_ratio_flashvol_over_peer(self):
        ours = fake_result(90.0, 20480)
        peers = {"defaults": fake_result(4.0, 40960, {"args": ""}),
                 "tuned": fake_result(180.0, 40960, {"args": "--threadiness 16"})}
        table = "\n".join(report.side_by_side(ours, peers))
        self.assertIn("peer defaults (library defaults)", table)
        self.assertIn("peer tuned (--threadiness 16)", table)
        self.assertIn("| burst: PV/s | 90.0 | 4.0 | 22.50× | 180.0 | 0.50× |", table)
        self.assertIn("| RSS idle (before the first run) | 20.0 MiB | 40.0 MiB | 0.50× | 40.0 MiB | 0.50× |", table)

    def test_the_wait_after_the_last_claim_is_all_pvs_after_less_the_client_create_time(self):
        ours = fake_result(90.0, 20480)
        ours["runs"][0]["create"].update(client_create_s=2.5, first_create_to_all_pvs_s=3.0)
        peer = fake_result(100.0, 40960, {"args": "--threadiness 16"})
        peer["runs"][0]["create"].update(client_create_s=2.0, first_create_to_all_pvs_s=3.0)
        table = "\n".join(report.side_by_side(ours, {"tuned": peer}))
        self.assertIn("| burst: last claim created → all PVs | 0.50 s | 1.00 s | 0.50× |", table)
        self.assertNotIn("last claim created", "\n".join(
            report.side_by_side(fake_result(90.0, 20480), {"tuned": fake_result(1.0, 1, {"args": ""})})))
        for result in (ours, peer):
            result["runs"][0]["arrival_rate_per_s"] = 20.0
        self.assertNotIn("last claim created", "\n".join(report.side_by_side(ours, {"tuned": peer})))

    def test_a_backlog_run_is_measured_from_when_the_provisioner_was_continued(self):
        def with_backlog(result: dict, after_release_s: float, p50: float) -> dict:
            run = {"latency_ms": 0, "arrival_rate_per_s": None, "preannotated": True, "held": True,
                   "create": {"throughput_pv_per_s": 1000 / (4.0 + after_release_s), "throughput_pvc_per_s": 50.0,
                              "client_create_s": 3.5, "first_create_to_all_pvs_s": 4.0 + after_release_s,
                              "claim_to_pv_s": {"p50": 4.0, "p99": 5.0}, "held_s": 4.0,
                              "release_to_all_pvs_s": after_release_s,
                              "throughput_pv_per_s_after_release": 1000 / after_release_s,
                              "release_to_pv_s": {"p50": p50, "p99": after_release_s}}}
            result["runs"].append(run)
            return result
        ours = with_backlog(fake_result(90.0, 20480), 2.0, 1.0)
        peer = with_backlog(fake_result(100.0, 40960, {"args": "--threadiness 16"}), 4.0, 1.5)
        table = "\n".join(report.side_by_side(ours, {"tuned": peer}))
        self.assertIn("*backlog*: the pre-annotated burst again, but created while the provisioner was stopped", table)
        self.assertIn("| backlog: PV/s | 500.0 | 250.0 | 2.00× |", table)
        self.assertIn("| backlog: continued → all PVs | 2.00 s | 4.00 s | 0.50× |", table)
        self.assertIn("| backlog: continued → PV p50 | 1000.0 ms | 1500.0 ms | 0.67× |", table)
        # Counted from the first create, the stop included, these would mislead.
        self.assertNotIn("backlog: claim→PV", table)
        self.assertNotIn("backlog: last claim created", table)
        self.assertNotIn("backlog: Bound/s", table)
        self.assertNotIn("*backlog*", "\n".join(report.side_by_side(fake_result(90.0, 20480),
                                                                    {"tuned": fake_result(1.0, 1, {"args": ""})})))

    def test_the_provisioners_share_after_the_annotation_has_its_rows_where_the_controller_manager_annotates(self):
        ours, peer = fake_result(90.0, 20480), fake_result(100.0, 40960, {"args": ""})
        for result, p50 in ((ours, 0.1), (peer, 0.2)):
            result["runs"][0]["create"]["annotated_to_pv_s"] = {"count": 1000, "p50": p50, "p99": 2 * p50}
        table = "\n".join(report.side_by_side(ours, {"defaults": peer}))
        self.assertIn("| burst: annotated → PV p50 (the provisioner's share) | 100.0 ms | 200.0 ms | 0.50× |", table)
        self.assertIn("| burst: annotated → PV p99 (the provisioner's share) | 200.0 ms | 400.0 ms | 0.50× |", table)
        for result in (ours, peer):
            result["runs"][0]["preannotated"] = True
        self.assertNotIn("annotated → PV", "\n".join(report.side_by_side(ours, {"defaults": peer})))

    def test_a_ratio_far_below_one_keeps_two_significant_digits(self):
        self.assertEqual(report.ratio(7.5, 92671.3), "0.000081×")
        self.assertEqual(report.ratio(0.29, 100.0), "0.0029×")
        self.assertEqual(report.ratio(1.0, 4.0), "0.25×")
        self.assertEqual(report.ratio(3.0, 0.0), "—")

    def test_a_measure_the_peer_lacks_is_a_dash_not_a_ratio(self):
        ours = fake_result(90.0, 20480)
        peer = fake_result(4.0, 40960, {"args": ""})
        del peer["memory"]
        table = "\n".join(report.side_by_side(ours, {"defaults": peer}))
        self.assertIn("| RSS with the memory phase's PVs and claims cached | 60.0 MiB | — | — |", table)

    def test_the_wait_for_a_settled_cluster_is_stated_for_every_subject(self):
        ours = fake_result(90.0, 20480, settled=fake_settle(6.2, busy=1))
        peers = {"defaults": fake_result(4.0, 40960, {"args": ""}, fake_settle(41.0, 200, 3)),
                 "tuned": fake_result(180.0, 40960, {"args": "--threadiness 16"}, fake_settle(7.5))}
        table = "\n".join(report.side_by_side(ours, peers))
        self.assertIn("Every subject, and every run, started on a settled cluster", table)
        self.assertIn("flashvol 6.2 s (0 claims/PVs unsettled at most, 1 busy controller-manager window)", table)
        self.assertIn("peer defaults 41.0 s (200 claims/PVs unsettled at most, 3 busy controller-manager windows)", table)
        self.assertIn("peer tuned 7.5 s", table)
        self.assertNotIn("Not comparable", table)

    def test_rounds_give_the_median_its_range_and_the_range_of_the_per_round_ratios(self):
        ours = [fake_result(pv, 20480) for pv in (90.0, 110.0, 100.0)]
        peer = [fake_result(pv, 40960, {"args": "--threadiness 16"}) for pv in (100.0, 95.0, 120.0)]
        table = "\n".join(report.side_by_side(ours, {"tuned": peer}))
        self.assertIn("ran in 3 rounds", table)
        # Medians 100 and 100; per round 0.90, 1.16, 0.83.
        self.assertIn("| burst: PV/s | 100.0 (90.0–110.0) | 100.0 (95.0–120.0) | 1.00× (0.83–1.16) |", table)

    def test_memory_and_rss_rows_are_of_the_first_round_only(self):
        ours = [fake_result(90.0, 20480), fake_result(90.0, 10240)]
        peer = [fake_result(90.0, 40960, {"args": ""}), fake_result(90.0, 81920, {"args": ""})]
        for later in (ours[1], peer[1]):
            del later["memory"]
        table = "\n".join(report.side_by_side(ours, {"tuned": peer}))
        self.assertIn("| RSS idle (before the first run) | 20.0 MiB | 40.0 MiB | 0.50× |", table)
        self.assertIn("| RSS with the memory phase's PVs and claims cached | 60.0 MiB | 120.0 MiB | 0.50× |", table)
        self.assertIn("| peak RSS (VmHWM) over the whole run | 40.0 MiB | 80.0 MiB | 0.50× |", table)

    def test_one_round_reads_as_before_without_ranges(self):
        table = "\n".join(report.side_by_side([fake_result(90.0, 20480)],
                                              {"tuned": [fake_result(180.0, 40960, {"args": ""})]}))
        self.assertIn("| burst: PV/s | 90.0 | 180.0 | 0.50× |", table)
        self.assertNotIn("rounds", table)

    def test_round_files_are_grouped_by_subject_in_round_order(self):
        names = ["provisioner.round-10.json", "provisioner.json", "provisioner.round-2.json", "meta.json",
                 "peer-tuned.round-2.json", "peer-tuned.json", "peer-defaults.json", "provisioner_latency.png"]
        self.assertEqual(report.round_files(names, "provisioner"),
                         {"": ["provisioner.json", "provisioner.round-2.json", "provisioner.round-10.json"]})
        self.assertEqual(report.round_files(names, "peer-"),
                         {"tuned": ["peer-tuned.json", "peer-tuned.round-2.json"], "defaults": ["peer-defaults.json"]})

    def test_a_subject_that_did_not_wait_is_flagged_as_not_comparable(self):
        ours = fake_result(90.0, 20480, settled=fake_settle(6.2))
        peers = {"tuned": fake_result(0.5, 40960, {"args": "--threadiness 16"})}
        table = "\n".join(report.side_by_side(ours, peers))
        self.assertIn("**Not comparable like with like:** peer tuned started without waiting", table)
        self.assertNotIn("Every subject", table)


def kube_object(name: str, phase: str | None, namespace: str | None = None, deleting: bool = False) -> dict:
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if deleting:
        meta["deletionTimestamp"] = "2026-12-06T12:00:00Z"
    return {"metadata": meta, "status": {"phase": phase} if phase else {}}


class SettledClusterTests(unittest.TestCase):
    def test_bound_claims_and_pvs_are_settled(self):
        claims = [kube_object("mem-00000", "Bound", "bench-memory")]
        pvs = [kube_object("bench-pv-00000", "Bound")]
        self.assertEqual(provbench.unsettled_objects(claims, pvs), [])

    def test_pending_released_and_deleting_objects_are_named(self):
        claims = [kube_object("burst0-00001", "Pending", "bench-burst-0"),
                  kube_object("burst0-00002", None, "bench-burst-0"),
                  kube_object("burst0-00003", "Bound", "bench-burst-0", deleting=True)]
        pvs = [kube_object("pvc-1", "Released"), kube_object("pvc-2", "Bound", deleting=True)]
        self.assertEqual(provbench.unsettled_objects(claims, pvs), [
            "claim bench-burst-0/burst0-00001 Pending", "claim bench-burst-0/burst0-00002 Pending",
            "claim bench-burst-0/burst0-00003 being deleted", "PV pvc-1 Released", "PV pvc-2 being deleted"])


class MemoryPhaseTests(unittest.TestCase):
    def test_a_memory_pair_is_created_bound_so_the_controller_manager_has_nothing_to_write(self):
        claim, volume, claim_status, pv_status = provbench.memory_pair(7)
        self.assertEqual(claim["metadata"]["name"], "mem-00007")
        self.assertEqual(claim["spec"]["volumeName"], "bench-pv-00007")
        self.assertEqual(claim["metadata"]["annotations"], {"pv.kubernetes.io/bind-completed": "yes"})
        self.assertNotIn("uid", volume["spec"]["claimRef"])
        bound = provbench.memory_pv_claim_ref(volume, "1234-uid")
        self.assertEqual(bound["spec"]["claimRef"], {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "bench-memory",
            "name": "mem-00007", "uid": "1234-uid"})
        self.assertEqual(pv_status, {"status": {"phase": "Bound"}})
        # What the PV controller compares before it writes a bound claim's status.
        self.assertEqual(claim_status["status"]["phase"], "Bound")
        self.assertEqual(claim_status["status"]["accessModes"], volume["spec"]["accessModes"])
        self.assertEqual(claim_status["status"]["capacity"], volume["spec"]["capacity"])
        self.assertEqual(claim["spec"]["storageClassName"], volume["spec"]["storageClassName"])
        self.assertEqual([(c["type"], c["status"]) for c in claim_status["status"]["conditions"]], [("Unused", "True")])

    def test_heap_bytes_are_read_by_kind_and_absent_for_a_subject_without_them(self):
        page = ("# HELP flashvol_heap_bytes The allocator's bytes\n# TYPE flashvol_heap_bytes gauge\n"
                'flashvol_heap_bytes{kind="allocated"} 1048576\nflashvol_heap_bytes{kind="resident"} 4194304\n'
                'flashvol_leader 1\n')
        self.assertEqual(provbench.heap_bytes(page), {"allocated": 1048576, "resident": 4194304})
        self.assertEqual(provbench.heap_bytes("go_goroutines 12\n"), {})

    def test_the_memory_table_splits_rss_into_binary_live_heap_held_and_other(self):
        reading = {"VmRSS": 40960, "RssFile": 12288, "RssAnon": 28672,
                   "heap_bytes": {"allocated": 16 << 20, "resident": 24 << 20}}
        prov = {"runs": [{"label": "burst0", "provisioner_rss_kib": {"before": {"VmRSS": 10240, "RssAnon": 5000}}}],
                "memory": {"objects": {"pvs": 10, "claims": 10}, "rss_before_kib": reading, "rss_after_kib": reading}}
        table = "\n".join(report.memory_attribution(prov))
        # The first run's reading has no allocator account (a peer, or an old file): no row.
        self.assertNotIn("burst0: before", table)
        self.assertIn("| memory phase: 10 PVs + 10 claims cached | 40.0 MiB | 12.0 MiB | 16.0 MiB | 8.0 MiB | 4.0 MiB |", table)
        self.assertEqual(report.memory_attribution({"runs": []}), [])

class FakeKube:
    def __init__(self):
        self.calls = []

    def request(self, method, path, body=None, content_type="application/json", ok=(200,)):
        self.calls.append((method, path, body, content_type))
        return b"{}"


class MemoryPairRemovalTests(unittest.TestCase):
    def test_every_pair_is_deleted_and_freed_of_its_finalizers_and_nothing_else_is_touched(self):
        kube = FakeKube()
        provbench.remove_memory_pairs(kube, 3)
        deletes = sorted(path for method, path, _, _ in kube.calls if method == "DELETE")
        self.assertEqual(deletes, ["/api/v1/namespaces/bench-memory/persistentvolumeclaims",
                                   "/api/v1/persistentvolumes?labelSelector=flashvol-bench%3Dmemory"])
        patches = sorted(path for method, path, _, _ in kube.calls if method == "PATCH")
        self.assertEqual(patches, sorted(
            [f"/api/v1/namespaces/bench-memory/persistentvolumeclaims/mem-{i:05d}" for i in range(3)]
            + [f"/api/v1/persistentvolumes/bench-pv-{i:05d}" for i in range(3)]))
        for method, _, body, content_type in kube.calls:
            if method == "PATCH":
                self.assertEqual((body, content_type), ({"metadata": {"finalizers": None}}, "application/merge-patch+json"))
        # The collection deletes come first, so each object is gone as soon as its patch lands.
        self.assertEqual([m for m, _, _, _ in kube.calls[:2]], ["DELETE", "DELETE"])


class CpuAccountingTests(unittest.TestCase):
    # /proc/PID/stat lines: pid (comm) state ppid ... utime is field 14, stime field 15.
    @staticmethod
    def stat(comm: str, utime: int, stime: int) -> str:
        return f"42 ({comm}) S 1 42 42 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 7 0 1000 100000 500"

    def test_ticks_are_summed_by_component_and_other_processes_left_out(self):
        processes = [
            ("/root/.cache/flashvol/k8s/v1.37.2/kube-apiserver", self.stat("kube-apiserver", 300, 50)),
            ("/tmp/w/bin/flashvol-provisioner", self.stat("flashvol-provis", 20, 5)),
            ("/tmp/w/bin/flashvol-arraysim", self.stat("flashvol-arrays", 7, 3)),
            ("/tmp/w/bin/flashvol-arraysim", self.stat("flashvol-arrays", 1, 1)),
            ("/usr/bin/bash", self.stat("bash", 1000, 1000)),
            (benchlib.BENCH_CLIENT, self.stat("python (bench) x", 40, 2)),
        ]
        self.assertEqual(benchlib.cpu_ticks_by_component(processes),
                         {"apiserver": 350, "provisioner": 25, "array simulator": 12, "bench client": 42})

    def test_the_go_peer_counts_as_the_provisioner(self):
        ticks = benchlib.cpu_ticks_by_component([("./flashvol-bench-peer", self.stat("flashvol-bench-", 9, 1))])
        self.assertEqual(ticks, {"provisioner": 10})

    def test_seconds_between_readings_and_a_restarted_process_counts_from_its_start(self):
        before = {"apiserver": 1000, "array simulator": 500}
        after = {"apiserver": 1250, "array simulator": 30, "provisioner": 50}
        self.assertEqual(benchlib.cpu_seconds(before, after, hz=100),
                         {"apiserver": 2.5, "array simulator": 0.3, "provisioner": 0.5})

    def test_this_machine_reports_this_process(self):
        self.assertIn("bench client", benchlib.cpu_ticks())


if __name__ == "__main__":
    unittest.main()
