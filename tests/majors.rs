//! Every supported major, 13 to 18, against a real server of it (PostgreSQL 15 from the
//! distribution, the others installed by `make deps`; see pgdr_testkit::majors): the
//! version-sensitive parts of each tool, each checked with the server's own account of the same
//! thing. One module per major (`pg13::…` to `pg18::…`), so majors run in parallel; each test
//! shares its cluster between its checks. Version-independent behaviour is tested on 15 only, in
//! the tools' own test files.
//!
//! - hba-edit `list`/`check` vs `pg_hba_file_rules`, conf-edit `show` vs `pg_file_settings`, on
//!   the whole fixture corpus (tests/oracle);
//! - wal-archive pushes the server's real WAL under pgbench, verifies it (page magic, long
//!   header), and a base backup recovers from it to a restore point with exactly the right rows;
//! - pg_control as pgdr reads it vs `pg_control_system()`/`_checkpoint()`/`_recovery()`/`_init()`
//!   (every major) and vs `pg_controldata` of the same format where one is installed; snap-take
//!   in backup mode (`pg_backup_start` or `pg_start_backup`, backup_label) on the primary;
//! - repl-lag on a real primary/standby pair (standby made by pg_basebackup of 18 where the
//!   server package has none).

mod oracle;

use pgdr_pgformat::control;
use pgdr_pgformat::{page_header, Lsn};
use pgdr_testkit::{chown_to_pg_user, run_ok, short_tempdir, skip_unless, tool, Cluster};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

fn wal_archive() -> PathBuf {
    pgdr_testkit::bin_dir().join("wal-archive")
}

/// The hba-edit and conf-edit corpora against one server of `major`.
fn parsers_agree(major: u32) {
    let c = skip_unless!(Cluster::with_major(major)).start();
    assert_eq!(c.major(), major);
    oracle::hba_corpus_agrees(&c);
    oracle::conf_corpus_agrees(&c);
}

/// conf-edit check reads primary_conninfo with the libpq this major's WAL receiver loads:
/// sslnegotiation (libpq 17; pg_basebackup -R of 17 and later writes it) is refused where
/// that libpq is older, and passes from 17 on. The servers of 13, 14 and 16 bring their own
/// libpq; 15's packaged server loads the system's, whose release the test does not fix.
fn conninfo_options_are_read_with_the_receivers_libpq(major: u32) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("PG_VERSION"), format!("{major}\n")).unwrap();
    std::fs::write(
        d.path().join("postgresql.conf"),
        "primary_conninfo = 'host=p user=r sslnegotiation=postgres'\n",
    )
    .unwrap();
    pgdr_testkit::chown_to_pg_user(d.path());
    let out = tool("conf-edit")
        .arg("-D")
        .arg(d.path())
        .args(["check", "--pg-version", &major.to_string()])
        .run();
    let doc = out.json();
    let flagged: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["problem"].as_str())
        .filter(|p| p.contains("sslnegotiation"))
        .collect();
    match major {
        15 => assert!(flagged.iter().all(|p| p.contains("loads libpq 1")), "{doc}"),
        m if m >= 17 => assert!(flagged.is_empty(), "PostgreSQL {major}: {doc}"),
        _ => {
            assert_eq!(flagged.len(), 1, "PostgreSQL {major}: {doc}");
            assert!(
                flagged[0].contains(&format!("loads libpq {major} ")),
                "{}",
                flagged[0]
            );
            assert_eq!(out.code, Some(1), "{doc}");
        }
    }
}

/// pgbench (of the server's major, else of 18) against `c`.
fn pgbench(c: &Cluster, args: &[&str]) {
    run_ok(
        c.cmd("pgbench")
            .args(["-h", c.sockdir.to_str().unwrap(), "-p", &c.port.to_string()])
            .args(["-U", "postgres"])
            .args(args)
            .arg("postgres"),
    );
}

/// Switches WAL and waits until the switched-from segment is archived; returns its name.
fn switch_and_wait(c: &Cluster) -> String {
    let name = c
        .query_value("select pg_walfile_name(pg_switch_wal())")
        .unwrap();
    c.wait_for(
        &format!("select coalesce(last_archived_wal >= '{name}', false) from pg_stat_archiver"),
        WAIT,
    );
    name
}

/// `wal-archive init --pgdata`: a repository bound to `c`'s cluster, owned by its OS user.
fn init_repo(repo: &std::path::Path, c: &Cluster) {
    tool("wal-archive")
        .arg("init")
        .arg("--repo")
        .arg(repo)
        .arg("--pgdata")
        .arg(&c.data)
        .run()
        .ok();
}

/// wal-archive under pgbench, a restore from its archive, and pgdr's reading of pg_control and
/// of a backup label, on one primary of `major`.
fn wal_and_control(major: u32) {
    let b = skip_unless!(Cluster::with_major(major));
    let dir = short_tempdir("pgdr-mx");
    let repo = dir.path().join("repo");
    let mut p = b
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} push %p --repo {}'",
            wal_archive().display(),
            repo.display()
        ))
        .init_only();
    init_repo(&repo, &p);
    p.start_server();
    p.execute("create table t (id int primary key, note text)");
    // A base backup whose WAL comes only from the archive.
    let backup = dir.path().join("base");
    run_ok(
        p.cmd("pg_basebackup")
            .arg("-D")
            .arg(&backup)
            .args(["-X", "none", "-c", "fast", "-d"])
            .arg(p.conninfo()),
    );
    pgbench(&p, &["-i", "-s", "1", "-q"]);
    pgbench(&p, &["-c", "2", "-t", "100", "-n"]);
    p.execute("insert into t select g, 'before' from generate_series(1, 100) g");
    p.execute("select pg_create_restore_point('drill')");
    p.execute("insert into t select g, 'after' from generate_series(101, 200) g");
    let last = switch_and_wait(&p);

    // This major's WAL: its page magic, pushed and verified.
    let seg = std::fs::read(p.data.join("pg_wal").join(&last)).unwrap();
    let h = page_header::parse(&seg).unwrap();
    assert_eq!(h.major(), Some(major), "page magic 0x{:04X}", h.magic);
    let l = tool("wal-archive")
        .arg("--repo")
        .arg(&repo)
        .arg("list")
        .run()
        .ok()
        .json();
    let t1 = timeline(&l, 1);
    assert_eq!(t1["first"], "000000010000000000000001", "{l}");
    assert_eq!(t1["last"], last.as_str(), "{l}");
    assert_eq!(t1["gaps"].as_array().unwrap().len(), 0, "{l}");
    let v = tool("wal-archive")
        .arg("--repo")
        .arg(&repo)
        .arg("verify")
        .run()
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v}");

    // pg_control of the running primary, after a checkpoint.
    p.execute("checkpoint");
    oracle::compare_control(&p);
    // snap-take in backup mode: this major's backup functions and backup label.
    let doc = tool("snap-take")
        .arg("--pgdata")
        .arg(&p.data)
        .args(["--backend", "copy", "-d", &p.conninfo()])
        .run()
        .ok()
        .json();
    assert_eq!(doc["pg_version"], major, "{doc}");
    assert_eq!(doc["method"], "backup", "{doc}");
    let sysid = p.query_value("select system_identifier from pg_control_system()");
    assert_eq!(doc["system_identifier"].as_str(), sysid.as_deref(), "{doc}");
    let label = doc["backup"]["backup_label"].as_str().unwrap();
    let parsed = pgdr_pgformat::backup_label::parse(label).unwrap();
    assert_eq!(
        doc["wal_start"].as_str(),
        Some(parsed.start_wal.as_str()),
        "{label}"
    );
    assert_eq!(parsed.timeline, Some(1), "{label}");
    assert_eq!(parsed.backup_from.as_deref(), Some("primary"), "{label}");

    // Point-in-time recovery of the base backup from the archive, to the restore point.
    let r = restored(&backup, &p, &repo);
    // pg_is_wal_replay_paused(): pg_get_wal_replay_pause_state() is 14+.
    r.wait_for("select pg_is_wal_replay_paused()", WAIT);
    let count = |sql: &str| r.query_value(sql).unwrap();
    assert_eq!(count("select count(*) from t"), "100");
    assert_eq!(count("select count(*) from t where note = 'after'"), "0");
    assert_eq!(count("select count(*) from pgbench_accounts"), "100000");
    assert_eq!(count("select sum(abalance) from pgbench_accounts"), {
        p.query_value("select sum(abalance) from pgbench_accounts")
            .unwrap()
    });
}

fn timeline(list: &Value, tli: u64) -> &Value {
    list["timelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["timeline"] == tli)
        .unwrap_or_else(|| panic!("no timeline {tli}: {list}"))
}

/// A copy of `backup` recovering through `wal-archive get` to the restore point 'drill'.
fn restored(backup: &Path, primary: &Cluster, repo: &Path) -> Cluster {
    let root = short_tempdir("pgdr-mr");
    let sockdir = root.path().join("s");
    std::fs::create_dir(&sockdir).unwrap();
    chown_to_pg_user(&sockdir);
    let data = root.path().join("data");
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(backup)
            .arg(&data),
    );
    let log = root.path().join("log");
    std::fs::write(&log, "").unwrap();
    chown_to_pg_user(&log);
    let mut c = Cluster {
        root,
        data,
        sockdir,
        port: pgdr_testkit::free_port(),
        bindir: primary.bindir.clone(),
        owner: primary.owner.clone(),
        log,
    };
    c.append_conf(&format!(
        "\nport = {}\nunix_socket_directories = '{}'\narchive_mode = off\n\
         restore_command = '{} get %f %p --repo {}'\nrecovery_target_name = 'drill'\n\
         recovery_target_action = 'pause'\n",
        c.port,
        c.sockdir.display(),
        wal_archive().display(),
        repo.display()
    ));
    let signal = c.data.join("recovery.signal");
    std::fs::write(&signal, "").unwrap();
    chown_to_pg_user(&signal);
    c.start_server();
    c
}

/// repl-lag on a primary/standby pair of `major`, and pg_control of a standby (its minimum
/// recovery point is set).
fn primary_and_standby(major: u32) {
    let p = skip_unless!(Cluster::with_major(major)).start();
    let s = p.standby();
    assert_eq!(s.major(), major);
    p.execute("create table t(x int); insert into t select generate_series(1, 1000)");
    p.wait_for(
        "select count(*) = 1 from pg_stat_replication where state = 'streaming' \
         and replay_lsn = pg_current_wal_lsn()",
        WAIT,
    );
    s.wait_for(
        "select status = 'streaming' from pg_stat_wal_receiver",
        WAIT,
    );
    let report = |c: &Cluster| {
        let out = tool("repl-lag")
            .args([
                "-d",
                &c.conninfo(),
                "--min-standbys",
                "1",
                "--warn-bytes",
                "1GB",
            ])
            .run();
        assert_eq!(out.code, Some(0), "PostgreSQL {major}: {}", out.stdout);
        out.json()
    };
    conninfo_options_are_read_with_the_receivers_libpq(major);
    let doc = report(&p);
    assert_eq!(doc["role"], "primary", "{doc}");
    assert_eq!(doc["standbys_streaming"], 1, "{doc}");
    let sb = &doc["standbys"][0];
    assert_eq!(sb["state"], "streaming", "{doc}");
    assert_eq!(sb["kind"], "physical", "{doc}");
    let server_lsn: Lsn = doc["server_lsn"].as_str().unwrap().parse().unwrap();
    for stage in ["sent", "write", "flush", "replay"] {
        let pos: Lsn = sb[format!("{stage}_lsn")]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            sb[format!("{stage}_lag_bytes")].as_u64().unwrap(),
            server_lsn.0.saturating_sub(pos.0),
            "{stage}: {doc}"
        );
    }
    let doc = report(&s);
    assert_eq!(doc["role"], "standby", "{doc}");
    assert_eq!(doc["wal_receiver"]["status"], "streaming", "{doc}");
    assert_eq!(doc["caught_up"], true, "{doc}");
    // A standby's pg_control: in archive recovery, with a minimum recovery point.
    s.execute("checkpoint");
    oracle::compare_control(&s);
}

/// snap-clone of a snapshot of `major` (copy backend, backup mode on the primary) to a time
/// between two batches of rows, replaying from wal-archive: exactly the batches committed by then.
fn clone_to_a_point_in_time(major: u32) {
    let b = skip_unless!(Cluster::with_major(major));
    let dir = short_tempdir("pgdr-mc");
    let repo = dir.path().join("repo");
    let registry = dir.path().join("clones");
    let mut p = b
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} push %p --repo {}'",
            wal_archive().display(),
            repo.display()
        ))
        .init_only();
    init_repo(&repo, &p);
    p.start_server();
    p.execute("create table t (batch int, n int); insert into t select 1, generate_series(1, 10)");
    let snap = tool("snap-take")
        .arg("--pgdata")
        .arg(&p.data)
        .args(["--backend", "copy", "-d", &p.conninfo()])
        .run()
        .ok()
        .json();
    let now = || p.query_value("select clock_timestamp()::text").unwrap();
    p.execute("insert into t select 2, generate_series(1, 10)");
    std::thread::sleep(Duration::from_millis(300));
    let target = now();
    std::thread::sleep(Duration::from_millis(300));
    p.execute("insert into t select 3, generate_series(1, 10)");
    switch_and_wait(&p);
    let out = tool("snap-clone")
        .env("PGDR_CLONE_DIR", &registry)
        .arg("--pgdata")
        .arg(&p.data)
        .args(["--backend", "copy", "--snapshot"])
        .arg(snap["snapshot"].as_str().unwrap())
        .args(["--recovery-target-time", &target, "--repo"])
        .arg(&repo)
        .args(["--name", "drill", "--start", "--wait", "120"])
        .run();
    let doc = out.ok().document::<pgdr_clone::doc::CloneReport>();
    let mut c = pgdr_testkit::connect_at(&doc.socket_dir, doc.port);
    let batches: Vec<i32> = c
        .query("select distinct batch from t order by 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(batches, [1, 2], "PostgreSQL {major}: {doc:?}");
    let n: i64 = c.query_one("select count(*) from t", &[]).unwrap().get(0);
    assert_eq!(n, 20);
    // Replay settings (issue 19), on the recovering server's command line: shared_buffers
    // above the primary's, and the prefetch settings only where the major prefetches during
    // recovery (15+; a server refuses a name it does not know).
    let r = &doc.recovery.replay_settings;
    assert_eq!(
        r.contains_key("recovery_prefetch"),
        major >= 15,
        "PostgreSQL {major}: {doc:?}"
    );
    assert!(r.contains_key("shared_buffers"), "{doc:?}");
    for (name, value) in r {
        let row = c
            .query_one(
                "select current_setting($1), source from pg_settings where name = $1",
                &[name],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(1), "command line", "{name}");
        if name != "shared_buffers" {
            assert_eq!(&row.get::<_, String>(0), value, "{name}");
        }
    }
    let own: i64 = p
        .query_value("select pg_size_bytes(current_setting('shared_buffers'))")
        .unwrap()
        .parse()
        .unwrap();
    let during: i64 = c
        .query_one(
            "select pg_size_bytes(current_setting('shared_buffers'))",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(during > own, "{during} <= {own}");
    drop(c);
    tool("snap-clone")
        .env("PGDR_CLONE_DIR", &registry)
        .args(["--destroy", "drill"])
        .run()
        .ok();
}

macro_rules! matrix {
    ($($module:ident = $major:literal),* $(,)?) => {$(
        mod $module {
            #[test]
            fn hba_edit_and_conf_edit_agree_with_the_server() {
                super::parsers_agree($major);
            }
            #[test]
            fn wal_archive_snap_take_and_pg_control() {
                super::wal_and_control($major);
            }
            #[test]
            fn repl_lag_on_a_primary_and_standby() {
                super::primary_and_standby($major);
            }
        }
    )*};
}

matrix!(
    pg13 = 13,
    pg14 = 14,
    pg15 = 15,
    pg16 = 16,
    pg17 = 17,
    pg18 = 18
);

/// snap-clone per major: a copy snapshot of that major's primary recovered to a point in time
/// (the npm server packages have no psql: snap-clone talks to its clone itself).
mod snap_clone {
    macro_rules! clone_matrix {
        ($($module:ident = $major:literal),* $(,)?) => {$(
            mod $module {
                #[test]
                fn recovers_to_a_point_in_time() {
                    super::super::clone_to_a_point_in_time($major);
                }
            }
        )*};
    }
    clone_matrix!(
        pg13 = 13,
        pg14 = 14,
        pg15 = 15,
        pg16 = 16,
        pg17 = 17,
        pg18 = 18
    );
}

/// A major pgdr does not know is refused with a clear message, never read with a neighbour's
/// layout: a PG_VERSION of 19 or 11, a pg_control version of 1900, a WAL page magic after 18's.
#[test]
fn unknown_majors_are_refused() {
    let c = Cluster::builder().init_only();
    let pg_version = c.data.join("PG_VERSION");
    let control_file = c.data.join("global/pg_control");
    let snap_take = || {
        tool("snap-take")
            .arg("--pgdata")
            .arg(&c.data)
            .args(["--backend", "copy"])
            .run()
    };
    for v in ["19", "11", "9.6"] {
        std::fs::write(&pg_version, format!("{v}\n")).unwrap();
        let out = snap_take().expect_error(1, "snap-take");
        assert!(
            out.stderr
                .contains(&format!("PostgreSQL {v} is not supported")),
            "{v}: {}",
            out.stderr
        );
        let hba = c.data.join("pg_hba.conf");
        let out = tool("hba-edit").arg("-f").arg(&hba).arg("list").run();
        let out = out.expect_error(2, "hba-edit");
        assert!(
            out.stderr.contains("unsupported PostgreSQL version"),
            "{v}: {}",
            out.stderr
        );
    }
    std::fs::write(&pg_version, "15\n").unwrap();
    // A pg_control of a later format, its CRC right at the old offset: still refused.
    let mut b = std::fs::read(&control_file).unwrap();
    b[8..12].copy_from_slice(&1900u32.to_le_bytes());
    let crc = control::crc32c(&b[..288]);
    b[288..292].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&control_file, &b).unwrap();
    let out = snap_take().expect_error(1, "snap-take");
    assert!(
        out.stderr.contains("unsupported pg_control version 1900")
            && out.stderr.contains("12 to 18"),
        "{}",
        out.stderr
    );
    // A WAL segment whose page magic no known major writes.
    let dir = short_tempdir("pgdr-mu");
    let wal = std::fs::read_dir(c.data.join("pg_wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .unwrap();
    let mut seg = std::fs::read(&wal).unwrap();
    seg[0..2].copy_from_slice(&0xD119u16.to_le_bytes());
    let copy = dir.path().join(wal.file_name().unwrap());
    std::fs::write(&copy, &seg).unwrap();
    let repo = dir.path().join("repo");
    // Its pg_control was made unreadable above: bound by the first push instead.
    tool("wal-archive")
        .arg("init")
        .arg("--repo")
        .arg(&repo)
        .run()
        .ok();
    let out = tool("wal-archive")
        .arg("push")
        .arg(&copy)
        .arg("--repo")
        .arg(&repo)
        .run();
    let out = out.expect_error(1, "wal-archive");
    assert!(
        out.stderr.contains("bad WAL page magic 0xD119"),
        "{}",
        out.stderr
    );
}
