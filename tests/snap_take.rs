//! snap-take on real PostgreSQL servers, a real zfs-fuse pool, a real btrfs loop mount and the
//! copy backend: snapshots of a standby under pgbench load come up consistent.
//!
//! Past 600 lines: one test per behaviour, each on its own real servers and filesystems; the
//! helpers they share stay beside them.

mod snap_support;

use pgdr_snap::backend::Backend;
use pgdr_snap::doc::PruneReport;
use pgdr_snap::registry::Registry;
use pgdr_snap::{BackendKind, SnapshotMeta};
use pgdr_testkit::{skip_unless, tool, BtrfsMount, Cluster, ZfsPool};
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
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = Registry {
        dir: registry_dir.path().join("clones"),
    };
    let mut docs: Vec<SnapshotMeta> = Vec::new();
    for _ in 0..2 {
        let mut t = tool("snap-take")
            .arg("--pgdata")
            .arg(&standby.data)
            .args(extra);
        if backup_mode {
            t = t.args(["-d", &standby.conninfo()]);
        }
        let doc = t.run().ok().document::<SnapshotMeta>();
        docs.push(doc);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let _ = load.kill();
    let _ = load.wait();
    let pgdata = standby.data.canonicalize().unwrap();
    let store = Some(Path::new(&docs[0].location).parent().unwrap().to_path_buf());
    let kind = BackendKind::parse(&docs[0].backend);
    let backend = Backend::detect(
        &pgdata,
        kind,
        if kind == Some(BackendKind::Zfs) {
            None
        } else {
            store.as_deref()
        },
    )
    .unwrap();
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(doc.pgdata, pgdata);
        assert_eq!(doc.method, if backup_mode { "backup" } else { "atomic" });
        let meta = backend.get(&doc.snapshot).unwrap();
        assert_eq!(meta.wal_start, doc.wal_start);
        // What snap-take printed is what it stored.
        assert_eq!(&meta, doc);
        let clone = backend
            .clone_snapshot(&registry, &meta, &format!("t{i}"), None)
            .unwrap();
        {
            let b = meta.backup.as_ref();
            let running = start_clone(
                &clone.path,
                b.map(|b| b.backup_label.as_str()),
                b.and_then(|b| b.tablespace_map.as_deref()),
            );
            assert_consistent(&running, SCALE);
            if i == 0 {
                // A snapshot with a clone is never destroyed: snap-prune reports it skipped.
                let mut t = tool("snap-prune")
                    .env("PGDR_CLONE_DIR", &registry.dir)
                    .arg("--pgdata")
                    .arg(&standby.data)
                    .args(["--keep-last", "1", "--dry-run"]);
                if let Some(s) = &store {
                    if kind != Some(BackendKind::Zfs) {
                        t = t.arg("--snapshot-dir").arg(s);
                    }
                }
                let out = t.run().ok().document::<PruneReport>();
                assert_eq!(out.skipped[0].snapshot, doc.snapshot, "{out:?}");
                assert_eq!(out.destroyed.len(), 0, "{out:?}");
            }
        }
        backend.destroy_clone(&registry, &format!("t{i}")).unwrap();
        assert!(!backend.has_clones(&registry, &meta.snapshot).unwrap());
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
        .document::<SnapshotMeta>();
    assert_eq!(doc.method, "backup");
    assert_eq!(doc.label.as_deref(), Some("bk"));
    let b = doc.backup.as_ref().unwrap();
    let label = b.backup_label.as_str();
    let wal = doc.wal_start.as_str();
    assert!(label.contains(&format!("(file {wal})")), "{label} vs {wal}");
    assert!(
        label.contains(&format!("LABEL: {}", doc.snapshot)),
        "{label}"
    );
    assert!(!b.from_standby);
    let (start, stop) = (b.start_lsn, b.stop_lsn);
    assert!(start <= stop);
    assert!(label.contains(&format!("START WAL LOCATION: {start} ")));
    // The session ended the backup: another one can start at once.
    c.execute("select pg_backup_start('x', true); select pg_backup_stop(false)");
    // Stored with the snapshot, not just printed.
    let pgdata = c.data.canonicalize().unwrap();
    let meta = Backend::detect(&pgdata, None, None)
        .unwrap()
        .get(&doc.snapshot)
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
        .document::<SnapshotMeta>();
    assert_eq!(doc.checkpoint_lsn, ctl.checkpoint_lsn);
    assert_eq!(doc.system_identifier, ctl.system_identifier.to_string());
    assert_eq!(doc.wal_start, ctl.redo_wal_file());
    assert_eq!(doc.pg_version, c.query_value_version());
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
    let backend = Backend::detect(&pgdata, Some(BackendKind::Copy), None).unwrap();
    let guard = backend.lock(None).unwrap();
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
    if pgdr_snap::backend::run::have("zfs") {
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
    let _ = &mut c;
}

/// SPEC "Names never collide": two snapshots taken in the same second (here: the same
/// instant, which is what two runs within one second look like to the name) get two names,
/// the second with milliseconds, and list in the order they were taken. (Before: the second
/// run failed with "exists already (wait a second…)".)
#[test]
fn two_snapshots_in_the_same_second_get_two_names() {
    let c = Cluster::builder().init_only();
    let pgdata = c.data.canonicalize().unwrap();
    let backend = Backend::detect(&pgdata, Some(BackendKind::Copy), None).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-21T09:28:37.250Z")
        .unwrap()
        .to_utc();
    let opts = pgdr_snap::cmd::take::TakeOptions {
        label: Some("x".into()),
        dsn: None,
        at: Some(at),
    };
    let first = pgdr_snap::cmd::take::take(&backend, &opts).unwrap();
    let second = pgdr_snap::cmd::take::take(&backend, &opts).unwrap();
    assert_eq!(first.snapshot, "pgdr-20260321T092837Z-x");
    assert_eq!(second.snapshot, "pgdr-20260321T092837.251Z-x");
    assert_eq!(backend.list().unwrap(), vec![first, second.clone()]);
    // The old names and the new ones both read back.
    assert!(pgdr_snap::meta::parse_name(&second.snapshot).is_some());
    // And real runs back to back: every one succeeds, every name differs.
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let doc = tool("snap-take")
            .arg("--pgdata")
            .arg(&c.data)
            .args(["--backend", "copy"])
            .run()
            .ok()
            .document::<SnapshotMeta>();
        names.insert(doc.snapshot);
    }
    assert_eq!(names.len(), 3);
}

#[test]
fn an_interrupted_copy_leaves_nothing_behind() {
    let c = Cluster::start();
    pgbench_init(&c, 8);
    c.stop();
    let pgdata = c.data.canonicalize().unwrap();
    let store = pgdata.parent().unwrap().join(".pgdr-snapshots");
    // The store's .lock goes with the run that took it.
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

/// The `.NAME.partial` directories directly in a copy store.
fn partials(store: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(".pgdr-") && n.ends_with(".partial")
        })
        .collect();
    v.sort();
    v
}

/// Starts a copy-backend snap-take of `pgdata` and kills it (SIGKILL) once its partial copy
/// exists in `store` (a run that finishes first is tried again); returns that partial copy.
fn kill_while_copying(pgdata: &Path, store: &Path) -> std::path::PathBuf {
    for _ in 0..3 {
        let before = if store.exists() {
            partials(store)
        } else {
            vec![]
        };
        assert!(before.is_empty(), "{before:?}");
        let mut child = std::process::Command::new(pgdr_testkit::bin_dir().join("snap-take"))
            .arg("--pgdata")
            .arg(pgdata)
            .args(["--backend", "copy"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if store.exists() && !partials(store).is_empty() {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                break;
            }
            if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = child.wait().unwrap();
        let left = partials(store);
        if status.code().is_none() && !left.is_empty() {
            assert_eq!(left.len(), 1, "{left:?}");
            assert!(left[0].is_dir());
            return left[0].clone();
        }
    }
    panic!("snap-take finished every time before it could be killed while copying");
}

/// A copy-backend snap-take killed with SIGKILL (OOM killer, a cron timeout) cannot clean up:
/// its `.NAME.partial`, a full copy of the data directory, stays. The next snap-take (it holds
/// the store's lock, so no live run can be copying) removes it, says so on stderr and in its
/// document (snap-take --to: in its image document's snapshot); `snap-prune --dry-run` lists
/// it and removes nothing. A symlink or a directory that only looks similar is never
/// touched. (Before: nothing ever removed or reported it.)
#[test]
fn a_killed_copy_is_removed_by_the_next_run() {
    let c = Cluster::start();
    pgbench_init(&c, 8);
    c.stop();
    let pgdata = c.data.canonicalize().unwrap();
    let store = pgdata
        .parent()
        .unwrap()
        .join(".pgdr-snapshots")
        .join("data");
    let leftover = kill_while_copying(&c.data, &store);
    // Look-alikes that are not this backend's partial copies.
    let elsewhere = c.root.path().join("not-a-copy");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keep"), "x").unwrap();
    let link = store.join(".pgdr-20200101T000000Z.partial");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let foreign = store.join(".mine.partial");
    std::fs::create_dir(&foreign).unwrap();

    let dry = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy", "--keep-last", "1", "--dry-run"])
        .run()
        .ok();
    let report = dry.document::<PruneReport>();
    assert_eq!(report.removed_leftovers, vec![leftover.clone()]);
    assert!(
        dry.stderr
            .contains(&format!("would remove {}", leftover.display())),
        "{}",
        dry.stderr
    );
    assert!(leftover.is_dir(), "a dry run removed it");

    let out = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy"])
        .run()
        .ok();
    let doc = out.document::<SnapshotMeta>();
    assert_eq!(doc.removed_leftovers, vec![leftover.clone()]);
    let notes: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("snap-take: note: removed "))
        .collect();
    assert_eq!(
        notes,
        vec![format!(
            "snap-take: note: removed {}: a partial copy left by a run that was killed",
            leftover.display()
        )],
        "{}",
        out.stderr
    );
    assert!(!leftover.exists());
    assert!(store.join(&doc.snapshot).is_dir());
    // Only the look-alikes are left, untouched (the symlink's target too).
    assert_eq!(partials(&store), vec![link.clone()]);
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(elsewhere.join("keep").is_file());
    assert!(foreign.is_dir());
    // The stored metadata does not carry the run's cleanup.
    let listed = Backend::detect(&pgdata, Some(BackendKind::Copy), None)
        .unwrap()
        .get(&doc.snapshot)
        .unwrap();
    assert!(listed.removed_leftovers.is_empty());

    // A real prune finds nothing left to remove.
    std::fs::remove_file(&link).unwrap();
    let report = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy", "--keep-last", "1"])
        .run()
        .ok()
        .document::<PruneReport>();
    assert!(report.removed_leftovers.is_empty());

    // snap-take --to reports what it removed in the snapshot of its image document.
    let leftover = kill_while_copying(&c.data, &store);
    let repo = c.root.path().join("repo");
    tool("wal-archive")
        .args(["init", "--repo"])
        .arg(&repo)
        .run()
        .ok();
    let out = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy", "--to"])
        .arg(&repo)
        .run()
        .ok();
    let image = out.document::<pgdr_snap::doc::ImageReport>();
    assert_eq!(image.snapshot.removed_leftovers, vec![leftover.clone()]);
    assert!(out
        .stderr
        .contains(&format!("removed {}", leftover.display())));
    assert!(partials(&store).is_empty());
}

/// Runs a tool binary in a mount namespace of its own where /run/zfs is an empty tmpfs: the
/// real zfs command then finds no zfs-fuse daemon socket, exactly as on a host where zfs-fuse
/// is installed but not running, while the daemon other tests use keeps running outside.
fn without_zfs_daemon(
    name: &str,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &Path)],
) -> pgdr_testkit::ToolOutput {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "-m",
        "sh",
        "-c",
        "mount -t tmpfs none /run/zfs && exec \"$@\"",
        "sh",
    ])
    .arg(pgdr_testkit::bin_dir().join(name))
    .args(args)
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env("LC_ALL", "C");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    pgdr_testkit::ToolOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// SPEC "Probing for storage never fails a run on its own": with zfs installed and its
/// daemon unreachable, snap-take, snap-prune and snap-clone work on a data directory on ext4
/// (the kernel says so; no zfs command is run), and on a ZFS dataset the error says that
/// PGDATA is on ZFS. (Before: "zfs list failed: connect: No such file or directory".)
#[test]
fn a_zfs_without_its_daemon_fails_only_data_directories_on_zfs() {
    let pool = skip_unless!(ZfsPool::create("512M"));
    let real_zfs = pgdr_snap::backend::run::have("zfs");
    assert!(real_zfs, "ZfsPool exists, so zfs is installed");
    // The namespace really has no daemon: the real zfs fails as on such a host.
    let probe = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs none /run/zfs && zfs list"])
        .output()
        .unwrap();
    assert!(!probe.status.success());
    assert!(
        String::from_utf8_lossy(&probe.stderr).contains("connect"),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let c = Cluster::builder().init_only();
    let data = c.data.as_os_str();
    let reg = tempfile::tempdir().unwrap();
    let env = [("PGDR_CLONE_DIR", reg.path())];
    let doc = without_zfs_daemon("snap-take", &["-D".as_ref(), data], &[])
        .ok()
        .document::<SnapshotMeta>();
    assert_eq!(doc.backend, "copy");
    let report = without_zfs_daemon(
        "snap-prune",
        &["-D".as_ref(), data, "--keep-last".as_ref(), "1".as_ref()],
        &[],
    )
    .ok()
    .document::<PruneReport>();
    assert_eq!(report.kept[0].snapshot, doc.snapshot);
    without_zfs_daemon(
        "snap-clone",
        &[
            "-D".as_ref(),
            data,
            "--snapshot".as_ref(),
            doc.snapshot.as_ref(),
            "--name".as_ref(),
            "nozfs".as_ref(),
        ],
        &env,
    )
    .ok();
    without_zfs_daemon(
        "snap-clone",
        &["--destroy".as_ref(), "nozfs".as_ref()],
        &env,
    )
    .ok();
    // On ZFS the missing daemon matters, and the one line says where PGDATA is.
    let mnt = pool.create_dataset("pg");
    let z = Cluster::builder().data_dir(mnt.join("data")).init_only();
    let out = without_zfs_daemon("snap-take", &["-D".as_ref(), z.data.as_os_str()], &[])
        .expect_error(1, "snap-take");
    assert!(out.stderr.contains("is on ZFS"), "{}", out.stderr);
    assert!(out.stderr.contains("connect"), "{}", out.stderr);
}

/// As `user` (runuser), the tool `name` with `args`.
fn as_user(
    user: &str,
    name: &str,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &Path)],
) -> pgdr_testkit::ToolOutput {
    let mut cmd = std::process::Command::new("runuser");
    cmd.args(["-u", user, "--", "env"]);
    for (k, v) in env {
        cmd.arg(format!("{k}={}", v.display()));
    }
    let out = cmd
        .arg(pgdr_testkit::bin_dir().join(name))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C")
        .current_dir("/")
        .output()
        .unwrap();
    pgdr_testkit::ToolOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// SPEC "Locks live beside what they protect" and issue 18 item 11: root's snap-take on a
/// fresh data directory leaves a store and sidecars the postgres user can use; root and the
/// postgres user take one lock (in the store) and exclude each other; no run leaves a lock
/// file behind; the clone registry is the host's, so root's clones are the postgres user's
/// to list and destroy; --destroy of a clone that does not exist creates nothing.
#[test]
fn root_and_the_postgres_user_share_snapshots_locks_and_clones() {
    assert!(pgdr_testkit::is_root(), "this test runs as root");
    let c = Cluster::builder().init_only();
    let data = c.data.canonicalize().unwrap();
    let data_os = data.as_os_str();
    let pg = pgdr_testkit::pg_user();
    let root_doc = tool("snap-take")
        .arg("-D")
        .arg(&data)
        .run()
        .ok()
        .document::<SnapshotMeta>();
    let backend = Backend::detect(&data, None, None).unwrap();
    let store = backend.store().to_path_buf();
    use std::os::unix::fs::MetadataExt;
    for p in [
        store.parent().unwrap().to_path_buf(),
        store.clone(),
        store.join(format!("{}.json", root_doc.snapshot)),
    ] {
        assert_eq!(
            std::fs::metadata(&p).unwrap().uid(),
            pg.uid,
            "{} is root's",
            p.display()
        );
    }
    assert!(
        !backend.lock_path().exists(),
        "snap-take left its lock file"
    );
    // The postgres user's runs after root's.
    let pg_doc = as_user("postgres", "snap-take", &["-D".as_ref(), data_os], &[])
        .ok()
        .document::<SnapshotMeta>();
    assert_ne!(pg_doc.snapshot, root_doc.snapshot);
    let report = as_user(
        "postgres",
        "snap-prune",
        &["-D".as_ref(), data_os, "--keep-last".as_ref(), "5".as_ref()],
        &[],
    )
    .ok()
    .document::<PruneReport>();
    assert_eq!(report.kept.len(), 2);
    // One lock for both: held by root, the postgres user's run exits 75, and the other way.
    let guard = backend.lock(None).unwrap();
    as_user("postgres", "snap-take", &["-D".as_ref(), data_os], &[]).expect_error(75, "snap-take");
    drop(guard);
    assert!(!backend.lock_path().exists());
    // A lock file left behind by a killed root run is no obstacle.
    std::fs::File::create(backend.lock_path()).unwrap();
    as_user("postgres", "snap-take", &["-D".as_ref(), data_os], &[]).ok();
    // The clone registry is per host: root's clone is the postgres user's to list and
    // destroy. Its parent is reachable for the postgres user, as /var/lib is.
    let reg_parent = pgdr_testkit::short_tempdir("pgdr-reg-");
    std::fs::set_permissions(
        reg_parent.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let reg = reg_parent.path().join("clones");
    let env = [("PGDR_CLONE_DIR", reg.as_path())];
    tool("snap-clone")
        .env("PGDR_CLONE_DIR", &reg)
        .arg("-D")
        .arg(&data)
        .args(["--snapshot", &root_doc.snapshot, "--name", "roots"])
        .run()
        .ok()
        .document::<pgdr_clone::doc::CloneReport>();
    assert_eq!(std::fs::metadata(&reg).unwrap().uid(), pg.uid);
    let listed = as_user("postgres", "snap-clone", &["--list".as_ref()], &env)
        .ok()
        .document::<pgdr_clone::doc::CloneList>();
    assert_eq!(listed.clones.len(), 1);
    assert_eq!(listed.clones[0].clone, "roots");
    // snap-prune as postgres sees root's clone and keeps its snapshot.
    let report = as_user(
        "postgres",
        "snap-prune",
        &[
            "-D".as_ref(),
            data_os,
            "--keep-last".as_ref(),
            "1".as_ref(),
            "--dry-run".as_ref(),
        ],
        &env,
    )
    .ok()
    .document::<PruneReport>();
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.snapshot == root_doc.snapshot),
        "{report:?}"
    );
    let gone = as_user(
        "postgres",
        "snap-clone",
        &["--destroy".as_ref(), "roots".as_ref()],
        &env,
    )
    .ok()
    .document::<pgdr_clone::doc::DestroyReport>();
    assert!(gone.existed);
    let left: Vec<_> = std::fs::read_dir(&reg)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in the registry: {left:?}");
    // Destroying what does not exist leaves nothing: no lock file, no registry.
    tool("snap-clone")
        .env("PGDR_CLONE_DIR", &reg)
        .args(["--destroy", "no-such-clone"])
        .run()
        .expect_error(1, "snap-clone");
    assert!(std::fs::read_dir(&reg).unwrap().next().is_none());
    let none = reg_parent.path().join("never");
    tool("snap-clone")
        .env("PGDR_CLONE_DIR", &none)
        .args(["--destroy", "no-such-clone"])
        .run()
        .expect_error(1, "snap-clone");
    assert!(!none.exists());
}
