//! pgdr-snap: consistent, self-describing snapshots of a PostgreSQL data directory, and
//! retention that keeps what recovery needs.
//!
//! - [`cli_take`], [`cli_prune`]: the command lines of snap-take and snap-prune (arguments in,
//!   one document out); their operations are [`cmd::take`], [`cmd::image`] (a snapshot stored
//!   as an image in a repository, its tree from [`image`]), [`cmd::list`], [`cmd::prune`] and
//!   [`cmd::prune_images`] (retention of a repository's images).
//! - [`backend::Backend::detect`] finds the storage of a data directory (zfs, btrfs, copy);
//!   then `list()`, `get(name)`, `clone_snapshot(..)`, `destroy_clone(..)`, `has_clones(..)`,
//!   `destroy(..)`, `lock(..)`.
//! - [`meta::SnapshotMeta`]: what each snapshot carries (LSNs, `wal_start`, backup label),
//!   snap-take's document.
//! - [`logical`]: logical snapshots (pg_dump of a database or tables), taken, listed and
//!   pruned; pg_dump's table of contents for snap-clone's table restores.
//! - [`registry::Registry`]: the host's clone registry, shared with snap-clone.
//! - [`retention::apply`]: the pure retention policy; [`datadir`]: facts about a data
//!   directory (layout, version, whether its postmaster runs).
//! - PostgreSQL's formats (pg_control, backup_label) come from `pgdr-pgformat`.

pub mod backend;
pub mod cli_prune;
pub mod cli_take;
pub mod cmd;
pub mod datadir;
pub mod doc;
pub mod image;
pub mod logical;
pub mod meta;
pub mod registry;
pub mod retention;
pub mod wal_end;

pub use backend::{Backend, BackendKind};
pub use meta::SnapshotMeta;
