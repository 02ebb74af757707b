//! Snapshots, restores and clones: the `snapshot` command PSO 2.x users ran in the provisioner
//! pod (`kubectl exec … -- snapshot create -n <ns> <claim>`, `snapshot delete <name>`, plus
//! `snapshot list`), and the array operations restores and clones use.
//!
//! The image carries one binary: `/snapshot` is a hard link to `/flashvol-provisioner`, which
//! becomes this command when started under that name ([`invocation`]); `flashvol-provisioner
//! snapshot …` works too. It reads the provisioner's own configuration (pure.json at the same
//! path, the provisioner and driver names from the same environment, [`crate::args::Instance`])
//! and uses the pod's ServiceAccount, so it needs no Secret of its own.
//!
//! - [`command`]: the command line and its exit codes.
//! - [`run`]: the commands carried out against the API and the arrays.
//! - [`array_ops`]: snapshots, copies and connections on the arrays, and the locate loop.

pub mod array_ops;
pub mod command;
pub mod run;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use flashvol_common::config::Config;

use crate::arrays::ArraySet;
use crate::serve::metrics::Metrics;
use command::{Failure, SnapshotArgs};
use run::Setup;

/// The name the image gives the command (`/snapshot`, on `PATH=/`).
pub const COMMAND: &str = "snapshot";

/// The command's own argv when this process is the snapshot command: started as `snapshot`
/// (any directory), or as `flashvol-provisioner snapshot …`.
pub fn invocation(argv: &[String]) -> Option<Vec<String>> {
    let called = argv.first().map(|a| {
        Path::new(a)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    });
    if called.as_deref() == Some(COMMAND) {
        return Some(argv.to_vec());
    }
    (argv.get(1).map(String::as_str) == Some(COMMAND)).then(|| argv[1..].to_vec())
}

/// The command, start to end: parse, set up from the provisioner's configuration and the
/// in-cluster (or `KUBECONFIG`) client, run, print, exit status. Logs nothing: the output is
/// the snapshot name (create), nothing (delete) or the table (list); errors go to stderr as
/// `snapshot: <message>`.
pub async fn main(argv: Vec<String>) -> ExitCode {
    let args = match SnapshotArgs::try_parse_from(&argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let outcome = match setup(&args).await {
        Ok(setup) => run::run(&args.command, &setup, &mut std::io::stdout()).await,
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "{COMMAND}: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// What the commands need, built as the provisioner builds it at start-up.
async fn setup(args: &SnapshotArgs) -> Result<Setup, Failure> {
    args.instance
        .validate()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let path = args.instance.config_path();
    let config = Config::load(&path, |k| std::env::var(k).ok())
        .map_err(|e| Failure::Failed(e.to_string()))?;
    let kube_config = kube::Config::infer()
        .await
        .map_err(|e| Failure::Failed(format!("Kubernetes client configuration: {e}")))?;
    let client = kube::Client::try_from(kube_config)
        .map_err(|e| Failure::Failed(format!("Kubernetes client: {e}")))?;
    let arrays = ArraySet::from_config(&config, Duration::ZERO, Arc::new(Metrics::new()))
        .map_err(|e| Failure::Failed(format!("array clients: {e}")))?;
    Ok(Setup {
        client,
        arrays,
        provisioner: args.instance.provisioner_name.clone(),
        driver: args.instance.driver.clone(),
        prefix: config.settings.name_prefix.clone(),
        eradicate: config.settings.eradicate_on_delete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn the_command_is_the_binary_started_as_snapshot_or_its_first_argument() {
        assert_eq!(
            invocation(&argv(&["/snapshot", "list"])),
            Some(argv(&["/snapshot", "list"]))
        );
        assert_eq!(
            invocation(&argv(&["snapshot", "delete", "x.1"])),
            Some(argv(&["snapshot", "delete", "x.1"]))
        );
        assert_eq!(
            invocation(&argv(&["/flashvol-provisioner", "snapshot", "list"])),
            Some(argv(&["snapshot", "list"]))
        );
        assert_eq!(
            invocation(&argv(&["/flashvol-provisioner", "--debug"])),
            None
        );
        assert_eq!(invocation(&argv(&["/bin/snapshots", "list"])), None);
    }
}
