//! `wal-archive verify`: every archived file read back in full (checksum, header, cluster),
//! continuity per timeline, and each history file followed to its parent.

use crate::doc::{Problem, VerifyReport};
use pgdr_core::progress::Progress;
use pgdr_core::Result;
use pgdr_pgformat::wal_name::WalName;
use pgdr_repo::file::{restore, RestoreError};
use pgdr_repo::repo::Repo;
use pgdr_repo::survey::{gaps, survey, Survey};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Verifies the repository at `location`; the report's `ok` says whether it found a problem.
///
/// # Errors
/// Not an initialised repository, or one that cannot be listed.
pub fn verify(location: &Path) -> Result<VerifyReport> {
    let repo = Repo::open(location)?;
    let s = survey(&repo)?;
    let mut problems = if s.content_read {
        let progress = Progress::bytes(&format!("verifying {}", location.display()), || {
            Some(s.stored)
        });
        let found = read_back(&repo, &s, &progress);
        progress.finish();
        found
    } else {
        // Exit 0 still (names, sizes and continuity were checked), but a cron line reading
        // only the exit status should not pass this off as a content check.
        pgdr_core::runner::note(format!(
            "the content of {} was not verified: the repository is encrypted and no identity was given (--identity FILE or {})",
            repo.location(),
            pgdr_repo::crypt::IDENTITY_ENV
        ));
        Vec::new()
    };
    problems.extend(continuity(&s));
    for (n, why) in &s.unreadable {
        if !problems.iter().any(|p| p.name.as_ref() == Some(n)) {
            problems.push(Problem {
                name: Some(n.clone()),
                timeline: None,
                problem: why.clone(),
            });
        }
    }
    Ok(VerifyReport {
        repo: repo.location(),
        ok: problems.is_empty(),
        files: s.files.len() as u64,
        bytes: s.bytes,
        stored_bytes: s.stored,
        timelines: s.timelines(),
        problems,
        temporary_files: s.leftovers.len() as u64,
        unknown_files: s.unknown.clone(),
        content_verified: s.content_read,
    })
}

/// Every file read back in full, on up to 8 cores (`progress`: stored bytes read).
fn read_back(repo: &Repo, s: &Survey, progress: &Progress) -> Vec<Problem> {
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                while let Some(a) = s.files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let read = restore(repo, &a.name, &mut io::sink());
                    progress.add(a.info.size);
                    let why = match read {
                        Ok(_) => continue,
                        Err(RestoreError::Damaged(why)) => why,
                        Err(RestoreError::Store(e)) => e.to_string(),
                        Err(RestoreError::Write(e)) => e.to_string(),
                        Err(RestoreError::Missing) => "it vanished while verify ran".into(),
                    };
                    found
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Problem {
                            name: Some(a.name.to_string()),
                            timeline: Some(a.name.timeline),
                            problem: why,
                        });
                }
            });
        }
    });
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Gaps, timelines without their history file, and history files whose parent does not
/// reach the switch point or whose child starts after it.
fn continuity(s: &Survey) -> Vec<Problem> {
    let size = s.seg_size;
    let mut problems = Vec::new();
    let timeline_problem = |tli: u32, problem: String| Problem {
        name: None,
        timeline: Some(tli),
        problem,
    };
    for (tli, t) in &s.timelines {
        let segnos: Vec<u64> = t.segments.iter().map(|x| x.0).collect();
        for g in gaps(&segnos, *tli, size) {
            problems.push(timeline_problem(
                *tli,
                format!("missing {} segment(s) {} to {}", g.count, g.first, g.last),
            ));
        }
        if *tli > 1 && !s.history.contains_key(tli) {
            problems.push(timeline_problem(
                *tli,
                format!("no {tli:08X}.history file for timeline {tli}"),
            ));
        }
    }
    for (tli, h) in &s.history {
        let entries = match h {
            Ok(e) => e,
            Err(why) => {
                problems.push(Problem {
                    name: Some(format!("{tli:08X}.history")),
                    timeline: Some(*tli),
                    problem: why.clone(),
                });
                continue;
            }
        };
        let Some(last) = entries.last() else { continue };
        let switch_seg = last.switchpoint.0 / size;
        let parent = s
            .timelines
            .get(&last.timeline)
            .filter(|p| !p.segments.is_empty());
        let Some(p) = parent else { continue };
        let (reach, reach_name) = p.segments.last().cloned().unwrap_or_default();
        if switch_seg > 0 && reach < switch_seg - 1 {
            problems.push(timeline_problem(
                last.timeline,
                format!(
                    "timeline {} ends at {reach_name} but timeline {tli} branches off at {}: {} missing",
                    last.timeline,
                    last.switchpoint,
                    WalName::segment(last.timeline, reach + 1, size)
                ),
            ));
        }
        if let Some((first, _)) = s.timelines.get(tli).and_then(|c| c.segments.first()) {
            if *first > switch_seg {
                problems.push(timeline_problem(
                    *tli,
                    format!(
                        "timeline {tli} branches off at {} but its first segment is {}: {} missing",
                        last.switchpoint,
                        WalName::segment(*tli, *first, size),
                        WalName::segment(*tli, switch_seg, size)
                    ),
                ));
            }
        }
    }
    problems
}
