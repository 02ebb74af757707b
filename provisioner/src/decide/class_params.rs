//! StorageClass parameters: parsed strictly into [`ClassParams`].
//!
//! Owns the list of supported keys and their ranges. An unknown key, a block-only key on a file
//! class (or the reverse) or a value out of range is an error naming the key, reported to the
//! user as a `ProvisioningFailed` event; nothing is silently ignored.
//!
//! | key | backend | value |
//! |---|---|---|
//! | `backend` | both | `block` (default) or `file` |
//! | `fsType` | block | `xfs`, `ext4`, `ext3` (default from settings); `nfs` is accepted on file |
//! | `createOptions` | block | mkfs options for the first format |
//! | `iops_limit` | block | 100 ..= 100 000 000 IOPS (a quantity: `5000`, `10k`) |
//! | `bandwidth_limit` | block | 1 MiB/s ..= 512 GiB/s in bytes per second, a quantity: `100M` = 100 000 000 B/s, `100Mi` = 104 857 600 B/s |
//! | `exportRules` | file | NFS export rules, e.g. `10.0.0.0/24(rw,no_root_squash)` |
//! | `hardLimit` | file | `true`/`false`: enforce the claim size as a quota (default from settings) |
//! | `protectionGroup` | block | an existing protection group on the arrays (Purity name: 1-63 letters, digits or `-`); every new volume joins it ([`crate::reconcile::replication`]) |
//! | `allowAdoption` | both | `true`/`false` (default): claims of this class may adopt an existing array object (annotation `flashvol.io/adopt`, [`crate::decide::source`]) |
//!
//! Mount options come from the class's own `mountOptions` field, not from parameters.

use std::collections::BTreeMap;

use flashvol_common::config::{FsType, parse_bool, validate_export_rules, validate_mount_options};
use flashvol_common::flasharray::Qos;
use flashvol_common::options::{Backend, is_valid_pgroup_name};

use crate::decide::quantity::parse_quantity;

pub const BACKEND: &str = "backend";
pub const FS_TYPE: &str = "fsType";
pub const CREATE_OPTIONS: &str = "createOptions";
pub const IOPS_LIMIT: &str = "iops_limit";
pub const BANDWIDTH_LIMIT: &str = "bandwidth_limit";
pub const EXPORT_RULES: &str = "exportRules";
pub const HARD_LIMIT: &str = "hardLimit";
pub const ALLOW_ADOPTION: &str = "allowAdoption";
pub const PROTECTION_GROUP: &str = "protectionGroup";

/// Keys valid on every class.
const ANY_BACKEND: [&str; 2] = [BACKEND, ALLOW_ADOPTION];

/// Keys valid on FlashArray (block) classes only.
const BLOCK_ONLY: [&str; 5] = [
    FS_TYPE,
    CREATE_OPTIONS,
    IOPS_LIMIT,
    BANDWIDTH_LIMIT,
    PROTECTION_GROUP,
];
/// Keys valid on FlashBlade (file) classes only.
const FILE_ONLY: [&str; 2] = [EXPORT_RULES, HARD_LIMIT];

pub const IOPS_RANGE: std::ops::RangeInclusive<u64> = 100..=100_000_000;
pub const BANDWIDTH_RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(512 << 30);

/// A StorageClass the provisioner cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error("StorageClass parameter {key:?} is not supported (supported: {supported})")]
    UnknownKey { key: String, supported: String },
    #[error(
        "StorageClass parameter {key:?} applies to {applies_to} classes only, this class has backend {backend}"
    )]
    WrongBackend {
        key: String,
        applies_to: Backend,
        backend: Backend,
    },
    #[error("StorageClass parameter {key:?}: {problem}")]
    Invalid { key: String, problem: String },
}

/// What a class asks for, validated. `None` means "use the setting's default".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassParams {
    pub backend: Backend,
    pub fs_type: Option<FsType>,
    pub create_options: Option<String>,
    /// From the class's `mountOptions` field, comma-joined and validated.
    pub mount_options: Option<String>,
    pub qos: Qos,
    pub export_rules: Option<String>,
    pub hard_limit: Option<bool>,
    /// Claims may adopt an existing array object: only where an administrator said so, since the
    /// annotation names any object on the arrays.
    pub allow_adoption: bool,
    /// The protection group every new volume of the class joins. An administrator makes,
    /// targets and schedules it; flashvol only adds volumes.
    pub protection_group: Option<String>,
}

fn invalid(key: &str, problem: impl Into<String>) -> ClassError {
    ClassError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

fn supported_keys() -> String {
    ANY_BACKEND
        .iter()
        .chain(BLOCK_ONLY.iter())
        .chain(FILE_ONLY.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

fn limit_in(
    key: &str,
    raw: &str,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ClassError> {
    let value = parse_quantity(raw).map_err(|e| invalid(key, e.to_string()))?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            key,
            format!(
                "{raw:?} = {value} {unit} is outside {} ..= {} {unit}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Validates a class's `parameters` and `mountOptions`.
pub fn parse_class_params(
    parameters: &BTreeMap<String, String>,
    mount_options: &[String],
) -> Result<ClassParams, ClassError> {
    for key in parameters.keys() {
        let known = ANY_BACKEND.contains(&key.as_str())
            || BLOCK_ONLY.contains(&key.as_str())
            || FILE_ONLY.contains(&key.as_str());
        if !known {
            return Err(ClassError::UnknownKey {
                key: key.clone(),
                supported: supported_keys(),
            });
        }
    }
    let backend = match parameters.get(BACKEND) {
        Some(raw) => raw.parse().map_err(|e: String| invalid(BACKEND, e))?,
        None => Backend::Block,
    };
    let (foreign, foreign_backend) = match backend {
        Backend::Block => (&FILE_ONLY[..], Backend::File),
        Backend::File => (&BLOCK_ONLY[..], Backend::Block),
    };
    // `fsType: nfs` on a file class is harmless (it is what the PV will say); anything else is not.
    let nfs_fs_type_on_file = |key: &str| {
        backend == Backend::File
            && key == FS_TYPE
            && parameters
                .get(FS_TYPE)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("nfs"))
    };
    if let Some(key) = parameters
        .keys()
        .find(|k| foreign.contains(&k.as_str()) && !nfs_fs_type_on_file(k))
    {
        return Err(ClassError::WrongBackend {
            key: key.clone(),
            applies_to: foreign_backend,
            backend,
        });
    }
    let get = |key: &str| parameters.get(key).map(|v| v.trim());

    let fs_type = match get(FS_TYPE) {
        Some(raw) if backend == Backend::Block => {
            Some(raw.parse().map_err(|e: String| invalid(FS_TYPE, e))?)
        }
        _ => None,
    };
    let create_options = get(CREATE_OPTIONS)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    if let Some(opts) = &create_options
        && opts
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\'')
    {
        return Err(invalid(
            CREATE_OPTIONS,
            format!("{opts:?} contains quotes or control characters"),
        ));
    }
    let qos = Qos {
        iops_limit: get(IOPS_LIMIT)
            .map(|raw| limit_in(IOPS_LIMIT, raw, IOPS_RANGE, "IOPS"))
            .transpose()?,
        bandwidth_limit: get(BANDWIDTH_LIMIT)
            .map(|raw| limit_in(BANDWIDTH_LIMIT, raw, BANDWIDTH_RANGE, "bytes/s"))
            .transpose()?,
    };
    let export_rules = get(EXPORT_RULES)
        .map(|raw| validate_export_rules(raw).map_err(|e| invalid(EXPORT_RULES, e)))
        .transpose()?;
    let hard_limit = get(HARD_LIMIT)
        .map(|raw| {
            parse_bool(raw)
                .ok_or_else(|| invalid(HARD_LIMIT, format!("{raw:?} is not true or false")))
        })
        .transpose()?;
    let allow_adoption = get(ALLOW_ADOPTION)
        .map(|raw| {
            parse_bool(raw)
                .ok_or_else(|| invalid(ALLOW_ADOPTION, format!("{raw:?} is not true or false")))
        })
        .transpose()?
        .unwrap_or(false);
    let protection_group = get(PROTECTION_GROUP)
        .map(|raw| {
            if is_valid_pgroup_name(raw) {
                Ok(raw.to_owned())
            } else {
                Err(invalid(
                    PROTECTION_GROUP,
                    format!(
                        "{raw:?} is not a protection group name: 1-63 letters, digits or '-', starting and ending with a letter or digit (a group an administrator made on the arrays, not a replica <array>:<group>)"
                    ),
                ))
            }
        })
        .transpose()?;
    let mount_options =
        validate_mount_options(&mount_options.join(",")).map_err(|e| invalid("mountOptions", e))?;
    Ok(ClassParams {
        backend,
        fs_type,
        create_options,
        mount_options: Some(mount_options).filter(|m| !m.is_empty()),
        qos,
        export_rules,
        hard_limit,
        allow_adoption,
        protection_group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_empty_class_is_block_with_defaults() {
        let p = parse_class_params(&BTreeMap::new(), &[]).expect("valid");
        assert_eq!(p.backend, Backend::Block);
        assert_eq!(p.fs_type, None);
        assert_eq!(p.qos, Qos::default());
        assert_eq!(p.mount_options, None);
        assert!(
            !p.allow_adoption,
            "adoption is off unless a class allows it"
        );
    }

    #[test]
    fn adoption_is_allowed_per_class_on_either_backend() {
        for backend in ["block", "file"] {
            let p = parse_class_params(
                &params(&[("backend", backend), ("allowAdoption", "true")]),
                &[],
            )
            .expect("valid");
            assert!(p.allow_adoption, "{backend}");
        }
        let err = parse_class_params(&params(&[("allowAdoption", "yes please")]), &[])
            .expect_err("must be refused");
        assert!(err.to_string().contains("allowAdoption"), "{err}");
    }

    #[test]
    fn block_class_with_every_block_parameter() {
        let p = parse_class_params(
            &params(&[
                ("backend", "block"),
                ("fsType", "ext4"),
                ("createOptions", "-E nodiscard"),
                ("iops_limit", "10k"),
                ("bandwidth_limit", "100M"),
            ]),
            &["discard".into(), " noatime".into()],
        )
        .expect("valid");
        assert_eq!(p.fs_type, Some(FsType::Ext4));
        assert_eq!(p.create_options.as_deref(), Some("-E nodiscard"));
        assert_eq!(p.qos.iops_limit, Some(10_000));
        assert_eq!(p.qos.bandwidth_limit, Some(100_000_000));
        assert_eq!(p.mount_options.as_deref(), Some("discard,noatime"));
    }

    #[test]
    fn file_class_with_export_rules_and_hard_limit() {
        let p = parse_class_params(
            &params(&[
                ("backend", "file"),
                ("exportRules", "10.0.0.0/24(rw,no_root_squash)"),
                ("hardLimit", "false"),
                ("fsType", "nfs"),
            ]),
            &["vers=4.1".into()],
        )
        .expect("valid");
        assert_eq!(p.backend, Backend::File);
        assert_eq!(
            p.export_rules.as_deref(),
            Some("10.0.0.0/24(rw,no_root_squash)")
        );
        assert_eq!(p.hard_limit, Some(false));
        assert_eq!(p.fs_type, None);
    }

    #[test]
    fn unknown_key_is_named() {
        let err =
            parse_class_params(&params(&[("backnd", "file")]), &[]).expect_err("must be refused");
        assert!(matches!(&err, ClassError::UnknownKey { key, .. } if key == "backnd"));
        assert!(err.to_string().contains("backnd") && err.to_string().contains("supported"));
    }

    #[test]
    fn parameters_of_the_other_backend_are_refused_by_name() {
        let err = parse_class_params(&params(&[("backend", "file"), ("iops_limit", "1000")]), &[])
            .expect_err("must be refused");
        assert!(
            matches!(&err, ClassError::WrongBackend { key, .. } if key == "iops_limit"),
            "{err}"
        );
        let err = parse_class_params(&params(&[("exportRules", "*(rw)")]), &[])
            .expect_err("must be refused");
        assert!(
            matches!(&err, ClassError::WrongBackend { key, .. } if key == "exportRules"),
            "{err}"
        );
        let err = parse_class_params(&params(&[("backend", "file"), ("fsType", "xfs")]), &[])
            .expect_err("must be refused");
        assert!(
            matches!(&err, ClassError::WrongBackend { key, .. } if key == "fsType"),
            "{err}"
        );
    }

    #[test]
    fn qos_limits_are_range_checked() {
        for (key, raw) in [
            (IOPS_LIMIT, "99"),
            (IOPS_LIMIT, "100000001"),
            (IOPS_LIMIT, "lots"),
            (BANDWIDTH_LIMIT, "1000000"),
            (BANDWIDTH_LIMIT, "513Gi"),
            (BANDWIDTH_LIMIT, "-1G"),
        ] {
            let err = parse_class_params(&params(&[(key, raw)]), &[]).expect_err("must be refused");
            assert!(
                matches!(&err, ClassError::Invalid { key: k, .. } if k == key),
                "{key}={raw}: {err}"
            );
        }
        for (key, raw) in [
            (IOPS_LIMIT, "100"),
            (IOPS_LIMIT, "100000000"),
            (BANDWIDTH_LIMIT, "1Mi"),
            (BANDWIDTH_LIMIT, "512Gi"),
        ] {
            assert!(
                parse_class_params(&params(&[(key, raw)]), &[]).is_ok(),
                "{key}={raw}"
            );
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, raw) in [
            (BACKEND, "tape"),
            (FS_TYPE, "zfs"),
            (HARD_LIMIT, "maybe"),
            (EXPORT_RULES, "10.0.0.0/24"),
            (CREATE_OPTIONS, "-L 'x'"),
        ] {
            let mut p = params(&[(key, raw)]);
            if [HARD_LIMIT, EXPORT_RULES].contains(&key) {
                p.insert(BACKEND.into(), "file".into());
            }
            let err = parse_class_params(&p, &[]).expect_err("must be refused");
            assert!(
                matches!(&err, ClassError::Invalid { key: k, .. } if k == key),
                "{key}={raw}: {err}"
            );
        }
        let err =
            parse_class_params(&BTreeMap::new(), &["a b".into()]).expect_err("must be refused");
        assert!(err.to_string().contains("mountOptions"), "{err}");
    }

    #[test]
    fn a_protection_group_is_a_purity_name_on_block_classes_only() {
        let p = parse_class_params(&params(&[(PROTECTION_GROUP, " site-a-daily ")]), &[])
            .expect("valid");
        assert_eq!(p.protection_group.as_deref(), Some("site-a-daily"));
        assert_eq!(
            parse_class_params(&BTreeMap::new(), &[])
                .expect("valid")
                .protection_group,
            None
        );
        for bad in [
            "",
            "daily_",
            "-daily",
            "site-a:daily",
            "pod::daily",
            &"g".repeat(64),
        ] {
            let err = parse_class_params(&params(&[(PROTECTION_GROUP, bad)]), &[])
                .expect_err("must be refused");
            assert!(
                matches!(&err, ClassError::Invalid { key, .. } if key == PROTECTION_GROUP),
                "{bad:?}: {err}"
            );
            assert!(err.to_string().contains("protection group name"), "{err}");
        }
        let err = parse_class_params(
            &params(&[("backend", "file"), (PROTECTION_GROUP, "daily")]),
            &[],
        )
        .expect_err("must be refused");
        assert!(
            matches!(&err, ClassError::WrongBackend { key, .. } if key == PROTECTION_GROUP),
            "{err}"
        );
    }
}
