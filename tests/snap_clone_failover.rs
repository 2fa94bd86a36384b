//! A clone after a failover, on real PostgreSQL and a real btrfs loop mount: the repository's
//! newest timeline branched off the primary's, and the old primary went on writing on the
//! abandoned one. A crash image (atomic snapshot) of it taken afterwards has its checkpoint
//! before the switch, so PostgreSQL itself accepts recovering it onto the new timeline, but
//! its pg_wal, which crash recovery replays first, holds the abandoned timeline's changes:
//! the clone would silently keep them. snap-clone must not choose it, refuse it when named,
//! and find it out from the clone's own pg_wal when its metadata is older than wal_end.

use pgdr_clone::doc::CloneReport;
use pgdr_snap::SnapshotMeta;
use pgdr_testkit::{skip_unless, tool, BtrfsMount, Cluster};
use std::path::Path;
use std::time::Duration;

fn client_of(doc: &CloneReport) -> postgres::Client {
    pgdr_testkit::connect_at(&doc.socket_dir, doc.port)
}

fn tags(doc: &CloneReport) -> Vec<String> {
    client_of(doc)
        .query("select tag from t order by tag", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn wa_push(file: &Path, repo: &Path) {
    tool("wal-archive")
        .arg("push")
        .arg(file)
        .arg("--repo")
        .arg(repo)
        .run()
        .ok();
}

#[test]
fn a_crash_image_of_the_abandoned_timeline_is_not_cloned_onto_the_new_one() {
    let fs = skip_unless!(BtrfsMount::create("2G"));
    let sub = fs.subvolume("pg").canonicalize().unwrap();
    let repo_dir = pgdr_testkit::short_tempdir("pgdr-fo-");
    let repo = repo_dir.path().join("repo");
    let wa = pgdr_testkit::bin_dir().join("wal-archive");
    let mut p = Cluster::builder()
        .data_dir(sub.join("data"))
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} push %p --repo {}'",
            wa.display(),
            repo.display()
        ))
        .conf("checkpoint_timeout = 1h")
        .conf("max_wal_size = 1GB")
        .init_only();
    tool("wal-archive")
        .arg("init")
        .arg("--repo")
        .arg(&repo)
        .arg("--pgdata")
        .arg(&p.data)
        .run()
        .ok();
    p.start_server();
    let registry = tempfile::tempdir().unwrap();
    let sc = || tool("snap-clone").env("PGDR_CLONE_DIR", registry.path());
    // A clone of the primary's snapshots recovering from the repository.
    let clone = |name: &str| {
        sc().arg("--pgdata")
            .arg(&p.data)
            .arg("--repo")
            .arg(&repo)
            .args(["--name", name])
    };
    let list = || -> pgdr_snap::doc::SnapshotList {
        tool("snap-take")
            .args(["--list", "--pgdata"])
            .arg(&p.data)
            .arg("--repo")
            .arg(&repo)
            .run()
            .ok()
            .document()
    };
    let take = || -> (SnapshotMeta, String) {
        let out = tool("snap-take").arg("--pgdata").arg(&p.data).run().ok();
        (out.document(), out.stdout)
    };
    let switch_and_archive = |c: &Cluster| {
        let seg = c
            .query_value("select pg_walfile_name(pg_switch_wal())")
            .unwrap();
        c.wait_for(
            &format!("select coalesce(last_archived_wal >= '{seg}', false) from pg_stat_archiver"),
            Duration::from_secs(120),
        );
    };

    p.execute("create table t (tag text)");
    p.execute("insert into t values ('before')");
    p.execute("checkpoint");
    let (s1, s1_doc) = take();
    assert_eq!(s1.method, "atomic");
    p.execute("insert into t values ('shared')");
    switch_and_archive(&p);

    // The failover: a copy of s1 recovered to the end of the archive and promoted (timeline
    // 2), whose history and WAL reach the repository as its archiver would send them.
    let c1: CloneReport = clone("promoted")
        .args(["--snapshot", &s1.snapshot])
        .args(["--recovery-target", "latest"])
        .args(["--recovery-target-action", "promote", "--start"])
        .run()
        .ok()
        .document();
    let mut c = client_of(&c1);
    c.execute("insert into t values ('tl2')", &[]).unwrap();
    let last: String = c
        .query_one("select pg_walfile_name(pg_switch_wal())", &[])
        .unwrap()
        .get(0);
    assert!(last.starts_with("00000002"), "{last}");
    let wal = c1.path.join("pg_wal");
    let tl2_segments: Vec<std::path::PathBuf> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.len() == 24 && n.starts_with("00000002") && n <= last
        })
        .collect();
    assert!(!tl2_segments.is_empty());
    let history = std::fs::read_to_string(wal.join("00000002.history")).unwrap();
    let switchpoint: pgdr_pgformat::Lsn =
        history.split_whitespace().nth(1).unwrap().parse().unwrap();

    // The old primary goes on on timeline 1, past the switch, and a crash image of it is
    // taken: its checkpoint is still s1's, before the switch, so PostgreSQL would accept it.
    p.execute("insert into t values ('lost')");
    let lost: pgdr_pgformat::Lsn = p
        .query_value("select pg_current_wal_lsn()")
        .unwrap()
        .parse()
        .unwrap();
    assert!(lost > switchpoint);
    let (s2, s2_doc) = take();
    assert_eq!(s2.checkpoint_lsn, s1.checkpoint_lsn);
    assert!(s2.checkpoint_lsn < switchpoint);
    let end = s2
        .wal_end
        .expect("an atomic snapshot of a primary records its end of WAL");
    assert!(end >= lost, "{end} < {lost}");
    assert_eq!(s2.consistent_lsn(), end);
    // --list says so too; its own WAL (not yet archived) still reaches that point.
    let l2 = list();
    let l2 = l2
        .snapshots
        .iter()
        .find(|l| l.snapshot == s2.snapshot)
        .unwrap();
    assert_eq!(l2.consistent_lsn, end);
    let w = l2.window.as_ref().expect("a window from its own WAL");
    assert!(w.from_lsn == end && w.to_lsn >= end, "{w:?}");

    // Timeline 2's WAL reaches the repository before its history: recovery could not follow
    // it (PostgreSQL finds timelines by their history files), so nothing is chosen.
    for f in &tl2_segments {
        wa_push(f, &repo);
    }
    let out = clone("nohistory")
        .args(["--latest"])
        .args(["--recovery-target", "latest", "--start"])
        .run()
        .expect_error(1, "snap-clone");
    assert!(out.stderr.contains("00000002.history"), "{}", out.stderr);
    // wal-archive check against the new primary says so too, until the history is there.
    let check = |conninfo: &str| -> Vec<String> {
        let doc = tool("wal-archive")
            .args(["check", "--timeout", "5", "-d", conninfo, "--repo"])
            .arg(&repo)
            .run()
            .json();
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let c1_conninfo = format!(
        "host={} port={} user=postgres dbname=postgres",
        c1.socket_dir.display(),
        c1.port
    );
    assert!(check(&c1_conninfo).iter().any(|c| c == "history_missing"));
    wa_push(&wal.join("00000002.history"), &repo);
    assert!(!check(&c1_conninfo).iter().any(|c| c == "history_missing"));

    // Now s2 serves nothing on the newest timeline: --list gives it no window; as images,
    // retention does not count it, and info does not take it as the window's base.
    let listed = list();
    let window_of = |n: &str| {
        listed
            .snapshots
            .iter()
            .find(|l| l.snapshot == n)
            .unwrap()
            .window
            .clone()
    };
    assert!(window_of(&s2.snapshot).is_none());
    assert!(window_of(&s1.snapshot).is_some());
    for doc in [&s1_doc, &s2_doc] {
        tool("snap-take")
            .args(["-", "--to"])
            .arg(&repo)
            .stdin(doc.clone())
            .run()
            .ok();
    }
    let pruned: serde_json::Value = tool("snap-prune")
        .arg("--repo")
        .arg(&repo)
        .args(["--keep-last", "1", "--dry-run"])
        .run()
        .ok()
        .json();
    assert_eq!(pruned["destroyed"], serde_json::json!([]), "{pruned}");
    let reasons = |n: &str| {
        pruned["kept"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["snapshot"] == n)
            .map(|k| k["reasons"].to_string())
            .unwrap_or_default()
    };
    assert!(reasons(&s2.snapshot).contains("not counted"), "{pruned}");
    assert!(reasons(&s1.snapshot).contains("last"), "{pruned}");
    let info: serde_json::Value = tool("wal-archive")
        .args(["info", "--repo"])
        .arg(&repo)
        .run()
        .ok()
        .json();
    assert_eq!(
        info["window"]["earliest_image"],
        s1.snapshot.as_str(),
        "{info}"
    );
    let image = |n: &str| {
        info["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == n)
            .cloned()
            .unwrap()
    };
    assert!(image(&s2.snapshot)["latest_lsn"].is_null(), "{info}");
    assert!(!image(&s1.snapshot)["latest_lsn"].is_null(), "{info}");

    // --latest to the end of the archive: s1, on timeline 2's history; the abandoned row is
    // not there, timeline 2's is.
    let c2: CloneReport = clone("after")
        .args(["--latest"])
        .args(["--recovery-target", "latest", "--start"])
        .run()
        .ok()
        .document();
    assert_eq!(c2.snapshot, s1.snapshot);
    assert_eq!(tags(&c2), ["before", "shared", "tl2"]);
    // --before a moment after both snapshots: s1 too, recovered along timeline 2.
    std::thread::sleep(Duration::from_millis(1100));
    let t = p.query_value("select clock_timestamp()::text").unwrap();
    let c3: CloneReport = clone("before-t")
        .args(["--before", &t])
        .args(["--recovery-target", "latest", "--start"])
        .run()
        .ok()
        .document();
    assert_eq!(c3.snapshot, s1.snapshot);
    assert_eq!(tags(&c3), ["before", "shared", "tl2"]);
    // An LSN target between a crash image's checkpoint and the end of its WAL: refused
    // before anything is made (PostgreSQL would stop with a FATAL after the start).
    let e = s1.wal_end.unwrap();
    assert!(e > s1.checkpoint_lsn, "{e}");
    let out = sc()
        .arg("--pgdata")
        .arg(&p.data)
        .args(["--snapshot", &s1.snapshot, "--name", "early"])
        .args([
            "--recovery-target-lsn",
            &s1.checkpoint_lsn.to_string(),
            "--start",
        ])
        .run()
        .expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains(&format!("consistent point {e}")),
        "{}",
        out.stderr
    );

    // Named outright, s2 is refused before anything is made; so it is when its metadata
    // predates wal_end, from the clone's own pg_wal, and the clone is rolled back.
    let refused = |name: &str| {
        let out = clone(name)
            .args(["--snapshot", &s2.snapshot])
            .args(["--recovery-target", "latest", "--start"])
            .run()
            .expect_error(1, "snap-clone");
        assert!(
            out.stderr.contains("branched off") && out.stderr.contains(&switchpoint.to_string()),
            "{}",
            out.stderr
        );
        let listed = sc().arg("--list").run().ok().stdout;
        assert!(!listed.contains(&format!("\"{name}\"")), "{listed}");
    };
    refused("named");
    let store = sub.parent().unwrap().join(".pgdr-snapshots").join("pg");
    let sidecar = store.join(format!("{}.json", s2.snapshot));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    assert!(v.as_object_mut().unwrap().remove("wal_end").is_some());
    std::fs::write(&sidecar, v.to_string()).unwrap();
    refused("older");
    drop(c);
    sc().args(["--destroy", "after"]).run().ok();
    sc().args(["--destroy", "before-t"]).run().ok();
    sc().args(["--destroy", "promoted"]).run().ok();
}
