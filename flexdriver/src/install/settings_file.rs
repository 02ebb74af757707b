//! The node settings file `flashvol.json`: the mounted `pure.json` with the DaemonSet's `PURE_*`
//! environment folded into its `"flashvol"` section (kubelet runs the driver without that
//! environment), `tls.caFile` pointed at the CA the installer put next to the driver, and the
//! driver's `"node"` section, checked to reproduce the DaemonSet's settings.

use std::path::Path;

use flashvol_common::config::env as pure_env;
use flashvol_common::config::{Config, ConfigError};
use serde_json::{Map, Value};

use super::InstallError;
use crate::node::settings::{NodeSettings, SETTINGS_FILE_NAME};

/// Builds the node settings document: `pure.json` as mounted, with the `PURE_*` environment folded
/// into its `"flashvol"` section, `tls.caFile` set to `ca_file` (the installed CA, as kubelet's
/// side sees it) when given, and `node_settings` (when given) as its `"node"` section.
///
/// The result is checked by parsing it back: it must give exactly the settings that the
/// DaemonSet itself sees (file plus environment; the CA at its installed path), so the driver on
/// the host behaves the same.
pub fn settings_document(
    config_path: &Path,
    pure_json: &str,
    node_settings: Option<&str>,
    ca_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, InstallError> {
    // Validate first with the same code the driver and the provisioner use.
    let mut expected = Config::parse(config_path, pure_json)?;
    expected.settings.apply_env(&env)?;
    if let Some(ca) = ca_file {
        expected.settings.client.ca_file = Some(ca.to_owned());
    }

    let doc: Value = serde_json::from_str(pure_json).map_err(|source| ConfigError::Json {
        path: config_path.to_owned(),
        source,
    })?;
    let Value::Object(mut top) = doc else {
        return Err(InstallError::NodeSettings(format!(
            "{}: must be a JSON object",
            config_path.display()
        )));
    };
    // Keys match case-insensitively in the config; keep the user's spelling of the section.
    let key_of = |top: &Map<String, Value>, name: &str| {
        top.keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let flashvol_key = key_of(&top, "flashvol");
    let mut section = match top.remove(&flashvol_key) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(InstallError::NodeSettings(
                "the \"flashvol\" section of pure.json must be an object".into(),
            ));
        }
    };
    // kubelet runs the driver without the DaemonSet's environment: it must be written down.
    pure_env::fold_into_section(&mut section, &env)?;
    if let Some(ca) = ca_file {
        let tls = section
            .entry("tls")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(tls) = tls {
            tls.insert(
                "caFile".to_owned(),
                Value::String(ca.to_string_lossy().into_owned()),
            );
        }
    }
    if !section.is_empty() {
        top.insert(flashvol_key, Value::Object(section));
    }

    if let Some(raw) = node_settings.map(str::trim).filter(|s| !s.is_empty()) {
        let node: Value = serde_json::from_str(raw).map_err(|e| {
            InstallError::NodeSettings(format!("node settings are not valid JSON: {e}"))
        })?;
        match node {
            Value::Object(m) if m.is_empty() => {}
            Value::Object(_) => {
                let node_key = key_of(&top, "node");
                top.insert(node_key, node);
            }
            _ => {
                return Err(InstallError::NodeSettings(
                    "node settings must be a JSON object".into(),
                ));
            }
        }
    }

    // Array hosts are named after the Kubernetes node (the DaemonSet passes `spec.nodeName` as
    // NODE_NAME); the kernel host name, the driver's fallback, can differ from it.
    if let Some(node_name) = env("NODE_NAME")
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
    {
        let node_key = key_of(&top, "node");
        if let Value::Object(node) = top
            .entry(node_key)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            if !node.keys().any(|k| k.eq_ignore_ascii_case("nodeName")) {
                node.insert("nodeName".to_owned(), Value::String(node_name));
            }
        }
    }

    // The driver refuses a bad "node" section on every call; better to refuse it here, once.
    if let Some(node) = top.iter().find(|(k, _)| k.eq_ignore_ascii_case("node")) {
        NodeSettings::parse(Some(node.1), "installer-check", None)
            .map_err(|e| InstallError::NodeSettings(e.to_string()))?;
    }

    let mut text = serde_json::to_string_pretty(&Value::Object(top))
        .map_err(|e| InstallError::NodeSettings(format!("cannot serialise settings: {e}")))?;
    text.push('\n');
    let written = Config::parse(Path::new(SETTINGS_FILE_NAME), &text)?;
    if written.settings != expected.settings || written.arrays != expected.arrays {
        return Err(InstallError::NodeSettings(
            "the node settings file would not reproduce the DaemonSet's settings (a flashvol bug; \
             please report it)"
                .into(),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::tests::{SAMPLE_CONFIG, env_from};

    fn pso_daemon_env() -> impl Fn(&str) -> Option<String> + use<> {
        env_from(&[
            (pure_env::FLASHARRAY_SAN_TYPE.name, "fc"),
            (pure_env::K8S_NAMESPACE.name, "prod"),
            (pure_env::DEFAULT_BLOCK_FS_TYPE.name, "ext4"),
            (pure_env::DEFAULT_BLOCK_FS_OPT.name, "-q -E nodiscard"),
            (pure_env::DEFAULT_BLOCK_MNT_OPT.name, "discard"),
            (pure_env::PREEMPT_RWO_ATTACHMENTS_DEFAULT.name, "false"),
            (pure_env::ISCSI_ALLOWED_CIDRS.name, "10.1.0.0/16, 10.2.0.1"),
            (pure_env::ISCSI_LOGIN_TIMEOUT.name, "35"),
            (pure_env::DEFAULT_ENABLE_FB_NFS_SNAPSHOT.name, "true"),
        ])
    }

    #[test]
    fn the_settings_file_carries_the_daemonsets_pso_environment() {
        let path = Path::new("/etc/pure/pure.json");
        let env = pso_daemon_env();
        let text = settings_document(path, SAMPLE_CONFIG, None, None, &env).expect("valid");
        // kubelet runs the driver without any of those variables: the file alone must suffice.
        let written = Config::parse(Path::new("flashvol.json"), &text).expect("parses");
        let mut expected = Config::parse(path, SAMPLE_CONFIG).expect("parses");
        expected.settings.apply_env(&env).expect("valid env");
        assert_eq!(written.settings, expected.settings);
        assert_eq!(written.arrays, expected.arrays);
        assert_eq!(written.settings.name_prefix, "prod");
        assert_eq!(written.settings.block.iscsi_allowed_cidrs.len(), 2);
        assert!(written.settings.file.snapshot_directory);
        assert_eq!(written.node, None);
    }

    #[test]
    fn environment_overrides_the_flashvol_section_and_keeps_its_other_keys() {
        let pure_json = r#"{"FlashArrays":[{"MgmtEndPoint":"a1","APIToken":"t"}],
            "Flashvol":{"namePrefix":"old","tls":{"insecureSkipVerify":true},"block":{"fsType":"xfs"}}}"#;
        let env = env_from(&[
            (pure_env::K8S_NAMESPACE.name, "new"),
            (pure_env::DEFAULT_BLOCK_FS_TYPE.name, "ext3"),
        ]);
        let text =
            settings_document(Path::new("pure.json"), pure_json, None, None, env).expect("valid");
        let written = Config::parse(Path::new("flashvol.json"), &text).expect("parses");
        assert_eq!(written.settings.name_prefix, "new");
        assert_eq!(
            written.settings.block.fs_type,
            flashvol_common::config::FsType::Ext3
        );
        assert!(written.settings.client.insecure_skip_verify);
        assert!(
            !text.contains("\"flashvol\""),
            "the user's key spelling is kept: {text}"
        );
    }

    #[test]
    fn the_installed_ca_replaces_the_pods_ca_path_and_keeps_the_other_tls_keys() {
        let with_tls = r#"{"FlashArrays":[{"MgmtEndPoint":"a1","APIToken":"t"}],
            "flashvol":{"tls":{"caFile":"/etc/pure/ca.pem","insecureSkipVerify":true},"namePrefix":"p"}}"#;
        let installed = Path::new("/var/lib/kubelet/volumeplugins/pure~flex/ca.pem");
        for (pure_json, kept_tls_keys) in [(with_tls, true), (SAMPLE_CONFIG, false)] {
            let text = settings_document(
                Path::new("pure.json"),
                pure_json,
                None,
                Some(installed),
                env_from(&[]),
            )
            .expect("valid");
            let written = Config::parse(Path::new("flashvol.json"), &text).expect("parses");
            assert_eq!(written.settings.client.ca_file.as_deref(), Some(installed));
            assert_eq!(written.settings.client.insecure_skip_verify, kept_tls_keys);
            assert_eq!(written.settings.name_prefix == "p", kept_tls_keys);
        }
    }

    #[test]
    fn the_kubernetes_node_name_names_the_array_host_unless_settings_say_otherwise() {
        let path = Path::new("pure.json");
        let node_of = |node_settings: Option<&str>| {
            let text = settings_document(
                path,
                SAMPLE_CONFIG,
                node_settings,
                None,
                env_from(&[("NODE_NAME", "worker-7")]),
            )
            .expect("valid");
            Config::parse(path, &text).expect("parses").node
        };
        assert_eq!(
            node_of(None),
            Some(serde_json::json!({"nodeName": "worker-7"}))
        );
        assert_eq!(
            node_of(Some(r#"{"nodeName":"explicit"}"#)),
            Some(serde_json::json!({"nodeName": "explicit"}))
        );
    }

    #[test]
    fn node_settings_become_the_node_section_and_must_be_an_object() {
        let path = Path::new("pure.json");
        let text = settings_document(
            path,
            SAMPLE_CONFIG,
            Some(r#"{"tools":{"iscsiadm":"/usr/sbin/iscsiadm"}}"#),
            None,
            env_from(&[]),
        )
        .expect("valid");
        let written = Config::parse(Path::new("flashvol.json"), &text).expect("parses");
        assert_eq!(
            written.node,
            Some(serde_json::json!({"tools": {"iscsiadm": "/usr/sbin/iscsiadm"}}))
        );
        for (raw, node) in [("", None), ("{}", None), ("  ", None)] {
            let text = settings_document(path, SAMPLE_CONFIG, Some(raw), None, env_from(&[]))
                .expect("valid");
            assert_eq!(
                Config::parse(path, &text).expect("parses").node,
                node,
                "{raw:?}"
            );
        }
        let err = settings_document(
            path,
            SAMPLE_CONFIG,
            Some(r#"{"logFile":"relative.log"}"#),
            None,
            env_from(&[]),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            err.contains("logFile"),
            "the driver's own check applies: {err}"
        );
        for bad in ["[1]", "\"x\"", "{"] {
            let err = settings_document(path, SAMPLE_CONFIG, Some(bad), None, env_from(&[]))
                .expect_err("refused")
                .to_string();
            assert!(err.contains("node settings"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_broken_config_or_environment_is_refused_with_a_clear_message() {
        let path = Path::new("/etc/pure/pure.json");
        let err = settings_document(
            path,
            r#"{"FlashArrays":[{"MgmtEndPoint":"a1"}]}"#,
            None,
            None,
            env_from(&[]),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            err.starts_with("refusing to install")
                && err.contains("/etc/pure/pure.json")
                && err.contains("FlashArrays[0].APIToken"),
            "{err}"
        );
        let err = settings_document(path, "not json", None, None, env_from(&[]))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = settings_document(
            path,
            SAMPLE_CONFIG,
            None,
            None,
            env_from(&[(pure_env::FLASHARRAY_SAN_TYPE.name, "nvme")]),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            err.contains(pure_env::FLASHARRAY_SAN_TYPE.name) && err.contains("nvme"),
            "{err}"
        );
    }
}
