//! `wal-archive list`: what the repository holds, per timeline.

use crate::doc::ListReport;
use pgdr_core::Result;
use pgdr_repo::repo::Repo;
use pgdr_repo::survey::survey;
use std::path::Path;

/// Surveys the repository at `location`.
///
/// # Errors
/// Not an initialised repository, or one that cannot be listed.
pub fn list(location: &Path) -> Result<ListReport> {
    let repo = Repo::open(location)?;
    let s = survey(&repo)?;
    let id = repo.identity();
    Ok(ListReport {
        repo: repo.location(),
        format_version: repo.settings().version,
        system_identifier: id.map(|i| i.system_identifier.to_string()),
        wal_segment_size: id.map(|i| i.wal_segment_size),
        files: s.files.len() as u64,
        bytes: s.bytes,
        stored_bytes: s.stored,
        timelines: s.timelines(),
        history: s
            .history
            .keys()
            .map(|t| format!("{t:08X}.history"))
            .collect(),
        unreadable: s.unreadable_problems(),
        content_read: s.content_read,
    })
}
