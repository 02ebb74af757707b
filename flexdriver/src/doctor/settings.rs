//! The settings file the driver reads: which one, whether it parses (with the driver's own
//! parser, as kubelet runs the driver: no `PURE_*` environment), and whether its mode keeps the
//! API tokens from other users.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flashvol_common::config::Config;

use super::install::Layout;
use super::{Context, Finding, Loaded};
use crate::node::initiators::host_name_for;
use crate::node::settings::{self as node_settings, NodeSettings, SETTINGS_FILE_NAME};

pub const IDS: &[&str] = &["settings.file", "settings.mode"];

/// The settings file to check, in this process's view: the one named (`--config`,
/// `FLASHVOL_FLEX_CONFIG`), else the one next to this program when it is the installed driver,
/// else the installed driver's.
pub fn path_for(ctx: &Context, layout: &Layout) -> PathBuf {
    if let Some(named) = &ctx.config {
        return named.clone();
    }
    let beside_me = node_settings::settings_path(None, ctx.exe.as_deref());
    if ctx.exe.is_some() && beside_me.is_file() {
        return beside_me;
    }
    ctx.host
        .path(&layout.driver_dir(&ctx.driver).join(SETTINGS_FILE_NAME))
}

/// Reads and judges the file; gives the parsed settings when they are usable.
pub fn check(path: &Path) -> (Vec<Finding>, Option<Loaded>) {
    let parsed = Config::load(path, |_| None)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            let node = NodeSettings::parse(
                config.node.as_ref(),
                &node_settings::kernel_host_name(),
                None,
            )
            .map_err(|e| e.to_string())?;
            Ok(Loaded { config, node })
        });
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777);
    (
        vec![judge_file(path, &parsed), judge_mode(path, mode.ok())],
        parsed.ok(),
    )
}

fn judge_file(path: &Path, parsed: &Result<Loaded, String>) -> Finding {
    const ID: &str = "settings.file";
    match parsed {
        Ok(loaded) => {
            let arrays = &loaded.config.arrays;
            let (fas, fbs) = (arrays.flash_arrays.len(), arrays.flash_blades.len());
            if fas + fbs == 0 {
                return Finding::fail(
                    ID,
                    format!("{} lists no FlashArrays and no FlashBlades", path.display()),
                    "add your arrays to pure.json (the Secret pure-provisioner-secret, chart value arrays) and let the DaemonSet rewrite the file",
                );
            }
            Finding::pass(
                ID,
                format!(
                    "{}: {fas} FlashArray(s), {fbs} FlashBlade(s), SAN type {}, node {} (array host {})",
                    path.display(),
                    loaded.config.settings.block.san_type,
                    loaded.node.node_name,
                    host_name_for(&loaded.node.node_name)
                ),
            )
        }
        Err(why) if !path.exists() => Finding::fail(
            ID,
            why.clone(),
            "the DaemonSet pod writes it next to the driver: see install.driver, or name the file with --config",
        ),
        Err(why) => Finding::fail(
            ID,
            why.clone(),
            "fix the key named in pure.json (Secret pure-provisioner-secret) or in flexDriver.nodeSettings; the DaemonSet pod rewrites the file when it restarts",
        ),
    }
}

fn judge_mode(path: &Path, mode: Option<u32>) -> Finding {
    const ID: &str = "settings.mode";
    match mode {
        None => Finding::skip(ID, format!("{} cannot be read", path.display())),
        Some(mode) if mode & 0o077 != 0 => Finding::fail(
            ID,
            format!(
                "{} has mode {mode:04o}: other users on this node can read the arrays' API tokens",
                path.display()
            ),
            format!(
                "chmod 600 {} (the installer writes it 0600)",
                path.display()
            ),
        ),
        Some(mode) => Finding::pass(
            ID,
            format!("mode {mode:04o}: only its owner reads the API tokens"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn group_or_world_access_fails_and_says_chmod() {
        let p = Path::new("/x/flashvol.json");
        assert_eq!(judge_mode(p, Some(0o600)).status, Status::Pass);
        assert_eq!(judge_mode(p, Some(0o400)).status, Status::Pass);
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let f = judge_mode(p, Some(mode));
            assert_eq!(f.status, Status::Fail, "{mode:o}");
            assert!(
                f.fix
                    .as_deref()
                    .unwrap_or("")
                    .contains("chmod 600 /x/flashvol.json")
            );
        }
        assert_eq!(judge_mode(p, None).status, Status::Skip);
    }

    #[test]
    fn a_file_the_driver_would_refuse_fails_with_the_drivers_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("flashvol.json");
        std::fs::write(&path, r#"{"FlashArrays":[{"MgmtEndPoint":"a1","APIToken":"t"}],"node":{"logFile":"rel.log"}}"#)
            .expect("write");
        let (findings, loaded) = check(&path);
        assert!(loaded.is_none());
        assert_eq!(findings[0].status, Status::Fail);
        assert!(findings[0].saw.contains("logFile"), "{}", findings[0].saw);

        std::fs::write(&path, r#"{"FlashArrays":[],"FlashBlades":[]}"#).expect("write");
        let (findings, loaded) = check(&path);
        assert!(loaded.is_some());
        assert_eq!(findings[0].status, Status::Fail);
        assert!(findings[0].saw.contains("no FlashArrays"));
    }
}
