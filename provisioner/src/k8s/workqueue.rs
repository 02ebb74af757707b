//! The work queues of the claim and PV controllers: which objects wait for a pass, in the order
//! they were triggered, each at most once; never two passes over one object at a time; and the
//! retries due later. The semantics of client-go's workqueue, on which Go provisioners run.
//!
//! Why not kube-runtime's `Controller`: its scheduler sends every trigger, an immediate one too,
//! through a `tokio_util` `DelayQueue`, whose deadlines are whole milliseconds since its start,
//! rounded up, served by a timer of millisecond ticks. Measured on the benchmark machine, a trigger
//! due at once came out after 1.1 ms (p10) to 2.2 ms (p90): at 20 claims/s that was a third of the
//! time from a claim becoming ours to its PV (bench/results/workqueue/analysis.md). Here a trigger
//! wakes a waiting worker at once; only retries go through a timer.
//!
//! Owns no decisions: the controllers say what triggers a pass and when to retry one.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::time::{DelayQueue, delay_queue};

/// A FIFO of keys with at most one entry per key, the keys being worked on, and delayed retries.
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    /// Signalled once per key queued, so a waiting worker takes it.
    queued: Notify,
}

struct State<K> {
    /// Keys waiting for a worker, oldest trigger first.
    waiting: VecDeque<K>,
    /// Keys in `waiting`, and keys triggered again while their pass runs (queued when it ends).
    dirty: HashSet<K>,
    /// Keys a worker took and has not handed back with [`WorkQueue::done`].
    working: HashSet<K>,
    retries: DelayQueue<K>,
    /// The retry timer of each key that has one, and when it is due.
    retry_of: HashMap<K, (delay_queue::Key, Instant)>,
}

impl<K: Clone + Eq + Hash> State<K> {
    /// Queues `key` unless it is queued already; a key being worked on is queued when its pass
    /// ends. Whether a worker should be woken.
    fn trigger(&mut self, key: K) -> bool {
        if !self.dirty.insert(key.clone()) || self.working.contains(&key) {
            return false;
        }
        self.waiting.push_back(key);
        true
    }

    fn cancel_retry(&mut self, key: &K) {
        if let Some((timer, _)) = self.retry_of.remove(key) {
            self.retries.remove(&timer);
        }
    }
}

impl<K: Clone + Eq + Hash> Default for WorkQueue<K> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                dirty: HashSet::new(),
                working: HashSet::new(),
                retries: DelayQueue::new(),
                retry_of: HashMap::new(),
            }),
            queued: Notify::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// A poisoned lock only means a panic elsewhere while it was held; every update of the state
    /// is complete before any call that could panic, so the state stays usable.
    fn state(&self) -> MutexGuard<'_, State<K>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A pass over `key` as soon as a worker is free, after the keys triggered before it. A retry
    /// timer of `key` is dropped: this pass comes sooner, and its outcome sets the next retry.
    pub fn add(&self, key: K) {
        let mut state = self.state();
        state.cancel_retry(&key);
        if state.trigger(key) {
            drop(state);
            self.queued.notify_one();
        }
    }

    /// A pass over `key` after `delay`, unless one is due sooner already.
    pub fn add_after(&self, key: K, delay: Duration) {
        let due = Instant::now() + delay;
        let mut state = self.state();
        if state.dirty.contains(&key) {
            return; // queued, or queued again when its pass ends
        }
        let State {
            retries, retry_of, ..
        } = &mut *state;
        match retry_of.entry(key) {
            Entry::Occupied(mut entry) => {
                let (timer, when) = entry.get_mut();
                if due < *when {
                    retries.reset_at(timer, due);
                    *when = due;
                }
            }
            Entry::Vacant(entry) => {
                let timer = retries.insert_at(entry.key().clone(), due);
                entry.insert((timer, due));
            }
        }
    }

    /// The next key to work on, waiting until there is one. The caller owns its pass until it
    /// calls [`WorkQueue::done`]; triggers meanwhile queue it again then, not before.
    pub async fn next(&self) -> K {
        loop {
            // Registered before the check, so a key queued in between still wakes this worker.
            let queued = self.queued.notified();
            {
                let mut state = self.state();
                if let Some(key) = state.waiting.pop_front() {
                    state.dirty.remove(&key);
                    state.working.insert(key.clone());
                    return key;
                }
            }
            queued.await;
        }
    }

    /// Ends the pass over `key`. Triggered while it ran, the key is queued again.
    pub fn done(&self, key: &K) {
        let mut state = self.state();
        state.working.remove(key);
        if state.dirty.contains(key) {
            state.waiting.push_back(key.clone());
            drop(state);
            self.queued.notify_one();
        }
    }

    /// Queues each retry when it is due. Runs until dropped; retries are only served while it
    /// runs.
    pub async fn serve_retries(&self) {
        loop {
            // Under one lock from the timer's expiry to the key's forgetting it, so no other call
            // can reset or cancel a timer that has already fired.
            let queued = std::future::poll_fn(|cx| {
                let mut state = self.state();
                match state.retries.poll_expired(cx) {
                    Poll::Ready(Some(expired)) => {
                        let key = expired.into_inner();
                        state.retry_of.remove(&key);
                        Poll::Ready(state.trigger(key))
                    }
                    // Empty: the waker is kept, and the next retry inserted wakes this task.
                    Poll::Ready(None) | Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if queued {
                self.queued.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt;

    use super::*;

    /// A queue whose retries are served by a task of their own (abort it at the end).
    fn serving_retries() -> (Arc<WorkQueue<&'static str>>, tokio::task::JoinHandle<()>) {
        let queue = Arc::new(WorkQueue::default());
        let timers = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.serve_retries().await }
        });
        (queue, timers)
    }

    /// The key `next` returns without waiting, if any.
    fn ready(queue: &WorkQueue<&'static str>) -> Option<&'static str> {
        queue.next().now_or_never()
    }

    #[test]
    fn keys_come_out_in_the_order_they_were_triggered_each_once() {
        let queue = WorkQueue::default();
        for key in ["a", "b", "a", "c", "b"] {
            queue.add(key);
        }
        assert_eq!(queue.state().waiting.len(), 3);
        assert_eq!(ready(&queue), Some("a"));
        assert_eq!(ready(&queue), Some("b"));
        assert_eq!(ready(&queue), Some("c"));
        assert_eq!(ready(&queue), None);
    }

    #[test]
    fn a_key_triggered_during_its_pass_is_queued_again_only_when_the_pass_ends() {
        let queue = WorkQueue::default();
        queue.add("a");
        assert_eq!(ready(&queue), Some("a"));
        queue.add("a");
        queue.add("a");
        assert_eq!(ready(&queue), None, "no second pass while the first runs");
        queue.add("b");
        assert_eq!(ready(&queue), Some("b"));
        queue.done(&"a");
        assert_eq!(ready(&queue), Some("a"), "once, after its pass");
        queue.done(&"a");
        queue.done(&"b");
        assert_eq!(ready(&queue), None);
    }

    #[tokio::test]
    async fn a_waiting_worker_takes_a_key_the_moment_it_is_triggered() {
        let queue = Arc::new(WorkQueue::default());
        let worker = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.add("a");
        assert_eq!(worker.await.unwrap(), "a");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_is_queued_when_due_and_the_sooner_of_two_wins() {
        let (queue, timers) = serving_retries();
        queue.add_after("a", Duration::from_secs(10));
        queue.add_after("a", Duration::from_secs(3));
        queue.add_after("a", Duration::from_secs(30));
        queue.add_after("b", Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(2_900)).await;
        assert_eq!(ready(&queue), None);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(ready(&queue), Some("a"), "at 3 s, the soonest asked for");
        queue.done(&"a");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(ready(&queue), Some("b"));
        queue.done(&"b");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ready(&queue), None, "the later timers of a were replaced");
        timers.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_trigger_replaces_a_pending_retry_and_a_retry_of_a_queued_key_is_not_kept() {
        let (queue, timers) = serving_retries();
        queue.add_after("a", Duration::from_secs(5));
        queue.add("a");
        assert_eq!(ready(&queue), Some("a"));
        queue.done(&"a");
        queue.add("b");
        queue.add_after("b", Duration::from_secs(5));
        assert_eq!(ready(&queue), Some("b"));
        queue.done(&"b");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ready(&queue), None, "neither retry fired");
        timers.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_asked_for_during_a_pass_runs_after_it() {
        let (queue, timers) = serving_retries();
        queue.add("a");
        assert_eq!(ready(&queue), Some("a"));
        queue.add_after("a", Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(ready(&queue), None, "due, but its pass still runs");
        queue.done(&"a");
        assert_eq!(ready(&queue), Some("a"));
        timers.abort();
    }
}
