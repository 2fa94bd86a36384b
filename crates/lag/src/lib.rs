//! repl-lag: replication, slot and archiver health of PostgreSQL primaries and standbys.
//!
//! - [`sql`]: the queries, adapted to the server version (pure).
//! - [`report`]: the reports repl-lag prints, and the figures computed for them (pure): one WAL
//!   sender and its kind in `report/sender.rs`, slots, archiver and WAL receiver in
//!   `report/views.rs`, the replay delay in `report/replay.rs`.
//! - [`verdict`]: thresholds → status and problems (pure).
//! - [`prom`]: the Prometheus text exposition format (pure).
//! - [`nagios`]: the monitoring-plugin line, `STATUS - summary | perfdata` (pure).
//! - [`collect`]: talking to the server.
//! - [`check`]: the check (read each server, judge it), callable without clap.
//! - [`cli`]: the `repl-lag` command.

pub mod check;
pub mod cli;
pub mod collect;
pub mod nagios;
pub mod prom;
pub mod report;
pub mod sql;
pub mod verdict;
