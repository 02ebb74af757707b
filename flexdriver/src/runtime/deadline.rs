//! Bounded waiting. kubelet gives mount and unmount no timeout, so anything that can hang (an
//! array call, a system call on a dead device) runs on a helper thread and is abandoned at its
//! deadline: the call then fails, the reply goes out and the process exits, taking the stuck
//! thread with it.

use std::sync::mpsc;
use std::time::Duration;

use crate::runtime::error::{FlexError, Result};

/// Runs `work` and waits at most `limit` for it.
pub fn within<T, F>(step: &str, limit: Duration, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(step.chars().take(15).collect())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| FlexError::Refused(format!("{step}: cannot start a thread: {e}")))?;
    rx.recv_timeout(limit).map_err(|_| FlexError::TimedOut {
        step: step.to_owned(),
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_work_is_abandoned_at_the_deadline() {
        let err = within("sleepy", Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(5));
        })
        .expect_err("times out");
        assert!(
            err.to_string()
                .contains("sleepy did not finish within 0.05s"),
            "{err}"
        );
    }

    #[test]
    fn quick_work_returns_its_value() {
        assert_eq!(
            within("quick", Duration::from_secs(5), || 42).expect("value"),
            42
        );
    }
}
