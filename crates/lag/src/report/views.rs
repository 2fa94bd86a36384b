//! Rows of PostgreSQL's other views a report holds: `pg_replication_slots`,
//! `pg_stat_archiver`, `pg_stat_wal_receiver`.

use super::lag_bytes;
use chrono::{DateTime, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};

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
