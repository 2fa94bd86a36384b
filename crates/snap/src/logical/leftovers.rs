//! What a snap-take --logical run killed before it could clean up (SIGKILL, the OOM killer, a
//! timeout, a power loss) leaves behind, found again and removed by the next snap-take
//! --logical and snap-prune --logical. Each kind is removed only where no live run can own
//! it:
//!
//! - `DIR/.NAME.pgdr-tmp.PID/` (0700): the staging directory of a snapshot going to
//!   --snapshot-dir DIR, with pg_dump's scratch copy inside. A run makes and removes it only
//!   while it holds DIR/.lock, so under that lock every one is a killed run's.
//! - `dumps/NAME/files/…` without a manifest in a repository: made only under its dumps.lock.
//! - `$TMPDIR/pgdr-dump-XXXXXX/` (0700): pg_dump's scratch copy for a snapshot going to a
//!   repository, uncompressed and in plaintext even when the repository encrypts (pg_dump's
//!   directory format writes files; it cannot be streamed into an encrypted object). No lock
//!   covers $TMPDIR (the repository's dumps.lock may be an S3 object, and runs to other
//!   repositories share $TMPDIR), so the directory names its maker in [`OWNER`] (a
//!   [`Holder`] line) and is a leftover only when that process is provably gone (same host,
//!   boot and PID namespace, no process of its PID and start time). A directory that is a
//!   symlink, belongs to another user or has no such line (a user's own, or one whose line is
//!   still being written) is never touched.
//!
//! pg_dump itself is stopped when the run that started it dies ([`super::take::run_program`]),
//! so it does not go on writing into a leftover.

use super::place::Place;
use pgdr_core::holder::Holder;
use pgdr_core::{Context, Result};
use pgdr_repo::dump;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The prefix of a scratch directory in $TMPDIR.
pub const SCRATCH_PREFIX: &str = "pgdr-dump-";
/// The file in a $TMPDIR scratch directory that names the run that made it.
pub const OWNER: &str = "pgdr-owner";

/// A new scratch directory for pg_dump (0700): inside `staging` when there is one (covered
/// by the snapshot directory's lock and removed with it), else `$TMPDIR/pgdr-dump-XXXXXX`
/// with its [`OWNER`] line.
///
/// # Errors
/// It cannot be made.
pub fn scratch(staging: Option<&Path>) -> Result<tempfile::TempDir> {
    let parent = staging.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = tempfile::Builder::new()
        .prefix(SCRATCH_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&parent)
        .context(|| {
            format!(
                "cannot make a scratch directory for pg_dump in {}",
                parent.display()
            )
        })?;
    if staging.is_none() {
        let p = dir.path().join(OWNER);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .and_then(|mut f| f.write_all(Holder::me().to_line().as_bytes()))
            .context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(dir)
}

/// The staging directories killed runs left in snapshot directory `d`: `.NAME.pgdr-tmp.PID`
/// directories (NAME a snapshot name, PID digits; not symlinks).
fn staging_dirs(d: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(|| format!("cannot list {}", d.display())),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.context(|| format!("cannot list {}", d.display()))?;
        let n = e.file_name();
        let Some((name, pid)) = n
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.rsplit_once(".pgdr-tmp."))
        else {
            continue;
        };
        let pid_like = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
        // file_type() is the entry's own (lstat): a symlink is never followed.
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if pid_like && is_dir && crate::meta::parse_name(name).is_some() {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// The scratch directories in $TMPDIR whose maker is provably gone.
fn scratch_dirs() -> Vec<PathBuf> {
    let tmp = std::env::temp_dir();
    let me = Holder::me();
    let uid = rustix::process::geteuid().as_raw();
    let mut out = Vec::new();
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        if !e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(SCRATCH_PREFIX))
        {
            continue;
        }
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if !m.is_dir() || m.uid() != uid {
            continue;
        }
        let owner = e.path().join(OWNER);
        let mine = owner
            .symlink_metadata()
            .is_ok_and(|o| o.is_file() && o.uid() == uid);
        let gone = mine
            && std::fs::read_to_string(&owner)
                .ok()
                .and_then(|t| Holder::of_text(&t))
                .is_some_and(|h| h.gone(&me));
        if gone {
            out.push(e.path());
        }
    }
    out
}

/// Removes what killed runs left for `place` and in $TMPDIR (the caller holds the place's
/// lock), or with `dry_run` only finds it, with one stderr note each; returns local paths
/// and a repository's `dumps/NAME`, sorted. A dry run holds no lock: it lists what a real run
/// would remove.
///
/// # Errors
/// The place cannot be listed, or a leftover cannot be removed (those removed before it are
/// gone).
pub fn remove(place: &Place, dry_run: bool) -> Result<Vec<String>> {
    let did = if dry_run { "would remove" } else { "removed" };
    let mut local = scratch_dirs();
    if let Place::Dir(d) = place {
        local.extend(staging_dirs(d)?);
    }
    local.sort();
    let mut out = Vec::new();
    for p in &local {
        if !dry_run {
            match std::fs::remove_dir_all(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).context(|| format!("cannot remove {}", p.display()))
                }
                _ => {}
            }
        }
        pgdr_core::runner::note(format!(
            "{did} {}: a partial dump left by a run that was killed",
            p.display()
        ));
        out.push(p.display().to_string());
    }
    if let Place::Dir(d) = place {
        if !dry_run && local.iter().any(|p| p.parent() == Some(d.as_path())) {
            let _ = pgdr_core::fsx::fsync_dir(d);
        }
    }
    if let Place::Repo(repo, _) = place {
        let mut orphans = dump::survey(repo)?.orphans;
        orphans.sort_by(|a, b| a.name.cmp(&b.name));
        // Only names pgdr gives a snapshot: anything else under dumps/ is not a run's.
        for o in orphans
            .into_iter()
            .filter(|o| crate::meta::parse_name(&o.name).is_some())
        {
            if !dry_run {
                repo.store().delete(&o.keys)?;
            }
            let name = format!("{}{}", dump::PREFIX, o.name);
            pgdr_core::runner::note(format!(
                "{did} {}: a partial dump left by a run that was killed",
                repo.store().locate(&name)
            ));
            out.push(name);
        }
    }
    Ok(out)
}
