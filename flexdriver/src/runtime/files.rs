//! Small files the driver rewrites between calls (volume records, call-out statistics): written
//! whole to a temp file next to the target, then renamed over it, so a reader or a process
//! killed mid-write never sees half a file.

use std::path::Path;

use crate::runtime::error::{FlexError, Result};

/// Replaces `path` with `text` atomically, creating its directory when missing.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| FlexError::Refused(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| FlexError::io("cannot create", dir, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| FlexError::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| FlexError::io("cannot rename into", path, e))
}
