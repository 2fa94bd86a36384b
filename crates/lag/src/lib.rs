//! repl-lag: replication, slot and archiver health of PostgreSQL primaries and standbys.
//!
//! - [`sql`]: the queries, adapted to the server version (pure).
//! - [`model`]: what is read from a server, and the report built from it.
//! - [`check`]: thresholds → status and problems (pure).
//! - [`prom`]: the Prometheus text exposition format (pure).
//! - [`collect`]: talking to the server.
//! - [`cli`]: the `repl-lag` command.

pub mod check;
pub mod cli;
pub mod collect;
pub mod model;
pub mod prom;
pub mod sql;
