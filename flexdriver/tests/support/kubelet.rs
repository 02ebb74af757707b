//! Running the driver as kubelet does: the binary, its argv and environment, kubelet's contract on
//! each run (one JSON document on stdout, nothing on stderr), the pod, staging and record paths,
//! and the options kubelet passes for our PVs.

use std::path::PathBuf;
use std::process::{Command, Output};

use flashvol_common::options::{Backend, NewVolumeOptions};
use serde_json::Value;

use super::Fabric;

/// What one driver run produced. Constructing it asserts the protocol: stderr is empty and
/// stdout is exactly one JSON document.
#[derive(Debug)]
pub struct Outcome {
    pub output: Output,
    pub reply: Value,
}

impl Outcome {
    pub fn status(&self) -> &str {
        self.reply["status"].as_str().unwrap_or("<no status>")
    }

    pub fn message(&self) -> String {
        self.reply["message"].as_str().unwrap_or("").to_owned()
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.status(), "Success", "reply: {}", self.reply);
        assert_eq!(self.output.status.code(), Some(0));
        self
    }

    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert_eq!(self.status(), "Failure", "reply: {}", self.reply);
        assert_eq!(self.output.status.code(), Some(1));
        self
    }
}

/// Checks kubelet's contract on one run and decodes the reply.
#[track_caller]
pub fn one_json_document(output: Output) -> Outcome {
    let stdout = String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "stderr must stay empty, got: {stderr}");
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}"));
    assert_eq!(
        docs.len(),
        1,
        "exactly one JSON document expected, got: {stdout:?}"
    );
    let reply = docs.into_iter().next().unwrap();
    assert!(reply.is_object(), "the reply is an object: {reply}");
    Outcome { output, reply }
}

/// The driver under test: the one cargo built, or `FLASHVOL_FLEX_BIN` (e.g. the static release
/// build) to run the same suite against another binary.
pub fn flex_binary() -> PathBuf {
    std::env::var_os("FLASHVOL_FLEX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flashvol-flex")))
}

impl Fabric {
    fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(flex_binary());
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("FLASHVOL_FLEX_CONFIG", &self.settings_path)
            .env("FLASHVOL_FABRIC_CONFIG", &self.fabric_config);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the driver as kubelet does and checks the one-JSON-document contract.
    #[track_caller]
    pub fn flex(&self, args: &[&str]) -> Outcome {
        self.flex_env(args, &[])
    }

    #[track_caller]
    pub fn flex_env(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Outcome {
        let output = self.command(args, extra_env).output().expect("driver runs");
        one_json_document(output)
    }

    /// Runs the driver with a crash point and checks that it died there, silently.
    #[track_caller]
    pub fn flex_crashing_after(&self, args: &[&str], step: &str) {
        use std::os::unix::process::ExitStatusExt;
        let output = self
            .command(args, &[("FLASHVOL_FLEX_CRASH_AFTER", step)])
            .output()
            .expect("driver runs");
        assert_eq!(
            output.status.signal(),
            Some(6),
            "expected an abort after {step}, got {:?} with {}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(output.stdout.is_empty() && output.stderr.is_empty());
    }

    pub fn pod_dir(&self, pod_uid: &str, pv: &str) -> PathBuf {
        self.kubelet_root
            .join("pods")
            .join(pod_uid)
            .join("volumes/pure~flex")
            .join(pv)
    }

    pub fn staging_dir(&self, pv: &str) -> PathBuf {
        self.kubelet_root
            .join("plugins/kubernetes.io/flexvolume/pure/flex/mounts")
            .join(pv)
    }

    pub fn record_path(&self, pv: &str) -> PathBuf {
        self.kubelet_root
            .join("plugins/kubernetes.io/flexvolume/pure/flex/records")
            .join(format!("{pv}.json"))
    }
}

/// The options kubelet passes for one of our block PVs.
pub fn block_options(fabric: &Fabric, pv: &str, extra: &[(&str, &str)]) -> String {
    volume_options(fabric, Backend::Block, pv, &fabric.fa.endpoint(), extra)
}

/// The options kubelet passes for one of our file PVs.
pub fn file_options(fabric: &Fabric, pv: &str, extra: &[(&str, &str)]) -> String {
    volume_options(fabric, Backend::File, pv, &fabric.fb.endpoint(), extra)
}

fn volume_options(
    _fabric: &Fabric,
    backend: Backend,
    pv: &str,
    endpoint: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut opts = NewVolumeOptions {
        backend,
        prefix: "k8s",
        pv_name: pv,
        shared: false,
        labels: "",
        array_endpoint: endpoint,
        array_id: "",
        create_options: None,
        mount_options: None,
        nfs_endpoint: None,
    }
    .to_options();
    opts.insert(
        "kubernetes.io/fsType".into(),
        if backend == Backend::Block {
            "xfs"
        } else {
            "nfs"
        }
        .into(),
    );
    opts.insert("kubernetes.io/readwrite".into(), "rw".into());
    opts.insert("kubernetes.io/pvOrVolumeName".into(), pv.into());
    for (k, v) in extra {
        opts.insert((*k).into(), (*v).into());
    }
    serde_json::to_string(&opts).unwrap()
}
