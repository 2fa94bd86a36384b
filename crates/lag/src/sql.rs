//! The SQL repl-lag sends, chosen by server version (`server_version_num`).
//!
//! Every LSN travels as text and is parsed to a `u64` in Rust, so byte lags are exact integers
//! (`pg_wal_lsn_diff` returns numeric, which drivers often squeeze into a float). Timestamps
//! are formatted by the server as RFC 3339 in UTC. Ages use `clock_timestamp()`, not `now()`
//! (the transaction start).
//!
//! Column history (release notes 10–17): 10 renamed `*_location` to `*_lsn` and added
//! `write_lag/flush_lag/replay_lag`; 11 added `sender_host/sender_port` to
//! `pg_stat_wal_receiver`; 12 added `reply_time` and `pg_ls_archive_statusdir()`; 13 renamed
//! `received_lsn` to `flushed_lsn`, added `written_lsn`, and added `wal_status/safe_wal_size`
//! to `pg_replication_slots`; 14 added `pg_get_wal_replay_pause_state()`; 16 added
//! `conflicting`; 17 added `inactive_since` and `invalidation_reason`.

/// The oldest server repl-lag knows the catalogs of.
pub const MIN_VERSION_NUM: i64 = 100000;

/// `expr` as RFC 3339 text in UTC (NULL stays NULL).
fn ts(expr: &str) -> String {
    format!("to_char(({expr}) at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")
}

/// Seconds from `expr` (a timestamptz) to now, by the server's clock.
fn age(expr: &str) -> String {
    format!("extract(epoch from clock_timestamp() - ({expr}))")
}

/// One row with a column per setting, `aggregate` of its `setting`, from one scan of
/// pg_settings. pg_settings leaves out what this role may not read (primary_conninfo without
/// pg_read_all_settings), so such a column is NULL, never an error; a setting this version
/// lacks (archive_library before 15) is NULL too. Each scan builds every setting's row (several
/// ms on a busy server), hence one scan, not one subquery per setting.
fn settings(columns: &[(&str, &str)]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|(name, agg)| format!("{agg} filter (where name = '{name}') as {name}"))
        .collect();
    let names: Vec<String> = columns.iter().map(|(n, _)| format!("'{n}'")).collect();
    format!(
        "select {} from pg_settings where name in ({})",
        cols.join(", "),
        names.join(", ")
    )
}

/// First statement: what the server is and what this role may see. Written so that it runs
/// on any version (the role and function it asks about may not exist there).
pub const PROBE: &str = "select current_setting('server_version_num') as version_num, \
     current_setting('server_version') as version, \
     pg_is_in_recovery() as in_recovery, \
     current_user as role, \
     case when current_setting('server_version_num')::int >= 100000 \
          then pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') end as read_all_stats, \
     case when current_setting('server_version_num')::int >= 120000 \
          then has_function_privilege('pg_ls_archive_statusdir()', 'execute') end as ls_archive_status";

/// Header of a primary: the reference position and the archiving settings; whether anything
/// archives is archive_command or (15+) archive_library set.
pub fn primary_header() -> String {
    format!(
        "select pg_current_wal_lsn()::text as server_lsn, {} as checked_at, \
         current_setting('archive_mode') as archive_mode, \
         s.archive_command or coalesce(s.archive_library, false) as archive_configured \
         from ({}) s",
        ts("clock_timestamp()"),
        settings(&[
            ("archive_command", "bool_or(setting <> '')"),
            ("archive_library", "bool_or(setting <> '')"),
        ])
    )
}

/// Header of a standby. Replay is read before receive, in one statement, so that replay
/// advancing between the two reads cannot produce a negative backlog.
pub fn standby_header(version: i64) -> String {
    let paused = if version >= 140000 {
        "pg_get_wal_replay_pause_state()"
    } else {
        "case when pg_is_wal_replay_paused() then 'paused' else 'not paused' end"
    };
    format!(
        "select pg_last_wal_replay_lsn()::text as replay_lsn, \
         pg_last_wal_receive_lsn()::text as receive_lsn, \
         {last} as last_replay_time, \
         {last_age} as last_replay_age, \
         {paused} as pause_state, \
         {now} as checked_at, \
         s.recovery_min_apply_delay as min_apply_delay_ms, \
         s.wal_receiver_timeout as wal_receiver_timeout_ms, \
         s.primary_conninfo as streaming_configured \
         from ({settings}) s",
        last = ts("pg_last_xact_replay_timestamp()"),
        last_age = age("pg_last_xact_replay_timestamp()"),
        now = ts("clock_timestamp()"),
        settings = settings(&[
            ("recovery_min_apply_delay", "max(setting)"),
            ("wal_receiver_timeout", "max(setting)"),
            ("primary_conninfo", "bool_or(setting <> '')"),
        ]),
    )
}

/// The light re-sample used to tell a standby that keeps up from one that is stuck.
pub const STANDBY_RESAMPLE: &str = "select pg_last_wal_replay_lsn()::text as replay_lsn, \
     pg_last_wal_receive_lsn()::text as receive_lsn, \
     extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) as last_replay_age";

/// One row per WAL sender (standbys, WAL receivers such as pg_receivewal, logical consumers,
/// base backups), with what tells them apart: its slot (type, temporary) and the database
/// its connection is bound to (only a logical walsender's is: `replication=database`).
pub fn senders(version: i64) -> String {
    let reply_age = if version >= 120000 {
        age("r.reply_time")
    } else {
        "null".into()
    };
    format!(
        "select r.pid, r.usename, r.application_name, host(r.client_addr) as client_addr, \
         r.state, r.sync_state, r.sent_lsn::text as sent_lsn, r.write_lsn::text as write_lsn, \
         r.flush_lsn::text as flush_lsn, r.replay_lsn::text as replay_lsn, \
         extract(epoch from r.write_lag) as write_lag, \
         extract(epoch from r.flush_lag) as flush_lag, \
         extract(epoch from r.replay_lag) as replay_lag, \
         {reply_age} as reply_age, \
         s.slot_name, s.slot_type, s.temporary as slot_temporary, a.datname \
         from pg_stat_replication r left join pg_replication_slots s on s.active_pid = r.pid \
         left join pg_stat_activity a on a.pid = r.pid \
         order by r.application_name, r.pid"
    )
}

/// Replication slots with what this version knows about them.
pub fn slots(version: i64) -> String {
    let v13 = if version >= 130000 {
        "wal_status, safe_wal_size"
    } else {
        "null as wal_status, null as safe_wal_size"
    };
    let v16 = if version >= 160000 {
        "conflicting"
    } else {
        "null as conflicting"
    };
    let v17 = if version >= 170000 {
        format!(
            "{} as inactive_since, invalidation_reason",
            ts("inactive_since")
        )
    } else {
        "null as inactive_since, null as invalidation_reason".into()
    };
    format!(
        "select slot_name, slot_type, database, active, temporary, \
         restart_lsn::text as restart_lsn, confirmed_flush_lsn::text as confirmed_flush_lsn, \
         {v13}, {v16}, {v17} from pg_replication_slots order by slot_name"
    )
}

/// The archiver's counters; the `.ready` count when this role may list archive_status.
pub fn archiver(ls_archive_status: bool) -> String {
    let pending = if ls_archive_status {
        "(select count(*) from pg_ls_archive_statusdir() where name like '%.ready')"
    } else {
        "null"
    };
    format!(
        "select archived_count, last_archived_wal, {la} as last_archived_time, \
         failed_count, last_failed_wal, {lf} as last_failed_time, {sr} as stats_reset, \
         (last_failed_time is not null and \
          (last_archived_time is null or last_failed_time > last_archived_time)) as failing, \
         {pending} as pending_segments from pg_stat_archiver",
        la = ts("last_archived_time"),
        lf = ts("last_failed_time"),
        sr = ts("stats_reset"),
    )
}

/// The WAL receiver of a standby (no row when none runs).
pub fn wal_receiver(version: i64) -> String {
    let flushed = if version >= 130000 {
        "flushed_lsn::text as flushed_lsn, written_lsn::text as written_lsn"
    } else {
        "received_lsn::text as flushed_lsn, null as written_lsn"
    };
    let sender = if version >= 110000 {
        "sender_host, sender_port"
    } else {
        "null as sender_host, null as sender_port"
    };
    format!(
        "select pid, status, {flushed}, received_tli, latest_end_lsn::text as latest_end_lsn, \
         {send} as last_msg_send_time, {recv} as last_msg_receipt_time, \
         {recv_age} as last_msg_receipt_age, {lend} as latest_end_time, slot_name, {sender} \
         from pg_stat_wal_receiver",
        send = ts("last_msg_send_time"),
        recv = ts("last_msg_receipt_time"),
        recv_age = age("last_msg_receipt_time"),
        lend = ts("latest_end_time"),
    )
}

/// The batch for a primary: senders, slots, header, archiver (one round trip).
pub fn primary_batch(version: i64, ls_archive_status: bool) -> String {
    // The senders and slots before the reference position: WAL only grows, so every sent,
    // flushed or replayed position read first is at or before it, and no lag is cut to 0
    // because a sender moved past a position read earlier (under load it always had).
    [
        senders(version),
        slots(version),
        primary_header(),
        archiver(ls_archive_status),
    ]
    .join(";\n")
}

/// The batch for a standby: header, receiver, downstream senders, slots.
pub fn standby_batch(version: i64) -> String {
    [
        standby_header(version),
        wal_receiver(version),
        senders(version),
        slots(version),
    ]
    .join(";\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_follow_the_version() {
        assert!(wal_receiver(120000).contains("received_lsn::text as flushed_lsn"));
        assert!(wal_receiver(130000).contains("written_lsn::text as written_lsn"));
        assert!(wal_receiver(100000).contains("null as sender_host"));
        assert!(slots(120000).contains("null as wal_status"));
        assert!(slots(130000).contains("wal_status, safe_wal_size"));
        assert!(slots(160000).contains("null as inactive_since"));
        assert!(
            slots(170000).contains("invalidation_reason,")
                || slots(170000).contains("invalidation_reason from")
        );
        assert!(senders(110000).contains("null as reply_age"));
        assert!(senders(120000).contains("r.reply_time"));
        assert!(standby_header(130000).contains("pg_is_wal_replay_paused"));
        assert!(standby_header(140000).contains("pg_get_wal_replay_pause_state"));
        assert!(!archiver(false).contains("pg_ls_archive_statusdir"));
        assert!(archiver(true).contains("pg_ls_archive_statusdir"));
    }

    #[test]
    fn batches_have_one_statement_per_part() {
        assert_eq!(primary_batch(150000, true).matches(";\n").count(), 3);
        assert_eq!(standby_batch(150000).matches(";\n").count(), 3);
    }
}
