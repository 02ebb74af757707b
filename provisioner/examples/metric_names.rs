//! Prints every metric name the provisioner exports, one a line, as PromQL sees them (counters
//! with `_total`, histograms as `_bucket`, `_sum`, `_count`): the list the chart's dashboard and
//! alert rules are checked against (`install/test/monitoring.sh`), taken from the registrations
//! themselves rather than written by hand.
//!
//!     cargo run -q -p flashvol-provisioner --example metric_names

use flashvol_provisioner::serve::metrics::Metrics;

fn main() {
    for name in Metrics::new().names() {
        println!("{name}");
    }
}
