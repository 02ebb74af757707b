//! Construction of the PV for a provisioned volume: a pure function of the claim, the class and
//! where the volume landed.
//!
//! Owns the PV's shape: `flexVolume` with options from [`NewVolumeOptions`] (keys defined once in
//! `flashvol-common`), claimRef, class, capacity as allocated, access modes, reclaim policy,
//! `provisioned-by` and our finalizer; for an adopted object, its name and the Retain policy. Mount options travel in `flexVolume.options`, never in
//! `spec.mountOptions`, which kubelet refuses for flex volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    FlexPersistentVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use flashvol_common::config::Settings;
use flashvol_common::names;
use flashvol_common::options::{self, Backend, NewVolumeOptions};

use crate::decide::class_params::ClassParams;
use crate::decide::placement::describe_selector;
use crate::decide::quantity::format_bytes;
use crate::decide::source::{ADOPTED_RECLAIM_POLICY, ANN_ADOPTED};
use crate::decide::volume::{ANN_PROVISIONED_BY, FINALIZER};

/// Where the volume was created and how big it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed<'a> {
    /// The array's management endpoint as written in `pure.json`.
    pub array_endpoint: &'a str,
    pub array_id: &'a str,
    /// FlashBlade data VIP; `None` for FlashArray volumes.
    pub nfs_endpoint: Option<&'a str>,
    /// Bytes the array allocated.
    pub capacity: u64,
}

/// Everything a PV is made of.
#[derive(Debug, Clone)]
pub struct PvInputs<'a> {
    pub provisioner: &'a str,
    pub driver: &'a str,
    pub claim: &'a PersistentVolumeClaim,
    pub class: &'a StorageClass,
    pub params: &'a ClassParams,
    pub settings: &'a Settings,
    pub access_modes: &'a [String],
    pub shared: bool,
    pub placed: Placed<'a>,
    /// An existing array object the claim adopted: the PV names it (`arrayVolume`) instead of
    /// `<prefix>-<PV name>`, is annotated [`ANN_ADOPTED`], and is Retained whatever the class
    /// says ([`ADOPTED_RECLAIM_POLICY`]).
    pub adopted: Option<&'a str>,
}

/// Builds the PV `pvc-<claim uid>`.
pub fn build_pv(input: &PvInputs<'_>) -> PersistentVolume {
    let claim_uid = input.claim.metadata.uid.as_deref().unwrap_or_default();
    let pv_name = names::pv_name(claim_uid);
    let backend = input.params.backend;
    let fs_type = match backend {
        Backend::Block => input
            .params
            .fs_type
            .unwrap_or(input.settings.block.fs_type)
            .as_str(),
        Backend::File => "nfs",
    };
    let labels = describe_selector(input.claim.spec.as_ref().and_then(|s| s.selector.as_ref()));
    let mut options = NewVolumeOptions {
        backend,
        prefix: &input.settings.name_prefix,
        pv_name: &pv_name,
        shared: input.shared,
        labels: &labels,
        array_endpoint: input.placed.array_endpoint,
        array_id: input.placed.array_id,
        create_options: input.params.create_options.as_deref(),
        mount_options: input.params.mount_options.as_deref(),
        nfs_endpoint: input.placed.nfs_endpoint,
    }
    .to_options();
    if let Some(object) = input.adopted {
        options.insert(options::ARRAY_VOLUME.to_owned(), object.to_owned());
    }
    if let Some(group) = &input.params.protection_group {
        options.insert(options::PROTECTION_GROUP.to_owned(), group.clone());
    }
    let mut annotations =
        BTreeMap::from([(ANN_PROVISIONED_BY.to_owned(), input.provisioner.to_owned())]);
    if let Some(object) = input.adopted {
        annotations.insert(ANN_ADOPTED.to_owned(), object.to_owned());
    }
    let reclaim_policy = match input.adopted {
        Some(_) => ADOPTED_RECLAIM_POLICY.to_owned(),
        None => input
            .class
            .reclaim_policy
            .clone()
            .unwrap_or_else(|| "Delete".into()),
    };
    let claim_ref = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        name: input.claim.metadata.name.clone(),
        namespace: input.claim.metadata.namespace.clone(),
        uid: input.claim.metadata.uid.clone(),
        resource_version: input.claim.metadata.resource_version.clone(),
        ..Default::default()
    };
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(pv_name),
            annotations: Some(annotations),
            finalizers: Some(vec![FINALIZER.to_owned()]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: Some(input.access_modes.to_vec()),
            capacity: Some(BTreeMap::from([(
                "storage".to_owned(),
                Quantity(format_bytes(input.placed.capacity)),
            )])),
            claim_ref: Some(claim_ref),
            flex_volume: Some(FlexPersistentVolumeSource {
                driver: input.driver.to_owned(),
                fs_type: Some(fs_type.to_owned()),
                options: Some(options),
                ..Default::default()
            }),
            persistent_volume_reclaim_policy: Some(reclaim_policy),
            storage_class_name: input.class.metadata.name.clone(),
            volume_mode: Some("Filesystem".into()),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::class_params::parse_class_params;
    use crate::tests::fixtures::{class, pvc};
    use flashvol_common::options::VolumeOptions;

    fn build(
        class: &StorageClass,
        claim: &PersistentVolumeClaim,
        placed: Placed<'_>,
    ) -> PersistentVolume {
        let params = parse_class_params(
            class.parameters.as_ref().unwrap_or(&BTreeMap::new()),
            class.mount_options.as_deref().unwrap_or_default(),
        )
        .expect("valid class");
        let settings = Settings::default();
        let (modes, shared) =
            crate::decide::claim::access_modes(claim, params.backend).expect("modes");
        build_pv(&PvInputs {
            provisioner: "pure-provisioner",
            driver: "pure/flex",
            claim,
            class,
            params: &params,
            settings: &settings,
            access_modes: &modes,
            shared,
            placed,
            adopted: None,
        })
    }

    /// Placed on the FlashArray `10.0.0.5` (id `fa-id`).
    fn on_fa(capacity: u64) -> Placed<'static> {
        Placed {
            array_endpoint: "10.0.0.5",
            array_id: "fa-id",
            nfs_endpoint: None,
            capacity,
        }
    }

    #[test]
    fn block_pv_carries_everything_the_driver_and_the_pv_controller_need() {
        let mut c = class(
            "pure-block",
            "pure-provisioner",
            &[("backend", "block"), ("fsType", "ext4")],
        );
        c.mount_options = Some(vec!["discard".into()]);
        let claim = pvc("data", "pure-block", "10Gi");
        let pv = build(&c, &claim, on_fa(10 << 30));
        let uid = claim.metadata.uid.clone().expect("uid");
        assert_eq!(
            pv.metadata.name.as_deref(),
            Some(format!("pvc-{uid}").as_str())
        );
        assert_eq!(
            pv.metadata.annotations.as_ref().expect("ann")[ANN_PROVISIONED_BY],
            "pure-provisioner"
        );
        assert_eq!(
            pv.metadata.finalizers.as_deref(),
            Some(&[FINALIZER.to_owned()][..])
        );
        let spec = pv.spec.as_ref().expect("spec");
        assert_eq!(spec.capacity.as_ref().expect("cap")["storage"].0, "10Gi");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("pure-block"));
        assert_eq!(
            spec.mount_options, None,
            "kubelet refuses mountOptions on flex PVs"
        );
        let claim_ref = spec.claim_ref.as_ref().expect("claimRef");
        assert_eq!(claim_ref.uid.as_deref(), Some(uid.as_str()));
        assert_eq!(claim_ref.namespace.as_deref(), Some("default"));
        assert_eq!(claim_ref.resource_version.as_deref(), Some("7"));
        let flex = spec.flex_volume.as_ref().expect("flex");
        assert_eq!(flex.driver, "pure/flex");
        assert_eq!(flex.fs_type.as_deref(), Some("ext4"));
        let opts = flex.options.as_ref().expect("options");
        assert_eq!(opts[options::MOUNT_OPTIONS], "discard");
        assert_eq!(opts[options::ARRAY_ID], "fa-id");
        let read = VolumeOptions::from_options(opts, "k8s").expect("driver can read it");
        assert_eq!(read.array_volume, format!("k8s-pvc-{uid}"));
        assert!(!opts.contains_key(options::PROTECTION_GROUP));
    }

    #[test]
    fn a_pv_of_a_replicated_class_records_its_protection_group() {
        let c = class(
            "pure-replicated",
            "pure-provisioner",
            &[("protectionGroup", "site-a-daily")],
        );
        let claim = pvc("data", "pure-replicated", "1Gi");
        let pv = build(&c, &claim, on_fa(1 << 30));
        let spec = pv.spec.as_ref().expect("spec");
        let opts = spec
            .flex_volume
            .as_ref()
            .and_then(|f| f.options.as_ref())
            .expect("options");
        assert_eq!(opts[options::PROTECTION_GROUP], "site-a-daily");
        VolumeOptions::from_options(opts, "k8s").expect("the driver ignores the key");
    }

    #[test]
    fn file_pv_is_nfs_shared_and_keeps_the_class_reclaim_policy() {
        let mut c = class("pure-file", "pure-provisioner", &[("backend", "file")]);
        c.reclaim_policy = Some("Retain".into());
        let mut claim = pvc("shared", "pure-file", "1Gi");
        claim.spec.get_or_insert_default().access_modes = Some(vec!["ReadWriteMany".into()]);
        let pv = build(
            &c,
            &claim,
            Placed {
                array_endpoint: "fb",
                array_id: "fb-id",
                nfs_endpoint: Some("10.0.1.6"),
                capacity: 1 << 30,
            },
        );
        let spec = pv.spec.expect("spec");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(
            spec.access_modes.as_deref(),
            Some(&["ReadWriteMany".to_owned()][..])
        );
        let flex = spec.flex_volume.expect("flex");
        assert_eq!(flex.fs_type.as_deref(), Some("nfs"));
        let opts = flex.options.expect("options");
        assert_eq!(opts[options::BACKEND], "file");
        assert_eq!(opts[options::ACCESS_MODE], "shared");
        assert_eq!(opts[options::NFS_ENDPOINT], "10.0.1.6");
    }

    #[test]
    fn an_adopted_object_is_named_and_retained_whatever_the_class_says() {
        let c = class("pure", "pure-provisioner", &[("allowAdoption", "true")]);
        let claim = pvc("legacy", "pure", "1Gi");
        let params = parse_class_params(&BTreeMap::new(), &[]).expect("valid");
        let settings = Settings::default();
        let modes = ["ReadWriteOnce".to_owned()];
        let pv = build_pv(&PvInputs {
            provisioner: "pure-provisioner",
            driver: "pure/flex",
            claim: &claim,
            class: &c,
            params: &params,
            settings: &settings,
            access_modes: &modes,
            shared: false,
            placed: Placed {
                array_endpoint: "a",
                array_id: "i",
                nfs_endpoint: None,
                capacity: 2 << 30,
            },
            adopted: Some("legacy-db"),
        });
        assert_eq!(
            pv.metadata.annotations.as_ref().expect("ann")[ANN_ADOPTED],
            "legacy-db"
        );
        let spec = pv.spec.expect("spec");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain"),
            "the class says Delete (its default)"
        );
        assert_eq!(spec.capacity.expect("cap")["storage"].0, "2Gi");
        let opts = spec.flex_volume.expect("flex").options.expect("options");
        let read = VolumeOptions::from_options(&opts, "k8s").expect("driver can read it");
        assert_eq!(read.array_volume, "legacy-db");
    }

    #[test]
    fn default_fs_type_comes_from_settings() {
        let c = class("pure", "pure-provisioner", &[]);
        let pv = build(
            &c,
            &pvc("d", "pure", "1Gi"),
            Placed {
                array_endpoint: "a",
                array_id: "i",
                nfs_endpoint: None,
                capacity: 1 << 30,
            },
        );
        assert_eq!(
            pv.spec
                .expect("spec")
                .flex_volume
                .expect("flex")
                .fs_type
                .as_deref(),
            Some("xfs")
        );
    }
}
