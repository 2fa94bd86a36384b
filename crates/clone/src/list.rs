//! `snap-clone --list`: every clone of the host's registry, with whether its server runs.

use crate::doc::{CloneList, ListedClone, ListedRecovery};
use pgdr_core::Result;
use pgdr_snap::datadir::postmaster_pid;
use pgdr_snap::registry::Registry;
use std::path::Path;

/// The clones in `registry`, only those of the data directory `source` when given.
///
/// # Errors
/// The registry cannot be read.
pub fn run(registry: &Registry, source: Option<&Path>) -> Result<CloneList> {
    let mut clones = Vec::new();
    for r in registry.list()? {
        if source.is_some_and(|s| s != r.source_pgdata) {
            continue;
        }
        let pid = postmaster_pid(&r.path);
        clones.push(ListedClone {
            clone: r.clone,
            snapshot: r.snapshot,
            source_pgdata: r.source_pgdata,
            backend: match r.repository {
                Some(_) => "image".into(),
                None => r.backend.name().into(),
            },
            location: r.location,
            exists: r.path.is_dir(),
            path: r.path,
            port: r.server.as_ref().map(|s| s.port),
            socket_dir: r.server.as_ref().map(|s| s.socket_dir.clone()),
            running: pid.is_some(),
            pid,
            state: r.state,
            created: r.created,
            recovery: r.server.map(|s| ListedRecovery {
                target: s.target,
                target_type: s.target_type,
                action: s.action,
            }),
        });
    }
    Ok(CloneList { clones })
}
