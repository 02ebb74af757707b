//! The volume flows a call-out hands over to, with the volume lock held: FlashArray volumes
//! (attach, format once, stage, bind; release after the last pod) and FlashBlade file systems
//! (an NFS mount); and the collection of leftover volumes no call will come for.

pub mod block;
pub mod collect;
pub mod file;
pub mod release;
