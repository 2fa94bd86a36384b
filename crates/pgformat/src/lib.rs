//! pgdr-pgformat: PostgreSQL's on-disk formats, read without the server, one module per format
//! (pgBackRest keeps them apart in `src/postgres/` the same way). Pure: no I/O but what the
//! caller hands in, no knowledge of pgdr's repositories, snapshots or tools.
//!
//! - [`lsn`]: `XLogRecPtr` and its text form `16/B374D848` (src/include/access/xlogdefs.h).
//! - [`wal_name`]: WAL file names (segments, `.partial`, `.backup`, `.history`;
//!   src/include/access/xlog_internal.h).
//! - [`page_header`]: the long page header of a WAL segment, per major (xlog_internal.h).
//! - [`control`]: `global/pg_control` (src/include/catalog/pg_control.h).
//! - [`backup_label`]: the `backup_label` file (src/backend/access/transam/xlogbackup.c).
//! - [`history`]: timeline history files (src/backend/access/transam/timeline.c).

pub mod backup_label;
pub mod control;
pub mod history;
pub mod lsn;
pub mod page_header;
pub mod wal_name;

pub use lsn::Lsn;
pub use wal_name::WalName;
