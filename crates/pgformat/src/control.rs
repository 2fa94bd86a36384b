//! `global/pg_control` read without the server: the fields a snapshot needs, CRC-32C checked.
//!
//! Layout of `ControlFileData` (src/include/catalog/pg_control.h) for each PG_CONTROL_VERSION in
//! [`LAYOUTS`]: 1201 (PG 12), 1300 (PG 13–16), 1700 (PG 17), 1800 (PG 18). The fields read here
//! sit at the same offsets in all of them: PG 17 added `wal_level` to `CheckPoint` inside the
//! padding after `fullPageWrites`, and PG 18 added `default_char_signedness` after
//! `data_checksum_version`, which moves only `mock_authentication_nonce` and the CRC (288 → 292).
//! Checked against real servers of 13–18 (tests/majors.rs). x86-64/aarch64 alignment (8-byte
//! int64). Any other version is refused, never read with a neighbour's layout.

use crate::Lsn;

/// The on-disk size PostgreSQL writes (PG_CONTROL_FILE_SIZE); the struct is at the start.
pub const PG_CONTROL_FILE_SIZE: usize = 8192;

const OFF_SYSID: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_CATVERSION: usize = 12;
const OFF_STATE: usize = 16;
const OFF_TIME: usize = 24;
const OFF_CHECKPOINT: usize = 32;
/// `checkPointCopy` (88 bytes) starts at 40: redo, ThisTimeLineID, PrevTimeLineID, …, time at +64.
const OFF_REDO: usize = 40;
const OFF_TLI: usize = 48;
const OFF_PREV_TLI: usize = 52;
const OFF_CKPT_TIME: usize = 104;
const OFF_MIN_RECOVERY: usize = 136;
const OFF_MIN_RECOVERY_TLI: usize = 144;
const OFF_BACKUP_START: usize = 152;
const OFF_BACKUP_END: usize = 160;
const OFF_BACKUP_END_REQUIRED: usize = 168;
const OFF_WAL_LEVEL: usize = 172;
const OFF_BLCKSZ: usize = 216;
const OFF_XLOG_SEG_SIZE: usize = 228;
const OFF_DATA_CHECKSUM: usize = 252;

/// A pg_control format: its PG_CONTROL_VERSION, the majors that write it, and the offset of
/// `crc` (`offsetof(ControlFileData, crc)`: the CRC covers every byte before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub version: u32,
    pub first_major: u32,
    pub last_major: u32,
    pub crc_offset: usize,
}

/// Every pg_control format pgdr reads (pg_control.h `PG_CONTROL_VERSION` of each major).
pub const LAYOUTS: &[Layout] = &[
    Layout::of(1201, 12..=12, 288),
    Layout::of(1300, 13..=16, 288),
    Layout::of(1700, 17..=17, 288),
    Layout::of(1800, 18..=18, 292),
];

impl Layout {
    const fn of(version: u32, majors: std::ops::RangeInclusive<u32>, crc_offset: usize) -> Layout {
        Layout {
            version,
            first_major: *majors.start(),
            last_major: *majors.end(),
            crc_offset,
        }
    }
}

/// The layout of a PG_CONTROL_VERSION, if pgdr knows it.
pub fn layout(version: u32) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| l.version == version)
}

/// What pg_control says about a cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControlData {
    pub system_identifier: u64,
    pub pg_control_version: u32,
    pub catalog_version: u32,
    /// "starting up", "shut down", "shut down in recovery", "shutting down",
    /// "in crash recovery", "in archive recovery", "in production" (pg_controldata's words).
    pub state: &'static str,
    /// Last update of pg_control, seconds since the epoch.
    pub time: i64,
    pub checkpoint_lsn: Lsn,
    pub redo_lsn: Lsn,
    pub timeline: u32,
    pub prev_timeline: u32,
    /// The checkpoint's time stamp, seconds since the epoch.
    pub checkpoint_time: i64,
    pub min_recovery_point: Lsn,
    pub min_recovery_point_timeline: u32,
    pub backup_start: Lsn,
    pub backup_end: Lsn,
    pub backup_end_required: bool,
    pub wal_level: i32,
    pub block_size: u32,
    pub wal_segment_size: u32,
    pub data_checksum_version: u32,
}

impl ControlData {
    /// Whether PostgreSQL `major` (PG_VERSION) writes this pg_control format.
    pub fn written_by(&self, major: u32) -> bool {
        layout(self.pg_control_version)
            .is_some_and(|l| (l.first_major..=l.last_major).contains(&major))
    }

    /// The WAL file holding the checkpoint's redo point: the oldest one crash recovery reads.
    pub fn redo_wal_file(&self) -> String {
        self.redo_lsn
            .wal_file_name(self.timeline, self.wal_segment_size as u64)
    }
}

/// CRC-32C (Castagnoli), as PostgreSQL's `COMP_CRC32C` (src/include/port/pg_crc32c.h).
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn state_name(s: u32) -> &'static str {
    match s {
        0 => "starting up",
        1 => "shut down",
        2 => "shut down in recovery",
        3 => "shutting down",
        4 => "in crash recovery",
        5 => "in archive recovery",
        6 => "in production",
        _ => "unrecognized status code",
    }
}

/// Parses the bytes of a pg_control file. The error says why it cannot be trusted.
pub fn parse(bytes: &[u8]) -> Result<ControlData, String> {
    if bytes.len() < OFF_VERSION + 4 {
        return Err(format!(
            "pg_control is {} bytes, too short to be one (expected {PG_CONTROL_FILE_SIZE})",
            bytes.len()
        ));
    }
    let version = u32_at(bytes, OFF_VERSION);
    let Some(l) = layout(version) else {
        let hint = if layout(version.swap_bytes()).is_some() {
            " (written on a machine of another byte order?)"
        } else {
            ""
        };
        let (first, last) = (
            LAYOUTS[0].first_major,
            LAYOUTS[LAYOUTS.len() - 1].last_major,
        );
        return Err(format!(
            "unsupported pg_control version {version}{hint}; PostgreSQL {first} to {last} are supported"
        ));
    };
    let off_crc = l.crc_offset;
    if bytes.len() < off_crc + 4 {
        return Err(format!(
            "pg_control is {} bytes, too short to be one (expected {PG_CONTROL_FILE_SIZE})",
            bytes.len()
        ));
    }
    let stored = u32_at(bytes, off_crc);
    let computed = crc32c(&bytes[..off_crc]);
    if stored != computed {
        return Err(format!(
            "pg_control CRC mismatch (stored {stored:08X}, computed {computed:08X}): the file is torn or corrupt"
        ));
    }
    let seg = u32_at(bytes, OFF_XLOG_SEG_SIZE);
    if !(seg.is_power_of_two() && (1 << 20..=1 << 30).contains(&seg)) {
        return Err(format!("pg_control has an invalid WAL segment size {seg}"));
    }
    Ok(ControlData {
        system_identifier: u64_at(bytes, OFF_SYSID),
        pg_control_version: version,
        catalog_version: u32_at(bytes, OFF_CATVERSION),
        state: state_name(u32_at(bytes, OFF_STATE)),
        time: u64_at(bytes, OFF_TIME) as i64,
        checkpoint_lsn: Lsn(u64_at(bytes, OFF_CHECKPOINT)),
        redo_lsn: Lsn(u64_at(bytes, OFF_REDO)),
        timeline: u32_at(bytes, OFF_TLI),
        prev_timeline: u32_at(bytes, OFF_PREV_TLI),
        checkpoint_time: u64_at(bytes, OFF_CKPT_TIME) as i64,
        min_recovery_point: Lsn(u64_at(bytes, OFF_MIN_RECOVERY)),
        min_recovery_point_timeline: u32_at(bytes, OFF_MIN_RECOVERY_TLI),
        backup_start: Lsn(u64_at(bytes, OFF_BACKUP_START)),
        backup_end: Lsn(u64_at(bytes, OFF_BACKUP_END)),
        backup_end_required: bytes[OFF_BACKUP_END_REQUIRED] != 0,
        wal_level: u32_at(bytes, OFF_WAL_LEVEL) as i32,
        block_size: u32_at(bytes, OFF_BLCKSZ),
        wal_segment_size: seg,
        data_checksum_version: u32_at(bytes, OFF_DATA_CHECKSUM),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a pg_control image with the given fields and a valid CRC.
    pub(crate) fn image(version: u32, sysid: u64, redo: u64, ckpt: u64, tli: u32) -> Vec<u8> {
        let mut b = vec![0u8; PG_CONTROL_FILE_SIZE];
        b[OFF_SYSID..OFF_SYSID + 8].copy_from_slice(&sysid.to_le_bytes());
        b[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&version.to_le_bytes());
        b[OFF_STATE..OFF_STATE + 4].copy_from_slice(&6u32.to_le_bytes());
        b[OFF_CHECKPOINT..OFF_CHECKPOINT + 8].copy_from_slice(&ckpt.to_le_bytes());
        b[OFF_REDO..OFF_REDO + 8].copy_from_slice(&redo.to_le_bytes());
        b[OFF_TLI..OFF_TLI + 4].copy_from_slice(&tli.to_le_bytes());
        b[OFF_XLOG_SEG_SIZE..OFF_XLOG_SEG_SIZE + 4].copy_from_slice(&(16u32 << 20).to_le_bytes());
        let off = layout(version).map_or(288, |l| l.crc_offset);
        let crc = crc32c(&b[..off]);
        b[off..off + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn crc32c_check_value() {
        // The standard check value for CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn parses_every_supported_version() {
        for v in [1201, 1300, 1700, 1800] {
            let b = image(v, 7_000_000_000_000_000_001, 0x2000028, 0x2000060, 3);
            let c = parse(&b).unwrap();
            assert_eq!(c.system_identifier, 7_000_000_000_000_000_001);
            assert_eq!(c.redo_lsn.to_string(), "0/2000028");
            assert_eq!(c.checkpoint_lsn.to_string(), "0/2000060");
            assert_eq!(c.timeline, 3);
            assert_eq!(c.state, "in production");
            assert_eq!(c.redo_wal_file(), "000000030000000000000002");
        }
        assert!(parse(&image(1300, 1, 0, 0, 1)).unwrap().written_by(16));
        assert!(!parse(&image(1300, 1, 0, 0, 1)).unwrap().written_by(17));
        assert!(parse(&image(1800, 1, 0, 0, 1)).unwrap().written_by(18));
    }

    #[test]
    fn the_crc_covers_what_each_layout_says() {
        // A PG 18 file checked with PG 17's CRC offset (288) would fail: the CRC sits at 292.
        let mut b = image(1800, 1, 0x2000028, 0x2000060, 1);
        assert_eq!(crc32c(&b[..292]), u32_at(&b, 292));
        b[290] ^= 1; // inside the nonce, which PG 18 moved to 257..289 and the CRC covers
        assert!(parse(&b).unwrap_err().contains("CRC mismatch"));
        // The same bytes labelled 1700 are checked at 288 and refused.
        let mut b = image(1800, 1, 0x2000028, 0x2000060, 1);
        b[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&1700u32.to_le_bytes());
        assert!(parse(&b).unwrap_err().contains("CRC mismatch"));
    }

    #[test]
    fn refuses_torn_short_and_foreign_files() {
        let mut b = image(1300, 1, 0x2000028, 0x2000060, 1);
        b[40] ^= 1;
        assert!(parse(&b).unwrap_err().contains("CRC mismatch"));
        assert!(parse(&b[..100]).unwrap_err().contains("too short"));
        for (v, m) in [(1100, 11), (1900, 19), (1002, 10)] {
            let e = parse(&image(v, 1, 0x2000028, 0x2000060, 1)).unwrap_err();
            assert!(
                e.contains(&format!("unsupported pg_control version {v}"))
                    && e.contains("PostgreSQL 12 to 18"),
                "{m}: {e}"
            );
        }
        let e = parse(&image(1800u32.swap_bytes(), 1, 0, 0, 1)).unwrap_err();
        assert!(e.contains("byte order"), "{e}");
    }
}
