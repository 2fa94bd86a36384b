//! Log sequence numbers in PostgreSQL's text form (`16/B374D848`), exact 64-bit arithmetic.

use std::fmt;
use std::str::FromStr;

/// An `XLogRecPtr` (src/include/access/xlogdefs.h): a byte position in the WAL stream.
/// Serialised as PostgreSQL prints it, `16/B374D848`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl schemars::JsonSchema for Lsn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Lsn".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "an LSN, as PostgreSQL prints it (16/B374D848)"})
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Lsn, String> {
        let bad = || format!("invalid LSN {s:?} (expected the form 16/B374D848)");
        let (hi, lo) = s.trim().split_once('/').ok_or_else(bad)?;
        if hi.is_empty() || lo.is_empty() || hi.len() > 8 || lo.len() > 8 {
            return Err(bad());
        }
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(Lsn(((hi as u64) << 32) | lo as u64))
    }
}

impl serde::Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Lsn, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Lsn {
    /// The WAL file name holding this LSN, for a timeline and segment size.
    pub fn wal_file_name(self, timeline: u32, seg_size: u64) -> String {
        let segno = self.0 / seg_size;
        let per_id = 0x1_0000_0000u64 / seg_size;
        format!("{timeline:08X}{:08X}{:08X}", segno / per_id, segno % per_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let l: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(l.0, 0x16_B374_D848);
        assert_eq!(l.to_string(), "16/B374D848");
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("x/1".parse::<Lsn>().is_err());
    }

    #[test]
    fn wal_file_names() {
        let l: Lsn = "0/3000028".parse().unwrap();
        assert_eq!(l.wal_file_name(1, 16 << 20), "000000010000000000000003");
        let l: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(l.wal_file_name(2, 16 << 20), "0000000200000016000000B3");
    }
}
