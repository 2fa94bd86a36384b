//! wal-archive: PostgreSQL's `archive_command` and `restore_command`, into a private,
//! versioned, checksummed and compressed repository (FORMAT.md).
//!
//! Pure parts: [`walname`] (file names and segment arithmetic), [`pagehdr`] (the WAL long page
//! header), [`history`] (timeline history files), [`stored`] (the stored-file header). I/O:
//! [`repo`] (the repository on disk) and [`cli`] (the commands).

pub mod cli;
pub mod history;
pub mod pagehdr;
pub mod repo;
pub mod stored;
pub mod walname;
