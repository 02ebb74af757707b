"""purestorage 1.19.0 (Pure's FlashArray REST 1.x SDK), unchanged, against flashvol-arraysim."""

import purestorage
import pytest
from purestorage import PureHTTPError

GIB = 1 << 30


def raises_with(substring, call, *args, **kwargs):
    with pytest.raises(PureHTTPError) as info:
        call(*args, **kwargs)
    assert substring in info.value.text, info.value.text
    return info.value


def test_array_info_space_and_monitor(fa):
    info = fa.get()
    assert info["array_name"] and info["id"] and info["version"] >= "5.3.0"
    space = fa.get(space=True)
    assert isinstance(space, list) and len(space) == 1
    assert space[0]["capacity"] == 10 << 40
    assert {"total", "volumes", "provisioned", "data_reduction"} <= set(space[0])
    perf = fa.get(action="monitor")[0]
    assert {"writes_per_sec", "reads_per_sec", "usec_per_read_op", "queue_depth"} <= set(perf)


def test_space_figures_the_provisioner_exports_read_through_the_sdk(fa, fa_sim):
    """capacity, total, provisioned and data_reduction feed flashvol_array_* gauges; the
    simulator's /_sim/space override must reach the SDK in the same shape."""
    fa_sim.admin("PUT", "space", {"used": 7 << 40, "data_reduction": 3.5})
    try:
        space = fa.get(space=True)[0]
        assert space["total"] == 7 << 40 and space["capacity"] == 10 << 40
        assert space["data_reduction"] == 3.5 and isinstance(space["provisioned"], int)
    finally:
        fa_sim.admin("DELETE", "space")
    assert fa.get(space=True)[0]["data_reduction"] == 1.0


def test_volume_lifecycle(fa, unique):
    name = unique + "-vol"
    created = fa.create_volume(name, "2G")
    assert created["size"] == 2 * GIB and created["source"] is None
    assert len(created["serial"]) == 24 and created["serial"].isupper()
    assert created["serial"].startswith(fa.get()["id"].replace("-", "")[:16].upper())
    assert fa.get_volume(name)["serial"] == created["serial"]
    assert fa.extend_volume(name, 3 * GIB) == {"name": name, "size": 3 * GIB}
    raises_with("truncation", fa.extend_volume, name, GIB)
    assert fa.truncate_volume(name, GIB)["size"] == GIB
    fa.set_volume(name, bandwidth_limit=100 << 20, iops_limit=5000)
    qos = fa.get_volume(name, qos=True)
    assert (qos["bandwidth_limit"], qos["iops_limit"]) == (100 << 20, 5000)
    fa.set_volume(name, bandwidth_limit="", iops_limit="")
    assert fa.get_volume(name, qos=True)["iops_limit"] is None
    renamed = unique + "-renamed"
    assert fa.rename_volume(name, renamed)["name"] == renamed
    raises_with("does not exist", fa.get_volume, name)

    assert fa.destroy_volume(renamed) == {"name": renamed}
    raises_with("does not exist", fa.get_volume, renamed)
    pending = fa.get_volume(renamed, pending=True)
    assert 0 < pending["time_remaining"] <= 86400
    assert [v["name"] for v in fa.list_volumes(names=[unique + "*"], pending_only=True)] == [renamed]
    raises_with("has been destroyed", fa.destroy_volume, renamed)
    raises_with("has been destroyed", fa.create_volume, renamed, GIB)
    fa.recover_volume(renamed)
    assert fa.get_volume(renamed)["size"] == GIB
    fa.destroy_volume(renamed)
    assert fa.eradicate_volume(renamed) == {"name": renamed}
    raises_with("does not exist", fa.eradicate_volume, renamed)


def test_volumes_of_every_size_purity_accepts_are_created_and_extended(fa, unique):
    """A real FlashArray takes volumes up to 4 PiB; the simulator backs them thin."""
    name = unique + "-big"
    assert fa.create_volume(name, "500T")["size"] == 500 << 40
    assert fa.extend_volume(name, "1P") == {"name": name, "size": 1 << 50}
    assert fa.extend_volume(name, 4 << 50) == {"name": name, "size": 4 << 50}
    error = raises_with("exceeds the maximum", fa.extend_volume, name, (4 << 50) + 512)
    assert error.code == 400
    assert fa.get_volume(name)["size"] == 4 << 50
    raises_with("exceeds the maximum", fa.create_volume, unique + "-huge", "5P")
    fa.destroy_volume(name)
    fa.eradicate_volume(name)


def test_create_existing_and_missing_volumes_fail_with_cinder_substrings(fa, unique):
    fa.create_volume(unique, GIB)
    err = raises_with("already exists", fa.create_volume, unique, GIB)
    assert err.code == 400
    raises_with("does not exist", fa.destroy_volume, unique + "-nope")
    raises_with("does not exist", fa.list_volume_private_connections, unique + "-nope")
    raises_with("does not exist", fa.list_volumes, names=[unique + "-nope"])
    assert fa.list_volumes(names=[unique + "-nope*"]) == []


def test_hosts_connections_and_luns(fa, unique):
    host, other = unique + "-h1", unique + "-h2"
    iqn = "iqn.1993-08.org.debian:01:" + unique
    created = fa.create_host(host, iqnlist=[iqn])
    assert created["iqn"] == [iqn] and created["wwn"] == []
    raises_with("already exists", fa.create_host, host)
    raises_with("already in use", fa.create_host, other, iqnlist=[iqn])
    wwn = "21:00:00:24:ff:4c:%s:%s" % (unique[-4:-2], unique[-2:])  # unique ends in hex digits
    fa.create_host(other, wwnlist=[wwn])
    assert fa.get_host(other)["wwn"] == [wwn.replace(":", "").upper()]
    assert fa.get_host(host)["name"] == host
    assert host in [h["name"] for h in fa.list_hosts()]
    fa.set_host(host, addiqnlist=["iqn.1993-08.org.debian:01:extra-" + unique])
    assert len(fa.get_host(host)["iqn"]) == 2
    fa.set_host(host, remiqnlist=["iqn.1993-08.org.debian:01:extra-" + unique])
    assert fa.get_host(host)["iqn"] == [iqn]
    fa.set_host(host, personality="esxi")

    volumes = [unique + "-v%d" % i for i in range(3)]
    for volume in volumes:
        fa.create_volume(volume, GIB)
    assert fa.connect_host(host, volumes[0]) == {"lun": 1, "name": host, "vol": volumes[0]}
    assert fa.connect_host(host, volumes[1])["lun"] == 2
    assert fa.connect_host(host, volumes[2], lun=10)["lun"] == 10
    assert fa.connect_host(other, volumes[0])["lun"] == 1
    raises_with("already exists", fa.connect_host, host, volumes[0])
    raises_with("Host does not exist", fa.connect_host, unique + "-ghost", volumes[0])

    rows = fa.list_host_connections(host, private=True)
    assert sorted((r["vol"], r["lun"]) for r in rows) == [(volumes[0], 1), (volumes[1], 2), (volumes[2], 10)]
    assert sorted(r["host"] for r in fa.list_volume_private_connections(volumes[0])) == sorted([host, other])

    raises_with("host connections", fa.destroy_volume, volumes[0])
    raises_with("cannot be deleted due to existing connections", fa.delete_host, host)
    assert fa.disconnect_host(host, volumes[0]) == {"name": host, "vol": volumes[0]}
    raises_with("is not connected", fa.disconnect_host, host, volumes[0])
    assert fa.connect_host(host, volumes[0])["lun"] == 1, "lowest free LUN is reused"
    for volume in volumes:
        fa.disconnect_host(host, volume)
    fa.disconnect_host(other, volumes[0])
    assert fa.delete_host(host) == {"name": host}
    raises_with("Host does not exist", fa.delete_host, host)
    raises_with("Host does not exist", fa.list_host_connections, host)


def test_snapshots_and_copies(fa, unique):
    source = unique + "-src"
    fa.create_volume(source, GIB)
    snap = fa.create_snapshot(source, suffix="s1")
    assert snap["name"] == source + ".s1" and snap["source"] == source
    raises_with("already exists", fa.create_snapshot, source, suffix="s1")
    auto = fa.create_snapshots([source])
    assert auto[0]["name"].startswith(source + ".")
    names = [s["name"] for s in fa.get_volume(source, snap=True)]
    assert source + ".s1" in names and len(names) == 2
    assert source + ".s1" in [s["name"] for s in fa.list_volumes(snap=True)]

    clone = fa.copy_volume(source + ".s1", unique + "-clone")
    assert clone["source"] == source and clone["size"] == GIB
    raises_with("already exists", fa.copy_volume, source, unique + "-clone")
    fa.extend_volume(source, 2 * GIB)
    assert fa.copy_volume(source, unique + "-clone", overwrite=True)["size"] == 2 * GIB

    fa.destroy_volume(source + ".s1")
    raises_with("has been destroyed", fa.destroy_volume, source + ".s1")
    fa.eradicate_volume(source + ".s1")
    raises_with("does not exist", fa.destroy_volume, source + ".s1")


def test_snapshot_listings_with_pending_show_destroyed_snapshots(fa, unique):
    """flashvol's GET volume/<v>?snap=true&pending=true (restores, `snapshot list`)."""
    source = unique + "-src"
    fa.create_volume(source, GIB)
    fa.create_snapshot(source, suffix="live")
    fa.create_snapshot(source, suffix="gone")
    fa.destroy_volume(source + ".gone")
    listed = {s["name"]: s for s in fa.get_volume(source, snap=True, pending=True)}
    assert set(listed) == {source + ".live", source + ".gone"}
    assert listed[source + ".gone"]["time_remaining"] and not listed[source + ".live"]["time_remaining"]
    assert listed[source + ".live"]["size"] == GIB and listed[source + ".live"]["source"] == source
    assert [s["name"] for s in fa.get_volume(source, snap=True)] == [source + ".live"]
    raises_with("does not exist", fa.get_volume, unique + "-nothing", snap=True, pending=True)


def test_protection_group_snapshots_are_volume_snapshots_that_copy(fa, unique):
    """Array-side schedules: what a restore from `<pgroup>.<suffix>.<volume>` relies on."""
    volume, group = unique + "-v", unique + "-pg"
    fa.create_volume(volume, GIB)
    created = fa.create_pgroup(group, vollist=[volume])
    assert created["name"] == group and created["volumes"] == [volume]
    raises_with("already exists", fa.create_pgroup, group, vollist=[volume])
    raises_with("does not exist", fa.create_pgroup, unique + "-pg2", vollist=[unique + "-nothing"])
    assert fa.get_pgroup(group)["volumes"] == [volume]
    raises_with("does not exist", fa.get_pgroup, unique + "-nothing")

    snap = fa.create_pgroup_snapshot(group, suffix="n1")
    assert snap["name"] == group + ".n1" and snap["source"] == group
    raises_with("already exists", fa.create_pgroup_snapshot, group, suffix="n1")
    raises_with("does not exist", fa.create_pgroup_snapshot, unique + "-nothing", suffix="n1")
    member = group + ".n1." + volume
    assert member in [s["name"] for s in fa.get_volume(volume, snap=True, pending=True)]
    copy = fa.copy_volume(member, unique + "-restored")
    assert copy["size"] == GIB and copy["source"] == volume


def test_volume_host_group_connections_list_empty_without_host_groups(fa, unique):
    """flashvol's adoption safeguard reads GET volume/<v>/hgroup next to volume/<v>/host."""
    fa.create_volume(unique, GIB)
    assert fa.list_volume_shared_connections(unique) == []
    assert fa.list_volume_private_connections(unique) == []
    raises_with("does not exist", fa.list_volume_shared_connections, unique + "-nothing")


def test_ports_name_iscsi_and_fc_targets(fa):
    ports = fa.list_ports()
    iscsi = [p for p in ports if p["iqn"]]
    fc = [p for p in ports if p["wwn"]]
    assert iscsi and iscsi[0]["iqn"].startswith("iqn.2010-06.com.purestorage:flasharray.")
    assert iscsi[0]["portal"].endswith(":3260")
    assert fc and len(fc[0]["wwn"]) == 16


def test_cookie_is_renewed_so_many_calls_need_one_authentication(fa_sim, unique):
    before = fa_sim.authentications()
    array = purestorage.FlashArray(fa_sim.endpoint, api_token="sim-token-fa", verify_https=True, ssl_cert=fa_sim.ca_cert)
    for i in range(20):
        array.create_volume("%s-%d" % (unique, i), GIB)
        array.get_volume("%s-%d" % (unique, i))
    assert fa_sim.authentications() - before == 1


def test_expired_session_is_reestablished_once_on_401(fa_sim, fa, unique):
    fa.create_volume(unique, GIB)
    before = fa_sim.authentications()
    fa_sim.admin("DELETE", "sessions")
    assert fa.get_volume(unique)["name"] == unique
    assert fa_sim.authentications() - before == 1


def test_bad_token_is_refused_with_401(fa_sim):
    with pytest.raises(PureHTTPError) as info:
        purestorage.FlashArray(fa_sim.endpoint, api_token="wrong", verify_https=True, ssl_cert=fa_sim.ca_cert)
    assert info.value.code == 401


def test_http_450_makes_the_sdk_renegotiate_its_rest_version(fa_sim, fa, unique):
    assert str(fa._rest_version) == "1.19"
    narrowed = ["1.%d" % i for i in range(18)]
    fa_sim.admin("PUT", "api_versions", {"versions": narrowed})
    try:
        fa.create_volume(unique, GIB)
        assert str(fa._rest_version) == "1.17"
        assert fa.get_volume(unique)["size"] == GIB
    finally:
        fa_sim.admin("DELETE", "api_versions")


def test_paging_with_page_through_and_limit_token(fa, unique):
    names = ["%s-%02d" % (unique, i) for i in range(7)]
    for name in names:
        fa.create_volume(name, GIB)
    seen = []
    for page, error in fa.page_through(3, fa.list_volumes, names=[unique + "-*"]):
        assert error is None
        assert "x-next-token" in page.headers
        seen.extend(v["name"] for v in page)
    assert seen == names
    first = fa.list_volumes(names=[unique + "-*"], limit=4)
    rest = fa.list_volumes(names=[unique + "-*"], limit=4, token=first.headers["x-next-token"])
    assert [v["name"] for v in first + rest] == names


def test_state_survives_a_simulator_restart_mid_test(fa_sim, fa, unique):
    host = unique + "-host"
    fa.create_volume(unique, GIB)
    fa.create_host(host, iqnlist=["iqn.1993-08.org.debian:01:" + unique])
    lun = fa.connect_host(host, unique)["lun"]
    fa_sim.restart()
    assert fa.get_volume(unique)["size"] == GIB
    assert fa.list_host_connections(host)[0]["lun"] == lun
    assert fa_sim.authentications() == 0, "the restarted process needed no login: the session survived"


def test_invalidate_cookie_ends_the_session(fa_sim, fa):
    before = fa_sim.authentications()
    fa.invalidate_cookie()
    fa.get()
    assert fa_sim.authentications() - before == 1


def test_protection_groups_membership_destroy_and_eradicate(fa, unique):
    volume, group = unique + "-v", unique + "-pg"
    fa.create_volume(volume, GIB)
    raises_with("does not exist", fa.set_pgroup, group, addvollist=[volume])
    assert fa.create_pgroup(group)["name"] == group
    raises_with("already exists", fa.create_pgroup, group)
    raises_with("invalid", fa.create_pgroup, unique + "_bad")
    assert fa.set_pgroup(group, addvollist=[volume])["volumes"] == [volume]
    raises_with("already belongs to", fa.set_pgroup, group, addvollist=[volume])
    raises_with("could not be found", fa.set_pgroup, group, remvollist=[unique + "-other"])
    assert fa.get_pgroup(group)["volumes"] == [volume]
    snap = fa.create_pgroup_snapshot(group, suffix="s1")
    assert snap["name"] == group + ".s1"
    rows = fa.get_pgroup(group, snap=True, transfer=True)
    assert [r["name"] for r in rows] == [group + ".s1"] and rows[0]["progress"] == 1.0
    assert rows[0]["completed"] is not None
    assert [v["name"] for v in fa.get_volume(group + ".s1", snap=True, pgroup=True)] == [
        group + ".s1." + volume]
    fa.destroy_pgroup(group)
    raises_with("has been destroyed", fa.set_pgroup, group, addvollist=[volume])
    raises_with("has been destroyed", fa.create_pgroup, group)
    raises_with("does not exist", fa.get_pgroup, group)
    assert fa.get_pgroup(group, pending=True)["time_remaining"] > 0
    assert fa.eradicate_pgroup(group) == {"name": group}
    raises_with("does not exist", fa.get_pgroup, group, pending=True)


def test_replicated_snapshots_on_a_target_array(fa_sim, fa, unique):
    source, group = unique + "-site-a", "daily"
    for progress in (1.0, 0.5):
        fa_sim.admin("POST", "replicated-snapshots", {
            "source_array": source, "pgroup": group, "progress": progress,
            "volumes": [{"name": "vol1", "size": GIB}]})
    replica = source + ":" + group
    assert fa.get_pgroup(replica)["source"] == source
    rows = fa.get_pgroup(replica, snap=True, transfer=True)
    assert [r["name"] for r in rows] == [replica + ".1", replica + ".2"]
    assert (rows[0]["progress"], rows[1]["progress"]) == (1.0, 0.5)
    assert rows[0]["completed"] and rows[1]["completed"] is None
    assert {"created", "started", "data_transferred"} <= set(rows[1])
    volumes = fa.get_volume(replica + ".1", snap=True, pgroup=True)
    assert [(v["name"], v["source"]) for v in volumes] == [
        (replica + ".1.vol1", source + ":vol1")]
    raises_with("does not exist", fa.get_volume, replica + ".9", snap=True, pgroup=True)
    restored = fa.copy_volume(replica + ".1.vol1", unique + "-restored")
    assert restored["size"] == GIB and restored["source"] == source + ":vol1"
    connected = [c for c in fa.list_array_connections() if c["array_name"] == source]
    assert connected and connected[0]["connected"] and connected[0]["type"] == ["replication"]
