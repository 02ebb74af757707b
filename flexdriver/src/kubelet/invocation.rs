//! argv → [`Invocation`], with no side effects: what kubelet (or, for `collect`, the node
//! installer) asked for, or why the request is malformed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::Value;

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
    /// `expandfs <json> <device path> <device mount path> <new bytes> <old bytes>`: the claim
    /// grew; the array object, the node's view of it and the file system follow.
    ExpandFs(ExpandFs),
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

/// kubelet's `expandfs` arguments (`pkg/volume/flexvolume/expander.go`), checked for form; what
/// they mean is for the expand flow to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandFs {
    pub options: BTreeMap<String, String>,
    /// Empty with `attach: false` (kubelet has no device path for a non-attachable volume).
    pub device_path: Option<PathBuf>,
    /// Where kubelet sees the volume mounted: the pod's volume dir with `attach: false`.
    pub mount_path: PathBuf,
    /// The PV's capacity, which the controller manager raised to the claim's new request.
    pub new_bytes: u64,
    /// The claim's capacity before the resize.
    pub old_bytes: u64,
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
        "expandfs" => {
            expect_args(command, rest, 5)?;
            let json = rest[0]
                .to_str()
                .ok_or_else(|| bad("expandfs: the options argument is not UTF-8"))?;
            let device = text_arg("device path", &rest[1])?;
            let device_path = if device.is_empty() {
                None
            } else {
                Some(absolute("device path", device)?)
            };
            Ok(Invocation::ExpandFs(ExpandFs {
                options: parse_options(json)?,
                device_path,
                mount_path: absolute(
                    "device mount path",
                    text_arg("device mount path", &rest[2])?,
                )?,
                new_bytes: byte_count("new size", &rest[3])?,
                old_bytes: byte_count("old size", &rest[4])?,
            }))
        }
        "collect" => {
            expect_args(command, rest, 2)?;
            let driver = rest[1]
                .to_str()
                .ok_or_else(|| bad("collect: the driver name is not UTF-8"))?;
            Ok(Invocation::Collect {
                kubelet_root: absolute("kubelet root", text_arg("kubelet root", &rest[0])?)?,
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
    absolute("mount directory", text_arg("mount directory", raw)?)
}

fn text_arg<'a>(what: &str, raw: &'a OsString) -> Result<&'a str> {
    raw.to_str()
        .ok_or_else(|| bad(format!("{what} {raw:?} is not UTF-8")))
}

fn absolute(what: &str, text: &str) -> Result<PathBuf> {
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(bad(format!("{what} {text:?} is not an absolute path")));
    }
    Ok(path)
}

/// A size kubelet sends: a decimal byte count (`strconv.FormatInt` of the quantity), nothing else.
fn byte_count(what: &str, raw: &OsString) -> Result<u64> {
    let text = text_arg(what, raw)?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "expandfs: {what} {text:?} is not a whole number of bytes"
        )));
    }
    text.parse::<u64>()
        .map_err(|_| bad(format!("expandfs: {what} {text:?} is too large")))
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
            "expandvolume",
            "--help",
        ] {
            assert_eq!(
                parse(&args(&[call, "x"])).expect("parses"),
                Invocation::NotSupported(call.into())
            );
        }
    }

    #[test]
    fn expandfs_takes_kubelets_five_arguments() {
        let dir = "/var/lib/kubelet/pods/u/volumes/pure~flex/pv";
        let call = parse(&args(&[
            "expandfs",
            r#"{"a":"b"}"#,
            "",
            dir,
            "3221225472",
            "1073741824",
        ]))
        .expect("expandfs");
        assert_eq!(
            call,
            Invocation::ExpandFs(ExpandFs {
                options: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
                device_path: None,
                mount_path: PathBuf::from(dir),
                new_bytes: 3 << 30,
                old_bytes: 1 << 30,
            })
        );
        let with_device =
            parse(&args(&["expandfs", "{}", "/dev/sdb", dir, "2", "1"])).expect("expandfs");
        assert!(matches!(with_device, Invocation::ExpandFs(e) if e.device_path.is_some()));
    }

    #[test]
    fn expandfs_arguments_are_checked_for_form() {
        let msg = |a: &[&str]| parse(&args(a)).expect_err("refused").to_string();
        let dir = "/var/lib/kubelet/pods/u/volumes/pure~flex/pv";
        assert!(msg(&["expandfs", "{}", "", dir, "1"]).contains("expected 5"));
        assert!(msg(&["expandfs", "{}", "", "rel/dir", "2", "1"]).contains("absolute"));
        assert!(msg(&["expandfs", "{}", "dev/sdb", dir, "2", "1"]).contains("device path"));
        for size in ["-1", "3Gi", "1.5", " 7", "", "99999999999999999999999"] {
            assert!(
                msg(&["expandfs", "{}", "", dir, size, "1"]).contains("new size"),
                "{size:?}"
            );
        }
        assert!(msg(&["expandfs", "{}", "", dir, "2", "x"]).contains("old size"));
        assert!(msg(&["expandfs", "[]", "", dir, "2", "1"]).contains("JSON object"));
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
