"""purity_fb 1.12.3 (Pure's FlashBlade REST 1.x SDK), unchanged, against flashvol-arraysim."""

import purity_fb
import pytest
from purity_fb import FileSystem, FileSystemSnapshot, NfsRule, ProtocolRule, SmbRule, SnapshotSuffix
from purity_fb.api_client.rest import ApiException

GIB = 1 << 30


def raises_with(status, substring, call, *args, **kwargs):
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    assert info.value.status == status, info.value.body
    assert substring in (info.value.body or ""), info.value.body
    return info.value


def new_fs(name):
    return FileSystem(name=name, provisioned=10 * GIB, hard_limit_enabled=True,
                      fast_remove_directory_enabled=True, snapshot_directory_enabled=True,
                      nfs=NfsRule(rules="*(rw,no_root_squash)", v3_enabled=True, v4_1_enabled=True))


def destroy_attributes():
    return FileSystem(destroyed=True, nfs=NfsRule(v3_enabled=False, v4_1_enabled=False),
                      smb=SmbRule(enabled=False), http=ProtocolRule(enabled=False))


def test_version_login_and_array_endpoints(fb, fb_sim):
    assert "1.12" in fb.list_versions()
    arrays = fb.arrays.list_arrays().items
    assert arrays[0].os == "Purity//FB"
    space = fb.arrays.list_arrays_space().items[0]
    assert space.capacity == 10 << 40 and space.space.total_physical >= 0
    vips = fb.network_interfaces.list_network_interfaces().items
    assert [v.address for v in vips if "data" in v.services]
    assert [v for v in vips if "management" in v.services]


def test_bad_token_is_refused(fb_sim):
    client = purity_fb.PurityFb(fb_sim.endpoint, ca_certs_file_path=fb_sim.ca_cert)
    with pytest.raises(ApiException) as info:
        client.login("wrong")
    assert info.value.status == 401


def test_file_system_lifecycle(fb, unique):
    created = fb.file_systems.create_file_systems(new_fs(unique)).items[0]
    assert created.name == unique and created.destroyed is False
    assert created.nfs.rules == "*(rw,no_root_squash)" and created.nfs.v4_1_enabled
    raises_with(400, "already exists", fb.file_systems.create_file_systems, new_fs(unique))

    listed = fb.file_systems.list_file_systems(names=[unique]).items[0]
    assert listed.provisioned == 10 * GIB and listed.hard_limit_enabled

    resized = fb.file_systems.update_file_systems(name=unique, attributes=FileSystem(provisioned=20 * GIB)).items[0]
    assert resized.provisioned == 20 * GIB
    rules = fb.file_systems.update_file_systems(
        name=unique, attributes=FileSystem(nfs=NfsRule(rules="10.0.0.0/24(rw,no_root_squash)"))).items[0]
    assert rules.nfs.rules == "10.0.0.0/24(rw,no_root_squash)" and rules.nfs.v3_enabled, "nfs is deep-merged"
    fb.file_systems.update_file_systems(name=unique, attributes=FileSystem(hard_limit_enabled=False))

    raises_with(400, "destroyed", fb.file_systems.delete_file_systems, name=unique)
    destroyed = fb.file_systems.update_file_systems(name=unique, attributes=destroy_attributes()).items[0]
    assert destroyed.destroyed and 0 < destroyed.time_remaining <= 86400000
    assert fb.file_systems.list_file_systems(names=[unique]).items[0].destroyed, "destroyed are still listed"
    recovered = fb.file_systems.update_file_systems(name=unique, attributes=FileSystem(destroyed=False)).items[0]
    assert not recovered.destroyed and recovered.time_remaining is None
    fb.file_systems.update_file_systems(name=unique, attributes=destroy_attributes())
    fb.file_systems.delete_file_systems(name=unique)
    raises_with(400, "does not exist", fb.file_systems.list_file_systems, names=[unique])
    raises_with(400, "does not exist", fb.file_systems.update_file_systems, name=unique, attributes=FileSystem(provisioned=GIB))


def test_file_systems_of_any_size_are_created_and_grown(fb, unique):
    created = fb.file_systems.create_file_systems(
        FileSystem(name=unique, provisioned=500 << 40, hard_limit_enabled=True)).items[0]
    assert created.provisioned == 500 << 40
    grown = fb.file_systems.update_file_systems(
        name=unique, attributes=FileSystem(provisioned=4 << 50)).items[0]
    assert grown.provisioned == 4 << 50 and grown.hard_limit_enabled
    fb.file_systems.update_file_systems(name=unique, attributes=destroy_attributes())
    fb.file_systems.delete_file_systems(name=unique)


def test_snapshots(fb, unique):
    fb.file_systems.create_file_systems(new_fs(unique))
    snap = fb.file_system_snapshots.create_file_system_snapshots(sources=[unique], suffix=SnapshotSuffix("s1")).items[0]
    assert snap.name == unique + ".s1" and snap.source == unique and snap.owner.name == unique
    raises_with(400, "already exists", fb.file_system_snapshots.create_file_system_snapshots,
                sources=[unique], suffix=SnapshotSuffix("s1"))
    listed = fb.file_system_snapshots.list_file_system_snapshots(names_or_sources=[unique]).items
    assert [s.name for s in listed] == [unique + ".s1"]
    filtered = fb.file_system_snapshots.list_file_system_snapshots(filter="source='%s'" % unique).items
    assert len(filtered) == 1
    raises_with(400, "destroyed", fb.file_system_snapshots.delete_file_system_snapshots, name=unique + ".s1")
    fb.file_system_snapshots.update_file_system_snapshots(name=unique + ".s1", attributes=FileSystemSnapshot(destroyed=True))
    fb.file_system_snapshots.delete_file_system_snapshots(name=unique + ".s1")
    assert fb.file_system_snapshots.list_file_system_snapshots(names_or_sources=[unique]).items == []


def test_paging_and_filters(fb, unique):
    names = ["%s-%02d" % (unique, i) for i in range(5)]
    for name in names:
        fb.file_systems.create_file_systems(new_fs(name))
    seen, token = [], None
    while True:
        kwargs = {"filter": "name='%s-*'" % unique, "limit": 2}
        if token:
            kwargs["token"] = token
        reply = fb.file_systems.list_file_systems(**kwargs)
        assert reply.pagination_info.total_item_count == 5
        seen.extend(fs.name for fs in reply.items)
        token = reply.pagination_info.continuation_token
        if not token:
            break
    assert seen == names
    assert fb.file_systems.list_file_systems(filter="name='%s-nothing*'" % unique).items == []
    newest_first = fb.file_systems.list_file_systems(filter="name='%s-*'" % unique, sort="name-", limit=1).items
    assert newest_first[0].name == names[-1]


def test_state_and_token_survive_a_simulator_restart_mid_test(fb_sim, fb, unique):
    fb.file_systems.create_file_systems(new_fs(unique))
    fb_sim.restart()
    assert fb.file_systems.list_file_systems(names=[unique]).items[0].nfs.v3_enabled
    fs_dir = fb_sim.admin("GET", "filesystems/" + unique)
    assert fs_dir["destroyed"] is False and fs_dir["path"].startswith("/")


def test_logout_invalidates_the_token(fb_sim):
    client = purity_fb.PurityFb(fb_sim.endpoint, ca_certs_file_path=fb_sim.ca_cert)
    client.login("sim-token-fb")
    client.logout()
    with pytest.raises(ApiException) as info:
        client.file_systems.list_file_systems()
    assert info.value.status in (401, 403)
