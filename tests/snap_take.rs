//! snap-take on real PostgreSQL servers, a real zfs-fuse pool, a real btrfs loop mount and the
//! copy backend: snapshots of a standby under pgbench load come up consistent.

mod snap_support;

use pgdr_snap::backend::Backend;
use pgdr_testkit::{skip_unless, tool, BtrfsMount, Cluster, ZfsPool};
use serde_json::Value;
use snap_support::*;
use std::path::Path;
use std::time::Duration;

const SCALE: i64 = 2;

/// A primary with pgbench tables and a streaming standby whose data directory is `dir`.
fn primary_and_standby(dir: &Path) -> (Cluster, Cluster) {
    let p = Cluster::builder().conf("max_wal_size = 256MB").start();
    pgbench_init(&p, SCALE);
    let s = p.standby_in(Some(dir));
    s.wait_for(
        "select count(*) > 0 from pgbench_branches",
        Duration::from_secs(60),
    );
    (p, s)
}

/// Takes two snapshots of the standby while pgbench writes, clones each through the
/// library, starts it and checks it; checks snap-prune skips a snapshot with a clone.
fn standby_under_load(standby: &Cluster, primary: &Cluster, extra: &[&str], backup_mode: bool) {
    let mut load = pgbench_load(primary, 30);
    std::thread::sleep(Duration::from_secs(2));
    let mut docs = Vec::new();
    for _ in 0..2 {
        let mut t = tool("snap-take")
            .arg("--pgdata")
            .arg(&standby.data)
            .args(extra);
        if backup_mode {
            t = t.args(["-d", &standby.conninfo()]);
        }
        let doc = t.run().ok().json();
        docs.push(doc);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let _ = load.kill();
    let _ = load.wait();
    let pgdata = standby.data.canonicalize().unwrap();
    let store = docs[0]["location"]
        .as_str()
        .map(|l| Path::new(l).parent().unwrap().to_path_buf());
    let kind = pgdr_snap::BackendKind::parse(docs[0]["backend"].as_str().unwrap());
    let backend = Backend::detect(
        &pgdata,
        kind,
        if kind == Some(pgdr_snap::BackendKind::Zfs) {
            None
        } else {
            store.as_deref()
        },
    )
    .unwrap();
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(doc["pgdata"], pgdata.to_str().unwrap());
        assert_eq!(doc["method"], if backup_mode { "backup" } else { "atomic" });
        let meta = backend.get(doc["snapshot"].as_str().unwrap()).unwrap();
        assert_eq!(
            serde_json::to_value(&meta).unwrap()["wal_start"],
            doc["wal_start"]
        );
        let clone = backend
            .clone_snapshot(&meta, &format!("t{i}"), None)
            .unwrap();
        {
            let b = meta.backup.as_ref();
            let running = start_clone(
                &clone.pgdata,
                b.map(|b| b.backup_label.as_str()),
                b.and_then(|b| b.tablespace_map.as_deref()),
            );
            assert_consistent(&running, SCALE);
            if i == 0 {
                // A snapshot with a clone is never destroyed: snap-prune reports it skipped.
                let mut t = tool("snap-prune").arg("--pgdata").arg(&standby.data).args([
                    "--keep-last",
                    "1",
                    "--dry-run",
                ]);
                if let Some(s) = &store {
                    if kind != Some(pgdr_snap::BackendKind::Zfs) {
                        t = t.arg("--snapshot-dir").arg(s);
                    }
                }
                let out = t.run().ok().json();
                assert_eq!(out["skipped"][0]["snapshot"], doc["snapshot"], "{out}");
                assert_eq!(out["destroyed"].as_array().unwrap().len(), 0, "{out}");
            }
        }
        backend.destroy_clone(&format!("t{i}")).unwrap();
        assert!(!backend.has_clones(&meta.snapshot).unwrap());
    }
}

#[test]
fn zfs_standby_under_load_snapshots_are_consistent() {
    let pool = skip_unless!(ZfsPool::create("1G"));
    let mnt = pool.create_dataset("pg");
    let (p, s) = primary_and_standby(&mnt.join("data"));
    standby_under_load(&s, &p, &[], false);
}

#[test]
fn btrfs_standby_under_load_snapshots_are_consistent() {
    let fs = skip_unless!(BtrfsMount::create("1G"));
    let sub = fs.subvolume("pg");
    let (p, s) = primary_and_standby(&sub.join("data"));
    standby_under_load(&s, &p, &[], false);
}

#[test]
fn copy_backend_standby_in_backup_mode_is_consistent() {
    let dir = pgdr_testkit::short_tempdir("pgdr-cp-");
    let (p, s) = primary_and_standby(&dir.path().join("data"));
    standby_under_load(&s, &p, &["--backend", "copy"], true);
}

#[test]
fn copy_backend_refuses_a_running_server_without_backup_mode() {
    let c = Cluster::start();
    let out = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy"])
        .run();
    let out = out.expect_error(1, "snap-take");
    assert!(
        out.stderr.contains("while its server runs"),
        "{}",
        out.stderr
    );
}

#[test]
fn backup_mode_on_a_primary_keeps_the_label() {
    let pool = skip_unless!(ZfsPool::create("512M"));
    let mnt = pool.create_dataset("pg");
    let c = Cluster::builder().data_dir(mnt.join("data")).start();
    c.execute("create table t as select generate_series(1, 1000) x");
    let doc = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--label", "bk", "-d", &c.conninfo()])
        .run()
        .ok()
        .json();
    assert_eq!(doc["method"], "backup");
    assert_eq!(doc["label"], "bk");
    let b = &doc["backup"];
    let label = b["backup_label"].as_str().unwrap();
    let wal = doc["wal_start"].as_str().unwrap();
    assert!(label.contains(&format!("(file {wal})")), "{label} vs {wal}");
    assert!(
        label.contains(&format!("LABEL: {}", doc["snapshot"].as_str().unwrap())),
        "{label}"
    );
    assert_eq!(b["from_standby"], false);
    let start: pgdr_pgformat::Lsn = b["start_lsn"].as_str().unwrap().parse().unwrap();
    let stop: pgdr_pgformat::Lsn = b["stop_lsn"].as_str().unwrap().parse().unwrap();
    assert!(start <= stop);
    assert!(label.contains(&format!("START WAL LOCATION: {start} ")));
    // The session ended the backup: another one can start at once.
    c.execute("select pg_backup_start('x', true); select pg_backup_stop(false)");
    // Stored with the snapshot, not just printed.
    let pgdata = c.data.canonicalize().unwrap();
    let meta = Backend::detect(&pgdata, None, None)
        .unwrap()
        .get(doc["snapshot"].as_str().unwrap())
        .unwrap();
    assert_eq!(meta.backup.unwrap().backup_label, label);
}

#[test]
fn pg_control_agrees_with_pg_controldata() {
    let c = Cluster::start();
    c.execute("create table t(x int); insert into t values (1); checkpoint");
    c.stop();
    let bytes = std::fs::read(c.data.join("global/pg_control")).unwrap();
    let ctl = pgdr_pgformat::control::parse(&bytes).unwrap();
    let out = pgdr_testkit::run_ok(c.cmd("pg_controldata").arg(&c.data).env("LC_ALL", "C"));
    let field = |k: &str| -> String {
        out.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.trim_start_matches(':').trim().to_string())
            })
            .unwrap_or_else(|| panic!("{k} in {out}"))
    };
    assert_eq!(
        field("Database system identifier"),
        ctl.system_identifier.to_string()
    );
    assert_eq!(
        field("pg_control version number"),
        ctl.pg_control_version.to_string()
    );
    assert_eq!(
        field("Catalog version number"),
        ctl.catalog_version.to_string()
    );
    assert_eq!(field("Database cluster state"), ctl.state);
    assert_eq!(
        field("Latest checkpoint location"),
        ctl.checkpoint_lsn.to_string()
    );
    assert_eq!(
        field("Latest checkpoint's REDO location"),
        ctl.redo_lsn.to_string()
    );
    assert_eq!(
        field("Latest checkpoint's REDO WAL file"),
        ctl.redo_wal_file()
    );
    assert_eq!(
        field("Latest checkpoint's TimeLineID"),
        ctl.timeline.to_string()
    );
    assert_eq!(
        field("Bytes per WAL segment"),
        ctl.wal_segment_size.to_string()
    );
    assert_eq!(field("Database block size"), ctl.block_size.to_string());
    assert_eq!(
        field("Data page checksum version"),
        ctl.data_checksum_version.to_string()
    );
    assert_eq!(
        field("Minimum recovery ending location"),
        ctl.min_recovery_point.to_string()
    );
    let t = chrono::DateTime::from_timestamp(ctl.checkpoint_time, 0).unwrap();
    let shown = field("Time of latest checkpoint");
    // pg_controldata prints local time like "Sat Nov 21 21:47:07 2026" (TZ of the test: UTC or not).
    let hms = t
        .with_timezone(&chrono::Local)
        .format("%H:%M:%S")
        .to_string();
    assert!(shown.contains(&hms), "{shown} vs {t}");
    // And snap-take reads the same from its copy of the stopped cluster.
    let doc = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy"])
        .run()
        .ok()
        .json();
    assert_eq!(doc["checkpoint_lsn"], ctl.checkpoint_lsn.to_string());
    assert_eq!(doc["system_identifier"], ctl.system_identifier.to_string());
    assert_eq!(doc["wal_start"], ctl.redo_wal_file());
    assert_eq!(doc["pg_version"], Value::from(c.query_value_version()));
}

trait Version {
    fn query_value_version(&self) -> u32;
}
impl Version for Cluster {
    fn query_value_version(&self) -> u32 {
        std::fs::read_to_string(self.data.join("PG_VERSION"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

#[test]
fn two_runs_at_once_one_exits_75() {
    let c = Cluster::start();
    pgbench_init(&c, 4);
    c.stop();
    // Held by another run: exit 75 at once; with --wait-lock it waits for the release.
    let pgdata = c.data.canonicalize().unwrap();
    let lock = pgdr_snap::backend::lock_path(&pgdata);
    let guard = pgdr_core::lock::acquire(&lock, "test", None).unwrap();
    tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy"])
        .run()
        .expect_error(75, "snap-take");
    tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy", "--keep-last", "1"])
        .run()
        .expect_error(75, "snap-prune");
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(guard);
    });
    tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args([
            "--backend",
            "copy",
            "--label",
            "waited",
            "--wait-lock",
            "30",
        ])
        .run()
        .ok();
    t.join().unwrap();
    // Two real runs started together: a copy of ~60 MB takes long enough to overlap.
    let bin = pgdr_testkit::bin_dir().join("snap-take");
    let spawn = |label: &str| {
        std::process::Command::new(&bin)
            .arg("--pgdata")
            .arg(&c.data)
            .args(["--backend", "copy", "--label", label])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("a");
    std::thread::sleep(Duration::from_millis(100));
    let b = spawn("b");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    codes.sort();
    assert_eq!(
        codes,
        [0, 75],
        "a: {} b: {}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
}

#[test]
fn bad_input_is_one_clear_line_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = tool("snap-take")
        .arg("--pgdata")
        .arg(d.path())
        .run()
        .expect_error(1, "snap-take");
    assert!(
        out.stderr.contains("is not a data directory"),
        "{}",
        out.stderr
    );
    let out = tool("snap-take")
        .arg("--pgdata")
        .arg(d.path().join("none"))
        .run()
        .expect_error(1, "snap-take");
    assert!(
        out.stderr.contains("not a data directory"),
        "{}",
        out.stderr
    );
    let mut c = Cluster::builder().init_only();
    let out = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--label", "a b"])
        .run()
        .expect_error(2, "snap-take");
    assert!(out.stderr.contains("invalid --label"), "{}", out.stderr);
    // A data directory that is not on ZFS, with --backend zfs.
    if pgdr_snap::sys::have("zfs") {
        let out = tool("snap-take")
            .arg("--pgdata")
            .arg(&c.data)
            .args(["--backend", "zfs"])
            .run()
            .expect_error(1, "snap-take");
        assert!(
            out.stderr.contains("is not on a ZFS dataset"),
            "{}",
            out.stderr
        );
    }
    // No zfs command at all.
    let out = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "zfs"])
        .env("PATH", "/nonexistent")
        .run()
        .expect_error(1, "snap-take");
    assert!(
        out.stderr.contains("zfs command is not installed"),
        "{}",
        out.stderr
    );
    // A snapshot name taken already: nothing is changed, the first one stays.
    c.stop();
    let pgdata = c.data.canonicalize().unwrap();
    let backend = Backend::detect(&pgdata, Some(pgdr_snap::BackendKind::Copy), None).unwrap();
    let at = Some(chrono::Utc::now());
    let opts = pgdr_snap::take::TakeOptions {
        label: None,
        dsn: None,
        at,
    };
    let first = pgdr_snap::take::take(&backend, &opts).unwrap();
    let e = pgdr_snap::take::take(&backend, &opts).unwrap_err();
    assert!(e.to_string().contains("exists already"), "{e}");
    assert_eq!(backend.list().unwrap(), vec![first]);
    let _ = &mut c;
}

#[test]
fn an_interrupted_copy_leaves_nothing_behind() {
    let c = Cluster::start();
    pgbench_init(&c, 8);
    c.stop();
    let pgdata = c.data.canonicalize().unwrap();
    let store = pgdata.parent().unwrap().join(".pgdr-snapshots");
    let mut child = std::process::Command::new(pgdr_testkit::bin_dir().join("snap-take"))
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the copy has started, then interrupt it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !store.join("data").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    eprintln!("snap-take after SIGINT: {status:?}");
    let left: Vec<_> = std::fs::read_dir(store.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    if status.code() == Some(0) {
        // The copy won the race; then it must be complete and listed.
        assert_eq!(left.len(), 2, "{left:?}");
    } else {
        assert_eq!(status.code(), Some(1));
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
