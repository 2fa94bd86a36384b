//! `wal-archive prune`: removes segments (and `.partial`, `.backup` files) below a bound on
//! every timeline, never `.history` files; the bound is a WAL name, an age, or the
//! `wal_start` of the oldest snapshot snap-prune kept (read as snap-prune's typed document).

use crate::doc::{PruneReport, PruneSource};
use pgdr_core::{Document, Error, Result};
use pgdr_pgformat::wal_name::{Kind, WalName};
use pgdr_repo::repo::{self, Repo, PRUNED_PREFIX, PRUNE_LOCK};
use std::path::Path;

/// The tool whose document `prune -` reads.
const PRODUCER: &str = pgdr_snap::doc::PruneReport::PRODUCERS[0];

/// Where the bound comes from.
#[derive(Debug, Clone)]
pub enum Bound {
    /// --before WALNAME: remove what comes before this segment.
    Before(String),
    /// --keep-days N: keep what was archived in the last N days (and everything after).
    KeepDays(f64),
    /// `-`: snap-prune's report; keep from its oldest kept snapshot's `wal_start`.
    SnapPrune(Box<pgdr_snap::doc::PruneReport>),
}

/// What to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub bound: Bound,
    /// Remove nothing; report what would be removed. A snap-prune document that is a dry run
    /// makes the run a dry run whatever this says.
    pub dry_run: bool,
    /// Wait this many seconds for another prune holding the lock (none: fail at once, 75).
    pub wait_lock: Option<f64>,
}

/// A WAL name usable as a bound.
fn segment_bound(s: &str, what: &str, size: Option<u64>) -> Result<WalName> {
    WalName::parse(s)
        .filter(|w| w.kind != Kind::History && size.is_none_or(|size| w.fits(size)))
        .ok_or_else(|| {
            Error::usage(format!("invalid {what} {s:?}"))
                .because("expected a 24-hex-digit WAL file name")
        })
}

/// Prunes the repository at `location`.
///
/// # Errors
/// Usage errors (exit 2) for a bad bound; exit 75 when another prune holds the lock; exit 1
/// when the repository cannot be used or a file cannot be removed.
pub fn prune(location: &Path, o: &PruneOptions) -> Result<PruneReport> {
    let repo = Repo::open(location)?;
    let size = repo.identity().map(|i| i.wal_segment_size);
    let (bound, source) = match &o.bound {
        Bound::Before(b) => (
            Some(segment_bound(b, "--before", size)?),
            PruneSource::Before,
        ),
        Bound::KeepDays(days) => {
            if !(days.is_finite() && *days >= 0.0) {
                return Err(Error::usage(format!("invalid --keep-days {days}")));
            }
            (keep_days_bound(&repo, *days)?, PruneSource::KeepDays)
        }
        Bound::SnapPrune(doc) => {
            let bound = doc
                .oldest_kept
                .as_ref()
                .map(|k| segment_bound(&k.wal_start, "oldest_kept.wal_start", size))
                .transpose()?;
            (bound, PruneSource::SnapPrune)
        }
    };
    // A document from a dry run makes this one a dry run too (SPEC "Pipelines are safe end
    // to end"): snap-prune --dry-run destroyed nothing, so its oldest_kept is only what would
    // remain, and the snapshots it would destroy still need their WAL.
    let dry_run_from = match &o.bound {
        _ if o.dry_run => Some("--dry-run".to_string()),
        Bound::SnapPrune(doc) if doc.dry_run() => Some(PRODUCER.to_string()),
        _ => None,
    };
    let mut report = PruneReport {
        repo: repo.location(),
        bound: None,
        source,
        dry_run: dry_run_from.is_some(),
        dry_run_from,
        removed: Vec::new(),
        removed_count: 0,
        removed_stored_bytes: 0,
        kept: 0,
        stale_temporary_files: 0,
        note: None,
    };
    let (Some(bound), Some(size)) = (bound, size) else {
        report.note = Some("no bound: nothing to keep from, nothing removed".into());
        return Ok(report);
    };
    report.bound = Some(bound.segment_name());
    let bound_seg = bound.segno(size);
    let store = repo.store();
    let _lock = if report.dry_run {
        None
    } else {
        let wait = pgdr_core::lock::wait_duration("--wait-lock", o.wait_lock)?;
        Some(store.lock(PRUNE_LOCK, &format!("repository {}", repo.location()), wait)?)
    };
    let listing = store.list("wal/")?;
    let mut doomed = Vec::new();
    for info in &listing.objects {
        let Some(w) = repo::name_of(&info.key) else {
            continue;
        };
        if w.kind == Kind::History || w.segno(size) >= bound_seg {
            report.kept += 1;
            continue;
        }
        report.removed.push(w.to_string());
        report.removed_stored_bytes += info.size;
        doomed.push(info.key.clone());
    }
    report.removed.sort();
    report.removed_count = report.removed.len() as u64;
    // Temporary files of pushes killed long ago.
    let day_ago = chrono::Utc::now().timestamp() - 86400;
    let stale: Vec<String> = listing
        .leftovers
        .iter()
        .filter(|l| l.modified < day_ago)
        .map(|l| l.key.clone())
        .collect();
    report.stale_temporary_files = stale.len() as u64;
    if !report.dry_run {
        if !doomed.is_empty() {
            // Recorded first: a copy into this repository must not bring them back.
            let marker = format!("{PRUNED_PREFIX}wal/{}", bound.segment_name());
            let staged = store.stage(&marker)?;
            store.create_if_absent(staged)?;
        }
        store.delete(&doomed)?;
        // Only tidying: a leftover that cannot go now goes next time.
        let _ = store.delete(&stale);
    }
    Ok(report)
}

/// The first segment archived in the last `days` days; the newest segment when nothing was
/// archived that recently (never an empty archive).
fn keep_days_bound(repo: &Repo, days: f64) -> Result<Option<WalName>> {
    let Some(id) = repo.identity() else {
        return Ok(None);
    };
    let size = id.wal_segment_size;
    let cutoff = chrono::Utc::now().timestamp() - (days * 86400.0) as i64;
    let listing = repo.store().list("wal/")?;
    let segs: Vec<(u64, i64)> = listing
        .objects
        .iter()
        .filter_map(|o| {
            let w = repo::name_of(&o.key)?;
            (w.kind == Kind::Segment).then(|| (w.segno(size), o.modified))
        })
        .collect();
    let recent = segs.iter().filter(|s| s.1 >= cutoff).map(|s| s.0).min();
    let newest = segs.iter().map(|s| s.0).max();
    Ok(recent.or(newest).map(|s| WalName::segment(1, s, size)))
}
