//! A clone from an image in a repository: a new instance on a machine that may have none of
//! the source's storage. The image is chosen among the repository's (by name, `--before T`,
//! `--latest`), restored into a new directory by parallel workers with every piece verified
//! (pgdr_repo::image::restore), then configured, started and watched as any clone
//! ([`crate::setup`]), with restore_command reading the same repository. One transaction: a
//! bad piece, a failed start, SIGINT/SIGTERM: the server is stopped, the directory removed,
//! the clone forgotten, exit 1.
//!
//! The clone is recorded in the host's registry like any other (backend `copy`: a plain
//! directory, removed as one; `repository` names where it came from).

use crate::create::{check_place, choose, exists_already, Among, CreateRequest};
use crate::doc::CloneReport;
use crate::setup::{
    check_interrupt, choose_port, conclude, configure_and_start, Setup, Storage, Undo,
};
use pgdr_core::lock::LockGuard;
use pgdr_core::owner::User;
use pgdr_core::{Context, Error, Result};
use pgdr_repo::image::manifest::{self, Manifest};
use pgdr_repo::Repo;
use pgdr_snap::image::meta_of;
use pgdr_snap::registry::CloneRecord;
use pgdr_snap::{BackendKind, SnapshotMeta};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Who owns the restored tree: as root, the user named in the manifest when this host has
/// one, else the owner of the target's parent directory when that is not root; otherwise the
/// user running snap-clone.
fn owner_for(m: &Manifest, target: &Path) -> Result<User> {
    if !pgdr_core::owner::is_root() {
        return pgdr_core::owner::current_user()
            .ok_or_else(|| Error::failed("cannot tell which user runs snap-clone"));
    }
    if let Some(u) = pgdr_core::owner::user_by_name(&m.owner).filter(|u| u.uid != 0) {
        return Ok(u);
    }
    let parent = target.parent().unwrap_or(Path::new("/"));
    let uid = std::fs::metadata(parent).map(|md| md.uid()).unwrap_or(0);
    match pgdr_core::owner::user_by_uid(uid).filter(|u| u.uid != 0) {
        Some(u) => Ok(u),
        None => Err(Error::failed(format!("cannot restore image {}", m.image))
            .because(format!(
                "its data directory belonged to {:?}, who has no account here, and {} belongs to root; PostgreSQL refuses to run as root",
                m.owner,
                parent.display()
            ))
            .hint(format!(
                "create the user {:?}, or give --target a parent directory that belongs to the user who should run it",
                m.owner
            ))),
    }
}

/// Restores an image of `repo_loc` as the clone `req` asks for.
///
/// # Errors
/// No --target or one that exists, no image serves the request, the name is taken, a lock is
/// held (exit 75), or a step failed (everything was rolled back).
/// The name's lock is handed back, still held (see [`crate::create::make`]).
pub fn run(req: &CreateRequest, repo_loc: &Path) -> Result<(CloneReport, LockGuard)> {
    let started = Instant::now();
    let name = &req.name;
    let registry = &req.registry;
    let root = req.target_dir.clone().ok_or_else(|| {
        Error::usage("no --target")
            .hint("give --target DIR: the new directory the image is restored into")
    })?;
    check_place(registry, &root)?;
    if root.exists() || root.is_symlink() {
        return Err(
            Error::failed(format!("cannot restore into {}", root.display()))
                .because("it exists already")
                .hint("give --target a directory that does not exist yet"),
        );
    }
    let parent = root.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(
            Error::failed(format!("cannot restore into {}", root.display()))
                .because(format!("{} is not a directory", parent.display())),
        );
    }
    if let Some(rec) = registry.read(name)? {
        return Err(exists_already(&rec));
    }
    let repo = Repo::open(repo_loc)?;
    let manifests = manifest::all(&repo)?;
    let snaps: Vec<SnapshotMeta> = manifests.iter().map(meta_of).collect::<Result<_>>()?;
    // The clone's restore_command reads this repository unless --restore-command replaced it.
    let newest = match &req.wal_repo {
        Some(_) => crate::create::newest_of(&repo, &snaps)?,
        None => None,
    };
    let (meta, target) = choose(
        &snaps,
        &req.source,
        req.target,
        &Among {
            noun: "image",
            of: format!("in repository {}", repo.location()),
            missing:
                "the repository has no image of that name (snap-take --list --repo lists them)",
            none: "it has no images (snap-take --to stores one)",
            older: "no image in this repository is that old",
            newest: newest.as_ref(),
        },
    )?;
    let m = manifests
        .iter()
        .find(|m| m.image == meta.snapshot)
        .expect("chosen among them");
    let bindir = pgdr_core::pgbin::bindir(Some(meta.pg_version))?;
    let owner = owner_for(m, &root)?;
    if repo.encrypted() {
        identity_readable_by(owner.uid, &owner.name)?;
    }
    registry.ensure((owner.uid, owner.gid))?;
    let name_lock = registry.lock(name, req.wait_lock)?;
    if let Some(rec) = registry.read(name)? {
        return Err(exists_already(&rec));
    }
    let port = choose_port(req.port, &registry.list()?)?;

    pgdr_core::signals::set_cooperative(true);
    let mut undo = Undo::new(Storage::Directory, registry);
    let result = (|| -> Result<CloneReport> {
        check_interrupt()?;
        // Recorded before the directory exists: a run killed while restoring leaves a clone
        // that snap-clone --destroy removes.
        let rec = CloneRecord {
            clone: name.clone(),
            snapshot: meta.snapshot.clone(),
            source_pgdata: meta.pgdata.clone(),
            backend: BackendKind::Copy,
            store: repo_loc.to_path_buf(),
            location: root.display().to_string(),
            root: root.clone(),
            path: root.clone(),
            created: chrono::Utc::now(),
            state: "creating".into(),
            server: None,
            repository: Some(repo.location()),
        };
        registry.write(&rec)?;
        undo.clone = Some(rec.clone());
        make_dir(&root, &owner)?;
        let ids = pgdr_core::owner::is_root().then_some((owner.uid, owner.gid));
        pgdr_repo::image::restore::restore(&repo, m, &root, req.parallel, ids)?;
        check_interrupt()?;
        configure_and_start(
            &mut undo,
            rec,
            &Setup {
                name: name.clone(),
                meta: &meta,
                target,
                action: req.action,
                port,
                bindir: bindir.clone(),
                restore_command: req.restore_command.clone(),
                shared_buffers: req.shared_buffers.clone(),
                replay: req.replay,
                start: req.start,
                wait: req.wait,
                registry,
                backend_name: "image",
                temporary: req.temporary,
                newest: newest.as_ref(),
            },
        )
    })();
    conclude(result, undo, started).map(|r| (r, name_lock))
}

/// The clone's server reads the identity file too (its restore_command decrypts the WAL),
/// as the user `uid` (`user` names it), and a usable identity file is readable by its owner
/// alone: refuse before anything is restored or cloned rather than after, when recovery
/// would stop on its first segment.
///
/// # Errors
/// `$PGDR_IDENTITY` names a file another user owns.
pub(crate) fn identity_readable_by(uid: u32, user: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(path) = std::env::var_os(pgdr_repo::crypt::IDENTITY_ENV).filter(|v| !v.is_empty())
    else {
        return Ok(());
    };
    let path = PathBuf::from(path);
    match std::fs::metadata(&path) {
        Ok(md) if md.uid() != uid => Err(Error::failed(format!(
            "the clone's server cannot read identity file {}",
            path.display()
        ))
        .because(format!(
            "its restore_command runs as {user}, and the file belongs to uid {} (mode {:04o})",
            md.uid(),
            md.mode() & 0o7777
        ))
        .hint(format!(
            "give {user} a copy of its own: install -o {user} -m 600 {} FILE, then PGDR_IDENTITY=FILE",
            path.display()
        ))),
        // A missing or unreadable file is refused, with its reason, when the repository opens.
        _ => Ok(()),
    }
}

/// The new directory, 0700, given to the owner.
fn make_dir(root: &Path, owner: &User) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(root)
        .context(|| format!("cannot create {}", root.display()))?;
    if pgdr_core::owner::is_root() {
        std::os::unix::fs::chown(root, Some(owner.uid), Some(owner.gid))
            .context(|| format!("cannot give {} to {}", root.display(), owner.name))?;
    }
    Ok(())
}
