//! One table as it was at T, restored into the live database from an image (SPEC "Logical
//! snapshots and single-table restore" on a physical snapshot, "Snapshot images and restores
//! in another place"), on real parts: the region of tests/snap_images.rs with a standby on the
//! copy backend; its snapshot, data directory and (for S3) local repository removed, so the
//! temporary clone can only come from the repository's image. It is restored into a new
//! directory (under $TMPDIR, or --target), recovers to T, the table is dumped from it and
//! restored beside the live one, and no clone or directory is left; a damaged image changes
//! nothing and leaves nothing.

mod image_support;
mod logical_support;
mod snap_support;

use chrono::{DateTime, Utc};
use image_support::{postgres_running_under, tamper_a_piece, Far, Region, ROWS};
use logical_support::{catalog, rows};
use pgdr_clone::tables::doc::RestoreReport;
use pgdr_testkit::{short_tempdir, skip_unless, tool, BtrfsMount, Cluster, S3Server};
use std::path::Path;
use std::time::Duration;

/// A region whose standby's snapshot is stored as an image in the local repository, with
/// batch 1 before it, batch 2 after it and before the mark "t", batch 3 after "t" and rows
/// of batches 1 and 2 changed after "t"; every WAL segment archived. Returns the region, the
/// image's name and the directory the standby (and its snapshot) lived in.
fn region_with_an_image() -> (Region, String, tempfile::TempDir) {
    let dir = short_tempdir("pgdr-ii-");
    let mut r = Region::new(
        &dir.path().join("data"),
        &["--backend", "copy", "--label", "into"],
        None,
    );
    r.settle();
    let image = r.image().image;
    r.batch(); // 2
    r.mark("t");
    r.batch(); // 3
    r.primary
        .execute("update t set n = -n where batch = 1; delete from t where batch = 2");
    r.archive_all();
    (r, image, dir)
}

/// The source's storage goes: the standby stopped, its data directory and snapshots removed.
fn remove_the_source(r: &mut Region, dir: &Path) {
    drop(r.standby.take());
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        std::fs::remove_dir_all(e.path()).unwrap();
    }
}

/// The rows of t as they were committed before `t` (batches of ROWS rows, n = 1..ROWS).
fn rows_at(r: &Region, t: &str) -> Vec<String> {
    let mut v: Vec<String> = r
        .expected(t)
        .iter()
        .flat_map(|b| (1..=ROWS).map(move |n| format!("({b},{n})")))
        .collect();
    v.sort();
    v
}

/// Table `name` of the primary's postgres database as sorted text rows.
fn table(r: &Region, name: &str) -> Vec<String> {
    let mut v = rows(&r.primary, "postgres", name);
    v.sort();
    v
}

fn stamp(t: &str) -> (DateTime<Utc>, String) {
    let when = pgdr_clone::target::parse_time(t).unwrap();
    (when, format!("t_pgdr_{}", when.format("%Y%m%d%H%M%S")))
}

/// No clone in the registry, nothing in `place`, no server running below it.
fn nothing_left(r: &Region, place: &Path) {
    assert!(r.clones().clones.is_empty(), "{:?}", r.clones());
    let left: Vec<_> = std::fs::read_dir(place).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!postgres_running_under(place));
}

/// From an image in a local repository, on a host without the snapshot: a dry run, the
/// table at T beside the live one (restored into a directory under $TMPDIR that is gone
/// afterwards), then a damaged piece of the image: exit 1, the database unchanged, nothing
/// left.
#[test]
fn a_table_at_t_from_an_image_in_a_local_repository() {
    let (mut r, image, dir) = region_with_an_image();
    remove_the_source(&mut r, dir.path());
    let tmp = short_tempdir("pgdr-it-");
    let t = r.at("t");
    let into = |extra: &[&str]| {
        r.sc()
            .env("TMPDIR", tmp.path())
            .args(["--repo", &r.repo, "--snapshot", &image])
            .args(["--recovery-target-time", &t])
            .args(["--into", &r.primary.conninfo(), "--table", "t"])
            .args(["--wait", "120"])
            .args(extra)
            .run()
    };
    let live = table(&r, "t");
    let schema = catalog(&r.primary, "postgres");
    let (when, copy) = stamp(&t);

    let dry = into(&["--dry-run"]).ok().document::<RestoreReport>();
    assert!(dry.dry_run);
    assert_eq!(
        (dry.kind.as_str(), dry.source.as_str()),
        ("physical", r.repo.as_str())
    );
    assert_eq!(dry.tables[0].restored_as, format!("public.{copy}"));
    assert_eq!(dry.tables[0].rows, None);
    assert_eq!(catalog(&r.primary, "postgres"), schema);
    nothing_left(&r, tmp.path());

    let rep = into(&[]).ok().document::<RestoreReport>();
    assert_eq!(
        (rep.snapshot.as_str(), rep.kind.as_str()),
        (image.as_str(), "physical")
    );
    assert_eq!(rep.source, r.repo);
    assert_eq!(rep.as_of, when);
    assert_eq!(rep.tables[0].action, "renamed");
    assert_eq!(rep.tables[0].restored_as, format!("public.{copy}"));
    assert_eq!(rep.tables[0].rows, Some(2 * ROWS as u64));
    let clone = rep.clone.expect("the temporary clone is reported");
    assert!(!clone.kept);
    assert_eq!(table(&r, &copy), rows_at(&r, &t));
    assert_eq!(rows_at(&r, &t).len(), 2 * ROWS as usize);
    assert_eq!(table(&r, "t"), live, "the live table untouched");
    nothing_left(&r, tmp.path());

    // A damaged piece: one line naming it, exit 1, nothing changed, nothing left.
    let (path, piece) = tamper_a_piece(&r.repo, &image);
    let restored = catalog(&r.primary, "postgres");
    let out = into(&["--on-conflict", "replace"]).expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains(&path) && out.stderr.contains(&piece),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert_eq!(catalog(&r.primary, "postgres"), restored);
    assert_eq!(table(&r, "t"), live);
    assert_eq!(table(&r, &copy), rows_at(&r, &t));
    nothing_left(&r, tmp.path());
}

/// From an encrypted S3 repository alone (the image and the WAL copied there, the local
/// repository removed too), restored into --target: the table at T, the directory gone.
#[test]
fn a_table_at_t_from_an_encrypted_s3_repository() {
    let (mut r, image, dir) = region_with_an_image();
    let far = Far::init(skip_unless!(S3Server::start()), &r.primary);
    let copied = far
        .cmd(tool("wal-archive"))
        .args(["copy", "--repo", &r.repo, "--to", &far.repo])
        .run()
        .ok()
        .document::<pgdr_wal::doc::CopyReport>();
    assert!(copied.failed.is_empty(), "{copied:?}");
    remove_the_source(&mut r, dir.path());
    std::fs::remove_dir_all(&r.repo).unwrap();
    let place = short_tempdir("pgdr-is-");
    let t = r.at("t");
    let rep = far
        .cmd(r.sc())
        .args(["--repo", &far.repo, "--before", &t, "--target"])
        .arg(place.path().join("tables"))
        .args(["--into", &r.primary.conninfo(), "--table", "t"])
        .args(["--wait", "120"])
        .run()
        .ok()
        .document::<RestoreReport>();
    let (when, copy) = stamp(&t);
    assert_eq!(
        (rep.snapshot.as_str(), rep.source.as_str()),
        (image.as_str(), far.repo.as_str())
    );
    assert_eq!(rep.as_of, when);
    assert_eq!(rep.tables[0].restored_as, format!("public.{copy}"));
    assert_eq!(table(&r, &copy), rows_at(&r, &t));
    nothing_left(&r, place.path());
}

/// Another cluster of this host has a btrfs snapshot consistent before T (the new user's
/// trial, F3): it is of another database system than the repository's, so it does not serve
/// `--repo R --before T --into`, which restores the repository's image as on a host without
/// snapshots (before, the foreign snapshot was taken for a local one: "no snapshot of … is
/// consistent before", or "snapshots of several data directories"). Also a plain clone of
/// --repo --before T does not choose among the foreign data directory's snapshots.
#[test]
fn another_clusters_local_snapshot_does_not_serve_the_repository() {
    let fs = skip_unless!(BtrfsMount::create("1G"));
    let sub = fs.subvolume("other");
    let other = Cluster::builder().data_dir(sub.join("data")).start();
    other.execute("create table t (batch int, n int)");
    let foreign = tool("snap-take")
        .arg("--pgdata")
        .arg(&other.data)
        .run()
        .ok()
        .document::<pgdr_snap::SnapshotMeta>();
    let (mut r, image, dir) = region_with_an_image();
    remove_the_source(&mut r, dir.path());
    assert_ne!(
        foreign.system_identifier,
        r.manifest(&image).system_identifier
    );
    let tmp = short_tempdir("pgdr-if-");
    let t = r.at("t");
    assert!(foreign.consistent_at < pgdr_clone::target::parse_time(&t).unwrap());
    let rep = r
        .sc()
        .env("TMPDIR", tmp.path())
        .args([
            "--repo",
            &r.repo,
            "--before",
            &t,
            "--recovery-target-time",
            &t,
        ])
        .args(["--into", &r.primary.conninfo(), "--table", "t"])
        .args(["--wait", "120"])
        .run()
        .ok()
        .document::<RestoreReport>();
    let (when, copy) = stamp(&t);
    assert_eq!(
        (rep.snapshot.as_str(), rep.source.as_str()),
        (image.as_str(), r.repo.as_str())
    );
    assert_eq!(rep.as_of, when);
    assert_eq!(table(&r, &copy), rows_at(&r, &t));
    nothing_left(&r, tmp.path());

    // A clone to keep, without --target: no local snapshot of the repository's system, and
    // the foreign one is not offered as a choice.
    let out = r
        .sc()
        .args(["--repo", &r.repo, "--before", &t, "--name", "k", "--start"])
        .run()
        .expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains("no snapshot made by snap-take found")
            && out
                .stderr
                .contains("of other database systems than --repo's"),
        "{}",
        out.stderr
    );
    assert!(r.clones().clones.is_empty());
    drop(other);
}

/// SIGKILL of a table restore once its temporary clone's server is up (the new user's trial):
/// the server keeps running and the clone's record says `creating`. The next run that makes a
/// clone stops that server and removes the clone and its record, with one note, and the same
/// restore (the same --target) then works. A clone kept with --keep-clone is `ready`; a
/// place or a name it holds is refused naming `snap-clone --destroy NAME`.
#[test]
fn a_killed_table_restore_is_removed_by_the_next_run() {
    let (r, image, _dir) = region_with_an_image();
    let place = short_tempdir("pgdr-ik-");
    let tables = place.path().join("tables");
    let t = r.at("t");
    let into = |target: &Path, extra: &[&str]| {
        r.sc()
            .args(["--repo", &r.repo, "--snapshot", &image])
            .args(["--recovery-target-time", &t, "--target"])
            .arg(target)
            .args(["--into", &r.primary.conninfo(), "--table", "t"])
            .args(["--wait", "120"])
            .args(extra)
    };
    let mut run = into(&tables, &[]).into_command();
    pgdr_testkit::kill_9_when(
        &mut run,
        |_| tables.join("postmaster.pid").exists() && postgres_running_under(&tables),
        Duration::ZERO,
    );
    assert!(
        postgres_running_under(&tables),
        "the server was left running"
    );
    let left = r.clones().clones;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].state, "creating", "{left:?}");
    let killed = left[0].clone.clone();

    let out = into(&tables, &[]).run().ok();
    let notes: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("snap-clone: note: "))
        .collect();
    assert_eq!(notes.len(), 1, "{}", out.stderr);
    assert!(
        notes[0].contains(&format!("removed clone {killed}")) && notes[0].contains("killed"),
        "{}",
        out.stderr
    );
    let rep = out.document::<RestoreReport>();
    let (_, copy) = stamp(&t);
    assert_eq!(rep.tables[0].restored_as, format!("public.{copy}"));
    assert_eq!(table(&r, &copy), rows_at(&r, &t));
    nothing_left(&r, place.path());

    // The same moment again: the copy's name is known from the target time, so the collision
    // is refused before any clone is made (none is destroyed), the database unchanged.
    let restored = catalog(&r.primary, "postgres");
    let out = into(&tables, &[]).run().expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains(&format!(
            "table public.{copy} exists already (restored from this moment before?)"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("temporary clone"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert_eq!(catalog(&r.primary, "postgres"), restored);
    nothing_left(&r, place.path());

    // Kept: ready, and what holds its name or place says how to remove it.
    let kept = place.path().join("kept");
    let rep = into(
        &kept,
        &["--keep-clone", "--name", "kept", "--on-conflict", "replace"],
    )
    .run()
    .ok()
    .document::<RestoreReport>();
    assert!(rep.clone.expect("a temporary clone").kept);
    let listed = r.clones().clones;
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.clone.as_str(), c.state.as_str()))
            .collect::<Vec<_>>(),
        [("kept", "ready")]
    );
    for (target, name) in [(&kept, "other"), (&tables, "kept")] {
        let out = into(target, &["--name", name, "--on-conflict", "replace"])
            .run()
            .expect_error(1, "snap-clone");
        assert!(
            out.stderr.contains("snap-clone --destroy kept"),
            "{target:?} {name}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    r.sc().args(["--destroy", "kept"]).run().ok();
    nothing_left(&r, place.path());
}
