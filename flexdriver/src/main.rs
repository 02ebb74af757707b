//! flashvol-flex: kubelet's FlexVolume call-outs for Pure FlashArray and FlashBlade, and the
//! commands people run: `install`/`uninstall` (the DaemonSet's node installer) and `doctor`
//! (plus `enter-namespace`, the installer's own helper for collecting leftovers).
//!
//! For a call-out, exactly one JSON document reaches stdout, whatever happens: stdio is taken
//! over first, a panic hook answers Failure, and the reply is written once at the end.

#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use flashvol_flexdriver::callout::{self, Environment};
use flashvol_flexdriver::kubelet::invocation::{self, Program};
use flashvol_flexdriver::kubelet::reply::Reply;
use flashvol_flexdriver::runtime::stdio;
use flashvol_flexdriver::{doctor, install};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    // Lossy: a non-UTF-8 argument to a command then fails as an unknown argument.
    let words = || -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    match invocation::program(args.first().map(|a| a.as_os_str())) {
        Program::Installer => return install::main(&words()),
        Program::Doctor => return doctor::command::main(&words()[1..]),
        Program::EnterNamespace => return install::collect::enter_namespace_main(&words()[1..]),
        Program::CallOut => {}
    }
    if !stdio::take_over_stdio() {
        return ExitCode::FAILURE;
    }
    stdio::install_panic_hook();
    let answer = match invocation::parse(&args) {
        Ok(call) => callout::run(call, &Environment::from_process()),
        Err(e) => Reply::failure(e.to_string()),
    };
    stdio::emit(&answer);
    answer.exit_code()
}
