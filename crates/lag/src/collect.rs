//! Reading one server: a probe (version, role, privileges), then one batch of statements
//! chosen for that version and role. Two round trips, plus short re-samples on a standby that
//! is behind at the first look.

use crate::report::{
    lag_bytes, Archiver, Positions, PrimaryReport, PrimaryRole, SenderContext, SenderKind,
    ServerReport, Slot, StandbyReport, StandbyRole, Status, WalReceiver, WalSender,
};
use crate::sql;
use chrono::{DateTime, Utc};
use pgdr_core::conn::{error_text, ConnParams};
use pgdr_core::{Error, Result};
use pgdr_pgformat::Lsn;
use postgres::{SimpleQueryMessage, SimpleQueryRow};
use std::time::{Duration, Instant};

/// How long a standby that is behind at the first look is watched for keeping up.
const RESAMPLE_FOR: Duration = Duration::from_millis(300);
/// The first wait; each next one doubles, up to [`RESAMPLE_MAX`]. A standby that keeps up
/// replays what it received within a millisecond or two, so the first looks come early: on a
/// busy primary nearly every check finds its standby "behind" for an instant.
const RESAMPLE_FIRST: Duration = Duration::from_millis(1);
const RESAMPLE_MAX: Duration = Duration::from_millis(25);

/// The rows of each statement of a batch, in order.
fn batch(client: &mut postgres::Client, sql: &str, what: &str) -> Result<Vec<Vec<SimpleQueryRow>>> {
    let msgs = client
        .simple_query(sql)
        .map_err(|e| Error::failed(format!("cannot read {what}")).because(error_text(&e)))?;
    let mut out = vec![Vec::new()];
    for m in msgs {
        match m {
            SimpleQueryMessage::Row(r) => out.last_mut().expect("non-empty").push(r),
            SimpleQueryMessage::CommandComplete(_) => out.push(Vec::new()),
            _ => {}
        }
    }
    out.pop();
    Ok(out)
}

fn bad_value(col: &str, v: &str, why: impl std::fmt::Display) -> Error {
    Error::failed(format!("unexpected value {v:?} in column {col}")).because(why)
}

fn text(r: &SimpleQueryRow, col: &str) -> Option<String> {
    r.get(col).map(str::to_string)
}
fn lsn(r: &SimpleQueryRow, col: &str) -> Result<Option<Lsn>> {
    r.get(col)
        .map(|v| v.parse::<Lsn>().map_err(|e| bad_value(col, v, e)))
        .transpose()
}
fn int(r: &SimpleQueryRow, col: &str) -> Result<Option<i64>> {
    r.get(col)
        .map(|v| v.parse::<i64>().map_err(|e| bad_value(col, v, e)))
        .transpose()
}
fn float(r: &SimpleQueryRow, col: &str) -> Result<Option<f64>> {
    r.get(col)
        .map(|v| v.parse::<f64>().map_err(|e| bad_value(col, v, e)))
        .transpose()
}
/// A timestamp as the server formats it (RFC 3339 in UTC, see `sql::ts`).
///
/// # Errors
/// Text that is not RFC 3339.
pub fn server_time(v: &str) -> std::result::Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc))
}
fn time(r: &SimpleQueryRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    r.get(col)
        .map(|v| server_time(v).map_err(|e| bad_value(col, v, e)))
        .transpose()
}
fn boolean(r: &SimpleQueryRow, col: &str) -> Option<bool> {
    r.get(col).map(|v| v == "t")
}

/// What the probe learns.
struct Probe {
    version_num: i64,
    version: String,
    in_recovery: bool,
    user: String,
    read_all_stats: bool,
    ls_archive_status: bool,
}

fn probe(client: &mut postgres::Client) -> Result<Probe> {
    // A monitoring check must not hang on a stuck server.
    let q = format!("set statement_timeout = '10s'; {}", sql::PROBE);
    let rows = batch(client, &q, "the server version")?;
    let r = rows
        .last()
        .and_then(|s| s.first())
        .ok_or_else(|| Error::failed("the server answered the probe with no row"))?;
    Ok(Probe {
        version_num: int(r, "version_num")?.unwrap_or(0),
        version: text(r, "version").unwrap_or_default(),
        in_recovery: boolean(r, "in_recovery").unwrap_or(false),
        user: text(r, "role").unwrap_or_default(),
        read_all_stats: boolean(r, "read_all_stats").unwrap_or(false),
        ls_archive_status: boolean(r, "ls_archive_status").unwrap_or(false),
    })
}

/// `host:port` of the first host, to label metrics.
pub fn instance(params: &ConnParams) -> String {
    let first = |k: &str| {
        params
            .get(k)
            .map(|v| v.split(',').next().unwrap_or("").to_string())
    };
    format!(
        "{}:{}",
        first("host")
            .or_else(|| first("hostaddr"))
            .unwrap_or_default(),
        first("port").unwrap_or_default()
    )
}

/// Connects and reads one server: a primary's or a standby's report, with no verdict yet
/// (status OK, no problems: [`crate::verdict::evaluate`] fills them).
///
/// # Errors
/// Cannot connect, a query refused, a server older than 10 or an answer that does not parse:
/// the caller's UNKNOWN.
pub fn read_server(params: &ConnParams) -> Result<ServerReport> {
    let mut client = params.connect()?;
    let p = probe(&mut client)?;
    if p.version_num < sql::MIN_VERSION_NUM {
        return Err(
            Error::failed(format!("server version {} is not supported", p.version))
                .because("repl-lag reads the catalogs of PostgreSQL 10 and later"),
        );
    }
    let who = Head {
        server: params.describe(),
        version: p.version.clone(),
        user: p.user.clone(),
        read_all_stats: p.read_all_stats,
    };
    if p.in_recovery {
        read_standby(&mut client, &p, who)
    } else {
        read_primary(&mut client, &p, who)
    }
}

/// What every report starts with.
struct Head {
    server: String,
    version: String,
    user: String,
    read_all_stats: bool,
}

fn checked_at(h: &SimpleQueryRow) -> Result<DateTime<Utc>> {
    time(h, "checked_at")?.ok_or_else(|| Error::failed("the server returned no clock_timestamp()"))
}

fn senders(rows: &[SimpleQueryRow], reference: Lsn) -> Result<Vec<WalSender>> {
    let mut out = Vec::new();
    for r in rows {
        let mut s = WalSender {
            application_name: text(r, "application_name"),
            client_addr: text(r, "client_addr"),
            state: text(r, "state"),
            sync_state: text(r, "sync_state"),
            sent_lag_bytes: None,
            write_lag_bytes: None,
            flush_lag_bytes: None,
            replay_lag_bytes: None,
            write_lag_seconds: float(r, "write_lag")?,
            flush_lag_seconds: float(r, "flush_lag")?,
            replay_lag_seconds: float(r, "replay_lag")?,
            slot: text(r, "slot_name"),
            kind: SenderKind::Unknown,
            pid: int(r, "pid")?,
            user: text(r, "usename"),
            sent_lsn: lsn(r, "sent_lsn")?,
            write_lsn: lsn(r, "write_lsn")?,
            flush_lsn: lsn(r, "flush_lsn")?,
            replay_lsn: lsn(r, "replay_lsn")?,
            feedback_age_seconds: float(r, "reply_age")?,
            visible: false,
            note: None,
        };
        s.compute(
            reference,
            SenderContext {
                slot_type: r.get("slot_type"),
                slot_temporary: boolean(r, "slot_temporary"),
                database: r.get("datname"),
            },
        );
        out.push(s);
    }
    Ok(out)
}

fn slots(rows: &[SimpleQueryRow], reference: Lsn) -> Result<Vec<Slot>> {
    let mut out = Vec::new();
    for r in rows {
        let mut s = Slot {
            slot_name: text(r, "slot_name").unwrap_or_default(),
            active: boolean(r, "active"),
            retained_bytes: None,
            slot_type: text(r, "slot_type"),
            database: text(r, "database"),
            temporary: boolean(r, "temporary"),
            restart_lsn: lsn(r, "restart_lsn")?,
            confirmed_flush_lsn: lsn(r, "confirmed_flush_lsn")?,
            consumer_lag_bytes: None,
            wal_status: text(r, "wal_status"),
            safe_wal_size: int(r, "safe_wal_size")?,
            conflicting: boolean(r, "conflicting"),
            inactive_since: time(r, "inactive_since")?,
            invalidation_reason: text(r, "invalidation_reason"),
        };
        s.compute(reference);
        out.push(s);
    }
    Ok(out)
}

fn read_primary(client: &mut postgres::Client, p: &Probe, who: Head) -> Result<ServerReport> {
    let b = batch(
        client,
        &sql::primary_batch(p.version_num, p.ls_archive_status),
        "the replication statistics",
    )?;
    let [snd, slt, head, arc] = b.as_slice() else {
        return Err(Error::failed("unexpected answer from the server")
            .because(format!("{} result sets instead of 4", b.len())));
    };
    let h = head
        .first()
        .ok_or_else(|| Error::failed("the server returned no current WAL position"))?;
    let server_lsn = lsn(h, "server_lsn")?.unwrap_or_default();
    let standbys = senders(snd, server_lsn)?;
    let slots = slots(slt, server_lsn)?;
    let a = arc
        .first()
        .ok_or_else(|| Error::failed("pg_stat_archiver returned no row"))?;
    let mut archiver = Archiver {
        last_archived_wal: text(a, "last_archived_wal"),
        last_archived_time: time(a, "last_archived_time")?,
        failed_count: int(a, "failed_count")?,
        last_failed_wal: text(a, "last_failed_wal"),
        last_failed_time: time(a, "last_failed_time")?,
        failing: boolean(a, "failing").unwrap_or(false),
        failures_since_last_success: None,
        archived_count: int(a, "archived_count")?,
        stats_reset: time(a, "stats_reset")?,
        pending_segments: int(a, "pending_segments")?,
        archive_mode: text(h, "archive_mode").unwrap_or_default(),
        archive_configured: boolean(h, "archive_configured"),
    };
    archiver.compute();
    let standbys_streaming = if standbys.iter().any(|s| !s.visible) {
        None
    } else {
        Some(standbys.iter().filter(|s| s.is_streaming_standby()).count())
    };
    Ok(ServerReport::Primary(Box::new(PrimaryReport {
        server: who.server,
        status: Status::Ok,
        problems: Vec::new(),
        server_version: who.version,
        checked_at: checked_at(h)?,
        user: who.user,
        can_read_all_stats: who.read_all_stats,
        role: PrimaryRole::Primary,
        server_lsn,
        standbys_streaming,
        standbys,
        slots,
        archiver,
    })))
}

fn positions(r: &SimpleQueryRow) -> Result<Positions> {
    Ok(Positions {
        receive: lsn(r, "receive_lsn")?,
        replay: lsn(r, "replay_lsn")?,
        last_replay_age: float(r, "last_replay_age")?,
    })
}

fn read_standby(client: &mut postgres::Client, p: &Probe, who: Head) -> Result<ServerReport> {
    let b = batch(
        client,
        &sql::standby_batch(p.version_num),
        "the recovery statistics",
    )?;
    let [head, rcv, snd, slt] = b.as_slice() else {
        return Err(Error::failed("unexpected answer from the server")
            .because(format!("{} result sets instead of 4", b.len())));
    };
    let h = head
        .first()
        .ok_or_else(|| Error::failed("the server returned no recovery position"))?;
    let first = positions(h)?;
    let mut last = first;
    // Behind at the first look: watch briefly whether replay reaches what was received then.
    if !first.caught_up() && first.receive.is_some() {
        let deadline = Instant::now() + RESAMPLE_FOR;
        let mut wait = RESAMPLE_FIRST;
        while Instant::now() < deadline {
            std::thread::sleep(wait);
            wait = (wait * 2).min(RESAMPLE_MAX);
            let rows = batch(client, sql::STANDBY_RESAMPLE, "the recovery position")?;
            if let Some(r) = rows.first().and_then(|s| s.first()) {
                last = positions(r)?;
            }
            if matches!((first.receive, last.replay), (Some(rc), Some(rp)) if rp >= rc) {
                break;
            }
        }
    }
    let (caught_up, replay_delay_seconds) = crate::report::replay_delay(&first, &last);
    let wal_receiver = match rcv.first() {
        None => None,
        Some(r) => {
            let status = text(r, "status");
            let visible = status.is_some();
            Some(WalReceiver {
                status,
                pid: int(r, "pid")?,
                sender_host: text(r, "sender_host"),
                sender_port: int(r, "sender_port")?,
                slot_name: text(r, "slot_name"),
                flushed_lsn: lsn(r, "flushed_lsn")?,
                written_lsn: lsn(r, "written_lsn")?,
                received_tli: int(r, "received_tli")?,
                latest_end_lsn: lsn(r, "latest_end_lsn")?,
                last_msg_send_time: time(r, "last_msg_send_time")?,
                last_msg_receipt_time: time(r, "last_msg_receipt_time")?,
                last_msg_receipt_age_seconds: float(r, "last_msg_receipt_age")?,
                latest_end_time: time(r, "latest_end_time")?,
                visible,
                note: (!visible).then(|| crate::report::NOT_VISIBLE.to_string()),
            })
        }
    };
    // "Caught up" means with what was received: with the stream cut, how far behind the
    // primary replay is cannot be told, so it is unknown (left out of perfdata and metrics),
    // never a frozen 0.
    let streaming_configured = boolean(h, "streaming_configured");
    let fed = wal_receiver
        .as_ref()
        .is_some_and(|r| !r.visible || r.status.as_deref() == Some("streaming"));
    let replay_delay_seconds =
        replay_delay_seconds.filter(|_| fed || streaming_configured == Some(false));
    let ms = |col: &str| -> Result<Option<f64>> { Ok(float(h, col)?.map(|v| v / 1000.0)) };
    let reference = match (last.receive, last.replay) {
        (Some(a), Some(b)) => a.max(b),
        (a, b) => a.or(b).unwrap_or_default(),
    };
    let pause_state = text(h, "pause_state");
    Ok(ServerReport::Standby(Box::new(StandbyReport {
        server: who.server,
        status: Status::Ok,
        problems: Vec::new(),
        server_version: who.version,
        checked_at: checked_at(h)?,
        user: who.user,
        can_read_all_stats: who.read_all_stats,
        role: StandbyRole::Standby,
        receive_lsn: last.receive,
        replay_lsn: last.replay,
        replay_lag_bytes: last.receive.and_then(|rc| lag_bytes(rc, last.replay)),
        last_replay_time: time(h, "last_replay_time")?,
        replay_delay_seconds,
        caught_up,
        last_replay_age_seconds: last.last_replay_age,
        replay_paused: pause_state.as_deref().is_some_and(|s| s != "not paused"),
        pause_state,
        min_apply_delay_seconds: ms("min_apply_delay_ms")?,
        streaming_configured,
        wal_receiver_timeout_seconds: ms("wal_receiver_timeout_ms")?,
        wal_receiver,
        standbys: senders(snd, reference)?,
        slots: slots(slt, reference)?,
    })))
}
