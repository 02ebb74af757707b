//! flashvol-flex: kubelet's FlexVolume call-outs for Pure FlashArray and FlashBlade.
//!
//! Exactly one JSON document reaches stdout, whatever happens: stdio is taken over first, a
//! panic hook answers Failure, and the reply is written once at the end.

#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use flashvol_flexdriver::callout::{self, Environment};
use flashvol_flexdriver::install;
use flashvol_flexdriver::kubelet::invocation;
use flashvol_flexdriver::kubelet::reply::Reply;
use flashvol_flexdriver::runtime::stdio;

fn main() -> ExitCode {
    if let Some(code) = install::dispatch() {
        return code;
    }
    if !stdio::take_over_stdio() {
        return ExitCode::FAILURE;
    }
    stdio::install_panic_hook();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let answer = match invocation::parse(&args) {
        Ok(call) => callout::run(call, &Environment::from_process()),
        Err(e) => Reply::failure(e.to_string()),
    };
    stdio::emit(&answer);
    answer.exit_code()
}
