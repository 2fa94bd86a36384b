//! snap-prune's operation: a retention policy over one data directory's snap-take snapshots.

use crate::backend::{Backend, BackendKind};
use crate::datadir;
use crate::doc::{KeptSnapshot, OldestKept, PruneReport, SkippedSnapshot, SnapshotRef};
use crate::meta::SnapshotMeta;
use crate::registry::Registry;
use crate::retention::{self, Calendar, Item, Policy, FUTURE};
use chrono::{DateTime, SecondsFormat, Utc};
use pgdr_core::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// What snap-prune was asked for.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    /// The data directory whose snapshots to prune.
    pub pgdata: PathBuf,
    /// The backend, or None to detect it.
    pub backend: Option<BackendKind>,
    /// The snapshot store, or None for the default.
    pub store: Option<PathBuf>,
    pub policy: Policy,
    /// Only snapshots with this label are considered.
    pub label: Option<String>,
    /// Calendar periods in the machine's zone instead of UTC.
    pub local_time: bool,
    pub dry_run: bool,
    /// How long to wait for another run's lock.
    pub wait_lock: Option<Duration>,
    /// The clone registry to ask which snapshots have clones.
    pub registry: Registry,
    /// The clock: snapshots dated after it are in the future.
    pub now: DateTime<Utc>,
}

fn brief(m: &SnapshotMeta) -> SnapshotRef {
    SnapshotRef {
        snapshot: m.snapshot.clone(),
        created: m.created,
        label: m.label.clone(),
    }
}

/// Applies the policy: destroys (unless a dry run) what no rule keeps, never the newest,
/// never a snapshot with a clone, never one dated in the future; reports it all.
///
/// # Errors
/// Not a data directory, the storage cannot be read, the lock is held (exit 75), or a destroy
/// failed (the message lists what was destroyed before it).
pub fn run(req: &PruneRequest) -> Result<PruneReport> {
    if req.policy.is_empty() {
        return Err(Error::usage("no retention rule given")
            .because("an empty policy would keep only the newest snapshot")
            .hint("give at least one --keep-* or --pitr-window"));
    }
    let pgdata = datadir::check_data_dir(&req.pgdata)?;
    let backend = Backend::detect(&pgdata, req.backend, req.store.as_deref())?;
    let _lock = if req.dry_run {
        None
    } else {
        Some(backend.lock(req.wait_lock)?)
    };
    let all = backend.list()?;
    let considered: Vec<&SnapshotMeta> = all
        .iter()
        .filter(|m| req.label.is_none() || m.label == req.label)
        .collect();
    let items: Vec<Item> = considered
        .iter()
        .map(|m| Item {
            name: m.snapshot.clone(),
            time: m.created.timestamp(),
            subsec_millis: m.created.timestamp_subsec_millis(),
        })
        .collect();
    let cal: &dyn Calendar = if req.local_time {
        &chrono::Local
    } else {
        &chrono::Utc
    };
    let verdicts = retention::apply(&items, &req.policy, cal, req.now.timestamp());
    let by_name = |n: &str| {
        considered
            .iter()
            .find(|m| m.snapshot == n)
            .copied()
            .expect("listed")
    };
    let mut kept = Vec::new();
    let mut destroyed = Vec::new();
    let mut skipped = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for v in verdicts.iter().rev() {
        // oldest first, so a failure part-way leaves the newest ones
        let m = by_name(&v.name);
        if v.reasons.iter().any(|r| r == FUTURE) {
            problems.push(format!(
                "{} is dated {}, after now ({}): a clock that had jumped ahead; it is kept and \
                 counted by no rule (check it, then destroy it by hand)",
                m.snapshot,
                m.created.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                req.now.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
        if v.keep() {
            kept.push(KeptSnapshot {
                snapshot: m.snapshot.clone(),
                created: m.created,
                label: m.label.clone(),
                reasons: v.reasons.clone(),
            });
            continue;
        }
        if backend.has_clones(&req.registry, &m.snapshot)? {
            skipped.push(SkippedSnapshot {
                snapshot: m.snapshot.clone(),
                created: m.created,
                label: m.label.clone(),
                reason: "a clone depends on it".into(),
            });
            continue;
        }
        if !req.dry_run {
            if let Err(e) = backend.destroy(&req.registry, m) {
                let done = if gone.is_empty() {
                    "none".to_string()
                } else {
                    gone.join(", ")
                };
                return Err(Error::failed(format!("cannot destroy {}", m.snapshot))
                    .because(format!("{e}; destroyed before the failure: {done}"))
                    .hint("nothing else was changed; run again after fixing the cause"));
            }
        }
        gone.push(m.snapshot.clone());
        destroyed.push(brief(m));
    }
    kept.reverse();
    // The oldest snapshot that still exists afterwards (of any label): WAL older than its
    // wal_start is no longer needed by any snapshot. One dated in the future says nothing
    // about WAL age, so it counts only when nothing else is left.
    let left: Vec<&SnapshotMeta> = all.iter().filter(|m| !gone.contains(&m.snapshot)).collect();
    let oldest = left
        .iter()
        .find(|m| m.created <= req.now)
        .or_else(|| left.first())
        .map(|m| OldestKept {
            snapshot: m.snapshot.clone(),
            created: m.created,
            wal_start: m.wal_start.clone(),
            timeline: m.timeline,
        });
    Ok(PruneReport {
        pgdata,
        backend: backend.kind().name().into(),
        store: backend.store().to_path_buf(),
        dry_run: req.dry_run,
        kept,
        destroyed,
        skipped,
        oldest_kept: oldest,
        problems,
    })
}
