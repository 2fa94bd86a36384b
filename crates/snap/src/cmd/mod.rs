//! The operations of snap-take and snap-prune, callable without clap.

pub mod image;
pub mod list;
pub mod prune;
pub mod prune_images;
pub mod take;
