//! Snapshots, restores and clones: the array operations restores and clones use.
//!
//! - [`array_ops`]: snapshots, copies and connections on the arrays, and the locate loop.

pub mod array_ops;
