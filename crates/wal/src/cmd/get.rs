//! `wal-archive get`: PostgreSQL's restore_command. Exit 1 only for "not archived" (how
//! recovery learns it reached the end of the archive); anything archived that cannot be
//! read back intact, and any repository that cannot be used, exits [`GET_FATAL`] with nothing
//! written to DEST, so PostgreSQL stops recovery instead of ending it early at the wrong point.

use crate::cmd::prefetch;
use crate::doc::GetReport;
use pgdr_core::fsx::Pending;
use pgdr_core::{Context, Error, ErrorKind, Result};
use pgdr_pgformat::wal_name::{Kind, WalName};
use pgdr_repo::file::{dir_of, restore_sized, RestoreError};
use pgdr_repo::repo::{key_of, OpenOptions, Repo};
use pgdr_repo::stored::{hex, Header};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The exit code of `get` when a file is archived but cannot be read back intact. PostgreSQL
/// treats a restore_command status above 125 as fatal and stops recovery, instead of taking
/// the failure for "end of archive" and ending recovery early at the wrong point.
pub const GET_FATAL: u8 = 126;

/// What to restore.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// The file name (%f).
    pub name: String,
    /// Where to write it (%p).
    pub dest: PathBuf,
    /// Segments to prefetch ahead (only under PostgreSQL's RECOVERYXLOG, or with `spool`).
    pub prefetch: usize,
    /// The prefetch spool (default: pgdr_wal_prefetch in the data directory).
    pub spool: Option<PathBuf>,
}

/// Makes an error fatal to recovery (exit [`GET_FATAL`]).
pub fn fatal(e: Error) -> Error {
    e.kind(ErrorKind::Code(GET_FATAL))
}

/// Restores `o.name` into `o.dest`.
///
/// # Errors
/// Exit 1 with one line for a name not archived; exit [`GET_FATAL`] for everything else,
/// a name PostgreSQL never asks for included (a restore_command that exits 2 would end
/// recovery as if the archive ended there).
pub fn get(location: &Path, o: &GetOptions) -> Result<GetReport> {
    let name = WalName::parse(&o.name).ok_or_else(|| {
        fatal(
            Error::usage(format!("cannot get {:?}", o.name))
                .because("not a WAL segment, .partial, .backup or .history file name")
                .hint("restore_command passes the name as %f"),
        )
    })?;
    // The file's read starts with the settings' (on S3, one round trip for both); its answer,
    // "not archived" included, is looked at only once the repository opened.
    let open = OpenOptions {
        read_ahead: vec![key_of(&name)],
        ..OpenOptions::default()
    };
    let repo = Repo::open_with(location, &open).map_err(fatal)?;
    let spool = prefetch::spool_dir(o);
    let taken = spool
        .as_ref()
        .filter(|_| name.kind == Kind::Segment)
        .and_then(|s| prefetch::take_from_spool(&repo, &name, s, &o.dest));
    let from_prefetch = taken.is_some();
    let header = match taken {
        Some(h) => h,
        None => restore_to(&repo, &name, &o.dest)?,
    };
    let mut started = 0;
    if let (Some(spool), Kind::Segment, Some(id)) = (&spool, name.kind, repo.identity()) {
        let count = prefetch::spool_cap(o.prefetch, id.wal_segment_size);
        if prefetch::spawn(location, spool, &name, count, &dir_of(&o.dest)) {
            started = count;
        }
    }
    Ok(GetReport {
        name: name.to_string(),
        dest: o.dest.display().to_string(),
        bytes: header.size,
        compression: header.compression,
        sha256: hex(&header.sha256),
        from_prefetch,
        prefetch: started,
    })
}

/// Restores `name` verified into a file beside `dest` that has no name yet where the
/// filesystem allows (so a get killed by SIGKILL leaves nothing behind), then publishes it as
/// `dest`. Any failure is fatal and leaves `dest` untouched.
fn restore_to(repo: &Repo, name: &WalName, dest: &Path) -> Result<Header> {
    let cannot_write = || format!("cannot write {}", dest.display());
    let (pending, f) = Pending::beside(dest).context(cannot_write).map_err(fatal)?;
    let reserved = f.try_clone().ok();
    let mut w = io::BufWriter::with_capacity(1 << 20, f);
    let mut size = |len| {
        if let Some(f) = &reserved {
            pgdr_core::fsx::reserve(f, len);
        }
    };
    let h = restore_sized(repo, name, &mut w, &mut size).map_err(|e| match e {
        // "Not found" is how recovery learns it reached the end of the archive: exit 1, one
        // quiet line.
        RestoreError::Missing => Error::failed(format!("{name} is not in the archive")),
        RestoreError::Write(io) => fatal(Err::<(), _>(io).context(cannot_write).unwrap_err()),
        RestoreError::Store(e) => fatal(e),
        RestoreError::Damaged(why) => fatal(
            Error::failed(format!("{name} is archived but cannot be read back intact"))
                .because(why)
                .hint("recovery stops here rather than end early; run 'wal-archive verify'"),
        ),
    })?;
    let f = w
        .into_inner()
        .map_err(|e| e.into_error())
        .context(cannot_write)
        .map_err(fatal)?;
    publish(pending, f, dest)?;
    Ok(h)
}

/// Publishes the restored file as `dest` (linked when unnamed, else renamed), without syncing
/// it: PostgreSQL reads the file it
/// asked for, copies what it keeps into its own files and fsyncs those, and a crash before
/// then restarts recovery, which asks the archive again. A sync here would only wait for the
/// disk (pgBackRest and PostgreSQL's own restore paths skip it too).
fn publish(pending: Pending, f: fs::File, dest: &Path) -> Result<()> {
    let _guard = pgdr_core::signals::critical_section();
    pending
        .publish(&f)
        .context(|| format!("cannot write {}", dest.display()))
        .map_err(fatal)
}
