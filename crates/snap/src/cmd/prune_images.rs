//! snap-prune --repo: the policy of local pruning applied to a repository's images (every
//! image of the cluster, whichever data directory it was taken of: they restore the same
//! database and share its WAL). The same promises: never the newest, reasons for every kept
//! image, --dry-run changes nothing, and `oldest_kept.wal_start` for `wal-archive prune -`.
//! Then the pieces no remaining image references are removed (pgdr_repo::image::sweep), under
//! the images lock an upload holds too, so a piece an upload in progress has decided to
//! reference is never removed.

use super::prune::{brief, check_policy, judge, oldest_kept};
use crate::doc::{KeptSnapshot, PruneReport, SweptObjects};
use crate::image::meta_of;
use crate::meta::SnapshotMeta;
use crate::retention::Policy;
use chrono::{DateTime, Utc};
use pgdr_core::{Error, Result};
use pgdr_repo::image::{self, manifest, sweep};
use pgdr_repo::timeline;
use pgdr_repo::Repo;
use std::path::PathBuf;
use std::time::Duration;

/// What snap-prune --repo was asked for.
#[derive(Debug, Clone)]
pub struct ImagePruneRequest {
    /// The repository, as given.
    pub repo: PathBuf,
    /// Only images of this database system (the repository's must be it).
    pub system_id: Option<String>,
    pub policy: Policy,
    /// Only images with this label are considered.
    pub label: Option<String>,
    pub local_time: bool,
    pub dry_run: bool,
    pub wait_lock: Option<Duration>,
    pub now: DateTime<Utc>,
}

/// Applies the policy to the images of `req.repo`.
///
/// # Errors
/// No rule (exit 2); the repository cannot be opened, is of another database system, or an
/// image's manifest cannot be read (nothing is removed then); the images lock is held (exit
/// 75); a removal failed.
pub fn run(req: &ImagePruneRequest) -> Result<PruneReport> {
    check_policy(&req.policy)?;
    let repo = Repo::open(&req.repo)?;
    if let (Some(want), Some(have)) = (&req.system_id, repo.identity()) {
        if *want != have.system_identifier.to_string() {
            return Err(Error::failed(format!(
                "repository {} holds database system {}, not {want}",
                repo.location(),
                have.system_identifier
            ))
            .hint("check --repo and --system-id"));
        }
    }
    let _lock = if req.dry_run {
        None
    } else {
        Some(repo.store().lock(
            image::LOCK,
            &format!("the image store of repository {}", repo.location()),
            req.wait_lock,
        )?)
    };
    let mut all: Vec<SnapshotMeta> = manifest::all(&repo)?
        .iter()
        .map(meta_of)
        .collect::<Result<_>>()?;
    if let Some(id) = &req.system_id {
        all.retain(|m| m.system_identifier == *id);
    }
    // After a failover the policy counts only images a clone can recover onto the newest
    // timeline (snap-clone chooses no other): an image of the abandoned timeline, consistent
    // after the switch, must not stand in for the base of the window or the last N. It is
    // kept, outside the policy, with the reason.
    let newest = match all.iter().map(|m| m.timeline).min() {
        Some(from) => timeline::newest(&repo, from)?,
        None => None,
    };
    let off_reason = |m: &SnapshotMeta| {
        let n = newest.as_ref()?;
        let why = timeline::fits(n, m.timeline, m.consistent_lsn()).err()?;
        Some(format!(
            "not counted: no clone recovers it onto timeline {}, the newest ({why})",
            n.timeline
        ))
    };
    let (on, off): (Vec<SnapshotMeta>, Vec<SnapshotMeta>) =
        all.iter().cloned().partition(|m| off_reason(m).is_none());
    let mut judged = judge(
        &on,
        req.label.as_deref(),
        &req.policy,
        req.local_time,
        req.now,
    );
    for m in off
        .iter()
        .filter(|m| req.label.is_none() || m.label == req.label)
    {
        judged.kept.push(KeptSnapshot {
            snapshot: m.snapshot.clone(),
            created: m.created,
            label: m.label.clone(),
            reasons: off_reason(m).into_iter().collect(),
        });
    }
    judged.kept.sort_by_key(|k| std::cmp::Reverse(k.created));
    let gone: Vec<String> = judged.doomed.iter().map(|m| m.snapshot.clone()).collect();
    let destroyed = judged.doomed.iter().map(|m| brief(m)).collect();
    let swept = sweep::sweep(&repo, &gone, req.dry_run, req.now.timestamp())?;
    Ok(PruneReport {
        removed_leftovers: Vec::new(),
        pgdata: None,
        backend: "image".into(),
        store: None,
        repository: Some(repo.location()),
        objects: Some(SweptObjects {
            removed: swept.objects_removed,
            removed_stored_bytes: swept.stored_bytes_removed,
            kept: swept.objects_kept,
            leftovers_removed: swept.leftovers_removed,
        }),
        dry_run: req.dry_run,
        kept: judged.kept,
        destroyed,
        skipped: Vec::new(),
        oldest_kept: oldest_kept(&all, &gone, req.now),
        problems: judged.problems,
    })
}
