//! repl-lag against real primaries and streaming standbys. (Past 600 lines: one test per
//! behaviour, each with its own real servers; the helpers are in repl_lag_support.)

mod repl_lag_support;
use repl_lag_support::*;

use pgdr_lag::report::{
    PrimaryReport, PrimaryRole, Reports, SenderKind, ServerReport, StandbyReport, StandbyRole,
    Status,
};
use pgdr_testkit::{free_port, run_ok, short_tempdir, Cluster, ToolOutput};
use std::time::Duration;

#[test]
fn healthy_pair_from_both_sides_together_and_as_metrics() {
    let p = Cluster::start();
    let s = p.standby();
    p.execute("create table t(x int); insert into t select generate_series(1, 1000)");
    wait_streaming(&p, &s);
    wait_replayed(&p, &s);
    let limits = [
        "--warn-bytes",
        "16MB",
        "--crit-bytes",
        "1GB",
        "--warn-seconds",
        "30",
        "--crit-seconds",
        "5m",
        "--min-standbys",
        "1",
    ];

    let (code, out) = check(&p.conninfo(), &limits);
    assert_eq!(out.json()["tool"], "repl-lag");
    let doc: PrimaryReport = out.document();
    assert_eq!(code, 0, "{}", messages(&doc.problems));
    assert_eq!(doc.status, Status::Ok);
    assert_eq!(doc.role, PrimaryRole::Primary);
    assert_eq!(doc.standbys_streaming, Some(1));
    let sb = &doc.standbys[0];
    assert_eq!(sb.application_name.as_deref(), Some("standby"));
    assert_eq!(sb.state.as_deref(), Some("streaming"));
    assert_eq!(sb.kind, SenderKind::Physical);
    assert!(sb.visible);
    // Exact integers: the lag is the LSN difference, as the server computes it.
    let server_lsn = doc.server_lsn;
    for (stage, bytes, pos) in [
        ("sent", sb.sent_lag_bytes, sb.sent_lsn),
        ("write", sb.write_lag_bytes, sb.write_lsn),
        ("flush", sb.flush_lag_bytes, sb.flush_lsn),
        ("replay", sb.replay_lag_bytes, sb.replay_lsn),
    ] {
        let (b, pos) = (bytes.unwrap(), pos.unwrap());
        assert_eq!(b, server_lsn.0.saturating_sub(pos.0), "{stage}");
        let diff = p
            .query_value(&format!(
                "select greatest(pg_wal_lsn_diff('{server_lsn}', '{pos}'), 0)"
            ))
            .unwrap();
        assert_eq!(diff, b.to_string());
    }
    let after = lsn(&p.query_value("select pg_current_wal_lsn()").unwrap());
    assert!(server_lsn <= after);
    assert_eq!(doc.archiver.archive_mode, "off");

    let (code, doc) = check_standby(&s.conninfo(), &limits);
    assert_eq!(code, 0, "{}", messages(&doc.problems));
    assert_eq!(doc.role, StandbyRole::Standby);
    let rcv = doc.wal_receiver.as_ref().expect("a WAL receiver");
    assert_eq!(rcv.status.as_deref(), Some("streaming"));
    assert!(doc.caught_up);
    assert_eq!(doc.replay_delay_seconds, Some(0.0));
    let (rc, rp) = (doc.receive_lsn.unwrap(), doc.replay_lsn.unwrap());
    assert_eq!(doc.replay_lag_bytes, Some(rc.0.saturating_sub(rp.0)));
    assert!(rcv.last_msg_receipt_age_seconds.is_some());

    // The query variants this server's catalogs can answer (13 to its own version) all run.
    let own: i64 = p
        .query_value("select current_setting('server_version_num')")
        .unwrap()
        .parse()
        .unwrap();
    for v in (130000..=own).step_by(10000) {
        for (c, q) in [
            (&p, pgdr_lag::sql::primary_batch(v, true)),
            (&s, pgdr_lag::sql::standby_batch(v)),
        ] {
            c.client()
                .simple_query(&q)
                .unwrap_or_else(|e| panic!("version {v}: {e}\n{q}"));
        }
    }

    // Both at once, plus a server that is not there: one report each, the worst decides.
    let dead = format!(
        "host=127.0.0.1 port={} user=postgres connect_timeout=5",
        free_port()
    );
    let out = lag([
        "-d",
        &p.conninfo(),
        "-d",
        &s.conninfo(),
        "-d",
        &dead,
        "--min-standbys",
        "1",
    ]);
    let doc: Reports = out.document();
    assert_eq!(out.code, Some(3), "{}", messages(&doc.problems));
    let reports = &doc.reports;
    assert_eq!(reports.len(), 3);
    assert!(matches!(&reports[0], ServerReport::Primary(r) if r.status == Status::Ok));
    assert!(matches!(&reports[1], ServerReport::Standby(r) if r.status == Status::Ok));
    assert!(matches!(&reports[2], ServerReport::Unreachable(r) if r.status == Status::Unknown));
    assert!(out.json()["reports"][2].get("role").is_none());
    assert_eq!(doc.status, Status::Unknown);
    assert!(
        messages(&doc.problems).contains("cannot connect"),
        "{}",
        messages(&doc.problems)
    );
    // Two healthy servers: exit 0.
    let out = lag(["-d", &p.conninfo(), "-d", &s.conninfo()]).ok();
    assert_eq!(out.document::<Reports>().status, Status::Ok);

    // The same as metrics, read by real exposition-format parsers.
    let out = lag([
        "-d",
        &p.conninfo(),
        "-d",
        &s.conninfo(),
        "--format",
        "prometheus",
    ])
    .ok();
    assert!(out.stdout.starts_with("# HELP "), "{}", out.stdout);
    let scrape = parse_prometheus(&out.stdout);
    let pserver = format!("{}:{}", p.sockdir.display(), p.port);
    let sserver = format!("{}:{}", s.sockdir.display(), s.port);
    for server in [&pserver, &sserver] {
        let up = sample(&scrape, "pgdr_repl_up", &[("server", server)]).expect("up");
        assert_eq!(gauge(up), 1.0);
    }
    let replay = sample(
        &scrape,
        "pgdr_repl_standby_lag_bytes",
        &[
            ("server", &pserver),
            ("application_name", "standby"),
            ("stage", "replay"),
        ],
    )
    .expect("per-standby replay lag");
    assert!(gauge(replay) >= 0.0);
    let rcv = sample(
        &scrape,
        "pgdr_repl_wal_receiver_streaming",
        &[("server", &sserver)],
    )
    .expect("receiver");
    assert_eq!(gauge(rcv), 1.0);
    assert!(sample(
        &scrape,
        "pgdr_repl_replay_delay_seconds",
        &[("server", &sserver)]
    )
    .is_some());

    // Under a steady write load the reference position is never behind what the sender
    // has sent (before, it was read first, and most samples under load had sent past it, so
    // the byte lags were cut to 0).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, conninfo) = (stop.clone(), p.conninfo());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.batch_execute("insert into t select generate_series(1, 2000)")
                    .unwrap();
            }
        })
    };
    for _ in 0..12 {
        let (_, doc) = check_primary(&p.conninfo(), &[]);
        for sb in &doc.standbys {
            let sent = sb.sent_lsn.unwrap();
            assert!(
                sent <= doc.server_lsn,
                "sent {sent} > server {}",
                doc.server_lsn
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn paused_replay_is_over_threshold_from_both_sides_and_a_stopped_standby_is_missed() {
    let p = Cluster::start();
    let s = p.standby();
    p.execute("create table t(x int, pad text)");
    wait_streaming(&p, &s);
    wait_replayed(&p, &s);
    s.execute("select pg_wal_replay_pause()");
    s.wait_for("select pg_get_wal_replay_pause_state() = 'paused'", WAIT);
    p.execute("insert into t select g, repeat('x', 200) from generate_series(1, 20000) g");
    // Received and flushed by the standby, not replayed.
    let cur = p.query_value("select pg_current_wal_lsn()").unwrap();
    s.wait_for(
        &format!("select pg_last_wal_receive_lsn() >= '{cur}'"),
        WAIT,
    );
    p.wait_for(
        &format!("select flush_lsn >= '{cur}' from pg_stat_replication"),
        WAIT,
    );
    // Let the last replayed commit age past --crit-seconds 1.
    std::thread::sleep(Duration::from_millis(1500));
    let limits = [
        "--warn-bytes",
        "64kB",
        "--crit-bytes",
        "1MB",
        "--crit-seconds",
        "1",
    ];

    let (code, doc) = check_primary(&p.conninfo(), &limits);
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    assert_eq!(doc.status, Status::Critical);
    let sb = &doc.standbys[0];
    let replay = sb.replay_lag_bytes.unwrap();
    assert!(replay > 1 << 20, "{sb:?}");
    assert!(sb.flush_lag_bytes.unwrap() < replay, "{sb:?}");
    assert_eq!(replay, doc.server_lsn.0 - sb.replay_lsn.unwrap().0);
    assert!(
        messages(&doc.problems).contains("--crit-bytes"),
        "{}",
        messages(&doc.problems)
    );

    let (code, doc) = check_standby(&s.conninfo(), &limits);
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    assert!(doc.replay_paused);
    assert!(!doc.caught_up);
    let backlog = doc.replay_lag_bytes.unwrap();
    assert!(backlog > 1 << 20, "{doc:?}");
    assert_eq!(
        backlog,
        doc.receive_lsn.unwrap().0 - doc.replay_lsn.unwrap().0
    );
    assert!(doc.replay_delay_seconds.unwrap() > 1.0, "{doc:?}");
    let m = messages(&doc.problems);
    assert!(
        m.contains("--crit-bytes") && m.contains("--crit-seconds"),
        "{m}"
    );
    assert!(m.contains("paused"), "{m}");

    // Resumed: healthy again.
    s.execute("select pg_wal_replay_resume()");
    wait_replayed(&p, &s);
    let (code, doc) = check_standby(&s.conninfo(), &limits);
    assert_eq!(code, 0, "{}", messages(&doc.problems));
    eventually("the primary to see the standby caught up", || {
        let (code, doc) = check_primary(&p.conninfo(), &limits);
        (code == 0).then_some(doc)
    });

    // The standby goes away: the primary misses it.
    s.stop();
    p.wait_for("select count(*) = 0 from pg_stat_replication", WAIT);
    let (code, doc) = check_primary(&p.conninfo(), &["--min-standbys", "1"]);
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    assert_eq!(doc.standbys_streaming, Some(0));
    assert!(
        messages(&doc.problems).contains("--min-standbys 1"),
        "{}",
        messages(&doc.problems)
    );
    let (code, _) = check(&p.conninfo(), &[]);
    assert_eq!(code, 0, "a lone primary without --min-standbys is fine");
}

#[test]
fn an_idle_primary_is_no_alarm() {
    let p = Cluster::start();
    let s = p.standby();
    p.execute("create table t(x int); insert into t values (1)");
    wait_streaming(&p, &s);
    wait_replayed(&p, &s);
    // Idle for longer than --crit-seconds.
    std::thread::sleep(Duration::from_secs(3));
    let limits = [
        "--warn-seconds",
        "1",
        "--crit-seconds",
        "2",
        "--crit-bytes",
        "1MB",
        "--min-standbys",
        "1",
    ];
    let (code, doc) = check_standby(&s.conninfo(), &limits);
    assert_eq!(code, 0, "{}", messages(&doc.problems));
    assert_eq!(doc.replay_delay_seconds, Some(0.0));
    // The naive measure (now − last replayed commit) would have paged.
    assert!(doc.last_replay_age_seconds.unwrap() > 2.0, "{doc:?}");
    let (code, doc) = check_primary(&p.conninfo(), &limits);
    assert_eq!(code, 0, "{}", messages(&doc.problems));
}

#[test]
fn a_stopped_primary_is_a_cut_stream_not_a_frozen_zero() {
    let p = Cluster::start();
    let s = p.standby();
    p.execute("create table t(x int); insert into t values (1)");
    wait_streaming(&p, &s);
    wait_replayed(&p, &s);
    p.stop();
    let doc = eventually("the standby to report the cut stream", || {
        let (code, doc) = check_standby(&s.conninfo(), &["--crit-bytes", "1GB"]);
        (code == 2 && doc.caught_up).then_some(doc)
    });
    assert_eq!(doc.status, Status::Critical);
    let m = messages(&doc.problems);
    assert!(m.contains("WAL receiver") && m.contains("cut"), "{m}");
    // Both positions froze together: the byte figure (received, not replayed) alone would
    // have said "no lag"; how far behind the primary replay is cannot be told, so the delay
    // is unknown, not a frozen 0, and left out of the perfdata.
    assert_eq!(doc.replay_lag_bytes, Some(0));
    assert_eq!(doc.replay_delay_seconds, None);
    let out = lag(["-d", &s.conninfo(), "--format", "nagios"]);
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    assert!(
        out.stdout.contains("replay_lag=0B") && !out.stdout.contains("replay_delay="),
        "{}",
        out.stdout
    );
    // And the multi-server view of the pair: the primary cannot be reached.
    let out = lag(["-d", &p.conninfo(), "-d", &s.conninfo()]);
    assert_eq!(
        out.code,
        Some(2),
        "CRITICAL outranks UNKNOWN: {}",
        out.stdout
    );
    // As one plugin line: the standby's CRITICAL part before the primary's UNKNOWN one,
    // although -d named the primary first (worst first).
    let out = lag([
        "-d",
        &p.conninfo(),
        "-d",
        &s.conninfo(),
        "--format",
        "nagios",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stdout);
    let (standby_at, primary_at) = (
        out.stdout.find("WAL receiver").unwrap(),
        out.stdout.find("cannot connect").unwrap(),
    );
    assert!(standby_at < primary_at, "{}", out.stdout);
}

#[test]
fn failing_archiver_and_a_slot_retaining_wal() {
    let p = Cluster::builder()
        .conf("archive_mode = on")
        .conf("archive_command = 'false'")
        .start();
    p.execute("select pg_create_physical_replication_slot('keep', true)");
    p.execute(
        "create table t(x int, pad text); \
         insert into t select g, repeat('x', 200) from generate_series(1, 20000) g",
    );
    p.execute("select pg_switch_wal()");
    p.wait_for("select failed_count > 0 from pg_stat_archiver", WAIT);

    // Failing now: a warning by default, critical past --max-archive-failures.
    let (code, doc) = check_primary(&p.conninfo(), &[]);
    assert_eq!(code, 1, "{}", messages(&doc.problems));
    assert!(doc.archiver.failing);
    assert!(doc.archiver.failed_count.unwrap() > 0);
    assert!(doc.archiver.last_failed_wal.is_some());
    let (code, doc) = check_primary(&p.conninfo(), &["--max-archive-failures", "0"]);
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    assert!(
        messages(&doc.problems).contains("archiving is failing"),
        "{}",
        messages(&doc.problems)
    );
    let (code, doc) = check_primary(&p.conninfo(), &["--max-archive-failures", "1000000"]);
    assert_eq!(code, 0, "{}", messages(&doc.problems));

    // The slot keeps WAL: exact bytes, over the limit.
    let (code, doc) = check_primary(
        &p.conninfo(),
        &["--crit-bytes", "1MB", "--max-archive-failures", "1000000"],
    );
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    let slot = doc
        .slots
        .iter()
        .find(|s| s.slot_name == "keep")
        .unwrap()
        .clone();
    assert_eq!(slot.active, Some(false));
    assert_eq!(slot.wal_status.as_deref(), Some("reserved"));
    let retained = slot.retained_bytes.unwrap();
    assert!(retained > 1 << 20, "{slot:?}");
    assert_eq!(retained, doc.server_lsn.0 - slot.restart_lsn.unwrap().0);
    assert!(
        messages(&doc.problems).contains("slot 'keep'"),
        "{}",
        messages(&doc.problems)
    );

    let out = lag([
        "-d",
        &p.conninfo(),
        "--format",
        "prometheus",
        "--crit-bytes",
        "1MB",
    ]);
    // Written is exit 0; the verdict, CRITICAL, is the status metric (below).
    assert_eq!(out.code, Some(0));
    let scrape = parse_prometheus(&out.stdout);
    let s = sample(
        &scrape,
        "pgdr_repl_slot_retained_bytes",
        &[("slot_name", "keep")],
    )
    .expect("slot metric");
    assert!(gauge(s) > (1 << 20) as f64);
    let f = sample(&scrape, "pgdr_repl_archiver_failed_total", &[]).expect("archiver");
    assert!(matches!(f.value, prometheus_parse::Value::Counter(v) if v > 0.0));
    let st = sample(&scrape, "pgdr_repl_status", &[]).unwrap();
    assert_eq!(gauge(st), 2.0);

    // Archiving works again: past failures are not the current streak.
    p.execute("alter system set archive_command = 'true'");
    p.execute("select pg_reload_conf()");
    p.execute("select pg_switch_wal()");
    p.wait_for(
        "select last_archived_time > last_failed_time from pg_stat_archiver",
        WAIT,
    );
    let (code, doc) = check_primary(&p.conninfo(), &["--max-archive-failures", "0"]);
    assert_eq!(code, 0, "{}", messages(&doc.problems));
    assert!(!doc.archiver.failing);
    assert_eq!(doc.archiver.failures_since_last_success, Some(0));
    assert!(doc.archiver.failed_count.unwrap() > 0);
}

#[test]
fn only_physical_standbys_count_and_other_walsenders_are_what_they_are() {
    let p = Cluster::builder()
        .conf("wal_level = logical")
        .conf("max_wal_senders = 10")
        .start();
    let dirs = short_tempdir("pgdr-senders-");
    let dir = |name: &str| {
        let d = dirs.path().join(name);
        std::fs::create_dir(&d).unwrap();
        pgdr_testkit::chown_to_pg_user(&d);
        d.display().to_string()
    };
    // pg_receivewal as Barman runs it (its own slot and application_name), and a plain one
    // without a slot.
    let barman = format!("{} application_name=barman_receive_wal", p.conninfo());
    run_ok(
        p.cmd("pg_receivewal")
            .args(["--create-slot", "--slot", "barman", "-d", &barman]),
    );
    let (barman_dir, plain_dir) = (dir("barman"), dir("plain"));
    let _barman = spawn(
        &p,
        "pg_receivewal",
        &[
            "-D",
            &barman_dir,
            "--slot",
            "barman",
            "--no-loop",
            "-d",
            &barman,
        ],
    );
    let _plain = spawn(
        &p,
        "pg_receivewal",
        &["-D", &plain_dir, "-d", &p.conninfo()],
    );
    // A logical consumer on its own slot.
    run_ok(p.cmd("pg_recvlogical").args([
        "-d",
        &p.conninfo(),
        "--slot",
        "sub",
        "--create-slot",
        "-P",
        "test_decoding",
    ]));
    let decoded = format!("{}/decoded.txt", dir("logical"));
    let _logical = spawn(
        &p,
        "pg_recvlogical",
        &[
            "-d",
            &p.conninfo(),
            "--slot",
            "sub",
            "--start",
            "-f",
            &decoded,
        ],
    );
    // A base backup throttled so it still runs while we look, under a name that says
    // nothing: only its state and its temporary slot tell what it is.
    let backup_dir = dir("backup");
    let nightly = format!("{} application_name=nightly", p.conninfo());
    let _backup = spawn(
        &p,
        "pg_basebackup",
        &[
            "-D",
            &backup_dir,
            "-X",
            "stream",
            "-r",
            "32k",
            "-d",
            &nightly,
        ],
    );
    p.wait_for(
        "select count(*) = 2 from pg_stat_replication \
         where application_name in ('barman_receive_wal', 'pg_receivewal') and write_lsn is not null",
        WAIT,
    );
    p.wait_for(
        "select count(*) = 2 from pg_stat_replication where application_name = 'nightly'",
        WAIT,
    );
    p.wait_for(
        "select count(*) = 1 from pg_stat_replication \
         where application_name = 'pg_recvlogical' and state = 'streaming'",
        WAIT,
    );

    // Five WAL senders, no standby.
    let (code, doc) = check_primary(&p.conninfo(), &["--min-standbys", "1"]);
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    assert_eq!(doc.standbys_streaming, Some(0));
    assert_eq!(doc.standbys.len(), 5, "{:?}", doc.standbys);
    let m = messages(&doc.problems);
    assert!(
        m.contains("--min-standbys 1") && m.contains("2 receivewal"),
        "{m}"
    );
    let named = |app: &str| {
        doc.standbys
            .iter()
            .filter(|s| s.application_name.as_deref() == Some(app))
            .collect::<Vec<_>>()
    };
    // Write is known, replay never (and flush only with a slot); the note says so.
    let b = named("barman_receive_wal")[0];
    assert_eq!(b.kind, SenderKind::Receivewal, "{b:?}");
    assert_eq!(b.slot.as_deref(), Some("barman"));
    assert!(
        b.write_lsn.is_some() && b.flush_lsn.is_some() && b.replay_lsn.is_none(),
        "{b:?}"
    );
    let note = b.note.as_deref().unwrap();
    assert!(
        note.contains("never reported") && !note.contains("unknown"),
        "{note}"
    );
    let r = named("pg_receivewal")[0];
    assert_eq!(r.kind, SenderKind::Receivewal, "{r:?}");
    assert!(
        r.write_lsn.is_some() && r.flush_lsn.is_none() && r.replay_lsn.is_none(),
        "{r:?}"
    );
    assert!(
        r.note
            .as_deref()
            .unwrap()
            .contains("flush position not reported"),
        "{r:?}"
    );
    let l = named("pg_recvlogical")[0];
    assert_eq!(l.kind, SenderKind::Logical, "{l:?}");
    let backups = named("nightly");
    assert_eq!(backups.len(), 2);
    assert!(
        backups.iter().all(|s| s.kind == SenderKind::Backup),
        "{backups:?}"
    );
    assert!(backups.iter().any(|s| s.state.as_deref() == Some("backup")));

    // A real standby joins: it alone counts.
    let s = p.standby();
    p.wait_for(
        "select count(*) = 1 from pg_stat_replication \
         where application_name = 'standby' and state = 'streaming'",
        WAIT,
    );
    let (code, doc) = check_primary(&p.conninfo(), &["--min-standbys", "1"]);
    assert_eq!(code, 0, "{}", messages(&doc.problems));
    assert_eq!(doc.standbys_streaming, Some(1));
    let (code, doc) = check_primary(&p.conninfo(), &["--min-standbys", "2"]);
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    drop(s);
}

#[test]
fn archive_mode_on_with_nothing_to_archive_is_a_problem_and_archive_library_counts() {
    // archive_command is empty by default: PostgreSQL archives nothing, counts no failure,
    // and keeps every segment.
    let p = Cluster::builder().conf("archive_mode = on").start();
    p.execute("create table t as select generate_series(1, 1000) x");
    for _ in 0..2 {
        p.execute("insert into t values (1); select pg_switch_wal()");
    }
    p.wait_for(
        "select count(*) >= 2 from pg_ls_archive_statusdir() where name like '%.ready'",
        WAIT,
    );
    let (code, doc) = check_primary(&p.conninfo(), &["--max-archive-failures", "0"]);
    assert_eq!(code, 2, "{}", messages(&doc.problems));
    assert_eq!(doc.archiver.archive_configured, Some(false));
    assert!(!doc.archiver.failing, "PostgreSQL counts no failure here");
    assert!(
        doc.archiver.pending_segments.unwrap() >= 2,
        "{:?}",
        doc.archiver
    );
    let m = messages(&doc.problems);
    assert!(m.contains("archive_command is empty"), "{m}");
    let (code, doc) = check_primary(&p.conninfo(), &[]);
    assert_eq!(
        code,
        1,
        "a warning without --max-archive-failures: {}",
        messages(&doc.problems)
    );

    // archive_library (15+) archives without archive_command.
    let version: i64 = p
        .query_value("select current_setting('server_version_num')")
        .unwrap()
        .parse()
        .unwrap();
    if version >= 150000 {
        let archive = short_tempdir("pgdr-basic-archive-");
        p.append_conf(&format!(
            "archive_library = 'basic_archive'\nbasic_archive.archive_directory = '{}'\n",
            archive.path().display()
        ));
        p.execute("select pg_reload_conf()");
        p.wait_for(
            "select count(*) = 0 from pg_ls_archive_statusdir() where name like '%.ready'",
            WAIT,
        );
        let (code, doc) = check_primary(&p.conninfo(), &["--max-archive-failures", "0"]);
        assert_eq!(code, 0, "{}", messages(&doc.problems));
        assert_eq!(doc.archiver.archive_configured, Some(true));
        assert!(
            doc.archiver.archived_count.unwrap() >= 2,
            "{:?}",
            doc.archiver
        );
    }
}

#[test]
fn nagios_line_and_prometheus_textfile_publish_bad_news_from_a_real_pair_that_breaks() {
    let p = Cluster::builder()
        .conf("archive_mode = on")
        .conf("archive_command = 'true'")
        .start();
    p.execute("select pg_create_physical_replication_slot('keep', true)");
    let s = p.standby();
    p.execute("create table t(x int); insert into t values (1)");
    wait_streaming(&p, &s);
    wait_replayed(&p, &s);
    let limits = [
        "--warn-bytes",
        "64MB",
        "--crit-bytes",
        "1GB",
        "--warn-seconds",
        "30",
        "--crit-seconds",
        "300",
        "--min-standbys",
        "1",
        "--max-archive-failures",
        "0",
    ];
    let nagios = |servers: &[&str], extra: &[&str]| {
        let mut args: Vec<&str> = Vec::new();
        for s in servers {
            args.extend(["-d", s]);
        }
        args.extend(["--format", "nagios"]);
        args.extend(extra);
        lag(args)
    };
    let (pc, sc) = (p.conninfo(), s.conninfo());

    // A healthy primary: OK, with bytes and seconds per standby, slots and the archiver.
    let (status, summary, items) = parse_nagios(&nagios(&[&pc], &limits));
    assert_eq!(status, "OK", "{summary}");
    assert!(summary.contains("1 standby(s) streaming"), "{summary}");
    let replay = perf(&items, "standby_standby_replay_lag");
    assert_eq!(
        (
            replay.uom.as_str(),
            replay.warn.as_str(),
            replay.crit.as_str(),
            replay.min.as_str()
        ),
        ("B", "67108864", "1073741824", "0")
    );
    if let Some(t) = items.iter().find(|i| i.label == "standby_standby_time_lag") {
        assert_eq!(
            (t.uom.as_str(), t.warn.as_str(), t.crit.as_str()),
            ("s", "30", "300")
        );
    }
    let streaming = perf(&items, "standbys_streaming");
    assert_eq!((streaming.value(), streaming.crit.as_str()), (1.0, "1:"));
    assert_eq!(perf(&items, "slot_keep_retained").uom, "B");
    assert_eq!(perf(&items, "archive_failed").uom, "c");
    assert_eq!(perf(&items, "archive_failures_since_success").crit, "0");
    // The pair at once: every label says its server.
    let (status, _, items) = parse_nagios(&nagios(&[&pc, &sc], &limits));
    assert_eq!(status, "OK");
    let sserver = format!("{}:{}", s.sockdir.display(), s.port);
    assert_eq!(perf(&items, &format!("{sserver}:replay_lag")).uom, "B");
    assert_eq!(perf(&items, &format!("{sserver}:replay_delay")).uom, "s");

    // The textfile pipeline publishes the good news …
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("repl.prom");
    assert!(textfile_pipeline(
        &[&pc, &sc],
        &["--min-standbys", "1"],
        &file
    ));
    let pserver = format!("{}:{}", p.sockdir.display(), p.port);
    let status_of = |text: &str, server: &str| {
        let scrape = parse_prometheus(text);
        let st = sample(&scrape, "pgdr_repl_status", &[("server", server)]).map(gauge);
        let up = sample(&scrape, "pgdr_repl_up", &[("server", server)]).map(gauge);
        (st, up)
    };
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(status_of(&text, &pserver), (Some(0.0), Some(1.0)), "{text}");

    // … and, the standby gone, the bad news too: CRITICAL replaces OK in the live file.
    s.stop();
    p.wait_for(
        "select count(*) = 0 from pg_stat_replication where application_name = 'standby'",
        WAIT,
    );
    assert!(textfile_pipeline(
        &[&pc, &sc],
        &["--min-standbys", "1"],
        &file
    ));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(status_of(&text, &pserver), (Some(2.0), Some(1.0)), "{text}");
    assert_eq!(status_of(&text, &sserver), (Some(3.0), Some(0.0)), "{text}");
    assert!(!dir.path().join("repl.prom.tmp").exists());
    // A lone server that cannot be reached is published too (up 0, status 3), exit 0.
    let out = lag(["-d", &sc, "--format", "prometheus"]).ok();
    assert_eq!(status_of(&out.stdout, &sserver), (Some(3.0), Some(0.0)));

    // Nagios sees it with the plugin codes: CRITICAL (2) outranks the unreachable one.
    let (status, summary, items) = parse_nagios(&nagios(&[&pc, &sc], &["--min-standbys", "1"]));
    assert_eq!(status, "CRITICAL");
    assert!(
        summary.contains("--min-standbys 1") && summary.contains("cannot connect"),
        "{summary}"
    );
    assert_eq!(
        perf(&items, &format!("{pserver}:standbys_streaming")).value(),
        0.0
    );
    // Cannot tell: UNKNOWN (3) on stdout, where a plugin's output goes.
    let (status, summary, _) = parse_nagios(&nagios(&[&sc], &[]));
    assert_eq!(status, "UNKNOWN");
    assert!(summary.contains("cannot connect"), "{summary}");
    let (status, summary, items) = parse_nagios(&nagios(
        &[&pc],
        &["--warn-bytes", "2MB", "--crit-bytes", "1MB"],
    ));
    assert_eq!((status.as_str(), items.len()), ("UNKNOWN", 0));
    assert!(summary.contains("invalid thresholds"), "{summary}");
}

#[test]
fn a_monitoring_role_with_and_without_pg_monitor_and_its_password() {
    const PW: &str = "S3cret-pw-7";
    let p = Cluster::builder()
        .hba("host all mon 127.0.0.1/32 scram-sha-256")
        .start();
    p.execute(&format!("create role mon login password '{PW}'"));
    let s = p.standby();
    p.execute("create table t(x int); insert into t values (1)");
    wait_streaming(&p, &s);
    wait_replayed(&p, &s);
    let dsn = |c: &Cluster| {
        format!(
            "host=127.0.0.1 port={} user=mon password={PW} dbname=postgres",
            c.port
        )
    };
    let uri = |c: &Cluster| format!("postgres://mon:{PW}@127.0.0.1:{}/postgres", c.port);
    let no_secret = |o: &ToolOutput| {
        assert!(
            !o.stdout.contains(PW) && !o.stderr.contains(PW),
            "password printed:\n{}\n{}",
            o.stdout,
            o.stderr
        );
    };

    // Without pg_monitor: the rows are there, their figures are not: UNKNOWN, never 0 lag.
    let out = lag(["-d", &dsn(&p), "--min-standbys", "1", "--crit-bytes", "1MB"]);
    no_secret(&out);
    assert_eq!(out.code, Some(3), "{}", out.stdout);
    let doc: PrimaryReport = out.document();
    assert_eq!(doc.status, Status::Unknown);
    assert_eq!(doc.user, "mon");
    assert!(!doc.can_read_all_stats);
    let sb = &doc.standbys[0];
    assert!(!sb.visible);
    assert!(sb.replay_lag_bytes.is_none(), "{sb:?}");
    assert!(sb.write_lag_seconds.is_none(), "{sb:?}");
    assert!(sb
        .note
        .as_deref()
        .unwrap()
        .contains("not visible to this role"));
    assert!(messages(&doc.problems).contains("not visible to this role"));

    let out = lag(["-d", &uri(&s)]);
    no_secret(&out);
    assert_eq!(out.code, Some(3), "{}", out.stdout);
    let doc: StandbyReport = out.document();
    let rcv = doc.wal_receiver.as_ref().expect("a WAL receiver row");
    assert!(!rcv.visible);
    assert!(rcv.status.is_none());
    assert!(messages(&doc.problems).contains("not visible to this role"));

    let out = lag(["-d", &dsn(&p), "--format", "prometheus"]);
    no_secret(&out);
    // Written is exit 0; the verdict, UNKNOWN, is the status metric.
    assert_eq!(out.code, Some(0));
    let scrape = parse_prometheus(&out.stdout);
    assert_eq!(
        gauge(sample(&scrape, "pgdr_repl_status", &[]).unwrap()),
        3.0
    );
    assert!(
        sample(&scrape, "pgdr_repl_standby_lag_bytes", &[]).is_none(),
        "an invisible lag must not be exported as a number:\n{}",
        out.stdout
    );

    // With pg_monitor: everything visible and healthy.
    p.execute("grant pg_monitor to mon");
    wait_replayed(&p, &s);
    for target in [dsn(&p), uri(&p), dsn(&s), uri(&s)] {
        let out = lag(["-d", &target]);
        no_secret(&out);
        let (server, problems, can_read_all_stats) = match report(&out) {
            ServerReport::Primary(r) => (r.server, r.problems, r.can_read_all_stats),
            ServerReport::Standby(r) => (r.server, r.problems, r.can_read_all_stats),
            ServerReport::Unreachable(r) => panic!("{r:?}"),
        };
        assert_eq!(out.code, Some(0), "{target}: {}", messages(&problems));
        assert!(can_read_all_stats);
        assert!(!server.contains(PW));
    }

    // A wrong password: UNKNOWN, one line, neither password shown.
    let wrong = format!(
        "host=127.0.0.1 port={} user=mon password=Wr0ng-{PW} dbname=postgres",
        p.port
    );
    let out = lag(["-d", &wrong]);
    no_secret(&out);
    let out = out.expect_error(3, "repl-lag");
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_server_bad_conninfo_and_bad_arguments_are_unknown() {
    let port = free_port().to_string();
    let out = lag([
        "-d",
        &format!("host=127.0.0.1 port={port} user=postgres password=hunter2-x"),
    ])
    .expect_error(3, "repl-lag");
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2-x"), "{}", out.stderr);
    let sockdir = tempfile::tempdir().unwrap();
    lag([
        "-d",
        &format!(
            "host={} port={port} user=postgres",
            sockdir.path().display()
        ),
    ])
    .expect_error(3, "repl-lag");
    for bad in [
        "host=/tmp bogus=1",
        "host=/tmp port=abc",
        "host='/tmp user=x",
        "postgres://u:pw@host:5432/db?x",
    ] {
        lag(["-d", bad]).expect_error(3, "repl-lag");
    }
    for args in [
        vec!["--warn-bytes", "1XB"],
        vec!["--warn-bytes", "2MB", "--crit-bytes", "1MB"],
        vec!["--warn-seconds", "10m", "--crit-seconds", "1m"],
        vec!["--no-such-flag"],
        vec!["--format", "bogus"],
    ] {
        lag(args).expect_error(3, "repl-lag");
    }
    let help = lag(["--help"]).ok();
    assert!(help.stdout.contains("--crit-bytes"));
}
