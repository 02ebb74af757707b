//! The volume flows a call-out hands over to, with the volume lock held: FlashArray volumes
//! (attach, format once, stage, bind; release after the last pod), FlashBlade file systems
//! (an NFS mount), and growing either after its claim grew (`expandfs`); and the collection of
//! leftover volumes no call will come for.

pub mod block;
pub mod collect;
pub mod expand;
pub mod file;
pub mod release;
