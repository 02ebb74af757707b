//! The volume flows a call-out hands over to, with the volume lock held: FlashArray volumes
//! (attach, format once, stage, bind), FlashBlade file systems (an NFS mount), and growing either
//! after its claim grew (`expandfs`).

pub mod block;
pub mod expand;
pub mod file;
