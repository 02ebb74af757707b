//! argv → [`Invocation`], with no side effects: what kubelet (or, for `collect`, the node
//! installer) asked for, or why the request is malformed. First, [`program`]: whether argv names
//! a call-out at all, or one of the commands people run (`install`, `uninstall`, `doctor`) or the
//! installer's own helper (`enter-namespace`).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use serde_json::Value;

use crate::install::collect::ENTER_NAMESPACE;
use crate::runtime::error::{FlexError, Result};

/// A parsed call-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Init,
    Mount {
        pod_dir: PathBuf,
        options: BTreeMap<String, String>,
    },
    Unmount {
        pod_dir: PathBuf,
    },
    /// `collect <kubelet root> <vendor/driver>`: not kubelet's, the node installer's. Releases
    /// leftover volumes (see `flow::collect`).
    Collect {
        kubelet_root: PathBuf,
        driver: String,
    },
    /// Any other call-out (attach, waitforattach, getvolumename, expandvolume, ... or one added
    /// to kubelet later): answered `Not supported`, which kubelet caches for the driver.
    NotSupported(String),
}

/// Every call-out kubelet (or the controller manager) can make: the names kubelet's FlexVolume
/// code passes as the first argument (`pkg/volume/flexvolume`). kubelet only ever passes these.
pub const KUBELET_CALL_OUTS: &[&str] = &[
    "init",
    "getvolumename",
    "attach",
    "isattached",
    "detach",
    "waitforattach",
    "mountdevice",
    "mount",
    "unmount",
    "unmountdevice",
    "expandvolume",
    "expandfs",
];

/// What the first argument selects. The operator commands are not call-out names, so kubelet
/// cannot run them; they write for people (the installer's log, doctor's report), not kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// A kubelet call-out (or anything unknown): one JSON reply, nothing else.
    CallOut,
    /// `install` / `uninstall`: the DaemonSet's node installer.
    Installer,
    /// `doctor`: can this node mount Pure volumes, and why not.
    Doctor,
    /// `enter-namespace`: the installer's helper that runs the driver's `collect` in kubelet's
    /// mount namespace (`install::collect`).
    EnterNamespace,
}

/// The program `argv[1]` selects.
pub fn program(first: Option<&OsStr>) -> Program {
    match first.and_then(OsStr::to_str) {
        Some("install" | "uninstall") => Program::Installer,
        Some("doctor") => Program::Doctor,
        Some(ENTER_NAMESPACE) => Program::EnterNamespace,
        _ => Program::CallOut,
    }
}

fn bad(message: impl Into<String>) -> FlexError {
    FlexError::Request(message.into())
}

/// Parses the arguments after `argv[0]`.
pub fn parse(args: &[OsString]) -> Result<Invocation> {
    let Some((command, rest)) = args.split_first() else {
        return Err(bad(
            "no call-out given (usage: flex init | mount <dir> <json> | unmount <dir>)",
        ));
    };
    let command = command
        .to_str()
        .ok_or_else(|| bad(format!("call-out {command:?} is not UTF-8")))?;
    match command {
        "init" => {
            expect_args(command, rest, 0)?;
            Ok(Invocation::Init)
        }
        "mount" => {
            expect_args(command, rest, 2)?;
            let pod_dir = pod_dir_arg(&rest[0])?;
            let json = rest[1]
                .to_str()
                .ok_or_else(|| bad("mount: the options argument is not UTF-8"))?;
            Ok(Invocation::Mount {
                pod_dir,
                options: parse_options(json)?,
            })
        }
        "unmount" => {
            expect_args(command, rest, 1)?;
            Ok(Invocation::Unmount {
                pod_dir: pod_dir_arg(&rest[0])?,
            })
        }
        "collect" => {
            expect_args(command, rest, 2)?;
            let driver = rest[1]
                .to_str()
                .ok_or_else(|| bad("collect: the driver name is not UTF-8"))?;
            Ok(Invocation::Collect {
                kubelet_root: absolute_path_arg("kubelet root", &rest[0])?,
                driver: driver.to_owned(),
            })
        }
        other => Ok(Invocation::NotSupported(other.to_owned())),
    }
}

fn expect_args(command: &str, rest: &[OsString], count: usize) -> Result<()> {
    if rest.len() == count {
        Ok(())
    } else {
        Err(bad(format!(
            "{command}: expected {count} argument(s), got {}",
            rest.len()
        )))
    }
}

fn pod_dir_arg(raw: &OsString) -> Result<PathBuf> {
    absolute_path_arg("mount directory", raw)
}

fn absolute_path_arg(what: &str, raw: &OsString) -> Result<PathBuf> {
    let text = raw
        .to_str()
        .ok_or_else(|| bad(format!("{what} {raw:?} is not UTF-8")))?;
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(bad(format!("{what} {text:?} is not an absolute path")));
    }
    Ok(path)
}

/// kubelet sends a JSON object of strings. Anything else is refused with the offending key named.
pub fn parse_options(json: &str) -> Result<BTreeMap<String, String>> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| bad(format!("mount options are not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad("mount options must be a JSON object"));
    };
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            other => Err(bad(format!(
                "mount option {key:?} must be a string, got {}",
                kind_of(&other)
            ))),
        })
        .collect()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn known_call_outs_parse() {
        assert_eq!(parse(&args(&["init"])).expect("init"), Invocation::Init);
        let m = parse(&args(&[
            "mount",
            "/var/lib/kubelet/pods/u/volumes/pure~flex/pv",
            r#"{"a":"b"}"#,
        ]))
        .expect("mount");
        let Invocation::Mount { options, .. } = m else {
            panic!("not a mount: {m:?}");
        };
        assert_eq!(options["a"], "b");
        assert!(matches!(
            parse(&args(&["unmount", "/x"])).expect("unmount"),
            Invocation::Unmount { .. }
        ));
        assert_eq!(
            parse(&args(&["collect", "/var/lib/kubelet", "pure/flex"])).expect("collect"),
            Invocation::Collect {
                kubelet_root: "/var/lib/kubelet".into(),
                driver: "pure/flex".into()
            }
        );
    }

    #[test]
    fn other_call_outs_are_not_supported() {
        for call in [
            "attach",
            "waitforattach",
            "getvolumename",
            "expandfs",
            "--help",
        ] {
            assert_eq!(
                parse(&args(&[call, "x"])).expect("parses"),
                Invocation::NotSupported(call.into())
            );
        }
    }

    #[test]
    fn kubelet_call_outs_never_reach_an_operator_command() {
        for call in KUBELET_CALL_OUTS {
            assert_eq!(program(Some(OsStr::new(call))), Program::CallOut, "{call}");
        }
        assert_eq!(program(None), Program::CallOut);
        assert_eq!(program(Some(OsStr::new("doctor"))), Program::Doctor);
        assert_eq!(program(Some(OsStr::new("install"))), Program::Installer);
        assert_eq!(program(Some(OsStr::new("uninstall"))), Program::Installer);
        assert_eq!(
            program(Some(OsStr::new("enter-namespace"))),
            Program::EnterNamespace
        );
        assert_eq!(program(Some(OsStr::new("Doctor"))), Program::CallOut);
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let msg = |a: &[&str]| parse(&args(a)).expect_err("refused").to_string();
        assert!(msg(&[]).contains("no call-out"));
        assert!(msg(&["init", "extra"]).contains("expected 0"));
        assert!(msg(&["mount", "/x"]).contains("expected 2"));
        assert!(msg(&["collect", "/var/lib/kubelet"]).contains("expected 2"));
        assert!(msg(&["collect", "kubelet", "pure/flex"]).contains("absolute"));
        assert!(msg(&["mount", "rel/dir", "{}"]).contains("absolute"));
        assert!(msg(&["mount", "/x", "{"]).contains("not valid JSON"));
        assert!(msg(&["mount", "/x", "[]"]).contains("JSON object"));
        assert!(msg(&["mount", "/x", r#"{"k":1}"#]).contains("\"k\" must be a string"));
    }
}
