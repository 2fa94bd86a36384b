//! wal-archive on S3 (issue 14), against a real moto server the tests start (crates/testkit
//! S3Server): the WAL fault suite (duplicates, different content, foreign cluster, tampered and
//! truncated objects, concurrent pushes of one name, kill -9 mid-push, throttling and an
//! unreachable endpoint), a primary under pgbench archiving to S3 and a point-in-time recovery
//! from it, encryption checked with the `age` CLI, and `copy` local → S3 → S3 killed and resumed.

mod wal_support;

use pgdr_repo::stored::Compression;
use pgdr_testkit::{
    age_keygen, chown_to_pg_user, short_tempdir, tool, Cluster, S3Server, ToolCommand,
};
use pgdr_wal::doc::{
    CopyReport, GetReport, InitReport, ListReport, PruneReport, PushReport, VerifyReport,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use wal_support::{
    bin, cluster_from, make_segments, mark_ready, paused_at_the_restore_point, sha,
    switch_and_wait, timeline, T,
};

/// wal-archive --repo LOC with the server's AWS variables.
fn was(s: &S3Server, loc: &str) -> ToolCommand {
    let mut c = tool(T).arg("--repo").arg(loc);
    for (k, v) in s.env() {
        c = c.env(k, v);
    }
    c
}

/// `get` of the file `src` (by its name) from `loc` into `dest` reports and writes exactly its
/// bytes; `dest` is removed afterwards.
fn gets_back(s: &S3Server, loc: &str, src: &Path, dest: &Path) {
    let name = src.file_name().unwrap().to_str().unwrap();
    let g: GetReport = was(s, loc)
        .arg("get")
        .arg(name)
        .arg(dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.sha256, sha(src));
    assert_eq!(sha(dest), sha(src));
    fs::remove_file(dest).unwrap();
}

/// The same as a std Command (for children the test kills or runs at once).
fn was_cmd(s: &S3Server, loc: &str) -> Command {
    let mut c = Command::new(bin());
    c.arg("--repo").arg(loc).envs(s.env()).stdin(Stdio::null());
    c
}

#[test]
fn s3_faults_duplicates_damage_and_foreign_wal() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("wal");
    let (segs, names) = make_segments(2);
    let (other, other_names) = make_segments(1);
    let wal = segs.path().join("pg_wal");
    let seg = wal.join(&names[0]);
    let dir = short_tempdir("pgdr-s3f");
    let dest = dir.path().join("RECOVERYXLOG");
    let repo = "s3://wal/main";

    // Not a repository: an empty prefix, a missing bucket, a prefix holding something else.
    for (loc, why) in [
        (repo, "nothing is stored there"),
        ("s3://nobucket/x", "bucket nobucket does not exist"),
    ] {
        let out = was(&s, loc).arg("push").arg(&seg).run().expect_error(1, T);
        assert!(out.stderr.contains(why), "{}", out.stderr);
        let out = was(&s, loc)
            .arg("get")
            .arg(&names[0])
            .arg(&dest)
            .run()
            .expect_error(126, T);
        assert!(out.stderr.contains(why), "{}", out.stderr);
        assert!(!dest.exists());
    }
    assert!(s.keys("wal", "").is_empty(), "nothing may be created");
    s.put_object("wal", "other/notes.txt", b"mine");
    let out = was(&s, "s3://wal/other")
        .arg("init")
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("notes.txt"), "{}", out.stderr);
    let out = was(&s, "s3://wal/other")
        .arg("list")
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("notes.txt"), "{}", out.stderr);

    // init, push, the same again: already archived; idempotent init.
    let r: InitReport = was(&s, repo).arg("init").run().ok().document();
    assert!(r.created && r.kind == "s3" && r.owner.is_none(), "{r:?}");
    let again: InitReport = was(&s, repo).arg("init").run().ok().document();
    assert!(!again.created);
    let p: PushReport = was(&s, repo).arg("push").arg(&seg).run().ok().document();
    assert!(
        !p.file.already_archived && p.file.sha256 == sha(&seg),
        "{p:?}"
    );
    let p: PushReport = was(&s, repo).arg("push").arg(&seg).run().ok().document();
    assert!(p.file.already_archived, "{p:?}");
    let key = format!("main/wal/00000001/{}", names[0]);
    let stored = s.object("wal", &key).expect("stored");

    // Different content under the name: exit 1, both checksums, nothing overwritten.
    let tdir = dir.path().join("tampered/pg_wal");
    fs::create_dir_all(&tdir).unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[100_000] ^= 0xFF;
    fs::write(tdir.join(&names[0]), &bytes).unwrap();
    let out = was(&s, repo)
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
    assert_eq!(s.object("wal", &key).unwrap(), stored);
    // A foreign cluster's segment.
    let foreign = other.path().join("pg_wal").join(&other_names[0]);
    let out = was(&s, repo)
        .arg("push")
        .arg(&foreign)
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("database system"), "{}", out.stderr);

    // get: round trip; not archived → 1; tampered or truncated → 126, nothing written.
    let g: GetReport = was(&s, repo)
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.sha256, sha(&seg));
    assert_eq!(fs::read(&dest).unwrap(), fs::read(&seg).unwrap());
    fs::remove_file(&dest).unwrap();
    was(&s, repo)
        .arg("get")
        .arg("00000009.history")
        .arg(&dest)
        .run()
        .expect_error(1, T);
    let mut bad = stored.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    for damaged in [&bad[..], &stored[..1000]] {
        s.put_object("wal", &key, damaged);
        was(&s, repo)
            .arg("get")
            .arg(&names[0])
            .arg(&dest)
            .run()
            .expect_error(126, T);
        assert!(!dest.exists());
        let v: VerifyReport = was(&s, repo).arg("verify").run().expect_code(1).document();
        assert!(
            v.problems
                .iter()
                .any(|p| p.name.as_ref() == Some(&names[0])),
            "{v:?}"
        );
        // The same content pushed over a damaged copy: refused, not "already archived".
        was(&s, repo).arg("push").arg(&seg).run().expect_error(1, T);
    }
    s.put_object("wal", &key, &stored);
    let v: VerifyReport = was(&s, repo).arg("verify").run().ok().document();
    assert!(v.ok && v.content_verified, "{v:?}");

    // Throttling: retried with backoff, then a success; a store that keeps failing, one line.
    s.fail_next(3);
    let p: PushReport = was(&s, repo)
        .arg("push")
        .arg(wal.join(&names[1]))
        .run()
        .ok()
        .document();
    assert!(!p.file.already_archived);
    s.fail_next(10_000);
    let out = was(&s, repo).arg("list").run().expect_error(1, T);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("503"), "{}", out.stderr);
    s.fail_next(0);
    // Endpoint mistakes, each refused in one line above 125 that names the fix, and no secret
    // printed: nobody answering, not a URL (object_store would panic at the first request,
    // exit 101, which recovery takes for "not archived"), plain HTTP without AWS_ALLOW_HTTP
    // and a scheme typo (object_store's own refusal says "builder error" and that requests
    // were retried).
    for (endpoint, allow_http, says) in [
        (
            format!("http://127.0.0.1:{}", pgdr_testkit::free_port()),
            "true",
            "AWS_ENDPOINT_URL",
        ),
        ("http://127.0.0.1:9/a b".to_string(), "true", "not a URL"),
        (s.endpoint(), "false", "AWS_ALLOW_HTTP=true"),
        (
            "htp://127.0.0.1:9".to_string(),
            "true",
            "neither http:// nor https://",
        ),
    ] {
        let out = was(&s, repo)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ALLOW_HTTP", allow_http)
            .arg("get")
            .arg(&names[0])
            .arg(&dest)
            .run()
            .expect_error(126, T);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(says), "{endpoint}: {}", out.stderr);
        assert!(!out.stderr.contains(pgdr_testkit::s3::SECRET_KEY));
        assert!(!dest.exists());
    }
    // No credentials at all, and no instance role (its metadata service is a closed port
    // here): one line that names what to set.
    let out = was(&s, repo)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env(
            "AWS_METADATA_ENDPOINT",
            format!("http://127.0.0.1:{}", pgdr_testkit::free_port()),
        )
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(
        out.stderr.contains("no credentials were given"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", out.stderr);
    assert!(!dest.exists());

    // list and prune as on disk.
    let l: ListReport = was(&s, repo).arg("list").run().ok().document();
    assert_eq!(timeline(&l, 1).count, 2, "{l:?}");
    assert!(l.content_read);
    let pr: PruneReport = was(&s, repo)
        .args(["prune", "--before"])
        .arg(&names[1])
        .run()
        .ok()
        .document();
    assert_eq!(pr.removed, [names[0].clone()]);
    assert!(s.object("wal", &key).is_none());
}

/// get reads the file, and push its acknowledgement, together with the settings: what those
/// reads find decides nothing before the settings proved the location a repository. A prefix
/// holding an archived object and its acknowledgement but no settings is refused (get 126 with
/// nothing written, push 1 with the acknowledgement left); in a repository an acknowledgement
/// answers its push and a name not archived still exits 1.
#[test]
fn s3_reads_with_the_settings_decide_nothing_before_the_repository_opened() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("ahead");
    let (segs, names) = make_segments(3);
    let wal = segs.path().join("pg_wal");
    mark_ready(&wal, &names);
    let dir = short_tempdir("pgdr-s3a");
    let dest = dir.path().join("RECOVERYXLOG");
    let repo = "s3://ahead/main";
    was(&s, repo).arg("init").run().ok();
    let r: PushReport = was(&s, repo)
        .args(["push", "--parallel", "2"])
        .arg(wal.join(&names[0]))
        .run()
        .ok()
        .document();
    let parallel = r.parallel.as_ref().expect("--parallel reports");
    assert_eq!(parallel.pushed.len(), 2, "{r:?}");
    let ack = |prefix: &str, n: &str| s.object("ahead", &format!("{prefix}/acks/{n}"));
    let (stored, acked) = (
        s.object("ahead", &format!("main/wal/00000001/{}", names[2]))
            .expect("pushed ahead"),
        ack("main", &names[2]).expect("acknowledged"),
    );

    // The same object and acknowledgement under a prefix without settings.
    s.put_object(
        "ahead",
        &format!("stray/wal/00000001/{}", names[2]),
        &stored,
    );
    s.put_object("ahead", &format!("stray/acks/{}", names[2]), &acked);
    let out = was(&s, "s3://ahead/stray")
        .arg("get")
        .arg(&names[2])
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(out.stderr.contains("not an initialised"), "{}", out.stderr);
    assert!(!dest.exists());
    let out = was(&s, "s3://ahead/stray")
        .args(["push", "--parallel", "2"])
        .arg(wal.join(&names[2]))
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("not an initialised"), "{}", out.stderr);
    assert_eq!(ack("stray", &names[2]).as_ref(), Some(&acked));

    // In the repository: a push without --parallel does not look for acknowledgements on S3
    // (a request each); the conditional create finds the file and the comparison answers.
    let r: PushReport = was(&s, repo)
        .arg("push")
        .arg(wal.join(&names[1]))
        .run()
        .ok()
        .document();
    assert!(!r.acknowledged && r.file.already_archived, "{r:?}");
    assert!(ack("main", &names[1]).is_some());
    // With --parallel, as archive_command calls it: the acknowledgement answers the push (and
    // is removed), the file is got back, a name not archived is the end of the archive.
    let r: PushReport = was(&s, repo)
        .args(["push", "--parallel", "2"])
        .arg(wal.join(&names[2]))
        .run()
        .ok()
        .document();
    assert!(r.acknowledged && r.file.already_archived, "{r:?}");
    assert!(ack("main", &names[2]).is_none());
    gets_back(&s, repo, &wal.join(&names[2]), &dest);
    let out = was(&s, repo)
        .arg("get")
        .arg("000000070000000000000001")
        .arg(&dest)
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("not in the archive"), "{}", out.stderr);
    assert!(!dest.exists());
}

/// push on S3 compresses the file while the settings are on their way, with the default (or
/// what it was told): the repository's settings still decide what is stored, and a file that
/// is not a regular one is refused without waiting for a writer.
#[test]
fn s3_push_compresses_before_the_settings_came_and_they_still_decide() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("guess");
    let (segs, names) = make_segments(3);
    let wal = segs.path().join("pg_wal");
    let dir = short_tempdir("pgdr-s3g");
    let dest = dir.path().join("RECOVERYXLOG");
    let stored = |prefix: &str, n: &str| {
        s.object("guess", &format!("{prefix}/wal/00000001/{n}"))
            .expect("stored")
    };
    // The header's compression byte (FORMAT.md: offset 10; 0 none, 1 zstd, 2 lz4).
    let code = |b: &[u8]| b[10];

    // A repository storing lz4 overrules the zstd compressed ahead; level 9 too (a larger
    // level compresses this WAL smaller than level 1 does, so the stored size tells).
    was(&s, "s3://guess/lz4")
        .args(["init", "--compress", "lz4"])
        .run()
        .ok();
    was(&s, "s3://guess/z9")
        .args(["init", "--level", "9"])
        .run()
        .ok();
    was(&s, "s3://guess/z1").arg("init").run().ok();
    for (prefix, want, byte) in [
        ("lz4", Compression::Lz4, 2),
        ("z9", Compression::Zstd, 1),
        ("z1", Compression::Zstd, 1),
    ] {
        let r: PushReport = was(&s, &format!("s3://guess/{prefix}"))
            .arg("push")
            .arg(wal.join(&names[0]))
            .run()
            .ok()
            .document();
        assert_eq!(r.file.compression, want, "{prefix}: {r:?}");
        assert_eq!(code(&stored(prefix, &names[0])), byte, "{prefix}");
        gets_back(
            &s,
            &format!("s3://guess/{prefix}"),
            &wal.join(&names[0]),
            &dest,
        );
    }
    let (z9, z1) = (stored("z9", &names[0]), stored("z1", &names[0]));
    assert!(
        z9.len() < z1.len(),
        "level 9 {} vs level 1 {}",
        z9.len(),
        z1.len()
    );

    // What push is told wins over the repository's.
    let r: PushReport = was(&s, "s3://guess/lz4")
        .args(["push", "--compress", "none"])
        .arg(wal.join(&names[1]))
        .run()
        .ok()
        .document();
    assert_eq!(r.file.compression, Compression::None, "{r:?}");
    let raw = stored("lz4", &names[1]);
    assert_eq!((code(&raw), raw.len()), (0, 68 + (16 << 20)));
    let out = was(&s, "s3://guess/z1")
        .args(["push", "--level", "99"])
        .arg(wal.join(&names[1]))
        .run()
        .expect_error(2, T);
    assert!(
        out.stderr.contains("--level 99") && out.stderr.contains("zstd levels go from -7 to 22"),
        "{}",
        out.stderr
    );
    let out = was(&s, "s3://guess/lz4")
        .args(["push", "--level", "5"])
        .arg(wal.join(&names[1]))
        .run()
        .expect_error(2, T);
    assert!(
        out.stderr
            .contains("the repository's compression is lz4, which has no levels"),
        "{}",
        out.stderr
    );

    // A FIFO under a segment's name: refused at once, nothing stored.
    let fifo = wal.join("000000010000000000000063");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = was(&s, "s3://guess/z1")
        .arg("push")
        .arg(&fifo)
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    assert!(s
        .keys("guess", "z1/wal/00000001/000000010000000000000063")
        .is_empty());
}

#[test]
fn s3_concurrent_pushes_of_one_name_and_kill_9() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("race");
    let (segs, names) = make_segments(1);
    let seg = segs.path().join("pg_wal").join(&names[0]);
    let dir = short_tempdir("pgdr-s3c");
    let alt_dir = dir.path().join("alt/pg_wal");
    fs::create_dir_all(&alt_dir).unwrap();
    let mut alt = fs::read(&seg).unwrap();
    alt[5_000_000] ^= 1;
    let alt_seg = alt_dir.join(&names[0]);
    fs::write(&alt_seg, &alt).unwrap();
    let (sha_a, sha_b) = (sha(&seg), sha(&alt_seg));
    // zstd: one conditional PUT each; none: 16 MiB in parallel parts, published by a
    // conditional multipart completion.
    for (round, compress) in ["zstd", "none", "zstd", "none"].iter().enumerate() {
        let repo = format!("s3://race/r{round}");
        was(&s, &repo).arg("init").run().ok();
        let kids: Vec<_> = (0..6)
            .map(|i| {
                let src = if i % 2 == 0 { &seg } else { &alt_seg };
                let c = was_cmd(&s, &repo)
                    .args(["push", "--compress", compress])
                    .arg(src)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (i % 2 == 0, c)
            })
            .collect();
        let results: Vec<(bool, i32, String)> = kids
            .into_iter()
            .map(|(a, c)| {
                let o = c.wait_with_output().unwrap();
                (
                    a,
                    o.status.code().unwrap(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            })
            .collect();
        let g: GetReport = was(&s, &repo)
            .arg("get")
            .arg(&names[0])
            .arg(dir.path().join("g"))
            .run()
            .ok()
            .document();
        let winner_a = g.sha256 == sha_a;
        assert!(winner_a || g.sha256 == sha_b);
        for (is_a, code, stderr) in &results {
            assert_eq!(
                *code,
                if *is_a == winner_a { 0 } else { 1 },
                "round {round} ({compress}): {stderr}"
            );
        }
    }

    // kill -9 at many points of a push (small and multipart): the name holds a whole
    // object or nothing, and a new push always succeeds.
    let repo = "s3://race/kill";
    was(&s, repo).arg("init").run().ok();
    // Where the killed pushes stage their objects: nothing may be left there.
    let staging = dir.path().join("tmpdir");
    fs::create_dir(&staging).unwrap();
    for i in 0..10u64 {
        let compress = if i % 2 == 0 { "zstd" } else { "none" };
        let _ = was(&s, repo)
            .args(["prune", "--before", "000000FF0000000000000000"])
            .run();
        let mut c = was_cmd(&s, repo)
            .args(["push", "--compress", compress])
            .arg(&seg)
            .env("TMPDIR", &staging)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + i * 40));
        let _ = c.kill();
        let _ = c.wait();
        let left: Vec<_> = fs::read_dir(&staging).unwrap().collect();
        assert!(left.is_empty(), "kill {i}: left in TMPDIR: {left:?}");
        let got = was(&s, repo)
            .arg("get")
            .arg(&names[0])
            .arg(dir.path().join("k"))
            .run();
        match got.code {
            Some(0) => assert_eq!(got.document::<GetReport>().sha256, sha_a, "kill {i}"),
            Some(1) => {}
            c => panic!("kill {i}: get exited {c:?}: {}", got.stderr),
        }
        was(&s, repo).arg("push").arg(&seg).run().ok();
    }
    let v: VerifyReport = was(&s, repo).arg("verify").run().ok().document();
    assert!(v.ok, "{v:?}");
}

fn pgbench(c: &Cluster, args: &[&str]) {
    let out = c
        .cmd("pgbench")
        .args(["-h", c.sockdir.to_str().unwrap(), "-p", &c.port.to_string()])
        .args(["-U", "postgres"])
        .args(args)
        .arg("postgres")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A primary whose archive_command pushes into `repo` on the server `s`.
fn s3_primary(s: &S3Server, repo: &str) -> Cluster {
    let mut c = Cluster::builder()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} {} push %p --repo {repo}'",
            s.env_prefix(),
            bin().display()
        ))
        .init_only();
    let r: InitReport = was(s, repo)
        .arg("init")
        .arg("--pgdata")
        .arg(&c.data)
        .run()
        .ok()
        .document();
    assert!(r.system_identifier.is_some(), "{r:?}");
    c.start_server();
    c
}

#[test]
fn s3_archive_under_pgbench_and_pitr_to_a_restore_point() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("pitr");
    let repo = "s3://pitr/cluster";
    let dir = short_tempdir("pgdr-s3p");
    let primary = s3_primary(&s, repo);
    primary.execute("create table t (id int primary key, note text)");
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

    // Every segment archived and verified, no gap.
    let l: ListReport = was(&s, repo).arg("list").run().ok().document();
    let t1 = timeline(&l, 1);
    assert_eq!(
        t1.first.as_deref(),
        Some("000000010000000000000001"),
        "{l:?}"
    );
    assert_eq!(t1.last.as_deref(), Some(last.as_str()), "{l:?}");
    assert_eq!(t1.count, u64::from_str_radix(&last[16..], 16).unwrap());
    assert!(t1.gaps.is_empty() && !t1.backup.is_empty(), "{l:?}");
    let v: VerifyReport = was(&s, repo).arg("verify").run().ok().document();
    assert!(v.ok && v.content_verified && v.files == l.files, "{v:?}");

    // A new cluster from the base backup, recovered from S3 to the restore point.
    let mut restored = cluster_from(
        &backup,
        &primary,
        &format!(
            "archive_mode = off\n\
             restore_command = '{} {} get %f %p --prefetch 4 --repo {repo}'\n\
             recovery_target_name = 'drill'\nrecovery_target_action = 'pause'",
            s.env_prefix(),
            bin().display()
        ),
    );
    fs::write(restored.data.join("recovery.signal"), "").unwrap();
    chown_to_pg_user(&restored.data.join("recovery.signal"));
    restored.start_server();
    paused_at_the_restore_point(&restored, Duration::from_secs(180));
}

fn ssh_keygen(path: &Path) -> String {
    pgdr_testkit::run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "dr@test", "-f"])
            .arg(path),
    );
    fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// `age -d -i KEY` of raw bytes.
fn age_decrypt(key: &Path, raw: &[u8], dir: &Path) -> Vec<u8> {
    let f = dir.join("obj.age");
    fs::write(&f, raw).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The original file inside a stored file (FORMAT.md: header, then a zstd body).
fn unstore(stored: &[u8]) -> Vec<u8> {
    zstd_decode(&stored[68..])
}

fn zstd_decode(b: &[u8]) -> Vec<u8> {
    let mut c = Command::new("zstd")
        .args(["-d", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let input = b.to_vec();
    let w = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&input).unwrap();
    });
    let out = c.wait_with_output().unwrap();
    w.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn s3_encryption_is_age_and_hides_every_row() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("enc");
    let dir = short_tempdir("pgdr-s3e");
    let key = dir.path().join("dr.key");
    let age_pub = age_keygen(&key);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let ssh_key = dir.path().join("id_ed25519");
    let ssh_pub = ssh_keygen(&ssh_key);
    let recipients = dir.path().join("recipients.txt");
    fs::write(&recipients, format!("# the DR team\n{ssh_pub}\n")).unwrap();
    let repo = "s3://enc/pg";
    let mut c = Cluster::builder()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} {} push %p --repo {repo}'",
            s.env_prefix(),
            bin().display()
        ))
        .init_only();
    let r: InitReport = was(&s, repo)
        .args(["init", "--encrypt-to", &age_pub, "--encrypt-to-file"])
        .arg(&recipients)
        .arg("--pgdata")
        .arg(&c.data)
        .run()
        .ok()
        .document();
    assert_eq!(r.encrypt_to.len(), 2, "{r:?}");
    assert_eq!(r.format_version, 2);
    c.start_server();
    let marker = "pgdr-secret-row-7f3a9c";
    c.execute(&format!(
        "create table secrets as select g, '{marker}' || g as v from generate_series(1, 50) g"
    ));
    let last = switch_and_wait(&c);

    // Every object but the settings is an age file; the row is nowhere in the stored bytes.
    let keys = s.keys("enc", "pg/");
    assert!(keys.iter().any(|k| k.ends_with(&last)), "{keys:?}");
    let mut found_in_plaintext = false;
    for k in &keys {
        let raw = s.object("enc", k).unwrap();
        let plain_ok = k.ends_with("pgdr-wal-archive.json") || k.ends_with("FORMAT.md");
        assert_eq!(
            raw.starts_with(b"age-encryption.org/v1\n"),
            !plain_ok,
            "{k}"
        );
        assert!(
            !raw.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{k} holds the row in the clear"
        );
        if k.ends_with(&last) {
            // The age CLI (with either identity) gives the stored file; its body is the
            // segment, byte for byte, and it does hold the row.
            for id in [&key, &ssh_key] {
                let stored = age_decrypt(id, &raw, dir.path());
                let seg = unstore(&stored);
                assert_eq!(
                    seg,
                    fs::read(c.data.join("pg_wal").join(&last)).unwrap_or(seg.clone())
                );
                let got: GetReport = was(&s, repo)
                    .arg("--identity")
                    .arg(id)
                    .arg("get")
                    .arg(&last)
                    .arg(dir.path().join("seg"))
                    .run()
                    .ok()
                    .document();
                assert_eq!(fs::read(dir.path().join("seg")).unwrap(), seg);
                assert_eq!(got.sha256, sha(&dir.path().join("seg")));
                found_in_plaintext |= seg.windows(marker.len()).any(|w| w == marker.as_bytes());
            }
        }
    }
    assert!(
        found_in_plaintext,
        "the search must be able to find the row"
    );

    // Without an identity, with a wrong one, with one others can read: get exits 126.
    let dest = dir.path().join("RECOVERYXLOG");
    let out = was(&s, repo)
        .arg("get")
        .arg(&last)
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(out.stderr.contains("no identity"), "{}", out.stderr);
    // A repeated push without the identity: refused, saying the name is taken and why.
    let again = dir.path().join("again");
    fs::create_dir(&again).unwrap();
    fs::copy(dir.path().join("seg"), again.join(&last)).unwrap();
    let out = was(&s, repo)
        .arg("push")
        .arg(again.join(&last))
        .run()
        .expect_error(1, T);
    assert!(
        out.stderr.contains(&format!("{last} is already archived"))
            && out.stderr.contains("no identity was given")
            && out.stderr.contains("--identity"),
        "{}",
        out.stderr
    );
    let wrong = dir.path().join("wrong.key");
    age_keygen(&wrong);
    fs::set_permissions(&wrong, fs::Permissions::from_mode(0o600)).unwrap();
    let out = was(&s, repo)
        .arg("--identity")
        .arg(&wrong)
        .arg("get")
        .arg(&last)
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(
        out.stderr
            .contains("not one of the repository's recipients"),
        "{}",
        out.stderr
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    let out = was(&s, repo)
        .env("PGDR_IDENTITY", &key)
        .arg("get")
        .arg(&last)
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(out.stderr.contains("group or others"), "{}", out.stderr);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!dest.exists());

    // verify: without the identity only what it can, and says so; with it, everything.
    let out = was(&s, repo).arg("verify").run().ok();
    assert!(
        out.stderr.contains("note: the content of") && out.stderr.contains("was not verified"),
        "{}",
        out.stderr
    );
    let v: VerifyReport = out.document();
    assert!(v.ok && !v.content_verified, "{v:?}");
    let v: VerifyReport = was(&s, repo)
        .arg("--identity")
        .arg(&key)
        .arg("verify")
        .run()
        .ok()
        .document();
    assert!(v.ok && v.content_verified && v.bytes > 0, "{v:?}");
    // A tampered ciphertext fails authentication: 126.
    let k = keys.iter().find(|k| k.ends_with(&last)).unwrap();
    let mut raw = s.object("enc", k).unwrap();
    let n = raw.len() - 100;
    raw[n] ^= 1;
    s.put_object("enc", k, &raw);
    was(&s, repo)
        .arg("--identity")
        .arg(&key)
        .arg("get")
        .arg(&last)
        .arg(&dest)
        .run()
        .expect_error(126, T);
    assert!(!dest.exists());
}

fn copy_cmd(s: &S3Server, from: &str, to: &str) -> ToolCommand {
    was(s, from).args(["copy", "--to", to])
}

#[test]
fn s3_copy_local_to_s3_to_another_prefix_killed_and_resumed() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("dr-copy");
    let dir = short_tempdir("pgdr-s3y");
    let local = dir.path().join("repo");
    let (segs, names) = make_segments(12);
    let wal = segs.path().join("pg_wal");
    let sysid = {
        let r: InitReport = tool(T)
            .arg("--repo")
            .arg(&local)
            .arg("init")
            .run()
            .ok()
            .document();
        assert!(r.created);
        for n in &names {
            tool(T)
                .arg("--repo")
                .arg(&local)
                .arg("push")
                .arg(wal.join(n))
                .run()
                .ok();
        }
        let l: ListReport = tool(T)
            .arg("--repo")
            .arg(&local)
            .arg("list")
            .run()
            .ok()
            .document();
        l.system_identifier.unwrap()
    };
    // Another kind of object (a snapshot image's file, say): copied object by object too.
    let img = local.join("images/pgdr-20260321T092837Z/base/1/1259");
    fs::create_dir_all(img.parent().unwrap()).unwrap();
    fs::write(&img, vec![7u8; 300_000]).unwrap();
    let local_s = local.display().to_string();

    let key_a = dir.path().join("a.key");
    let pub_a = age_keygen(&key_a);
    fs::set_permissions(&key_a, fs::Permissions::from_mode(0o600)).unwrap();
    let a = "s3://dr-copy/region-a";
    was(&s, a).args(["init", "--encrypt-to", &pub_a]).run().ok();

    // A DST of another cluster is refused, and nothing is copied into it.
    let foreign = "s3://dr-copy/foreign";
    let fc = Cluster::builder().init_only();
    was(&s, foreign)
        .arg("init")
        .arg("--pgdata")
        .arg(&fc.data)
        .run()
        .ok();
    let out = copy_cmd(&s, &local_s, foreign).run().expect_error(1, T);
    assert!(out.stderr.contains("database system"), "{}", out.stderr);
    assert!(!s
        .keys("dr-copy", "foreign/")
        .iter()
        .any(|k| k.contains("/wal/")));

    // Dry run: counts, nothing copied.
    let dry: CopyReport = copy_cmd(&s, &local_s, a)
        .arg("--dry-run")
        .run()
        .ok()
        .document();
    assert!(dry.dry_run && dry.copied == 13, "{dry:?}");
    assert!(!s
        .keys("dr-copy", "region-a/")
        .iter()
        .any(|k| k.contains("/wal/")));

    // Killed mid-way (kill -9) as soon as the first object is in DST, then resumed:
    // everything, once, verified.
    let mut child = Command::new(bin())
        .arg("--repo")
        .arg(&local)
        .args(["copy", "--parallel", "1", "--to", a])
        .envs(s.env())
        .env("PGDR_IDENTITY", &key_a)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let in_dst = || {
        s.keys("dr-copy", "region-a/")
            .iter()
            .filter(|k| k.contains("/wal/0") || k.contains("/images/"))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while in_dst() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    let at_kill = in_dst();
    assert!(
        at_kill > 0 && at_kill < 13,
        "killed after {at_kill} of 13 objects"
    );
    let done: CopyReport = copy_cmd(&s, &local_s, a)
        .env("PGDR_IDENTITY", &key_a)
        .run()
        .ok()
        .document();
    assert!(done.failed.is_empty(), "{done:?}");
    assert_eq!(done.copied + done.present, 13, "{done:?}");
    assert!(done.copied >= 13 - at_kill as u64, "{done:?}");
    let again: CopyReport = copy_cmd(&s, &local_s, a)
        .env("PGDR_IDENTITY", &key_a)
        .run()
        .ok()
        .document();
    assert_eq!((again.copied, again.present), (0, 13), "{again:?}");
    let l: ListReport = was(&s, a)
        .arg("--identity")
        .arg(&key_a)
        .arg("list")
        .run()
        .ok()
        .document();
    assert_eq!(l.system_identifier.as_deref(), Some(sysid.as_str()));
    assert_eq!(timeline(&l, 1).count, 12);
    let v: VerifyReport = was(&s, a)
        .arg("--identity")
        .arg(&key_a)
        .arg("verify")
        .run()
        .ok()
        .document();
    assert!(v.ok && v.content_verified, "{v:?}");
    // The image object came across encrypted and reads back byte for byte.
    let img_key = "region-a/images/pgdr-20260321T092837Z/base/1/1259";
    let raw = s.object("dr-copy", img_key).unwrap();
    assert_eq!(age_decrypt(&key_a, &raw, dir.path()), vec![7u8; 300_000]);

    // A → B (another prefix, other recipients: re-encrypted), with its own retention.
    let key_b = dir.path().join("b.key");
    let pub_b = age_keygen(&key_b);
    fs::set_permissions(&key_b, fs::Permissions::from_mode(0o600)).unwrap();
    let b = "s3://dr-copy/region-b";
    was(&s, b).args(["init", "--encrypt-to", &pub_b]).run().ok();
    let ab: CopyReport = copy_cmd(&s, a, b)
        .arg("--identity")
        .arg(&key_a)
        .arg("--to-identity")
        .arg(&key_b)
        .run()
        .ok()
        .document();
    assert_eq!(ab.copied, 13, "{ab:?}");
    let raw_b = s
        .object("dr-copy", &img_key.replace("region-a", "region-b"))
        .unwrap();
    assert_eq!(age_decrypt(&key_b, &raw_b, dir.path()), vec![7u8; 300_000]);
    let pr: PruneReport = was(&s, b)
        .args(["prune", "--before"])
        .arg(&names[6])
        .run()
        .ok()
        .document();
    assert_eq!(pr.removed_count, 6, "{pr:?}");
    // B's retention holds: copy does not bring back what B pruned; A keeps everything.
    let ab2: CopyReport = copy_cmd(&s, a, b)
        .arg("--identity")
        .arg(&key_a)
        .arg("--to-identity")
        .arg(&key_b)
        .run()
        .ok()
        .document();
    assert_eq!((ab2.copied, ab2.skipped_pruned), (0, 6), "{ab2:?}");
    let lb: ListReport = was(&s, b)
        .arg("--identity")
        .arg(&key_b)
        .arg("list")
        .run()
        .ok()
        .document();
    assert_eq!(timeline(&lb, 1).first.as_deref(), Some(names[6].as_str()));
    let la: ListReport = was(&s, a)
        .arg("--identity")
        .arg(&key_a)
        .arg("list")
        .run()
        .ok()
        .document();
    assert_eq!(timeline(&la, 1).count, 12);
    // Without B's identity, copy cannot check what it stores: refused before copying.
    let out = copy_cmd(&s, a, b)
        .arg("--identity")
        .arg(&key_a)
        .run()
        .expect_error(1, T);
    assert!(out.stderr.contains("--to-identity"), "{}", out.stderr);
}

/// A lock object left by a run killed with SIGKILL on this host is taken over at once (the
/// trial's stale images.lock blocked every upload for an hour); one whose holder lives, or
/// lives on another host, or was written by an older pgdr without the process fields, is
/// left as it is and the run exits 75 naming the holder.
#[test]
fn s3_a_dead_runs_lock_is_taken_over_a_live_ones_is_not() {
    use pgdr_core::holder::{start_time, Holder};
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("locks");
    let repo = "s3://locks/pg";
    // Bound to a cluster: prune of an unbound repository has nothing to lock for.
    let c = Cluster::builder().init_only();
    was(&s, repo)
        .args(["init", "--pgdata"])
        .arg(&c.data)
        .run()
        .ok();
    let me = Holder::me();
    let mut child = Command::new("true").spawn().unwrap();
    // Read while it is a zombie, not yet reaped: its PID then has no process.
    let dead = Holder {
        pid: child.id(),
        start: start_time(child.id()),
        ..me.clone()
    };
    child.wait().unwrap();
    assert!(dead.start.is_some());
    let elsewhere = Holder {
        host: "another-host".into(),
        ..dead.clone()
    };
    let old = r#"{"pid": 1, "host": "h", "since": "2026-01-01T00:00:00Z"}"#.to_string();
    for (line, taken) in [
        (dead.to_line(), true),
        (me.to_line(), false),
        (elsewhere.to_line(), false),
        (old, false),
    ] {
        s.put_object("locks", "pg/prune.lock", line.as_bytes());
        let out = was(&s, repo)
            .args(["prune", "--before", "000000FF0000000000000000"])
            .run();
        let left = s.object("locks", "pg/prune.lock");
        if taken {
            assert_eq!(out.code, Some(0), "{line}: {}", out.stderr);
            assert_eq!(left, None, "the lock taken over is released");
            // One note on stderr says whose lock was taken over and why; stdout is the
            // prune document as ever.
            let h: Holder = serde_json::from_str(line.trim()).unwrap();
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
            assert!(
                out.stderr.starts_with(&format!(
                    "wal-archive: note: took over the lock s3://locks/pg/prune.lock of pid {} on {} (since {}): its process is gone",
                    h.pid, h.host, h.since
                )),
                "{}",
                out.stderr
            );
            let pr = out.document::<PruneReport>();
            assert!(pr.removed.is_empty(), "{pr:?}");
        } else {
            assert_eq!(out.code, Some(75), "{line}: {}", out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
            let h: Holder = serde_json::from_str(line.trim()).unwrap();
            assert!(
                out.stderr.contains(&format!("pid {} on {}", h.pid, h.host)),
                "{}",
                out.stderr
            );
            assert_eq!(left.as_deref(), Some(line.as_bytes()), "left as it was");
        }
    }
}

/// A store on HTTPS whose certificate a private CA signed (MinIO or Ceph behind one): with
/// `AWS_CA_BUNDLE` naming that CA the repository works, and only that bundle is trusted, as
/// the AWS CLI does (`SSL_CERT_FILE` naming the CA does not rescue a bundle without it);
/// without any trust in it, one line says the certificate is not trusted and names
/// `AWS_CA_BUNDLE`; an unreadable bundle is named.
#[test]
fn s3_tls_trusts_aws_ca_bundle_and_only_it() {
    let s = pgdr_testkit::skip_unless!(S3Server::start_tls());
    s.create_bucket("tls");
    let (segs, names) = make_segments(1);
    let seg = segs.path().join("pg_wal").join(&names[0]);
    let dir = short_tempdir("pgdr-s3tls");
    let dest = dir.path().join("RECOVERYXLOG");
    let repo = "s3://tls/r";
    let ca = s.ca_pem();
    // A CA of its own that signed nothing here.
    let other = tempfile::tempdir().unwrap();
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=another CA",
            "-keyout",
            "k.pem",
            "-out",
            "ca.pem",
        ])
        .current_dir(other.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let with = |bundle: Option<&Path>, cert_file: Option<&Path>| {
        let mut c = was(&s, repo)
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env_remove("AWS_CA_BUNDLE");
        if let Some(b) = bundle {
            c = c.env("AWS_CA_BUNDLE", b);
        }
        if let Some(f) = cert_file {
            c = c.env("SSL_CERT_FILE", f);
        }
        c
    };

    // Trusted through AWS_CA_BUNDLE alone: init, push and a byte-identical get.
    with(Some(&ca), None).arg("init").run().ok();
    let p: PushReport = with(Some(&ca), None)
        .arg("push")
        .arg(&seg)
        .run()
        .ok()
        .document();
    assert!(!p.file.already_archived, "{p:?}");
    let g: GetReport = with(Some(&ca), None)
        .arg("get")
        .arg(&names[0])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.sha256, sha(&seg));
    assert_eq!(sha(&dest), sha(&seg));
    fs::remove_file(&dest).unwrap();

    // The bundle replaces every other trust: a bundle of another CA is refused although
    // SSL_CERT_FILE names the right one; so is no trust at all. get exits 126, writes nothing.
    for (bundle, cert_file) in [
        (Some(other.path().join("ca.pem")), Some(ca.clone())),
        (None, None),
    ] {
        let out = with(bundle.as_deref(), cert_file.as_deref())
            .arg("get")
            .arg(&names[0])
            .arg(&dest)
            .run()
            .expect_error(126, T);
        assert!(
            out.stderr.contains("TLS certificate is not trusted")
                && out.stderr.contains("AWS_CA_BUNDLE"),
            "{}",
            out.stderr
        );
        assert!(!dest.exists());
    }

    // A bundle that cannot be read, or holds no certificate, is named before any request.
    let empty = other.path().join("empty.pem");
    fs::write(&empty, "not a certificate\n").unwrap();
    for (bundle, why) in [
        (
            other.path().join("missing.pem"),
            "No such file or directory",
        ),
        (empty.clone(), "no PEM certificate in it"),
    ] {
        let out = with(Some(&bundle), None)
            .arg("push")
            .arg(&seg)
            .run()
            .expect_error(1, T);
        assert!(
            out.stderr
                .contains(&format!("AWS_CA_BUNDLE={}: {why}", bundle.display())),
            "{}",
            out.stderr
        );
    }
}

/// A store that accepts connections and then answers nothing (moto stopped with SIGSTOP)
/// fails `get` (126: recovery stops, nothing written) and `push` (1: PostgreSQL retries the
/// segment later) with one line, instead of holding restore_command and archive_command for
/// as long as a request may take; once the store answers again both work.
#[test]
fn s3_a_store_that_stops_answering_fails_instead_of_hanging() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("hung");
    let (segs, names) = make_segments(2);
    let wal = segs.path().join("pg_wal");
    let dir = short_tempdir("pgdr-s3hung");
    let dest = dir.path().join("RECOVERYXLOG");
    let repo = "s3://hung/r";
    was(&s, repo).arg("init").run().ok();
    was(&s, repo)
        .arg("push")
        .arg(wal.join(&names[0]))
        .run()
        .ok();

    s.pause();
    let start = |args: &[&std::ffi::OsStr]| {
        was_cmd(&s, repo)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let get = start(&["get".as_ref(), names[0].as_ref(), dest.as_os_str()]);
    let push = start(&["push".as_ref(), wal.join(&names[1]).as_os_str()]);
    // Generous: a liveness bound, not a speed goal (the requests time out after 30 s of
    // silence, and are retried within 30 s). Before the read timeout they waited 300 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(200);
    let mut outs = Vec::new();
    for mut child in [get, push] {
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                s.resume();
                panic!("wal-archive still waits on a store that stopped answering");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        outs.push(child.wait_with_output().unwrap());
    }
    s.resume();
    let (g, p) = (&outs[0], &outs[1]);
    let (g_err, p_err) = (
        String::from_utf8_lossy(&g.stderr),
        String::from_utf8_lossy(&p.stderr),
    );
    assert_eq!(g.status.code(), Some(126), "{g_err}");
    assert_eq!(p.status.code(), Some(1), "{p_err}");
    for e in [&g_err, &p_err] {
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains("s3://hung/r"), "{e}");
    }
    assert!(g.stdout.is_empty() && p.stdout.is_empty());
    assert!(!dest.exists());

    // The store answers again: the segment not archived then is archived now, and read back.
    was(&s, repo)
        .arg("push")
        .arg(wal.join(&names[1]))
        .run()
        .ok();
    gets_back(&s, repo, &wal.join(&names[1]), &dest);
}
