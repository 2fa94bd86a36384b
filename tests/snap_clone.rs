//! snap-clone on real PostgreSQL servers, a real zfs-fuse pool, a real btrfs loop mount and
//! the copy backend: the seed drill (a primary archiving through wal-archive, a standby on
//! the snapshot filesystem, rows in batches with recorded times, snapshots between batches)
//! cloned to several target times; clones never touch production; every failure leaves no
//! clone and no server behind.
//!
//! Past 600 lines: one test per behaviour, each on its own real servers and filesystems; the
//! helpers they share stay beside them.

use pgdr_clone::doc::{CloneList, CloneReport, DestroyReport, ListedClone};
use pgdr_snap::registry::Registry;
use pgdr_snap::SnapshotMeta;
use pgdr_testkit::{skip_unless, tool, BtrfsMount, Cluster, ToolCommand, ZfsPool};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: &str = "snap-clone";

/// The drill's moving parts.
struct Drill {
    primary: Cluster,
    standby: Cluster,
    _repo_dir: tempfile::TempDir,
    repo: PathBuf,
    registry: tempfile::TempDir,
    /// (start, end) of each batch's commit, as the primary's clock saw them; batch i is
    /// index i-1.
    batches: Vec<(String, String)>,
    /// Snapshots by label: the document snap-take printed, as printed and as read.
    snaps: Vec<(String, String, SnapshotMeta)>,
    /// Times recorded for targets.
    marks: Vec<(&'static str, String)>,
    extra: Vec<String>,
}

const ROWS: i64 = 10;

impl Drill {
    fn sc(&self) -> ToolCommand {
        tool(T).env("PGDR_CLONE_DIR", self.registry.path())
    }

    fn now(&self) -> String {
        self.primary
            .query_value("select clock_timestamp()::text")
            .unwrap()
    }

    fn mark(&mut self, name: &'static str) {
        std::thread::sleep(Duration::from_millis(300));
        let t = self.now();
        self.marks.push((name, t));
        std::thread::sleep(Duration::from_millis(300));
    }

    fn at(&self, name: &str) -> String {
        self.marks
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    }

    fn batch(&mut self) {
        let b = self.batches.len() as i64 + 1;
        let start = self.now();
        self.primary.execute(&format!(
            "insert into t select {b}, g from generate_series(1, {ROWS}) g"
        ));
        let end = self.now();
        self.batches.push((start, end));
        self.standby.wait_for(
            &format!("select count(*) = {} from t", b * ROWS),
            Duration::from_secs(60),
        );
    }

    fn snapshot(&mut self, label: &str) {
        let mut t = tool("snap-take")
            .arg("--pgdata")
            .arg(&self.standby.data)
            .args(["--label", label])
            .args(&self.extra);
        if self.extra.iter().any(|e| e == "copy") {
            t = t.args(["-d", &self.standby.conninfo()]);
        }
        let out = t.run().ok();
        let doc = out.document::<SnapshotMeta>();
        self.snaps.push((label.to_string(), out.stdout, doc));
    }

    fn snap(&self, label: &str) -> &SnapshotMeta {
        &self.snaps.iter().find(|(l, _, _)| l == label).unwrap().2
    }

    /// snap-take's document of the snapshot, as it printed it.
    fn snap_text(&self, label: &str) -> String {
        self.snaps
            .iter()
            .find(|(l, _, _)| l == label)
            .unwrap()
            .1
            .clone()
    }

    fn name(&self, label: &str) -> String {
        self.snap(label).snapshot.clone()
    }

    /// The batches whose commit had finished by `t` (a time recorded between batches).
    fn expected(&self, t: &str) -> Vec<i64> {
        let ts = |s: &str| pgdr_clone::target::parse_time(s).unwrap();
        let t = ts(t);
        let mut v = Vec::new();
        for (i, (start, end)) in self.batches.iter().enumerate() {
            assert!(
                !(ts(start) <= t && t <= ts(end)),
                "target {t} falls inside batch {}",
                i + 1
            );
            if ts(end) <= t {
                v.push(i as i64 + 1);
            }
        }
        v
    }

    fn clone_args(&self) -> Vec<String> {
        let mut v = vec![
            "--pgdata".to_string(),
            self.standby.data.display().to_string(),
        ];
        v.extend(self.extra.iter().cloned());
        v
    }

    fn list(&self) -> Vec<ListedClone> {
        self.sc()
            .arg("--list")
            .run()
            .ok()
            .document::<CloneList>()
            .clones
    }

    fn registry(&self) -> Registry {
        Registry {
            dir: self.registry.path().to_path_buf(),
        }
    }

    fn backend(&self) -> pgdr_snap::Backend {
        let kind = self
            .extra
            .iter()
            .any(|e| e == "copy")
            .then_some(pgdr_snap::BackendKind::Copy);
        let data = self.standby.data.canonicalize().unwrap();
        pgdr_snap::Backend::detect(&data, kind, None).unwrap()
    }

    /// Nothing left: no record, no clone storage, no server on the port.
    fn assert_nothing_left(&self, port: Option<u16>) {
        assert!(self.list().is_empty(), "{:?}", self.list());
        assert!(self.registry().list().unwrap().is_empty());
        let parent = clone_parent(&self.backend());
        let left: Vec<_> = std::fs::read_dir(&parent)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "clones left in {}: {left:?}",
            parent.display()
        );
        if let Some(p) = port {
            assert!(std::net::TcpStream::connect(("127.0.0.1", p)).is_err());
        }
        assert!(
            !postgres_running_under(&clone_parent(&self.backend())),
            "a server of a clone still runs"
        );
    }
}

/// Where the backend puts clones by default.
fn clone_parent(b: &pgdr_snap::Backend) -> PathBuf {
    match b {
        pgdr_snap::Backend::Zfs(z) => {
            let pool = z.dataset.split('/').next().unwrap().to_string();
            let mp = std::process::Command::new("zfs")
                .args(["get", "-H", "-o", "value", "mountpoint", &pool])
                .output()
                .unwrap();
            PathBuf::from(String::from_utf8_lossy(&mp.stdout).trim()).join("pgdr-clones")
        }
        pgdr_snap::Backend::Btrfs(b) => b.store.join("clones"),
        pgdr_snap::Backend::Copy(c) => c.store.join("clones"),
    }
}

/// Whether a postgres process has its working directory below `dir`.
fn postgres_running_under(dir: &Path) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(dir))
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
    })
}

fn client_of(doc: &CloneReport) -> postgres::Client {
    pgdr_testkit::connect_at(&doc.socket_dir, doc.port)
}

fn rows(doc: &CloneReport) -> (Vec<i64>, i64) {
    let mut c = client_of(doc);
    let batches: Vec<i64> = c
        .query("select distinct batch::int8 from t order by 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let n: i64 = c.query_one("select count(*) from t", &[]).unwrap().get(0);
    (batches, n)
}

/// The seed drill on the standby whose data directory is `dir`.
fn drill(dir: &Path, extra: &[&str]) -> Drill {
    let repo_dir = pgdr_testkit::short_tempdir("pgdr-cr-");
    let repo = repo_dir.path().join("repo");
    let wa = pgdr_testkit::bin_dir().join("wal-archive");
    let mut primary = Cluster::builder()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} push %p --repo {}'",
            wa.display(),
            repo.display()
        ))
        .init_only();
    pgdr_testkit::tool("wal-archive")
        .arg("init")
        .arg("--repo")
        .arg(&repo)
        .arg("--pgdata")
        .arg(&primary.data)
        .run()
        .ok();
    primary.start_server();
    primary.execute("create table t (batch int, n int)");
    let standby = primary.standby_in(Some(dir));
    let mut d = Drill {
        primary,
        standby,
        _repo_dir: repo_dir,
        repo,
        registry: tempfile::tempdir().unwrap(),
        batches: vec![],
        snaps: vec![],
        marks: vec![],
        extra: extra.iter().map(|s| s.to_string()).collect(),
    };
    d.batch(); // 1
    d.mark("gap1");
    d.snapshot("a");
    d.mark("after_a");
    d.batch(); // 2
    d.mark("gap2");
    d.batch(); // 3
               // A restartpoint on the standby: its pg_control then says it is consistent past batch 3,
               // so the immediate clone of b holds exactly batches 1-3.
    d.primary.execute("checkpoint");
    let lsn = d
        .primary
        .query_value("select pg_current_wal_lsn()")
        .unwrap();
    d.standby.wait_for(
        &format!("select pg_last_wal_replay_lsn() >= '{lsn}'"),
        Duration::from_secs(60),
    );
    d.standby.execute("checkpoint");
    d.snapshot("b");
    d.mark("after_b");
    d.batch(); // 4
    d.mark("gap4");
    d.batch(); // 5
    d.batch(); // 6: every target above has a later commit to stop at
    let seg = d
        .primary
        .query_value("select pg_walfile_name(pg_switch_wal())")
        .unwrap();
    d.primary.wait_for(
        &format!("select coalesce(last_archived_wal >= '{seg}', false) from pg_stat_archiver"),
        Duration::from_secs(120),
    );
    d
}

fn archive_files(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir(repo)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    v.sort();
    v
}

fn walkdir(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walkdir(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A setting of a running server: its value as current_setting() shows it, and its source
/// (pg_settings: "command line", "configuration file", "default", …).
fn shown(c: &mut postgres::Client, name: &str) -> (String, String) {
    let r = c
        .query_one(
            "select current_setting($1), source from pg_settings where name = $1",
            &[&name],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

/// shared_buffers of a running server, in bytes.
fn buffer_bytes(c: &mut postgres::Client) -> i64 {
    c.query_one(
        "select pg_size_bytes(current_setting('shared_buffers'))",
        &[],
    )
    .unwrap()
    .get(0)
}

/// Whether a configuration file sets `name` (a line that is not a comment).
fn file_sets(path: &Path, name: &str) -> bool {
    std::fs::read_to_string(path).unwrap().lines().any(|l| {
        let l = l.split('#').next().unwrap().trim();
        l.split(|c: char| c == '=' || c.is_whitespace()).next() == Some(name)
    })
}

/// Replay settings (issue 19) of a clone paused at its target: the server runs with what the
/// report lists, from its command line, with more shared_buffers than the snapshot's (the
/// standby's); neither postgresql.conf nor postgresql.auto.conf nor postmaster.opts has them,
/// so a `pg_ctl restart` brings the snapshot's own settings back (recovering to the same
/// target again).
fn replay_settings_of_a_paused_clone(d: &Drill, doc: &CloneReport) {
    let own: i64 = d
        .standby
        .query_value("select pg_size_bytes(current_setting('shared_buffers'))")
        .unwrap()
        .parse()
        .unwrap();
    let r = &doc.recovery.replay_settings;
    assert!(!doc.recovery.settings_handed_back, "{doc:?}");
    let sb = r.get("shared_buffers").expect("shared_buffers is raised");
    let kb: i64 = sb.strip_suffix("kB").unwrap().parse().unwrap();
    assert!(
        kb * 1024 > own,
        "{sb} is not above the snapshot's {own} bytes"
    );
    let mut c = client_of(doc);
    assert_eq!(buffer_bytes(&mut c), kb * 1024);
    assert_eq!(r.get("recovery_prefetch").map(String::as_str), Some("on"));
    for (name, value) in r {
        let (got, source) = shown(&mut c, name);
        assert_eq!(source, "command line", "{name}");
        if name != "shared_buffers" {
            assert_eq!(&got, value, "{name}");
        }
        for f in ["postgresql.conf", "postgresql.auto.conf"] {
            assert!(
                name == "shared_buffers" || !file_sets(&doc.path.join(f), name),
                "{f} sets {name}"
            );
        }
    }
    let auto = std::fs::read_to_string(doc.path.join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("shared_buffers"), "{auto}");
    let opts = std::fs::read_to_string(doc.path.join("postmaster.opts")).unwrap();
    assert!(!opts.contains("\"-c\""), "{opts}");
    drop(c);
    let out = d
        .standby
        .cmd("pg_ctl")
        .arg("-D")
        .arg(&doc.path)
        .arg("-l")
        .arg(&doc.log)
        .args(["-w", "-t", "120", "-m", "fast", "restart"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut c = client_of(doc);
    assert_eq!(buffer_bytes(&mut c), own);
    assert_ne!(shown(&mut c, "shared_buffers").1, "command line");
    let standby_prefetch = d
        .standby
        .query_value("select current_setting('recovery_prefetch')");
    assert_eq!(Some(shown(&mut c, "recovery_prefetch").0), standby_prefetch);
}

/// Clones to each target, checks the rows, destroys; then a promoted clone that must not
/// touch production.
fn seed_drill(d: &Drill) {
    let repo = d.repo.display().to_string();
    let cases: Vec<(&str, Vec<String>, Vec<i64>)> = vec![
        // Just after snapshot a, picked by --before.
        (
            "just-after-a",
            vec!["--before".into(), d.at("after_a")],
            d.expected(&d.at("after_a")),
        ),
        // Inside the gap between batches 2 and 3: still snapshot a.
        (
            "gap2",
            vec!["--before".into(), d.at("gap2")],
            d.expected(&d.at("gap2")),
        ),
        // Far after snapshot a, named explicitly.
        (
            "a-to-gap4",
            vec![
                "--snapshot".into(),
                d.name("a"),
                "--recovery-target-time".into(),
                d.at("gap4"),
            ],
            d.expected(&d.at("gap4")),
        ),
        // The same moment, from the newest snapshot before it (b).
        (
            "gap4",
            vec!["--before".into(), d.at("gap4")],
            d.expected(&d.at("gap4")),
        ),
        // Snapshot b's own moment.
        (
            "b-immediate",
            vec!["--snapshot".into(), d.name("b")],
            vec![1, 2, 3],
        ),
    ];
    let own_buffers: i64 = d
        .standby
        .query_value("select pg_size_bytes(current_setting('shared_buffers'))")
        .unwrap()
        .parse()
        .unwrap();
    for (name, sel, want) in cases {
        // One clone without replay settings: the snapshot's own throughout.
        let off = name == "gap2";
        let out = d
            .sc()
            .args(d.clone_args())
            .args(sel)
            .args(["--name", name, "--repo", &repo, "--start", "--wait", "120"])
            .args(if off {
                &["--replay-settings", "off"][..]
            } else {
                &[]
            })
            .run()
            .ok();
        let doc = out.document::<CloneReport>();
        assert_eq!(doc.clone, name);
        assert_eq!(doc.recovery.state, "paused", "{doc:?}");
        assert!(doc.recovery.reached_lsn.is_some(), "{doc:?}");
        if off {
            assert!(doc.recovery.replay_settings.is_empty(), "{doc:?}");
            assert!(doc.recovery.settings_handed_back);
            let mut c = client_of(&doc);
            assert_eq!(buffer_bytes(&mut c), own_buffers);
            assert_ne!(shown(&mut c, "shared_buffers").1, "command line");
            assert_ne!(shown(&mut c, "recovery_prefetch").1, "command line");
        }
        if name.starts_with("gap4") || name == "gap4" {
            assert_eq!(doc.snapshot, d.name("b"), "{doc:?}");
        }
        if name == "just-after-a" || name == "gap2" {
            assert_eq!(doc.snapshot, d.name("a"), "{doc:?}");
        }
        let (got, n) = rows(&doc);
        assert_eq!(got, want, "{name}: {doc:?}");
        assert_eq!(n, want.len() as i64 * ROWS, "{name}");
        if name == "a-to-gap4" {
            replay_settings_of_a_paused_clone(d, &doc);
        }
        let listed = d.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].clone, name);
        assert!(listed[0].running);
        let gone = d
            .sc()
            .args(["--destroy", name])
            .run()
            .ok()
            .document::<DestroyReport>();
        assert!(gone.stopped);
        assert!(!doc.path.exists());
    }
    d.assert_nothing_left(None);

    // A promoted clone writes on a new timeline: nothing reaches the archive, nothing
    // connects to the primary.
    let before = archive_files(&d.repo);
    let senders = || {
        d.primary
            .query_value("select count(*) from pg_stat_activity where backend_type = 'walsender'")
            .unwrap()
    };
    let senders_before = senders();
    let doc = d
        .sc()
        .args(d.clone_args())
        .args([
            "--before",
            &d.at("gap2"),
            "--name",
            "promoted",
            "--repo",
            &repo,
        ])
        .args(["--recovery-target-action", "promote", "--start"])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(doc.recovery.state, "promoted", "{doc:?}");
    let (got, _) = rows(&doc);
    assert_eq!(got, d.expected(&d.at("gap2")));
    // Recovered with more buffers, then restarted with the snapshot's own.
    assert!(
        doc.recovery.replay_settings.contains_key("shared_buffers"),
        "{doc:?}"
    );
    assert!(doc.recovery.settings_handed_back, "{doc:?}");
    let mut c = client_of(&doc);
    assert_eq!(buffer_bytes(&mut c), own_buffers);
    for name in doc.recovery.replay_settings.keys() {
        assert_ne!(shown(&mut c, name).1, "command line", "{name}");
    }
    drop(c);
    let conn = format!(
        "host={} port={} user=postgres dbname=postgres",
        doc.socket_dir.display(),
        doc.port
    );
    let mut c = postgres::Client::connect(&conn, postgres::NoTls).unwrap();
    c.batch_execute(
        "insert into t select 99, g from generate_series(1, 1000) g; checkpoint; \
         select pg_switch_wal(); insert into t values (99, 0); select pg_switch_wal();",
    )
    .unwrap();
    let tl: i32 = c
        .query_one("select timeline_id from pg_control_checkpoint()", &[])
        .unwrap()
        .get(0);
    assert!(tl >= 2);
    let conninfo: String = c
        .query_one("select current_setting('primary_conninfo')", &[])
        .unwrap()
        .get(0);
    assert_eq!(conninfo, "");
    std::thread::sleep(Duration::from_secs(2));
    let after = archive_files(&d.repo);
    let new: Vec<&String> = after.iter().filter(|f| !before.contains(f)).collect();
    assert!(
        new.iter()
            .all(|f| f.starts_with("00000001") && !f.contains(".history")),
        "the clone archived into production: {new:?}"
    );
    assert_eq!(
        senders(),
        senders_before,
        "the clone connected to the primary"
    );
    drop(c);
    d.sc().args(["--destroy", "promoted"]).run().ok();
    d.assert_nothing_left(None);
}

#[test]
fn zfs_seed_drill() {
    let pool = skip_unless!(ZfsPool::create("1G"));
    let mnt = pool.create_dataset("pg");
    let d = drill(&mnt.join("data"), &[]);
    seed_drill(&d);
    zfs_discovery(&d, &pool);
}

/// Without --pgdata the snapshots are found across the imported pools: one data directory's
/// snapshots serve --before and --snapshot; once a second data directory has snapshots,
/// --before is a usage error naming both, while a snapshot name still picks one. (--backend
/// zfs keeps the btrfs drill running beside this test out of the search.)
fn zfs_discovery(d: &Drill, pool: &ZfsPool) {
    let repo = d.repo.display().to_string();
    let found = d
        .sc()
        .args([
            "--backend",
            "zfs",
            "--before",
            &d.at("gap4"),
            "--name",
            "found",
        ])
        .args(["--repo", &repo, "--start", "--wait", "120"])
        .run();
    // Snapshots of other pools of this machine (other tests', other clusters) are of other
    // database systems than --repo's: they are not candidates, so they never make the choice
    // ambiguous (the new user's trial, F3).
    let doc = found.ok().document::<CloneReport>();
    assert_eq!(doc.snapshot, d.name("b"), "{doc:?}");
    assert_eq!(doc.recovery.state, "paused", "{doc:?}");
    assert_eq!(rows(&doc).0, d.expected(&d.at("gap4")), "{doc:?}");
    d.sc().args(["--destroy", "found"]).run().ok();

    let out = d
        .sc()
        .args(["--backend", "zfs", "--snapshot", "pgdr-20000101T000000Z"])
        .args(["--name", "nothing", "--repo", &repo])
        .run()
        .expect_error(1, T);
    assert!(
        out.stderr.contains("pgdr-20000101T000000Z"),
        "{}",
        out.stderr
    );

    let mnt = pool.create_dataset("other");
    let other = Cluster::builder().data_dir(mnt.join("data")).init_only();
    tool("snap-take")
        .arg("--pgdata")
        .arg(&other.data)
        .args(["--label", "other"])
        .run()
        .ok();
    let which = || {
        d.sc().args([
            "--backend",
            "zfs",
            "--before",
            &d.at("gap4"),
            "--name",
            "which",
        ])
    };
    let out = which().run().expect_error(2, T);
    for dir in [&d.standby.data, &other.data] {
        let dir = dir.canonicalize().unwrap().display().to_string();
        assert!(out.stderr.contains(&dir), "{dir}: {}", out.stderr);
    }
    assert!(out.stderr.contains("--pgdata"), "{}", out.stderr);
    // With --repo only the repository's database system's snapshots are candidates: the
    // other cluster's do not make the choice ambiguous (the new user's trial, F3).
    let doc = which()
        .args(["--repo", &repo])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(doc.snapshot, d.name("b"), "{doc:?}");
    d.sc().args(["--destroy", "which"]).run().ok();
    let doc = d
        .sc()
        .args([
            "--backend",
            "zfs",
            "--snapshot",
            &d.name("a"),
            "--name",
            "byname",
        ])
        .args(["--repo", &repo])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(doc.snapshot, d.name("a"), "{doc:?}");
    assert_eq!(doc.recovery.state, "configured", "{doc:?}");
    assert!(doc.path.join("recovery.signal").is_file());
    d.sc().args(["--destroy", "byname"]).run().ok();
    d.assert_nothing_left(None);
}

#[test]
fn btrfs_seed_drill() {
    let fs = skip_unless!(BtrfsMount::create("1G"));
    let sub = fs.subvolume("pg");
    let d = drill(&sub.join("data"), &[]);
    seed_drill(&d);
}

#[test]
fn copy_seed_drill_and_failures() {
    let dir = pgdr_testkit::short_tempdir("pgdr-cc-");
    let mut d = drill(&dir.path().join("data"), &["--backend", "copy"]);
    // The copy is in backup mode: the clone gets the backup label back.
    assert!(d.snap("a").backup.is_some());
    seed_drill(&d);
    failures(&mut d);
}

/// Each failure: one line, exit 1, no clone, no server.
fn failures(d: &mut Drill) {
    let repo = d.repo.display().to_string();
    // A target before the snapshot's consistent point: refused, naming the snapshot that
    // would serve it.
    let out = d
        .sc()
        .args(d.clone_args())
        .args([
            "--snapshot",
            &d.name("b"),
            "--recovery-target-time",
            &d.at("gap2"),
        ])
        .args(["--name", "early", "--repo", &repo, "--start"])
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("consistent point"), "{}", out.stderr);
    assert!(out.stderr.contains(&d.name("a")), "{}", out.stderr);
    // Before every snapshot: nothing can serve it.
    let out = d
        .sc()
        .args(d.clone_args())
        .args([
            "--before",
            &d.at("gap1"),
            "--name",
            "early",
            "--repo",
            &repo,
        ])
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("no snapshot"), "{}", out.stderr);
    d.assert_nothing_left(None);

    // Port taken.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let out = d
        .sc()
        .args(d.clone_args())
        .args(["--snapshot", &d.name("a"), "--name", "porty", "--port"])
        .arg(port.to_string())
        .args(["--repo", &repo, "--start"])
        .run()
        .expect_error(1, T);
    assert!(
        out.stderr.contains(&format!("port {port}")),
        "{}",
        out.stderr
    );
    drop(l);
    d.assert_nothing_left(None);

    if pgdr_core::owner::is_root() {
        encrypted_wal_with_an_identity_the_server_cannot_read(d);
    }
    killed_while_copying_and_a_place_already_taken(d);
    a_repository_of_another_cluster(d);

    // Missing WAL: a restore_command that finds nothing, and a target past the snapshot's
    // own WAL. PostgreSQL stops; the clone is rolled back, and the one line says where the
    // WAL it could get ends (SPEC --recovery-target latest: not the server's FATAL).
    let out = d
        .sc()
        .args(d.clone_args())
        .args([
            "--snapshot",
            &d.name("a"),
            "--recovery-target-time",
            &d.at("gap4"),
        ])
        .args(["--name", "nowal", "--restore-command", "false", "--start"])
        .run()
        .expect_error(1, T);
    assert!(
        out.stderr.contains("archived WAL ends at"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("recover"), "{}", out.stderr);
    assert!(!out.stderr.contains("server log:"), "{}", out.stderr);
    d.assert_nothing_left(None);
    latest(d);

    // The server fails to start: the snapshot's configuration has a setting PostgreSQL
    // rejects at startup.
    let conf = d.standby.data.join("postgresql.conf");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\npgdrbogussetting = 1\n")).unwrap();
    d.snapshot("broken");
    std::fs::write(&conf, good).unwrap();
    let out = d
        .sc()
        .args(d.clone_args())
        .args([
            "--snapshot",
            &d.name("broken"),
            "--name",
            "broken",
            "--repo",
            &repo,
        ])
        .args(["--start", "--wait", "60"])
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("pgdrbogussetting"), "{}", out.stderr);
    d.assert_nothing_left(None);

    // SIGTERM while recovery waits for the archive: the run stops its server and rolls back.
    let child = std::process::Command::new(pgdr_testkit::bin_dir().join(T))
        .env("PGDR_CLONE_DIR", d.registry.path())
        .args(d.clone_args())
        .args([
            "--snapshot",
            &d.name("a"),
            "--recovery-target-time",
            &d.at("gap4"),
        ])
        .args([
            "--name",
            "interrupted",
            "--restore-command",
            "sleep 30; false",
            "--start",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reg = d.registry.path().join("interrupted.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !reg.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("interrupted"), "{err}");
    d.assert_nothing_left(None);

    // --destroy refuses what snap-clone did not make; a held name lock is exit 75.
    d.sc()
        .args(["--destroy", "someone-elses"])
        .run()
        .expect_error(1, T);
    std::fs::create_dir_all(d.registry.path()).unwrap();
    let _held = d.registry().lock("locked", None).unwrap();
    d.sc()
        .args(d.clone_args())
        .args(["--snapshot", &d.name("a"), "--name", "locked"])
        .run()
        .expect_error(75, T);

    d.sc()
        .args(["-", "--name", "tiny", "--shared-buffers", "64kB"])
        .stdin(d.snap_text("b"))
        .run()
        .expect_error(2, T);
    // '-' takes snap-take's document only: another tool's is a usage error naming it.
    let out = d
        .sc()
        .args(["-", "--name", "foreign"])
        .stdin(r#"{"tool":"snap-prune","version":"0.1.0"}"#)
        .run()
        .expect_error(2, T);
    assert!(out.stderr.contains("snap-prune"), "{}", out.stderr);

    // '-' takes snap-take's document; without --start the clone is only configured.
    let doc = d.snap_text("b");
    let out = d
        .sc()
        .args([
            "-",
            "--name",
            "piped",
            "--repo",
            &repo,
            "--shared-buffers",
            "256MB",
        ])
        .stdin(doc)
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(out.recovery.state, "configured");
    assert_eq!(out.snapshot, d.name("b"));
    let path = out.path.clone();
    assert!(path.join("recovery.signal").is_file());
    assert!(!path.join("standby.signal").exists());
    assert!(path.join("backup_label").is_file());
    let auto = std::fs::read_to_string(path.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("archive_mode = 'off'"), "{auto}");
    assert!(auto.contains("primary_conninfo = ''"), "{auto}");
    assert!(auto.contains("shared_buffers = '262144kB'"), "{auto}");
    assert!(auto.contains(" --prefetch 4'"), "{auto}");
    // snap-prune sees the clone and keeps its snapshot.
    assert!(d.backend().has_clones(&d.registry(), &d.name("b")).unwrap());
    d.sc().args(["--destroy", "piped"]).run().ok();
    d.assert_nothing_left(None);
}

/// SPEC `--recovery-target latest`: everything the archive has, paused at its end (or
/// promoted); a target after the last archived WAL is one readable line naming where the
/// archive ends, and the clone is rolled back.
fn latest(d: &Drill) {
    let repo = d.repo.display().to_string();
    let every: Vec<i64> = (1..=d.batches.len() as i64).collect();
    for (name, action, state) in [
        ("all", "pause", "paused"),
        ("all-rw", "promote", "promoted"),
    ] {
        let doc = d
            .sc()
            .args(d.clone_args())
            .args(["--snapshot", &d.name("a"), "--recovery-target", "latest"])
            .args(["--recovery-target-action", action])
            .args(["--name", name, "--repo", &repo, "--start", "--wait", "120"])
            .run()
            .ok()
            .document::<CloneReport>();
        assert_eq!(doc.recovery.target, "latest");
        assert_eq!(doc.recovery.state, state, "{doc:?}");
        let (got, n) = rows(&doc);
        assert_eq!(got, every, "{name}: {doc:?}");
        assert_eq!(n, every.len() as i64 * ROWS);
        d.sc().args(["--destroy", name]).run().ok();
    }
    d.assert_nothing_left(None);
    // After the last archived WAL: the primary's clock now is after every archived commit.
    let after = d.now();
    let out = d
        .sc()
        .args(d.clone_args())
        .args(["--snapshot", &d.name("b"), "--recovery-target-time", &after])
        .args([
            "--name", "beyond", "--repo", &repo, "--start", "--wait", "120",
        ])
        .run()
        .expect_error(1, T);
    assert!(
        out.stderr.contains("archived WAL ends at"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("last transaction at"), "{}", out.stderr);
    assert!(
        out.stderr.len() < 400,
        "not one readable line: {}",
        out.stderr
    );
    d.assert_nothing_left(None);
}

/// Issue 13: snap-clone needs no psql (the bin directory of other majors has none) and, run
/// as root, watches its clone as the data directory's owner over the socket, so a clone whose
/// pg_hba.conf allows local connections only by peer authentication works. The bin
/// directory here holds only postgres and pg_ctl. (Before: "cannot run .../psql".)
#[test]
fn a_clone_needs_no_psql_and_peer_authentication_is_enough() {
    let c = Cluster::start();
    c.execute("create table t as select generate_series(1, 42) x; checkpoint");
    c.stop();
    std::fs::write(
        c.data.join("pg_hba.conf"),
        "local all all peer\nhost all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    let snap = tool("snap-take")
        .arg("-D")
        .arg(&c.data)
        .run()
        .ok()
        .document::<SnapshotMeta>();
    let bin = tempfile::tempdir().unwrap();
    let real = pgdr_core::pgbin::bindir(Some(snap.pg_version)).unwrap();
    for p in ["postgres", "pg_ctl"] {
        std::os::unix::fs::symlink(real.join(p), bin.path().join(p)).unwrap();
    }
    let reg = tempfile::tempdir().unwrap();
    let doc = tool(T)
        .env("PGDR_CLONE_DIR", reg.path())
        .env("PGDR_PG_BINDIR", bin.path())
        .arg("-D")
        .arg(&c.data)
        .args(["--snapshot", &snap.snapshot, "--name", "nopsql", "--start"])
        .args(["--wait", "120"])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(doc.recovery.state, "promoted", "{doc:?}");
    let mut client = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            doc.port
        ),
        postgres::NoTls,
    )
    .unwrap();
    let n: i64 = client
        .query_one("select count(*) from t", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 42);
    drop(client);
    tool(T)
        .env("PGDR_CLONE_DIR", reg.path())
        .env("PGDR_PG_BINDIR", bin.path())
        .args(["--destroy", "nopsql"])
        .run()
        .ok();
}

/// As root: the clone of a local snapshot runs as the data directory's owner (postgres), and
/// its restore_command decrypts the WAL of an encrypted --repo with $PGDR_IDENTITY. A file
/// root owns is refused before anything is cloned, not when recovery asks for its first
/// segment; the same file with a repository that is not encrypted is no reason to refuse.
fn encrypted_wal_with_an_identity_the_server_cannot_read(d: &mut Drill) {
    use std::os::unix::fs::PermissionsExt;
    let dir = pgdr_testkit::short_tempdir("pgdr-key-");
    let key = dir.path().join("root.key");
    let recipient = pgdr_testkit::age_keygen(&key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let enc = dir.path().join("enc");
    tool("wal-archive")
        .args(["init", "--encrypt-to", &recipient, "--pgdata"])
        .arg(&d.primary.data)
        .arg("--repo")
        .arg(&enc)
        .run()
        .ok();
    let out = d
        .sc()
        .env("PGDR_IDENTITY", &key)
        .args(d.clone_args())
        .args(["--snapshot", &d.name("a"), "--name", "sealed", "--repo"])
        .arg(&enc)
        .run()
        .expect_error(1, T);
    assert!(
        out.stderr
            .starts_with("snap-clone: the clone's server cannot read identity file"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("runs as postgres"), "{}", out.stderr);
    d.assert_nothing_left(None);
    // No identity at all, and the server's own file that others can read: refused as early.
    let shared = dir.path().join("shared.key");
    std::fs::copy(&key, &shared).unwrap();
    pgdr_testkit::chown_to_pg_user(&shared);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (identity, says) in [
        (None, "PGDR_IDENTITY names no identity file"),
        (Some(&shared), "group or others can read it"),
    ] {
        let mut c = d.sc();
        if let Some(f) = identity {
            c = c.env("PGDR_IDENTITY", f);
        }
        let out = c
            .args(d.clone_args())
            .args(["--snapshot", &d.name("a"), "--name", "sealed", "--repo"])
            .arg(&enc)
            .run()
            .expect_error(1, T);
        assert!(out.stderr.contains(says), "{}", out.stderr);
        d.assert_nothing_left(None);
    }
    // The server's own file (mode 600) holding a key that is no recipient of the repository,
    // an age key or an SSH key (which does not say its public key): refused before anything
    // is cloned, one line naming the file, not when recovery asks for its first segment.
    let stranger = dir.path().join("stranger.key");
    pgdr_testkit::age_keygen(&stranger);
    let ssh = dir.path().join("stranger_ssh");
    pgdr_testkit::run_ok(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&ssh),
    );
    for f in [&stranger, &ssh] {
        pgdr_testkit::chown_to_pg_user(f);
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = d
            .sc()
            .env("PGDR_IDENTITY", f)
            .args(d.clone_args())
            .args(["--snapshot", &d.name("a"), "--name", "sealed", "--repo"])
            .arg(&enc)
            .args(["--start", "--wait", "60"])
            .run()
            .expect_error(1, T);
        assert!(
            out.stderr.contains(&format!(
                "the identity in {} is not one of the repository's recipients",
                f.display()
            )),
            "{}",
            out.stderr
        );
        d.assert_nothing_left(None);
    }
    // The WAL of a repository that is not encrypted needs no identity: cloned (not started).
    let doc = d
        .sc()
        .env("PGDR_IDENTITY", &key)
        .args(d.clone_args())
        .args(["--snapshot", &d.name("a"), "--name", "plain", "--repo"])
        .arg(&d.repo)
        .run()
        .ok()
        .document::<CloneReport>();
    d.sc().args(["--destroy", &doc.clone]).run().ok();
    d.assert_nothing_left(None);
}

/// The copy backend's default place (STORE/clones/NAME): something already there is refused
/// and left exactly as it was (never merged into, never removed by the rollback); a run killed
/// with SIGKILL while copying leaves a clone that --list shows as creating and --destroy
/// removes.
fn killed_while_copying_and_a_place_already_taken(d: &mut Drill) {
    let parent = clone_parent(&d.backend());
    let taken = parent.join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("PG_VERSION"), "mine\n").unwrap();
    let out = d
        .sc()
        .args(d.clone_args())
        .args(["--snapshot", &d.name("a"), "--name", "taken"])
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("cannot clone into"), "{}", out.stderr);
    let left: Vec<_> = std::fs::read_dir(&taken).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        std::fs::read_to_string(taken.join("PG_VERSION")).unwrap(),
        "mine\n"
    );
    std::fs::remove_dir_all(&taken).unwrap();
    d.assert_nothing_left(None);

    let killed = parent.join("killed");
    let mut run = d
        .sc()
        .args(d.clone_args())
        .args(["--snapshot", &d.name("a"), "--name", "killed"])
        .into_command();
    pgdr_testkit::kill_9_when(&mut run, |_| killed.exists(), Duration::ZERO);
    let listed = d.list();
    let rec = listed
        .iter()
        .find(|c| c.clone == "killed")
        .unwrap_or_else(|| panic!("the killed run's clone is not listed: {listed:?}"));
    assert_eq!(rec.state, "creating", "{rec:?}");
    d.sc().args(["--destroy", "killed"]).run().ok();
    assert!(!killed.exists());
    d.assert_nothing_left(None);
}

/// --repo holding another database system's WAL: refused before anything is cloned, naming
/// both system identifiers (its WAL could never replay onto the snapshot).
fn a_repository_of_another_cluster(d: &mut Drill) {
    let other = Cluster::builder().init_only();
    let dir = pgdr_testkit::short_tempdir("pgdr-foreign-");
    let foreign = dir.path().join("repo");
    tool("wal-archive")
        .args(["init", "--pgdata"])
        .arg(&other.data)
        .arg("--repo")
        .arg(&foreign)
        .run()
        .ok();
    let out = d
        .sc()
        .args(d.clone_args())
        .args(["--snapshot", &d.name("a"), "--name", "foreign", "--repo"])
        .arg(&foreign)
        .run()
        .expect_error(1, T);
    assert!(
        out.stderr.contains("holds the WAL of database system"),
        "{}",
        out.stderr
    );
    d.assert_nothing_left(None);
}
