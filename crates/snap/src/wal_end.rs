//! Where the WAL in a pg_wal directory ends: what crash recovery of an atomic snapshot of a
//! primary replays before the copy is consistent.
//!
//! A snapshot taken without pg_backup_start of a running primary has a pg_control in state
//! "in production" with no minimum recovery point. PostgreSQL then first runs crash recovery
//! through every record its pg_wal holds (xlogrecovery.c: InArchiveRecovery stays false until
//! pg_wal ends) and only there reaches consistency: a recovery target before that point is
//! refused ("requested recovery stop point is before consistent recovery point"), and after a
//! failover a snapshot whose pg_wal runs past the point where the newer timeline branched off
//! would bring the abandoned timeline's changes back. The checkpoint in pg_control is not that
//! point; the end of the WAL is.
//!
//! This reads page headers only, not records: the end of the last page written for its own
//! address, which is at or after the end of the last record (at most one page later). Read
//! from the live pg_wal right after a snapshot it is later still (WAL only grows on one
//! timeline), so it is an upper bound of the snapshot's end, late by what the server wrote
//! between the snapshot and the read (milliseconds of WAL) and a page: a target it refuses is
//! at worst that much too early, and a snapshot it keeps off a timeline never belonged on it.

use pgdr_pgformat::page_header::{self, SHORT_HEADER_LEN};
use pgdr_pgformat::wal_name::{Kind, WalName};
use pgdr_pgformat::Lsn;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The end of the WAL written in `pg_wal`, from the segment holding `from` on, through every
/// following segment PostgreSQL wrote: the address after the last page of the last of them
/// whose header PostgreSQL wrote for that address. For each segment the
/// file of the latest timeline not before `from`'s whose first page is its own is read, as
/// recovery with recovery_target_timeline = latest would. None when `from`'s segment is not
/// there.
///
/// # Errors
/// pg_wal or a segment cannot be read.
pub fn wal_end(
    pg_wal: &Path,
    from: Lsn,
    timeline: u32,
    seg_size: u64,
) -> std::io::Result<Option<Lsn>> {
    if seg_size == 0 {
        return Ok(None);
    }
    let mut files: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for e in std::fs::read_dir(pg_wal)? {
        let e = e?;
        let Some(w) = WalName::parse(&e.file_name().to_string_lossy()) else {
            continue;
        };
        if w.kind == Kind::Segment && w.fits(seg_size) && w.timeline >= timeline {
            files.entry(w.segno(seg_size)).or_default().push(w.timeline);
        }
    }
    let mut segno = from.0 / seg_size;
    let mut end = None;
    loop {
        let Some(tlis) = files.get_mut(&segno) else {
            return Ok(end);
        };
        tlis.sort_unstable_by(|a, b| b.cmp(a));
        let mut read = None;
        for &tli in tlis.iter() {
            let name = WalName::segment(tli, segno, seg_size);
            let f = std::fs::File::open(pg_wal.join(name.to_string()))?;
            let mut first = [0u8; page_header::LONG_HEADER_LEN];
            if f.read_exact_at(&mut first, 0).is_err() {
                continue;
            }
            let Ok(h) = page_header::parse(&first) else {
                continue;
            };
            if h.seg_size as u64 != seg_size || page_header::check_against_name(&h, &name).is_err()
            {
                continue;
            }
            read = Some((f, h, tli));
            break;
        }
        let Some((f, h, tli)) = read else {
            return Ok(end);
        };
        let page = h.xlog_blcksz as u64;
        let start = segno * seg_size;
        let mut at = page;
        let mut buf = [0u8; SHORT_HEADER_LEN];
        while at < seg_size {
            let written = f.read_exact_at(&mut buf, at).is_ok()
                && page_header::page_written(&buf, start + at, h.magic, tli);
            if !written {
                break;
            }
            at += page;
        }
        // The next segment is read even when this one ends early: after a segment switch
        // (pg_switch_wal, archive_timeout) the rest of the segment stays unwritten and the
        // WAL goes on at the next one's start.
        end = Some(Lsn(start + at));
        segno += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 1 << 20;
    const PAGE: u64 = 8192;

    /// A segment file whose first `pages` pages are written for their addresses, the rest
    /// zeros (or, with `old`, a recycled segment's pages of another address).
    fn segment(dir: &Path, tli: u32, segno: u64, pages: u64, old: bool) {
        let mut b = vec![0u8; SEG as usize];
        for i in 0..SEG / PAGE {
            let written = i < pages;
            if !written && !old {
                continue;
            }
            let addr = if written {
                segno * SEG
            } else {
                (segno - 4) * SEG
            } + i * PAGE;
            let o = (i * PAGE) as usize;
            b[o..o + 2].copy_from_slice(&0xD110u16.to_le_bytes());
            let info: u16 = if i == 0 { 2 } else { 0 };
            b[o + 2..o + 4].copy_from_slice(&info.to_le_bytes());
            b[o + 4..o + 8].copy_from_slice(&tli.to_le_bytes());
            b[o + 8..o + 16].copy_from_slice(&addr.to_le_bytes());
            if i == 0 {
                b[o + 24..o + 32].copy_from_slice(&7u64.to_le_bytes());
                b[o + 32..o + 36].copy_from_slice(&(SEG as u32).to_le_bytes());
                b[o + 36..o + 40].copy_from_slice(&(PAGE as u32).to_le_bytes());
            }
        }
        let name = WalName::segment(tli, segno, SEG).to_string();
        std::fs::write(dir.join(name), b).unwrap();
    }

    #[test]
    fn the_end_is_after_the_last_page_written_for_its_address() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        segment(p, 1, 5, SEG / PAGE, false);
        segment(p, 1, 6, 3, false);
        // Recycled, waiting for reuse: its pages are of segment 3.
        segment(p, 1, 7, 0, true);
        let from = Lsn(5 * SEG + 40);
        assert_eq!(
            wal_end(p, from, 1, SEG).unwrap(),
            Some(Lsn(6 * SEG + 3 * PAGE))
        );
        // A recycled segment holding the rest: the same end.
        std::fs::remove_file(p.join(WalName::segment(1, 6, SEG).to_string())).unwrap();
        segment(p, 1, 6, 3, true);
        assert_eq!(
            wal_end(p, from, 1, SEG).unwrap(),
            Some(Lsn(6 * SEG + 3 * PAGE))
        );
        // A later timeline's file of a segment is the one read.
        segment(p, 2, 6, 9, false);
        assert_eq!(
            wal_end(p, from, 1, SEG).unwrap(),
            Some(Lsn(6 * SEG + 9 * PAGE))
        );
        // A segment switched early (its rest unwritten) goes on in the next one.
        segment(p, 1, 7, 2, false);
        assert_eq!(
            wal_end(p, from, 1, SEG).unwrap(),
            Some(Lsn(7 * SEG + 2 * PAGE))
        );
        std::fs::remove_file(p.join(WalName::segment(1, 7, SEG).to_string())).unwrap();
        segment(p, 1, 7, 0, true);
        // A full last segment ends at the next one's start; no start segment, no end.
        assert_eq!(wal_end(p, Lsn(7 * SEG), 1, SEG).unwrap(), None);
        segment(p, 1, 8, SEG / PAGE, false);
        assert_eq!(
            wal_end(p, Lsn(8 * SEG), 1, SEG).unwrap(),
            Some(Lsn(9 * SEG))
        );
    }
}
