//! snap-prune on a real zfs-fuse pool and the copy backend: it destroys exactly what its dry
//! run announced, never foreign snapshots, never one with a clone, never the newest.

mod snap_support;

use chrono::{Duration as CDuration, TimeZone, Utc};
use pgdr_snap::backend::Backend;
use pgdr_snap::take::{take, TakeOptions};
use pgdr_snap::BackendKind;
use pgdr_testkit::{skip_unless, tool, Cluster, ZfsPool};
use serde_json::Value;
use std::collections::BTreeSet;

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["snapshot"].as_str().unwrap().to_string())
        .collect()
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
    backend.clone_snapshot(cloned, "keepme", None).unwrap();
    let before = zfs_snapshots(&ds);
    let policy = ["--keep-last", "2", "--keep-daily", "1"];
    let dry = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(policy)
        .arg("--dry-run")
        .run()
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(zfs_snapshots(&ds), before, "the dry run changed something");
    let announced = names(&dry["destroyed"]);
    // Newest and the one before (last 2; the newest is also the daily).
    let kept = names(&dry["kept"]);
    assert_eq!(
        kept,
        [series[6].snapshot.clone(), series[7].snapshot.clone()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        dry["kept"][0]["reasons"],
        serde_json::json!(["newest", "last snapshot", "daily snapshot"])
    );
    assert_eq!(
        names(&dry["skipped"]),
        [cloned.snapshot.clone()].into_iter().collect()
    );
    assert_eq!(announced.len(), 5);
    let real = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(policy)
        .run()
        .ok()
        .json();
    assert_eq!(names(&real["destroyed"]), announced);
    let after = zfs_snapshots(&ds);
    let expected: BTreeSet<String> = before.difference(&announced).cloned().collect();
    assert_eq!(after, expected);
    assert!(after.contains("manual"));
    // The oldest snapshot left is the cloned one; its wal_start is what wal-archive may keep.
    assert_eq!(real["oldest_kept"]["snapshot"], cloned.snapshot);
    assert_eq!(real["oldest_kept"]["wal_start"], cloned.wal_start);
    // Again: nothing more to do.
    let again = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(policy)
        .run()
        .ok()
        .json();
    assert!(names(&again["destroyed"]).is_empty());
    // Once the clone is gone, its snapshot can go.
    backend.destroy_clone("keepme").unwrap();
    let last = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(policy)
        .run()
        .ok()
        .json();
    assert_eq!(
        names(&last["destroyed"]),
        [cloned.snapshot.clone()].into_iter().collect()
    );
    assert_eq!(last["oldest_kept"]["snapshot"], series[6].snapshot);
    // snap-clone's refusal of foreign clones: a dataset not made by snap-clone is not ours.
    assert!(backend.destroy_clone("manual").is_err());
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
    let doc = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy", "--label", "s"])
        .run()
        .ok()
        .json();
    // Window of 1 day before the newest (just taken, now): only the newest is in it; its base
    // is the newest before it (the last of the series).
    let out = tool("snap-prune")
        .arg("-")
        .args(["--pitr-window", "1d", "--label", "s"])
        .stdin(doc.to_string())
        .run()
        .ok()
        .json();
    assert_eq!(out["backend"], "copy");
    let kept = names(&out["kept"]);
    assert_eq!(
        kept,
        [
            doc["snapshot"].as_str().unwrap().to_string(),
            series[5].snapshot.clone()
        ]
        .into_iter()
        .collect()
    );
    assert!(
        out["kept"][1]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("base of the 1d PITR window"),
        "{out}"
    );
    assert_eq!(names(&out["destroyed"]).len(), 5);
    // The other label's snapshot stays and, being the oldest left, bounds the WAL.
    assert_eq!(out["oldest_kept"]["snapshot"], other.snapshot);
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
    // Nothing to prune is not an error.
    let out = tool("snap-prune")
        .args(["--pgdata", d, "--backend", "copy", "--keep-last", "1"])
        .run()
        .ok()
        .json();
    assert_eq!(out["oldest_kept"], Value::Null);
}
