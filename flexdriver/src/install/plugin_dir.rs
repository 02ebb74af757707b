//! Which plugin dir to install into: the running kubelet's `--volume-plugin-dir` (or its config
//! file's `volumePluginDir`, or its built-in default), found through the host's `/proc`, compared
//! with the configured dir, or used directly for `--plugin-dir auto`.

use std::fs;
use std::path::{Path, PathBuf};

use super::options::PluginDirArg;
use super::{InstallError, io_error};

/// Where kubelet looks for FlexVolume drivers when `--volume-plugin-dir` is not given.
pub const KUBELET_DEFAULT_PLUGIN_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec";
/// kubelet's root (pods, plugin state) when `--root-dir` is not given.
pub const KUBELET_DEFAULT_ROOT_DIR: &str = "/var/lib/kubelet";

/// Where a kubelet's plugin dir setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginDirSource {
    Flag,
    ConfigFile(PathBuf),
    /// kubelet was given neither, so it uses [`KUBELET_DEFAULT_PLUGIN_DIR`].
    BuiltInDefault,
}

/// The plugin dir of the kubelet running on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedPluginDir {
    pub pid: u32,
    pub dir: PathBuf,
    pub source: PluginDirSource,
    /// kubelet's `--root-dir`, in kubelet's view: where its pods and the driver's volume records are.
    pub root_dir: PathBuf,
}

/// What matters in a kubelet command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletArgs {
    pub volume_plugin_dir: Option<String>,
    pub config_file: Option<String>,
    pub root_dir: Option<String>,
}

/// Reads a command line (`/proc/<pid>/cmdline` split at NULs). `None` when it is not a kubelet:
/// `kubelet …`, `/usr/bin/kubelet …` and RKE1's `hyperkube kubelet …` are.
pub fn parse_kubelet_cmdline(argv: &[String]) -> Option<KubeletArgs> {
    let base = |s: &String| s.rsplit('/').next().unwrap_or(s).to_owned();
    let first = argv.first().map(base)?;
    let flags = match first.as_str() {
        "kubelet" => &argv[1..],
        "hyperkube" if argv.get(1).map(String::as_str) == Some("kubelet") => &argv[2..],
        _ => return None,
    };
    let mut out = KubeletArgs::default();
    let mut i = 0;
    while i < flags.len() {
        let arg = flags[i].as_str();
        // Go's flag package accepts -flag and --flag, with "=value" or the next argument.
        let stripped = arg.trim_start_matches('-');
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (stripped, None),
        };
        let slot = match name {
            "volume-plugin-dir" => Some(&mut out.volume_plugin_dir),
            "config" => Some(&mut out.config_file),
            "root-dir" => Some(&mut out.root_dir),
            _ => None,
        };
        if let Some(slot) = slot {
            let value = match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    flags.get(i).cloned()
                }
            };
            *slot = value.filter(|v| !v.is_empty());
        }
        i += 1;
    }
    Some(out)
}

/// `volumePluginDir` from a kubelet config file (YAML or JSON). A line scan, because the key is a
/// top-level scalar and pulling a YAML parser into the driver binary for it is not worth it.
pub fn plugin_dir_from_kubelet_config(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim().trim_end_matches(',');
        let rest = line
            .strip_prefix("volumePluginDir")
            .or_else(|| line.strip_prefix("\"volumePluginDir\""))?;
        let value = rest.trim_start().strip_prefix(':')?.trim();
        let value = value.split(" #").next().unwrap_or(value).trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Looks for a kubelet among the processes under `proc_root` (the host's, with hostPID).
/// `Ok(None)` when none is visible.
pub fn detect_kubelet_plugin_dir(
    proc_root: &Path,
) -> Result<Option<DetectedPluginDir>, InstallError> {
    let entries = fs::read_dir(proc_root).map_err(io_error("reading", proc_root))?;
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let proc_dir = proc_root.join(pid.to_string());
        // Processes come and go while we look: an unreadable one is simply not a kubelet.
        let Ok(raw) = fs::read(proc_dir.join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let Some(args) = parse_kubelet_cmdline(&argv) else {
            continue;
        };
        let root_dir = PathBuf::from(args.root_dir.as_deref().unwrap_or(KUBELET_DEFAULT_ROOT_DIR));
        let detected = |dir: String, source| DetectedPluginDir {
            pid,
            dir: PathBuf::from(dir),
            source,
            root_dir: root_dir.clone(),
        };
        if let Some(dir) = args.volume_plugin_dir {
            return Ok(Some(detected(dir, PluginDirSource::Flag)));
        }
        if let Some(file) = args.config_file {
            // The path is in kubelet's view: it may run in a container (RKE1) or a chroot.
            let base = if file.starts_with('/') { "root" } else { "cwd" };
            let in_proc = proc_dir.join(base).join(file.trim_start_matches('/'));
            if let Some(dir) = fs::read_to_string(&in_proc)
                .ok()
                .as_deref()
                .and_then(plugin_dir_from_kubelet_config)
            {
                return Ok(Some(detected(
                    dir,
                    PluginDirSource::ConfigFile(PathBuf::from(file)),
                )));
            }
        }
        return Ok(Some(detected(
            KUBELET_DEFAULT_PLUGIN_DIR.to_owned(),
            PluginDirSource::BuiltInDefault,
        )));
    }
    Ok(None)
}

/// The dir to install into, and a warning to log loudly when the configuration and the running
/// kubelet disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDirChoice {
    /// Path in this process's view.
    pub local: PathBuf,
    /// The same dir as kubelet sees it on the host, when known.
    pub host: Option<PathBuf>,
    pub warning: Option<String>,
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

/// Decides where to install. With a configured dir, kubelet's own dir only produces a warning
/// (the hostPath is fixed by the chart); with `auto`, kubelet's dir is used under `host_root`.
pub fn choose_plugin_dir(
    arg: &PluginDirArg,
    host_plugin_dir: Option<&Path>,
    host_root: &Path,
    detected: Option<&DetectedPluginDir>,
) -> Result<PluginDirChoice, InstallError> {
    match arg {
        PluginDirArg::Auto => {
            let d = detected.ok_or_else(|| {
                InstallError::PluginDir(
                    "plugin dir \"auto\" needs to see the kubelet process (run the DaemonSet with \
                     hostPID: true) and none was found; set flexPath to the kubelet's \
                     --volume-plugin-dir instead"
                        .into(),
                )
            })?;
            let relative = d.dir.strip_prefix("/").unwrap_or(&d.dir);
            Ok(PluginDirChoice {
                local: host_root.join(relative),
                host: Some(d.dir.clone()),
                warning: None,
            })
        }
        PluginDirArg::Path(local) => {
            let host = host_plugin_dir.unwrap_or(local).to_owned();
            let warning = detected.filter(|d| !same_dir(&d.dir, &host)).map(|d| {
                let how = match &d.source {
                    PluginDirSource::Flag => "--volume-plugin-dir".to_owned(),
                    PluginDirSource::ConfigFile(f) => {
                        format!("volumePluginDir in {}", f.display())
                    }
                    PluginDirSource::BuiltInDefault => "its built-in default".to_owned(),
                };
                format!(
                    "the kubelet on this node (pid {}) loads FlexVolume drivers from {} ({how}), \
                         but the driver is being installed into {}: kubelet will not find it and \
                         volumes will fail with \"no volume plugin matched\". Set the chart value \
                         flexPath to {} (or to auto).",
                    d.pid,
                    d.dir.display(),
                    host.display(),
                    d.dir.display()
                )
            });
            Ok(PluginDirChoice {
                local: local.clone(),
                host: Some(host),
                warning,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::tests::strings;

    #[test]
    fn kubelet_command_lines_are_recognised_in_all_their_forms() {
        let parse = |args: &[&str]| parse_kubelet_cmdline(&strings(args));
        assert_eq!(
            parse(&[
                "/usr/bin/kubelet",
                "--v=2",
                "--volume-plugin-dir=/var/lib/kubelet/volumeplugins"
            ]),
            Some(KubeletArgs {
                volume_plugin_dir: Some("/var/lib/kubelet/volumeplugins".into()),
                config_file: None,
                root_dir: None,
            })
        );
        assert_eq!(
            parse(&[
                "hyperkube",
                "kubelet",
                "-volume-plugin-dir",
                "/opt/x",
                "--config",
                "/c.yaml",
                "--root-dir=/opt/rke/var/lib/kubelet"
            ]),
            Some(KubeletArgs {
                volume_plugin_dir: Some("/opt/x".into()),
                config_file: Some("/c.yaml".into()),
                root_dir: Some("/opt/rke/var/lib/kubelet".into()),
            })
        );
        assert_eq!(parse(&["kubelet"]), Some(KubeletArgs::default()));
        assert_eq!(parse(&["kubectl", "--volume-plugin-dir=/x"]), None);
        assert_eq!(parse(&["kubelet-helper"]), None);
        assert_eq!(parse(&["hyperkube", "kube-proxy"]), None);
        assert_eq!(parse(&[]), None);
    }

    #[test]
    fn volume_plugin_dir_is_read_from_yaml_and_json_kubelet_configs() {
        let yaml = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                    volumePluginDir: /etc/kubernetes/kubelet-plugins/volume/exec # OCP\n";
        assert_eq!(
            plugin_dir_from_kubelet_config(yaml).as_deref(),
            Some("/etc/kubernetes/kubelet-plugins/volume/exec")
        );
        let json = "{\n  \"kind\": \"KubeletConfiguration\",\n  \"volumePluginDir\": \"/var/lib/kubelet/volumeplugins\",\n}";
        assert_eq!(
            plugin_dir_from_kubelet_config(json).as_deref(),
            Some("/var/lib/kubelet/volumeplugins")
        );
        assert_eq!(
            plugin_dir_from_kubelet_config("kind: KubeletConfiguration\n"),
            None
        );
        assert_eq!(
            plugin_dir_from_kubelet_config("volumePluginDir: \"\"\n"),
            None
        );
    }

    fn fake_process(proc_root: &Path, pid: u32, argv: &[&str]) -> PathBuf {
        let dir = proc_root.join(pid.to_string());
        fs::create_dir_all(dir.join("root")).expect("mkdir");
        fs::write(dir.join("cmdline"), argv.join("\0") + "\0").expect("write cmdline");
        dir
    }

    #[test]
    fn detection_finds_the_kubelet_flag_config_file_or_default() {
        let proc = tempfile::tempdir().expect("tempdir");
        fs::create_dir(proc.path().join("self")).expect("mkdir");
        fake_process(proc.path(), 1, &["/sbin/init"]);
        assert_eq!(detect_kubelet_plugin_dir(proc.path()).expect("reads"), None);

        let kubelet = fake_process(
            proc.path(),
            812,
            &["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"],
        );
        let found = detect_kubelet_plugin_dir(proc.path())
            .expect("reads")
            .expect("found");
        assert_eq!(found.pid, 812);
        assert_eq!(found.root_dir, PathBuf::from(KUBELET_DEFAULT_ROOT_DIR));
        assert_eq!(found.dir, PathBuf::from(KUBELET_DEFAULT_PLUGIN_DIR));
        assert_eq!(found.source, PluginDirSource::BuiltInDefault);

        // The config file is read through the kubelet's own root, as a containerized kubelet sees it.
        let config_dir = kubelet.join("root/var/lib/kubelet");
        fs::create_dir_all(&config_dir).expect("mkdir");
        fs::write(
            config_dir.join("config.yaml"),
            "volumePluginDir: /etc/kubernetes/volumeplugins\n",
        )
        .expect("write");
        let found = detect_kubelet_plugin_dir(proc.path())
            .expect("reads")
            .expect("found");
        assert_eq!(found.dir, PathBuf::from("/etc/kubernetes/volumeplugins"));
        assert_eq!(
            found.source,
            PluginDirSource::ConfigFile("/var/lib/kubelet/config.yaml".into())
        );

        fs::write(
            kubelet.join("cmdline"),
            "kubelet\0--volume-plugin-dir\0/var/lib/kubelet/volumeplugins\0--config=/var/lib/kubelet/config.yaml\0--root-dir\0/data/kubelet\0",
        )
        .expect("write");
        let found = detect_kubelet_plugin_dir(proc.path())
            .expect("reads")
            .expect("found");
        assert_eq!(found.dir, PathBuf::from("/var/lib/kubelet/volumeplugins"));
        assert_eq!(found.root_dir, PathBuf::from("/data/kubelet"));
        assert_eq!(found.source, PluginDirSource::Flag);

        assert!(detect_kubelet_plugin_dir(&proc.path().join("missing")).is_err());
    }

    fn detected(dir: &str) -> DetectedPluginDir {
        DetectedPluginDir {
            pid: 99,
            dir: dir.into(),
            source: PluginDirSource::Flag,
            root_dir: KUBELET_DEFAULT_ROOT_DIR.into(),
        }
    }

    #[test]
    fn a_plugin_dir_that_differs_from_kubelets_gives_a_warning_naming_both() {
        let arg = PluginDirArg::Path("/flexmnt".into());
        let rke = detected("/var/lib/kubelet/volumeplugins");
        let choice = choose_plugin_dir(
            &arg,
            Some(Path::new(KUBELET_DEFAULT_PLUGIN_DIR)),
            Path::new("/host"),
            Some(&rke),
        )
        .expect("chosen");
        assert_eq!(choice.local, PathBuf::from("/flexmnt"));
        let warning = choice.warning.expect("a warning");
        assert!(
            warning.contains("/var/lib/kubelet/volumeplugins")
                && warning.contains(KUBELET_DEFAULT_PLUGIN_DIR)
                && warning.contains("flexPath"),
            "{warning}"
        );

        let same = choose_plugin_dir(
            &arg,
            Some(Path::new("/var/lib/kubelet/volumeplugins/")),
            Path::new("/host"),
            Some(&rke),
        )
        .expect("chosen");
        assert_eq!(same.warning, None, "a trailing slash is the same dir");
        let unknown = choose_plugin_dir(&arg, None, Path::new("/host"), None).expect("chosen");
        assert_eq!(unknown.warning, None);
        assert_eq!(unknown.host, Some(PathBuf::from("/flexmnt")));
    }

    #[test]
    fn auto_uses_kubelets_dir_under_the_host_root_and_needs_a_kubelet() {
        let choice = choose_plugin_dir(
            &PluginDirArg::Auto,
            None,
            Path::new("/host"),
            Some(&detected("/home/kubernetes/flexvolume")),
        )
        .expect("chosen");
        assert_eq!(
            choice.local,
            PathBuf::from("/host/home/kubernetes/flexvolume")
        );
        assert_eq!(
            choice.host,
            Some(PathBuf::from("/home/kubernetes/flexvolume"))
        );
        let err = choose_plugin_dir(&PluginDirArg::Auto, None, Path::new("/host"), None)
            .expect_err("no kubelet")
            .to_string();
        assert!(err.contains("hostPID"), "{err}");
    }
}
