//! Snapshot images in a repository (SPEC "Snapshot images and restores in another place") on
//! real parts: a primary archiving through wal-archive, a standby on a zfs-fuse pool, a btrfs
//! loop mount or a plain directory, `snap-take --to` the repository, and `snap-clone --repo
//! … --target` bringing up a new instance from the repository alone, after the source's
//! storage is gone. Also: the second image sends only what changed, retention of images keeps
//! what a later clone needs, kill -9 during an upload and a restore, tampered objects.
//!
//! The drill crosses into another region for real: the newest image is stored in an encrypted
//! S3 repository (moto) through `snap-take - --to`, the WAL and the older image follow with
//! `wal-archive copy`, and the new instances come from that repository alone.

mod image_support;
mod snap_support;

use image_support::{
    assert_same_files, pieces, postgres_running_under, tamper_a_piece, Far, Region, ROWS,
};
use pgdr_clone::doc::{CloneReport, DestroyReport};
use pgdr_repo::image::manifest::Manifest;
use pgdr_snap::doc::{ImageReport, PruneReport, SnapshotList};
use pgdr_snap::SnapshotMeta;
use pgdr_testkit::{bin_dir, skip_unless, tool, BtrfsMount, S3Server, ToolCommand, ZfsPool};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rows(doc: &CloneReport) -> Vec<i64> {
    let mut c = pgdr_testkit::connect_at(&doc.socket_dir, doc.port);
    let n: i64 = c.query_one("select count(*) from t", &[]).unwrap().get(0);
    let b: Vec<i64> = c
        .query("select distinct batch::int8 from t order by 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(n, b.len() as i64 * ROWS);
    b
}

/// Checks the second image of a pair sent exactly the pieces the first did not have.
fn assert_sends_only_changes(first: &Manifest, second: &ImageReport, m2: &Manifest) {
    let new: HashSet<String> = pieces(m2).difference(&pieces(first)).cloned().collect();
    assert_eq!(second.objects_sent, new.len() as u64, "{second:?}");
    assert_eq!(second.objects_reused, second.objects - second.objects_sent);
    assert!(
        second.objects_sent * 2 < second.objects,
        "most pieces were unchanged, yet {} of {} were sent",
        second.objects_sent,
        second.objects
    );
}

/// The drill in another region: images of a standby on ZFS, the newest also stored straight
/// into an encrypted S3 repository and the rest copied there, the pool and the local
/// repository destroyed, new instances at T and at the end of the WAL from S3 alone.
#[test]
fn zfs_drill_in_another_region() {
    let pool = skip_unless!(ZfsPool::create("1G"));
    let mnt = pool.create_dataset("pg");
    let mut r = Region::new(&mnt.join("data"), &[], None);
    // Files changed within a second of an image's newest change are read again by the next
    // image (their stamps are not trusted): let the base backup's files age past that
    // (with room for a file system that keeps whole seconds).
    std::thread::sleep(Duration::from_millis(2500));
    r.settle();
    let a = r.image();
    assert!(!a.already_stored);
    assert_eq!((a.objects_sent, a.objects_reused), (a.objects, 0), "{a:?}");
    assert_eq!(a.snapshot.backend, "zfs");
    // The view the image was read from is gone (no pgdr-view dataset left).
    let out = Command::new("zfs")
        .args(["list", "-H", "-o", "name"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pgdr-view-"));
    r.batch(); // 2
    r.mark("t");
    r.batch(); // 3
    r.settle();
    // The second image, through the pipeline: snap-take | snap-take - --to.
    let snap = r.take().run().ok();
    let b = r.image_of(&snap.stdout);
    assert_eq!(b.snapshot, snap.document::<SnapshotMeta>());
    let (ma, mb) = (r.manifest(&a.image), r.manifest(&b.image));
    assert_sends_only_changes(&ma, &b, &mb);
    // Files unchanged since a were not read (zfs keeps inode numbers and times in its
    // snapshots and clones), and b holds every file as reading it does.
    assert_eq!(b.stamps_from.as_deref(), Some(a.image.as_str()));
    assert_same_files(&b, &mb, &r.read_in_full(&snap.stdout));
    // The manifest alone says what the image is and where its WAL starts.
    let meta = pgdr_snap::image::meta_of(&mb).unwrap();
    assert_eq!(meta, b.snapshot);
    assert!(mb.files.iter().any(|e| e.path == "global/pg_control"));
    r.batch(); // 4
    r.archive_all();
    let listed = r.list();
    let images: Vec<_> = listed
        .snapshots
        .iter()
        .filter(|s| s.kind == "image")
        .collect();
    assert_eq!(images.len(), 2, "{listed:?}");
    for i in &images {
        let w = i.window.as_ref().expect("a window");
        assert_eq!(w.from, i.consistent_at);
        assert!(w.to_lsn >= w.from_lsn);
    }
    // The other region's repository: S3 (moto), encrypted. The newest image goes there
    // through the pipeline, the WAL and the older image through wal-archive copy.
    let far = Far::init(skip_unless!(S3Server::start()), &r.primary);
    let in_s3 = |t: ToolCommand| far.cmd(t);
    let far_key = far.key.1.clone();
    let far = far.repo.as_str();
    let direct = in_s3(tool("snap-take"))
        .args(["-", "--to", far])
        .stdin(snap.stdout.clone())
        .run()
        .ok()
        .document::<ImageReport>();
    assert_eq!(direct.image, b.image);
    assert_eq!(direct.objects_sent, direct.objects, "{direct:?}");
    let copied = in_s3(tool("wal-archive"))
        .args(["copy", "--repo", &r.repo, "--to", far])
        .run()
        .ok()
        .document::<pgdr_wal::doc::CopyReport>();
    assert!(copied.failed.is_empty(), "{copied:?}");
    assert!(
        copied.present > 0,
        "b's pieces are in S3 already: {copied:?}"
    );
    // The source's storage goes: standby stopped, pool destroyed, local repository removed.
    let standby_data = r.standby().data.clone();
    drop(r.standby.take());
    drop(pool);
    assert!(!standby_data.exists());
    std::fs::remove_dir_all(&r.repo).unwrap();
    let place = pgdr_testkit::short_tempdir("pgdr-dr-");
    if pgdr_core::owner::is_root() {
        // An identity file the clone's server (postgres) cannot read is refused before
        // anything is restored, not when recovery asks for its first segment.
        let root_key = place.path().join("root.key");
        std::fs::copy(&far_key, &root_key).unwrap();
        let refused = in_s3(r.sc())
            .env("PGDR_IDENTITY", &root_key)
            .args(["--repo", far, "--before", &r.at("t"), "--target"])
            .arg(place.path().join("dr"))
            .args(["--name", "dr", "--start", "--wait", "120"])
            .run()
            .expect_code(1);
        assert!(
            refused
                .stderr
                .starts_with("snap-clone: the clone's server cannot read identity file"),
            "{}",
            refused.stderr
        );
        assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
        assert!(!place.path().join("dr").exists());
        assert!(r.clones().clones.is_empty());
        std::fs::remove_file(&root_key).unwrap();
        // The server's own SSH key (mode 600) that is no recipient of the repository: refused
        // as early, naming the file.
        let stranger = place.path().join("stranger_ssh");
        pgdr_testkit::run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&stranger),
        );
        pgdr_testkit::chown_to_pg_user(&stranger);
        let refused = in_s3(r.sc())
            .env("PGDR_IDENTITY", &stranger)
            .args(["--repo", far, "--before", &r.at("t"), "--target"])
            .arg(place.path().join("dr"))
            .args(["--name", "dr", "--start", "--wait", "120"])
            .run()
            .expect_error(1, "snap-clone");
        assert!(
            refused.stderr.contains(&format!(
                "the identity in {} is not one of the repository's recipients",
                stranger.display()
            )),
            "{}",
            refused.stderr
        );
        assert!(!place.path().join("dr").exists());
        assert!(r.clones().clones.is_empty());
        for f in [stranger.clone(), stranger.with_extension("pub")] {
            std::fs::remove_file(f).unwrap();
        }
    }
    let doc = in_s3(r.sc())
        .args(["--repo", far, "--before", &r.at("t"), "--target"])
        .arg(place.path().join("dr"))
        .args(["--name", "dr", "--start", "--wait", "120"])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(
        (doc.backend.as_str(), doc.snapshot.as_str()),
        ("image", a.image.as_str())
    );
    assert_eq!(doc.recovery.state, "paused", "{doc:?}");
    // Its restore_command names the identity file: a restart without snap-clone's
    // environment still decrypts the WAL.
    let auto = std::fs::read_to_string(place.path().join("dr/postgresql.auto.conf")).unwrap();
    let identity = format!("--identity {}", far_key.canonicalize().unwrap().display());
    assert!(auto.contains(&identity), "{auto}");
    assert_eq!(rows(&doc), r.expected(&r.at("t")));
    assert_eq!(rows(&doc), vec![1, 2]);
    // Everything the repository has, from the newest image.
    let all = in_s3(r.sc())
        .args(["--repo", far, "--latest", "--recovery-target", "latest"])
        .arg("--target")
        .arg(place.path().join("all"))
        .args(["--name", "all", "--start", "--wait", "120"])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(all.snapshot, b.image);
    assert_eq!(rows(&all), vec![1, 2, 3, 4]);
    let listed = r.clones();
    assert_eq!(listed.clones.len(), 2);
    assert!(listed
        .clones
        .iter()
        .all(|c| c.backend == "image" && c.running));
    for name in ["dr", "all"] {
        let gone = r
            .sc()
            .args(["--destroy", name])
            .run()
            .ok()
            .document::<DestroyReport>();
        assert!(gone.stopped && gone.existed);
    }
    assert!(std::fs::read_dir(place.path()).unwrap().next().is_none());
    assert!(!postgres_running_under(place.path()));
}

/// PATH with the tools first.
fn tools_path() -> std::ffi::OsString {
    let mut dirs = vec![bin_dir()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// The pieces the repository holds (their SHA-256), through the repository's own listing.
fn stored_pieces(repo: &str) -> HashSet<String> {
    let r = pgdr_repo::Repo::open(Path::new(repo)).unwrap();
    r.store()
        .list(pgdr_repo::image::DATA_PREFIX)
        .unwrap()
        .objects
        .iter()
        .filter_map(|o| pgdr_repo::image::digest_of(&o.key).map(str::to_string))
        .collect()
}

/// Waits until `cond`, failing after a minute.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// kill -9 during an upload and during a restore (btrfs), then retention of images keeping
/// what a later clone needs.
#[test]
fn btrfs_kill_and_prune() {
    let fs = skip_unless!(BtrfsMount::create("2G"));
    let sub = fs.subvolume("pg");
    let mut r = Region::new(&sub.join("data"), &[], Some(10));
    r.settle();
    let a = r.image();
    r.batch(); // 2
    r.settle();
    // A snapshot whose upload is killed part-way.
    let snap = r.take().run().ok();
    let name = snap.document::<SnapshotMeta>().snapshot;
    let before = stored_pieces(&r.repo);
    let mut child = Command::new(bin_dir().join("snap-take"))
        .args(["-", "--to", &r.repo, "--parallel", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(snap.stdout.as_bytes())
            .unwrap();
    }
    wait_until("pieces of the second image", || {
        stored_pieces(&r.repo).len() >= before.len() + 3
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // No image that looks complete: not listed, no manifest.
    assert!(!r.list().snapshots.iter().any(|s| s.snapshot == name));
    let store = sub.parent().unwrap().join(".pgdr-snapshots/pg");
    let views = || {
        std::fs::read_dir(&store)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".view-"))
            .count()
    };
    assert_eq!(views(), 1, "the killed run's view is left");
    let sent_before_kill = stored_pieces(&r.repo).len() - before.len();
    // The re-run finishes it, reusing what was sent, and removes the dead run's view.
    let b = r.image_of(&snap.stdout);
    assert!(!b.already_stored);
    assert!(
        b.objects_reused as usize >= sent_before_kill,
        "{b:?}, {sent_before_kill} sent before the kill"
    );
    assert_eq!(views(), 0);
    let mb = r.manifest(&b.image);
    assert_eq!(
        (b.objects_sent + b.objects_reused) as usize,
        pieces(&mb).len()
    );
    r.mark("t");
    r.batch(); // 3
    r.settle();
    let snap = r.take().run().ok();
    let c = r.image_of(&snap.stdout);
    // btrfs snapshots keep inode numbers and times too: files unchanged since b not read.
    assert_eq!(c.stamps_from.as_deref(), Some(b.image.as_str()));
    assert_same_files(&c, &r.manifest(&c.image), &r.read_in_full(&snap.stdout));
    r.batch(); // 4
    r.archive_all();

    // A restore killed part-way: its clone is recorded, and --destroy removes it.
    let place = pgdr_testkit::short_tempdir("pgdr-kr-");
    let target = place.path().join("k");
    let mut child = Command::new(bin_dir().join("snap-clone"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PGDR_CLONE_DIR", r.registry.path())
        .args(["--repo", &r.repo, "--snapshot", &c.image, "--parallel", "1"])
        .arg("--target")
        .arg(&target)
        .args(["--name", "k", "--start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the restore to begin", || target.join("base").is_dir());
    child.kill().unwrap();
    child.wait().unwrap();
    let listed = r.clones();
    assert_eq!(listed.clones.len(), 1);
    assert_eq!(listed.clones[0].state, "creating");
    assert!(!postgres_running_under(&target));
    let gone = r
        .sc()
        .args(["--destroy", "k"])
        .run()
        .ok()
        .document::<DestroyReport>();
    assert!(gone.existed && !gone.stopped);
    assert!(!target.exists());

    // Retention: a dry run removes nothing and says what would go.
    let only_a: HashSet<String> = pieces(&r.manifest(&a.image))
        .difference(
            &pieces(&mb)
                .union(&pieces(&r.manifest(&c.image)))
                .cloned()
                .collect(),
        )
        .cloned()
        .collect();
    let dry = tool("snap-prune")
        .args(["--repo", &r.repo, "--keep-last", "2", "--dry-run"])
        .run()
        .ok()
        .document::<PruneReport>();
    assert!(dry.dry_run);
    assert_eq!(dry.destroyed.len(), 1);
    assert_eq!(dry.destroyed[0].snapshot, a.image);
    assert_eq!(dry.objects.unwrap().removed, only_a.len() as u64);
    assert_eq!(r.list().snapshots.len(), 3);
    // For real, piped into wal-archive prune: the WAL before b goes too.
    let kept_count = stored_pieces(&r.repo).len();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "snap-prune --repo {repo} --keep-last 2 | wal-archive prune - --repo {repo}",
            repo = r.repo
        ))
        .env("PATH", tools_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wal: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(wal["bound"], serde_json::json!(b.snapshot.wal_start));
    let names: Vec<String> = r.list().snapshots.into_iter().map(|s| s.snapshot).collect();
    assert_eq!(names, vec![b.image.clone(), c.image.clone()]);
    let left = stored_pieces(&r.repo);
    assert_eq!(left.len(), kept_count - only_a.len());
    assert!(pieces(&mb).is_subset(&left));
    // A later clone at T needs image b and the WAL from its wal_start: both are there.
    let doc = r
        .sc()
        .args(["--repo", &r.repo, "--before", &r.at("t"), "--target"])
        .arg(place.path().join("t"))
        .args(["--name", "t", "--start", "--wait", "120"])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(doc.snapshot, b.image);
    assert_eq!(rows(&doc), vec![1, 2]);
    r.sc().args(["--destroy", "t"]).run().ok();
}

/// The copy backend: the whole pipeline of the SPEC, a restored tree equal to the snapshot,
/// and tampered objects refused before anything starts.
#[test]
fn copy_pipeline_restored_tree_and_tampering() {
    let dir = pgdr_testkit::short_tempdir("pgdr-ic-");
    let mut r = Region::new(&dir.path().join("data"), &["--backend", "copy"], None);
    r.settle();
    let a = r.image();
    assert!(a.snapshot.backup.is_some(), "backup mode");
    // A --to that is no repository: refused before a snapshot is taken.
    let local = || {
        tool("snap-take")
            .args(["--list", "--backend", "copy", "--pgdata"])
            .arg(&r.standby().data)
            .run()
            .ok()
            .document::<SnapshotList>()
            .snapshots
            .len()
    };
    let before = local();
    let out = r
        .take()
        .args(["--to", "/nonexistent/repo"])
        .run()
        .expect_error(1, "snap-take");
    assert!(out.stderr.contains("not an initialised"), "{}", out.stderr);
    assert_eq!(local(), before);
    r.batch();
    r.settle();
    // snap-take | snap-take - --to R | snap-prune - --repo R --keep-daily 30 | wal-archive prune -
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "snap-take --pgdata {data} --backend copy -d '{conn}' | snap-take - --to {repo} \
             | snap-prune - --repo {repo} --keep-daily 30 | wal-archive prune - --repo {repo}",
            data = r.standby().data.display(),
            conn = r.standby().conninfo(),
            repo = r.repo
        ))
        .env("PATH", tools_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wal: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(wal["tool"], "wal-archive");
    assert_eq!(wal["bound"], serde_json::json!(a.snapshot.wal_start));
    let listed = r.list();
    assert_eq!(listed.snapshots.len(), 2);
    let b_name = listed.snapshots[1].snapshot.clone();

    // A restore without --start: the tree is the snapshot's, file for file.
    let place = pgdr_testkit::short_tempdir("pgdr-it-");
    let doc = r
        .sc()
        .args(["--repo", &r.repo, "--snapshot", &a.image, "--target"])
        .arg(place.path().join("plain"))
        .args(["--name", "plain"])
        .run()
        .ok()
        .document::<CloneReport>();
    assert_eq!(doc.recovery.state, "configured");
    let snapdir = PathBuf::from(&a.snapshot.location);
    let mut compared = 0;
    for e in &r.manifest(&a.image).files {
        let (p, q) = (snapdir.join(&e.path), doc.path.join(&e.path));
        if e.path.starts_with("base/") && q.is_file() {
            assert_eq!(
                std::fs::read(&p).unwrap(),
                std::fs::read(&q).unwrap(),
                "{}",
                e.path
            );
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
                std::fs::metadata(&q).unwrap().permissions().mode() & 0o7777
            );
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared}");
    r.sc().args(["--destroy", "plain"]).run().ok();

    // A tampered piece: one line, exit 1, nothing started, the directory removed.
    let (t_path, t_piece) = tamper_a_piece(&r.repo, &b_name);
    let target = place.path().join("bad");
    let out = r
        .sc()
        .args(["--repo", &r.repo, "--snapshot", &b_name, "--target"])
        .arg(&target)
        .args(["--name", "bad", "--start"])
        .run()
        .expect_error(1, "snap-clone");
    assert!(out.stderr.contains(&t_path), "{}", out.stderr);
    assert!(out.stderr.contains(&t_piece), "{}", out.stderr);
    assert!(!target.exists());
    assert!(r.clones().clones.is_empty());
    assert!(!postgres_running_under(place.path()));
    // A tampered manifest: the image cannot be listed, cloned, or pruned around.
    let mpath = Path::new(&r.repo).join("images/manifests").join(&b_name);
    let mut mb = std::fs::read(&mpath).unwrap();
    let at = mb.len() / 2;
    mb[at] ^= 0x55;
    std::fs::write(&mpath, &mb).unwrap();
    let out = tool("snap-take")
        .args(["--list", "--repo", &r.repo])
        .run()
        .expect_error(1, "snap-take");
    assert!(out.stderr.contains(&b_name), "{}", out.stderr);
    let before = stored_pieces(&r.repo);
    tool("snap-prune")
        .args(["--repo", &r.repo, "--keep-last", "1"])
        .run()
        .expect_error(1, "snap-prune");
    assert_eq!(stored_pieces(&r.repo), before, "nothing removed");
    let out = r
        .sc()
        .args(["--repo", &r.repo, "--latest", "--target"])
        .arg(&target)
        .args(["--name", "bad"])
        .run()
        .expect_error(1, "snap-clone");
    assert!(out.stderr.contains("manifest"), "{}", out.stderr);
    assert!(!target.exists());
}
