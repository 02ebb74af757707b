//! Kubernetes Events on claims and volumes, written with the core/v1 API that every cluster
//! since 1.0 serves (kube-runtime's recorder needs events.k8s.io/v1, which 1.1x clusters lack).
//!
//! Owns the event reasons and the event sink. Events never stand between a claim and its PV:
//! [`Recorder::publish`] only queues (as client-go's broadcaster does); one background task
//! writes them through the same rate-limited client, so they take tokens only as fast as one
//! request at a time while every worker's PV requests go ahead. A repeat of the same event (same
//! object, reason and message) bumps `count` on the existing Event instead of creating another,
//! as client-go does. A full queue drops the event (logged), and failing to record one is logged:
//! neither ever fails or delays a reconcile.
//!
//! A progress event ([`PROGRESS`]: `Provisioning`) says work has started; it is worth a request
//! only while the work is still going on. So it waits in the queue for the grace the recorder
//! was made with, and is dropped if its outcome (`ProvisioningSucceeded`, `ProvisioningFailed`)
//! is published for the same object within that grace: a claim provisioned in under a second
//! gets one event, the outcome, and a slow one gets both. Under a burst this halves the events,
//! whose tokens the PV creates need.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub const PROVISIONING: &str = "Provisioning";
pub const PROVISIONING_SUCCEEDED: &str = "ProvisioningSucceeded";
pub const PROVISIONING_FAILED: &str = "ProvisioningFailed";
/// A replica restore names the snapshot it copies and its age (the effective recovery point).
pub const RESTORING_REPLICA: &str = "RestoringReplica";
pub const VOLUME_FAILED_DELETE: &str = "VolumeFailedDelete";
/// The resizer's reasons, as the CSI external-resizer (and the controller manager's expander)
/// spell them, so the events users know from other volumes mean the same here.
pub const RESIZING: &str = "Resizing";
pub const FILE_SYSTEM_RESIZE_REQUIRED: &str = "FileSystemResizeRequired";
pub const VOLUME_RESIZE_SUCCESSFUL: &str = "VolumeResizeSuccessful";
pub const VOLUME_RESIZE_FAILED: &str = "VolumeResizeFailed";

/// Progress reasons, each with the outcomes that end it ([`supersedes`]).
pub const PROGRESS: &[(&str, &[&str])] =
    &[(PROVISIONING, &[PROVISIONING_SUCCEEDED, PROVISIONING_FAILED])];
/// How long the provisioner holds a progress event back, waiting for its outcome.
pub const PROGRESS_GRACE: Duration = Duration::from_secs(1);

/// Whether an `outcome` event makes an unwritten `progress` event on the same object pointless.
pub fn supersedes(outcome: &str, progress: &str) -> bool {
    PROGRESS
        .iter()
        .any(|(reason, outcomes)| *reason == progress && outcomes.contains(&outcome))
}

fn is_progress(reason: &str) -> bool {
    PROGRESS.iter().any(|(progress, _)| *progress == reason)
}

/// Where events about cluster-scoped objects (PVs) go, as client-go does.
const CLUSTER_SCOPED_NAMESPACE: &str = "default";
/// Bound on remembered events; the map is cleared when it grows past this.
const MAX_REMEMBERED: usize = 4096;
/// Events waiting for the sink; client-go's broadcaster queues as many before it drops.
const QUEUE: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

/// One event as a reconcile asked for it.
struct Pending {
    object: ObjectReference,
    kind: Kind,
    reason: String,
    message: String,
    published: Instant,
}

impl Pending {
    /// Whether `outcome` makes this unwritten event pointless: same object, an outcome of this
    /// progress reason ([`supersedes`]), published within `grace` of this one.
    fn superseded_by(&self, outcome: &Pending, grace: Duration) -> bool {
        self.object.uid == outcome.object.uid
            && self.object.name == outcome.object.name
            && supersedes(&outcome.reason, &self.reason)
            && outcome.published < self.published + grace
    }
}

enum Message {
    Event(Box<Pending>),
    /// Answered once every message queued before it has been handled.
    Flush(oneshot::Sender<()>),
}

/// Queues events for the sink task; cheap to share.
pub struct Recorder {
    queue: mpsc::Sender<Message>,
}

impl Recorder {
    /// Starts the sink task on the current Tokio runtime; it ends when the recorder is dropped.
    /// Progress events wait `progress_grace` for their outcome ([`PROGRESS_GRACE`] in the
    /// provisioner).
    pub fn new(client: Client, component: &str, host: &str, progress_grace: Duration) -> Self {
        let (queue, messages) = mpsc::channel(QUEUE);
        let sink = Sink {
            client,
            component: component.to_owned(),
            host: host.to_owned(),
            seen: HashMap::new(),
            progress_grace,
            backlog: VecDeque::new(),
        };
        tokio::spawn(sink.run(messages));
        Self { queue }
    }

    /// Queues an event about `object` and returns at once.
    pub fn publish(&self, object: &ObjectReference, kind: Kind, reason: &str, message: &str) {
        let pending = Pending {
            object: object.clone(),
            kind,
            reason: reason.to_owned(),
            message: message.to_owned(),
            published: Instant::now(),
        };
        if let Err(e) = self.queue.try_send(Message::Event(Box::new(pending))) {
            let full = matches!(e, mpsc::error::TrySendError::Full(_));
            log::warn!(
                "event {reason} on {} dropped: {}",
                object.name.as_deref().unwrap_or_default(),
                if full {
                    "event queue full"
                } else {
                    "event sink stopped"
                }
            );
        }
    }

    /// Waits until every event published before this call has been written (or has failed);
    /// shutdown uses it so the last events are not lost.
    pub async fn flush(&self) {
        let (done, handled) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = handled.await;
        }
    }
}

type EventKey = (String, String, String);

/// One message in the sink's backlog.
enum Queued {
    /// Written once `Instant::now()` reaches `writable_at` (at once but for progress events).
    Event {
        pending: Box<Pending>,
        writable_at: Instant,
    },
    Flush(oneshot::Sender<()>),
}

impl Queued {
    /// When this can be handled: `None` if it waits for nothing.
    fn writable_at(&self) -> Option<Instant> {
        match self {
            Queued::Event { writable_at, .. } => Some(*writable_at),
            Queued::Flush(_) => None,
        }
    }
}

/// The task writing events, one at a time.
struct Sink {
    client: Client,
    component: String,
    host: String,
    /// (object, reason, message) → (namespace, Event name, count) of the Event already written.
    seen: HashMap<EventKey, (String, String, i32)>,
    progress_grace: Duration,
    /// Messages taken from the channel and not handled yet, in publish order.
    backlog: VecDeque<Queued>,
}

impl Sink {
    async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
        let mut open = true;
        loop {
            // Everything published so far is looked at before anything is written, so an outcome
            // published within the grace always finds its progress event still queued.
            while let Ok(message) = messages.try_recv() {
                self.accept(message);
            }
            let now = Instant::now();
            let ready = self
                .backlog
                .iter()
                .position(|q| q.writable_at().is_none_or(|at| at <= now));
            match ready.and_then(|i| self.backlog.remove(i)) {
                Some(Queued::Event { pending, .. }) => {
                    self.write(&pending).await;
                    continue;
                }
                Some(Queued::Flush(done)) => {
                    let _ = done.send(());
                    continue;
                }
                None => {}
            }
            if !open && self.backlog.is_empty() {
                return;
            }
            let next = self.backlog.iter().filter_map(Queued::writable_at).min();
            tokio::select! {
                message = messages.recv(), if open => match message {
                    Some(message) => self.accept(message),
                    // The recorder is gone: what is left is written now.
                    None => {
                        open = false;
                        self.release_all();
                    }
                },
                () = tokio::time::sleep_until(next.unwrap_or(now)), if next.is_some() => {}
                else => return,
            }
        }
    }

    /// Takes one message into the backlog: an outcome drops the progress events it supersedes,
    /// a flush releases every held event before it.
    fn accept(&mut self, message: Message) {
        match message {
            Message::Flush(done) => {
                self.release_all();
                self.backlog.push_back(Queued::Flush(done));
            }
            Message::Event(pending) => {
                let grace = self.progress_grace;
                self.backlog.retain(|queued| match queued {
                    Queued::Event { pending: held, .. } => !held.superseded_by(&pending, grace),
                    Queued::Flush(_) => true,
                });
                if self.backlog.len() >= QUEUE {
                    log::warn!(
                        "event {} on {} dropped: event queue full",
                        pending.reason,
                        pending.object.name.as_deref().unwrap_or_default()
                    );
                    return;
                }
                let writable_at = if is_progress(&pending.reason) {
                    pending.published + grace
                } else {
                    pending.published
                };
                self.backlog.push_back(Queued::Event {
                    pending,
                    writable_at,
                });
            }
        }
    }

    /// Makes every held event writable now (a flush, or the recorder gone).
    fn release_all(&mut self) {
        let now = Instant::now();
        for queued in &mut self.backlog {
            if let Queued::Event { writable_at, .. } = queued {
                *writable_at = (*writable_at).min(now);
            }
        }
    }

    async fn write(&mut self, pending: &Pending) {
        let Pending {
            object,
            kind,
            reason,
            message,
            published: _,
        } = pending;
        let namespace = object
            .namespace
            .clone()
            .unwrap_or_else(|| CLUSTER_SCOPED_NAMESPACE.to_owned());
        let object_key = object
            .uid
            .clone()
            .or_else(|| object.name.clone())
            .unwrap_or_default();
        let key = (object_key, reason.clone(), message.clone());
        let now = Time(Timestamp::now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Some((ns, name, count)) = self.seen.get(&key).cloned()
            && ns == namespace
        {
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.remember(key, namespace, name, count + 1);
                return;
            }
        }
        let object_name = object.name.clone().unwrap_or_default();
        let nanos = now.0.as_nanosecond();
        let name = format!("{object_name}.{nanos:x}");
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.clone()),
            message: Some(message.clone()),
            type_: Some(
                match kind {
                    Kind::Normal => "Normal",
                    Kind::Warning => "Warning",
                }
                .to_owned(),
            ),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: Some(self.host.clone()),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => self.remember(key, namespace, name, 1),
            Err(e) => log::warn!("cannot record event {reason} on {object_name}: {e}"),
        }
    }

    fn remember(&mut self, key: EventKey, namespace: String, name: String, count: i32) {
        if self.seen.len() >= MAX_REMEMBERED {
            self.seen.clear();
        }
        self.seen.insert(key, (namespace, name, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fake_kube::FakeKube;

    fn claim(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("PersistentVolumeClaim".into()),
            namespace: Some("default".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    /// (object, reason) of every Event the API server holds.
    fn written(fake: &FakeKube) -> Vec<(String, String)> {
        let mut events: Vec<(String, String)> = fake
            .list::<Event>()
            .into_iter()
            .map(|e| {
                (
                    e.involved_object.name.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                )
            })
            .collect();
        events.sort();
        events
    }

    fn event(object: &str, reason: &str) -> (String, String) {
        (object.to_owned(), reason.to_owned())
    }

    #[test]
    fn only_an_outcome_of_the_same_work_supersedes_a_progress_event() {
        assert!(supersedes(PROVISIONING_SUCCEEDED, PROVISIONING));
        assert!(supersedes(PROVISIONING_FAILED, PROVISIONING));
        assert!(!supersedes(PROVISIONING, PROVISIONING));
        assert!(!supersedes(VOLUME_RESIZE_SUCCESSFUL, PROVISIONING));
        assert!(!supersedes(PROVISIONING_SUCCEEDED, RESIZING));
        assert!(is_progress(PROVISIONING));
        assert!(!is_progress(PROVISIONING_SUCCEEDED));
    }

    #[tokio::test]
    async fn a_claim_provisioned_within_the_grace_gets_only_its_outcome_event() {
        let (fake, client) = FakeKube::new();
        let recorder = Recorder::new(client, "pure-provisioner", "test", Duration::from_secs(600));
        let data = claim("data");
        recorder.publish(&data, Kind::Normal, PROVISIONING, "provisioning");
        recorder.publish(&data, Kind::Normal, PROVISIONING_SUCCEEDED, "done");
        let logs = claim("logs");
        recorder.publish(&logs, Kind::Normal, PROVISIONING, "provisioning");
        recorder.publish(&logs, Kind::Warning, PROVISIONING_FAILED, "no space");
        recorder.flush().await;
        assert_eq!(
            written(&fake),
            [
                event("data", PROVISIONING_SUCCEEDED),
                event("logs", PROVISIONING_FAILED)
            ]
        );
    }

    #[tokio::test]
    async fn a_claim_still_provisioning_after_the_grace_gets_both_events() {
        let (fake, client) = FakeKube::new();
        let recorder = Recorder::new(client, "pure-provisioner", "test", Duration::ZERO);
        let data = claim("data");
        recorder.publish(&data, Kind::Normal, PROVISIONING, "provisioning");
        recorder.publish(&data, Kind::Normal, PROVISIONING_SUCCEEDED, "done");
        recorder.flush().await;
        assert_eq!(
            written(&fake),
            [
                event("data", PROVISIONING),
                event("data", PROVISIONING_SUCCEEDED)
            ]
        );
    }

    #[tokio::test]
    async fn a_held_progress_event_holds_back_no_other_event_and_a_flush_writes_it() {
        let (fake, client) = FakeKube::new();
        let recorder = Recorder::new(client, "pure-provisioner", "test", Duration::from_secs(600));
        recorder.publish(&claim("slow"), Kind::Normal, PROVISIONING, "provisioning");
        recorder.publish(&claim("fast"), Kind::Normal, PROVISIONING_SUCCEEDED, "done");
        // A guard, not a measurement: the outcome on another claim neither waits for nor drops
        // the held event.
        tokio::time::timeout(Duration::from_secs(60), async {
            while written(&fake).is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the fast claim's event is written while the slow one's is held");
        assert_eq!(written(&fake), [event("fast", PROVISIONING_SUCCEEDED)]);

        recorder.flush().await;
        assert_eq!(
            written(&fake),
            [
                event("fast", PROVISIONING_SUCCEEDED),
                event("slow", PROVISIONING)
            ]
        );
    }
}
