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

/// The reference to a snapshot in a report.
pub fn brief(m: &SnapshotMeta) -> SnapshotRef {
    SnapshotRef {
        snapshot: m.snapshot.clone(),
        created: m.created,
        label: m.label.clone(),
    }
}

/// What a policy says about a set of snapshots (or images): the kept ones with their reasons
/// (newest first), the ones no rule keeps (oldest first), and what needs a human.
pub struct Judged<'a> {
    pub kept: Vec<KeptSnapshot>,
    pub doomed: Vec<&'a SnapshotMeta>,
    pub problems: Vec<String>,
}

/// Applies `policy` to the snapshots of `all` with `label` (all when None) at `now`.
pub fn judge<'a>(
    all: &'a [SnapshotMeta],
    label: Option<&str>,
    policy: &Policy,
    local_time: bool,
    now: DateTime<Utc>,
) -> Judged<'a> {
    let considered: Vec<&SnapshotMeta> = all
        .iter()
        .filter(|m| label.is_none() || m.label.as_deref() == label)
        .collect();
    let items: Vec<Item> = considered
        .iter()
        .map(|m| Item {
            name: m.snapshot.clone(),
            time: m.created.timestamp(),
            subsec_millis: m.created.timestamp_subsec_millis(),
        })
        .collect();
    let cal: &dyn Calendar = if local_time {
        &chrono::Local
    } else {
        &chrono::Utc
    };
    let verdicts = retention::apply(&items, policy, cal, now.timestamp());
    let by_name = |n: &str| {
        considered
            .iter()
            .find(|m| m.snapshot == n)
            .copied()
            .expect("listed")
    };
    let mut out = Judged {
        kept: Vec::new(),
        doomed: Vec::new(),
        problems: Vec::new(),
    };
    for v in verdicts.iter().rev() {
        // oldest first, so a failure part-way leaves the newest ones
        let m = by_name(&v.name);
        if v.reasons.iter().any(|r| r == FUTURE) {
            out.problems.push(format!(
                "{} is dated {}, after now ({}): a clock that had jumped ahead; it is kept and \
                 counted by no rule (check it, then destroy it by hand)",
                m.snapshot,
                m.created.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                now.to_rfc3339_opts(SecondsFormat::Secs, true)
            ));
        }
        if v.keep() {
            out.kept.push(KeptSnapshot {
                snapshot: m.snapshot.clone(),
                created: m.created,
                label: m.label.clone(),
                reasons: v.reasons.clone(),
            });
        } else {
            out.doomed.push(m);
        }
    }
    out.kept.reverse();
    out
}

/// The oldest snapshot of `all` (oldest first) that still exists once `gone` are destroyed
/// (of any label): WAL older than its wal_start is no longer needed by any snapshot. One
/// dated in the future says nothing about WAL age, so it counts only when nothing else is
/// left.
pub fn oldest_kept(
    all: &[SnapshotMeta],
    gone: &[String],
    now: DateTime<Utc>,
) -> Option<OldestKept> {
    let left: Vec<&SnapshotMeta> = all.iter().filter(|m| !gone.contains(&m.snapshot)).collect();
    left.iter()
        .find(|m| m.created <= now)
        .or_else(|| left.first())
        .map(|m| OldestKept {
            snapshot: m.snapshot.clone(),
            created: m.created,
            wal_start: m.wal_start.clone(),
            timeline: m.timeline,
        })
}

/// An empty policy is refused: it would keep only the newest snapshot.
///
/// # Errors
/// A usage error.
pub fn check_policy(policy: &Policy) -> Result<()> {
    if policy.is_empty() {
        return Err(Error::usage("no retention rule given")
            .because("an empty policy would keep only the newest snapshot")
            .hint("give at least one --keep-* or --pitr-window"));
    }
    Ok(())
}

/// Applies the policy: destroys (unless a dry run) what no rule keeps, never the newest,
/// never a snapshot with a clone, never one dated in the future; reports it all.
///
/// # Errors
/// Not a data directory, the storage cannot be read, the lock is held (exit 75), or a destroy
/// failed (the message lists what was destroyed before it).
pub fn run(req: &PruneRequest) -> Result<PruneReport> {
    check_policy(&req.policy)?;
    let pgdata = datadir::check_data_dir(&req.pgdata)?;
    let backend = Backend::detect(&pgdata, req.backend, req.store.as_deref())?;
    let _lock = if req.dry_run {
        None
    } else {
        Some(backend.lock(req.wait_lock)?)
    };
    // Under the lock no other run of this store is taking a snapshot, so what an unfinished
    // one leaves is a killed run's (see backend::leftovers). A dry run holds no lock: it
    // lists them as what a real run would remove.
    let removed_leftovers = crate::backend::leftovers::remove(&backend, req.dry_run)?;
    let all = backend.list()?;
    let judged = judge(
        &all,
        req.label.as_deref(),
        &req.policy,
        req.local_time,
        req.now,
    );
    let mut destroyed = Vec::new();
    let mut skipped = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    for m in judged.doomed {
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
    Ok(PruneReport {
        pgdata: Some(pgdata),
        backend: backend.kind().name().into(),
        store: Some(backend.store().to_path_buf()),
        repository: None,
        objects: None,
        dry_run: req.dry_run,
        kept: judged.kept,
        destroyed,
        skipped,
        oldest_kept: oldest_kept(&all, &gone, req.now),
        problems: judged.problems,
        removed_leftovers,
    })
}
