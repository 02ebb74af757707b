//! The `snapshot` command line: PSO 2.x's `create -n <namespace> <claim>` and `delete <name>`,
//! plus `list`, and what each outcome exits with.

use clap::{Parser, Subcommand};

use crate::args::Instance;

/// What the command ends with; the exit status is [`Failure::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Kubernetes, an array or the configuration failed; trying again later may work (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The arguments are wrong (exit 2; clap's own usage errors exit 2 too).
    #[error("{0}")]
    Usage(String),
    /// Refused: the claim or snapshot does not exist, is not bound, or is not one this
    /// provisioner manages (exit 3).
    #[error("{0}")]
    Refused(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Failed(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Refused(_) => 3,
        }
    }
}

const EXIT_CODES: &str = "\
Exit status:
  0  done (create printed the snapshot name; delete prints nothing)
  1  Kubernetes, an array or the configuration failed (the message says which); try again later
  2  wrong arguments
  3  refused: the claim or snapshot does not exist, the claim is not bound, or it is not a volume
     this provisioner manages

Run it in the provisioner's pod, where it uses the provisioner's pure.json and ServiceAccount:
  kubectl exec -n <ns> deploy/pure-provisioner -- snapshot create -n <claim namespace> <claim>";

/// Snapshots of the FlashArray volumes and FlashBlade file systems behind claims, as PSO 2.x's
/// snapshot CLI made them. Restore one into a new claim with the annotation
/// snapshot.beta.purestorage.com/name: <snapshot name> (FlashArray).
#[derive(Debug, Clone, Parser)]
#[command(name = "snapshot", version, after_help = EXIT_CODES)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub instance: Instance,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Snapshot a claim's volume; prints the snapshot's name (`k8s-pvc-<uid>.<n>`).
    Create {
        /// The claim's namespace.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// The claim.
        claim: String,
    },
    /// Destroy a snapshot (recoverable on the array for 24 h unless pure.json says
    /// eradicateOnDelete); prints nothing.
    Delete {
        /// The snapshot's name, as `create` or `list` printed it.
        name: String,
    },
    /// List the snapshots of our claims' volumes: one line per snapshot, tab-separated
    /// NAMESPACE, CLAIM, SNAPSHOT, CREATED (UTC, ISO 8601), SIZE (bytes, `-` on FlashBlade),
    /// ARRAY (its management endpoint), after a header line; sorted by namespace, claim, creation
    /// time. Snapshots the arrays took themselves (protection group schedules) are included.
    List {
        /// Only claims in this namespace (default: all namespaces).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Only this claim (in `--namespace`, default `default`).
        claim: Option<String>,
        /// Leave out the header line.
        #[arg(long)]
        no_headers: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SnapshotArgs, clap::Error> {
        SnapshotArgs::try_parse_from(std::iter::once("snapshot").chain(args.iter().copied()))
    }

    #[test]
    fn psos_commands_parse_unchanged() {
        let a = parse(&["create", "-n", "k8s_ns1", "pvc1"]).expect("create");
        assert!(matches!(
            a.command,
            Command::Create { ref namespace, ref claim } if namespace == "k8s_ns1" && claim == "pvc1"
        ));
        let a = parse(&[
            "delete",
            "k8s-pvc-b9dd0972-c8b3-11e7-9ee8-fa163eb1e272.883661",
        ])
        .expect("delete");
        assert!(matches!(a.command, Command::Delete { ref name } if name.ends_with(".883661")));
        let a = parse(&["create", "pvc1"]).expect("namespace defaults like kubectl's");
        assert!(
            matches!(a.command, Command::Create { ref namespace, .. } if namespace == "default")
        );
    }

    #[test]
    fn list_takes_an_optional_namespace_and_claim() {
        let a = parse(&["list"]).expect("list");
        assert!(matches!(
            a.command,
            Command::List {
                namespace: None,
                claim: None,
                no_headers: false
            }
        ));
        let a = parse(&["list", "-n", "ns", "data", "--no-headers"]).expect("list");
        assert!(matches!(
            a.command,
            Command::List {
                namespace: Some(_),
                claim: Some(_),
                no_headers: true
            }
        ));
    }

    #[test]
    fn wrong_arguments_exit_2_and_the_help_documents_exit_codes() {
        let err = parse(&["create"]).expect_err("claim missing");
        assert_eq!(err.exit_code(), 2);
        assert_eq!(parse(&["snap"]).expect_err("unknown").exit_code(), 2);
        use clap::CommandFactory;
        let help = SnapshotArgs::command().render_long_help().to_string();
        assert!(
            help.contains("Exit status") && help.contains("3  refused"),
            "{help}"
        );
        assert_eq!(Failure::Refused(String::new()).exit_code(), 3);
        assert_eq!(Failure::Failed(String::new()).exit_code(), 1);
    }
}
