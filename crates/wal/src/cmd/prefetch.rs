//! `get --prefetch N`: while PostgreSQL replays one segment, a background worker (the hidden
//! `prefetch-worker` subcommand) decompresses and verifies the next N into a spool outside
//! pg_wal; `get` takes a spooled segment after checking it against the archived checksum.

use crate::cmd::get::GetOptions;
use crate::doc::PrefetchReport;
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::wal_name::WalName;
use pgdr_repo::file::{self, read_header};
use pgdr_repo::repo::{key_of, Repo};
use pgdr_repo::store::local::temp_beside;
use pgdr_repo::stored::{self, Header};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What the worker fills.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The spool directory.
    pub spool: PathBuf,
    /// The segment PostgreSQL just got: the worker fetches the ones after it.
    pub after: String,
    /// How many.
    pub count: usize,
}

/// The spool for a `get`: `--spool`, else `pgdr_wal_prefetch` in the data directory (beside
/// pg_wal) when DEST is recovery's own `pg_wal/RECOVERYXLOG`; pg_rewind and hand calls get no
/// prefetch.
pub fn spool_dir(o: &GetOptions) -> Option<PathBuf> {
    if let Some(s) = &o.spool {
        return Some(s.clone());
    }
    if o.prefetch == 0 || o.dest.file_name()? != "RECOVERYXLOG" {
        return None;
    }
    let dest = std::path::absolute(&o.dest).ok()?;
    Some(dest.parent()?.parent()?.join("pgdr_wal_prefetch"))
}

/// Serves `name` from the spool when a prefetched copy is there and still matches the
/// archived checksum; anything else leaves it to the archive.
pub fn take_from_spool(repo: &Repo, name: &WalName, spool: &Path, dest: &Path) -> Option<Header> {
    let p = spool.join(name.to_string());
    if !p.is_file() {
        return None;
    }
    let h = read_header(repo, &key_of(name)).ok()?;
    let ok = File::open(&p)
        .and_then(|mut f| stored::sha256_of(&mut f))
        .is_ok_and(|(sha, size)| sha == h.sha256 && size == h.size);
    if !ok {
        let _ = fs::remove_file(&p);
        return None;
    }
    let _guard = pgdr_core::signals::critical_section();
    if fs::rename(&p, dest).is_err() {
        return None; // another file system: read it from the archive instead
    }
    File::open(dest).and_then(|f| f.sync_all()).ok()?;
    pgdr_core::fsx::fsync_dir(&file::dir_of(dest)).ok()?;
    Some(h)
}

/// Starts the worker in the background; false when it could not be started.
pub fn spawn(location: &Path, spool: &Path, after: &WalName, count: usize) -> bool {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    if count == 0 {
        return false;
    }
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    Command::new(exe)
        .arg("--repo")
        .arg(location)
        .arg("prefetch-worker")
        .arg("--spool")
        .arg(spool)
        .arg("--after")
        .arg(after.to_string())
        .arg("--count")
        .arg(count.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: the signal PostgreSQL sends restore_command's group when
        // recovery ends does not reach it.
        .process_group(0)
        .spawn()
        .is_ok()
}

/// Fills the spool with the next `count` segments after `after`, each verified then renamed
/// into place; one worker per spool at a time; other spool entries are removed. Stops at the
/// first segment it cannot get (get reports the damage when recovery asks for it).
///
/// # Errors
/// The repository or the spool cannot be used.
pub fn worker(location: &Path, o: &WorkerOptions) -> Result<PrefetchReport> {
    let repo = Repo::open(location)?;
    let after = WalName::parse(&o.after).ok_or_else(|| Error::usage("bad --after"))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&o.spool)
        .context(|| format!("cannot create {}", o.spool.display()))?;
    // Decompressed WAL is as private as the repository.
    let mode = fs::metadata(&o.spool)
        .context(|| format!("cannot open {}", o.spool.display()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(
            Error::failed(format!("refusing spool {}", o.spool.display())).because(format!(
                "it is writable by other users (mode {:04o})",
                mode & 0o7777
            )),
        );
    }
    let _lock = match pgdr_core::lock::acquire(&o.spool.join(".lock"), "the prefetch spool", None) {
        Ok(l) => l,
        Err(_) => return Ok(PrefetchReport { prefetched: 0 }),
    };
    let Some(id) = repo.identity() else {
        return Ok(PrefetchReport { prefetched: 0 });
    };
    let size = id.wal_segment_size;
    let first = after.segno(size) + 1;
    let wanted: Vec<WalName> = (first..first + o.count as u64)
        .map(|s| WalName::segment(after.timeline, s, size))
        .collect();
    let names: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
    // Bounded: anything not among the next `count` names goes.
    for e in fs::read_dir(&o.spool).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n != ".lock" && !names.contains(&n) {
            let _ = fs::remove_file(e.path());
        }
    }
    let mut done = 0;
    for w in &wanted {
        let target = o.spool.join(w.to_string());
        if target.exists() {
            continue;
        }
        let Ok((temp, f)) = temp_beside(&target) else {
            break;
        };
        let mut bw = io::BufWriter::with_capacity(1 << 20, f);
        if file::restore(&repo, w, &mut bw).is_err() {
            break;
        }
        let Ok(f) = bw.into_inner() else { break };
        if f.sync_all().is_err() || fs::rename(temp.path(), &target).is_err() {
            break;
        }
        temp.keep();
        done += 1;
    }
    Ok(PrefetchReport { prefetched: done })
}
