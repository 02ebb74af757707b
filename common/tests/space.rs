//! What both clients read of an array's space (`GET array?space=true`, `GET arrays/space`): the
//! figures placement ranks arrays by and the provisioner's array gauges show, including a data
//! reduction ratio and a nearly full array (set through the simulator's `/_sim/space`).

mod support;

use flashvol_arraysim::{DEFAULT_CAPACITY, SpaceOverride};
use flashvol_common::flasharray::FlashArray;
use flashvol_common::flashblade::FlashBlade;
use support::Sim;

#[test]
fn a_flasharray_reports_capacity_used_provisioned_and_data_reduction() {
    let sim = Sim::flasharray();
    let fa = FlashArray::new(&sim.fa_config("sim-token-fa"), &sim.settings()).expect("client");
    let space = fa.space().expect("space");
    assert_eq!(space.capacity, DEFAULT_CAPACITY);
    assert_eq!(space.provisioned, Some(0));
    assert_eq!(space.data_reduction, Some(1.0));
    sim.handle.set_space(SpaceOverride {
        used: Some(DEFAULT_CAPACITY - 5),
        data_reduction: Some(4.2),
    });
    let full = fa.space().expect("space");
    assert_eq!((full.free(), full.data_reduction), (5, Some(4.2)));
}

#[test]
fn a_flashblade_reports_capacity_used_and_data_reduction() {
    let sim = Sim::flashblade();
    let fb = FlashBlade::new(&sim.fb_config("sim-token-fb"), &sim.settings()).expect("client");
    assert_eq!(fb.space().expect("space").data_reduction, Some(1.0));
    sim.handle.set_space(SpaceOverride {
        used: Some(DEFAULT_CAPACITY),
        data_reduction: Some(2.5),
    });
    let full = fb.space().expect("space");
    assert_eq!((full.free(), full.data_reduction), (0, Some(2.5)));
}
