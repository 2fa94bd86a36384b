//! snap-take --list: a data directory's snapshots and a repository's images, each with the
//! window it can serve: from its consistent point to the end of the continuous WAL the
//! repository holds from its wal_start (pgdr_repo's survey), following timeline switches.

use crate::backend::{Backend, BackendKind};
use crate::datadir;
use crate::doc::{ListedSnapshot, SnapshotList, Window};
use crate::image::meta_of;
use crate::meta::SnapshotMeta;
use chrono::DateTime;
use pgdr_core::{Error, Result};
use pgdr_pgformat::wal_name::WalName;
use pgdr_pgformat::Lsn;
use pgdr_repo::image::{manifest, manifest_key};
use pgdr_repo::survey::{self, Survey};
use pgdr_repo::Repo;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// The data directory whose snapshots to list.
    pub pgdata: Option<PathBuf>,
    pub backend: Option<BackendKind>,
    pub snapshot_dir: Option<PathBuf>,
    /// The repository whose images to list, and whose WAL gives the windows.
    pub repo: Option<PathBuf>,
}

/// Lists the snapshots of `req.pgdata` and the images of `req.repo`, oldest first.
///
/// # Errors
/// Neither given (exit 2); not a data directory; the storage or the repository cannot be
/// read.
pub fn run(req: &ListRequest) -> Result<SnapshotList> {
    if req.pgdata.is_none() && req.repo.is_none() {
        return Err(Error::usage("nothing to list")
            .hint("give --pgdata DIR for its snapshots, --repo REPO for its images, or both"));
    }
    let repo = req.repo.as_deref().map(Repo::open).transpose()?;
    let survey = repo.as_ref().map(survey::survey).transpose()?;
    let sysid = repo
        .as_ref()
        .and_then(Repo::identity)
        .map(|i| i.system_identifier.to_string());
    let window = |m: &SnapshotMeta| match (&survey, &sysid) {
        (Some(s), Some(id)) if *id == m.system_identifier => window(m, s),
        _ => None,
    };
    let mut out = Vec::new();
    let mut pgdata = None;
    if let Some(p) = &req.pgdata {
        let p = datadir::check_data_dir(p)?;
        let backend = Backend::detect(&p, req.backend, req.snapshot_dir.as_deref())?;
        for m in backend.list()? {
            out.push(listed(
                &m,
                "snapshot",
                &m.backend,
                &m.location,
                None,
                window(&m),
            ));
        }
        pgdata = Some(p);
    }
    if let Some(r) = &repo {
        for man in manifest::all(r)? {
            let m = meta_of(&man)?;
            let at = r.store().locate(&manifest_key(&man.image));
            out.push(listed(
                &m,
                "image",
                "image",
                &at,
                Some(man.bytes),
                window(&m),
            ));
        }
    }
    out.sort_by(|a, b| (a.created, &a.snapshot, &a.kind).cmp(&(b.created, &b.snapshot, &b.kind)));
    Ok(SnapshotList {
        pgdata,
        repository: repo.map(|r| r.location()),
        snapshots: out,
    })
}

fn listed(
    m: &SnapshotMeta,
    kind: &str,
    backend: &str,
    location: &str,
    bytes: Option<u64>,
    window: Option<Window>,
) -> ListedSnapshot {
    ListedSnapshot {
        snapshot: m.snapshot.clone(),
        kind: kind.into(),
        backend: backend.into(),
        location: location.into(),
        created: m.created,
        label: m.label.clone(),
        pgdata: m.pgdata.clone(),
        system_identifier: m.system_identifier.clone(),
        timeline: m.timeline,
        wal_start: m.wal_start.clone(),
        consistent_at: m.consistent_at,
        consistent_lsn: m.consistent_lsn(),
        bytes,
        window,
    }
}

/// The window of `m` in the surveyed repository (of `m`'s database system), when it holds
/// continuous WAL from wal_start to past the consistent point.
pub fn window(m: &SnapshotMeta, s: &Survey) -> Option<Window> {
    let seg = s.seg_size;
    if seg == 0 {
        return None;
    }
    if !on_newest_history(m, s) {
        return None;
    }
    let start = WalName::parse(&m.wal_start)?;
    let (tli, last) = run_end(s, start.timeline, start.segno(seg), 0)?;
    let to_wal = WalName::segment(tli, last, seg).to_string();
    // A crash image's own pg_wal (in the snapshot, replayed first) may run past the archive.
    let to_lsn = Lsn((last + 1) * seg).max(m.wal_end.unwrap_or_default());
    let from_lsn = m.consistent_lsn();
    if to_lsn < from_lsn {
        return None;
    }
    let archived = s.files.iter().find(|a| a.name.to_string() == to_wal)?;
    Some(Window {
        from: m.consistent_at,
        from_lsn,
        to_wal,
        to_lsn,
        to_archived: DateTime::from_timestamp(archived.info.modified, 0)?,
    })
}

/// Whether a clone of `m` recovers onto the repository's newest timeline (snap-clone follows
/// it, and refuses a snapshot consistent only after that timeline branched off its own:
/// pgdr_repo::timeline). True when the history is not known (not read without an identity).
fn on_newest_history(m: &SnapshotMeta, s: &Survey) -> bool {
    let Some((&tli, Ok(history))) = s.history.iter().next_back() else {
        return true;
    };
    if tli <= m.timeline || history.is_empty() {
        return true;
    }
    let newest = pgdr_repo::timeline::Newest {
        timeline: tli,
        history: history.clone(),
    };
    pgdr_repo::timeline::fits(&newest, m.timeline, m.consistent_lsn()).is_ok()
}

/// The last segment (timeline, number) of the continuous run from `segno` on `tli`; where a
/// later timeline branched off inside the run and continues it, its run instead (recovery
/// follows the newest timeline, recovery_target_timeline = latest).
fn run_end(s: &Survey, tli: u32, segno: u64, depth: u32) -> Option<(u32, u64)> {
    let have: BTreeSet<u64> = s
        .timelines
        .get(&tli)?
        .segments
        .iter()
        .map(|x| x.0)
        .collect();
    if !have.contains(&segno) || depth > 64 {
        return None;
    }
    let mut last = segno;
    while have.contains(&(last + 1)) {
        last += 1;
    }
    for (child, history) in s.history.iter().rev() {
        let Some(branch) = history.as_ref().ok().and_then(|h| h.last()) else {
            continue;
        };
        if *child <= tli || branch.timeline != tli {
            continue;
        }
        let at = branch.switchpoint.0 / s.seg_size;
        if (segno..=last + 1).contains(&at) {
            if let Some(r) = run_end(s, *child, at, depth + 1) {
                return Some(r);
            }
        }
    }
    Some((tli, last))
}
