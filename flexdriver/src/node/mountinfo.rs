//! `/proc/<pid>/mountinfo`, parsed properly: the kernel escapes space, tab, newline and backslash
//! in paths as `\ooo` octal, and the optional fields before ` - ` vary in number (of them, the
//! propagation tags `shared:N` and `master:N` are kept).
//!
//! This process's table is the driver's memory: whether a pod dir is mounted, which staging mount
//! a pod dir is a bind of, and how many binds of a staging mount remain. Other processes' tables
//! tell whether anything else on the node still holds a file system ([`super::namespaces`]).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u32,
    pub parent: u32,
    /// `major:minor` of the file system.
    pub dev: (u32, u32),
    /// Path inside the file system that is mounted here (`/` unless a bind of a subtree).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`/`ro`, `nosuid`, ...).
    pub options: String,
    pub fs_type: String,
    pub source: String,
    /// Peer group (`shared:N`): mounts with the same number, in any namespace, propagate mount
    /// and unmount events to each other.
    pub shared: Option<u32>,
    /// The peer group this mount is a slave of (`master:N`): it receives that group's events.
    pub master: Option<u32>,
}

impl MountEntry {
    pub fn is_read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }

    /// Same file system and same subtree: a bind of the same thing.
    pub fn same_content(&self, other: &MountEntry) -> bool {
        self.dev == other.dev && self.root == other.root
    }

    /// Whether this mount takes part in `group`'s propagation, as a peer or as a slave.
    pub fn propagates_from(&self, group: u32) -> bool {
        self.shared == Some(group) || self.master == Some(group)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mountinfo line {line}: {problem}")]
pub struct MountinfoError {
    pub line: usize,
    pub problem: String,
}

pub fn parse(text: &str) -> Result<Vec<MountEntry>, MountinfoError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_line(l).map_err(|problem| MountinfoError {
                line: i + 1,
                problem,
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Result<MountEntry, String> {
    let (before, after) = line
        .split_once(" - ")
        .ok_or_else(|| "no \" - \" separator".to_owned())?;
    let fields: Vec<&str> = before.split(' ').collect();
    if fields.len() < 6 {
        return Err(format!(
            "expected at least 6 fields before \" - \", got {}",
            fields.len()
        ));
    }
    let number = |s: &str, what: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{what} {s:?} is not a number"))
    };
    let (major, minor) = fields[2]
        .split_once(':')
        .ok_or_else(|| format!("device {:?} is not major:minor", fields[2]))?;
    let tail: Vec<&str> = after.split(' ').collect();
    if tail.len() < 2 {
        return Err("missing file system type or source".into());
    }
    let tagged = |tag: &str| {
        fields[6..]
            .iter()
            .find_map(|f| f.strip_prefix(tag))
            .map(|n| number(n, tag))
            .transpose()
    };
    Ok(MountEntry {
        id: number(fields[0], "mount id")?,
        parent: number(fields[1], "parent id")?,
        dev: (number(major, "major")?, number(minor, "minor")?),
        root: PathBuf::from(unescape(fields[3])),
        mount_point: PathBuf::from(unescape(fields[4])),
        options: fields[5].to_owned(),
        fs_type: tail[0].to_owned(),
        source: unescape(tail[1]),
        shared: tagged("shared:")?,
        master: tagged("master:")?,
    })
}

/// Undoes the kernel's `\ooo` escapes.
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The kernel's current table, as this process's mount namespace sees it.
pub fn read() -> std::io::Result<Vec<MountEntry>> {
    read_from(Path::new("/proc/self/mountinfo"))
}

/// A `mountinfo` file: this process's, or another process's `/proc/<pid>/mountinfo`.
pub fn read_from(path: &Path) -> std::io::Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string(path)?;
    parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The topmost mount at `path`, if any.
pub fn mounted_at<'a>(table: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    table.iter().rev().find(|e| e.mount_point == path)
}

/// Other mounts showing the same content as `staging` (the pod binds of a staging mount).
pub fn binds_of<'a>(
    table: &'a [MountEntry],
    staging: &'a MountEntry,
) -> impl Iterator<Item = &'a MountEntry> {
    table
        .iter()
        .filter(move |e| e.same_content(staging) && e.mount_point != staging.mount_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
98 27 7:3 / /var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/mounts/pvc-1 rw,relatime shared:50 - xfs /dev/loop3 rw,attr2
99 27 7:3 / /var/lib/kubelet/pods/a/volumes/pure~flex/pvc-1 ro,relatime shared:50 master:3 - xfs /dev/loop3 rw,attr2
100 27 7:3 /sub /elsewhere rw - xfs /dev/loop3 rw
101 27 0:50 / /var/lib/kubelet/pods/with\\040space/vol rw - nfs 10.0.0.7:/k8s-pvc-2 rw
";

    #[test]
    fn fields_and_optional_fields_are_parsed() {
        let t = parse(SAMPLE).expect("parses");
        assert_eq!(t.len(), 5);
        assert_eq!(t[1].dev, (7, 3));
        assert_eq!(t[1].fs_type, "xfs");
        assert_eq!(t[2].source, "/dev/loop3");
        assert!(t[2].is_read_only() && !t[1].is_read_only());
        assert_eq!((t[1].shared, t[1].master), (Some(50), None));
        assert_eq!((t[2].shared, t[2].master), (Some(50), Some(3)));
        assert!(t[2].propagates_from(3) && t[2].propagates_from(50));
        assert_eq!((t[3].shared, t[3].master), (None, None), "a private mount");
    }

    #[test]
    fn octal_escapes_are_undone() {
        let t = parse(SAMPLE).expect("parses");
        assert_eq!(
            t[4].mount_point,
            Path::new("/var/lib/kubelet/pods/with space/vol")
        );
        assert_eq!(unescape("a\\134b\\011c\\012"), "a\\b\tc\n");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn binds_of_a_staging_mount_are_found_by_device_and_root() {
        let t = parse(SAMPLE).expect("parses");
        let staging = mounted_at(
            &t,
            Path::new("/var/lib/kubelet/plugins/kubernetes.io/flexvolume/pure/flex/mounts/pvc-1"),
        )
        .expect("staging");
        let binds: Vec<_> = binds_of(&t, staging).map(|e| e.id).collect();
        assert_eq!(binds, [99], "a bind of a subtree is not a pod bind");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let e = parse("22 27 0:21 / /proc rw - proc proc rw\ngarbage\n").expect_err("bad");
        assert_eq!(e.line, 2);
        assert!(parse("x 27 0:21 / /p rw - proc proc rw").is_err());
        assert!(parse("1 2 021 / /p rw - proc proc rw").is_err());
    }
}
