//! Logical snapshots: one database (or some of its tables) dumped by pg_dump in directory
//! format with N jobs from one snapshot whose moment is known, stored compressed and
//! checksummed in a snapshot directory or a repository, listed and pruned like physical
//! snapshots (per database and label).
//!
//! - [`take`]: snap-take --logical's operation; [`list`] and [`prune`]: --list and
//!   snap-prune's.
//! - [`leftovers`]: what a killed run left (staging, pg_dump's scratch), removed by the next
//!   run under the lock a live run would hold.
//! - [`place`]: where they are kept (a directory, or a repository's `dumps/` through its
//!   object API), written all at once or not at all.
//! - [`meta`]: [`meta::LogicalSnapshot`], the document and the stored manifest.
//! - [`toc`]: pg_dump's table of contents (toc.dat), as pg_restore reads it; snap-clone
//!   plans restores from it.
//! - [`tools`]: finding pg_dump and pg_restore of a sufficient major.

pub mod leftovers;
pub mod list;
pub mod meta;
pub mod place;
pub mod prune;
pub mod take;
pub mod toc;
pub mod tools;
