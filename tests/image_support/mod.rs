//! Shared by tests/snap_images.rs and tests/snap_images_into.rs: a "region" (a primary
//! archiving through wal-archive into a local repository, a standby, rows in batches with
//! recorded times, snapshots of the standby stored as images), the other region's encrypted
//! S3 repository (moto), and what the tests look at in a repository.
#![allow(dead_code)]

use pgdr_clone::doc::CloneList;
use pgdr_repo::image::manifest::{self, Manifest};
use pgdr_snap::doc::{ImageReport, SnapshotList};
use pgdr_testkit::{bin_dir, tool, Cluster, S3Server, ToolCommand};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ROWS: i64 = 10;

/// A primary archiving into a repository, a standby, rows in batches with recorded times.
pub struct Region {
    pub primary: Cluster,
    pub standby: Option<Cluster>,
    pub _repo_dir: tempfile::TempDir,
    /// The repository's location as the tools take it.
    pub repo: String,
    pub registry: tempfile::TempDir,
    /// (start, end) of each batch's commit; batch i is index i-1.
    pub batches: Vec<(String, String)>,
    pub marks: Vec<(&'static str, String)>,
    /// Extra snap-take arguments (the copy backend's).
    pub take_args: Vec<String>,
}

impl Region {
    pub fn new(standby_dir: &Path, take_args: &[&str], scale: Option<i64>) -> Region {
        let repo_dir = pgdr_testkit::short_tempdir("pgdr-ir-");
        let repo = repo_dir.path().join("repo").display().to_string();
        let wa = bin_dir().join("wal-archive");
        let mut primary = Cluster::builder()
            .conf("archive_mode = on")
            .conf("max_wal_size = 256MB")
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
        primary.execute("create table t (batch int, n int)");
        if let Some(s) = scale {
            crate::snap_support::pgbench_init(&primary, s);
        }
        let standby = primary.standby_in(Some(standby_dir));
        let mut r = Region {
            primary,
            standby: Some(standby),
            _repo_dir: repo_dir,
            repo,
            registry: tempfile::tempdir().unwrap(),
            batches: vec![],
            marks: vec![],
            take_args: take_args.iter().map(|s| s.to_string()).collect(),
        };
        r.batch();
        r
    }

    pub fn standby(&self) -> &Cluster {
        self.standby.as_ref().expect("the standby is there")
    }

    pub fn now(&self) -> String {
        self.primary
            .query_value("select clock_timestamp()::text")
            .unwrap()
    }

    pub fn mark(&mut self, name: &'static str) {
        std::thread::sleep(Duration::from_millis(300));
        let t = self.now();
        self.marks.push((name, t));
        std::thread::sleep(Duration::from_millis(300));
    }

    pub fn at(&self, name: &str) -> String {
        self.marks
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    }

    pub fn batch(&mut self) {
        let b = self.batches.len() as i64 + 1;
        let start = self.now();
        self.primary.execute(&format!(
            "insert into t select {b}, g from generate_series(1, {ROWS}) g"
        ));
        let end = self.now();
        self.batches.push((start, end));
        if let Some(s) = &self.standby {
            s.wait_for(
                &format!("select count(*) = {} from t", b * ROWS),
                Duration::from_secs(60),
            );
        }
    }

    /// A restartpoint on the standby after everything the primary wrote: its data files
    /// change, and its pg_control says it is consistent past it.
    pub fn settle(&self) {
        self.primary.execute("checkpoint");
        let lsn = self
            .primary
            .query_value("select pg_current_wal_lsn()")
            .unwrap();
        self.standby().wait_for(
            &format!("select pg_last_wal_replay_lsn() >= '{lsn}'"),
            Duration::from_secs(60),
        );
        self.standby().execute("checkpoint");
    }

    /// The current segment switched and archived.
    pub fn archive_all(&self) {
        let seg = self
            .primary
            .query_value("select pg_walfile_name(pg_switch_wal())")
            .unwrap();
        self.primary.wait_for(
            &format!("select coalesce(last_archived_wal >= '{seg}', false) from pg_stat_archiver"),
            Duration::from_secs(120),
        );
    }

    pub fn take(&self) -> ToolCommand {
        let mut t = tool("snap-take")
            .arg("--pgdata")
            .arg(&self.standby().data)
            .args(&self.take_args);
        if self.take_args.iter().any(|a| a == "copy") {
            t = t.args(["-d", &self.standby().conninfo()]);
        }
        t
    }

    /// snap-take --to the repository.
    pub fn image(&self) -> ImageReport {
        self.take()
            .args(["--to", &self.repo])
            .run()
            .ok()
            .document::<ImageReport>()
    }

    /// snap-take - --to the repository, of the snapshot snap-take's document `snap` names.
    pub fn image_of(&self, snap: &str) -> ImageReport {
        tool("snap-take")
            .args(["-", "--to", &self.repo])
            .stdin(snap.to_string())
            .run()
            .ok()
            .document::<ImageReport>()
    }

    pub fn sc(&self) -> ToolCommand {
        tool("snap-clone").env("PGDR_CLONE_DIR", self.registry.path())
    }

    /// The batches whose commit had finished by `t`.
    pub fn expected(&self, t: &str) -> Vec<i64> {
        let ts = |s: &str| pgdr_clone::target::parse_time(s).unwrap();
        let t = ts(t);
        let mut v = Vec::new();
        for (i, (start, end)) in self.batches.iter().enumerate() {
            assert!(!(ts(start) <= t && t <= ts(end)), "target inside batch");
            if ts(end) <= t {
                v.push(i as i64 + 1);
            }
        }
        v
    }

    pub fn manifest(&self, name: &str) -> Manifest {
        manifest_of(&self.repo, name)
    }

    pub fn list(&self) -> SnapshotList {
        tool("snap-take")
            .args(["--list", "--repo", &self.repo])
            .run()
            .ok()
            .document::<SnapshotList>()
    }

    pub fn clones(&self) -> CloneList {
        self.sc().arg("--list").run().ok().document::<CloneList>()
    }
}

impl Region {
    /// The manifest of the snapshot `snap` (snap-take's document) stored with --read-all in a
    /// new repository of the cluster: every file read and hashed.
    pub fn read_in_full(&self, snap: &str) -> Manifest {
        let dir = pgdr_testkit::short_tempdir("pgdr-full-");
        let repo = dir.path().join("repo").display().to_string();
        tool("wal-archive")
            .args(["init", "--repo", &repo, "--pgdata"])
            .arg(&self.primary.data)
            .run()
            .ok();
        let full = tool("snap-take")
            .args(["-", "--to", &repo, "--read-all"])
            .stdin(snap.to_string())
            .run()
            .ok()
            .document::<ImageReport>();
        assert_eq!((full.files_unchanged, full.stamps_from), (0, None));
        manifest_of(&repo, &full.image)
    }
}

/// Checks an image that took files from an earlier one by their stamps (`stamped`) holds
/// every file as reading it does (`full`), and that it did take some.
pub fn assert_same_files(stamped: &ImageReport, m: &Manifest, full: &Manifest) {
    assert!(stamped.files_unchanged > 0, "{stamped:?}");
    assert!(stamped.stamps_from.is_some(), "{stamped:?}");
    let files = |m: &Manifest| {
        m.files
            .iter()
            .map(|e| (e.path.clone(), (e.kind, e.size, e.pieces.clone())))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (got, want) = (files(m), files(full));
    for (path, w) in &want {
        assert_eq!(got.get(path), Some(w), "{path}");
    }
    assert_eq!(got.len(), want.len());
}

pub fn manifest_of(repo: &str, name: &str) -> Manifest {
    let r = pgdr_repo::Repo::open(Path::new(repo)).unwrap();
    manifest::read(&r, name).unwrap().expect("the image exists")
}

pub fn pieces(m: &Manifest) -> HashSet<String> {
    m.files
        .iter()
        .flat_map(|e| e.pieces.iter().cloned())
        .collect()
}

/// Where a piece is stored (a local repository: tampering with it needs the file).
pub fn piece_path(repo: &str, digest: &str) -> PathBuf {
    Path::new(repo)
        .join("images/data")
        .join(&digest[..2])
        .join(digest)
}

/// Whether a postgres process has its working directory below `dir`.
pub fn postgres_running_under(dir: &Path) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(dir))
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
    })
}

/// An age identity for the far repository: (its directory, the key file readable by the
/// postgres user alone, the recipient).
pub fn place_identity() -> (tempfile::TempDir, PathBuf, String) {
    let dir = pgdr_testkit::short_tempdir("pgdr-key-");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let key = dir.path().join("dr.key");
    let recipient = pgdr_testkit::age_keygen(&key);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    pgdr_testkit::chown_to_pg_user(&key);
    (dir, key, recipient)
}

/// The other region's repository: S3 (moto), encrypted for an age identity the postgres user
/// can read, initialised for the primary's cluster.
pub struct Far {
    pub s3: S3Server,
    /// (its directory, the key file, the recipient): see [`place_identity`].
    pub key: (tempfile::TempDir, PathBuf, String),
    /// Its location as the tools take it.
    pub repo: String,
}

impl Far {
    /// Bucket "far", repository s3://far/pg, for `primary`'s system identifier.
    pub fn init(s3: S3Server, primary: &Cluster) -> Far {
        s3.create_bucket("far");
        let far = Far {
            s3,
            key: place_identity(),
            repo: "s3://far/pg".into(),
        };
        far.cmd(tool("wal-archive"))
            .args([
                "init",
                "--repo",
                &far.repo,
                "--encrypt-to",
                &far.key.2,
                "--pgdata",
            ])
            .arg(&primary.data)
            .run()
            .ok();
        far
    }

    /// A tool run with the S3 endpoint and the identity ($PGDR_IDENTITY).
    pub fn cmd(&self, t: ToolCommand) -> ToolCommand {
        self.s3
            .env()
            .into_iter()
            .fold(t, |t, (k, v)| t.env(k, v))
            .env("PGDR_IDENTITY", self.key.1.as_path())
    }
}

/// Damages the last piece of the largest relation file of image `name` in the local
/// repository `repo` whose first piece no other file shares; returns (the file's path in
/// the data directory, the digest of the damaged piece).
pub fn tamper_a_piece(repo: &str, name: &str) -> (String, String) {
    let m = manifest_of(repo, name);
    let uses = |d: &str| {
        m.files
            .iter()
            .flat_map(|e| &e.pieces)
            .filter(|p| *p == d)
            .count()
    };
    let file = m
        .files
        .iter()
        .filter(|e| e.path.starts_with("base/") && !e.pieces.is_empty())
        .filter(|e| uses(&e.pieces[0]) == 1)
        .max_by_key(|e| e.size)
        .unwrap();
    let victim = piece_path(repo, &file.pieces[0]);
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    (file.path.clone(), file.pieces[0].clone())
}
