//! wal-archive: PostgreSQL's `archive_command` and `restore_command`, into a private,
//! versioned, checksummed and compressed repository (FORMAT.md).
//!
//! Layers, each knowing only the ones below it:
//! - [`cli`]: arguments and rendering, nothing more ([`caller`]: whether PostgreSQL runs us,
//!   so push and get stay quiet in its log).
//! - [`cmd`]: one operation per subcommand (init, push, get, list, info, verify, check,
//!   prune, copy, the prefetch worker), callable without clap.
//! - `pgdr-repo`: the repository itself (settings, store, stored-object format, storing and
//!   restoring one WAL file, the survey by timeline), shared with snap-take and snap-clone.
//!
//! PostgreSQL's formats (WAL names, page headers, pg_control, history files) come from
//! `pgdr-pgformat`; this crate never parses them itself. It must never know about snapshots
//! beyond snap-prune's document ([`pgdr_snap::doc::PruneReport`]) and, for info, an image's
//! snapshot metadata as snap-take reads it ([`pgdr_snap::image::meta_of`]).

pub mod caller;
pub mod cli;
pub mod cmd;
pub mod doc;
