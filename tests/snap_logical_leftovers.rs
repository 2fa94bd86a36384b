//! What a snap-take --logical run killed with SIGKILL leaves behind, on a real PostgreSQL
//! server, a real moto S3 and age: pg_dump's plaintext scratch copy in $TMPDIR (for an
//! encrypted repository) and the staging directory in a snapshot directory. The next
//! snap-take --logical or snap-prune --logical removes it and says so, a dry run lists it
//! only, pg_dump does not outlive the run, and a user's own look-alikes are left alone. And a
//! logical snapshot's document given to `snap-take - --to` is refused with one line.

mod logical_support;

use logical_support::*;
use pgdr_core::holder::Holder;
use pgdr_snap::logical::meta::LogicalSnapshot;
use pgdr_snap::logical::prune::LogicalPruneReport;
use pgdr_testkit::{age_keygen, short_tempdir, skip_unless, tool, Cluster, S3Server, ToolCommand};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// Polls until `find` returns something (at most [`WAIT`]).
fn poll<T>(what: &str, mut find: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + WAIT;
    loop {
        if let Some(t) = find() {
            return t;
        }
        assert!(Instant::now() < until, "no {what} within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The entries of `dir` whose names `keep` accepts.
fn names(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn shown_of(p: &Path) -> String {
    p.display().to_string()
}

/// Whether a process whose command line mentions `path` runs (pg_dump's --file=…).
fn writer_running(path: &Path) -> bool {
    let needle = path.display().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
    })
}

/// Starts `take` while a session holds job_info's lock, so pg_dump waits in the middle of the
/// dump; waits for `staging` to find what the run made, then kills the run with SIGKILL and
/// checks that its pg_dump is gone with it (it would write the whole dump otherwise) before
/// the lock is released. Returns what `staging` found.
fn kill_in_the_middle(
    c: &Cluster,
    take: ToolCommand,
    staging: impl FnMut() -> Option<PathBuf>,
) -> PathBuf {
    let mut locker = client(c, "app");
    locker
        .batch_execute("begin; lock table job_info in access exclusive mode")
        .unwrap();
    let mut cmd = take.into_command();
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    c.wait_for(
        "select exists (select from pg_stat_activity where application_name = 'pg_dump' and wait_event_type = 'Lock')",
        WAIT,
    );
    let found = poll("staging directory", staging);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        found.exists(),
        "{} went with the killed run",
        found.display()
    );
    poll("pg_dump stopped with its run", || {
        (!writer_running(&found)).then_some(())
    });
    drop(locker);
    c.wait_for(
        "select not exists (select from pg_stat_activity where application_name = 'pg_dump')",
        WAIT,
    );
    found
}

/// A run dumping into an encrypted repository on S3, killed: its scratch copy (plaintext) is
/// in $TMPDIR, 0700, marked with its owner; snap-prune --dry-run lists it and leaves it; the
/// next snap-take --logical removes it and dump files left without a manifest, reports them
/// in removed_leftovers with one note each, and
/// leaves a user's own pgdr-dump-* directory, one whose owner runs, and a symlink alone.
#[test]
fn a_killed_dump_into_an_encrypted_repository_is_removed_by_the_next_run() {
    let c = Cluster::start();
    app(&c, "app");
    let s3 = skip_unless!(S3Server::start());
    s3.create_bucket("dumps");
    let d = short_tempdir("pgdr-lx");
    let key = d.path().join("key");
    let recipient = age_keygen(&key);
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let repo = "s3://dumps/pg";
    let run = |name: &str| {
        let mut t = tool(name).env("TMPDIR", &tmp).env("PGDR_IDENTITY", &key);
        for (k, v) in s3.env() {
            t = t.env(k, v);
        }
        t
    };
    run("wal-archive")
        .args(["init", "--repo", repo, "-d", &conninfo(&c, "app")])
        .args(["--encrypt-to", &recipient])
        .run()
        .ok();
    let take = || {
        run("snap-take").args([
            "--logical",
            "-d",
            &conninfo(&c, "app"),
            "--jobs",
            "2",
            "--to",
            repo,
        ])
    };
    let scratch = kill_in_the_middle(&c, take(), || {
        names(&tmp, |n| n.starts_with("pgdr-dump-"))
            .into_iter()
            .find(|p| p.join("pgdr-owner").is_file() && p.join("dump").is_dir())
    });
    let mode = std::fs::metadata(&scratch).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", scratch.display());

    // Look-alikes that are not a killed run's: a user's own directory, one whose owner is
    // alive (this test), and a symlink to a copy of the leftover.
    let own = tmp.join("pgdr-dump-mine");
    std::fs::create_dir(&own).unwrap();
    std::fs::write(own.join("notes"), "mine").unwrap();
    let live = tmp.join("pgdr-dump-live");
    std::fs::create_dir(&live).unwrap();
    std::fs::write(live.join("pgdr-owner"), Holder::me().to_line()).unwrap();
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::copy(scratch.join("pgdr-owner"), elsewhere.join("pgdr-owner")).unwrap();
    let link = tmp.join("pgdr-dump-link");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let decoys = [&own, &live, &link, &elsewhere];
    // Dump files without a manifest, as a run killed while storing leaves them (stored under
    // the repository's dumps.lock), and an object under dumps/ that no run names so.
    let orphan = "pg/dumps/pgdr-20200101T000000Z/files/toc.dat";
    s3.put_object("dumps", orphan, b"a file of a dump never published");
    let foreign = "pg/dumps/notes/readme";
    s3.put_object("dumps", foreign, b"mine");
    let gone = vec![
        shown_of(&scratch),
        "dumps/pgdr-20200101T000000Z".to_string(),
    ];

    let shown = shown_of(&scratch);
    let dry = run("snap-prune")
        .args(["--logical", "--repo", repo, "--keep-last", "1", "--dry-run"])
        .run()
        .ok();
    assert_eq!(dry.document::<LogicalPruneReport>().leftovers_removed, gone);
    assert!(
        dry.stderr.contains(&format!(
            "snap-prune: note: would remove {shown}: a partial dump left by a run that was killed"
        )),
        "{}",
        dry.stderr
    );
    assert!(scratch.exists(), "a dry run removed {shown}");
    assert!(s3.object("dumps", orphan).is_some());

    let out = take().run().ok();
    let snap = out.document::<LogicalSnapshot>();
    assert_eq!(snap.removed_leftovers, gone);
    assert!(
        out.stderr.contains(&format!(
            "snap-take: note: removed {shown}: a partial dump left by a run that was killed"
        )),
        "{}",
        out.stderr
    );
    assert!(!scratch.exists(), "{shown} is still there");
    for p in decoys {
        assert!(p.symlink_metadata().is_ok(), "{} was removed", p.display());
    }
    assert!(own.join("notes").exists() && live.join("pgdr-owner").exists());
    assert!(s3.object("dumps", orphan).is_none());
    assert!(s3.object("dumps", foreign).is_some());
    // The run's own scratch copy is gone too; the look-alikes are all that is left.
    assert_eq!(
        names(&tmp, |_| true),
        [link.clone(), live.clone(), own.clone()]
    );
    // The next run has nothing to remove, and says nothing.
    let again = take().run().ok();
    assert!(again
        .document::<LogicalSnapshot>()
        .removed_leftovers
        .is_empty());
    assert!(!again.stderr.contains("note:"), "{}", again.stderr);
}

/// A run dumping into a snapshot directory, killed: its hidden staging directory stays;
/// snap-prune --logical --dry-run lists it, snap-prune --logical removes it (the day it was
/// left) and reports it with one note; look-alikes (another name, a file, a symlink) stay.
#[test]
fn a_killed_dump_into_a_snapshot_directory_is_removed_by_snap_prune() {
    let c = Cluster::start();
    app(&c, "app");
    let d = short_tempdir("pgdr-ly");
    let dir = d.path().join("snaps");
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let take = snap_take()
        .env("TMPDIR", &tmp)
        .args(["--logical", "-d", &conninfo(&c, "app"), "--snapshot-dir"])
        .arg(&dir);
    let staging = kill_in_the_middle(&c, take, || {
        dir.is_dir()
            .then(|| names(&dir, |n| n.contains(".pgdr-tmp.")).pop())
            .flatten()
    });
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let decoys = [
        dir.join(".notes.pgdr-tmp.12"),
        dir.join(".pgdr-20200101T000000Z.pgdr-tmp.x1"),
        dir.join(".pgdr-20200101T000001Z.pgdr-tmp.13"),
        dir.join(".pgdr-20200101T000002Z.pgdr-tmp.14"),
    ];
    std::fs::create_dir(&decoys[0]).unwrap();
    std::fs::create_dir(&decoys[1]).unwrap();
    std::fs::write(&decoys[2], "a file").unwrap();
    std::os::unix::fs::symlink(&elsewhere, &decoys[3]).unwrap();

    let shown = staging.display().to_string();
    let prune = |extra: &[&str]| {
        tool("snap-prune")
            .env("TMPDIR", &tmp)
            .args(["--logical", "--snapshot-dir"])
            .arg(&dir)
            .args(["--keep-last", "1"])
            .args(extra)
            .run()
            .ok()
    };
    let dry = prune(&["--dry-run"]);
    assert_eq!(
        dry.document::<LogicalPruneReport>().leftovers_removed,
        vec![shown.clone()]
    );
    assert!(
        dry.stderr.contains(&format!("would remove {shown}")),
        "{}",
        dry.stderr
    );
    assert!(staging.exists());
    let r = prune(&[]);
    assert_eq!(
        r.document::<LogicalPruneReport>().leftovers_removed,
        vec![shown.clone()]
    );
    assert!(
        r.stderr.contains(&format!(
            "snap-prune: note: removed {shown}: a partial dump left by a run that was killed"
        )),
        "{}",
        r.stderr
    );
    assert!(!staging.exists(), "{shown} is still there");
    for p in &decoys {
        assert!(p.symlink_metadata().is_ok(), "{} was removed", p.display());
    }
    assert!(elsewhere.exists());
}

/// `snap-take - --to REPO` given a logical snapshot's document: one line that says what it is
/// and what to do, exit 2, nothing stored.
#[test]
fn a_logical_snapshot_is_not_stored_as_an_image() {
    let c = Cluster::start();
    app(&c, "app");
    let d = short_tempdir("pgdr-lz");
    let repo = d.path().join("repo");
    tool("wal-archive")
        .args(["init", "--repo"])
        .arg(&repo)
        .args(["-d", &conninfo(&c, "app")])
        .run()
        .ok();
    let doc = snap_take()
        .args([
            "--logical",
            "-d",
            &conninfo(&c, "app"),
            "--table",
            "job_info",
        ])
        .args(["--snapshot-dir"])
        .arg(d.path().join("snaps"))
        .run()
        .ok();
    let name = doc.document::<LogicalSnapshot>().snapshot;
    let out = snap_take()
        .args(["-", "--to"])
        .arg(&repo)
        .stdin(doc.stdout.clone())
        .run()
        .expect_error(2, "snap-take");
    assert!(
        out.stderr.starts_with(&format!(
            "snap-take: a logical snapshot cannot be stored as an image: {name} is a pg_dump of one database"
        )) && out.stderr.contains("snap-take --logical"),
        "{}",
        out.stderr
    );
}
