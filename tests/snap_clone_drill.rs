//! snap-clone --drill (issue 17, SPEC "Operating it": restore drills) on real parts: a primary
//! archiving through wal-archive, a standby whose data directory is snapshotted by the copy
//! backend (and stored as an image in the repository), drills that pass, a drill of a
//! snapshot whose B-tree index was damaged on disk (found by pg_amcheck, and by the server's
//! amcheck functions when no pg_amcheck is beside the server binaries), the Prometheus output
//! of a failed drill read by strict parsers, and nothing of any clone left behind.

use pgdr_clone::doc::{CloneList, DrillReport};
use pgdr_pgformat::Lsn;
use pgdr_snap::SnapshotMeta;
use pgdr_testkit::{bin_dir, tool, Cluster, ToolCommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: &str = "snap-clone";

/// A primary archiving into a repository and a standby snapshotted with the copy backend.
struct Site {
    primary: Cluster,
    standby: Cluster,
    _dir: tempfile::TempDir,
    repo: String,
    registry: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = pgdr_testkit::short_tempdir("pgdr-dr-");
        let repo = dir.path().join("repo").display().to_string();
        let wa = bin_dir().join("wal-archive");
        let mut primary = Cluster::builder()
            .conf("archive_mode = on")
            .conf(format!(
                "archive_command = '{} push %p --repo {repo}'",
                wa.display()
            ))
            .init_only();
        tool("wal-archive")
            .args(["init", "--repo", &repo, "--pgdata"])
            .arg(&primary.data)
            .run()
            .ok();
        primary.start_server();
        // An indexed table of several leaf pages, written before any snapshot and never
        // again, so no WAL replayed by a clone rewrites its pages.
        primary.execute(
            "create table t (n int); \
             create table c (id int primary key, pad text); \
             insert into c select g, repeat('x', 20) from generate_series(1, 5000) g",
        );
        let standby = primary.standby_in(Some(&dir.path().join("data")));
        let s = Site {
            primary,
            standby,
            _dir: dir,
            repo,
            registry: tempfile::tempdir().unwrap(),
        };
        s.settle();
        s
    }

    /// A restartpoint on the standby after everything the primary wrote.
    fn settle(&self) {
        self.primary.execute("checkpoint");
        let lsn = self
            .primary
            .query_value("select pg_current_wal_lsn()")
            .unwrap();
        self.standby.wait_for(
            &format!("select pg_last_wal_replay_lsn() >= '{lsn}'"),
            Duration::from_secs(60),
        );
        self.standby.execute("checkpoint");
    }

    fn take(&self) -> ToolCommand {
        tool("snap-take")
            .arg("--pgdata")
            .arg(&self.standby.data)
            .args(["--backend", "copy", "-d", &self.standby.conninfo()])
    }

    /// Commits after the snapshot, archived; the WAL position just after the last commit.
    fn commits_archived(&self) -> Lsn {
        for b in 1..=3 {
            self.primary.execute(&format!("insert into t values ({b})"));
        }
        let lsn: Lsn = self
            .primary
            .query_value("select pg_current_wal_lsn()")
            .unwrap()
            .parse()
            .unwrap();
        let seg = self
            .primary
            .query_value("select pg_walfile_name(pg_switch_wal())")
            .unwrap();
        self.primary.wait_for(
            &format!("select coalesce(last_archived_wal >= '{seg}', false) from pg_stat_archiver"),
            Duration::from_secs(120),
        );
        lsn
    }

    fn sc(&self) -> ToolCommand {
        tool(T).env("PGDR_CLONE_DIR", self.registry.path())
    }

    /// A drill of the standby's newest snapshot, WAL from the repository.
    fn drill(&self) -> ToolCommand {
        self.sc()
            .args(["--drill", "--backend", "copy", "--pgdata"])
            .arg(&self.standby.data)
            .args(["--repo", &self.repo])
    }

    /// Nothing of any clone left: no record, no clone directory, no server.
    fn assert_nothing_left(&self, places: &[&Path]) {
        let clones = self
            .sc()
            .arg("--list")
            .run()
            .ok()
            .document::<CloneList>()
            .clones;
        assert!(clones.is_empty(), "{clones:?}");
        let data = self.standby.data.canonicalize().unwrap();
        let store =
            match pgdr_snap::Backend::detect(&data, Some(pgdr_snap::BackendKind::Copy), None)
                .unwrap()
            {
                pgdr_snap::Backend::Copy(c) => c.store.join("clones"),
                _ => unreachable!("copy backend"),
            };
        for p in places.iter().copied().chain([store.as_path()]) {
            let left: Vec<_> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().contains("drill"))
                .collect();
            assert!(left.is_empty(), "left in {}: {left:?}", p.display());
            assert!(
                !postgres_running_under(p),
                "a server runs under {}",
                p.display()
            );
        }
    }
}

/// Whether a postgres process has its working directory below `dir`.
fn postgres_running_under(dir: &Path) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(dir))
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
    })
}

/// A bin directory with the server binaries of `major` and no pg_amcheck: the drill then
/// uses the server's amcheck functions.
fn bindir_without_pg_amcheck(major: u32) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    let real = pgdr_core::pgbin::bindir(Some(major)).unwrap();
    for p in ["postgres", "pg_ctl"] {
        std::os::unix::fs::symlink(real.join(p), bin.path().join(p)).unwrap();
    }
    bin
}

/// Overwrites the keys of a leaf page (block 1) of the index `index` in the snapshot's copy.
fn damage_index(site: &Site, snap: &SnapshotMeta, index: &str) -> PathBuf {
    let rel = site
        .standby
        .query_value(&format!("select pg_relation_filepath('{index}')"))
        .unwrap();
    let file = Path::new(&snap.location).join(&snap.pgdata_rel).join(rel);
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() >= 3 * 8192, "{} is too small", file.display());
    // The tuples fill the page from the end, before the 16-byte special space.
    for b in &mut bytes[8192 + 4096..2 * 8192 - 16] {
        *b = 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();
    file
}

/// Parses the exposition strictly: every sample line understood, typed and documented, and
/// Python's prometheus_client (the official client's parser) reading the same samples.
fn parse_prometheus(text: &str) -> prometheus_parse::Scrape {
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert_eq!(scrape.samples.len(), sample_lines, "lines skipped:\n{text}");
    for s in &scrape.samples {
        assert!(
            scrape.docs.contains_key(&s.metric),
            "no HELP for {}",
            s.metric
        );
        assert!(
            matches!(s.value, prometheus_parse::Value::Gauge(v) if v.is_finite()),
            "{}: {:?}",
            s.metric,
            s.value
        );
    }
    let n = pgdr_testkit::prometheus_client_samples(text)
        .unwrap_or_else(|u| panic!("{u}: the drill's metrics must be read by it"));
    assert_eq!(n, sample_lines, "prometheus_client read another count");
    scrape
}

fn gauge(scrape: &prometheus_parse::Scrape, name: &str) -> (f64, String) {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .unwrap_or_else(|| panic!("no {name}"));
    let v = match s.value {
        prometheus_parse::Value::Gauge(v) => v,
        _ => unreachable!("checked by parse_prometheus"),
    };
    (v, s.labels.get("source").unwrap_or_default().to_string())
}

/// A good snapshot with WAL passes and leaves nothing; the same snapshot with a damaged
/// index page fails (exit 1), names the index, leaves nothing, with pg_amcheck and with the
/// server's functions; its Prometheus output says success 0 and exits 0.
#[test]
fn drills_of_a_good_and_a_damaged_snapshot() {
    let site = Site::new();
    let snap = site.take().run().ok().document::<SnapshotMeta>();
    let last_commit = site.commits_archived();

    let out = site.drill().run().ok();
    let doc = out.document::<DrillReport>();
    assert!(doc.success, "{doc:?}");
    assert_eq!(doc.source, "pgdata");
    assert_eq!(doc.snapshot.as_deref(), Some(snap.snapshot.as_str()));
    assert_eq!(doc.amcheck, "pg_amcheck", "{doc:?}");
    assert!(doc.corruption.is_empty(), "{doc:?}");
    assert!(doc.error.is_none() && doc.cleaned_up, "{doc:?}");
    let rec = doc.recovery.as_ref().expect("recovered");
    assert_eq!(rec.target, "latest");
    let reached = rec.reached_lsn.expect("an LSN reached");
    assert!(reached >= last_commit, "{reached} < {last_commit}");
    assert!(rec.reached_time.is_some(), "{doc:?}");
    // Recovered with replay settings, kept through the check: the clone is destroyed next,
    // so no restart hands them back.
    assert_eq!(
        rec.replay_settings
            .get("recovery_prefetch")
            .map(String::as_str),
        Some("on"),
        "{doc:?}"
    );
    assert!(!rec.settings_handed_back, "{doc:?}");
    assert!(doc.seconds > 0.0);
    site.assert_nothing_left(&[]);

    let file = damage_index(&site, &snap, "c_pkey");
    let out = site.drill().run().expect_code(1);
    let bad = out.document::<DrillReport>();
    assert!(!bad.success, "{bad:?}");
    assert_eq!(bad.amcheck, "pg_amcheck", "{bad:?}");
    assert!(bad.error.is_none(), "recovery itself worked: {bad:?}");
    assert!(
        bad.corruption.iter().any(|c| c.relation.contains("c_pkey")),
        "{bad:?}"
    );
    assert!(bad.cleaned_up, "{bad:?}");
    site.assert_nothing_left(&[]);

    // Without pg_amcheck beside the server binaries: the server's functions find it too.
    let bin = bindir_without_pg_amcheck(snap.pg_version);
    let out = site
        .drill()
        .env("PGDR_PG_BINDIR", bin.path())
        .run()
        .expect_code(1);
    let f = out.document::<DrillReport>();
    assert_eq!(f.amcheck, "functions", "{f:?}");
    let hit = f
        .corruption
        .iter()
        .find(|c| c.relation.contains("c_pkey"))
        .unwrap_or_else(|| panic!("{f:?}"));
    assert!(
        hit.relation
            .starts_with("btree index \"postgres.public.c_pkey\""),
        "{hit:?}"
    );
    assert!(!hit.message.is_empty());
    assert!(f.cleaned_up && f.error.is_none(), "{f:?}");
    site.assert_nothing_left(&[]);

    // The textfile pipeline publishes the failure: exit 0, success 0.
    let out = site.drill().args(["--format", "prometheus"]).run().ok();
    let scrape = parse_prometheus(&out.stdout);
    let (success, source) = gauge(&scrape, "pgdr_last_restore_drill_success");
    assert_eq!(success, 0.0, "{}", out.stdout);
    assert_eq!(source, "pgdata");
    let (secs, _) = gauge(&scrape, "pgdr_last_restore_drill_seconds");
    assert!(secs > 0.0);
    let (when, _) = gauge(&scrape, "pgdr_last_restore_drill_timestamp_seconds");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(when <= now + 1.0 && when > now - 3600.0, "{when} vs {now}");
    site.assert_nothing_left(&[]);
    assert!(file.exists(), "the snapshot itself is kept");
}

/// A drill of the newest image of a repository, restored into a temporary directory that is
/// removed again; a drill with nothing to clone fails as a report (exit 1), and its metrics
/// are written (exit 0).
#[test]
fn drill_of_an_image_from_a_repository() {
    let site = Site::new();
    site.take().args(["--to", &site.repo]).run().ok();
    let last_commit = site.commits_archived();
    let tmp = pgdr_testkit::short_tempdir("pgdr-dt-");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = site
        .sc()
        .args(["--drill", "--repo", &site.repo])
        .env("TMPDIR", tmp.path())
        .run()
        .ok();
    let doc = out.document::<DrillReport>();
    assert!(doc.success, "{doc:?}");
    assert_eq!(doc.source, "repo");
    assert_eq!(doc.location, site.repo);
    assert_eq!(doc.amcheck, "pg_amcheck");
    let reached = doc.recovery.as_ref().unwrap().reached_lsn.unwrap();
    assert!(reached >= last_commit, "{reached} < {last_commit}");
    site.assert_nothing_left(&[tmp.path()]);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    // An empty repository: nothing to drill, a failed drill (not a usage error).
    let empty = tmp.path().join("empty");
    tool("wal-archive")
        .args(["init", "--repo"])
        .arg(&empty)
        .run()
        .ok();
    let out = site
        .sc()
        .args(["--drill", "--repo"])
        .arg(&empty)
        .env("TMPDIR", tmp.path())
        .run()
        .expect_code(1);
    let none = out.document::<DrillReport>();
    assert!(!none.success && none.snapshot.is_none(), "{none:?}");
    assert_eq!(none.amcheck, "not_run");
    assert!(
        none.error.as_deref().unwrap_or("").contains("no image"),
        "{none:?}"
    );
    let out = site
        .sc()
        .args(["--drill", "--format", "prometheus", "--repo"])
        .arg(&empty)
        .env("TMPDIR", tmp.path())
        .run()
        .ok();
    let scrape = parse_prometheus(&out.stdout);
    assert_eq!(
        gauge(&scrape, "pgdr_last_restore_drill_success"),
        (0.0, "repo".into())
    );
    // SIGTERM while the clone is being made or checked: a report, exit 1, nothing left.
    let child = std::process::Command::new(bin_dir().join(T))
        .args(["--drill", "--repo", &site.repo])
        .env("PGDR_CLONE_DIR", site.registry.path())
        .env("TMPDIR", tmp.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::fs::read_dir(site.registry.path())
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().ends_with(".json"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no clone recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let killed: DrillReport = pgdr_core::doc::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(!killed.success && killed.cleaned_up, "{killed:?}");
    assert!(
        killed
            .error
            .as_deref()
            .unwrap_or("")
            .contains("interrupted"),
        "{killed:?}"
    );
    site.assert_nothing_left(&[tmp.path()]);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "only the empty repository"
    );

    // Usage errors stay usage errors: nothing written.
    let out = site
        .sc()
        .args(["--format", "prometheus", "--list"])
        .run()
        .expect_code(2);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// PostgreSQL 13 (an installed major without pg_amcheck): the drill checks with the server's
/// functions (bt_index_check only: verify_heapam is 14+); a server whose contrib has no
/// amcheck gives "unavailable" and the drill passes on recovery alone.
#[test]
fn drill_on_13_with_the_functions_or_no_amcheck() {
    let c = pgdr_testkit::skip_unless!(Cluster::with_major(13)).start();
    c.execute(
        "create table c (id int primary key, pad text); \
         insert into c select g, 'x' from generate_series(1, 1000) g; checkpoint",
    );
    c.stop();
    let snap = tool("snap-take")
        .arg("-D")
        .arg(&c.data)
        .args(["--backend", "copy"])
        .run()
        .ok()
        .document::<SnapshotMeta>();
    assert_eq!(snap.pg_version, 13);
    let reg = tempfile::tempdir().unwrap();
    let drill = || {
        tool(T)
            .env("PGDR_CLONE_DIR", reg.path())
            .args([
                "--drill",
                "--backend",
                "copy",
                "--recovery-target",
                "immediate",
            ])
            .arg("-D")
            .arg(&c.data)
    };
    let doc = drill().run().ok().document::<DrillReport>();
    assert!(doc.success && doc.cleaned_up, "{doc:?}");
    assert_eq!(doc.amcheck, "functions", "{doc:?}");
    assert!(doc.amcheck_program.is_none());

    // The same server binaries without amcheck in their contrib.
    let copy = tempfile::tempdir().unwrap();
    let real = pgdr_testkit::majors::server_bindir(13).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(real.parent().unwrap())
        .arg(copy.path().join("13"))
        .status()
        .unwrap();
    assert!(status.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(copy.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ext = find_file(&copy.path().join("13"), "amcheck.control");
    std::fs::remove_file(&ext).unwrap();
    let doc = drill()
        .env("PGDR_PG_BINDIR", copy.path().join("13/bin"))
        .run()
        .ok()
        .document::<DrillReport>();
    assert!(doc.success && doc.cleaned_up, "{doc:?}");
    assert_eq!(doc.amcheck, "unavailable", "{doc:?}");
    assert!(doc.recovery.is_some());
    let left = tool(T)
        .env("PGDR_CLONE_DIR", reg.path())
        .arg("--list")
        .run()
        .ok()
        .document::<CloneList>()
        .clones;
    assert!(left.is_empty(), "{left:?}");
}

/// The one file called `name` below `dir`.
fn find_file(dir: &Path, name: &str) -> PathBuf {
    let mut found = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                todo.push(p);
            } else if e.file_name() == name {
                found.push(p);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}
