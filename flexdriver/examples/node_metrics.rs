//! Prints what the node installer's `/metrics` serves for a node with no call counted yet: every
//! series the flex driver's statistics export, zeros included. The chart's dashboard and alert
//! rules are checked against these names (`install/test/monitoring.sh`), and `promtool check
//! metrics` lints the format.
//!
//!     cargo run -q -p flashvol-flexdriver --example node_metrics

#![allow(clippy::print_stdout)]

use flashvol_flexdriver::runtime::stats::{Stats, exposition};

fn main() {
    print!("{}", exposition(Some(&Stats::default())));
}
