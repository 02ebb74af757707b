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

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::{mpsc, oneshot};

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
    pub fn new(client: Client, component: &str, host: &str) -> Self {
        let (queue, messages) = mpsc::channel(QUEUE);
        let sink = Sink {
            client,
            component: component.to_owned(),
            host: host.to_owned(),
            seen: HashMap::new(),
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

/// The task writing events, one at a time.
struct Sink {
    client: Client,
    component: String,
    host: String,
    /// (object, reason, message) → (namespace, Event name, count) of the Event already written.
    seen: HashMap<EventKey, (String, String, i32)>,
}

impl Sink {
    async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
        while let Some(message) = messages.recv().await {
            match message {
                Message::Event(pending) => self.write(&pending).await,
                Message::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn write(&mut self, pending: &Pending) {
        let Pending {
            object,
            kind,
            reason,
            message,
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
