//! flashvol-arraysim command line.
fn main() {}
