//! snap-prune on a real zfs-fuse pool and the copy backend: it destroys exactly what its dry
//! run announced, never foreign snapshots, never one with a clone, never the newest.

mod snap_support;

use chrono::{Duration as CDuration, TimeZone, Utc};
use pgdr_snap::backend::Backend;
use pgdr_snap::cmd::take::{take, TakeOptions};
use pgdr_snap::doc::PruneReport;
use pgdr_snap::registry::Registry;
use pgdr_snap::{BackendKind, SnapshotMeta};
use pgdr_testkit::{skip_unless, tool, Cluster, ZfsPool};
use std::collections::BTreeSet;

fn names<'a>(v: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    v.into_iter().cloned().collect()
}

fn kept(r: &PruneReport) -> BTreeSet<String> {
    names(r.kept.iter().map(|k| &k.snapshot))
}

fn destroyed(r: &PruneReport) -> BTreeSet<String> {
    names(r.destroyed.iter().map(|k| &k.snapshot))
}

fn skipped(r: &PruneReport) -> BTreeSet<String> {
    names(r.skipped.iter().map(|k| &k.snapshot))
}

fn zfs_snapshots(ds: &str) -> BTreeSet<String> {
    let out = pgdr_testkit::run_ok(
        std::process::Command::new("zfs")
            .args(["list", "-H", "-o", "name", "-t", "snapshot", "-r", ds]),
    );
    out.lines()
        .filter_map(|l| l.split_once('@').map(|(_, s)| s.to_string()))
        .collect()
}

/// Snapshots at synthetic times (every 6 hours over two days), as snap-take makes them.
fn take_series(backend: &Backend, n: usize, label: Option<&str>) -> Vec<pgdr_snap::SnapshotMeta> {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let at = Some(t0 + CDuration::hours(6 * i as i64));
            take(
                backend,
                &TakeOptions {
                    label: label.map(str::to_string),
                    dsn: None,
                    at,
                },
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn prune_on_zfs_destroys_exactly_what_the_dry_run_announced() {
    let pool = skip_unless!(ZfsPool::create("512M"));
    let mnt = pool.create_dataset("pg");
    let ds = pool.dataset("pg");
    let mut c = Cluster::builder().data_dir(mnt.join("data")).start();
    c.execute("create table t as select generate_series(1, 100) x");
    c.stop();
    let pgdata = c.data.canonicalize().unwrap();
    let backend = Backend::detect(&pgdata, None, None).unwrap();
    assert_eq!(backend.kind(), BackendKind::Zfs);
    let series = take_series(&backend, 8, None);
    // A snapshot snap-take did not make, and one with a clone.
    pgdr_testkit::run_ok(
        std::process::Command::new("zfs").args(["snapshot", &format!("{ds}@manual")]),
    );
    let cloned = &series[1];
    let reg_dir = tempfile::tempdir().unwrap();
    let registry = Registry {
        dir: reg_dir.path().join("clones"),
    };
    backend
        .clone_snapshot(&registry, cloned, "keepme", None)
        .unwrap();
    let before = zfs_snapshots(&ds);
    let policy = ["--keep-last", "2", "--keep-daily", "1"];
    let prune = || {
        tool("snap-prune")
            .env("PGDR_CLONE_DIR", &registry.dir)
            .arg("--pgdata")
            .arg(&c.data)
            .args(policy)
    };
    let dry = prune()
        .arg("--dry-run")
        .run()
        .ok()
        .document::<PruneReport>();
    assert!(dry.dry_run);
    assert_eq!(zfs_snapshots(&ds), before, "the dry run changed something");
    let announced = destroyed(&dry);
    // Newest and the one before (last 2; the newest is also the daily).
    assert_eq!(
        kept(&dry),
        [series[6].snapshot.clone(), series[7].snapshot.clone()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        dry.kept[0].reasons,
        ["newest", "last snapshot", "daily snapshot"]
    );
    assert_eq!(
        skipped(&dry),
        [cloned.snapshot.clone()].into_iter().collect()
    );
    assert_eq!(announced.len(), 5);
    // snap-prune's own dry-run document makes the next snap-prune a dry run too.
    let piped = tool("snap-prune")
        .env("PGDR_CLONE_DIR", &registry.dir)
        .arg("-")
        .args(policy)
        .stdin(dry_text(&c.data, &registry))
        .run()
        .ok()
        .document::<PruneReport>();
    assert!(piped.dry_run);
    assert_eq!(
        zfs_snapshots(&ds),
        before,
        "a piped dry run changed something"
    );
    let real = prune().run().ok().document::<PruneReport>();
    assert_eq!(destroyed(&real), announced);
    let after = zfs_snapshots(&ds);
    let expected: BTreeSet<String> = before.difference(&announced).cloned().collect();
    assert_eq!(after, expected);
    assert!(after.contains("manual"));
    // The oldest snapshot left is the cloned one; its wal_start is what wal-archive may keep.
    let oldest = real.oldest_kept.as_ref().unwrap();
    assert_eq!(oldest.snapshot, cloned.snapshot);
    assert_eq!(oldest.wal_start, cloned.wal_start);
    // Again: nothing more to do.
    let again = prune().run().ok().document::<PruneReport>();
    assert!(destroyed(&again).is_empty());
    // Once the clone is gone, its snapshot can go.
    backend.destroy_clone(&registry, "keepme").unwrap();
    let last = prune().run().ok().document::<PruneReport>();
    assert_eq!(
        destroyed(&last),
        [cloned.snapshot.clone()].into_iter().collect()
    );
    assert_eq!(last.oldest_kept.unwrap().snapshot, series[6].snapshot);
    // snap-clone's refusal of foreign clones: a dataset not made by snap-clone is not ours.
    assert!(backend.destroy_clone(&registry, "manual").is_err());
    c.start_server();
}

#[test]
fn reads_a_snap_take_document_and_keeps_the_pitr_window() {
    let c = Cluster::start();
    c.stop();
    let pgdata = c.data.canonicalize().unwrap();
    let backend = Backend::detect(&pgdata, Some(BackendKind::Copy), None).unwrap();
    let series = take_series(&backend, 6, Some("s"));
    // A snapshot with another label is never considered with --label s.
    let other = take(
        &backend,
        &TakeOptions {
            label: Some("other".into()),
            dsn: None,
            at: Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()),
        },
    )
    .unwrap();
    let taken = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy", "--label", "s"])
        .run()
        .ok();
    let doc = taken.document::<SnapshotMeta>();
    // Window of 1 day before the newest (just taken, now): only the newest is in it; its base
    // is the newest before it (the last of the series).
    let out = tool("snap-prune")
        .arg("-")
        .args(["--pitr-window", "1d", "--label", "s"])
        .stdin(taken.stdout.clone())
        .run()
        .ok()
        .document::<PruneReport>();
    assert_eq!(out.backend, "copy");
    assert_eq!(
        kept(&out),
        [doc.snapshot.clone(), series[5].snapshot.clone()]
            .into_iter()
            .collect()
    );
    assert!(
        out.kept[1].reasons[0].starts_with("base of the 1d PITR window"),
        "{out:?}"
    );
    assert_eq!(destroyed(&out).len(), 5);
    // The other label's snapshot stays and, being the oldest left, bounds the WAL.
    assert_eq!(out.oldest_kept.as_ref().unwrap().snapshot, other.snapshot);
    let left: BTreeSet<String> = backend
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.snapshot)
        .collect();
    assert_eq!(left.len(), 3);
    assert!(left.contains(&other.snapshot));
    for s in &series[..5] {
        assert!(
            !backend.snap_root_exists(&s.snapshot),
            "{} not removed",
            s.snapshot
        );
    }
}

trait Exists {
    fn snap_root_exists(&self, name: &str) -> bool;
}
impl Exists for Backend {
    fn snap_root_exists(&self, name: &str) -> bool {
        match self {
            Backend::Copy(c) => c.snap_path(name).exists(),
            _ => unreachable!(),
        }
    }
}

#[test]
fn usage_errors() {
    let c = Cluster::builder().init_only();
    let d = c.data.to_str().unwrap();
    let out = tool("snap-prune")
        .args(["--pgdata", d])
        .run()
        .expect_error(2, "snap-prune");
    assert!(out.stderr.contains("no retention rule"), "{}", out.stderr);
    tool("snap-prune")
        .args(["--pgdata", d, "--pitr-window", "7x"])
        .run()
        .expect_error(2, "snap-prune");
    tool("snap-prune")
        .args(["-", "--keep-last", "1"])
        .stdin("")
        .run()
        .expect_error(2, "snap-prune");
    tool("snap-prune")
        .args(["-", "--keep-last", "1"])
        .stdin("{\"a\":1}")
        .run()
        .expect_error(2, "snap-prune");
    tool("snap-prune")
        .args(["--keep-last", "1"])
        .run()
        .expect_error(2, "snap-prune");
    // A document of another tool, or snap-take's with a key it does not have: exit 2 naming
    // the field.
    let out = tool("snap-prune")
        .args(["-", "--keep-last", "1"])
        .stdin(r#"{"tool":"repl-lag","version":"0.1.0"}"#)
        .run()
        .expect_error(2, "snap-prune");
    assert!(out.stderr.contains("repl-lag"), "{}", out.stderr);
    // Nothing to prune is not an error.
    let out = tool("snap-prune")
        .args(["--pgdata", d, "--backend", "copy", "--keep-last", "1"])
        .run()
        .ok()
        .document::<PruneReport>();
    assert_eq!(out.oldest_kept, None);
}

/// A snap-prune dry-run report of `data`, as snap-prune prints it.
fn dry_text(data: &std::path::Path, registry: &Registry) -> String {
    tool("snap-prune")
        .env("PGDR_CLONE_DIR", &registry.dir)
        .arg("--pgdata")
        .arg(data)
        .args(["--keep-last", "1", "--dry-run"])
        .run()
        .ok()
        .stdout
}

/// Issue 18 item 6, on real copy snapshots: taken now, and with their metadata dated now-5d,
/// -4d, -1d and 2042 (snap-take's library names and dates a snapshot by `TakeOptions::at`; the
/// data is a real copy of the data directory). A window is anchored on the newest snapshot
/// that is not in the future: the 2042 one is kept and reported, the real ones within the
/// window stay, and oldest_kept is a real one. (Before: only the 2042 snapshot was kept and
/// oldest_kept pointed at it.)
#[test]
fn a_snapshot_dated_in_the_future_never_costs_the_real_ones() {
    let c = Cluster::builder().init_only();
    let pgdata = c.data.canonicalize().unwrap();
    let backend = Backend::detect(&pgdata, Some(BackendKind::Copy), None).unwrap();
    let now = Utc::now();
    let at = |t| TakeOptions {
        label: None,
        dsn: None,
        at: Some(t),
    };
    let days = |n| now - CDuration::days(n);
    let m5 = take(&backend, &at(days(5))).unwrap();
    let m4 = take(&backend, &at(days(4))).unwrap();
    let m1 = take(&backend, &at(days(1))).unwrap();
    let future = take(
        &backend,
        &at(Utc.with_ymd_and_hms(2042, 1, 1, 0, 0, 0).unwrap()),
    )
    .unwrap();
    let taken = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy"])
        .run()
        .ok();
    let newest = taken.document::<SnapshotMeta>();
    let dry = |policy: &[&str]| {
        tool("snap-prune")
            .arg("-")
            .args(policy)
            .arg("--dry-run")
            .stdin(taken.stdout.clone())
            .run()
            .ok()
            .document::<PruneReport>()
    };
    let pitr = dry(&["--pitr-window", "7d"]);
    assert!(pitr.destroyed.is_empty(), "{pitr:?}");
    let within = dry(&["--keep-within", "2d"]);
    assert_eq!(
        kept(&within),
        names([&newest.snapshot, &m1.snapshot, &future.snapshot])
    );
    assert_eq!(destroyed(&within), names([&m5.snapshot, &m4.snapshot]));
    let f = within
        .kept
        .iter()
        .find(|k| k.snapshot == future.snapshot)
        .unwrap();
    assert_eq!(f.reasons, ["dated in the future"]);
    assert_eq!(within.problems.len(), 1, "{:?}", within.problems);
    assert!(within.problems[0].contains(&future.snapshot));
    assert!(within.problems[0].contains("2042"));
    let daily = dry(&["--keep-daily", "1"]);
    assert_eq!(kept(&daily), names([&newest.snapshot, &future.snapshot]));
    // For real, and what wal-archive prune will read.
    let real = tool("snap-prune")
        .arg("-")
        .args(["--keep-within", "2d"])
        .stdin(taken.stdout.clone())
        .run()
        .ok()
        .document::<PruneReport>();
    assert_eq!(destroyed(&real), names([&m5.snapshot, &m4.snapshot]));
    assert_eq!(real.oldest_kept.unwrap().snapshot, m1.snapshot);
    let left: BTreeSet<String> = backend
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.snapshot)
        .collect();
    assert_eq!(
        left,
        names([&newest.snapshot, &m1.snapshot, &future.snapshot])
    );
    // With only the future one left (and its own rules), it is oldest_kept: nothing else is.
    for m in [&newest, &m1] {
        backend.remove_snapshot(&m.snapshot, false).unwrap();
    }
    let only = tool("snap-prune")
        .args(["--pgdata"])
        .arg(&c.data)
        .args(["--backend", "copy", "--keep-last", "1"])
        .run()
        .ok()
        .document::<PruneReport>();
    assert_eq!(only.oldest_kept.unwrap().snapshot, future.snapshot);
}
