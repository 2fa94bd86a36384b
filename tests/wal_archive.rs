//! wal-archive against real PostgreSQL 15: archiving under load, point-in-time recovery through
//! restore_command, a promoted standby's timeline, and the faults the contract is about.
//!
//! Past 600 lines: one test per behaviour, each with its own real servers; shared helpers are
//! in tests/wal_support.

mod wal_support;

use pgdr_testkit::{chown_to_pg_user, short_tempdir, tool, Cluster};
use pgdr_wal::doc::{GetReport, ListReport, PruneReport, PushReport, VerifyReport};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wal_support::{
    archiving_primary, bin, cluster_from, init, log_has_document, make_segments, mark_ready,
    paused_at_the_restore_point, sha, switch_and_wait, timeline, wa, wait_archived, T,
};

fn pgbench(c: &Cluster, args: &[&str]) {
    let out = c
        .cmd("pgbench")
        .args([
            "-h",
            c.sockdir.to_str().unwrap(),
            "-p",
            &c.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(args)
        .arg("postgres")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn archive_under_load_pitr_and_promoted_standby() {
    let dir = short_tempdir("pgdr-wa");
    let repo = dir.path().join("repo");
    let primary = archiving_primary(&repo, "");
    primary.execute("create table t (id int primary key, note text)");
    // A base backup whose WAL comes only from the archive.
    let backup = dir.path().join("base");
    pgdr_testkit::run_ok(
        primary
            .cmd("pg_basebackup")
            .arg("-D")
            .arg(&backup)
            .args(["-X", "none", "-c", "fast", "-d"])
            .arg(primary.conninfo()),
    );
    pgbench(&primary, &["-i", "-s", "2", "-q"]);
    pgbench(&primary, &["-c", "2", "-t", "300", "-n"]);
    primary.execute("insert into t select g, 'before' from generate_series(1, 100) g");
    primary.execute("select pg_create_restore_point('drill')");
    primary.execute("insert into t select g, 'after' from generate_series(101, 200) g");
    let last = switch_and_wait(&primary);

    // Every segment from the first to the last switched one is in the archive, intact.
    let l: ListReport = wa(&repo).arg("list").run().ok().document();
    let t1 = timeline(&l, 1);
    assert_eq!(
        t1.first.as_deref(),
        Some("000000010000000000000001"),
        "{l:?}"
    );
    assert_eq!(t1.last.as_deref(), Some(last.as_str()), "{l:?}");
    assert_eq!(t1.gaps.len(), 0, "{l:?}");
    let count = t1.count;
    assert_eq!(
        count,
        u64::from_str_radix(&last[16..], 16).unwrap(),
        "{l:?}"
    );
    assert!(!t1.backup.is_empty(), "the .backup file: {l:?}");
    assert!(l.stored_bytes < l.bytes / 2, "{l:?}");
    let ready = fs::read_dir(primary.data.join("pg_wal/archive_status"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".ready")
        })
        .count();
    assert_eq!(ready, 0);
    let v: VerifyReport = wa(&repo).arg("verify").run().ok().document();
    assert!(v.ok, "{v:?}");
    // Private repository.
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&repo), 0o700);
    assert_eq!(mode(&repo.join("wal/00000001")), 0o700);
    assert_eq!(mode(&repo.join("wal/00000001").join(&last)), 0o600);

    // Point-in-time recovery from the base backup through restore_command.
    let mut restored = cluster_from(
        &backup,
        &primary,
        &format!(
            "archive_mode = off\nrestore_command = '{} get %f %p --prefetch 4 --repo {}'\n\
             recovery_target_name = 'drill'\nrecovery_target_timeline = '1'\n\
             recovery_target_action = 'pause'",
            bin().display(),
            repo.display()
        ),
    );
    fs::write(restored.data.join("recovery.signal"), "").unwrap();
    chown_to_pg_user(&restored.data.join("recovery.signal"));
    restored.start_server();
    paused_at_the_restore_point(&restored, Duration::from_secs(120));
    assert!(
        !restored.data.join("pgdr_wal_prefetch").exists()
            || restored.data.join("pgdr_wal_prefetch").is_dir()
    );
    // Run by the server, get printed nothing into its log; archive_command's push neither.
    assert!(
        !log_has_document(&restored.log_text()),
        "{}",
        restored.log_text()
    );
    assert!(
        !log_has_document(&primary.log_text()),
        "{}",
        primary.log_text()
    );
    drop(restored);

    // A streaming standby, promoted: timeline 2 archived into the same repository.
    let standby = primary.standby();
    primary.execute("insert into t values (1000, 'streamed')");
    standby.wait_for(
        "select count(*) = 1 from t where id = 1000",
        Duration::from_secs(60),
    );
    primary.stop();
    standby.execute("select pg_promote()");
    standby.wait_for("select not pg_is_in_recovery()", Duration::from_secs(60));
    standby.execute("insert into t values (2000, 'timeline 2')");
    let last2 = switch_and_wait(&standby);
    assert!(last2.starts_with("00000002"), "{last2}");
    // The history file is archived before any segment of its timeline.
    wait_archived(&standby, &last2);
    let l: ListReport = wa(&repo).arg("--pretty").arg("list").run().ok().document();
    assert_eq!(l.history, ["00000002.history"], "{l:?}");
    let t2 = timeline(&l, 2);
    assert_eq!(t2.parent, Some(1), "{l:?}");
    assert_eq!(t2.last.as_deref(), Some(last2.as_str()), "{l:?}");
    assert_eq!(t2.gaps.len(), 0, "{l:?}");
    let v: VerifyReport = wa(&repo).arg("verify").run().ok().document();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.timelines.len(), 2, "{v:?}");

    // Removing a segment of timeline 1 below the switch point is a gap verify reports.
    let second = format!("{}2", &t1.first.as_deref().unwrap()[..23]);
    fs::rename(
        repo.join("wal/00000001").join(&second),
        dir.path().join("aside"),
    )
    .unwrap();
    let v: VerifyReport = wa(&repo).arg("verify").run().expect_code(1).document();
    assert!(
        v.problems
            .iter()
            .any(|p| p.timeline == Some(1) && p.problem.contains("missing 1 segment")),
        "{v:?}"
    );
    fs::rename(
        dir.path().join("aside"),
        repo.join("wal/00000001").join(&second),
    )
    .unwrap();

    // prune: never .history; --dry-run changes nothing; then really.
    // (snap-prune's real document as the bound: tests/wal_archive_repository.rs.)
    let p: PruneReport = wa(&repo)
        .args(["prune", "--dry-run", "--before"])
        .arg(&last)
        .run()
        .ok()
        .document();
    assert!(p.removed_count >= count - 1, "{p:?}");
    assert_eq!(p.dry_run_from.as_deref(), Some("--dry-run"));
    let after: ListReport = wa(&repo).arg("list").run().ok().document();
    assert_eq!(after.files, l.files);
    let p2: PruneReport = wa(&repo)
        .args(["prune", "--before"])
        .arg(&last)
        .run()
        .ok()
        .document();
    assert_eq!(p2.removed, p.removed, "{p2:?}");
    assert!(!p2.dry_run);
    let l: ListReport = wa(&repo).arg("list").run().ok().document();
    assert_eq!(
        timeline(&l, 1).first.as_deref(),
        Some(last.as_str()),
        "{l:?}"
    );
    assert_eq!(l.history, ["00000002.history"]);
}

#[test]
fn faults_duplicates_damage_and_foreign_wal() {
    let (segs, names) = make_segments(2);
    let (other, other_names) = make_segments(1);
    let wal = segs.path().join("pg_wal");
    let dir = short_tempdir("pgdr-wf");
    let repo = dir.path().join("repo");
    let seg = wal.join(&names[0]);

    // The first push into a repository made without a cluster binds it; a repeat is
    // "already archived".
    assert!(init(&repo, None).system_identifier.is_none());
    let r: PushReport = wa(&repo).arg("push").arg(&seg).run().ok().document();
    assert!(!r.file.already_archived, "{r:?}");
    assert_eq!(r.file.sha256, sha(&seg));
    let r: PushReport = wa(&repo).arg("push").arg(&seg).run().ok().document();
    assert!(r.file.already_archived, "{r:?}");
    let stored = repo.join("wal/00000001").join(&names[0]);
    let stored_bytes = fs::read(&stored).unwrap();

    // A tampered segment under the archived name: refused, both checksums named, original kept.
    let tdir = dir.path().join("tampered/pg_wal");
    fs::create_dir_all(&tdir).unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[100_000] ^= 0xFF;
    fs::write(tdir.join(&names[0]), &bytes).unwrap();
    let out = wa(&repo)
        .arg("push")
        .arg(tdir.join(&names[0]))
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains(&sha(&seg)), "{}", out.stderr);
    assert!(
        out.stderr.contains(&sha(&tdir.join(&names[0]))),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read(&stored).unwrap(), stored_bytes);

    // A header that disagrees with the name, and a foreign cluster's segment.
    let wrong = tdir.join(&names[1]);
    fs::copy(&seg, &wrong).unwrap();
    let out = wa(&repo).arg("push").arg(&wrong).run().expect_error(1, T);
    assert!(out.stderr.contains("page address"), "{}", out.stderr);
    let foreign = other.path().join("pg_wal").join(&other_names[0]);
    let out = wa(&repo).arg("push").arg(&foreign).run().expect_error(1, T);
    assert!(out.stderr.contains("database system"), "{}", out.stderr);
    assert_eq!(fs::read(&stored).unwrap(), stored_bytes);

    // get: round trip, missing name, damaged copy.
    let dest = dir.path().join("RECOVERYXLOG");
    let g: GetReport = wa(&repo)
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.sha256, sha(&seg));
    assert_eq!(fs::read(&dest).unwrap(), fs::read(&seg).unwrap());
    fs::remove_file(&dest).unwrap();
    wa(&repo)
        .arg("get")
        .arg("00000009.history")
        .arg(&dest)
        .run()
        .expect_error(1, T);
    assert!(!dest.exists());
    // A variable set but empty counts as unset (the manual's rule): an unencrypted repository
    // needs no identity, so get with PGDR_IDENTITY= succeeds.
    let g: GetReport = wa(&repo)
        .env("PGDR_IDENTITY", "")
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.sha256, sha(&seg));
    fs::remove_file(&dest).unwrap();
    // A wrong restore_command stops recovery (126): exit 2 would read as "not archived" and
    // end it early. No repository at all (WAL_ARCHIVE_REPO= is unset, and no --repo), an
    // unknown option, a name that is no WAL file name; other commands keep exit 2.
    for (env, args) in [
        (Some(("WAL_ARCHIVE_REPO", "")), vec![names[0].as_str()]),
        (None, vec!["--prefetc", "2", names[0].as_str()]),
        (None, vec!["%f"]),
    ] {
        let mut c = tool(T).arg("get").args(&args).arg(&dest);
        if env.is_none() {
            c = c.arg("--repo").arg(&repo);
        }
        if let Some((k, v)) = env {
            c = c.env(k, v);
        }
        c.run().expect_error(126, T);
        assert!(!dest.exists());
    }
    empty_variables_yield_to_flags(dir.path(), &seg);
    tool(T)
        .args(["list", "--prefetc", "2", "--repo"])
        .arg(&repo)
        .run()
        .expect_error(2, T);
    let mut bad = stored_bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    fs::write(&stored, &bad).unwrap();
    wa(&repo)
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(!dest.exists());
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pgdr-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let v: VerifyReport = wa(&repo).arg("verify").run().expect_code(1).document();
    assert!(
        v.problems
            .iter()
            .any(|p| p.name.as_ref() == Some(&names[0])),
        "{v:?}"
    );
    // Pushing the same content on top of a damaged copy is refused, not "already archived".
    wa(&repo).arg("push").arg(&seg).run().expect_error(1, T);
    fs::write(&stored, &bad[..1000]).unwrap();
    wa(&repo)
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(!dest.exists());
    fs::write(&stored, &stored_bytes).unwrap();

    // Unreadable repository → get is fatal; a repository writable by others is refused.
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o777)).unwrap();
    let out = wa(&repo)
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(
        out.stderr.contains("writable by other users"),
        "{}",
        out.stderr
    );
    wa(&repo).arg("push").arg(&seg).run().expect_error(1, T);
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o700)).unwrap();
    // A newer format is refused on open.
    let meta = repo.join("pgdr-wal-archive.json");
    let good = fs::read_to_string(&meta).unwrap();
    fs::write(&meta, good.replace("\"version\": 1", "\"version\": 2")).unwrap();
    let out = wa(&repo).arg("list").run().expect_error(1, T);
    assert!(out.stderr.contains("version 2"), "{}", out.stderr);
    fs::write(&meta, good).unwrap();

    // lz4 and none round-trip too.
    for c in ["lz4", "none"] {
        let r2 = dir.path().join(format!("repo-{c}"));
        init(&r2, None);
        let p: PushReport = wa(&r2)
            .args(["push", "--compress", c])
            .arg(&seg)
            .run()
            .ok()
            .document();
        assert_eq!(p.file.compression.as_str(), c);
        let d = dir.path().join(format!("out-{c}"));
        wa(&r2).arg("get").arg(&names[0]).arg(&d).run().ok();
        assert_eq!(sha(&d), sha(&seg));
    }
    wa(&repo)
        .args(["push", "--compress", "lz4", "--level", "3"])
        .arg(&seg)
        .run()
        .expect_error(2, T);

    // stdin is a pipe that never closes: push still finishes.
    let mut child = Command::new(bin())
        .args(["push", "--repo"])
        .arg(&repo)
        .arg(wal.join(&names[1]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep_open = child.stdin.take();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "push waited on stdin");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

/// Runs `c` and kills it with SIGKILL after 1 ms + `step` × 2.5 ms: step by step, a loop
/// hits every phase of a run.
/// An empty PGDR_IDENTITY or WAL_ARCHIVE_REPO neither overrides --identity or --repo (given
/// before or after the subcommand) nor stands for a value; checked on an encrypted repository,
/// where the identity matters.
fn empty_variables_yield_to_flags(dir: &Path, seg: &Path) {
    let repo = dir.join("enc");
    let key = dir.join("enc.key");
    let recipient = pgdr_testkit::age_keygen(&key);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    wa(&repo)
        .args(["init", "--encrypt-to", &recipient])
        .run()
        .ok();
    let name = seg.file_name().unwrap().to_str().unwrap();
    let dest = dir.join("ENCXLOG");
    let empty = || tool(T).env("PGDR_IDENTITY", "").env("WAL_ARCHIVE_REPO", "");
    let flags =
        |c: pgdr_testkit::ToolCommand| c.arg("--repo").arg(&repo).arg("--identity").arg(&key);
    let r: PushReport = flags(empty()).arg("push").arg(seg).run().ok().document();
    assert!(!r.file.already_archived, "{r:?}");
    // A repeat needs the identity to compare the stored copy: it is "already archived".
    let r: PushReport = empty()
        .arg("push")
        .arg(seg)
        .arg("--identity")
        .arg(&key)
        .arg("--repo")
        .arg(&repo)
        .run()
        .ok()
        .document();
    assert!(r.file.already_archived, "{r:?}");
    let l: ListReport = flags(empty()).arg("list").run().ok().document();
    assert_eq!(timeline(&l, 1).last.as_deref(), Some(name), "{l:?}");
    let g: GetReport = flags(empty())
        .arg("get")
        .arg(name)
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.sha256, sha(seg));
    fs::remove_file(&dest).unwrap();
    let g: GetReport = empty()
        .arg("get")
        .arg(name)
        .arg(&dest)
        .arg("--repo")
        .arg(&repo)
        .arg("--identity")
        .arg(&key)
        .run()
        .ok()
        .document();
    assert_eq!(g.sha256, sha(seg));
    fs::remove_file(&dest).unwrap();
    // Without --identity the empty variable is no identity: as when unset, get cannot decrypt
    // and stops recovery (126).
    let out = empty()
        .arg("--repo")
        .arg(&repo)
        .arg("get")
        .arg(name)
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(out.stderr.contains("no identity"), "{}", out.stderr);
    assert!(!dest.exists());
}

fn kill_9_after(c: &mut Command, step: u64) {
    pgdr_testkit::kill_9_when(c, |_| true, Duration::from_micros(1000 + step * 2500));
}

/// The names under `dir`, at any depth, of temporary files (`.NAME.pgdr-tmp.PID.N`).
fn temp_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            found.extend(temp_files(&e.path()));
        } else if name.contains(".pgdr-tmp.") {
            found.push(name);
        }
    }
    found
}

#[test]
fn concurrent_pushes_and_kill_9_never_tear_a_file() {
    let (segs, names) = make_segments(1);
    let seg = segs.path().join("pg_wal").join(&names[0]);
    let dir = short_tempdir("pgdr-wc");
    // A different segment under the same name: same header, other bytes later on.
    let alt_dir = dir.path().join("alt/pg_wal");
    fs::create_dir_all(&alt_dir).unwrap();
    let mut alt = fs::read(&seg).unwrap();
    alt[5_000_000] ^= 1;
    let alt_seg = alt_dir.join(&names[0]);
    fs::write(&alt_seg, &alt).unwrap();
    let (sha_a, sha_b) = (sha(&seg), sha(&alt_seg));

    for round in 0..3 {
        let repo = dir.path().join(format!("repo{round}"));
        // Bind the repository first so all racers publish the same name.
        init(&repo, None);
        wa(&repo).arg("push").arg(&seg).run().ok();
        fs::remove_file(repo.join("wal/00000001").join(&names[0])).unwrap();
        let kids: Vec<_> = (0..6)
            .map(|i| {
                let src = if i % 2 == 0 { &seg } else { &alt_seg };
                let c = Command::new(bin())
                    .args(["push", "--repo"])
                    .arg(&repo)
                    .arg(src)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (i % 2 == 0, c)
            })
            .collect();
        let results: Vec<(bool, i32)> = kids
            .into_iter()
            .map(|(a, c)| (a, c.wait_with_output().unwrap().status.code().unwrap()))
            .collect();
        let stored: GetReport = wa(&repo)
            .arg("get")
            .arg(&names[0])
            .arg(dir.path().join("g"))
            .run()
            .ok()
            .document();
        let winner_a = stored.sha256 == sha_a;
        assert!(winner_a || stored.sha256 == sha_b);
        for (is_a, code) in results {
            assert_eq!(code, if is_a == winner_a { 0 } else { 1 }, "round {round}");
        }
    }

    // kill -9 at many points of a push: the final name holds a whole file or nothing, and
    // the repository no temporary file (the object has no name until it is published). The
    // first loop steps from the start of the run, the second from the moment the push has
    // its new object open beside the final name.
    let repo = dir.path().join("repo-kill");
    init(&repo, None);
    wa(&repo).arg("push").arg(&seg).run().ok();
    let target = repo.join("wal/00000001").join(&names[0]);
    let tl_dir = fs::canonicalize(repo.join("wal/00000001")).unwrap();
    let writing = |pid: u32| pgdr_testkit::opened_in(pid, &tl_dir, &tl_dir.join(&names[0]));
    for i in 0..50u64 {
        let _ = fs::remove_file(&target);
        let mut push = Command::new(bin());
        push.args(["push", "--repo"]).arg(&repo).arg(&seg);
        if i < 25 {
            kill_9_after(&mut push, i);
        } else {
            pgdr_testkit::kill_9_when(&mut push, writing, Duration::from_millis((i - 25) * 2));
        }
        assert_eq!(temp_files(&repo), Vec::<String>::new(), "kill {i}");
        if target.exists() {
            let g: GetReport = wa(&repo)
                .arg("get")
                .arg(&names[0])
                .arg(dir.path().join("k"))
                .run()
                .ok()
                .document();
            assert_eq!(g.sha256, sha_a, "kill {i}");
        }
        // And a new push after the kill always succeeds.
        wa(&repo).arg("push").arg(&seg).run().ok();
    }
    let v: VerifyReport = wa(&repo).arg("verify").run().ok().document();
    assert!(v.ok, "{v:?}");

    // kill -9 at many points of a get: DEST's directory holds the whole segment or nothing,
    // never a temporary file (the file has no name until it is published).
    let out = dir.path().join("get-kill");
    fs::create_dir(&out).unwrap();
    let dest = out.join("RECOVERYXLOG");
    for i in 0..25u64 {
        // PostgreSQL removes DEST before it asks (xlogarchive.c, RestoreArchivedFile).
        let _ = fs::remove_file(&dest);
        kill_9_after(
            Command::new(bin())
                .args(["get", "--repo"])
                .arg(&repo)
                .arg(&names[0])
                .arg(&dest),
            i,
        );
        let left: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.is_empty() || left == ["RECOVERYXLOG"],
            "kill {i}: {left:?}"
        );
        if !left.is_empty() {
            assert_eq!(sha(&dest), sha_a, "kill {i}");
        }
    }
}

#[test]
fn full_repository_fails_cleanly() {
    if !pgdr_testkit::is_root() {
        eprintln!("\n*** SKIPPED full_repository_fails_cleanly: mounting a tmpfs needs root ***\n");
        return;
    }
    let (segs, names) = make_segments(2);
    let wal = segs.path().join("pg_wal");
    let dir = short_tempdir("pgdr-wt");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    // Room for the first (compressed) segment, not for an uncompressed second one.
    let probe = dir.path().join("probe");
    init(&probe, None);
    let s: PushReport = wa(&probe)
        .arg("push")
        .arg(wal.join(&names[0]))
        .run()
        .ok()
        .document();
    let room = s.file.stored_bytes + (1 << 20);
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={room},mode=0700"),
            "tmpfs",
        ])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(mnt.clone());
    let repo = mnt.join("repo");
    init(&repo, None);
    wa(&repo).arg("push").arg(wal.join(&names[0])).run().ok();
    let out = wa(&repo)
        .args(["push", "--compress", "none"])
        .arg(wal.join(&names[1]))
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("No space left"), "{}", out.stderr);
    assert!(!repo.join("wal/00000001").join(&names[1]).exists());
    let v: VerifyReport = wa(&repo).arg("verify").run().ok().document();
    assert_eq!(v.files, 1, "{v:?}");
    assert_eq!(v.temporary_files, 0, "{v:?}");
}

#[test]
fn parallel_push_and_prune_lock() {
    let (segs, names) = make_segments(4);
    let wal = segs.path().join("pg_wal");
    let status = mark_ready(&wal, &names);
    let dir = short_tempdir("pgdr-wp");
    let repo = dir.path().join("repo");
    init(&repo, None);
    let r: PushReport = wa(&repo)
        .args(["push", "--parallel", "2"])
        .arg(wal.join(&names[0]))
        .run()
        .ok()
        .document();
    let parallel = r.parallel.as_ref().expect("--parallel reports");
    assert_eq!(parallel.pushed.len(), names.len() - 1, "{r:?}");
    assert!(parallel.failed.is_empty(), "{r:?}");
    // PostgreSQL's status files are untouched.
    for n in &names {
        assert!(status.join(format!("{n}.ready")).exists());
    }
    for n in &names[1..] {
        let r: PushReport = wa(&repo).arg("push").arg(wal.join(n)).run().ok().document();
        assert!(r.acknowledged, "{r:?}");
        assert!(r.file.already_archived, "{r:?}");
    }
    // A changed source file is not trusted to an acknowledgement.
    let v: VerifyReport = wa(&repo).arg("verify").run().ok().document();
    assert_eq!(v.files, names.len() as u64, "{v:?}");

    // get --prefetch: the next segments are decompressed, verified, into a spool beside pg_wal.
    let data = dir.path().join("data");
    fs::create_dir_all(data.join("pg_wal")).unwrap();
    let dest = data.join("pg_wal/RECOVERYXLOG");
    let g: GetReport = wa(&repo)
        .args(["get", "--prefetch", "2"])
        .arg(&names[0])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert!(!g.from_prefetch);
    let spooled = data.join("pgdr_wal_prefetch").join(&names[1]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !spooled.exists() {
        assert!(
            Instant::now() < deadline,
            "prefetch never spooled {}",
            names[1]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let g: GetReport = wa(&repo)
        .args(["get", "--prefetch", "2"])
        .arg(&names[1])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert!(g.from_prefetch, "{g:?}");
    assert_eq!(sha(&dest), sha(&wal.join(&names[1])));

    // prune holds a lock: a second one fails with 75.
    let lock = repo.join("prune.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    f.lock().unwrap();
    wa(&repo)
        .args(["prune", "--before"])
        .arg(&names[2])
        .run()
        .expect_error(75, T);
    wa(&repo)
        .args(["prune", "--wait-lock", "0.2", "--before"])
        .arg(&names[2])
        .run()
        .expect_error(75, T);
    f.unlock().unwrap();
    let p: PruneReport = wa(&repo)
        .args(["prune", "--before"])
        .arg(&names[2])
        .run()
        .ok()
        .document();
    assert_eq!(p.removed, [names[0].clone(), names[1].clone()], "{p:?}");
    let k: PruneReport = wa(&repo)
        .args(["prune", "--keep-days", "1"])
        .run()
        .ok()
        .document();
    assert_eq!(k.removed_count, 0, "{k:?}");
}
