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
//! - [`version`]: `PG_VERSION` and the majors pgdr knows (13–18 tested; 12 read).
//!
//! Every format refuses a version it does not know (a pg_control version, a WAL page magic, a
//! PG_VERSION) instead of reading it with a neighbour's layout.

pub mod backup_label;
pub mod control;
pub mod history;
pub mod lsn;
pub mod page_header;
pub mod version;
pub mod wal_name;

pub use lsn::Lsn;
pub use wal_name::WalName;
