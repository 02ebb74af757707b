//! What provisioning a claim creates, decided before any array is asked: the class's parameters,
//! the claim's size, access modes and selector, checked; the array volume's name and size; and
//! what the array is asked to create, with the class's choices filled in from the defaults in
//! `pure.json`.
//!
//! Pure: [`crate::reconcile::provision`] publishes the events, asks the arrays and creates the PV.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use flashvol_common::config::Settings;
use flashvol_common::flasharray::Qos;
use flashvol_common::flashblade::NewFileSystem;
use flashvol_common::names;
use flashvol_common::options::Backend;

use crate::decide::claim::{ClaimError, access_modes, requested_bytes};
use crate::decide::class_params::{ClassError, ClassParams, parse_class_params};
use crate::decide::placement::{SelectorError, validate_selector};
use crate::decide::quantity::allocated_size;

/// A claim and its class, checked and resolved into what to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'a> {
    pub params: ClassParams,
    /// The claim's access modes, valid on the backend.
    pub access_modes: Vec<String>,
    /// Whether any access mode is shared (RWX/ROX).
    pub shared: bool,
    /// The claim's `spec.selector`, validated; placement filters arrays by it.
    pub selector: Option<&'a LabelSelector>,
    /// `<prefix>-<PV name>`: the same for every attempt, which makes provisioning idempotent.
    pub array_name: String,
    /// Bytes to ask the array for: the request rounded up to what the backend allocates.
    pub size: u64,
}

/// What the array is asked to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewVolume {
    /// A FlashArray volume of [`Plan::array_name`] and [`Plan::size`], with these limits.
    Block(Qos),
    /// A FlashBlade file system.
    File(NewFileSystem),
}

/// Why a claim cannot be provisioned as it stands; the text goes into a `ProvisioningFailed`
/// event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("StorageClass {class}: {error}")]
    Class { class: String, error: ClassError },
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error(transparent)]
    Selector(#[from] SelectorError),
}

impl PlanError {
    /// Metric label: `class` when the StorageClass is at fault, `claim` when the claim is.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Class { .. } => "class",
            Self::Claim(_) | Self::Selector(_) => "claim",
        }
    }
}

/// Checks the class, then the claim's size, access modes and selector (the first problem wins),
/// and names the array volume after the PV.
pub fn plan_volume<'a>(
    pvc: &'a PersistentVolumeClaim,
    class: &StorageClass,
    name_prefix: &str,
    pv_name: &str,
) -> Result<Plan<'a>, PlanError> {
    let params = parse_class_params(
        class.parameters.as_ref().unwrap_or(&Default::default()),
        class.mount_options.as_deref().unwrap_or_default(),
    )
    .map_err(|error| PlanError::Class {
        class: class.metadata.name.clone().unwrap_or_default(),
        error,
    })?;
    let requested = requested_bytes(pvc)?;
    let (access_modes, shared) = access_modes(pvc, params.backend)?;
    let selector = pvc.spec.as_ref().and_then(|s| s.selector.as_ref());
    if let Some(s) = selector {
        validate_selector(s)?;
    }
    Ok(Plan {
        size: allocated_size(params.backend, requested),
        array_name: names::array_name(name_prefix, pv_name),
        params,
        access_modes,
        shared,
        selector,
    })
}

impl Plan<'_> {
    /// What to create: the class's QoS for a volume; for a file system the class's export rules
    /// and hard limit, else the defaults of `pure.json`, with NFSv3 and NFSv4.1 both on.
    pub fn new_volume(&self, settings: &Settings) -> NewVolume {
        match self.params.backend {
            Backend::Block => NewVolume::Block(self.params.qos),
            Backend::File => NewVolume::File(NewFileSystem {
                name: self.array_name.clone(),
                provisioned: self.size,
                hard_limit: self.params.hard_limit.unwrap_or(settings.file.hard_limit),
                snapshot_directory: settings.file.snapshot_directory,
                nfs_rules: self
                    .params
                    .export_rules
                    .clone()
                    .unwrap_or_else(|| settings.file.export_rules.clone()),
                nfs_v3: true,
                nfs_v4_1: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::quantity::MIN_VOLUME_BYTES;
    use crate::tests::fixtures::{class, pvc};

    fn plan<'a>(claim: &'a PersistentVolumeClaim, class: &StorageClass) -> Plan<'a> {
        plan_volume(claim, class, "k8s", "pvc-1").expect("valid")
    }

    #[test]
    fn a_block_volume_is_named_after_the_pv_sized_as_allocated_and_keeps_the_class_limits() {
        let c = class(
            "pure",
            "pure-provisioner",
            &[("iops_limit", "5000"), ("bandwidth_limit", "100Mi")],
        );
        let claim = pvc("data", "pure", "1000");
        let p = plan(&claim, &c);
        assert_eq!(p.array_name, "k8s-pvc-1");
        assert_eq!(
            p.size, MIN_VOLUME_BYTES,
            "rounded up to the smallest volume"
        );
        assert_eq!(p.access_modes, ["ReadWriteOnce"]);
        assert!(!p.shared && p.selector.is_none());
        assert_eq!(
            p.new_volume(&Settings::default()),
            NewVolume::Block(Qos {
                bandwidth_limit: Some(100 << 20),
                iops_limit: Some(5000),
            })
        );
    }

    #[test]
    fn a_file_system_takes_the_defaults_of_pure_json_where_the_class_says_nothing() {
        let c = class("pure-file", "pure-provisioner", &[("backend", "file")]);
        let claim = pvc("data", "pure-file", "1Gi");
        let mut settings = Settings::default();
        settings.file.hard_limit = false;
        settings.file.snapshot_directory = true;
        settings.file.export_rules = "10.0.0.0/8(rw)".into();
        assert_eq!(
            plan(&claim, &c).new_volume(&settings),
            NewVolume::File(NewFileSystem {
                name: "k8s-pvc-1".into(),
                provisioned: 1 << 30,
                hard_limit: false,
                snapshot_directory: true,
                nfs_rules: "10.0.0.0/8(rw)".into(),
                nfs_v3: true,
                nfs_v4_1: true,
            })
        );
    }

    #[test]
    fn the_class_overrides_the_file_system_defaults() {
        let c = class(
            "pure-file",
            "pure-provisioner",
            &[
                ("backend", "file"),
                ("hardLimit", "false"),
                ("exportRules", "10.1.0.0/16(ro)"),
            ],
        );
        let claim = pvc("data", "pure-file", "1Gi");
        let NewVolume::File(fs) = plan(&claim, &c).new_volume(&Settings::default()) else {
            panic!("a file class creates a file system");
        };
        assert!(!fs.hard_limit, "the default is true");
        assert_eq!(fs.nfs_rules, "10.1.0.0/16(ro)");
    }

    #[test]
    fn the_class_is_checked_before_the_claim_and_each_failure_names_its_reason() {
        let bad_class = class("pure", "pure-provisioner", &[("color", "blue")]);
        let bad_claim = pvc("data", "pure", "0");
        let err = plan_volume(&bad_claim, &bad_class, "k8s", "pvc-1").expect_err("refused");
        assert_eq!(err.reason(), "class");
        assert!(
            err.to_string().starts_with("StorageClass pure: ") && err.to_string().contains("color"),
            "{err}"
        );
        let good_class = class("pure", "pure-provisioner", &[]);
        let err = plan_volume(&bad_claim, &good_class, "k8s", "pvc-1").expect_err("refused");
        assert_eq!(err.reason(), "claim");
        assert_eq!(
            err.to_string(),
            requested_bytes(&bad_claim).expect_err("zero").to_string()
        );
    }

    #[test]
    fn shared_access_on_a_block_class_and_a_malformed_selector_are_the_claims_fault() {
        let c = class("pure", "pure-provisioner", &[]);
        let mut shared = pvc("data", "pure", "1Gi");
        shared.spec.get_or_insert_default().access_modes = Some(vec!["ReadWriteMany".into()]);
        let err = plan_volume(&shared, &c, "k8s", "pvc-1").expect_err("refused");
        assert!(matches!(
            err,
            PlanError::Claim(ClaimError::SharedBlock { .. })
        ));
        let mut selecting = pvc("data", "pure", "1Gi");
        selecting.spec.get_or_insert_default().selector = Some(LabelSelector {
            match_expressions: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "Gt".into(),
                    values: Some(vec!["1".into()]),
                },
            ]),
            match_labels: None,
        });
        let err = plan_volume(&selecting, &c, "k8s", "pvc-1").expect_err("refused");
        assert_eq!(err.reason(), "claim");
        assert!(err.to_string().contains("Gt"), "{err}");
    }
}
