//! One WAL sender (a row of `pg_stat_replication`): what it serves, its lags, its note.

use super::{lag_bytes, NOT_VISIBLE};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
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
}
