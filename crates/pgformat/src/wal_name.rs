//! WAL file names as PostgreSQL makes them (src/include/access/xlog_internal.h):
//! `TTTTTTTTLLLLLLLLSSSSSSSS` segments, `….partial`, `….OOOOOOOO.backup` and `TTTTTTTT.history`.

use std::fmt;

/// What a name in `pg_wal` (and in the repository) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Segment,
    Partial,
    Backup,
    History,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::Partial => "partial",
            Kind::Backup => "backup",
            Kind::History => "history",
        }
    }
    /// Whether the file is a WAL segment image (with page headers) rather than a text file.
    pub fn is_wal(self) -> bool {
        matches!(self, Kind::Segment | Kind::Partial)
    }
}

/// A parsed WAL file name. `log` and `seg` are the two halves of the segment number as they
/// appear in the name; the segment number itself depends on the segment size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WalName {
    pub kind: Kind,
    pub timeline: u32,
    pub log: u32,
    pub seg: u32,
    /// The start offset in a `.backup` name.
    pub offset: u32,
}

fn hex8(s: &str) -> Option<u32> {
    if s.len() == 8
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
    {
        u32::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

impl WalName {
    /// Parses a bare file name (no directory). Upper-case hex only, as PostgreSQL writes it.
    pub fn parse(name: &str) -> Option<WalName> {
        let seg_part = |s: &str| -> Option<(u32, u32, u32)> {
            if s.len() != 24 {
                return None;
            }
            Some((hex8(&s[0..8])?, hex8(&s[8..16])?, hex8(&s[16..24])?))
        };
        let mk = |kind, (timeline, log, seg): (u32, u32, u32), offset| {
            (timeline != 0).then_some(WalName {
                kind,
                timeline,
                log,
                seg,
                offset,
            })
        };
        if let Some(tli) = name.strip_suffix(".history") {
            let t = hex8(tli)?;
            return mk(Kind::History, (t, 0, 0), 0);
        }
        if let Some(base) = name.strip_suffix(".partial") {
            return mk(Kind::Partial, seg_part(base)?, 0);
        }
        if let Some(rest) = name.strip_suffix(".backup") {
            if rest.len() != 33 || rest.as_bytes()[24] != b'.' {
                return None;
            }
            return mk(Kind::Backup, seg_part(&rest[..24])?, hex8(&rest[25..])?);
        }
        mk(Kind::Segment, seg_part(name)?, 0)
    }

    /// A segment name.
    pub fn segment(timeline: u32, segno: u64, seg_size: u64) -> WalName {
        let per = segments_per_id(seg_size);
        WalName {
            kind: Kind::Segment,
            timeline,
            log: (segno / per) as u32,
            seg: (segno % per) as u32,
            offset: 0,
        }
    }

    /// The segment number for a segment size (meaningless for `.history`).
    pub fn segno(&self, seg_size: u64) -> u64 {
        self.log as u64 * segments_per_id(seg_size) + self.seg as u64
    }

    /// The name of the segment this file belongs to (`.partial`/`.backup` stripped).
    pub fn segment_name(&self) -> String {
        format!("{:08X}{:08X}{:08X}", self.timeline, self.log, self.seg)
    }

    /// The name's second half must be a valid segment for this size (`seg` below the number of
    /// segments per 4 GiB "log id").
    pub fn fits(&self, seg_size: u64) -> bool {
        self.kind == Kind::History || (self.seg as u64) < segments_per_id(seg_size)
    }
}

impl fmt::Display for WalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::History => write!(f, "{:08X}.history", self.timeline),
            Kind::Segment => f.write_str(&self.segment_name()),
            Kind::Partial => write!(f, "{}.partial", self.segment_name()),
            Kind::Backup => write!(f, "{}.{:08X}.backup", self.segment_name(), self.offset),
        }
    }
}

/// Segments per "xlogid" (4 GiB of WAL).
pub fn segments_per_id(seg_size: u64) -> u64 {
    0x1_0000_0000 / seg_size
}

/// PostgreSQL's accepted segment sizes: a power of two from 1 MiB to 1 GiB.
pub fn valid_seg_size(size: u64) -> bool {
    size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let n = WalName::parse("000000010000000A000000FF").unwrap();
        assert_eq!(
            (n.kind, n.timeline, n.log, n.seg),
            (Kind::Segment, 1, 10, 255)
        );
        assert_eq!(n.segno(16 << 20), 10 * 256 + 255);
        assert_eq!(n.to_string(), "000000010000000A000000FF");
        let p = WalName::parse("000000010000000000000003.partial").unwrap();
        assert_eq!(p.kind, Kind::Partial);
        assert_eq!(p.to_string(), "000000010000000000000003.partial");
        let b = WalName::parse("000000010000000000000002.00000028.backup").unwrap();
        assert_eq!((b.kind, b.seg, b.offset), (Kind::Backup, 2, 0x28));
        assert_eq!(b.to_string(), "000000010000000000000002.00000028.backup");
        let h = WalName::parse("0000000A.history").unwrap();
        assert_eq!((h.kind, h.timeline), (Kind::History, 10));
        assert_eq!(h.to_string(), "0000000A.history");
    }

    #[test]
    fn rejects_what_postgres_never_writes() {
        for bad in [
            "",
            "00000001000000000000000",
            "0000000100000000000000001",
            "000000010000000000000a03",
            "00000000000000000000000A",
            "000000010000000000000003.part",
            "000000010000000000000002.0000028.backup",
            "1.history",
            "../00000001.history",
            "RECOVERYXLOG",
        ] {
            assert!(WalName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn segment_arithmetic_round_trips() {
        for size in [1u64 << 20, 16 << 20, 1 << 30] {
            for segno in [0u64, 1, 255, 256, 4095, 4096, 123_456] {
                let n = WalName::segment(3, segno, size);
                assert!(n.fits(size));
                assert_eq!(n.segno(size), segno);
                assert_eq!(WalName::parse(&n.to_string()).unwrap(), n);
            }
        }
        // With 16 MiB segments the low half stops at 0xFF.
        assert!(!WalName::parse("000000010000000000000100")
            .unwrap()
            .fits(16 << 20));
        assert!(valid_seg_size(16 << 20) && !valid_seg_size(3 << 20) && !valid_seg_size(1 << 19));
    }
}
