//! The process's stdio under kubelet, and the only writer to the real stdout.
//!
//! kubelet merges stdout and stderr and parses the lot as one JSON object, so at start-up
//! [`take_over_stdio`] keeps a private copy of the real stdout and points fds 0, 1 and 2 at
//! `/dev/null`: no library, log line or child process can reach kubelet's pipe. [`emit`] writes
//! the single reply to the private copy and gives it up, so a second reply (say, from the panic
//! hook racing the main thread) is impossible.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use crate::kubelet::reply::Reply;

static REAL_STDOUT: Mutex<Option<File>> = Mutex::new(None);

/// Keeps the real stdout for [`emit`] and silences fds 0, 1 and 2. Returns false when there was no
/// usable stdout to keep (then nobody can be answered anyway).
pub fn take_over_stdio() -> bool {
    let Ok(saved) = nix::unistd::dup(std::io::stdout()) else {
        return false;
    };
    if let Ok(mut slot) = REAL_STDOUT.lock() {
        *slot = Some(File::from(saved));
    }
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    true
}

/// Sends whatever libraries print to stderr into the log file rather than nowhere.
pub fn redirect_stderr_to(log: &File) {
    let _ = nix::unistd::dup2_stderr(log);
}

/// Writes the reply once. Later calls do nothing.
pub fn emit(reply: &Reply) {
    let taken = REAL_STDOUT.lock().ok().and_then(|mut slot| slot.take());
    if let Some(mut out) = taken {
        let mut text = reply.to_json();
        text.push('\n');
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// A panic anywhere (any thread) becomes a Failure reply and exit status 1.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        log::error!("internal error: {what}{place}");
        emit(&Reply::failure(format!("internal error: {what}{place}")));
        std::process::exit(1);
    }));
}
