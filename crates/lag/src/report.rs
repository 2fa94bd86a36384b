//! The reports repl-lag prints, and the figures computed for them. Pure: no I/O here.
//!
//! One `-d` prints a [`PrimaryReport`] or a [`StandbyReport`]; several print a [`Reports`]
//! document with one [`ServerReport`] per server. Every figure a role cannot see stays `None`
//! (JSON `null`) with a `note` saying why; it is never turned into a zero lag.

mod replay;
mod sender;
mod views;

pub use replay::{replay_delay, Positions};
pub use sender::{SenderContext, SenderKind, WalSender};
pub use views::{Archiver, Slot, WalReceiver};

use chrono::{DateTime, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};

const PRODUCERS: &[&str] = &["repl-lag"];

/// A monitoring-plugin verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Every limit respected, nothing wrong.
    Ok,
    /// Something needs a look (a --warn-* limit, paused replay, a failing archiver).
    Warning,
    /// Something is broken or past a --crit-* limit.
    Critical,
    /// repl-lag cannot tell (no connection, figures this role cannot see).
    Unknown,
}

impl Status {
    /// How bad: OK < WARNING < UNKNOWN < CRITICAL (a known outage outranks a blind spot).
    pub fn rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Unknown => 2,
            Status::Critical => 3,
        }
    }
    /// The monitoring-plugin exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }
    /// The worse of the two.
    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
    /// OK, WARNING, CRITICAL or UNKNOWN.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// One thing that is wrong, with how bad it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// WARNING, CRITICAL or UNKNOWN.
    pub severity: Status,
    /// What is wrong, with the figure and the limit it is over.
    pub message: String,
}

/// Why a row's figures are null when the role lacks the privilege.
pub const NOT_VISIBLE: &str = "not visible to this role (grant it pg_monitor or pg_read_all_stats)";

/// `reference − lsn` in bytes, exact; a position ahead of the reference counts as no lag
/// (the two are read at slightly different moments).
pub fn lag_bytes(reference: Lsn, lsn: Option<Lsn>) -> Option<u64> {
    lsn.map(|l| reference.0.saturating_sub(l.0))
}

/// `"role": "primary"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PrimaryRole {
    #[serde(rename = "primary")]
    Primary,
}

/// `"role": "standby"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum StandbyRole {
    #[serde(rename = "standby")]
    Standby,
}

/// The report of a primary (a server not in recovery): its WAL senders, slots and archiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrimaryReport {
    /// The connection as host=... port=... user=... dbname=... (never a password).
    pub server: String,
    /// The verdict: the worst problem's severity, OK when there is none.
    pub status: Status,
    /// Everything found wrong, with its severity.
    pub problems: Vec<Problem>,
    /// The server's version (server_version).
    pub server_version: String,
    /// When the server was read, by its clock (RFC 3339, UTC).
    pub checked_at: DateTime<Utc>,
    /// The role repl-lag logged in as.
    pub user: String,
    /// Whether this role sees replication details (pg_monitor or pg_read_all_stats).
    pub can_read_all_stats: bool,
    /// "primary".
    pub role: PrimaryRole,
    /// The current WAL position (pg_current_wal_lsn): the reference of every byte lag.
    pub server_lsn: Lsn,
    /// Physical standbys in state streaming (null when the role cannot see states).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub standbys_streaming: Option<usize>,
    /// Every WAL sender, each with its kind: standbys, WAL receivers, logical consumers,
    /// base backups.
    pub standbys: Vec<WalSender>,
    /// Every replication slot.
    pub slots: Vec<Slot>,
    /// The WAL archiver.
    pub archiver: Archiver,
}

impl pgdr_core::Document for PrimaryReport {
    const PRODUCERS: &'static [&'static str] = PRODUCERS;
}

/// The report of a standby (a server in recovery): what it received and replayed, its WAL
/// receiver, and the standbys and slots it serves itself (cascading).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StandbyReport {
    /// The connection as host=... port=... user=... dbname=... (never a password).
    pub server: String,
    /// The verdict: the worst problem's severity, OK when there is none.
    pub status: Status,
    /// Everything found wrong, with its severity.
    pub problems: Vec<Problem>,
    /// The server's version (server_version).
    pub server_version: String,
    /// When the server was read, by its clock (RFC 3339, UTC).
    pub checked_at: DateTime<Utc>,
    /// The role repl-lag logged in as.
    pub user: String,
    /// Whether this role sees replication details (pg_monitor or pg_read_all_stats).
    pub can_read_all_stats: bool,
    /// "standby".
    pub role: StandbyRole,
    /// Received and flushed (pg_last_wal_receive_lsn).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub receive_lsn: Option<Lsn>,
    /// Replayed (pg_last_wal_replay_lsn).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub replay_lsn: Option<Lsn>,
    /// receive_lsn − replay_lsn: received but not yet replayed.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub replay_lag_bytes: Option<u64>,
    /// Commit time (the primary's clock) of the last transaction replayed (RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_replay_time: Option<DateTime<Utc>>,
    /// How far behind the primary what readers see is: 0 when everything received was
    /// replayed (an idle primary is no delay), else the age of the last replayed commit;
    /// null when a WAL receiver should stream and does not (a cut stream: how far behind
    /// cannot be told, and is never shown as 0).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub replay_delay_seconds: Option<f64>,
    /// Everything received has been replayed (looked at again when the first look was
    /// behind).
    pub caught_up: bool,
    /// Raw age of the last replayed commit (grows on an idle primary; informative only).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_replay_age_seconds: Option<f64>,
    /// Whether replay is paused (pg_wal_replay_pause).
    pub replay_paused: bool,
    /// not paused, pause requested or paused.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pause_state: Option<String>,
    /// recovery_min_apply_delay in seconds: a deliberately delayed standby is judged on the
    /// delay beyond it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub min_apply_delay_seconds: Option<f64>,
    /// Whether primary_conninfo is set (null when the role cannot read it).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub streaming_configured: Option<bool>,
    /// wal_receiver_timeout in seconds.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_receiver_timeout_seconds: Option<f64>,
    /// The WAL receiver (null when none runs).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_receiver: Option<WalReceiver>,
    /// Cascaded standbys fed by this standby, as on a primary.
    pub standbys: Vec<WalSender>,
    /// This standby's replication slots.
    pub slots: Vec<Slot>,
}

impl pgdr_core::Document for StandbyReport {
    const PRODUCERS: &'static [&'static str] = PRODUCERS;
}

/// A server that could not be read (only inside the "reports" of several -d).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnreachableReport {
    /// The connection as host=... port=... user=... dbname=... (never a password).
    pub server: String,
    /// UNKNOWN.
    pub status: Status,
    /// Why it could not be read ("cannot connect to …").
    pub problems: Vec<Problem>,
}

impl UnreachableReport {
    /// A server that could not be checked at all, and why.
    pub fn new(server: String, why: String) -> UnreachableReport {
        UnreachableReport {
            server,
            status: Status::Unknown,
            problems: vec![Problem {
                severity: Status::Unknown,
                message: why,
            }],
        }
    }
}

/// One server's report: a primary's, a standby's, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ServerReport {
    /// A primary's report (PrimaryReport).
    Primary(Box<PrimaryReport>),
    /// A standby's report (StandbyReport).
    Standby(Box<StandbyReport>),
    /// A server that could not be read (UnreachableReport).
    Unreachable(UnreachableReport),
}

impl ServerReport {
    /// The connection, as the report names it.
    pub fn server(&self) -> &str {
        match self {
            ServerReport::Primary(r) => &r.server,
            ServerReport::Standby(r) => &r.server,
            ServerReport::Unreachable(r) => &r.server,
        }
    }
    /// The verdict.
    pub fn status(&self) -> Status {
        match self {
            ServerReport::Primary(r) => r.status,
            ServerReport::Standby(r) => r.status,
            ServerReport::Unreachable(r) => r.status,
        }
    }
    /// The problems found.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ServerReport::Primary(r) => &r.problems,
            ServerReport::Standby(r) => &r.problems,
            ServerReport::Unreachable(r) => &r.problems,
        }
    }
}

/// The document of several -d: every server's report and the worst verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reports {
    /// The worst status of the reports (OK < WARNING < UNKNOWN < CRITICAL): the exit code.
    pub status: Status,
    /// Every report's problems, each message prefixed with its server.
    pub problems: Vec<Problem>,
    /// One report per -d, in order: a primary's or a standby's report as printed for one -d,
    /// or (UnreachableReport) for a server that could not be read {"server", "status":
    /// "UNKNOWN", "problems": [why]}, without "role".
    pub reports: Vec<ServerReport>,
}

impl pgdr_core::Document for Reports {
    const PRODUCERS: &'static [&'static str] = PRODUCERS;
}

impl Reports {
    /// The document of several servers' reports.
    pub fn of(reports: Vec<ServerReport>) -> Reports {
        let status = reports
            .iter()
            .fold(Status::Ok, |acc, r| acc.worst(r.status()));
        let problems = reports
            .iter()
            .flat_map(|r| {
                r.problems().iter().map(|p| Problem {
                    severity: p.severity,
                    message: format!("{}: {}", r.server(), p.message),
                })
            })
            .collect();
        Reports {
            status,
            problems,
            reports,
        }
    }
}

/// `16777216` → `16.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    #[test]
    fn byte_lags_are_exact_across_the_4gib_boundary() {
        // check_postgres's pre-9.3 formula gets this one 16 MiB wrong.
        let cur = lsn("1/00000100");
        assert_eq!(lag_bytes(cur, Some(lsn("0/FFFFFF00"))), Some(0x200));
        let big = lsn("FFFFFFFF/FFFFFFFF");
        assert_eq!(lag_bytes(big, Some(lsn("0/0"))), Some(u64::MAX));
        // Read a moment apart: a sender ahead of the reference is no lag, not a wrap-around.
        assert_eq!(lag_bytes(lsn("0/100"), Some(lsn("0/200"))), Some(0));
        assert_eq!(lag_bytes(cur, None), None);
    }

    #[test]
    fn status_order_and_codes() {
        assert_eq!(Status::Ok.worst(Status::Warning), Status::Warning);
        assert_eq!(Status::Unknown.worst(Status::Critical), Status::Critical);
        assert_eq!(Status::Warning.worst(Status::Unknown), Status::Unknown);
        assert_eq!(Status::Critical.exit_code(), 2);
        assert_eq!(Status::Unknown.exit_code(), 3);
        assert_eq!(
            serde_json::to_string(&Status::Warning).unwrap(),
            "\"WARNING\""
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(16 << 20), "16.0 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
