//! The stored-file format (FORMAT.md, "Stored files"): a 68-byte header in front of the
//! compressed body, so that `get`, `list`, `verify` and the duplicate check know the original
//! size and SHA-256 without decompressing; and the body streamed both ways ([`write_body`],
//! [`read_verified`]) in 1 MiB chunks, so memory stays bounded whatever the file's size. No
//! paths, no repository: readers and writers only.
//!
//! ```text
//! 0  8  magic "PGDRWAL\0"
//! 8  2  format version (u16 LE) = 1
//! 10 1  compression: 0 none, 1 zstd, 2 lz4 (frame format)
//! 11 1  kind: 0 segment, 1 partial, 2 backup, 3 history, 4 image data, 5 image manifest,
//!       6 dump file, 7 dump manifest
//! 12 4  reserved, zero
//! 16 8  original size in bytes (u64 LE)
//! 24 8  system identifier of the cluster (u64 LE)
//! 32 32 SHA-256 of the original bytes
//! 64 4  CRC-32C of bytes 0..64 (u32 LE)
//! ```

use crate::sha_pipe::ShaPipe;
use pgdr_pgformat::wal_name::Kind;
use std::io::{self, BufWriter, Read, Write};

pub const MAGIC: &[u8; 8] = b"PGDRWAL\0";
pub const HEADER_LEN: usize = 68;
/// The stored-file format this build writes and reads.
pub const FILE_VERSION: u16 = 1;
/// Streaming chunk: bounds memory per file regardless of the segment size.
pub const CHUNK: usize = 1 << 20;
/// How many of the original's first bytes [`read_verified`] hands back: enough for a WAL
/// segment's long page header.
pub const FIRST_BYTES: usize = 8192;

/// How the body is compressed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
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

    /// The level push uses: `level` checked against the method (zstd: -7 to 22, default 1;
    /// lz4 and none have no levels).
    ///
    /// # Errors
    /// A usage error for a level out of range or given to a method without levels.
    pub fn level(self, level: Option<i32>) -> pgdr_core::Result<i32> {
        use pgdr_core::Error;
        match (self, level) {
            (Compression::Zstd, Some(l)) if !(-7..=22).contains(&l) => {
                Err(Error::usage(format!("invalid --level {l}"))
                    .because("zstd levels go from -7 to 22"))
            }
            (Compression::Zstd, l) => Ok(l.unwrap_or(1)),
            (c, Some(_)) => Err(Error::usage("--level applies to zstd only")
                .because(format!("--compress {} has no levels", c.as_str()))),
            (_, None) => Ok(0),
        }
    }
}

/// What a stored object holds: an archived WAL file of a kind, a part of a snapshot image
/// (crate::image): a piece of a file's content or an image's manifest, or a part of a logical
/// dump (crate::dump): one file of pg_dump's directory or a dump's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Wal(Kind),
    ImageData,
    ImageManifest,
    DumpFile,
    DumpManifest,
}

impl ObjectKind {
    fn code(self) -> u8 {
        match self {
            ObjectKind::Wal(Kind::Segment) => 0,
            ObjectKind::Wal(Kind::Partial) => 1,
            ObjectKind::Wal(Kind::Backup) => 2,
            ObjectKind::Wal(Kind::History) => 3,
            ObjectKind::ImageData => 4,
            ObjectKind::ImageManifest => 5,
            ObjectKind::DumpFile => 6,
            ObjectKind::DumpManifest => 7,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => ObjectKind::Wal(Kind::Segment),
            1 => ObjectKind::Wal(Kind::Partial),
            2 => ObjectKind::Wal(Kind::Backup),
            3 => ObjectKind::Wal(Kind::History),
            4 => ObjectKind::ImageData,
            5 => ObjectKind::ImageManifest,
            6 => ObjectKind::DumpFile,
            7 => ObjectKind::DumpManifest,
            _ => return None,
        })
    }
    /// For messages: "segment", …, "image data", "image manifest", "dump file", "dump manifest".
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Wal(k) => k.as_str(),
            ObjectKind::ImageData => "image data",
            ObjectKind::ImageManifest => "image manifest",
            ObjectKind::DumpFile => "dump file",
            ObjectKind::DumpManifest => "dump manifest",
        }
    }
}

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub compression: Compression,
    pub kind: ObjectKind,
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
        b[11] = self.kind.code();
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
            kind: ObjectKind::from_code(b[11])
                .ok_or_else(|| format!("unknown kind code {}", b[11]))?,
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

/// What the body of a new stored file came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// Original bytes read (`first` included).
    pub size: u64,
    /// SHA-256 of those bytes.
    pub sha256: [u8; 32],
}

/// Compresses `first` then the rest of `src` into `out`, hashing the original bytes.
/// `workers` zstd threads compress beside the calling thread (0: it compresses alone).
///
/// # Errors
/// `Err(Ok(e))` when reading `src` fails, `Err(Err(e))` when writing `out` fails (the
/// caller names the source and the target differently).
pub fn write_body(
    first: &[u8],
    src: &mut dyn Read,
    out: &mut dyn Write,
    compression: Compression,
    level: i32,
    workers: u32,
) -> Result<Body, Result<io::Error, io::Error>> {
    let mut pipe = ShaPipe::new();
    let bw = BufWriter::with_capacity(CHUNK, out);
    let mut enc = Encoder::new(compression, level, workers, bw).map_err(Err)?;
    pipe.hash_slice(first);
    let mut size = first.len() as u64;
    enc.write_all(first).map_err(Err)?;
    loop {
        let mut buf = pipe.chunk();
        let n = fill(src, &mut buf).map_err(Ok)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        enc.write_all(&buf[..n]).map_err(Err)?;
        // Hashed on the other thread while the next chunk is read and compressed.
        pipe.hash(buf, n);
    }
    let mut bw = enc.finish().map_err(Err)?;
    bw.flush().map_err(Err)?;
    Ok(Body {
        size,
        sha256: pipe.finish(),
    })
}

/// Reads into `buf` until it is full or `r` ends; the bytes read.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

enum Encoder<W: Write> {
    None(W),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Lz4(lz4_flex::frame::FrameEncoder<W>),
}

impl<W: Write> Encoder<W> {
    fn new(c: Compression, level: i32, workers: u32, w: W) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::None(w),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, level)?;
                if workers > 0 {
                    // One frame still; jobs of a few MiB are compressed on these threads.
                    e.multithread(workers)?;
                }
                Encoder::Zstd(e)
            }
            Compression::Lz4 => Encoder::Lz4(lz4_flex::frame::FrameEncoder::new(w)),
        })
    }
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Lz4(e) => e.finish().map_err(io::Error::other),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(b),
            Encoder::Zstd(e) => e.write(b),
            Encoder::Lz4(e) => e.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Lz4(e) => e.flush(),
        }
    }
}

/// Why a stored file cannot be read back intact (a damaged header or body, a checksum that
/// does not match, an I/O error reading it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage(pub String);

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn io_damage(e: &io::Error) -> Damage {
    Damage(pgdr_core::error::clean_io_message(&e.to_string()))
}

/// Reads and checks a stored file's header from the start of `r`.
///
/// # Errors
/// [`Damage`] for a short, unreadable or invalid header.
pub fn read_header(r: &mut dyn Read) -> Result<Header, Damage> {
    let mut b = [0u8; HEADER_LEN];
    read_full(r, &mut b).map_err(|e| io_damage(&e))?;
    Header::decode(&b).map_err(Damage)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("truncated: {got} bytes"),
        ));
    }
    Ok(())
}

/// Decompresses a whole stored file (header first) from `r` into `out`, checking the size
/// and SHA-256 its header records. `first` receives the original's first
/// [`FIRST_BYTES`] bytes (for page-header checks).
///
/// # Errors
/// `Err(Ok(e))` when writing `out` fails; `Err(Err(Damage))` when the stored file is not
/// intact. Nothing tells a caller the body was right until this returns `Ok`.
pub fn read_verified(
    r: &mut dyn Read,
    out: &mut dyn Write,
    first: &mut Vec<u8>,
) -> Result<Header, Result<io::Error, Damage>> {
    read_verified_sized(r, out, first, &mut |_| {})
}

/// As [`read_verified`], telling `size` the original's size as its header records it before
/// any byte is written (so a file can reserve its blocks: [`pgdr_core::fsx::reserve`]).
///
/// # Errors
/// As [`read_verified`].
pub fn read_verified_sized(
    r: &mut dyn Read,
    out: &mut dyn Write,
    first: &mut Vec<u8>,
    size: &mut dyn FnMut(u64),
) -> Result<Header, Result<io::Error, Damage>> {
    let h = read_header(r).map_err(Err)?;
    size(h.size);
    let mut body: Box<dyn Read + '_> = match h.compression {
        Compression::None => Box::new(io::BufReader::with_capacity(CHUNK, r)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(r).map_err(|e| Err(Damage(format!("zstd: {e}"))))?,
        ),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(
            io::BufReader::with_capacity(CHUNK, r),
        )),
    };
    let mut pipe = ShaPipe::for_size(h.size);
    let mut size = 0u64;
    loop {
        let mut buf = pipe.chunk();
        let n = fill(&mut body, &mut buf).map_err(|e| {
            Err(Damage(format!(
                "cannot decompress ({}): {}",
                h.compression.as_str(),
                pgdr_core::error::clean_io_message(&e.to_string())
            )))
        })?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > h.size {
            return Err(Err(Damage("longer than its recorded size".into())));
        }
        if first.len() < FIRST_BYTES {
            let take = (FIRST_BYTES - first.len()).min(n);
            first.extend_from_slice(&buf[..take]);
        }
        out.write_all(&buf[..n]).map_err(Ok)?;
        // Hashed on the other thread while the next chunk is decompressed and written.
        pipe.hash(buf, n);
    }
    if size != h.size {
        return Err(Err(Damage(format!(
            "decompressed to {size} bytes, {} recorded",
            h.size
        ))));
    }
    let got = pipe.finish();
    if got != h.sha256 {
        return Err(Err(Damage(format!(
            "checksum mismatch: sha256 {} recorded, {} read",
            hex(&h.sha256),
            hex(&got)
        ))));
    }
    Ok(h)
}

/// SHA-256 and size of a plain file's bytes.
///
/// # Errors
/// The reader's.
pub fn sha256_of(f: &mut dyn Read) -> io::Result<([u8; 32], u64)> {
    let mut pipe = ShaPipe::new();
    let mut size = 0u64;
    loop {
        let mut buf = pipe.chunk();
        let n = fill(f, &mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        pipe.hash(buf, n);
    }
    Ok((pipe.finish(), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Header {
        Header {
            compression: Compression::Lz4,
            kind: ObjectKind::Wal(Kind::Partial),
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
    fn bodies_round_trip_and_damage_is_caught() {
        let orig: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        for c in [Compression::None, Compression::Zstd, Compression::Lz4] {
            let mut stored = vec![0u8; HEADER_LEN];
            let body = write_body(&orig[..100], &mut &orig[100..], &mut stored, c, 1, 2).unwrap();
            assert_eq!(body.size, orig.len() as u64);
            let h = Header {
                compression: c,
                kind: ObjectKind::Wal(Kind::Segment),
                size: body.size,
                system_identifier: 1,
                sha256: body.sha256,
            };
            stored[..HEADER_LEN].copy_from_slice(&h.encode());
            let (mut out, mut first) = (Vec::new(), Vec::new());
            assert_eq!(
                read_verified(&mut &stored[..], &mut out, &mut first).unwrap(),
                h
            );
            assert_eq!(out, orig);
            assert_eq!(first, orig[..FIRST_BYTES]);
            let mut bad = stored.clone();
            let last = bad.len() - 10;
            bad[last] ^= 0x40;
            assert!(
                read_verified(&mut &bad[..], &mut io::sink(), &mut Vec::new())
                    .unwrap_err()
                    .is_err()
            );
        }
    }

    #[test]
    fn levels_belong_to_zstd() {
        assert_eq!(Compression::Zstd.level(None).unwrap(), 1);
        assert_eq!(Compression::Zstd.level(Some(-7)).unwrap(), -7);
        assert_eq!(
            Compression::Zstd.level(Some(23)).unwrap_err().exit_code(),
            2
        );
        assert_eq!(Compression::Lz4.level(Some(3)).unwrap_err().exit_code(), 2);
        assert_eq!(Compression::None.level(None).unwrap(), 0);
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
