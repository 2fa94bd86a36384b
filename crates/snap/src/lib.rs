//! pgdr-snap: consistent, self-describing snapshots of a PostgreSQL data directory, and
//! retention that keeps what recovery needs.
//!
//! For snap-clone and other callers:
//!
//! - [`backend::Backend::detect`] finds the storage of a data directory (zfs, btrfs, copy);
//!   then `list()`, `get(name)`, `clone_snapshot(meta, clone, target)`, `clones()`,
//!   `destroy_clone(clone)`, `has_clones(name)`, `destroy(meta)`, `lock_path()`.
//! - [`meta::SnapshotMeta`]: what each snapshot carries (LSNs, `wal_start`, backup label).
//! - [`take::take`]: takes a snapshot; [`retention::apply`]: the pure retention policy.
//! - PostgreSQL's formats (pg_control, backup_label) come from `pgdr-pgformat`.

pub mod backend;
pub mod cli_prune;
pub mod cli_take;
pub mod doc;
pub mod meta;
pub mod retention;
pub mod sys;
pub mod take;

pub use backend::{Backend, BackendKind, CloneInfo};
pub use meta::SnapshotMeta;
