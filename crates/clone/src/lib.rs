//! pgdr-clone: `snap-clone`, a running PostgreSQL at any point in time from a snapshot made by
//! snap-take and the WAL archive, set up and started as one transaction.
//!
//! - [`cli`]: the command line (arguments in, one document of [`doc`] out).
//! - [`create`], [`from_image`], [`list`], [`destroy`]: the operations, callable without
//!   clap; [`setup`] is what a clone of a snapshot and a restored image share.
//! - [`tables`]: tables of a logical or physical snapshot restored into an existing
//!   database (`--into`), in one transaction.
//! - [`leftovers`]: clones a killed run left in state `creating`, removed by the next run.
//! - [`drill`]: a restore drill (clone the newest, recover, amcheck, destroy) for cron.
//! - [`target`]: recovery targets, time parsing, which snapshot can serve a target (pure).
//! - [`timeline`]: the newest timeline a clone recovers onto, and which snapshots lie on its
//!   history.
//! - [`prepare`]: turning a fresh clone of a snapshot into a data directory that recovers to
//!   the target and can never touch production (pure helpers plus the file work).
//! - [`server`]: starting it as the owner, watching recovery over its socket, stopping.
//! - [`replay`]: the settings the clone's recovery runs with (shared_buffers sized for replay,
//!   recovery prefetching), given for the recovering start only.
//! - The clone registry is the snapshot library's, [`pgdr_snap::registry`], which snap-prune
//!   reads too.

pub mod cli;
pub mod create;
pub mod destroy;
pub mod doc;
pub mod drill;
pub mod from_image;
pub mod leftovers;
pub mod list;
pub mod prepare;
pub mod replay;
pub mod server;
pub mod setup;
pub mod tables;
pub mod target;
pub mod timeline;
