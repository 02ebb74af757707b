//! flashvol-provisioner: turns pure-provisioner PVCs into array volumes and flex PVs.
//!
//! Only parses flags, sets up logging and maps the outcome to an exit code; see
//! [`flashvol_provisioner::args`] and [`flashvol_provisioner::app`]. Started as `snapshot` (the
//! image's hard link), it is the snapshot CLI instead ([`flashvol_provisioner::snapshot`]).

use std::process::ExitCode;

use clap::Parser;
use flashvol_provisioner::app::run;
use flashvol_provisioner::args::{Args, drop_glog_flags};
use flashvol_provisioner::snapshot;

/// jemalloc, not glibc's malloc: after three bursts of 1,000 claims the benchmark measured 40 MiB
/// RSS with 10,000 claims and PVs cached under jemalloc and 53 MiB under glibc, whose per-thread
/// arenas keep what a burst freed (bench/results/REPORT.md). Built with background threads on
/// (the `background_threads` feature): they return an idle arena's freed pages to the kernel;
/// without them only a thread that allocates again purges its arena, so the array workers'
/// arenas kept a burst's garbage while the process sat idle. `flashvol_heap_bytes` shows the
/// effect, the start-up log the settings.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    // The image's `/snapshot` is this binary (PSO 2.x's snapshot CLI, see `snapshot`).
    if let Some(command) = snapshot::invocation(&argv) {
        return snapshot::main(command).await;
    }
    let (argv, ignored) = drop_glog_flags(argv);
    let args = Args::parse_from(argv);
    flashvol_provisioner::serve::logging::init(args.debug);
    if !ignored.is_empty() {
        log::info!("ignoring PSO glog flags {ignored:?}: logs go to stderr");
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", render_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping a cause whose text the message before it already contains
/// (the common crate's errors include their source in their own text).
fn render_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
