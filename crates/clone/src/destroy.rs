//! `snap-clone --destroy`: stops a clone's server and destroys what snap-clone made.

use crate::doc::DestroyReport;
use crate::server::Server;
use pgdr_core::{Context, Error, Result};
use pgdr_snap::datadir::postmaster_pid;
use pgdr_snap::meta::check_label_arg;
use pgdr_snap::registry::{CloneRecord, Registry};
use pgdr_snap::Backend;
use std::time::Duration;

/// Destroys the clone `name`. A name without a record is refused without creating anything
/// (no registry, no lock file).
///
/// # Errors
/// No such clone, a record this run must not trust, the clone's storage is not the backend's
/// clone, the lock is held (exit 75), or the storage refused.
pub fn run(registry: &Registry, name: &str, wait_lock: Option<Duration>) -> Result<DestroyReport> {
    check_label_arg("--destroy", name)?;
    let missing = || {
        Error::failed(format!("no clone named {name}"))
            .because(format!(
                "snap-clone did not create it (it has no record in the clone registry {})",
                registry.dir.display()
            ))
            .hint("snap-clone --list shows the clones it made")
    };
    if registry.read(name)?.is_none() {
        return Err(missing());
    }
    let _lock = registry.lock(name, wait_lock)?;
    let rec = registry.read(name)?.ok_or_else(missing)?;
    remove(registry, &rec, true)
}

/// Stops the server of the clone `rec` (recorded in `registry`; a fast shutdown when
/// `graceful`, else an immediate one) and destroys it and its record, with its name's lock
/// held by the caller.
///
/// # Errors
/// A record this run must not trust, the clone's storage is not the backend's clone, or the
/// storage refused.
pub(crate) fn remove(
    registry: &Registry,
    rec: &CloneRecord,
    graceful: bool,
) -> Result<DestroyReport> {
    let name = &rec.clone;
    if !registry.trusted(rec) {
        return Err(Error::failed(format!("cannot destroy clone {name}"))
            .because(format!(
                "its record was written by neither root nor the owner of {}",
                rec.root.display()
            ))
            .hint("remove the record and the clone by hand if they are yours"));
    }
    // A restored image is a plain directory; a clone of a snapshot belongs to its backend.
    let backend = match rec.repository {
        Some(_) => None,
        None => Some(Backend::detect(
            &rec.source_pgdata,
            Some(rec.backend),
            Some(&rec.store),
        )?),
    };
    let mut stopped = false;
    if postmaster_pid(&rec.path).is_some() {
        if let Some(srv) = &rec.server {
            let owner = pgdr_core::owner::data_dir_owner(&rec.path)?;
            let bindir = pgdr_core::pgbin::bindir(Some(srv.pg_version))?;
            let mut s = Server::new(
                &rec.path,
                &bindir,
                &owner,
                &srv.socket_dir,
                srv.port,
                &srv.log,
                srv.pg_version,
            );
            s.stop(graceful);
            stopped = true;
        }
    }
    let existed = rec.root.exists();
    match &backend {
        Some(b) => b.remove_clone(rec)?,
        None => match std::fs::remove_dir_all(&rec.root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context(|| format!("cannot remove {}", rec.root.display()))
            }
            _ => {}
        },
    }
    if let Some(srv) = &rec.server {
        if !srv.socket_dir.starts_with(&rec.path) {
            let _ = std::fs::remove_dir_all(&srv.socket_dir);
        }
    }
    registry.remove(name)?;
    Ok(DestroyReport {
        destroyed: name.to_string(),
        snapshot: rec.snapshot.clone(),
        path: rec.path.clone(),
        location: rec.location.clone(),
        stopped,
        existed,
    })
}
