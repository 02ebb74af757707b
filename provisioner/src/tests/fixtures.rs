//! Test helpers: small constructors for claims, classes and PVs shaped like the API returns them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{
    FlexPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeSpec, VolumeResourceRequirements,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::decide::claim::ANN_STORAGE_PROVISIONER;
use crate::decide::volume::{ANN_PROVISIONED_BY, FINALIZER};

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// A fresh, well-formed claim uid.
pub fn uid() -> String {
    let n = NEXT_UID.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// An unbound RWO claim in `default` that the PV controller handed to `pure-provisioner`.
pub fn pvc(name: &str, class: &str, size: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(uid()),
            resource_version: Some("7".into()),
            annotations: Some(BTreeMap::from([(
                ANN_STORAGE_PROVISIONER.to_owned(),
                "pure-provisioner".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: (!class.is_empty()).then(|| class.to_owned()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// [`pvc`] with one more annotation (a restore, an adoption).
pub fn annotated_pvc(
    name: &str,
    class: &str,
    size: &str,
    key: &str,
    value: &str,
) -> PersistentVolumeClaim {
    let mut claim = pvc(name, class, size);
    claim
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(key.into(), value.into());
    claim
}

/// A StorageClass with parameters.
pub fn class(name: &str, provisioner: &str, params: &[(&str, &str)]) -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        provisioner: provisioner.into(),
        parameters: Some(
            params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// A block PV provisioned by `provisioner`, with our finalizer, Bound, policy Delete.
pub fn pv_of(provisioner: &str) -> PersistentVolume {
    let name = format!("pvc-{}", uid());
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            annotations: Some(BTreeMap::from([(
                ANN_PROVISIONED_BY.to_owned(),
                provisioner.to_owned(),
            )])),
            finalizers: Some(vec![FINALIZER.to_owned()]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            persistent_volume_reclaim_policy: Some("Delete".into()),
            flex_volume: Some(FlexPersistentVolumeSource {
                driver: "pure/flex".into(),
                options: Some(BTreeMap::from([
                    ("backend".to_owned(), "block".to_owned()),
                    ("volumeName".to_owned(), name),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// A plain HTTP/1.1 GET; returns the whole response (status line, headers, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out).await;
    out
}

/// A port that was free a moment ago.
pub fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}
