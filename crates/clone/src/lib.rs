//! pgdr-clone: `snap-clone`, a running PostgreSQL at any point in time from a snapshot made by
//! snap-take and the WAL archive, set up and started as one transaction.
//!
//! - [`target`]: recovery targets, time parsing, which snapshot can serve a target (pure).
//! - [`prepare`]: turning a fresh clone of a snapshot into a data directory that recovers to
//!   the target and can never touch production (pure helpers plus the file work).
//! - [`server`]: starting it as the owner, waiting until recovery reached the target, stopping.
//! - [`registry`]: the durable record of every clone (`$PGDR_CLONE_DIR`, default
//!   `/var/lib/pgdr/clones`), read by `--list` and `--destroy`. The snapshot library keeps
//!   its own record too (zfs `pgdr:clone`, a registry in the btrfs/copy store), which is
//!   what snap-prune's `has_clones` sees.

pub mod cli;
pub mod prepare;
pub mod registry;
pub mod server;
pub mod target;
