//! What a snap-take killed with SIGKILL part-way leaves on a real btrfs loop mount and a real
//! zfs-fuse pool, and how the next snap-take or snap-prune removes it (and nothing else).
//!
//! The kill moment: the windows are milliseconds wide, so each killed run reaches the real
//! btrfs or zfs command through a shim on its PATH that runs the real command and then, after
//! the chosen subcommand, waits until the test lets it go. The test SIGKILLs snap-take while
//! it waits: the state left is exactly what a run killed right after that command leaves,
//! every time.

use pgdr_snap::backend::Backend;
use pgdr_snap::doc::PruneReport;
use pgdr_snap::{BackendKind, SnapshotMeta};
use pgdr_testkit::{skip_unless, tool, BtrfsMount, Cluster, ZfsPool};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A directory holding a shim for `program` that runs the real one and, after a subcommand
/// named in PGDR_TEST_PAUSE (btrfs: "subvolume-snapshot"), creates `paused-KEY` and waits for
/// `go-KEY`.
struct Pause {
    dir: tempfile::TempDir,
}

impl Pause {
    fn new(program: &str) -> Pause {
        let real = run(Command::new("sh").args(["-c", &format!("command -v {program}")]));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let script = format!(
            "#!/bin/sh\n\"{}\" \"$@\"\nrc=$?\nkey=\"$1\"\n[ \"$1\" = subvolume ] && key=\"$1-$2\"\n\
             case \" $PGDR_TEST_PAUSE \" in\n*\" $key \"*)\n  : > \"{d}/paused-$key\"\n  \
             while [ ! -e \"{d}/go-$key\" ]; do sleep 0.05; done ;;\nesac\nexit $rc\n",
            real.trim()
        );
        let shim = dir.path().join(program);
        std::fs::write(&shim, script).unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        Pause { dir }
    }

    fn go(&self, key: &str) {
        std::fs::write(self.dir.path().join(format!("go-{key}")), "").unwrap();
    }
}

fn run(cmd: &mut Command) -> String {
    pgdr_testkit::run_ok(cmd)
}

/// Runs snap-take of `pgdata` with its `program` reached through a [`Pause`] shim that stops
/// after each of `keys` in turn; calls `at(key)` there, lets it go on, and SIGKILLs snap-take
/// at the last one.
fn take_killed_after(program: &str, pgdata: &Path, keys: &[&str], at: impl Fn(&str)) {
    let pause = Pause::new(program);
    let path = std::env::join_paths(
        std::iter::once(pause.dir.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut child = Command::new(pgdr_testkit::bin_dir().join("snap-take"))
        .arg("--pgdata")
        .arg(pgdata)
        .env("PATH", &path)
        .env("PGDR_CONFIG", "")
        .env("PGDR_TEST_PAUSE", keys.join(" "))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for (i, key) in keys.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pause.dir.path().join(format!("paused-{key}")).exists() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "snap-take ended before {program} {key}"
            );
            assert!(Instant::now() < deadline, "no {program} {key} within 60s");
            std::thread::sleep(Duration::from_millis(20));
        }
        at(key);
        if i + 1 == keys.len() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        }
        pause.go(key);
    }
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");
}

/// The entries of `store` named `.*.partial`, sorted.
fn partials(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with('.') && n.ends_with(".partial")
        })
        .collect();
    v.sort();
    v
}

/// The stderr lines of `tool` noting a removal.
fn notes(tool: &str, stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{tool}: note: ")))
        .map(str::to_string)
        .collect()
}

/// btrfs: a snap-take killed right after `btrfs subvolume snapshot -r` leaves the read-only
/// subvolume `.NAME.partial` in the store (the name appears only once the sidecar is
/// written); one killed between the sidecar and the rename leaves it with `NAME.json`. A dry
/// run lists both and removes nothing; the next snap-take removes both with one note each and
/// reports them; a complete snapshot and a user's subvolumes in the store, however named,
/// stay. (Before: the killed run left an unlisted read-only subvolume NAME that nothing
/// removed or reported.)
#[test]
fn a_killed_btrfs_snap_take_is_removed_by_the_next_run() {
    let fs = skip_unless!(BtrfsMount::create("1G"));
    let sub = fs.subvolume("pg").canonicalize().unwrap();
    let c = Cluster::builder().data_dir(sub.join("data")).start();
    c.execute("create table t as select generate_series(1, 1000) x");
    let store = sub.parent().unwrap().join(".pgdr-snapshots").join("pg");
    let kept = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .run()
        .ok()
        .document::<SnapshotMeta>();
    assert_eq!(kept.backend, "btrfs");

    take_killed_after("btrfs", &c.data, &["subvolume-snapshot"], |_| {});
    let left = partials(&store);
    assert_eq!(left.len(), 1, "{left:?}");
    let killed = left[0].clone();
    assert_eq!(
        std::fs::metadata(&killed).unwrap().ino(),
        256,
        "a subvolume"
    );
    let name = killed.file_name().unwrap().to_string_lossy();
    let name = name.trim_start_matches('.').trim_end_matches(".partial");
    assert!(!store.join(format!("{name}.json")).exists());
    assert!(
        !store.join(name).exists(),
        "the name appears only when complete"
    );

    // Killed between writing the sidecar and the rename: no command runs between them to
    // pause at, so the state is made with the command the code runs, and a sidecar.
    let snap = |dst: &Path| {
        run(Command::new("btrfs")
            .args(["subvolume", "snapshot", "-r"])
            .arg(&sub)
            .arg(dst))
    };
    let with_sidecar = store.join(".pgdr-20200101T000000Z.partial");
    snap(&with_sidecar);
    let sidecar = store.join("pgdr-20200101T000000Z.json");
    std::fs::copy(store.join(format!("{}.json", kept.snapshot)), &sidecar).unwrap();
    // A user's own subvolumes in the store: one with a similar name, one named like a
    // snapshot but not partial.
    let mine = store.join(".mine.partial");
    snap(&mine);
    let named_like = store.join("pgdr-20200102T000000Z");
    snap(&named_like);

    let expected = vec![with_sidecar.clone(), killed.clone()];
    let dry = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--keep-last", "5", "--dry-run"])
        .run()
        .ok();
    assert_eq!(dry.document::<PruneReport>().removed_leftovers, expected);
    for p in &expected {
        assert!(
            dry.stderr
                .contains(&format!("would remove {}", p.display())),
            "{}",
            dry.stderr
        );
        assert!(p.is_dir(), "a dry run removed {}", p.display());
    }
    assert!(sidecar.is_file());

    let out = tool("snap-take").arg("--pgdata").arg(&c.data).run().ok();
    let doc = out.document::<SnapshotMeta>();
    assert_eq!(doc.removed_leftovers, expected);
    let want: Vec<String> = expected
        .iter()
        .map(|p| {
            format!(
                "snap-take: note: removed {}: a snapshot without metadata left by a run that was killed",
                p.display()
            )
        })
        .collect();
    assert_eq!(notes("snap-take", &out.stderr), want);
    assert!(!killed.exists() && !with_sidecar.exists() && !sidecar.exists());
    assert!(mine.is_dir() && named_like.is_dir());
    assert_eq!(partials(&store), vec![mine.clone()]);
    let listed: Vec<String> = Backend::detect(&c.data.canonicalize().unwrap(), None, None)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.snapshot)
        .collect();
    assert_eq!(listed, vec![kept.snapshot.clone(), doc.snapshot.clone()]);
    assert!(store.join(&doc.snapshot).is_dir());

    let again = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--keep-last", "5"])
        .run()
        .ok();
    assert!(again.document::<PruneReport>().removed_leftovers.is_empty());
    assert!(notes("snap-prune", &again.stderr).is_empty());
}

/// The entries of `store` named `.view-*`, sorted (none before the store is made).
fn views(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".view-")
        })
        .collect();
    v.sort();
    v
}

/// A repository for `c`'s images whose images lock the test holds, so a snap-take --to waits
/// there with its view open (after the store's lock is let go).
fn repo_with_images_locked(
    c: &Cluster,
) -> (tempfile::TempDir, PathBuf, pgdr_core::lock::LockGuard) {
    let dir = pgdr_testkit::short_tempdir("pgdr-vw");
    let repo = dir.path().join("repo");
    tool("wal-archive")
        .arg("init")
        .arg("--repo")
        .arg(&repo)
        .arg("--pgdata")
        .arg(&c.data)
        .run()
        .ok();
    let lock = pgdr_core::lock::acquire(&repo.join("images.lock"), "the test", None).unwrap();
    (dir, repo, lock)
}

/// snap-prune of `c`'s snapshots (keep 5), or its dry run.
fn prune_of(c: &Cluster, dry: bool) -> pgdr_testkit::ToolOutput {
    let mut t = tool("snap-prune").arg("--pgdata").arg(&c.data).args([
        "--keep-last",
        "5",
        "--wait-lock",
        "60",
    ]);
    if dry {
        t = t.arg("--dry-run");
    }
    t.run().ok()
}

/// A snap-take --to of `c` into `repo`, alive and reading through its view once `view`
/// finds exactly one; returns it and the view.
fn reading_through<T: Clone>(
    c: &Cluster,
    repo: &Path,
    view: impl Fn() -> Vec<T>,
) -> (std::process::Child, T) {
    let mut child = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .arg("--to")
        .arg(repo)
        .args(["--wait-lock", "300"])
        .into_command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let [v] = view().as_slice() {
            return (child, v.clone());
        }
        assert!(child.try_wait().unwrap().is_none(), "snap-take ended");
        assert!(Instant::now() < deadline, "no view within 120s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs a child of the test and reaps it.
fn kill(mut child: std::process::Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");
}

/// btrfs: snap-take --to reads the snapshot through the read-only subvolume
/// `STORE/.view-PID-NAME`. While its run is alive (here: waiting for the repository's images
/// lock the test holds, after the store's lock is let go) neither snap-prune nor its dry run
/// touches or lists it. SIGKILLed there, the run leaves it: a dry run lists it, the next
/// snap-prune (or plain snap-take) removes it with one note and reports it. (Before: only the
/// next snap-take --to removed it, silently, and by the PID alone.)
#[test]
fn a_killed_btrfs_snap_take_to_leaves_a_view_the_next_run_removes() {
    let fs = skip_unless!(BtrfsMount::create("1G"));
    let sub = fs.subvolume("pg").canonicalize().unwrap();
    let c = Cluster::builder().data_dir(sub.join("data")).start();
    c.execute("create table t as select generate_series(1, 1000) x");
    let store = sub.parent().unwrap().join(".pgdr-snapshots").join("pg");
    let (_repo_dir, repo, images_lock) = repo_with_images_locked(&c);
    let prune = |dry: bool| prune_of(&c, dry);
    let reading = || reading_through(&c, &repo, || views(&store));
    let (child, view) = reading();
    assert_eq!(std::fs::metadata(&view).unwrap().ino(), 256, "a subvolume");
    for dry in [true, false] {
        let out = prune(dry);
        assert!(out.document::<PruneReport>().removed_leftovers.is_empty());
        assert!(
            notes("snap-prune", &out.stderr).is_empty(),
            "{}",
            out.stderr
        );
        assert!(view.is_dir(), "a live run's view was removed");
    }
    kill(child);
    assert!(view.is_dir());

    let dry = prune(true);
    assert_eq!(
        dry.document::<PruneReport>().removed_leftovers,
        vec![view.clone()]
    );
    assert_eq!(
        notes("snap-prune", &dry.stderr),
        [format!(
            "snap-prune: note: would remove {}: a view for reading a snapshot left by a run that was killed",
            view.display()
        )]
    );
    assert!(view.is_dir(), "a dry run removed it");
    let out = prune(false);
    assert_eq!(
        out.document::<PruneReport>().removed_leftovers,
        vec![view.clone()]
    );
    assert_eq!(
        notes("snap-prune", &out.stderr),
        [format!(
            "snap-prune: note: removed {}: a view for reading a snapshot left by a run that was killed",
            view.display()
        )]
    );
    assert!(!view.exists());
    assert!(prune(false)
        .document::<PruneReport>()
        .removed_leftovers
        .is_empty());

    // A plain snap-take removes one too, and says so.
    let (child, view) = reading();
    kill(child);
    let out = tool("snap-take").arg("--pgdata").arg(&c.data).run().ok();
    assert_eq!(
        out.document::<SnapshotMeta>().removed_leftovers,
        vec![view.clone()]
    );
    assert_eq!(notes("snap-take", &out.stderr).len(), 1, "{}", out.stderr);
    assert!(!view.exists() && views(&store).is_empty());

    // And snap-take - --to, reporting it in its document.
    let (child, view) = reading();
    kill(child);
    drop(images_lock);
    let up = tool("snap-take")
        .args(["-", "--to"])
        .arg(&repo)
        .stdin(out.stdout.clone())
        .run()
        .ok();
    assert_eq!(
        up.document::<pgdr_snap::doc::ImageReport>()
            .snapshot
            .removed_leftovers,
        vec![view.clone()]
    );
    assert_eq!(notes("snap-take", &up.stderr).len(), 1, "{}", up.stderr);
    assert!(views(&store).is_empty());
}

/// The snapshots of `dataset` (and below it), by name.
fn zfs_snapshots(dataset: &str) -> Vec<String> {
    run(Command::new("zfs").args(["list", "-H", "-o", "name", "-t", "snapshot", "-r", dataset]))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The filesystem datasets of `pool`.
fn zfs_datasets(pool: &str) -> Vec<String> {
    run(Command::new("zfs").args(["list", "-H", "-o", "name", "-t", "filesystem", "-r", pool]))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The names in `after` that are not in `before`, without child datasets' snapshots.
fn new_ones(before: &[String], after: &[String]) -> Vec<String> {
    after
        .iter()
        .filter(|n| !before.contains(n) && !n.contains("/extra@"))
        .cloned()
        .collect()
}

/// zfs: a snap-take killed right after `zfs snapshot` leaves a snapshot without pgdr:meta
/// (it carries pgdr:tool and the pgdr:taker of the run); on zfs-fuse, one killed while it
/// reads the snapshot's pg_control through a clone (pg_control changed during the
/// snapshot: a CHECKPOINT while the run waits) also leaves the clone `POOL/pgdr-read-*`, which
/// keeps the snapshot from being destroyed. A dry run lists them and removes nothing; the
/// next snap-prune removes them with one note each and reports them. A user's own snapshot
/// and clone with pgdr-like names, a pgdr:tool snapshot without pgdr:taker, one whose
/// pgdr:taker is a live process, and a complete snapshot stay. (Before: nothing removed or
/// reported either, and the clone blocked the snapshot's removal for good.)
#[test]
fn a_killed_zfs_snap_take_is_removed_by_the_next_run() {
    let pool = skip_unless!(ZfsPool::create("512M"));
    let mnt = pool.create_dataset("pg");
    let ds = pool.dataset("pg");
    // A child dataset makes every snapshot a set (`zfs snapshot -r`).
    pool.create_dataset("pg/extra");
    let child = pool.dataset("pg/extra");
    let in_child = |root: &Path| {
        let r = root.to_string_lossy();
        PathBuf::from(r.replacen(&format!("{ds}@"), &format!("{child}@"), 1))
    };
    let c = Cluster::builder().data_dir(mnt.join("data")).start();
    c.execute("create table t as select generate_series(1, 1000) x");
    let kept = tool("snap-take")
        .arg("--pgdata")
        .arg(&c.data)
        .run()
        .ok()
        .document::<SnapshotMeta>();
    assert_eq!(kept.backend, "zfs");

    // Decoys: a user's own snapshot and a clone of it named as pgdr names its own; a
    // pgdr:tool snapshot of a pgdr without pgdr:taker; one a live run (this test) is taking.
    let zfs = |args: &[&str]| run(Command::new("zfs").args(args));
    let users = format!("{ds}@pgdr-20200101T000000Z");
    zfs(&["snapshot", &users]);
    let users_clone = format!("{}/pgdr-read-1-pgdr-20200101T000000Z", pool.name);
    zfs(&["clone", &users, &users_clone]);
    let untagged = format!("{ds}@pgdr-20200102T000000Z");
    zfs(&["snapshot", "-o", "pgdr:tool=snap-take", &untagged]);
    let live = format!("{ds}@pgdr-20200103T000000Z");
    let me = pgdr_core::holder::Holder::me().to_line();
    let taker = format!("pgdr:taker={}", me.trim_end());
    zfs(&["snapshot", "-o", "pgdr:tool=snap-take", "-o", &taker, &live]);
    let kept_name = format!("{ds}@{}", kept.snapshot);
    let decoys_stay = || {
        let snaps = zfs_snapshots(&ds);
        let kept_child = format!("{child}@{}", kept.snapshot);
        for d in [&users, &untagged, &live, &kept_name, &kept_child] {
            assert!(snaps.contains(d), "{d} was removed");
        }
        assert!(zfs_datasets(&pool.name).contains(&users_clone));
    };
    let present = |e: &PathBuf| {
        let e = e.to_string_lossy().into_owned();
        zfs_snapshots(&ds).contains(&e) || zfs_datasets(&pool.name).contains(&e)
    };
    let note = |tool: &str, p: &Path| {
        let what = if p.to_string_lossy().contains('@') {
            "a snapshot without metadata"
        } else {
            "a clone for reading a snapshot"
        };
        format!(
            "{tool}: note: removed {}: {what} left by a run that was killed",
            p.display()
        )
    };
    let dry_run_lists = |expected: &[PathBuf]| {
        let dry = tool("snap-prune")
            .arg("--pgdata")
            .arg(&c.data)
            .args(["--keep-last", "5", "--dry-run"])
            .run()
            .ok();
        assert_eq!(dry.document::<PruneReport>().removed_leftovers, expected);
        assert_eq!(
            notes("snap-prune", &dry.stderr).len(),
            expected.len(),
            "{}",
            dry.stderr
        );
        for e in expected {
            assert!(present(e), "a dry run removed {}", e.display());
        }
    };

    // Killed right after `zfs snapshot`: removed by the next snap-take.
    let before = zfs_snapshots(&ds);
    take_killed_after("zfs", &c.data, &["snapshot"], |_| {});
    let mut killed: Vec<PathBuf> = new_ones(&before, &zfs_snapshots(&ds))
        .into_iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert!(
        present(&in_child(&killed[0])),
        "the set has the child's snapshot"
    );
    let props = zfs(&[
        "get",
        "-H",
        "-o",
        "value",
        "pgdr:tool,pgdr:meta",
        &killed[0].to_string_lossy(),
    ]);
    assert_eq!(props.lines().collect::<Vec<_>>(), ["snap-take", "-"]);
    // Made by a run on this host before it rebooted (a power loss): a leftover too (made
    // after the kill: the killed run would have removed it first).
    let rebooted = format!("{ds}@pgdr-20200104T000000Z");
    let mut before_boot = pgdr_core::holder::Holder::me();
    before_boot.boot_id = Some("00000000-0000-0000-0000-000000000000".into());
    let taker = format!("pgdr:taker={}", before_boot.to_line().trim_end());
    zfs(&[
        "snapshot",
        "-o",
        "pgdr:tool=snap-take",
        "-o",
        &taker,
        &rebooted,
    ]);
    killed.insert(0, PathBuf::from(&rebooted));
    dry_run_lists(&killed);
    // In the next second: the new snapshot's name is not the removed one's.
    std::thread::sleep(Duration::from_millis(1100));
    let out = tool("snap-take").arg("--pgdata").arg(&c.data).run().ok();
    let doc = out.document::<SnapshotMeta>();
    assert_eq!(doc.removed_leftovers, killed);
    let want: Vec<String> = killed.iter().map(|p| note("snap-take", p)).collect();
    assert_eq!(notes("snap-take", &out.stderr), want);
    for k in &killed {
        assert!(!present(k), "{} is still there", k.display());
        assert!(
            !present(&in_child(k)),
            "{} is still there",
            in_child(k).display()
        );
    }
    decoys_stay();

    // zfs-fuse reads a snapshot through a clone when pg_control changed while it was taken
    // (a CHECKPOINT while the run waits after `zfs snapshot`); killed right after that `zfs
    // clone`. OpenZFS reads .zfs/snapshot and never clones to read.
    let openzfs = Command::new("zfs")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut expected = Vec::new();
    let mut clone_mountpoint = None;
    if !openzfs {
        let (snaps, sets) = (zfs_snapshots(&ds), zfs_datasets(&pool.name));
        take_killed_after("zfs", &c.data, &["snapshot", "clone"], |key| {
            if key == "snapshot" {
                c.execute("checkpoint");
            }
        });
        let clone = new_ones(&sets, &zfs_datasets(&pool.name));
        assert_eq!(clone.len(), 1, "{clone:?}");
        assert!(clone[0].starts_with(&format!("{}/pgdr-read-", pool.name)));
        let mp = zfs(&["get", "-H", "-o", "value", "mountpoint", &clone[0]]);
        clone_mountpoint = Some(PathBuf::from(mp.trim()));
        let snap = new_ones(&snaps, &zfs_snapshots(&ds));
        assert_eq!(snap.len(), 1, "{snap:?}");
        expected.push(PathBuf::from(&clone[0]));
        expected.push(PathBuf::from(&snap[0]));
        // The clone keeps snap-prune from destroying the snapshot.
        let origin = zfs(&["get", "-H", "-o", "value", "origin", &clone[0]]);
        assert_eq!(origin.trim(), snap[0]);
    } else {
        let before = zfs_snapshots(&ds);
        take_killed_after("zfs", &c.data, &["snapshot"], |_| {});
        expected.extend(
            new_ones(&before, &zfs_snapshots(&ds))
                .into_iter()
                .map(PathBuf::from),
        );
    }
    dry_run_lists(&expected);
    let out = tool("snap-prune")
        .arg("--pgdata")
        .arg(&c.data)
        .args(["--keep-last", "5"])
        .run()
        .ok();
    assert_eq!(out.document::<PruneReport>().removed_leftovers, expected);
    let want: Vec<String> = expected.iter().map(|p| note("snap-prune", p)).collect();
    assert_eq!(notes("snap-prune", &out.stderr), want);
    for e in &expected {
        assert!(!present(e), "{} is still there", e.display());
        assert!(
            !present(&in_child(e)),
            "{} is still there",
            in_child(e).display()
        );
    }
    if let Some(mp) = clone_mountpoint {
        assert!(!mp.exists(), "{} is still there", mp.display());
    }
    decoys_stay();
    let listed: Vec<String> = Backend::detect(
        &c.data.canonicalize().unwrap(),
        Some(BackendKind::Zfs),
        None,
    )
    .unwrap()
    .list()
    .unwrap()
    .into_iter()
    .map(|m| m.snapshot)
    .collect();
    assert_eq!(listed, vec![kept.snapshot.clone(), doc.snapshot.clone()]);

    let out = tool("snap-take").arg("--pgdata").arg(&c.data).run().ok();
    assert!(out.document::<SnapshotMeta>().removed_leftovers.is_empty());
    assert!(notes("snap-take", &out.stderr).is_empty());
}

/// zfs: snap-take --to reads the snapshot through the clone `POOL/pgdr-view-PID-NAME`, marked
/// with pgdr:taker as the read clones are. While its run is alive (waiting for the images lock
/// the test holds) neither snap-prune nor its dry run touches or lists it; SIGKILLed there, a
/// dry run lists it and the next snap-prune removes it with one note. (Before: only the next
/// snap-take --to removed it, silently, judged by the PID in its name.)
#[test]
fn a_killed_zfs_snap_take_to_leaves_a_view_the_next_run_removes() {
    let pool = skip_unless!(ZfsPool::create("512M"));
    let mnt = pool.create_dataset("pg");
    let c = Cluster::builder().data_dir(mnt.join("data")).start();
    c.execute("create table t as select generate_series(1, 1000) x");
    let (_repo_dir, repo, images_lock) = repo_with_images_locked(&c);
    let views = || -> Vec<String> {
        zfs_datasets(&pool.name)
            .into_iter()
            .filter(|d| {
                d.starts_with(&format!("{}/pgdr-view-", pool.name)) && d.matches('/').count() == 1
            })
            .collect()
    };
    let prune = |dry: bool| prune_of(&c, dry);
    let (child, view) = reading_through(&c, &repo, views);
    for dry in [true, false] {
        let out = prune(dry);
        assert!(out.document::<PruneReport>().removed_leftovers.is_empty());
        assert!(
            notes("snap-prune", &out.stderr).is_empty(),
            "{}",
            out.stderr
        );
        assert_eq!(views(), vec![view.clone()], "a live run's view was removed");
    }
    kill(child);
    assert_eq!(views(), vec![view.clone()]);

    let dry = prune(true);
    assert_eq!(
        dry.document::<PruneReport>().removed_leftovers,
        vec![PathBuf::from(&view)]
    );
    assert_eq!(notes("snap-prune", &dry.stderr).len(), 1, "{}", dry.stderr);
    assert_eq!(views(), vec![view.clone()], "a dry run removed it");
    let out = prune(false);
    assert_eq!(
        out.document::<PruneReport>().removed_leftovers,
        vec![PathBuf::from(&view)]
    );
    assert_eq!(notes("snap-prune", &out.stderr).len(), 1, "{}", out.stderr);
    assert!(views().is_empty());
    assert!(prune(false)
        .document::<PruneReport>()
        .removed_leftovers
        .is_empty());
    drop(images_lock);
}
