//! A size-bounded log file. Several driver processes append to it at once, so each record is
//! one `write` on an `O_APPEND` descriptor. At start-up a file past [`ROTATE_AT`] becomes
//! `<file>.1` (replacing the previous one), bounding the disk used to about twice that.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Rotate once the file reaches 10 MiB.
pub const ROTATE_AT: u64 = 10 << 20;

struct FileLogger {
    file: Mutex<File>,
    level: log::LevelFilter,
    pid: u32,
}

impl log::Log for FileLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= effective_level(metadata.target(), self.level)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} [{}] {:<5} {}: {}\n",
            utc_timestamp(SystemTime::now()),
            self.pid,
            record.level(),
            record.target(),
            record.args()
        );
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// The driver's own records follow the configured level. Libraries (the HTTP and TLS stacks) log
/// a line per request at debug, so they are held to `info`, and to `debug` when the level is
/// `trace`: never `trace`, where ureq hex-dumps the raw traffic, API token headers and session
/// cookies included. Tokens must not reach the log at any level.
pub fn effective_level(target: &str, configured: log::LevelFilter) -> log::LevelFilter {
    if target.starts_with("flashvol") {
        configured
    } else if configured == log::LevelFilter::Trace {
        log::LevelFilter::Debug
    } else {
        configured.min(log::LevelFilter::Info)
    }
}

/// Opens (rotating first if needed) and installs the logger. Returns the file so stderr can be
/// pointed at it too.
pub fn init(path: &Path, level: log::LevelFilter) -> std::io::Result<File> {
    let file = open_rotating(path, ROTATE_AT)?;
    let copy = file.try_clone()?;
    let logger = FileLogger {
        file: Mutex::new(file),
        level,
        pid: std::process::id(),
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(level);
    }
    Ok(copy)
}

/// Opens `path` for appending, first moving it to `<path>.1` when it has reached `limit` bytes.
pub fn open_rotating(path: &Path, limit: u64) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= limit) {
        let _ = std::fs::rename(path, rotated_path(path));
    }
    OpenOptions::new().create(true).append(true).open(path)
}

pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// `2026-11-27T23:41:07.123Z`, without a date library.
pub fn utc_timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_iso8601() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_823_467_123);
        assert_eq!(utc_timestamp(t), "2026-11-27T23:51:07.123Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_full_log_is_rotated_keeping_one_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/flex.log");
        let mut f = open_rotating(&path, 10).expect("opens");
        f.write_all(b"0123456789").expect("write");
        drop(f);
        let mut f = open_rotating(&path, 10).expect("rotates");
        f.write_all(b"new").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(
            std::fs::read_to_string(rotated_path(&path)).expect("read"),
            "0123456789"
        );
        drop(open_rotating(&path, 10).expect("below the limit: appends"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
    }

    #[test]
    fn library_chatter_needs_trace() {
        use log::LevelFilter::*;
        assert_eq!(effective_level("flashvol_flexdriver::block", Debug), Debug);
        assert_eq!(effective_level("ureq::run", Debug), Info);
        assert_eq!(effective_level("rustls::client", Trace), Debug);
        assert_eq!(effective_level("flashvol_flexdriver::block", Trace), Trace);
        assert_eq!(effective_level("ureq::run", Warn), Warn);
    }

    #[test]
    fn rotated_file_gets_a_suffix() {
        assert_eq!(
            rotated_path(Path::new("/var/log/flashvol-flex.log")),
            Path::new("/var/log/flashvol-flex.log.1")
        );
    }
}
