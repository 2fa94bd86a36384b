//! The operations of snap-take and snap-prune, callable without clap.

pub mod prune;
pub mod take;
