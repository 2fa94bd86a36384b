//! The header of every stored file (FORMAT.md, "Stored files"): 68 bytes in front of the
//! compressed body, so that `get`, `list`, `verify` and the duplicate check know the original
//! size and SHA-256 without decompressing.
//!
//! ```text
//! 0  8  magic "PGDRWAL\0"
//! 8  2  format version (u16 LE) = 1
//! 10 1  compression: 0 none, 1 zstd, 2 lz4 (frame format)
//! 11 1  kind: 0 segment, 1 partial, 2 backup, 3 history
//! 12 4  reserved, zero
//! 16 8  original size in bytes (u64 LE)
//! 24 8  system identifier of the cluster (u64 LE)
//! 32 32 SHA-256 of the original bytes
//! 64 4  CRC-32C of bytes 0..64 (u32 LE)
//! ```

use pgdr_pgformat::wal_name::Kind;

pub const MAGIC: &[u8; 8] = b"PGDRWAL\0";
pub const HEADER_LEN: usize = 68;
/// The stored-file format this build writes and reads.
pub const FILE_VERSION: u16 = 1;

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Zstd,
    Lz4,
}

impl Compression {
    fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
            Compression::Lz4 => 2,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Compression::None,
            1 => Compression::Zstd,
            2 => Compression::Lz4,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::Segment => 0,
        Kind::Partial => 1,
        Kind::Backup => 2,
        Kind::History => 3,
    }
}

fn kind_from_code(c: u8) -> Option<Kind> {
    Some(match c {
        0 => Kind::Segment,
        1 => Kind::Partial,
        2 => Kind::Backup,
        3 => Kind::History,
        _ => return None,
    })
}

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub compression: Compression,
    pub kind: Kind,
    pub size: u64,
    pub system_identifier: u64,
    pub sha256: [u8; 32],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&FILE_VERSION.to_le_bytes());
        b[10] = self.compression.code();
        b[11] = kind_code(self.kind);
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..32].copy_from_slice(&self.system_identifier.to_le_bytes());
        b[32..64].copy_from_slice(&self.sha256);
        let crc = crc32c::crc32c(&b[0..64]);
        b[64..68].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header; the error says what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER_LEN {
            return Err(format!("truncated: {} bytes, no complete header", b.len()));
        }
        if &b[0..8] != MAGIC {
            return Err("not a wal-archive file (bad magic)".into());
        }
        let crc = u32::from_le_bytes(b[64..68].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&b[0..64]) {
            return Err("header checksum mismatch".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FILE_VERSION {
            return Err(format!(
                "stored-file format version {version}, this wal-archive reads version {FILE_VERSION}"
            ));
        }
        Ok(Header {
            compression: Compression::from_code(b[10])
                .ok_or_else(|| format!("unknown compression code {}", b[10]))?,
            kind: kind_from_code(b[11]).ok_or_else(|| format!("unknown kind code {}", b[11]))?,
            size: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            system_identifier: u64::from_le_bytes(b[24..32].try_into().expect("8 bytes")),
            sha256: b[32..64].try_into().expect("32 bytes"),
        })
    }
}

/// Lower-case hex, for messages and JSON.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Header {
        Header {
            compression: Compression::Lz4,
            kind: Kind::Partial,
            size: 16 << 20,
            system_identifier: 7_361_234_567_890_123_456,
            sha256: [7; 32],
        }
    }

    #[test]
    fn round_trip() {
        let e = h().encode();
        assert_eq!(Header::decode(&e).unwrap(), h());
        assert_eq!(&e[0..8], b"PGDRWAL\0");
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let e = h().encode();
        for i in 0..HEADER_LEN {
            let mut x = e;
            x[i] ^= 0x10;
            assert!(Header::decode(&x).is_err(), "byte {i}");
        }
        assert!(Header::decode(&e[..30]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn newer_version_is_refused() {
        let mut e = h().encode();
        e[8] = 2;
        let crc = crc32c::crc32c(&e[0..64]);
        e[64..68].copy_from_slice(&crc.to_le_bytes());
        assert!(Header::decode(&e).unwrap_err().contains("version 2"));
    }
}
