//! wal-archive's repository as a DBA meets it: `init`, and every other command refusing what
//! is not an initialised repository (a missing directory, an unmounted mount point, another
//! user's repository); first pushes that bind it at once; a repository of the format made
//! before init; snap-prune's real output driving `prune -`, dry runs included; and push
//! quiet in the log of the server that runs it.

mod wal_support;

use pgdr_testkit::{pg_user, short_tempdir, tool, Cluster};
use pgdr_wal::doc::{GetReport, InitReport, ListReport, PruneReport, PushReport};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use wal_support::{
    archiving_primary, bin, init, log_has_document, make_segments, switch_and_wait, timeline, wa, T,
};

fn assert_untouched(dir: &Path) {
    assert!(
        fs::read_dir(dir).unwrap().next().is_none(),
        "{} is no longer empty",
        dir.display()
    );
}

/// The refusal every command but get gives for a location that is not a repository.
fn refused_everywhere(repo: &Path, seg: &Path, dest: &Path) {
    for args in [
        vec!["push".into(), seg.display().to_string()],
        vec!["list".into()],
        vec!["verify".into()],
        vec!["prune".into(), "--keep-days".into(), "1".into()],
    ] {
        let out = wa(repo).args(&args).run().expect_error(1, T);
        assert!(
            out.stderr.contains("not an initialised"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("wal-archive init"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Under restore_command exit 1 would end recovery early: get stops it instead.
    let name = seg.file_name().unwrap().to_str().unwrap();
    let out = wa(repo)
        .arg("get")
        .arg(name)
        .arg(dest)
        .run()
        .expect_error(126, T);
    assert!(out.stderr.contains("not an initialised"), "{}", out.stderr);
    assert!(!dest.exists());
}

#[test]
fn init_and_what_is_not_a_repository() {
    let (segs, names) = make_segments(2);
    let seg = segs.path().join("pg_wal").join(&names[0]);
    let dir = short_tempdir("pgdr-wi");
    let dest = dir.path().join("RECOVERYXLOG");

    // A path that does not exist: refused, and nothing is created.
    let missing = dir.path().join("missing");
    refused_everywhere(&missing, &seg, &dest);
    assert!(!missing.exists());

    // An empty, unmounted mount point: refused, never filled; mounted and initialised, used;
    // unmounted again, refused again with the disk underneath still empty.
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    fs::set_permissions(&mnt, fs::Permissions::from_mode(0o700)).unwrap();
    refused_everywhere(&mnt, &seg, &dest);
    let out = wa(&mnt).arg("list").run().expect_error(1, T);
    assert!(
        out.stderr.contains("unmounted mount point"),
        "{}",
        out.stderr
    );
    assert_untouched(&mnt);
    if pgdr_testkit::is_root() {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs"])
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(st.success());
        let r = init(&mnt, None);
        assert!(r.created, "{r:?}");
        wa(&mnt).arg("push").arg(&seg).run().ok();
        let st = Command::new("umount").arg(&mnt).status().unwrap();
        assert!(st.success());
        refused_everywhere(&mnt, &seg, &dest);
        assert_untouched(&mnt);
    } else if pgdr_testkit::require_all() {
        panic!("mounting a tmpfs needs root (PGDR_REQUIRE_ALL=1)");
    }

    // A directory holding something else is neither a repository nor made one.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), "mine").unwrap();
    refused_everywhere(&other, &seg, &dest);
    let out = wa(&other).arg("init").run().expect_error(1, T);
    assert!(out.stderr.contains("notes.txt"), "{}", out.stderr);
    // init needs the parent to exist: a mistyped path is not made with its parents.
    wa(&dir.path().join("no/such"))
        .arg("init")
        .run()
        .expect_error(1, T);
    assert!(!dir.path().join("no").exists());

    // init: format page and settings; again: nothing changes; other settings: refused.
    let repo = dir.path().join("repo");
    let r: InitReport = wa(&repo)
        .args(["init", "--compress", "lz4"])
        .run()
        .ok()
        .document();
    assert!(r.created && r.system_identifier.is_none(), "{r:?}");
    assert_eq!(r.compression.as_str(), "lz4");
    assert!(repo.join("FORMAT.md").is_file());
    let settings = fs::read(repo.join("pgdr-wal-archive.json")).unwrap();
    let again: InitReport = wa(&repo)
        .args(["init", "--compress", "lz4"])
        .run()
        .ok()
        .document();
    assert!(!again.created);
    assert_eq!(
        fs::read(repo.join("pgdr-wal-archive.json")).unwrap(),
        settings
    );
    let out = wa(&repo)
        .args(["init", "--compress", "none"])
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("other settings"), "{}", out.stderr);
    // The repository's compression is push's default; the first push binds the cluster.
    let p: PushReport = wa(&repo).arg("push").arg(&seg).run().ok().document();
    assert_eq!(p.file.compression.as_str(), "lz4");
    let l: ListReport = wa(&repo).arg("list").run().ok().document();
    let sysid = l
        .system_identifier
        .clone()
        .expect("bound by the first push");
    assert!(repo.join("cluster.json").is_file());
    // init naming another cluster is refused now.
    let c = Cluster::builder().init_only();
    let out = wa(&repo)
        .arg("init")
        .arg("--pgdata")
        .arg(&c.data)
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains(&sysid), "{}", out.stderr);
    wa(&repo)
        .arg("init")
        .arg("--pgdata")
        .arg(&c.data)
        .arg("-d")
        .arg("x")
        .run()
        .expect_error(2, T);
}

#[test]
fn init_binds_to_the_cluster_named() {
    let c = Cluster::start();
    let want = c
        .query_value("select system_identifier::text from pg_control_system()")
        .unwrap();
    let dir = short_tempdir("pgdr-wn");
    // -d: asked from the server.
    let by_conn = dir.path().join("by-conn");
    let r: InitReport = wa(&by_conn)
        .arg("init")
        .arg("-d")
        .arg(c.conninfo())
        .run()
        .ok()
        .document();
    assert_eq!(r.system_identifier.as_deref(), Some(want.as_str()), "{r:?}");
    assert_eq!(r.wal_segment_size, Some(16 << 20));
    // --pgdata: read from pg_control; as root the repository is the data directory owner's.
    let by_dir = dir.path().join("by-dir");
    let r = init(&by_dir, Some(&c.data));
    assert_eq!(r.system_identifier.as_deref(), Some(want.as_str()), "{r:?}");
    assert_eq!(r.owner.as_deref(), Some(pg_user().name.as_str()), "{r:?}");
    // A segment of another cluster is refused by a repository bound at init.
    let (segs, names) = make_segments(1);
    let out = wa(&by_dir)
        .arg("push")
        .arg(segs.path().join("pg_wal").join(&names[0]))
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("database system"), "{}", out.stderr);
}

#[test]
fn another_users_repository_says_whose_it_is() {
    if !pgdr_testkit::is_root() {
        assert!(
            !pgdr_testkit::require_all(),
            "needs root (PGDR_REQUIRE_ALL=1)"
        );
        eprintln!("\n*** SKIPPED another_users_repository_says_whose_it_is: needs root ***\n");
        return;
    }
    let (segs, names) = make_segments(1);
    let seg = segs.path().join("pg_wal").join(&names[0]);
    let dir = short_tempdir("pgdr-wo");
    let repo = dir.path().join("repo");
    // root's repository, 0700: the postgres user can not even look inside.
    init(&repo, None);
    wa(&repo).arg("push").arg(&seg).run().ok();
    let user = pg_user();
    let out = pgdr_core::owner::command_as(&user, bin())
        .arg("push")
        .arg("--repo")
        .arg(&repo)
        .arg(&seg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("belongs to root"), "{stderr}");
    assert!(
        stderr.contains(&format!("runs as {}", user.name)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("chown -R {}:", user.name)),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot create"), "{stderr}");
    // PostgreSQL never runs as root: no hint that the server might.
    assert!(!stderr.contains("runs the server"), "{stderr}");
}

#[test]
fn first_pushes_at_once_agree_on_the_cluster() {
    let (a, a_names) = make_segments(3);
    let (b, b_names) = make_segments(3);
    let dir = short_tempdir("pgdr-wb");
    for round in 0..4 {
        let repo = dir.path().join(format!("repo{round}"));
        init(&repo, None);
        let kids: Vec<_> = (0..6)
            .map(|i| {
                let (d, names, is_a) = if i % 2 == 0 {
                    (&a, &a_names, true)
                } else {
                    (&b, &b_names, false)
                };
                let c = Command::new(bin())
                    .args(["push", "--repo"])
                    .arg(&repo)
                    .arg(d.path().join("pg_wal").join(&names[i / 2]))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (is_a, c)
            })
            .collect();
        let results: Vec<(bool, i32, String)> = kids
            .into_iter()
            .map(|(is_a, c)| {
                let o = c.wait_with_output().unwrap();
                (
                    is_a,
                    o.status.code().unwrap(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            })
            .collect();
        let l: ListReport = wa(&repo).arg("list").run().ok().document();
        // One cluster won: all of its pushes succeeded, all of the other's were refused.
        let winners: Vec<bool> = results.iter().filter(|r| r.1 == 0).map(|r| r.0).collect();
        assert_eq!(winners.len(), 3, "round {round}: {results:?}");
        let winner_a = winners[0];
        for (is_a, code, stderr) in &results {
            if *is_a == winner_a {
                assert_eq!(*code, 0, "round {round}: {stderr}");
            } else {
                assert_eq!(*code, 1, "round {round}: {stderr}");
                assert!(stderr.contains("database system"), "{stderr}");
            }
        }
        assert_eq!(l.files, 3, "round {round}: {l:?}");
    }
}

#[test]
fn a_repository_made_by_a_first_push_before_init_keeps_working() {
    let (segs, names) = make_segments(3);
    let wal = segs.path().join("pg_wal");
    let head = fs::read(wal.join(&names[0])).unwrap();
    let h = pgdr_pgformat::page_header::parse(&head).unwrap();
    // Exactly what the first push wrote before init existed (pgdr 0.1).
    let dir = short_tempdir("pgdr-wv");
    let repo = dir.path().join("repo");
    fs::create_dir(&repo).unwrap();
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(
        repo.join("pgdr-wal-archive.json"),
        format!(
            "{{\n  \"format\": \"pgdr-wal-archive\",\n  \"version\": 1,\n  \"system_identifier\": \"{}\",\n  \"wal_segment_size\": {},\n  \"created\": \"2026-03-21T17:28:37+08:00\"\n}}\n",
            h.system_identifier, h.seg_size
        ),
    )
    .unwrap();
    for n in &names {
        let p: PushReport = wa(&repo).arg("push").arg(wal.join(n)).run().ok().document();
        assert_eq!(p.file.compression.as_str(), "zstd");
    }
    let l: ListReport = wa(&repo).arg("list").run().ok().document();
    assert_eq!(l.system_identifier, Some(h.system_identifier.to_string()));
    assert_eq!(timeline(&l, 1).count, 3);
    assert!(!repo.join("cluster.json").exists());
    wa(&repo).arg("verify").run().ok();
    let dest = dir.path().join("out");
    wa(&repo).arg("get").arg(&names[1]).arg(&dest).run().ok();
    assert_eq!(
        fs::read(&dest).unwrap(),
        fs::read(wal.join(&names[1])).unwrap()
    );
    let p: PruneReport = wa(&repo)
        .args(["prune", "--before"])
        .arg(&names[1])
        .run()
        .ok()
        .document();
    assert_eq!(p.removed, [names[0].clone()]);
    // init on it agrees with it.
    let r = init(&repo, None);
    assert!(!r.created);
    assert_eq!(r.system_identifier, Some(h.system_identifier.to_string()));
}

/// snap-take's snapshot (copy backend, in backup mode) of a running primary.
fn snap_take(c: &Cluster) -> serde_json::Value {
    let doc = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--backend", "copy", "-d"])
        .arg(c.conninfo())
        .run()
        .ok()
        .json();
    // Snapshot names have a resolution of one second.
    std::thread::sleep(Duration::from_millis(1100));
    doc
}

/// `snap-prune … | wal-archive prune - --repo R` as a shell runs it.
fn pipeline(c: &Cluster, repo: &Path, snap_prune_args: &str) -> PruneReport {
    let bin_dir = pgdr_testkit::bin_dir();
    let script = format!(
        "set -o pipefail; {}/snap-prune --pgdata {} --backend copy {snap_prune_args} | {}/wal-archive prune - --repo {}",
        bin_dir.display(),
        c.data.display(),
        bin_dir.display(),
        repo.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = pgdr_testkit::ToolOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    out.ok().document()
}

#[test]
fn snap_prune_drives_prune_and_its_dry_run_removes_nothing() {
    let dir = short_tempdir("pgdr-wsp");
    let repo = dir.path().join("repo");
    let c = archiving_primary(&repo, "");
    c.execute("create table t as select generate_series(1, 1000) g");
    let mut snaps = Vec::new();
    for _ in 0..3 {
        for _ in 0..2 {
            c.execute("insert into t select generate_series(1, 1000)");
            switch_and_wait(&c);
        }
        snaps.push(snap_take(&c));
    }
    switch_and_wait(&c);
    let newest_start = snaps[2]["wal_start"].as_str().unwrap().to_string();
    let before: ListReport = wa(&repo).arg("list").run().ok().document();
    assert!(
        timeline(&before, 1).first.as_deref().unwrap() < newest_start.as_str(),
        "{before:?}"
    );

    // snap-prune --dry-run upstream: wal-archive prune - is a dry run too, and says why.
    let dry = pipeline(&c, &repo, "--keep-last 1 --dry-run");
    assert!(dry.dry_run, "{dry:?}");
    assert_eq!(dry.dry_run_from.as_deref(), Some("snap-prune"), "{dry:?}");
    assert_eq!(dry.bound.as_deref(), Some(newest_start.as_str()), "{dry:?}");
    assert!(!dry.removed.is_empty(), "{dry:?}");
    let after_dry: ListReport = wa(&repo).arg("list").run().ok().document();
    assert_eq!(after_dry, before, "the dry run removed something");

    // The real run removes exactly what the dry run announced: every segment before the
    // wal_start of the one snapshot kept, and nothing from it on.
    let real = pipeline(&c, &repo, "--keep-last 1");
    assert!(!real.dry_run && real.dry_run_from.is_none(), "{real:?}");
    assert_eq!(real.removed, dry.removed);
    assert!(
        real.removed
            .iter()
            .all(|n| n.as_str() < newest_start.as_str()),
        "{real:?}"
    );
    let after: ListReport = wa(&repo).arg("list").run().ok().document();
    assert_eq!(
        timeline(&after, 1).first.as_deref(),
        Some(newest_start.as_str()),
        "{after:?}"
    );
    assert_eq!(timeline(&after, 1).gaps.len(), 0);
    // Nothing left to remove: snap-prune keeps the same snapshot.
    let again = pipeline(&c, &repo, "--keep-last 1");
    assert!(again.removed.is_empty(), "{again:?}");
}

#[test]
fn quiet_in_the_server_log_a_document_by_hand() {
    let dir = short_tempdir("pgdr-wq");
    let repo = dir.path().join("repo");
    let c = archiving_primary(&repo, "");
    c.execute("create table t as select generate_series(1, 1000) g");
    let mut last = String::new();
    for _ in 0..4 {
        c.execute("insert into t select generate_series(1, 1000)");
        last = switch_and_wait(&c);
    }
    let archived: u64 = c
        .query_value("select archived_count from pg_stat_archiver")
        .unwrap()
        .parse()
        .unwrap();
    assert!(archived >= 4, "{archived}");
    let log = c.log_text();
    assert!(
        !log_has_document(&log),
        "push printed into the server log:\n{log}"
    );
    // By hand, the same command prints its document.
    let dest = dir.path().join("out");
    let g: GetReport = wa(&repo)
        .arg("get")
        .arg(&last)
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.name, last);
    // --json asks for it under the server too: then the log has it.
    c.execute(&format!(
        "alter system set archive_command = '{} push %p --repo {} --json'",
        bin().display(),
        repo.display()
    ));
    c.execute("select pg_reload_conf()");
    // The archiver reloads when it gets to it: segments until one is pushed with --json.
    let mut printed = false;
    for _ in 0..20 {
        c.execute("insert into t select generate_series(1, 1000)");
        switch_and_wait(&c);
        printed = log_has_document(&c.log_text());
        if printed {
            break;
        }
    }
    assert!(printed, "--json printed nothing:\n{}", c.log_text());
}
