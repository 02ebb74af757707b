//! Group commit of the state file: each change is numbered under the array's state lock, and a
//! call that changed the state returns only once a write covering its number is done. Whoever
//! finds no write in progress writes the whole state (every change so far); the others wait for
//! that write, or the next one. Durability is the same as one write per change, at a fraction of
//! the writes under concurrent calls: the file holds every object, so a write costs what the
//! state weighs (a benchmark's arrays hold thousands of destroyed volumes), and one per change
//! under the state lock held every other call to the array.

use std::sync::{Condvar, Mutex, MutexGuard};

use anyhow::{Result, anyhow};

#[derive(Debug, Default)]
pub struct GroupCommit {
    progress: Mutex<Progress>,
    written: Condvar,
}

#[derive(Debug, Default)]
struct Progress {
    /// The number of the latest change.
    numbered: u64,
    /// Every change up to this one is in the file.
    saved: u64,
    /// A write is in progress.
    writing: bool,
    /// The last failed write: the number it covered and why.
    failed: Option<(u64, String)>,
}

impl GroupCommit {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers a change. Call it with the state lock held, so numbers follow the changes' order
    /// and a snapshot taken under that lock holds every change up to [`GroupCommit::latest`].
    pub fn number(&self) -> u64 {
        let mut progress = self.progress();
        progress.numbered += 1;
        progress.numbered
    }

    /// The number of the latest change (read with the state lock held, by a write's snapshot).
    pub fn latest(&self) -> u64 {
        self.progress().numbered
    }

    /// Returns once change `change` is saved. `write` saves the whole state and returns the
    /// number of the latest change its snapshot holds; it runs on this thread when no other
    /// write is in progress, never with this lock held.
    pub fn wait_saved(&self, change: u64, mut write: impl FnMut() -> Result<u64>) -> Result<()> {
        let mut progress = self.progress();
        loop {
            if progress.saved >= change {
                return Ok(());
            }
            if let Some((covered, why)) = &progress.failed
                && *covered >= change
            {
                return Err(anyhow!("saving the state failed: {why}"));
            }
            if progress.writing {
                progress = self
                    .written
                    .wait(progress)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            progress.writing = true;
            drop(progress);
            let result = write();
            progress = self.progress();
            progress.writing = false;
            match result {
                Ok(covered) => progress.saved = progress.saved.max(covered),
                // What the failed write covered: at least this change (it was numbered before).
                Err(e) => progress.failed = Some((progress.numbered, format!("{e:#}"))),
            }
            self.written.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn concurrent_changes_share_writes_and_each_returns_after_one_that_holds_it() {
        let commits = Arc::new(GroupCommit::default());
        let state = Arc::new(Mutex::new(0u64));
        let writes = Arc::new(AtomicU64::new(0));
        let on_disk = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (commits, state) = (Arc::clone(&commits), Arc::clone(&state));
                let (writes, on_disk) = (Arc::clone(&writes), Arc::clone(&on_disk));
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let change = {
                            let mut s = state.lock().expect("state");
                            *s += 1;
                            commits.number()
                        };
                        commits
                            .wait_saved(change, || {
                                let (snapshot, covered) = {
                                    let s = state.lock().expect("state");
                                    (*s, commits.latest())
                                };
                                // A write slow enough that changes pile up behind it.
                                std::thread::sleep(Duration::from_millis(2));
                                on_disk.store(snapshot, Ordering::SeqCst);
                                writes.fetch_add(1, Ordering::SeqCst);
                                Ok(covered)
                            })
                            .expect("saved");
                        // This thread's change (and so its count) is in the file.
                        assert!(on_disk.load(Ordering::SeqCst) >= change);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(
            on_disk.load(Ordering::SeqCst),
            320,
            "the last write holds every change"
        );
        let writes = writes.load(Ordering::SeqCst);
        assert!(writes < 320, "{writes} writes for 320 changes");
    }

    #[test]
    fn a_failed_write_fails_the_changes_it_covered_and_the_next_one_writes_again() {
        let commits = GroupCommit::default();
        let first = commits.number();
        let err = commits
            .wait_saved(first, || Err(anyhow!("disk full")))
            .expect_err("the write failed");
        assert!(format!("{err}").contains("disk full"), "{err}");
        let second = commits.number();
        commits
            .wait_saved(second, || Ok(commits.latest()))
            .expect("the next write covers both");
        commits
            .wait_saved(first, || panic!("already saved"))
            .expect("the first change is in the file now");
    }
}
