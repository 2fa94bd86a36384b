//! snap-take --to: a snapshot stored as an image in a repository, read from a view of the
//! snapshot (never from the live data directory), through pgdr_repo's image upload: only the
//! pieces the repository lacks are sent, the manifest is published last.

use crate::backend::{view, Backend, BackendKind};
use crate::doc::ImageReport;
use crate::image;
use crate::meta::SnapshotMeta;
use pgdr_core::{Error, Result};
use pgdr_repo::image::upload::{self, Request};
use pgdr_repo::repo::Identity;
use pgdr_repo::Repo;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The default of --parallel.
pub const PARALLEL: u16 = 4;

/// What to store.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// The snapshot, as snap-take described it.
    pub snapshot: SnapshotMeta,
    /// The repository, as given.
    pub repo: PathBuf,
    /// Concurrent transfers.
    pub parallel: usize,
    /// Read every file, lending nothing from an earlier image's stamps.
    pub read_all: bool,
    /// How long to wait for the locks (the snapshots', the repository's images').
    pub wait_lock: Option<Duration>,
    /// When the run began (the report's seconds count from it).
    pub started: Instant,
}

/// The storage of a snapshot snap-take described.
///
/// # Errors
/// An unknown backend (exit 2), or the storage cannot be used.
pub fn backend_of(m: &SnapshotMeta) -> Result<Backend> {
    let kind = BackendKind::parse(&m.backend).ok_or_else(|| {
        Error::usage(format!(
            "unknown backend {:?} in the snapshot object",
            m.backend
        ))
    })?;
    // btrfs and copy snapshots live in the store: the directory of the snapshot.
    let store = match kind {
        BackendKind::Zfs => None,
        _ => Path::new(&m.location).parent().map(Path::to_path_buf),
    };
    Backend::detect(&m.pgdata, Some(kind), store.as_deref())
}

/// Stores the snapshot `req.snapshot` as an image in `req.repo`.
///
/// # Errors
/// The snapshot is not on this host (or is another one than described), the repository
/// cannot be used or belongs to another database system, a lock is held (exit 75), reading or
/// sending failed, or SIGINT/SIGTERM arrived: no image is published then.
pub fn run(req: &ImageRequest) -> Result<ImageReport> {
    let want = &req.snapshot;
    let backend = backend_of(want)?;
    let mut repo = Repo::open(&req.repo)?;
    let sysid = want.system_identifier.parse().map_err(|_| {
        Error::usage(format!(
            "bad system_identifier {:?} in the snapshot object",
            want.system_identifier
        ))
    })?;
    let id = Identity {
        system_identifier: sysid,
        wal_segment_size: want.wal_segment_size,
    };
    let have = repo.bind(id, &format!("image of {}", want.snapshot))?;
    if have != id {
        return Err(Error::failed(format!(
            "refusing to store {} in {}",
            want.snapshot,
            repo.location()
        ))
        .because(format!(
            "the repository belongs to database system {}, the snapshot to {}",
            have.system_identifier, id.system_identifier
        ))
        .hint("each cluster has its own repository"));
    }
    // The view must be dropped (a ZFS clone destroyed) on SIGINT/SIGTERM too: the workers
    // poll the signal and stop.
    pgdr_core::signals::set_cooperative(true);
    let r = (|| {
        let (mut view, mut meta) = view::open(&backend, &want.snapshot, req.wait_lock)?;
        meta.removed_leftovers = std::mem::take(&mut view.removed_leftovers);
        if meta.created != want.created || meta.checkpoint_lsn != want.checkpoint_lsn {
            return Err(Error::failed(format!(
                "cannot store {} of {}",
                want.snapshot,
                want.pgdata.display()
            ))
            .because("the snapshot of that name here is not the one the document describes"));
        }
        let entries = image::entries(&view.root, &meta)?;
        let up = upload::upload(
            &repo,
            &Request {
                name: meta.snapshot.clone(),
                created: meta.created,
                snapshot: serde_json::to_value(&meta).expect("metadata serializes"),
                owner: image::owner(&view.root, &meta),
                entries,
                parallel: req.parallel,
                wait_lock: req.wait_lock,
                source: Some(format!("{}:{}", meta.backend, meta.pgdata.display())),
                read_all: req.read_all,
            },
            &|m| image::is_image_of(m, &meta),
        )?;
        drop(view);
        Ok((up, meta))
    })();
    pgdr_core::signals::set_cooperative(false);
    let (up, meta) = r?;
    let m = &up.manifest;
    Ok(ImageReport {
        image: m.image.clone(),
        repository: repo.location(),
        already_stored: up.already_stored,
        files: m
            .files
            .iter()
            .filter(|e| e.kind == pgdr_repo::image::manifest::EntryKind::File)
            .count() as u64,
        bytes: m.bytes,
        objects: m.objects,
        stored_bytes: m.stored_bytes,
        objects_sent: up.objects_sent,
        bytes_sent: up.bytes_sent,
        stored_bytes_sent: up.stored_bytes_sent,
        objects_reused: up.objects_reused,
        files_unchanged: up.files_unchanged,
        stamps_from: up.base.clone(),
        parallel: req.parallel as u32,
        seconds: (req.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        snapshot: meta,
    })
}
