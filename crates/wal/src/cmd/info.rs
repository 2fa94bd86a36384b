//! `wal-archive info`: the repository (settings, cluster, encryption), its WAL per timeline,
//! its snapshot images and logical dumps, and the recovery window ([`RecoveryWindow`]
//! defines its bounds).

use crate::doc::{InfoImage, InfoReport, RecoveryWindow};
use chrono::{DateTime, Utc};
use pgdr_core::{Error, Result};
use pgdr_pgformat::wal_name::WalName;
use pgdr_pgformat::Lsn;
use pgdr_repo::image::manifest;
use pgdr_repo::repo::Repo;
use pgdr_repo::survey::{survey, Survey};
use std::path::Path;

/// Describes the repository at `location`.
///
/// # Errors
/// Not an initialised repository, or one that cannot be listed.
pub fn info(location: &Path) -> Result<InfoReport> {
    let repo = Repo::open(location)?;
    let s = survey(&repo)?;
    let settings = repo.settings();
    let id = repo.identity();
    let (images, oldest) = if s.content_read {
        images(&repo, &s)?
    } else {
        (Vec::new(), None)
    };
    let dumps = if s.content_read {
        let place = pgdr_snap::logical::place::Place::repo(location)?;
        pgdr_snap::logical::list::collect(&place, None)?
    } else {
        Vec::new()
    };
    Ok(InfoReport {
        repo: repo.location(),
        kind: repo.store().kind().to_string(),
        format_version: settings.version,
        created: settings.created,
        system_identifier: id.map(|i| i.system_identifier.to_string()),
        wal_segment_size: id.map(|i| i.wal_segment_size),
        compression: repo.compression(),
        compression_level: settings.compression_level,
        encrypted: repo.encrypted(),
        encrypt_to: settings.encrypt_to.clone().unwrap_or_default(),
        content_read: s.content_read,
        files: s.files.len() as u64,
        bytes: s.bytes,
        stored_bytes: s.stored,
        timelines: s.timelines(),
        unreadable: s.unreadable_problems(),
        images,
        dumps,
        window: window(&s, oldest.as_ref()),
    })
}

/// The images the repository holds, oldest first, each with how far a recovery from it
/// reaches, and the oldest as the window's base.
fn images(repo: &Repo, s: &Survey) -> Result<(Vec<InfoImage>, Option<Base>)> {
    let mut out = Vec::new();
    let mut oldest = None;
    for man in manifest::all(repo)? {
        let m = pgdr_snap::image::meta_of(&man)?;
        let start = WalName::parse(&m.wal_start).ok_or_else(|| {
            Error::failed(format!("image {} cannot be used", man.image)).because(format!(
                "its wal_start {:?} is not a WAL file name",
                m.wal_start
            ))
        })?;
        // An image of a timeline abandoned at a failover, consistent after the switch, is no
        // base: snap-clone does not choose it (pgdr_repo::timeline).
        let on_newest = on_newest_timeline(s, m.timeline, m.consistent_lsn());
        let base = Base {
            consistent: m.consistent_lsn(),
            wal_start: start.segno(m.wal_segment_size),
            image: man.image.clone(),
            time: Some(m.consistent_at),
        };
        out.push(InfoImage {
            image: man.image.clone(),
            created: m.created,
            label: m.label.clone(),
            system_identifier: m.system_identifier.clone(),
            timeline: m.timeline,
            wal_start: m.wal_start.clone(),
            consistent_lsn: base.consistent,
            consistent_at: m.consistent_at,
            bytes: man.bytes,
            stored_bytes: man.stored_bytes,
            latest_lsn: on_newest
                .then(|| window(s, Some(&base)).latest_lsn)
                .flatten(),
        });
        if on_newest {
            oldest.get_or_insert(base);
        }
    }
    Ok((out, oldest))
}

/// Whether a copy of timeline `tli` consistent at `consistent` recovers onto the newest
/// timeline, as snap-clone does (recovery_target_timeline = latest): on it, or consistent no
/// later than where the timeline after its own on the way there began. When the chain is not
/// known (a history not read), it counts.
fn on_newest_timeline(s: &Survey, tli: u32, consistent: Lsn) -> bool {
    let Some(target) = newest_timeline(s) else {
        return true;
    };
    let (spans, note) = chain(s, target);
    if note.is_some() || tli == target {
        return true;
    }
    spans
        .iter()
        .find(|sp| sp.timeline == tli)
        .is_some_and(|sp| consistent.0 <= sp.end)
}

/// The timeline a recovery from the repository ends on: the newest with WAL or a history.
fn newest_timeline(s: &Survey) -> Option<u32> {
    s.timelines
        .iter()
        .filter(|(_, t)| !t.segments.is_empty())
        .map(|(tli, _)| *tli)
        .chain(s.history.keys().copied())
        .max()
}

/// A stretch of WAL one timeline serves on the way to the newest timeline: segments
/// `first..=last` (segment numbers), LSNs below `end` (its switch point; `u64::MAX` for the
/// newest timeline itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    timeline: u32,
    first: u64,
    last: u64,
    end: u64,
}

/// The timelines recovery to `target` reads, oldest first, from `target`'s history file
/// (src/backend/access/transam/timeline.c, readTimeLineHistory), or why they are not known.
fn chain(s: &Survey, target: u32) -> (Vec<Span>, Option<String>) {
    let size = s.seg_size;
    let lone = |why: Option<String>| {
        let span = Span {
            timeline: target,
            first: 0,
            last: u64::MAX,
            end: u64::MAX,
        };
        (vec![span], why)
    };
    if target == 1 {
        return lone(None);
    }
    let entries = match s.history.get(&target) {
        Some(Ok(e)) if !e.is_empty() => e,
        Some(Ok(_)) => {
            return lone(Some(format!(
                "the history of timeline {target} was not read (no identity): its ancestors are left out"
            )))
        }
        Some(Err(why)) => {
            return lone(Some(format!(
                "{target:08X}.history cannot be read ({why}): timeline {target}'s ancestors are left out"
            )))
        }
        None => {
            return lone(Some(format!(
                "no {target:08X}.history: timeline {target}'s ancestors are left out"
            )))
        }
    };
    let mut spans = Vec::new();
    let mut begin = 0u64;
    for e in entries {
        let end = e.switchpoint.0;
        spans.push(Span {
            timeline: e.timeline,
            first: begin / size,
            last: end.saturating_sub(1) / size,
            end,
        });
        begin = end;
    }
    spans.push(Span {
        timeline: target,
        first: begin / size,
        last: u64::MAX,
        end: u64::MAX,
    });
    (spans, None)
}

/// Whether `tli` has segment `segno` archived.
fn has(s: &Survey, tli: u32, segno: u64) -> bool {
    s.timelines
        .get(&tli)
        .is_some_and(|t| t.segments.binary_search_by_key(&segno, |x| x.0).is_ok())
}

/// The span whose timeline recovery reads segment `segno` from: the newest that had begun
/// and has it (XLogFileReadAnyTLI tries the newest first, then older ones).
fn serving(s: &Survey, spans: &[Span], segno: u64) -> Option<Span> {
    spans
        .iter()
        .rev()
        .find(|sp| sp.first <= segno && segno <= sp.last && has(s, sp.timeline, segno))
        .copied()
}

/// A base backup the repository holds, as the window needs it.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// Its consistent point: the earliest LSN a recovery from it can stop at.
    pub consistent: Lsn,
    /// The segment number of the oldest WAL file a recovery from it reads.
    pub wal_start: u64,
    /// The image's name.
    pub image: String,
    /// When it was consistent.
    pub time: Option<DateTime<Utc>>,
}

/// The recovery window: from `base` (the oldest base backup the repository holds) when there
/// is one, else from the WAL alone.
pub(crate) fn window(s: &Survey, base: Option<&Base>) -> RecoveryWindow {
    let mut w = RecoveryWindow {
        timeline: None,
        earliest_lsn: None,
        earliest_image: None,
        earliest_time: None,
        earliest_note: None,
        wal_start: None,
        wal_start_segment: None,
        latest_lsn: None,
        latest_segment: None,
        latest_segment_stored_at: None,
        latest_note: None,
    };
    let Some(target) = newest_timeline(s) else {
        w.earliest_note = Some("the repository holds no WAL".into());
        w.latest_note = Some("the repository holds no WAL".into());
        return w;
    };
    w.timeline = Some(target);
    let (spans, chain_note) = chain(s, target);
    let size = s.seg_size;
    // Where the continuous WAL starts: the base's segment, else back from the newest segment.
    let start = match base {
        Some(b) => Some(b.wal_start),
        None => {
            let newest_seg = spans
                .iter()
                .filter_map(|sp| {
                    let t = s.timelines.get(&sp.timeline)?;
                    t.segments
                        .iter()
                        .rev()
                        .map(|x| x.0)
                        .find(|n| sp.first <= *n && *n <= sp.last)
                })
                .max();
            newest_seg.map(|mut n| {
                while n > 0 && serving(s, &spans, n - 1).is_some() {
                    n -= 1;
                }
                n
            })
        }
    };
    match base {
        Some(b) => {
            w.earliest_lsn = Some(b.consistent);
            w.earliest_image = Some(b.image.clone());
            w.earliest_time = b.time;
        }
        None => {
            w.earliest_note = Some(
                "the repository holds no image (a snapshot or pg_basebackup kept elsewhere is not known to it): a base backup whose WAL starts at or after wal_start can be recovered up to latest_lsn".into(),
            )
        }
    }
    let first_span = start.and_then(|n| serving(s, &spans, n).map(|sp| (n, sp)));
    let Some((first, first_sp)) = first_span else {
        w.latest_note = Some(match base {
            Some(b) => format!(
                "the oldest WAL file image {} needs is not archived on timeline {target} or its ancestors",
                b.image
            ),
            None => format!("no segment of timeline {target} or its ancestors is archived"),
        });
        return w;
    };
    let mut last = (first, first_sp);
    while let Some(sp) = serving(s, &spans, last.0 + 1) {
        last = (last.0 + 1, sp);
    }
    let (last_seg, last_sp) = last;
    let name = |tli: u32, n: u64| WalName::segment(tli, n, size).to_string();
    w.wal_start = Some(Lsn(first * size));
    w.wal_start_segment = Some(name(first_sp.timeline, first));
    w.latest_lsn = Some(Lsn(((last_seg + 1) * size).min(last_sp.end)));
    let latest_name = name(last_sp.timeline, last_seg);
    w.latest_segment_stored_at = s
        .files
        .iter()
        .find(|a| a.name.to_string() == latest_name)
        .and_then(|a| DateTime::<Utc>::from_timestamp(a.info.modified, 0));
    w.latest_segment = Some(latest_name);
    let missing_after = spans.iter().any(|sp| {
        s.timelines.get(&sp.timeline).is_some_and(|t| {
            t.segments
                .iter()
                .any(|x| x.0 > last_seg + 1 && sp.first <= x.0 && x.0 <= sp.last)
        })
    });
    w.latest_note = match (missing_after, chain_note) {
        (true, _) => Some(format!(
            "{} is missing: the WAL archived after it cannot be replayed from here",
            name(serving_timeline(&spans, last_seg + 1), last_seg + 1)
        )),
        (false, note) => note,
    };
    w
}

/// The timeline a segment would be read from if it were archived.
fn serving_timeline(spans: &[Span], segno: u64) -> u32 {
    spans
        .iter()
        .rev()
        .find(|sp| sp.first <= segno && segno <= sp.last)
        .map_or(spans[0].timeline, |sp| sp.timeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdr_pgformat::history::Entry;
    use pgdr_repo::survey::TimelineFiles;

    const SIZE: u64 = 16 << 20;

    fn survey_of(timelines: &[(u32, &[u64])], history: &[(u32, Vec<(u32, u64)>)]) -> Survey {
        let mut s = Survey {
            seg_size: SIZE,
            content_read: true,
            ..Survey::default()
        };
        for (tli, segs) in timelines {
            s.timelines.insert(
                *tli,
                TimelineFiles {
                    segments: segs
                        .iter()
                        .map(|n| (*n, WalName::segment(*tli, *n, SIZE).to_string()))
                        .collect(),
                    ..TimelineFiles::default()
                },
            );
        }
        for (tli, entries) in history {
            let e = entries
                .iter()
                .map(|(t, sp)| Entry {
                    timeline: *t,
                    switchpoint: Lsn(*sp),
                    reason: String::new(),
                })
                .collect();
            s.history.insert(*tli, Ok(e));
        }
        s
    }

    #[test]
    fn latest_is_the_end_of_the_continuous_wal_on_the_newest_timeline() {
        // Timeline 1: 1..=5, then 7 (6 missing) – the WAL alone: the run ending at the newest.
        let s = survey_of(&[(1, &[1, 2, 3, 4, 5, 7])], &[]);
        let w = window(&s, None);
        assert_eq!(w.timeline, Some(1));
        assert_eq!(w.wal_start, Some(Lsn(7 * SIZE)));
        assert_eq!(w.latest_lsn, Some(Lsn(8 * SIZE)));
        assert_eq!(w.earliest_lsn, None);
        assert!(w.earliest_note.is_some());
        // From a base in segment 2: up to 5, and the missing 6 is named.
        let base = |seg: u64, name: &str| Base {
            consistent: Lsn(seg * SIZE + 40),
            wal_start: seg,
            image: name.into(),
            time: None,
        };
        let w = window(&s, Some(&base(2, "x")));
        assert_eq!(w.earliest_lsn, Some(Lsn(2 * SIZE + 40)));
        assert_eq!(w.latest_lsn, Some(Lsn(6 * SIZE)));
        assert_eq!(
            w.latest_segment.as_deref(),
            Some("000000010000000000000005")
        );
        assert!(
            w.latest_note
                .as_deref()
                .unwrap()
                .contains("000000010000000000000006"),
            "{w:?}"
        );
        // A base whose segment is not archived reaches nothing.
        let w = window(&s, Some(&base(6, "y")));
        assert_eq!(w.latest_lsn, None);
        assert_eq!(w.earliest_image.as_deref(), Some("y"));
        assert!(w.latest_note.unwrap().contains("image y"));
    }

    #[test]
    fn the_newest_timeline_follows_its_ancestors_up_to_the_switch_point() {
        // Timeline 2 branched off 1 inside segment 4; timeline 1 went on to 6 (not followed).
        let switch = 4 * SIZE + 100;
        let s = survey_of(
            &[(1, &[1, 2, 3, 4, 5, 6]), (2, &[4, 5])],
            &[(2, vec![(1, switch)])],
        );
        let b = Base {
            consistent: Lsn(SIZE + 40),
            wal_start: 1,
            image: "base".into(),
            time: None,
        };
        let w = window(&s, Some(&b));
        assert_eq!(w.timeline, Some(2));
        assert_eq!(
            w.wal_start_segment.as_deref(),
            Some("000000010000000000000001")
        );
        assert_eq!(
            w.latest_segment.as_deref(),
            Some("000000020000000000000005")
        );
        assert_eq!(w.latest_lsn, Some(Lsn(6 * SIZE)));
        assert_eq!(w.latest_note, None);
        // Without timeline 2's segments: timeline 1 up to the switch point, not beyond.
        let s = survey_of(&[(1, &[1, 2, 3, 4, 5, 6])], &[(2, vec![(1, switch)])]);
        let w = window(&s, None);
        assert_eq!(w.timeline, Some(2));
        assert_eq!(w.latest_lsn, Some(Lsn(switch)));
        assert_eq!(w.wal_start, Some(Lsn(SIZE)));
        // No history file: the newest timeline alone, said so.
        let s = survey_of(&[(1, &[1, 2, 3]), (2, &[3, 4])], &[]);
        let w = window(&s, None);
        assert_eq!(
            w.wal_start_segment.as_deref(),
            Some("000000020000000000000003")
        );
        assert!(w.latest_note.unwrap().contains("00000002.history"));
    }

    #[test]
    fn an_empty_repository_has_no_window() {
        let w = window(&survey_of(&[], &[]), None);
        assert_eq!(
            (w.timeline, w.latest_lsn, w.earliest_lsn),
            (None, None, None)
        );
        assert!(w.latest_note.is_some() && w.earliest_note.is_some());
    }
}
