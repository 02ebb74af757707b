//! Growing a block volume as kubelet asks for it (`expandfs <json> "" <pod dir> <new> <old>`): the
//! array volume, the loop device standing in for the LUN and the xfs or ext4 file system grow
//! for real, online, with the data intact; `mount` grows a file system its device outgrew; and
//! what must not happen is refused with nothing changed.

use crate::support::*;
use crate::{UID_A, UID_B};

/// A mounted volume of 1 GiB with a file written in it.
struct Mounted {
    fab: Fabric,
    pv: &'static str,
    pod: std::path::PathBuf,
    opts: String,
    sum: u64,
}

fn mounted(pv: &'static str, fs: &str) -> Mounted {
    let fab = Fabric::new();
    fab.create_block_volume(pv, GIB);
    let pod = fab.pod_dir(UID_A, pv);
    let opts = block_options(&fab, pv, &[("kubernetes.io/fsType", fs)]);
    fab.flex(&["mount", pod.to_str().unwrap(), &opts])
        .assert_success();
    assert_eq!(fab.mounted_at(&fab.staging_dir(pv)).unwrap().fs_type, fs);
    let sum = write_payload(&pod, "data", 9);
    assert!(df_bytes(&pod) < GIB + 1);
    Mounted {
        fab,
        pv,
        pod,
        opts,
        sum,
    }
}

impl Mounted {
    /// kubelet's call after the controller manager raised the PV to `new` bytes.
    fn expandfs_at(&self, dir: &std::path::Path, new: u64, old: u64) -> Outcome {
        self.fab.flex(&[
            "expandfs",
            &self.opts,
            "",
            dir.to_str().unwrap(),
            &new.to_string(),
            &old.to_string(),
        ])
    }

    fn expandfs(&self, new: u64, old: u64) -> Outcome {
        self.expandfs_at(&self.pod, new, old)
    }

    #[track_caller]
    fn assert_grown_to(&self, size: u64) {
        assert_eq!(self.fab.block_volume_size(self.pv), size, "array volume");
        let df = df_bytes(&self.pod);
        assert!(
            df > size - size / 10 && df <= size,
            "df shows {df} bytes in the pod for a {size}-byte volume"
        );
        assert_eq!(
            read_checksum(&self.pod.join("data")),
            self.sum,
            "data intact"
        );
    }

    fn unmount(&self) {
        self.fab
            .flex(&["unmount", self.pod.to_str().unwrap()])
            .assert_success();
        assert!(self.fab.mounts().is_empty(), "{:?}", self.fab.mounts());
    }
}

fn grows_online_after_the_provisioner_grew_the_array_volume(fs: &str, pv: &'static str) {
    let m = mounted(pv, fs);
    m.fab.grow_block_volume(pv, 3 * GIB);
    let out = m.expandfs(3 * GIB, GIB);
    out.assert_success();
    assert!(
        out.message()
            .contains(&format!("its {fs} file system now has")),
        "{}",
        out.message()
    );
    m.assert_grown_to(3 * GIB);
    m.unmount();
}

#[test]
fn an_xfs_volume_grows_online_with_its_data_intact() {
    if skip_unless_root() {
        return;
    }
    grows_online_after_the_provisioner_grew_the_array_volume(
        "xfs",
        "pvc-e1111111-2222-4333-8444-555555555555",
    );
}

#[test]
fn an_ext4_volume_grows_online_with_its_data_intact() {
    if skip_unless_root() || skip_unless_ext4_grows_online() {
        return;
    }
    grows_online_after_the_provisioner_grew_the_array_volume(
        "ext4",
        "pvc-e2111111-2222-4333-8444-555555555555",
    );
}

#[test]
fn expandfs_grows_the_array_volume_itself_when_the_provisioner_has_not_and_repeats_harmlessly() {
    if skip_unless_root() {
        return;
    }
    let m = mounted("pvc-e3111111-2222-4333-8444-555555555555", "xfs");
    m.expandfs(2 * GIB, GIB).assert_success();
    m.assert_grown_to(2 * GIB);
    // kubelet retries a call whose reply it lost: nothing more happens.
    m.expandfs(2 * GIB, GIB).assert_success();
    m.assert_grown_to(2 * GIB);
    assert!(
        m.fab
            .log_text()
            .contains("is 2147483648 bytes already: not growing it")
    );
    m.unmount();
}

#[test]
fn kubelet_may_name_the_staging_dir_instead_of_the_pod_dir() {
    if skip_unless_root() {
        return;
    }
    let m = mounted("pvc-e4111111-2222-4333-8444-555555555555", "xfs");
    m.expandfs_at(&m.fab.staging_dir(m.pv), 2 * GIB, GIB)
        .assert_success();
    m.assert_grown_to(2 * GIB);
    m.unmount();
}

#[test]
fn mount_grows_a_file_system_its_device_outgrew() {
    if skip_unless_root() {
        return;
    }
    for (fs, pv) in [
        ("xfs", "pvc-e5111111-2222-4333-8444-555555555555"),
        ("ext4", "pvc-e6111111-2222-4333-8444-555555555555"),
    ] {
        let m = mounted(pv, fs);
        m.unmount();
        // The claim grew while no pod used it, and no expandfs came.
        m.fab.grow_block_volume(pv, 3 * GIB);
        let next = m.fab.pod_dir(UID_B, pv);
        m.fab
            .flex(&["mount", next.to_str().unwrap(), &m.opts])
            .assert_success();
        let df = df_bytes(&next);
        assert!(df > 2 * GIB, "{fs}: df shows {df} bytes after the mount");
        assert_eq!(
            read_checksum(&next.join("data")),
            m.sum,
            "{fs}: data intact"
        );
        assert!(m.fab.log_text().contains("growing it"), "{fs}");
        m.fab
            .flex(&["unmount", next.to_str().unwrap()])
            .assert_success();
    }
}

#[test]
fn shrinking_oversized_and_foreign_requests_are_refused_with_nothing_changed() {
    if skip_unless_root() {
        return;
    }
    let m = mounted("pvc-e7111111-2222-4333-8444-555555555555", "xfs");
    let refused = |out: Outcome, expect: &str| {
        out.assert_failure();
        assert!(out.message().contains(expect), "{}", out.message());
        assert_eq!(m.fab.block_volume_size(m.pv), GIB, "nothing changed");
    };
    refused(m.expandfs(GIB / 2, GIB), "never shrink");
    refused(m.expandfs(5 << 50, GIB), "over the 4Pi limit");
    refused(m.expandfs(0, 0), "0 bytes");
    let elsewhere = m.fab.dir.path().join("not-a-kubelet-dir");
    refused(
        m.expandfs_at(&elsewhere, 2 * GIB, GIB),
        "neither a pod volume dir",
    );
    let other = m
        .fab
        .pod_dir(UID_B, "pvc-e7999999-2222-4333-8444-555555555555");
    refused(m.expandfs_at(&other, 2 * GIB, GIB), "the options name PV");
    let wrong_name = m
        .opts
        .replace(m.pv, "pvc-e7999999-2222-4333-8444-555555555555");
    let out = m.fab.flex(&[
        "expandfs",
        &wrong_name,
        "",
        other.to_str().unwrap(),
        &(2 * GIB).to_string(),
        &GIB.to_string(),
    ]);
    refused(out, "is not mounted on this node");
    assert_eq!(read_checksum(&m.pod.join("data")), m.sum);
    m.unmount();
}
