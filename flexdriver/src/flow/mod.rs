//! The two volume flows a call-out hands over to, with the volume lock held: FlashArray volumes
//! (attach, format once, stage, bind) and FlashBlade file systems (an NFS mount).

pub mod block;
pub mod file;
