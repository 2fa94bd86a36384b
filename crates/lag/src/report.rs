//! The reports repl-lag prints, and the figures computed for them. Pure: no I/O here.
//!
//! One `-d` prints a [`PrimaryReport`] or a [`StandbyReport`]; several print a [`Reports`]
//! document with one [`ServerReport`] per server. Every figure a role cannot see stays `None`
//! (JSON `null`) with a `note` saying why; it is never turned into a zero lag.

use chrono::{DateTime, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};

const PRODUCERS: &[&str] = &["repl-lag"];

/// A monitoring-plugin verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What a WAL sender serves, told apart by what `pg_stat_replication` and the slot show (the
/// same in PostgreSQL 10 to 18): a standby reports a replay position in every reply (its
/// walreceiver sends `GetXLogReplayRecPtr()`, src/backend/replication/walreceiver.c);
/// pg_receivewal and pg_basebackup's WAL stream never do (src/bin/pg_basebackup/receivelog.c
/// sends an invalid apply position); a logical walsender is bound to a database and streams
/// from a logical slot; a base backup is in state `backup`, and its WAL stream uses a
/// temporary slot named `pg_basebackup_PID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// A physical standby: replays WAL and can take over. The only kind counted by
    /// `--min-standbys` and checked against the lag thresholds.
    Physical,
    /// A client that receives and stores WAL without replaying it (pg_receivewal, as Barman
    /// runs it): not a standby, it cannot take over.
    Receivewal,
    /// A logical replication consumer (a subscription, pg_recvlogical): its slot is checked,
    /// not its lag.
    Logical,
    /// pg_basebackup (the base backup or its WAL stream): transient, not a standby.
    Backup,
    /// Not visible to this role.
    Unknown,
}

/// The application_name pg_receivewal gives itself, and the one Barman sets for it.
const RECEIVEWAL_NAMES: &[&str] = &["pg_receivewal", "barman_receive_wal"];

/// What the server knows about a WAL sender beyond `pg_stat_replication`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderContext<'a> {
    /// The type of the slot it streams from (physical, logical), if any.
    pub slot_type: Option<&'a str>,
    /// Whether that slot is temporary.
    pub slot_temporary: Option<bool>,
    /// The database its connection is bound to (`pg_stat_activity.datname`): only logical
    /// walsenders have one.
    pub database: Option<&'a str>,
}

/// A row of `pg_stat_replication` (one WAL sender) with the lags computed from it. Byte lags
/// are the reference position (the primary's current one, or on a cascading standby what it
/// can send) minus the sender's position: exact integers, never negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WalSender {
    /// The client's application_name (a standby's cluster_name, or "walreceiver").
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub application_name: Option<String>,
    /// The client's IP address; null over a Unix socket or when not visible.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub client_addr: Option<String>,
    /// startup, catchup, streaming, backup or stopping.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub state: Option<String>,
    /// async, potential, sync or quorum.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub sync_state: Option<String>,
    /// Bytes not yet sent.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub sent_lag_bytes: Option<u64>,
    /// Bytes not yet written by the client.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub write_lag_bytes: Option<u64>,
    /// Bytes not yet flushed by the client: what a crash of this server now would lose there.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub flush_lag_bytes: Option<u64>,
    /// Bytes not yet replayed by the standby: how far behind what its readers see is.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub replay_lag_bytes: Option<u64>,
    /// Seconds recent WAL took to be written by the client (null when idle and caught up).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub write_lag_seconds: Option<f64>,
    /// Seconds recent WAL took to be flushed by the client.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub flush_lag_seconds: Option<f64>,
    /// Seconds recent WAL took to be replayed by the standby.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub replay_lag_seconds: Option<f64>,
    /// The replication slot it uses, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub slot: Option<String>,
    /// What it serves: physical (a standby), receivewal (pg_receivewal: stores WAL, never
    /// replays it), logical, backup (pg_basebackup) or unknown (not visible). Only physical
    /// standbys count as standbys.
    pub kind: SenderKind,
    /// The WAL sender's process id.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pid: Option<i64>,
    /// The role it logged in as.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub user: Option<String>,
    /// Last position sent.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub sent_lsn: Option<Lsn>,
    /// Last position the client reported written.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub write_lsn: Option<Lsn>,
    /// Last position the client reported flushed.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub flush_lsn: Option<Lsn>,
    /// Last position the standby reported replayed.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub replay_lsn: Option<Lsn>,
    /// Seconds since the client's last reply (12+): every position above is only as fresh as
    /// that.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub feedback_age_seconds: Option<f64>,
    /// Whether this role sees the row's figures (pg_monitor or pg_read_all_stats).
    pub visible: bool,
    /// Why figures are null (privilege, no reply yet, idle and caught up), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub note: Option<String>,
}

/// `reference − lsn` in bytes, exact; a position ahead of the reference counts as no lag
/// (the two are read at slightly different moments).
pub fn lag_bytes(reference: Lsn, lsn: Option<Lsn>) -> Option<u64> {
    lsn.map(|l| reference.0.saturating_sub(l.0))
}

impl WalSender {
    /// Fills the byte lags against `reference` (the primary's current position, or on a
    /// cascading standby the position it can send up to), the kind and the notes.
    pub fn compute(&mut self, reference: Lsn, ctx: SenderContext<'_>) {
        self.sent_lag_bytes = lag_bytes(reference, self.sent_lsn);
        self.write_lag_bytes = lag_bytes(reference, self.write_lsn);
        self.flush_lag_bytes = lag_bytes(reference, self.flush_lsn);
        self.replay_lag_bytes = lag_bytes(reference, self.replay_lsn);
        // Without pg_read_all_stats every column but pid (and the activity columns) is NULL.
        self.visible = self.state.is_some();
        self.kind = self.kind_of(ctx);
        self.note = self.note_of();
    }

    fn kind_of(&self, ctx: SenderContext<'_>) -> SenderKind {
        let app = self.application_name.as_deref().unwrap_or("");
        let basebackup_slot = ctx.slot_temporary == Some(true)
            && self
                .slot
                .as_deref()
                .is_some_and(|s| s.starts_with("pg_basebackup_"));
        if !self.visible {
            SenderKind::Unknown
        } else if ctx.slot_type == Some("logical") || ctx.database.is_some() {
            SenderKind::Logical
        } else if self.state.as_deref() == Some("backup")
            || app == "pg_basebackup"
            || basebackup_slot
        {
            SenderKind::Backup
        } else if self.replay_lsn.is_none()
            && (self.write_lsn.is_some() || RECEIVEWAL_NAMES.contains(&app))
        {
            SenderKind::Receivewal
        } else {
            SenderKind::Physical
        }
    }

    fn note_of(&self) -> Option<String> {
        let no_time_lags = self.replay_lag_seconds.is_none()
            && self.flush_lag_seconds.is_none()
            && self.write_lag_seconds.is_none();
        let no_reply = self.write_lsn.is_none() && self.replay_lsn.is_none();
        Some(match self.kind {
            SenderKind::Unknown => NOT_VISIBLE.to_string(),
            SenderKind::Backup => "a base backup (pg_basebackup) or its WAL stream: transient, not a standby".into(),
            SenderKind::Receivewal if no_reply => "receives WAL without replaying it (pg_receivewal): not a standby; no reply yet, so write and flush positions unknown".into(),
            SenderKind::Receivewal => format!(
                "receives and writes WAL without replaying it (pg_receivewal, as Barman runs it): not a standby, it cannot take over; replay position never reported{}",
                if self.flush_lsn.is_none() {
                    "; flush position not reported (no slot and not --synchronous)"
                } else {
                    ""
                }
            ),
            SenderKind::Physical if no_reply => {
                "no reply from the standby yet: write, flush and replay positions unknown".into()
            }
            SenderKind::Logical if no_time_lags => {
                "no time lags: the logical consumer sends no tracking replies".into()
            }
            SenderKind::Physical if no_time_lags => {
                "no time lags: no WAL sent recently (idle and caught up) or no reply yet".into()
            }
            SenderKind::Physical | SenderKind::Logical => return None,
        })
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

    /// Whether it is a physical standby in state streaming: what `--min-standbys` counts.
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

/// A row of `pg_replication_slots`. Columns a server version lacks are null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// The slot's name.
    pub slot_name: String,
    /// Whether a consumer is connected to it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub active: Option<bool>,
    /// WAL the slot keeps from removal: the reference position minus restart_lsn.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub retained_bytes: Option<u64>,
    /// physical or logical.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub slot_type: Option<String>,
    /// The database of a logical slot.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub database: Option<String>,
    /// A temporary slot (pg_basebackup's) lives only as long as its session; the byte limits
    /// do not apply to it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub temporary: Option<bool>,
    /// The oldest WAL position the slot's consumer may still need.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub restart_lsn: Option<Lsn>,
    /// Logical slots: the position the consumer confirmed.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub confirmed_flush_lsn: Option<Lsn>,
    /// Logical slots: the reference position minus confirmed_flush_lsn.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub consumer_lag_bytes: Option<u64>,
    /// 13+: reserved, extended, unreserved or lost.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_status: Option<String>,
    /// 13+: bytes that can still be written before the slot is in danger of losing WAL (null
    /// when max_slot_wal_keep_size is unlimited).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub safe_wal_size: Option<i64>,
    /// 16+: a logical slot invalidated by a conflict with recovery.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub conflicting: Option<bool>,
    /// 17+: when the slot last lost its consumer (RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub inactive_since: Option<DateTime<Utc>>,
    /// 17+: why the slot was invalidated (wal_removed, rows_removed, wal_level_insufficient,
    /// idle_timeout).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub invalidation_reason: Option<String>,
}

impl Slot {
    /// Fills the byte figures against the reference position.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Archiver {
    /// The last WAL file archived.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_archived_wal: Option<String>,
    /// When it was archived (RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_archived_time: Option<DateTime<Utc>>,
    /// Failed attempts since `stats_reset`, as PostgreSQL counts them.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub failed_count: Option<i64>,
    /// The WAL file of the last failed attempt.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_failed_wal: Option<String>,
    /// When the last attempt failed (RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_failed_time: Option<DateTime<Utc>>,
    /// The last attempt failed (its failure is newer than the last success).
    pub failing: bool,
    /// 0 when the last attempt succeeded; `failed_count` when nothing succeeded since the
    /// reset; null when failing after an earlier success (PostgreSQL keeps no count per
    /// streak: `failed_count` is then an upper bound).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub failures_since_last_success: Option<i64>,
    /// WAL files archived since `stats_reset`.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub archived_count: Option<i64>,
    /// When the archiver's statistics were last reset (RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub stats_reset: Option<DateTime<Utc>>,
    /// `.ready` files waiting in pg_wal/archive_status (12+, needs pg_monitor).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pending_segments: Option<i64>,
    /// The archive_mode setting: off, on or always.
    pub archive_mode: String,
    /// Whether archive_command (or, from 15, archive_library) is set; null when this role
    /// cannot read them. archive_mode on with neither set archives nothing: every segment
    /// stays in pg_wal, marked .ready.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub archive_configured: Option<bool>,
}

impl Archiver {
    /// Fills `failures_since_last_success`.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WalReceiver {
    /// streaming, starting, waiting, restarting or stopping (null when not visible).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub status: Option<String>,
    /// The WAL receiver's process id.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pid: Option<i64>,
    /// The host it streams from (11+).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub sender_host: Option<String>,
    /// The port it streams from (11+).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub sender_port: Option<i64>,
    /// The slot it streams through (primary_slot_name).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub slot_name: Option<String>,
    /// Received and flushed (`received_lsn` before 13).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub flushed_lsn: Option<Lsn>,
    /// 13+: received and written, maybe not flushed.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub written_lsn: Option<Lsn>,
    /// The timeline of the last position received.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub received_tli: Option<i64>,
    /// The end of WAL the primary last reported.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub latest_end_lsn: Option<Lsn>,
    /// When the primary sent the last message received (its clock; RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_msg_send_time: Option<DateTime<Utc>>,
    /// When the last message from the primary arrived (RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_msg_receipt_time: Option<DateTime<Utc>>,
    /// Seconds since then, by the standby's clock; the stream is cut when this exceeds
    /// wal_receiver_timeout.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_msg_receipt_age_seconds: Option<f64>,
    /// When the primary reported latest_end_lsn (RFC 3339, UTC).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub latest_end_time: Option<DateTime<Utc>>,
    /// Whether this role sees the receiver's figures.
    pub visible: bool,
    /// Why figures are null, or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub note: Option<String>,
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
    /// replayed (an idle primary is no delay), else the age of the last replayed commit.
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

    fn sender(
        app: &str,
        state: &str,
        positions: [Option<&str>; 3],
        slot: Option<&str>,
        ctx: SenderContext<'_>,
    ) -> WalSender {
        let [write, flush, replay] = positions.map(|p| p.map(lsn));
        let mut s = WalSender {
            application_name: Some(app.into()),
            client_addr: None,
            state: Some(state.into()),
            sync_state: Some("async".into()),
            sent_lag_bytes: None,
            write_lag_bytes: None,
            flush_lag_bytes: None,
            replay_lag_bytes: None,
            write_lag_seconds: None,
            flush_lag_seconds: None,
            replay_lag_seconds: None,
            slot: slot.map(str::to_string),
            kind: SenderKind::Unknown,
            pid: Some(7),
            user: None,
            sent_lsn: write,
            write_lsn: write,
            flush_lsn: flush,
            replay_lsn: replay,
            feedback_age_seconds: None,
            visible: false,
            note: None,
        };
        s.compute(lsn("0/3000000"), ctx);
        s
    }

    #[test]
    fn walsenders_are_what_they_are() {
        let at = Some("0/3000000");
        let none = SenderContext::default();
        // A standby replies with its replay position.
        let s = sender("walreceiver", "streaming", [at, at, at], None, none);
        assert_eq!(s.kind, SenderKind::Physical);
        assert!(s.is_streaming_standby());
        // pg_receivewal with a slot (as Barman runs it): write and flush, never replay.
        let physical_slot = SenderContext {
            slot_type: Some("physical"),
            ..none
        };
        let r = sender(
            "barman_receive_wal",
            "streaming",
            [at, at, None],
            Some("barman"),
            physical_slot,
        );
        assert_eq!(r.kind, SenderKind::Receivewal);
        assert!(!r.is_streaming_standby());
        let note = r.note.unwrap();
        assert!(
            note.contains("never reported") && !note.contains("flush position"),
            "{note}"
        );
        // Under any name, without a slot: no flush position either.
        let r = sender("archiver", "streaming", [at, None, None], None, none);
        assert_eq!(r.kind, SenderKind::Receivewal);
        assert!(r.note.unwrap().contains("flush position not reported"));
        // pg_basebackup: the backup itself, and its WAL stream under another name.
        let b = sender("x", "backup", [None, None, None], None, none);
        assert_eq!(b.kind, SenderKind::Backup);
        let temp = SenderContext {
            slot_type: Some("physical"),
            slot_temporary: Some(true),
            ..none
        };
        let b = sender(
            "x",
            "streaming",
            [at, None, None],
            Some("pg_basebackup_4242"),
            temp,
        );
        assert_eq!(b.kind, SenderKind::Backup);
        // Logical: from a logical slot, or bound to a database.
        let l = sender(
            "sub",
            "streaming",
            [at, at, None],
            Some("sub"),
            SenderContext {
                slot_type: Some("logical"),
                ..none
            },
        );
        assert_eq!(l.kind, SenderKind::Logical);
        let l = sender(
            "sub",
            "catchup",
            [None, None, None],
            None,
            SenderContext {
                database: Some("app"),
                ..none
            },
        );
        assert_eq!(l.kind, SenderKind::Logical);
        // A standby that has not replied yet is still a standby, and says so.
        let s = sender("walreceiver", "startup", [None, None, None], None, none);
        assert_eq!(s.kind, SenderKind::Physical);
        assert!(s.note.unwrap().contains("no reply"));
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
