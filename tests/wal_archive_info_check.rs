//! wal-archive info and check (issue 17) against real PostgreSQL servers: check passes on a
//! primary archiving into the repository and names the fault of three broken setups; info
//! reports the timelines, counts and the recovery window of a repository after pushes, a
//! promotion and a missing segment; both on an S3 repository (moto).

mod wal_support;

use pgdr_snap::doc::ImageReport;
use pgdr_testkit::{chown_to_pg_user, short_tempdir, tool, Cluster, S3Server, ToolCommand};
use pgdr_wal::doc::{CheckReport, InfoReport, InitReport, ListReport};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use wal_support::{
    archiving_primary, bin, init, recovering_cluster, switch_and_wait, timeline, wa, wait_archived,
    T,
};

const SEG: u64 = 16 << 20;

fn check(repo: &Path, c: &Cluster, timeout: &str) -> ToolCommand {
    wa(repo)
        .args(["check", "--timeout", timeout, "-d"])
        .arg(c.conninfo())
}

fn codes(r: &CheckReport) -> Vec<&str> {
    r.problems.iter().map(|p| p.code.as_str()).collect()
}

/// The segment number of a segment name (16 MiB segments).
fn segno(name: &str) -> u64 {
    u64::from_str_radix(&name[8..16], 16).unwrap() * 256
        + u64::from_str_radix(&name[16..], 16).unwrap()
}

#[test]
fn check_passes_on_a_primary_archiving_into_the_repository() {
    let dir = short_tempdir("pgdr-chk");
    let repo = dir.path().join("repo");
    let primary = archiving_primary(&repo, "");
    let r: CheckReport = check(&repo, &primary, "60").run().ok().document();
    assert!(r.ok && r.problems.is_empty(), "{r:?}");
    assert!(r.arrived, "{r:?}");
    assert_eq!(r.command_repo.as_deref(), Some(repo.to_str().unwrap()));
    assert_eq!(r.archive_mode.as_deref(), Some("on"));
    assert_eq!(r.server_system_identifier, r.repo_system_identifier);
    assert!(r.server_system_identifier.is_some());
    assert!(!r.archiver.as_ref().unwrap().failing, "{r:?}");
    // The switched segment is really there.
    let seg = r.switched_segment.clone().unwrap();
    let l: ListReport = wa(&repo).arg("list").run().ok().document();
    assert!(
        timeline(&l, 1).last.as_deref() >= Some(seg.as_str()),
        "{seg} {l:?}"
    );
    // Without -d: the PG* environment, as libpq.
    let r: CheckReport = wa(&repo)
        .arg("check")
        .env("PGHOST", &primary.sockdir)
        .env("PGPORT", primary.port.to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        .run()
        .ok()
        .document();
    assert!(r.ok, "{r:?}");
    assert!(r.switched_segment.unwrap() > seg);

    // archive_command naming no repository: the configuration file it names decides, which
    // check cannot know for sure (a warning), and the switch shows where WAL goes.
    let conf = dir.path().join("pgdr.toml");
    fs::write(&conf, format!("[global]\nrepo = \"{}\"\n", repo.display())).unwrap();
    chown_to_pg_user(&conf);
    primary.execute(&format!(
        "alter system set archive_command = 'PGDR_CONFIG={} {} push %p'",
        conf.display(),
        bin().display()
    ));
    primary.execute("select pg_reload_conf()");
    primary.wait_for(
        "select current_setting('archive_command') like 'PGDR_CONFIG=%'",
        Duration::from_secs(30),
    );
    let r: CheckReport = check(&repo, &primary, "60").run().ok().document();
    assert!(r.ok && r.arrived, "{r:?}");
    assert_eq!(r.command_repo, None);
    let w: Vec<&str> = r.warnings.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(w, ["repo_not_named"], "{r:?}");
    assert!(r.warnings[0].message.contains("gives"), "{r:?}");

    // A standby is refused in one line: check its primary.
    let standby = primary.standby();
    let out = check(&repo, &standby, "5").run().expect_error(1, T);
    assert!(out.stderr.contains("standby"), "{}", out.stderr);
    // Bad usage.
    check(&repo, &primary, "-3").run().expect_error(2, T);
}

#[test]
fn check_names_the_fault_of_three_broken_setups() {
    let dir = short_tempdir("pgdr-chkf");
    let repo = dir.path().join("repo");
    let primary = archiving_primary(&repo, "");
    switch_and_wait(&primary);

    // 1. archive_command points at another repository (of the same cluster).
    let other = dir.path().join("other");
    init(&other, Some(&primary.data));
    let r: CheckReport = check(&other, &primary, "60")
        .run()
        .expect_code(1)
        .document();
    assert!(!r.ok && !r.arrived, "{r:?}");
    let c = codes(&r);
    assert!(c.contains(&"archive_command_other_repo"), "{r:?}");
    assert!(c.contains(&"segment_elsewhere"), "{r:?}");
    assert!(!c.contains(&"system_identifier_mismatch"), "{r:?}");
    assert_eq!(r.command_repo.as_deref(), Some(repo.to_str().unwrap()));

    // 2. Another cluster's repository.
    let stranger = Cluster::builder().init_only();
    let foreign = dir.path().join("foreign");
    init(&foreign, Some(&stranger.data));
    let r: CheckReport = check(&foreign, &primary, "60")
        .run()
        .expect_code(1)
        .document();
    let c = codes(&r);
    assert!(c.contains(&"system_identifier_mismatch"), "{r:?}");
    assert_ne!(r.server_system_identifier, r.repo_system_identifier);

    // 3. The archiver fails: the repository's timeline directory is not writable for the
    // server's user.
    let tl = repo.join("wal/00000001");
    fs::set_permissions(&tl, fs::Permissions::from_mode(0o500)).unwrap();
    let r: CheckReport = check(&repo, &primary, "5").run().expect_code(1).document();
    let c = codes(&r);
    assert!(c.contains(&"archiver_failing"), "{r:?}");
    assert!(c.contains(&"segment_not_arrived"), "{r:?}");
    assert!(!c.contains(&"archive_command_other_repo"), "{r:?}");
    let a = r.archiver.as_ref().unwrap();
    assert!(a.failing && a.failed_count > 0, "{r:?}");
    // Repaired, the same check passes (the switch wakes the archiver).
    fs::set_permissions(&tl, fs::Permissions::from_mode(0o700)).unwrap();
    let r: CheckReport = check(&repo, &primary, "120").run().ok().document();
    assert!(r.ok, "{r:?}");

    // archive_command not wal-archive, and archive_mode off, are named too.
    primary.execute("alter system set archive_command = 'cp %p /nonexistent/%f'");
    primary.execute("select pg_reload_conf()");
    primary.wait_for(
        "select current_setting('archive_command') like 'cp %'",
        Duration::from_secs(30),
    );
    let r: CheckReport = check(&repo, &primary, "3").run().expect_code(1).document();
    assert!(
        codes(&r).contains(&"archive_command_not_wal_archive"),
        "{r:?}"
    );
}

/// An archive_command that pushes into two repositories: check --repo of either passes, and
/// reports both; the second one failing is named even when the checked one is fine.
#[test]
fn check_reads_every_repository_of_a_compound_archive_command() {
    let dir = short_tempdir("pgdr-chk2");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut primary = Cluster::builder()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{w} push %p --repo {a} && {w} push %p --repo {b}'",
            w = bin().display(),
            a = a.display(),
            b = b.display()
        ))
        .conf("archive_timeout = 0")
        .init_only();
    init(&a, Some(&primary.data));
    init(&b, Some(&primary.data));
    primary.start_server();
    switch_and_wait(&primary);
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    for (checked, other) in [(&b, a_s), (&a, b_s)] {
        let r: CheckReport = check(checked, &primary, "60").run().ok().document();
        assert!(r.ok && r.problems.is_empty() && r.arrived, "{r:?}");
        assert_eq!(r.command_repo.as_deref(), checked.to_str());
        let repos: Vec<(&str, bool, bool)> = r
            .command_repos
            .iter()
            .map(|c| (c.repo.as_str(), c.given, c.arrived))
            .collect();
        let expect = if other == a_s {
            [(a_s, false, true), (b_s, true, true)]
        } else {
            [(a_s, true, true), (b_s, false, true)]
        };
        assert_eq!(repos, expect, "{r:?}");
        assert!(r
            .command_repos
            .iter()
            .all(|c| c.system_identifier == r.server_system_identifier));
    }
    // The second repository stops taking WAL (its timeline directory is not writable for the
    // server's user): check --repo A finds the segment in A, and names B.
    let tl = b.join("wal/00000001");
    fs::set_permissions(&tl, fs::Permissions::from_mode(0o500)).unwrap();
    let r: CheckReport = check(&a, &primary, "5").run().expect_code(1).document();
    assert!(r.arrived, "{r:?}");
    let c = codes(&r);
    assert!(c.contains(&"command_repo_segment_missing"), "{r:?}");
    assert!(!c.contains(&"archive_command_other_repo"), "{r:?}");
    let missing = r
        .problems
        .iter()
        .find(|p| p.code == "command_repo_segment_missing")
        .unwrap();
    assert!(missing.message.contains(b_s), "{r:?}");
    assert!(
        !r.command_repos[1].arrived && r.command_repos[0].arrived,
        "{r:?}"
    );
    fs::set_permissions(&tl, fs::Permissions::from_mode(0o700)).unwrap();

    // The same pushes joined by ';': the command's status is the last push's, so a failed
    // push into A would count as archived. Refused even while every segment arrives.
    primary.execute(&format!(
        "alter system set archive_command = '{w} push %p --repo {a_s} ; {w} push %p --repo {b_s}'",
        w = bin().display()
    ));
    primary.execute("select pg_reload_conf()");
    primary.wait_for(
        "select current_setting('archive_command') like '%;%'",
        Duration::from_secs(30),
    );
    let r: CheckReport = check(&a, &primary, "60").run().expect_code(1).document();
    assert!(r.arrived, "{r:?}");
    assert_eq!(codes(&r), ["archive_command_hides_failures"], "{r:?}");
}

#[test]
fn info_reports_timelines_counts_and_the_window() {
    let dir = short_tempdir("pgdr-info");
    let repo = dir.path().join("repo");
    // Empty: no WAL, no window.
    init(&repo, None);
    let i: InfoReport = wa(&repo).arg("info").run().ok().document();
    assert_eq!(
        (i.files, i.window.timeline, i.window.latest_lsn),
        (0, None, None)
    );
    assert!(i.system_identifier.is_none() && !i.encrypted);
    fs::remove_dir_all(&repo).unwrap();

    let primary = archiving_primary(&repo, "");
    primary.execute("create table t as select generate_series(1, 10000) g");
    let mut last = String::new();
    for _ in 0..3 {
        primary.execute("insert into t select generate_series(1, 1000)");
        last = switch_and_wait(&primary);
    }
    let i: InfoReport = wa(&repo).arg("info").run().ok().document();
    let l: ListReport = wa(&repo).arg("list").run().ok().document();
    assert_eq!(i.timelines, l.timelines);
    assert_eq!(
        (i.files, i.bytes, i.stored_bytes),
        (l.files, l.bytes, l.stored_bytes)
    );
    assert_eq!(i.kind, "local");
    assert_eq!(i.compression.as_str(), "zstd");
    assert_eq!(i.system_identifier, l.system_identifier);
    let t1 = timeline(&l, 1);
    assert_eq!(t1.last.as_deref(), Some(last.as_str()));
    assert_eq!(t1.count, segno(&last));
    let w = &i.window;
    assert_eq!(w.timeline, Some(1));
    assert_eq!(w.earliest_lsn, None);
    assert!(
        w.earliest_note.as_deref().unwrap().contains("base backup"),
        "{w:?}"
    );
    assert_eq!(w.wal_start_segment, t1.first);
    assert_eq!(w.latest_segment.as_deref(), Some(last.as_str()));
    assert_eq!(w.latest_lsn.unwrap().0, (segno(&last) + 1) * SEG);
    assert_eq!(w.latest_note, None);
    assert!(w.latest_segment_stored_at.is_some());

    // A promoted standby: timeline 2 is the newest, reached through timeline 1.
    let standby = primary.standby();
    primary.execute("insert into t values (-1)");
    standby.wait_for(
        "select count(*) = 1 from t where g = -1",
        Duration::from_secs(60),
    );
    primary.stop();
    standby.execute("select pg_promote()");
    standby.wait_for("select not pg_is_in_recovery()", Duration::from_secs(60));
    standby.execute("insert into t values (-2)");
    let last2 = switch_and_wait(&standby);
    wait_archived(&standby, &last2);
    let i: InfoReport = wa(&repo).arg("info").run().ok().document();
    let w = &i.window;
    assert_eq!(w.timeline, Some(2), "{i:?}");
    assert_eq!(w.latest_segment.as_deref(), Some(last2.as_str()), "{w:?}");
    assert_eq!(w.latest_lsn.unwrap().0, (segno(&last2) + 1) * SEG);
    assert_eq!(w.wal_start_segment, t1.first, "{w:?}");
    assert_eq!(i.timelines.len(), 2);

    // A segment of timeline 1 missing: the window starts after it.
    let second = format!("{}2", &t1.first.as_deref().unwrap()[..23]);
    fs::remove_file(repo.join("wal/00000001").join(&second)).unwrap();
    let i: InfoReport = wa(&repo).arg("info").run().ok().document();
    assert_eq!(
        i.window.wal_start.unwrap().0,
        (segno(&second) + 1) * SEG,
        "{:?}",
        i.window
    );
    assert_eq!(i.window.latest_segment.as_deref(), Some(last2.as_str()));
    assert_eq!(i.timelines[0].gaps.len(), 1, "{i:?}");
}

/// A stopped copy of a base backup directory recovering with restore_command from `repo` to
/// the end of the archive.
fn recovering_copy(backup: &Path, primary: &Cluster, repo: &Path) -> Cluster {
    let get = format!("{} get %f %p --repo {}", bin().display(), repo.display());
    recovering_cluster(backup, primary, &get)
}

/// info's latest LSN is where a recovery from a base backup through restore_command ends
/// (the switch point of the timeline it then starts).
#[test]
fn info_latest_is_where_recovery_ends() {
    let dir = short_tempdir("pgdr-infr");
    let repo = dir.path().join("repo");
    let primary = archiving_primary(&repo, "");
    let backup = dir.path().join("base");
    pgdr_testkit::run_ok(
        primary
            .cmd("pg_basebackup")
            .arg("-D")
            .arg(&backup)
            .args(["-X", "none", "-c", "fast", "-d"])
            .arg(primary.conninfo()),
    );
    primary.execute("create table t as select generate_series(1, 50000) g");
    switch_and_wait(&primary);
    // Not archived: still in the current segment.
    primary.execute("insert into t values (-1)");
    let i: InfoReport = wa(&repo).arg("info").run().ok().document();
    let latest = i.window.latest_lsn.unwrap().0;
    let mut restored = recovering_copy(&backup, &primary, &repo);
    restored.start_server();
    restored.wait_for("select not pg_is_in_recovery()", Duration::from_secs(120));
    let history = fs::read_to_string(restored.data.join("pg_wal/00000002.history")).unwrap();
    let switch: pgdr_pgformat::Lsn = history
        .lines()
        .find(|l| l.starts_with('1'))
        .and_then(|l| l.split('\t').nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        switch.0 <= latest && switch.0 > latest - SEG,
        "recovery ended at {switch}, info said {:?}",
        i.window
    );
    assert_eq!(
        restored.query_value("select count(*) from t").as_deref(),
        Some("50000")
    );
}

/// With images (snap-take --to) and a logical snapshot: the window starts at the oldest image's consistent point and
/// runs through the WAL continuous from its oldest WAL file; each image says how far it
/// reaches.
#[test]
fn info_with_images_starts_the_window_at_the_oldest_image() {
    let dir = short_tempdir("pgdr-infi");
    let repo = dir.path().join("repo");
    let primary = archiving_primary(&repo, "");
    primary.execute("create table t as select generate_series(1, 10000) g");
    let take = || {
        tool("snap-take")
            .arg("--pgdata")
            .arg(&primary.data)
            .args(["--backend", "copy", "-d", &primary.conninfo(), "--to"])
            .arg(&repo)
            .run()
            .ok()
            .document::<ImageReport>()
    };
    let a = take();
    primary.execute("insert into t select generate_series(1, 10000)");
    switch_and_wait(&primary);
    let b = take();
    let dump = tool("snap-take")
        .args(["--logical", "-d", &primary.conninfo(), "--to"])
        .arg(&repo)
        .run()
        .ok()
        .document::<pgdr_snap::logical::meta::LogicalSnapshot>();
    let last = switch_and_wait(&primary);
    let i: InfoReport = wa(&repo).arg("info").run().ok().document();
    let names: Vec<&str> = i.images.iter().map(|m| m.image.as_str()).collect();
    assert_eq!(names, [a.image.as_str(), b.image.as_str()], "{i:?}");
    // The logical snapshot is listed as snap-take --list --logical lists it.
    let dumps: Vec<(&str, _)> = i
        .dumps
        .iter()
        .map(|d| (d.snapshot.as_str(), d.consistent_at))
        .collect();
    assert_eq!(
        dumps,
        [(dump.snapshot.as_str(), dump.consistent_at)],
        "{i:?}"
    );
    let w = &i.window;
    assert_eq!(w.earliest_image.as_deref(), Some(a.image.as_str()));
    assert_eq!(w.earliest_lsn, Some(i.images[0].consistent_lsn));
    assert_eq!(w.earliest_time, Some(i.images[0].consistent_at));
    assert_eq!(w.earliest_note, None);
    assert_eq!(i.images[0].wal_start, a.snapshot.wal_start);
    assert_eq!(
        w.wal_start_segment.as_deref(),
        Some(a.snapshot.wal_start.as_str())
    );
    assert_eq!(w.latest_segment.as_deref(), Some(last.as_str()), "{w:?}");
    for m in &i.images {
        assert_eq!(m.latest_lsn, w.latest_lsn, "{m:?}");
        assert!(m.consistent_lsn < w.latest_lsn.unwrap(), "{m:?}");
    }

    // The oldest image's first WAL file gone: it reaches nothing, the window says why, the
    // newer image still reaches the end.
    let first = &a.snapshot.wal_start;
    fs::remove_file(repo.join("wal").join(&first[..8]).join(first)).unwrap();
    let i: InfoReport = wa(&repo).arg("info").run().ok().document();
    assert_eq!(i.images[0].latest_lsn, None, "{i:?}");
    assert_eq!(i.images[1].latest_lsn.unwrap().0, (segno(&last) + 1) * SEG);
    assert_eq!(i.window.latest_lsn, None);
    assert!(
        i.window.latest_note.as_deref().unwrap().contains(&a.image),
        "{:?}",
        i.window
    );
}

#[test]
fn info_and_check_on_s3() {
    let s = pgdr_testkit::skip_unless!(S3Server::start());
    s.create_bucket("infochk");
    let loc = "s3://infochk/pg";
    let was = |args: &[&str]| {
        let mut c = tool(T).arg("--repo").arg(loc).args(args);
        for (k, v) in s.env() {
            c = c.env(k, v);
        }
        c
    };
    let mut primary = Cluster::builder()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} {} push %p --repo {loc}'",
            s.env_prefix(),
            bin().display()
        ))
        .init_only();
    let r: InitReport = was(&["init", "--pgdata"])
        .arg(&primary.data)
        .run()
        .ok()
        .document();
    assert!(r.system_identifier.is_some());
    primary.start_server();
    let r: CheckReport = was(&["check", "--timeout", "60", "-d"])
        .arg(primary.conninfo())
        .run()
        .ok()
        .document();
    assert!(r.ok && r.arrived, "{r:?}");
    assert_eq!(r.command_repo.as_deref(), Some(loc));
    // The AWS keys in archive_command are not printed.
    let cmd = r.archive_command.unwrap();
    let secret = s
        .env()
        .into_iter()
        .find(|(k, _)| *k == "AWS_SECRET_ACCESS_KEY")
        .unwrap()
        .1;
    assert!(!cmd.contains(&secret) && cmd.contains("********"), "{cmd}");
    let last = switch_and_wait(&primary);
    let i: InfoReport = was(&["info"]).run().ok().document();
    assert_eq!(i.kind, "s3");
    assert_eq!(i.repo, loc);
    let t1 = i.timelines.iter().find(|t| t.timeline == 1).unwrap();
    assert_eq!(t1.last.as_deref(), Some(last.as_str()));
    assert_eq!(i.window.latest_segment.as_deref(), Some(last.as_str()));
    assert_eq!(i.window.latest_lsn.unwrap().0, (segno(&last) + 1) * SEG);
}
