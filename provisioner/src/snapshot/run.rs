//! The `snapshot` commands carried out: a claim's volume found through the API (the claim, its
//! PV, [`crate::decide::source::claimed_volume`]) and on the arrays (the locate rule of
//! [`flashvol_common::locate`]), then snapshotted, listed or destroyed there.

use std::io::Write;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::Api;

use flashvol_common::locate::{LocateError, Located, Problem};
use flashvol_common::names;
use flashvol_common::options::{Backend, VolumeOptions};

use crate::arrays::{Array, ArraySet};
use crate::decide::source::{Ours, check_snapshot, claimed_volume, pv_volume};
use crate::reconcile::orphans::each_page;
use crate::reconcile::source::claim_and_volume;
use crate::snapshot::array_ops::{Snapshot, locate_snapshot, locate_volume};
use crate::snapshot::command::{Command, Failure};

/// What the commands act through; tests build it with the fake API and simulated arrays.
pub struct Setup {
    pub client: kube::Client,
    pub arrays: ArraySet,
    pub provisioner: String,
    pub driver: String,
    /// `namespace.pure`: the prefix of our array names.
    pub prefix: String,
    /// `eradicateOnDelete` of pure.json: `delete` eradicates too.
    pub eradicate: bool,
}

impl Setup {
    fn ours(&self) -> Ours<'_> {
        Ours {
            provisioner: &self.provisioner,
            driver: &self.driver,
            prefix: &self.prefix,
        }
    }
}

/// Runs one command; what it prints goes to `out`, a failure is returned for the caller to print.
pub async fn run(command: &Command, setup: &Setup, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        Command::Create { namespace, claim } => {
            let name = create(setup, namespace, claim).await?;
            writeln!(out, "{name}").map_err(|e| Failure::Failed(format!("stdout: {e}")))
        }
        Command::Delete { name } => delete(setup, name).await,
        Command::List {
            namespace,
            claim,
            no_headers,
        } => {
            list(
                setup,
                namespace.as_deref(),
                claim.as_deref(),
                !no_headers,
                out,
            )
            .await
        }
    }
}

fn kube_failed(what: &str, e: kube::Error) -> Failure {
    Failure::Failed(format!("cannot read {what} from Kubernetes: {e}"))
}

/// The volume of claim `namespace/claim`, when it is bound to a PV of ours.
async fn claim_volume(
    setup: &Setup,
    namespace: &str,
    claim: &str,
) -> Result<VolumeOptions, Failure> {
    let key = format!("{namespace}/{claim}");
    let (pvc, pv) = claim_and_volume(&setup.client, namespace, claim)
        .await
        .map_err(|(what, e)| kube_failed(&what, e))?;
    claimed_volume(
        &format!("claim {key}"),
        pvc.as_ref(),
        pv.as_ref(),
        setup.ours(),
    )
    .map_err(|e| Failure::Refused(e.to_string()))
}

/// The array holding a claim's volume ([`locate_volume`]).
async fn volume_array<'a>(setup: &'a Setup, volume: &VolumeOptions) -> Result<&'a Array, Failure> {
    let arrays: Vec<&Array> = setup.arrays.of(volume.backend).collect();
    match locate_volume(
        &arrays,
        &volume.array_volume,
        volume.backend,
        volume.array.as_ref(),
    )
    .await
    {
        Ok(Located::Destroyed(i)) => Err(Failure::Failed(format!(
            "{} {} is destroyed on {}",
            volume.backend.object_kind(),
            volume.array_volume,
            arrays[i].describe()
        ))),
        Ok(located) => Ok(arrays[located.array()]),
        Err(e) => Err(Failure::Failed(e.to_string())),
    }
}

/// `create -n <namespace> <claim>`: the new snapshot's name.
async fn create(setup: &Setup, namespace: &str, claim: &str) -> Result<String, Failure> {
    let volume = claim_volume(setup, namespace, claim).await?;
    let array = volume_array(setup, &volume).await?;
    array
        .create_snapshot(&volume.array_volume)
        .await
        .map(|s| s.name)
        .map_err(|e| {
            Failure::Failed(format!(
                "cannot snapshot {} on {}: {e}",
                volume.array_volume,
                array.describe()
            ))
        })
}

/// `delete <name>`: destroys a snapshot of one of our volumes wherever it is. Deleting one that
/// is already destroyed succeeds (a repeated delete converges); one that exists nowhere is
/// refused.
async fn delete(setup: &Setup, name: &str) -> Result<(), Failure> {
    let Some(of) = names::snapshot_source(name) else {
        return Err(Failure::Usage(format!(
            "{name:?} is not a snapshot name (<volume>.<suffix>, as `create` prints it)"
        )));
    };
    if let Some(group) = of.group {
        let suffix = name.split('.').nth(1).unwrap_or_default();
        return Err(Failure::Refused(format!(
            "{name} is part of the protection group snapshot {group}.{suffix}, which the array \
             manages; destroy that on the array"
        )));
    }
    check_snapshot(name, &setup.prefix).map_err(|e| Failure::Refused(e.to_string()))?;
    for backend in [Backend::Block, Backend::File] {
        let arrays: Vec<&Array> = setup.arrays.of(backend).collect();
        if arrays.is_empty() {
            continue;
        }
        let array = match locate_snapshot(&arrays, name, backend).await {
            Ok(Located::Destroyed(_)) => return Ok(()),
            Ok(located) => arrays[located.array()],
            Err(LocateError {
                problem: Problem::NotFound { .. },
                ..
            }) => continue,
            Err(e) => return Err(Failure::Failed(format!("snapshot {name}: {e}"))),
        };
        array
            .destroy_snapshot(name, setup.eradicate)
            .await
            .map_err(|e| {
                Failure::Failed(format!(
                    "cannot destroy snapshot {name} on {}: {e}",
                    array.describe()
                ))
            })?;
        return Ok(());
    }
    Err(Failure::Refused(format!(
        "snapshot {name} does not exist on any configured array"
    )))
}

/// One claim whose snapshots are listed.
struct Listed {
    namespace: String,
    claim: String,
    volume: VolumeOptions,
}

/// The claims to list: one named claim, or every claim bound to a PV of ours (in `namespace`).
async fn claims_to_list(
    setup: &Setup,
    namespace: Option<&str>,
    claim: Option<&str>,
) -> Result<Vec<Listed>, Failure> {
    if let Some(claim) = claim {
        let namespace = namespace.unwrap_or("default");
        let volume = claim_volume(setup, namespace, claim).await?;
        return Ok(vec![Listed {
            namespace: namespace.to_owned(),
            claim: claim.to_owned(),
            volume,
        }]);
    }
    let pvs = Api::<PersistentVolume>::all(setup.client.clone());
    let mut listed = Vec::new();
    each_page(
        |params| {
            let pvs = pvs.clone();
            async move { pvs.list(&params).await }
        },
        |page| {
            for pv in page {
                let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
                    continue;
                };
                let (Some(ns), Some(name)) = (&claim_ref.namespace, &claim_ref.name) else {
                    continue;
                };
                if namespace.is_some_and(|wanted| wanted != ns) {
                    continue;
                }
                let key = format!("claim {ns}/{name}");
                let pv_name = pv.metadata.name.clone().unwrap_or_default();
                if let Ok(volume) = pv_volume(&key, &pv_name, Some(&pv), setup.ours()) {
                    listed.push(Listed {
                        namespace: ns.clone(),
                        claim: name.clone(),
                        volume,
                    });
                }
            }
        },
    )
    .await
    .map_err(|e| kube_failed("PVs", e))?;
    Ok(listed)
}

/// `list [-n <namespace>] [<claim>]`: a header and one tab-separated line per live snapshot.
/// Claims whose array cannot answer are returned as one failure, after the others are printed.
async fn list(
    setup: &Setup,
    namespace: Option<&str>,
    claim: Option<&str>,
    headers: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let claims = claims_to_list(setup, namespace, claim).await?;
    let mut rows: Vec<(String, String, Snapshot, String)> = Vec::new();
    let mut problems = Vec::new();
    for c in claims {
        let array = match volume_array(setup, &c.volume).await {
            Ok(array) => array,
            Err(e) => {
                problems.push(format!("claim {}/{}: {e}", c.namespace, c.claim));
                continue;
            }
        };
        match array.snapshots_of(&c.volume.array_volume).await {
            Ok(snapshots) => rows.extend(snapshots.into_iter().filter(|s| !s.destroyed).map(|s| {
                (
                    c.namespace.clone(),
                    c.claim.clone(),
                    s,
                    array.endpoint.clone(),
                )
            })),
            Err(e) => problems.push(format!(
                "claim {}/{}: cannot list the snapshots of {} on {}: {e}",
                c.namespace,
                c.claim,
                c.volume.array_volume,
                array.describe()
            )),
        }
    }
    rows.sort_by(|a, b| {
        (&a.0, &a.1, &a.2.created, &a.2.name).cmp(&(&b.0, &b.1, &b.2.created, &b.2.name))
    });
    let mut text = String::new();
    if headers {
        text.push_str("NAMESPACE\tCLAIM\tSNAPSHOT\tCREATED\tSIZE\tARRAY\n");
    }
    for (ns, claim, s, array) in &rows {
        let size = s.size.map_or_else(|| "-".to_owned(), |b| b.to_string());
        let created = s.created.as_deref().unwrap_or("-");
        text.push_str(&format!(
            "{ns}\t{claim}\t{}\t{created}\t{size}\t{array}\n",
            s.name
        ));
    }
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::Failed(format!("stdout: {e}")))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(problems.join("\n")))
    }
}
