//! wal-archive: PostgreSQL's `archive_command` and `restore_command`, into a private,
//! versioned, checksummed and compressed repository (FORMAT.md).
//!
//! PostgreSQL's formats (WAL names, page headers, history files) come from `pgdr-pgformat`.
//! Pure part: [`stored`] (the stored-file header). I/O: [`repo`] (the repository on disk) and
//! [`cli`] (the commands).

pub mod cli;
pub mod repo;
pub mod stored;
