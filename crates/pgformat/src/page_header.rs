//! The long page header at the start of every WAL segment (XLogLongPageHeaderData in
//! src/include/access/xlog_internal.h), and the checks `push` and `verify` make with it.
//!
//! Layout (native byte order; PostgreSQL on Linux is little-endian everywhere we run):
//! `xlp_magic u16 @0, xlp_info u16 @2, xlp_tli u32 @4, xlp_pageaddr u64 @8, xlp_rem_len u32 @16,
//! (pad to 24), xlp_sysid u64 @24, xlp_seg_size u32 @32, xlp_xlog_blcksz u32 @36`.

use crate::wal_name::{valid_seg_size, WalName};

/// Bytes needed to parse the long header.
pub const LONG_HEADER_LEN: usize = 40;
/// XLP_LONG_HEADER in xlp_info.
const XLP_LONG_HEADER: u16 = 0x0002;
/// XLP_ALL_FLAGS: any other bit means this is not a page header. 0x000F since
/// XLP_FIRST_IS_OVERWRITE_CONTRECORD (0x0008), added in 15 and in the minor releases 13.5 and
/// 14.1 (and 10.19, 11.14, 12.9): every supported server may write it.
const XLP_ALL_FLAGS: u16 = 0x000F;

/// XLOG_PAGE_MAGIC of each major version (it changes whenever the WAL format does); 13–18 checked
/// against the first segment of a real server of each (tests/majors.rs). A magic not here (a
/// later major's, or 9.5's) is refused.
const MAGICS: &[(u16, u32)] = &[
    (0xD093, 96),
    (0xD097, 10),
    (0xD098, 11),
    (0xD101, 12),
    (0xD106, 13),
    (0xD10D, 14),
    (0xD110, 15),
    (0xD113, 16),
    (0xD116, 17),
    (0xD118, 18),
];

/// The PostgreSQL major version that writes this magic (96 for 9.6).
pub fn major_for_magic(magic: u16) -> Option<u32> {
    MAGICS.iter().find(|(m, _)| *m == magic).map(|(_, v)| *v)
}

/// A parsed long page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongHeader {
    pub magic: u16,
    pub info: u16,
    pub timeline: u32,
    pub pageaddr: u64,
    pub system_identifier: u64,
    pub seg_size: u32,
    pub xlog_blcksz: u32,
}

impl LongHeader {
    pub fn major(&self) -> Option<u32> {
        major_for_magic(self.magic)
    }
}

/// Parses the first bytes of a segment. Says why when they are not a long page header.
pub fn parse(bytes: &[u8]) -> Result<LongHeader, String> {
    if bytes.len() < LONG_HEADER_LEN {
        return Err(format!(
            "only {} bytes, too short for a WAL page header",
            bytes.len()
        ));
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let h = LongHeader {
        magic: u16_at(0),
        info: u16_at(2),
        timeline: u32_at(4),
        pageaddr: u64_at(8),
        system_identifier: u64_at(24),
        seg_size: u32_at(32),
        xlog_blcksz: u32_at(36),
    };
    if h.major().is_none() {
        return Err(format!(
            "bad WAL page magic 0x{:04X} (not written by PostgreSQL 9.6 to 18)",
            h.magic
        ));
    }
    if h.info & !XLP_ALL_FLAGS != 0 || h.info & XLP_LONG_HEADER == 0 {
        return Err(format!(
            "the first page has no long header (xlp_info 0x{:04X})",
            h.info
        ));
    }
    if !valid_seg_size(h.seg_size as u64) {
        return Err(format!("invalid segment size {} in the header", h.seg_size));
    }
    if !(h.xlog_blcksz.is_power_of_two() && (1024..=65536).contains(&h.xlog_blcksz)) {
        return Err(format!(
            "invalid WAL block size {} in the header",
            h.xlog_blcksz
        ));
    }
    if h.timeline == 0 {
        return Err("timeline 0 in the header".into());
    }
    Ok(h)
}

/// Checks a header against the file's name: the page address is the segment's start, and the
/// header's timeline is not later than the name's. (The first segment of a new timeline starts
/// with pages copied from its parent, so an earlier timeline in the header is normal.)
pub fn check_against_name(h: &LongHeader, name: &WalName) -> Result<(), String> {
    let size = h.seg_size as u64;
    if !name.fits(size) {
        return Err(format!(
            "the name is not a valid segment for {} MiB segments",
            size >> 20
        ));
    }
    let expect = name.segno(size) * size;
    if h.pageaddr != expect {
        return Err(format!(
            "page address {:X}/{:X} does not match the name (expected {:X}/{:X})",
            h.pageaddr >> 32,
            h.pageaddr & 0xFFFF_FFFF,
            expect >> 32,
            expect & 0xFFFF_FFFF
        ));
    }
    if h.timeline > name.timeline {
        return Err(format!(
            "header timeline {} is later than the name's timeline {}",
            h.timeline, name.timeline
        ));
    }
    Ok(())
}

/// Bytes of a short page header (XLogPageHeaderData, MAXALIGNed): every page of a segment but
/// the first starts with one.
pub const SHORT_HEADER_LEN: usize = 24;

/// Whether `bytes` (a page's first [`SHORT_HEADER_LEN`] bytes) are a header PostgreSQL wrote
/// for the page at `pageaddr` of a segment whose first page carries `magic`, on a timeline
/// no later than `timeline` (the segment's): the checks of xlogreader.c
/// XLogReaderValidatePageHeader that need no record. A page past the end of the WAL fails
/// them: zeros (a new segment), or a recycled segment's old page with another address.
pub fn page_written(bytes: &[u8], pageaddr: u64, magic: u16, timeline: u32) -> bool {
    if bytes.len() < SHORT_HEADER_LEN {
        return false;
    }
    let info = u16::from_le_bytes([bytes[2], bytes[3]]);
    let tli = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let addr = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    u16::from_le_bytes([bytes[0], bytes[1]]) == magic
        && info & !XLP_ALL_FLAGS == 0
        && addr == pageaddr
        && (1..=timeline).contains(&tli)
}

#[cfg(test)]
pub(crate) fn sample(magic: u16, tli: u32, pageaddr: u64, sysid: u64, seg_size: u32) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[0..2].copy_from_slice(&magic.to_le_bytes());
    b[2..4].copy_from_slice(&XLP_LONG_HEADER.to_le_bytes());
    b[4..8].copy_from_slice(&tli.to_le_bytes());
    b[8..16].copy_from_slice(&pageaddr.to_le_bytes());
    b[24..32].copy_from_slice(&sysid.to_le_bytes());
    b[32..36].copy_from_slice(&seg_size.to_le_bytes());
    b[36..40].copy_from_slice(&8192u32.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u32 = 16 << 20;

    #[test]
    fn parses_a_pg15_header() {
        let b = sample(0xD110, 1, 3 * SEG as u64, 7_300_000_000_000_000_001, SEG);
        let h = parse(&b).unwrap();
        assert_eq!(h.major(), Some(15));
        assert_eq!(h.timeline, 1);
        assert_eq!(h.system_identifier, 7_300_000_000_000_000_001);
        assert_eq!(h.seg_size, SEG);
        let name = WalName::parse("000000010000000000000003").unwrap();
        check_against_name(&h, &name).unwrap();
    }

    #[test]
    fn every_known_major() {
        for (m, v) in [
            (0xD101, 12),
            (0xD106, 13),
            (0xD10D, 14),
            (0xD113, 16),
            (0xD116, 17),
            (0xD118, 18),
        ] {
            assert_eq!(parse(&sample(m, 1, 0, 1, SEG)).unwrap().major(), Some(v));
        }
        // A later major's magic (the development branch after 18 uses 0xD11x and up) is
        // refused, not read as 18's.
        for m in [0xD119, 0xD121, 0xD087] {
            let e = parse(&sample(m, 1, 0, 1, SEG)).unwrap_err();
            assert!(e.contains("bad WAL page magic"), "{e}");
        }
    }

    #[test]
    fn a_first_page_that_overwrites_a_contrecord_is_a_header() {
        // XLP_FIRST_IS_OVERWRITE_CONTRECORD | XLP_LONG_HEADER: written after a crash cut a
        // record that spanned into this segment (xlog.c CreateOverwriteContrecordRecord).
        let mut b = sample(0xD106, 1, 0, 1, SEG);
        b[2..4].copy_from_slice(&0x000Au16.to_le_bytes());
        assert_eq!(parse(&b).unwrap().major(), Some(13));
        b[2..4].copy_from_slice(&0x0012u16.to_le_bytes());
        assert!(parse(&b).unwrap_err().contains("long header"));
    }

    #[test]
    fn a_page_is_written_only_with_its_own_address_magic_and_timeline() {
        let mut b = sample(0xD118, 2, 5 * SEG as u64 + 8192, 1, SEG);
        b[2..4].copy_from_slice(&0u16.to_le_bytes());
        let at = 5 * SEG as u64 + 8192;
        assert!(page_written(&b, at, 0xD118, 2));
        assert!(page_written(&b, at, 0xD118, 3));
        // Another page's address (a recycled segment), another major, a later timeline.
        assert!(!page_written(&b, at + 8192, 0xD118, 2));
        assert!(!page_written(&b, at, 0xD116, 2));
        assert!(!page_written(&b, at, 0xD118, 1));
        // Zeros (a new segment past the end), unknown flags, too short.
        assert!(!page_written(&[0u8; 24], 0, 0, 1));
        b[2..4].copy_from_slice(&0x0010u16.to_le_bytes());
        assert!(!page_written(&b, at, 0xD118, 2));
        assert!(!page_written(&b[..20], at, 0xD118, 2));
    }

    #[test]
    fn rejects_garbage_and_mismatches() {
        assert!(parse(&[0u8; 10]).unwrap_err().contains("too short"));
        assert!(parse(&vec![0u8; 8192]).unwrap_err().contains("magic"));
        let mut short = sample(0xD110, 1, 0, 1, SEG);
        short[2] = 0; // a short header: not the first page of a segment
        assert!(parse(&short).unwrap_err().contains("long header"));
        assert!(parse(&sample(0xD110, 1, 0, 1, 3 << 20))
            .unwrap_err()
            .contains("segment size"));
        let h = parse(&sample(0xD110, 2, 3 * SEG as u64, 1, SEG)).unwrap();
        // Address of segment 3, name says 4.
        let e = check_against_name(&h, &WalName::parse("000000020000000000000004").unwrap());
        assert!(e.unwrap_err().contains("page address"));
        // Header on timeline 2, name on timeline 1.
        let e = check_against_name(&h, &WalName::parse("000000010000000000000003").unwrap());
        assert!(e.unwrap_err().contains("later than"));
        // The first segment of timeline 3 may begin with timeline 2's pages.
        check_against_name(&h, &WalName::parse("000000030000000000000003").unwrap()).unwrap();
        check_against_name(
            &h,
            &WalName::parse("000000020000000000000003.partial").unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn large_segments_and_high_addresses() {
        let size = 1u32 << 30;
        let segno = 0x16 * 4 + 2; // 16/80000000 with 1 GiB segments
        let h = parse(&sample(0xD110, 1, segno * size as u64, 9, size)).unwrap();
        let n = WalName::parse("000000010000001600000002").unwrap();
        check_against_name(&h, &n).unwrap();
        assert!(
            check_against_name(&h, &WalName::parse("000000010000001600000004").unwrap()).is_err()
        );
    }
}
