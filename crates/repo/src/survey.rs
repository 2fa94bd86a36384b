//! A survey of the repository, shared by list and verify: every archived file by timeline,
//! the history files followed, sizes from the stored headers (nothing decompressed but the
//! small history files).

use crate::doc::{Gap, Problem, Timeline};
use crate::file::{self, RestoreError};
use crate::repo::{self, Repo};
use crate::store::ObjectInfo;
use pgdr_core::{Error, Result};
use pgdr_pgformat::history;
use pgdr_pgformat::wal_name::{Kind, WalName};
use std::collections::BTreeMap;

/// One archived file found.
#[derive(Debug, Clone)]
pub struct Archived {
    pub name: WalName,
    pub info: ObjectInfo,
}

/// What a timeline holds.
#[derive(Debug, Default)]
pub struct TimelineFiles {
    /// Segment numbers, ascending, with their names.
    pub segments: Vec<(u64, String)>,
    pub partial: Vec<String>,
    pub backup: Vec<String>,
    pub bytes: u64,
    pub stored: u64,
}

/// The whole repository.
#[derive(Debug, Default)]
pub struct Survey {
    pub timelines: BTreeMap<u32, TimelineFiles>,
    /// Each archived history file, parsed, or why it cannot be.
    pub history: BTreeMap<u32, std::result::Result<Vec<history::Entry>, String>>,
    /// Every archived file, in name order.
    pub files: Vec<Archived>,
    pub bytes: u64,
    pub stored: u64,
    /// (name, why) of files whose header cannot be read.
    pub unreadable: Vec<(String, String)>,
    /// Temporary files of writes in progress or killed.
    pub leftovers: Vec<ObjectInfo>,
    /// Objects under wal/ that are not archived files in their place.
    pub unknown: Vec<String>,
    /// The segment size (that of the repository's cluster).
    pub seg_size: u64,
    /// False for an encrypted repository surveyed without an identity: no header was read
    /// (`bytes` are 0) and history files were not followed (their entries are empty).
    pub content_read: bool,
}

/// Lists and classifies the repository's files: every `wal/` object, its header's size.
///
/// # Errors
/// The repository cannot be listed, or holds files while bound to no cluster.
pub fn survey(repo: &Repo) -> Result<Survey> {
    let listing = repo.store().list("wal/")?;
    let mut s = Survey {
        leftovers: listing.leftovers,
        content_read: repo.content_readable(),
        ..Survey::default()
    };
    for info in listing.objects {
        match repo::name_of(&info.key) {
            Some(name) => s.files.push(Archived { name, info }),
            None => s.unknown.push(repo.store().locate(&info.key)),
        }
    }
    s.files.sort_by_key(|a| a.name.to_string());
    let Some(id) = repo.identity() else {
        if s.files.is_empty() {
            return Ok(s);
        }
        return Err(
            Error::failed(format!("repository {} is inconsistent", repo.location())).because(
                format!(
                    "it holds {} archived files but is bound to no database system ({} is missing)",
                    s.files.len(),
                    repo::CLUSTER_KEY
                ),
            ),
        );
    };
    s.seg_size = id.wal_segment_size;
    for a in &s.files {
        let w = &a.name;
        let orig = match s.content_read.then(|| file::read_header(repo, &a.info.key)) {
            None => 0,
            Some(Ok(h)) => h.size,
            Some(Err(why)) => {
                s.unreadable.push((w.to_string(), why));
                0
            }
        };
        s.bytes += orig;
        s.stored += a.info.size;
        if w.kind == Kind::History && !s.content_read {
            s.history.insert(w.timeline, Ok(Vec::new()));
            continue;
        }
        if w.kind == Kind::History {
            let mut text = Vec::new();
            let h = match file::restore(repo, w, &mut text) {
                Ok(_) => history::parse(&String::from_utf8_lossy(&text))
                    .map_err(|e| format!("malformed: {e}")),
                Err(RestoreError::Damaged(why)) => Err(why),
                Err(RestoreError::Store(e)) => Err(e.to_string()),
                Err(RestoreError::Write(e)) => Err(e.to_string()),
                Err(RestoreError::Missing) => Err("it vanished".into()),
            };
            s.history.insert(w.timeline, h);
            continue;
        }
        let t = s.timelines.entry(w.timeline).or_default();
        t.bytes += orig;
        t.stored += a.info.size;
        match w.kind {
            Kind::Segment => t.segments.push((w.segno(s.seg_size), w.to_string())),
            Kind::Partial => t.partial.push(w.to_string()),
            _ => t.backup.push(w.to_string()),
        }
    }
    for t in s.timelines.values_mut() {
        t.segments.sort();
    }
    Ok(s)
}

/// The runs of missing segment numbers between the first and the last of `segnos`.
pub fn gaps(segnos: &[u64], tli: u32, size: u64) -> Vec<Gap> {
    segnos
        .windows(2)
        .filter(|w| w[1] > w[0] + 1)
        .map(|w| Gap {
            first: WalName::segment(tli, w[0] + 1, size).to_string(),
            last: WalName::segment(tli, w[1] - 1, size).to_string(),
            count: w[1] - w[0] - 1,
        })
        .collect()
}

impl Survey {
    /// Every timeline that has files or a history file, in order.
    pub fn timelines(&self) -> Vec<Timeline> {
        let mut tlis: Vec<u32> = self
            .timelines
            .keys()
            .chain(self.history.keys())
            .copied()
            .collect();
        tlis.sort();
        tlis.dedup();
        let empty = TimelineFiles::default();
        tlis.into_iter()
            .map(|tli| {
                let t = self.timelines.get(&tli).unwrap_or(&empty);
                let branch = match self.history.get(&tli) {
                    Some(Ok(h)) => h.last(),
                    _ => None,
                };
                let segnos: Vec<u64> = t.segments.iter().map(|s| s.0).collect();
                Timeline {
                    timeline: tli,
                    parent: branch.map(|e| e.timeline),
                    switchpoint: branch.map(|e| e.switchpoint),
                    history: self
                        .history
                        .contains_key(&tli)
                        .then(|| format!("{tli:08X}.history")),
                    first: t.segments.first().map(|s| s.1.clone()),
                    last: t.segments.last().map(|s| s.1.clone()),
                    count: t.segments.len() as u64,
                    bytes: t.bytes,
                    stored_bytes: t.stored,
                    gaps: gaps(&segnos, tli, self.seg_size),
                    partial: t.partial.clone(),
                    backup: t.backup.clone(),
                }
            })
            .collect()
    }

    /// The files whose header cannot be read, as problems.
    pub fn unreadable_problems(&self) -> Vec<Problem> {
        self.unreadable
            .iter()
            .map(|(n, w)| Problem {
                name: Some(n.clone()),
                timeline: None,
                problem: w.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_ranges() {
        let g = gaps(&[1, 2, 5, 6, 8], 1, 16 << 20);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].first, "000000010000000000000003");
        assert_eq!(g[0].count, 2);
        assert_eq!(g[1].last, "000000010000000000000007");
    }
}
