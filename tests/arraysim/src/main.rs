//! flashvol-arraysim command line: start the arrays described by flags or `--config`, print one
//! JSON line per array (so scripts can find ports picked with `:0`), serve until SIGINT/SIGTERM.

use anyhow::{Context, Result};
use clap::Parser;
use flashvol_arraysim::SimHandle;
use flashvol_arraysim::cli::Cli;

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let specs = cli.specs()?;
    let mut handles = Vec::new();
    for spec in specs {
        let name = spec.name.clone();
        let handle = SimHandle::start(spec).with_context(|| format!("starting array {name}"))?;
        println!(
            "{}",
            serde_json::json!({
                "name": name,
                "kind": handle.spec().kind.label(),
                "endpoint": handle.endpoint(),
                "ca_cert": handle.ca_cert_path(),
                "admin_url": handle.admin_url(),
            })
        );
        handles.push(handle);
    }
    wait_for_signal()?;
    for handle in handles {
        handle.stop();
    }
    Ok(())
}

fn wait_for_signal() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}
