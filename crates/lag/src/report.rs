//! The reports repl-lag prints and the figures computed for them. Pure: no I/O here.
//!
//! Every figure a role cannot see stays `None` (JSON `null`) with a `note` saying why; it is
//! never turned into a zero lag.

use pgdr_pgformat::Lsn;
use serde::Serialize;

/// A monitoring-plugin verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
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
    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub severity: Status,
    pub message: String,
}

/// Why a row's figures are null when the role lacks the privilege.
pub const NOT_VISIBLE: &str = "not visible to this role (grant it pg_monitor or pg_read_all_stats)";

/// What a WAL sender serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// A streaming standby: counted by `--min-standbys`, checked against the thresholds.
    Physical,
    /// A logical replication consumer (its slot is checked, not its lag).
    Logical,
    /// pg_basebackup or pg_rewind: transient, never counted as a standby.
    Backup,
    /// Not visible to this role.
    Unknown,
}

/// A row of `pg_stat_replication` with the lags computed from it.
#[derive(Debug, Clone, Serialize)]
pub struct Sender {
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub sent_lag_bytes: Option<u64>,
    pub write_lag_bytes: Option<u64>,
    pub flush_lag_bytes: Option<u64>,
    pub replay_lag_bytes: Option<u64>,
    pub write_lag_seconds: Option<f64>,
    pub flush_lag_seconds: Option<f64>,
    pub replay_lag_seconds: Option<f64>,
    pub slot: Option<String>,
    pub kind: SenderKind,
    pub pid: Option<i64>,
    pub user: Option<String>,
    pub sent_lsn: Option<Lsn>,
    pub write_lsn: Option<Lsn>,
    pub flush_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    /// Age of the standby's last reply (12+): every LSN above is only as fresh as that.
    pub feedback_age_seconds: Option<f64>,
    pub visible: bool,
    /// Why figures are null (privilege, or idle and caught up for the time lags).
    pub note: Option<String>,
}

/// `reference − lsn` in bytes, exact; a position ahead of the reference counts as no lag
/// (the two are read at slightly different moments).
pub fn lag_bytes(reference: Lsn, lsn: Option<Lsn>) -> Option<u64> {
    lsn.map(|l| reference.0.saturating_sub(l.0))
}

impl Sender {
    /// Fills the byte lags against `reference` (the primary's current position, or on a
    /// cascading standby the position it can send up to), the kind and the notes.
    pub fn compute(&mut self, reference: Lsn, slot_type: Option<&str>) {
        self.sent_lag_bytes = lag_bytes(reference, self.sent_lsn);
        self.write_lag_bytes = lag_bytes(reference, self.write_lsn);
        self.flush_lag_bytes = lag_bytes(reference, self.flush_lsn);
        self.replay_lag_bytes = lag_bytes(reference, self.replay_lsn);
        // Without pg_read_all_stats every column but pid (and the activity columns) is NULL.
        self.visible = self.state.is_some();
        self.kind = if !self.visible {
            SenderKind::Unknown
        } else if slot_type == Some("logical") {
            SenderKind::Logical
        } else if self.state.as_deref() == Some("backup")
            || matches!(
                self.application_name.as_deref(),
                Some("pg_basebackup") | Some("pg_rewind")
            )
        {
            SenderKind::Backup
        } else {
            SenderKind::Physical
        };
        self.note = if !self.visible {
            Some(NOT_VISIBLE.to_string())
        } else if self.replay_lsn.is_none() && self.kind != SenderKind::Backup {
            Some("no reply from the standby yet: write, flush and replay positions unknown".into())
        } else if self.replay_lag_seconds.is_none()
            && self.flush_lag_seconds.is_none()
            && self.write_lag_seconds.is_none()
        {
            Some(match self.kind {
                SenderKind::Logical => {
                    "no time lags: the logical consumer sends no tracking replies".into()
                }
                _ => {
                    "no time lags: no WAL sent recently (idle and caught up) or no reply yet".into()
                }
            })
        } else {
            None
        };
    }

    /// How the row is named in messages.
    pub fn label(&self) -> String {
        let name = self.application_name.as_deref().unwrap_or("?");
        match (&self.client_addr, self.pid) {
            (Some(a), _) => format!("standby '{name}' ({a})"),
            (None, Some(p)) => format!("standby '{name}' (pid {p})"),
            _ => format!("standby '{name}'"),
        }
    }

    /// Whether it is a streaming physical standby.
    pub fn is_streaming_standby(&self) -> bool {
        self.kind == SenderKind::Physical && self.state.as_deref() == Some("streaming")
    }

    /// The largest of the three time lags (they are cumulative, so usually replay).
    pub fn max_lag_seconds(&self) -> Option<f64> {
        [
            self.write_lag_seconds,
            self.flush_lag_seconds,
            self.replay_lag_seconds,
        ]
        .into_iter()
        .flatten()
        .reduce(f64::max)
    }
}

/// A row of `pg_replication_slots`.
#[derive(Debug, Clone, Serialize)]
pub struct Slot {
    pub slot_name: String,
    pub active: Option<bool>,
    /// WAL the slot keeps from removal: reference − restart_lsn.
    pub retained_bytes: Option<u64>,
    pub slot_type: Option<String>,
    pub database: Option<String>,
    pub temporary: Option<bool>,
    pub restart_lsn: Option<Lsn>,
    pub confirmed_flush_lsn: Option<Lsn>,
    /// For a logical slot: reference − confirmed_flush_lsn.
    pub consumer_lag_bytes: Option<u64>,
    /// 13+: reserved, extended, unreserved, lost.
    pub wal_status: Option<String>,
    /// 13+: bytes that can still be written before the slot is in danger (null when unlimited).
    pub safe_wal_size: Option<i64>,
    /// 16+.
    pub conflicting: Option<bool>,
    /// 17+.
    pub inactive_since: Option<String>,
    /// 17+.
    pub invalidation_reason: Option<String>,
}

impl Slot {
    pub fn compute(&mut self, reference: Lsn) {
        self.retained_bytes = lag_bytes(reference, self.restart_lsn);
        self.consumer_lag_bytes = if self.slot_type.as_deref() == Some("logical") {
            lag_bytes(reference, self.confirmed_flush_lsn)
        } else {
            None
        };
    }
}

/// `pg_stat_archiver`, with whether it is failing now.
#[derive(Debug, Clone, Serialize)]
pub struct Archiver {
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<String>,
    /// Since `stats_reset`, as PostgreSQL counts it.
    pub failed_count: Option<i64>,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<String>,
    /// The last attempt failed (its failure is newer than the last success).
    pub failing: bool,
    /// 0 when the last attempt succeeded; `failed_count` when nothing succeeded since the
    /// reset; null when failing after an earlier success (PostgreSQL keeps no count per
    /// streak: `failed_count` is then an upper bound).
    pub failures_since_last_success: Option<i64>,
    pub archived_count: Option<i64>,
    pub stats_reset: Option<String>,
    /// `.ready` files waiting in pg_wal/archive_status (12+, needs pg_monitor).
    pub pending_segments: Option<i64>,
    pub archive_mode: String,
}

impl Archiver {
    pub fn compute(&mut self) {
        self.failures_since_last_success = if !self.failing {
            Some(0)
        } else if self.last_archived_time.is_none() {
            self.failed_count
        } else {
            None
        };
    }
    /// Failures in the current streak, or an upper bound for it.
    pub fn streak_upper_bound(&self) -> i64 {
        self.failures_since_last_success
            .or(self.failed_count)
            .unwrap_or(0)
    }
}

/// `pg_stat_wal_receiver` on a standby.
#[derive(Debug, Clone, Serialize)]
pub struct WalReceiver {
    /// streaming, starting, waiting, restarting, stopping (null when not visible).
    pub status: Option<String>,
    pub pid: Option<i64>,
    pub sender_host: Option<String>,
    pub sender_port: Option<i64>,
    pub slot_name: Option<String>,
    /// Received and flushed (`received_lsn` before 13).
    pub flushed_lsn: Option<Lsn>,
    /// 13+: received and written, maybe not flushed.
    pub written_lsn: Option<Lsn>,
    pub received_tli: Option<i64>,
    /// The end of WAL the primary last reported.
    pub latest_end_lsn: Option<Lsn>,
    pub last_msg_send_time: Option<String>,
    pub last_msg_receipt_time: Option<String>,
    /// By the standby's clock; the stream is cut when this exceeds wal_receiver_timeout.
    pub last_msg_receipt_age_seconds: Option<f64>,
    pub latest_end_time: Option<String>,
    pub visible: bool,
    pub note: Option<String>,
}

/// Report of a primary.
#[derive(Debug, Clone, Serialize)]
pub struct PrimaryView {
    pub role: &'static str,
    pub server_lsn: Lsn,
    /// Physical standbys in state `streaming` (null when the role cannot see states).
    pub standbys_streaming: Option<usize>,
    pub standbys: Vec<Sender>,
    pub slots: Vec<Slot>,
    pub archiver: Archiver,
}

/// Report of a standby.
#[derive(Debug, Clone, Serialize)]
pub struct StandbyView {
    pub role: &'static str,
    pub receive_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    /// receive − replay: received but not yet applied.
    pub replay_lag_bytes: Option<u64>,
    /// Commit time (primary's clock) of the last transaction replayed.
    pub last_replay_time: Option<String>,
    /// How far behind the primary what readers see is: 0 when everything received was
    /// replayed (an idle primary is no delay), else the age of the last replayed commit.
    pub replay_delay_seconds: Option<f64>,
    /// Everything received has been replayed (checked twice when the first look was behind).
    pub caught_up: bool,
    /// Raw age of the last replayed commit (grows on an idle primary; informative only).
    pub last_replay_age_seconds: Option<f64>,
    pub replay_paused: bool,
    pub pause_state: Option<String>,
    /// A deliberately delayed standby: subtracted before the seconds thresholds.
    pub min_apply_delay_seconds: Option<f64>,
    /// Whether primary_conninfo is set (null when the role cannot read it).
    pub streaming_configured: Option<bool>,
    pub wal_receiver_timeout_seconds: Option<f64>,
    pub wal_receiver: Option<WalReceiver>,
    /// Cascaded standbys fed by this standby.
    pub standbys: Vec<Sender>,
    pub slots: Vec<Slot>,
}

/// Primary or standby.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum View {
    Primary(Box<PrimaryView>),
    Standby(Box<StandbyView>),
}

/// The report of one server.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The connection, password never included.
    pub server: String,
    /// `host:port`, the Prometheus `server` label.
    #[serde(skip)]
    pub instance: String,
    pub status: Status,
    pub problems: Vec<Problem>,
    pub server_version: Option<String>,
    pub checked_at: Option<String>,
    pub user: Option<String>,
    /// Whether this role sees replication details (pg_monitor / pg_read_all_stats).
    pub can_read_all_stats: Option<bool>,
    #[serde(flatten)]
    pub view: Option<View>,
}

impl Report {
    /// A server that could not be checked at all (several -d: the others still are).
    pub fn unknown(server: String, instance: String, why: String) -> Report {
        Report {
            server,
            instance,
            status: Status::Unknown,
            problems: vec![Problem {
                severity: Status::Unknown,
                message: why,
            }],
            server_version: None,
            checked_at: None,
            user: None,
            can_read_all_stats: None,
            view: None,
        }
    }
}

/// One look at a standby's positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positions {
    pub receive: Option<Lsn>,
    pub replay: Option<Lsn>,
    pub last_replay_age: Option<f64>,
}

impl Positions {
    /// Everything received has been replayed.
    pub fn caught_up(&self) -> bool {
        matches!((self.receive, self.replay), (Some(rc), Some(rp)) if rp >= rc)
    }
}

/// The replay delay from a first look and a later one (the same look when it was caught up).
///
/// The age of the last replayed commit grows while the primary is idle, so it is a delay
/// only while received WAL waits to be replayed. Even then a single look can catch the
/// standby between receiving and replaying a record written after a long idle period; so a
/// standby that, at the later look, has replayed everything the first look saw received is
/// keeping up and has no delay.
pub fn replay_delay(first: &Positions, last: &Positions) -> (bool, Option<f64>) {
    let keeping_up = first.caught_up()
        || last.caught_up()
        || matches!((first.receive, last.replay), (Some(rc), Some(rp)) if rp >= rc);
    if keeping_up {
        (true, Some(0.0))
    } else {
        (false, last.last_replay_age.map(|a| a.max(0.0)))
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

    fn pos(rc: Option<&str>, rp: Option<&str>, age: Option<f64>) -> Positions {
        Positions {
            receive: rc.map(lsn),
            replay: rp.map(lsn),
            last_replay_age: age,
        }
    }

    #[test]
    fn idle_primary_is_no_delay() {
        let p = pos(Some("0/3000000"), Some("0/3000000"), Some(3600.0));
        assert_eq!(replay_delay(&p, &p), (true, Some(0.0)));
        // Replay ahead of receive (the receiver restarts at a segment start).
        let p = pos(Some("0/3000000"), Some("0/3000100"), Some(3600.0));
        assert_eq!(replay_delay(&p, &p), (true, Some(0.0)));
    }

    #[test]
    fn stuck_replay_is_a_delay() {
        let a = pos(Some("0/3000100"), Some("0/3000000"), Some(50.0));
        let b = pos(Some("0/3000200"), Some("0/3000000"), Some(50.3));
        assert_eq!(replay_delay(&a, &b), (false, Some(50.3)));
        // Clock skew: the primary's clock ahead of ours.
        let c = pos(Some("0/3000200"), Some("0/3000000"), Some(-2.0));
        assert_eq!(replay_delay(&a, &c), (false, Some(0.0)));
        // Nothing replayed since start-up: unknown, not zero.
        let d = pos(Some("0/3000200"), Some("0/3000000"), None);
        assert_eq!(replay_delay(&a, &d), (false, None));
    }

    #[test]
    fn a_standby_that_keeps_up_is_no_delay() {
        // First look caught it between receive and replay after a long idle period.
        let a = pos(Some("0/3000100"), Some("0/3000000"), Some(3600.0));
        let b = pos(Some("0/3000300"), Some("0/3000100"), Some(3600.0));
        assert_eq!(replay_delay(&a, &b), (true, Some(0.0)));
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
