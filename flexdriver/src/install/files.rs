//! The installed files: the driver binary and its settings, each written through a temp file,
//! fsync and rename with its mode exact from creation, and left alone when already identical
//! (every write in the plugin dir makes kubelet re-probe the driver).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::options::driver_dir_name;
use super::{InstallError, io_error};
use crate::node::settings::SETTINGS_FILE_NAME;

/// The driver executable, named after the driver as kubelet requires.
pub(super) const DRIVER_FILE: &str = "flex";
/// Temporary name of the driver while it is written; kubelet ignores it.
const DRIVER_TEMP_FILE: &str = ".flex";
/// Temporary name of the settings file while it is written.
const SETTINGS_TEMP_FILE: &str = ".flashvol.json";
/// The arrays' CA, next to the driver; the settings file's `tls.caFile` names it.
pub const CA_FILE: &str = "ca.pem";
/// Temporary name of the CA while it is written.
const CA_TEMP_FILE: &str = ".ca.pem";

/// What [`put_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    Unchanged,
    /// Same bytes, only the mode was wrong.
    ModeFixed,
    Written,
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Makes `dir/name` hold `contents` with `mode`, through `dir/temp` + fsync + rename, unless it
/// already does. The temp file is created with `mode` from the start, so a 0600 file is never
/// readable by others, not even while being written.
pub fn put_file(
    dir: &Path,
    name: &str,
    temp: &str,
    contents: &[u8],
    mode: u32,
) -> Result<FileChange, InstallError> {
    let target = dir.join(name);
    let same_size = fs::symlink_metadata(&target)
        .ok()
        .filter(|m| m.file_type().is_file() && m.len() == contents.len() as u64);
    if let Some(meta) = same_size {
        let mut current = Vec::with_capacity(contents.len());
        File::open(&target)
            .and_then(|mut f| f.read_to_end(&mut current))
            .map_err(io_error("reading", &target))?;
        if current == contents {
            if mode_of(&meta) == mode {
                return Ok(FileChange::Unchanged);
            }
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(io_error("setting the mode of", &target))?;
            return Ok(FileChange::ModeFixed);
        }
    }
    let temp_path = dir.join(temp);
    // A stale temp file from a crash may have another mode; O_TRUNC would keep it.
    match fs::remove_file(&temp_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("removing", &temp_path)(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp_path)
        .map_err(io_error("creating", &temp_path))?;
    file.write_all(contents)
        .map_err(io_error("writing", &temp_path))?;
    // The umask may have narrowed the mode given at creation; executables need exactly `mode`.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_error("setting the mode of", &temp_path))?;
    file.sync_all().map_err(io_error("syncing", &temp_path))?;
    drop(file);
    fs::rename(&temp_path, &target).map_err(io_error("renaming into place", &target))?;
    sync_dir(dir)?;
    Ok(FileChange::Written)
}

fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing", dir))
}

/// What one install did, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    pub driver_dir: PathBuf,
    /// `None` when no CA is installed.
    pub ca: Option<FileChange>,
    pub settings: FileChange,
    pub binary: FileChange,
}

/// Installs into `plugin_dir` (this process's view): the CA (a public certificate: 0644) and the
/// settings that name it first, so the first `init` of a fresh install already finds them, then
/// the binary.
pub fn install_files(
    plugin_dir: &Path,
    driver: &str,
    binary: &[u8],
    settings: &str,
    ca: Option<&[u8]>,
) -> Result<InstallReport, InstallError> {
    if !plugin_dir.is_dir() {
        return Err(InstallError::PluginDir(format!(
            "{} does not exist or is not a directory (is the hostPath mounted?)",
            plugin_dir.display()
        )));
    }
    let driver_dir = plugin_dir.join(driver_dir_name(driver)?);
    if !driver_dir.is_dir() {
        fs::create_dir(&driver_dir).map_err(io_error("creating", &driver_dir))?;
        fs::set_permissions(&driver_dir, fs::Permissions::from_mode(0o755))
            .map_err(io_error("setting the mode of", &driver_dir))?;
        sync_dir(plugin_dir)?;
    }
    let ca = ca
        .map(|pem| put_file(&driver_dir, CA_FILE, CA_TEMP_FILE, pem, 0o644))
        .transpose()?;
    let settings = put_file(
        &driver_dir,
        SETTINGS_FILE_NAME,
        SETTINGS_TEMP_FILE,
        settings.as_bytes(),
        0o600,
    )?;
    let binary = put_file(&driver_dir, DRIVER_FILE, DRIVER_TEMP_FILE, binary, 0o755)?;
    Ok(InstallReport {
        driver_dir,
        ca,
        settings,
        binary,
    })
}

/// Removes the driver, its settings (credentials) and our temp files, then the driver dir when
/// nothing else is left in it. Returns the files removed. Missing files are fine: uninstall may
/// run twice.
pub fn uninstall_files(plugin_dir: &Path, driver: &str) -> Result<Vec<PathBuf>, InstallError> {
    let driver_dir = plugin_dir.join(driver_dir_name(driver)?);
    let mut removed = Vec::new();
    // The binary first: once it is gone kubelet stops calling the driver, then the credentials.
    for name in [
        DRIVER_FILE,
        DRIVER_TEMP_FILE,
        SETTINGS_FILE_NAME,
        SETTINGS_TEMP_FILE,
        CA_FILE,
        CA_TEMP_FILE,
    ] {
        let path = driver_dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("removing", &path)(e)),
        }
    }
    match fs::remove_dir(&driver_dir) {
        Ok(()) => sync_dir(plugin_dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Something that is not ours is left (e.g. the driver's log or lock files): keep the dir.
        Err(_) if driver_dir.is_dir() => sync_dir(&driver_dir)?,
        Err(e) => return Err(io_error("removing", &driver_dir)(e)),
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn first_install_writes_root_only_settings_and_an_executable_driver() {
        let plugins = tempfile::tempdir().expect("tempdir");
        let report = install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n", None)
            .expect("installs");
        let dir = plugins.path().join("pure~flex");
        assert_eq!(report.driver_dir, dir);
        assert_eq!(
            (report.binary, report.settings),
            (FileChange::Written, FileChange::Written)
        );
        assert_eq!(fs::read(dir.join("flex")).expect("read"), b"binary-v1");
        assert_eq!(mode(&dir.join("flex")), 0o755);
        assert_eq!(mode(&dir.join("flashvol.json")), 0o600);
        assert_eq!(mode(&dir), 0o755);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["flashvol.json", "flex"],
            "no temp file is left behind"
        );
    }

    #[test]
    fn reinstalling_identical_files_touches_nothing() {
        let plugins = tempfile::tempdir().expect("tempdir");
        install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n", None).expect("installs");
        let flex = plugins.path().join("pure~flex/flex");
        let before = fs::metadata(&flex).expect("stat");
        let report = install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n", None)
            .expect("installs");
        assert_eq!(
            (report.binary, report.settings),
            (FileChange::Unchanged, FileChange::Unchanged)
        );
        let after = fs::metadata(&flex).expect("stat");
        assert_eq!(
            (before.ino(), before.mtime_nsec()),
            (after.ino(), after.mtime_nsec())
        );
    }

    #[test]
    fn an_upgrade_replaces_the_driver_by_rename_and_fixes_modes() {
        let plugins = tempfile::tempdir().expect("tempdir");
        install_files(plugins.path(), "pure/flex", b"binary-v1", "{}\n", None).expect("installs");
        let dir = plugins.path().join("pure~flex");
        // A process still running v1 keeps its file: the new one is a new inode.
        let old = File::open(dir.join("flex")).expect("open");
        let old_ino = old.metadata().expect("stat").ino();
        // A crash left a half-written, world-writable temp file; someone loosened the settings.
        fs::write(dir.join(".flex"), b"half").expect("write");
        fs::set_permissions(dir.join(".flex"), fs::Permissions::from_mode(0o777)).expect("chmod");
        fs::set_permissions(dir.join("flashvol.json"), fs::Permissions::from_mode(0o644))
            .expect("chmod");

        let report = install_files(plugins.path(), "pure/flex", b"binary-v2", "{}\n", None)
            .expect("installs");
        assert_eq!(
            (report.binary, report.settings),
            (FileChange::Written, FileChange::ModeFixed)
        );
        assert_eq!(fs::read(dir.join("flex")).expect("read"), b"binary-v2");
        assert_ne!(fs::metadata(dir.join("flex")).expect("stat").ino(), old_ino);
        assert_eq!(mode(&dir.join("flex")), 0o755);
        assert_eq!(mode(&dir.join("flashvol.json")), 0o600);
        assert!(!dir.join(".flex").exists());
    }

    #[test]
    fn install_needs_an_existing_plugin_dir() {
        let plugins = tempfile::tempdir().expect("tempdir");
        let err = install_files(&plugins.path().join("nope"), "pure/flex", b"b", "{}", None)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("hostPath"), "{err}");
    }

    #[test]
    fn uninstall_removes_driver_and_credentials_and_can_run_twice() {
        let plugins = tempfile::tempdir().expect("tempdir");
        let report = install_files(
            plugins.path(),
            "pure/flex",
            b"binary",
            "{\"secret\":1}\n",
            Some(b"-----BEGIN CERTIFICATE-----\n"),
        )
        .expect("installs");
        assert_eq!(report.ca, Some(FileChange::Written));
        assert_eq!(mode(&plugins.path().join("pure~flex/ca.pem")), 0o644);
        let removed = uninstall_files(plugins.path(), "pure/flex").expect("uninstalls");
        assert_eq!(removed.len(), 3);
        assert!(!plugins.path().join("pure~flex").exists());
        assert_eq!(
            uninstall_files(plugins.path(), "pure/flex").expect("again"),
            Vec::<PathBuf>::new()
        );

        install_files(plugins.path(), "pure/flex", b"binary", "{}\n", None).expect("installs");
        fs::write(plugins.path().join("pure~flex/not-ours.log"), b"x").expect("write");
        uninstall_files(plugins.path(), "pure/flex").expect("uninstalls");
        let dir = plugins.path().join("pure~flex");
        assert!(dir.join("not-ours.log").exists() && !dir.join("flex").exists());
        assert!(!dir.join("flashvol.json").exists());
    }
}
