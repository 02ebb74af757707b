//! Kubernetes Events on claims and volumes, written with the core/v1 API that every cluster
//! since 1.0 serves (kube-runtime's recorder needs events.k8s.io/v1, which 1.1x clusters lack).
//!
//! Owns the event reasons. A repeat of the same event (same object, reason and message) bumps
//! `count` on the existing Event instead of creating another, as client-go does. Failing to record
//! an event is logged and never fails the reconcile.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

pub const PROVISIONING: &str = "Provisioning";
pub const PROVISIONING_SUCCEEDED: &str = "ProvisioningSucceeded";
pub const PROVISIONING_FAILED: &str = "ProvisioningFailed";
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

type EventKey = (String, String, String);

/// Records events; cheap to share.
pub struct Recorder {
    client: Client,
    component: String,
    host: String,
    seen: Mutex<HashMap<EventKey, (String, String, i32)>>,
}

impl Recorder {
    pub fn new(client: Client, component: &str, host: &str) -> Self {
        Self {
            client,
            component: component.to_owned(),
            host: host.to_owned(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event about `object`.
    pub async fn publish(&self, object: &ObjectReference, kind: Kind, reason: &str, message: &str) {
        let namespace = object
            .namespace
            .clone()
            .unwrap_or_else(|| CLUSTER_SCOPED_NAMESPACE.to_owned());
        let object_key = object
            .uid
            .clone()
            .or_else(|| object.name.clone())
            .unwrap_or_default();
        let key = (object_key, reason.to_owned(), message.to_owned());
        let now = Time(Timestamp::now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let previous = self.seen.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some((ns, name, count)) = previous
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
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
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

    fn remember(&self, key: EventKey, namespace: String, name: String, count: i32) {
        if let Ok(mut m) = self.seen.lock() {
            if m.len() >= MAX_REMEMBERED {
                m.clear();
            }
            m.insert(key, (namespace, name, count));
        }
    }
}
