//! flashvol-provisioner: turns pure-provisioner PVCs into array volumes and flex PVs.

fn main() {}
