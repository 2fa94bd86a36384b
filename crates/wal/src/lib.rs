//! wal-archive: PostgreSQL's `archive_command` and `restore_command`, into a private,
//! versioned, checksummed and compressed repository (FORMAT.md).
//!
//! Layers, each knowing only the ones below it:
//! - [`cli`]: arguments and rendering, nothing more ([`caller`]: whether PostgreSQL runs us,
//!   so push and get stay quiet in its log).
//! - [`cmd`]: one operation per subcommand (init, push, get, list, verify, prune, the
//!   prefetch worker), callable without clap.
//! - [`file`] (store one file, restore one file) and [`survey`] (the whole repository by
//!   timeline): the per-file and per-repository work the commands share.
//! - [`repo`]: settings, the cluster a repository is bound to, where each file lives.
//! - [`store`]: the bytes, as object operations (a local directory today; an object store
//!   behind the same interface later).
//! - [`stored`]: the stored-file format, pure.
//!
//! PostgreSQL's formats (WAL names, page headers, pg_control, history files) come from
//! `pgdr-pgformat`; this crate never parses them itself. It must never know about snapshots
//! beyond snap-prune's document ([`pgdr_snap::doc::PruneReport`]).

pub mod caller;
pub mod cli;
pub mod cmd;
pub mod doc;
pub mod file;
pub mod repo;
pub mod store;
pub mod stored;
pub mod survey;
