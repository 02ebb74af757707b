//! The FlexVolume protocol edge: what kubelet sends (argv, the option map, the pod volume path)
//! decoded without side effects, and the one JSON reply it reads back.

pub mod invocation;
pub mod layout;
pub mod reply;
pub mod request;
