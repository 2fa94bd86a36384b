//! The repository on disk (FORMAT.md): opening and creating it, its privacy checks, storing a
//! file (streamed: hash, compress, temp file, fsync, no-replace publish) and reading one back
//! (streamed: decompress, hash, compare).

use crate::stored::{Compression, Header, HEADER_LEN};
use pgdr_core::error::clean_io_message;
use pgdr_core::signals::TempFile;
use pgdr_core::{Error, Result};
use pgdr_pgformat::wal_name::{Kind, WalName};
use sha2::{Digest, Sha256};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The repository format this build writes; it opens this version only.
pub const REPO_VERSION: u32 = 1;
/// The marker and metadata file at the repository's root.
pub const META_FILE: &str = "pgdr-wal-archive.json";
const FORMAT_NAME: &str = "pgdr-wal-archive";
/// Streaming chunk: bounds memory per file regardless of the segment size.
const CHUNK: usize = 1 << 20;

/// The repository's metadata file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    pub format: String,
    pub version: u32,
    /// A string: the 64-bit identifier does not survive JSON doubles (jq, JavaScript).
    pub system_identifier: String,
    pub wal_segment_size: u64,
    pub created: String,
}

/// An opened repository.
#[derive(Debug)]
pub struct Repo {
    pub root: PathBuf,
    pub meta: Meta,
    pub sysid: u64,
    /// Owner of the root: files created by root are given to it, so PostgreSQL can read them.
    owner: (u32, u32),
}

fn io_fail(what: String, e: &io::Error) -> Error {
    Error::failed(what).because(clean_io_message(&e.to_string()))
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuses a directory that someone other than its owner (and root) can write to.
pub fn check_private(dir: &Path) -> Result<()> {
    let m = fs::metadata(dir).map_err(|e| io_fail(format!("cannot open {}", dir.display()), &e))?;
    if !m.is_dir() {
        return Err(Error::failed(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(
            Error::failed(format!("refusing repository directory {}", dir.display()))
                .because(format!(
            "it is writable by other users (mode {mode:04o}); WAL holds every row of the database"
        ))
                .hint(format!("chmod 0700 {}", dir.display())),
        );
    }
    let me = euid();
    if me != 0 && m.uid() != me {
        return Err(
            Error::failed(format!("refusing repository directory {}", dir.display()))
                .because(format!(
                    "it belongs to uid {}, not to us (uid {me})",
                    m.uid()
                ))
                .hint("run wal-archive as the repository's owner"),
        );
    }
    Ok(())
}

impl Repo {
    /// Opens an existing repository, checking its format version and privacy.
    pub fn open(root: &Path) -> Result<Repo> {
        check_private(root)?;
        let meta_path = root.join(META_FILE);
        let text = match fs::read_to_string(&meta_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::failed(format!(
                    "{} is not a wal-archive repository",
                    root.display()
                ))
                .because(format!("{META_FILE} is missing"))
                .hint("check --repo; a repository is created by the first push"))
            }
            Err(e) => return Err(io_fail(format!("cannot read {}", meta_path.display()), &e)),
        };
        let meta: Meta = serde_json::from_str(&text).map_err(|e| {
            Error::failed(format!("cannot open repository {}", root.display()))
                .because(format!("{META_FILE} is malformed: {e}"))
        })?;
        if meta.format != FORMAT_NAME {
            return Err(
                Error::failed(format!("cannot open repository {}", root.display()))
                    .because(format!("{META_FILE} names format {:?}", meta.format)),
            );
        }
        if meta.version != REPO_VERSION {
            return Err(
                Error::failed(format!("cannot open repository {}", root.display()))
                    .because(format!(
                        "repository format version {}, this wal-archive {} reads version {REPO_VERSION}",
                        meta.version,
                        pgdr_core::VERSION
                    ))
                    .hint("use the wal-archive release that wrote it"),
            );
        }
        let sysid: u64 = meta.system_identifier.parse().map_err(|_| {
            Error::failed(format!("cannot open repository {}", root.display())).because(format!(
                "bad system_identifier {:?} in {META_FILE}",
                meta.system_identifier
            ))
        })?;
        if !pgdr_pgformat::wal_name::valid_seg_size(meta.wal_segment_size) {
            return Err(
                Error::failed(format!("cannot open repository {}", root.display())).because(
                    format!(
                        "bad wal_segment_size {} in {META_FILE}",
                        meta.wal_segment_size
                    ),
                ),
            );
        }
        let m = fs::metadata(root)
            .map_err(|e| io_fail(format!("cannot open {}", root.display()), &e))?;
        Ok(Repo {
            root: root.to_path_buf(),
            meta,
            sysid,
            owner: (m.uid(), m.gid()),
        })
    }

    /// Opens the repository, creating it (bound to `sysid`) when the directory is missing or
    /// empty. Two pushes creating it at once agree: the metadata is published without replace.
    pub fn open_or_init(root: &Path, sysid: u64, seg_size: u64) -> Result<Repo> {
        let exists = root.join(META_FILE).exists();
        if !exists {
            Self::init(root, sysid, seg_size)?;
        }
        Self::open(root)
    }

    fn init(root: &Path, sysid: u64, seg_size: u64) -> Result<()> {
        let fail =
            |e: &io::Error| io_fail(format!("cannot create repository {}", root.display()), e);
        match fs::read_dir(root) {
            Ok(mut it) => {
                if let Some(first) = it.find_map(|e| e.ok()).map(|e| e.file_name()) {
                    if first != META_FILE && !first.to_string_lossy().starts_with('.') {
                        return Err(Error::failed(format!(
                            "{} is not a wal-archive repository",
                            root.display()
                        ))
                        .because(format!("the directory is not empty and has no {META_FILE}"))
                        .hint("give --repo an empty or new directory"));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(root)
                    .map_err(|e| fail(&e))?;
                if let Some(parent) = root.parent() {
                    let _ = pgdr_core::fsx::fsync_dir(parent);
                }
            }
            Err(e) => return Err(fail(&e)),
        }
        check_private(root)?;
        let meta = Meta {
            format: FORMAT_NAME.into(),
            version: REPO_VERSION,
            system_identifier: sysid.to_string(),
            wal_segment_size: seg_size,
            created: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        };
        let mut text = serde_json::to_string_pretty(&meta).expect("serializable");
        text.push('\n');
        let target = root.join(META_FILE);
        let m = fs::metadata(root).map_err(|e| fail(&e))?;
        let owner = Some((m.uid(), m.gid()));
        // The format page travels with the data it describes.
        let fmt_target = root.join("FORMAT.md");
        if !fmt_target.exists() {
            let t = pgdr_core::fsx::write_temp_beside(
                &fmt_target,
                include_str!("../FORMAT.md").as_bytes(),
                0o600,
                owner,
            )
            .map_err(|e| fail(&e))?;
            if pgdr_core::fsx::rename_noreplace(t.path(), &fmt_target).map_err(|e| fail(&e))? {
                t.keep();
            }
        }
        let t = pgdr_core::fsx::write_temp_beside(&target, text.as_bytes(), 0o600, owner)
            .map_err(|e| fail(&e))?;
        if pgdr_core::fsx::rename_noreplace(t.path(), &target).map_err(|e| fail(&e))? {
            t.keep();
        }
        pgdr_core::fsx::fsync_dir(root).map_err(|e| fail(&e))?;
        Ok(())
    }

    pub fn seg_size(&self) -> u64 {
        self.meta.wal_segment_size
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.root.join("wal")
    }

    pub fn timeline_dir(&self, tli: u32) -> PathBuf {
        self.wal_dir().join(format!("{tli:08X}"))
    }

    /// Where a name is stored: `wal/TTTTTTTT/NAME`.
    pub fn path_of(&self, name: &WalName) -> PathBuf {
        self.timeline_dir(name.timeline).join(name.to_string())
    }

    pub fn acks_dir(&self) -> PathBuf {
        self.root.join("acks")
    }

    /// Creates a directory of the repository (0700, owned like the root), durably.
    pub fn ensure_dir(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(p) = dir.parent() {
            if p != self.root && !p.is_dir() {
                self.ensure_dir(p)?;
            }
        }
        match DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(io_fail(format!("cannot create {}", dir.display()), &e)),
        }
        self.give_away(dir);
        let parent = dir.parent().unwrap_or(&self.root);
        pgdr_core::fsx::fsync_dir(parent)
            .map_err(|e| io_fail(format!("cannot sync {}", parent.display()), &e))?;
        Ok(())
    }

    /// As root, hand a new file or directory to the repository's owner.
    fn give_away(&self, path: &Path) {
        if euid() == 0 && self.owner.0 != 0 {
            let _ = std::os::unix::fs::chown(path, Some(self.owner.0), Some(self.owner.1));
        }
    }

    /// A registered temporary file beside `target` (removed on drop and on SIGINT/SIGTERM).
    pub fn temp_beside(&self, target: &Path) -> Result<(TempFile, File)> {
        temp_beside(target).map_err(|e| {
            io_fail(
                format!("cannot create a temporary file beside {}", target.display()),
                &e,
            )
        })
    }

    /// Streams `src` (whose first bytes were already read into `first`) into a new temporary
    /// file in the target directory: header, compressed body, fsync. Returns the unpublished
    /// temp file, the header and the stored size.
    pub fn write_stored(
        &self,
        target: &Path,
        first: &[u8],
        src: &mut dyn Read,
        kind: Kind,
        compression: Compression,
        level: i32,
    ) -> Result<(TempFile, Header, u64)> {
        let (temp, mut f) = self.temp_beside(target)?;
        let wfail = |e: io::Error| {
            let mut err = io_fail(format!("cannot write {}", temp.path().display()), &e);
            if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
                err = err.hint("the repository is full; nothing was published");
            }
            err
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        f.write_all(&[0u8; HEADER_LEN]).map_err(wfail)?;
        {
            let bw = BufWriter::with_capacity(CHUNK, &mut f);
            let mut enc = Encoder::new(compression, level, bw).map_err(wfail)?;
            hasher.update(first);
            size += first.len() as u64;
            enc.write_all(first).map_err(wfail)?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_fail("cannot read the file to push".into(), &e)),
                };
                hasher.update(&buf[..n]);
                size += n as u64;
                enc.write_all(&buf[..n]).map_err(wfail)?;
            }
            let mut bw = enc.finish().map_err(wfail)?;
            bw.flush().map_err(wfail)?;
        }
        let header = Header {
            compression,
            kind,
            size,
            system_identifier: self.sysid,
            sha256: hasher.finalize().into(),
        };
        f.seek(SeekFrom::Start(0)).map_err(wfail)?;
        f.write_all(&header.encode()).map_err(wfail)?;
        f.sync_all().map_err(wfail)?;
        let stored = f.metadata().map_err(wfail)?.len();
        self.give_away(temp.path());
        Ok((temp, header, stored))
    }

    /// Publishes a finished temporary file under `target` unless something is already there.
    /// True when published (and the directory synced), false when the name was taken.
    pub fn publish(&self, temp: TempFile, target: &Path) -> Result<bool> {
        let _guard = pgdr_core::signals::critical_section();
        let ok = pgdr_core::fsx::rename_noreplace(temp.path(), target)
            .map_err(|e| io_fail(format!("cannot publish {}", target.display()), &e))?;
        if ok {
            temp.keep();
            let dir = target.parent().unwrap_or(&self.root);
            pgdr_core::fsx::fsync_dir(dir)
                .map_err(|e| io_fail(format!("cannot sync {}", dir.display()), &e))?;
        }
        Ok(ok)
    }
}

/// Creates `.NAME.pgdr-tmp.PID.N` beside `target` (0600, create-new).
pub fn temp_beside(target: &Path) -> io::Result<(TempFile, File)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = target.with_file_name(format!(".{name}.pgdr-tmp.{}.{n}", std::process::id()));
    let temp = TempFile::register(&path);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    Ok((temp, f))
}

/// Whether a directory entry is one of our temporary files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".pgdr-tmp.")
}

enum Encoder<W: Write> {
    None(W),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Lz4(lz4_flex::frame::FrameEncoder<W>),
}

impl<W: Write> Encoder<W> {
    fn new(c: Compression, level: i32, w: W) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::None(w),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(w, level)?),
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

/// Why a stored file cannot be read back intact.
#[derive(Debug)]
pub struct Damage(pub String);

/// Reads the header of a stored file.
pub fn read_header(path: &Path) -> std::result::Result<Header, Damage> {
    let mut f = File::open(path).map_err(|e| Damage(clean_io_message(&e.to_string())))?;
    let mut b = [0u8; HEADER_LEN];
    read_full(&mut f, &mut b).map_err(|e| Damage(clean_io_message(&e.to_string())))?;
    Header::decode(&b).map_err(Damage)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
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
    Ok(got)
}

/// Decompresses a stored file into `out`, checking its size and SHA-256. `first` receives the
/// first bytes of the original (for page-header checks). Errors writing `out` are reported as
/// `Err(Ok(io))`, damage in the stored file as `Err(Err(Damage))`.
pub fn restore_into(
    path: &Path,
    out: &mut dyn Write,
    first: &mut Vec<u8>,
) -> std::result::Result<Header, std::result::Result<io::Error, Damage>> {
    let dmg = |s: String| Err(Damage(s));
    let mut f = File::open(path).map_err(|e| dmg(clean_io_message(&e.to_string())))?;
    let mut hb = [0u8; HEADER_LEN];
    read_full(&mut f, &mut hb).map_err(|e| dmg(clean_io_message(&e.to_string())))?;
    let h = Header::decode(&hb).map_err(dmg)?;
    let body: Box<dyn Read> = match h.compression {
        Compression::None => Box::new(io::BufReader::with_capacity(CHUNK, f)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| dmg(format!("zstd: {e}")))?)
        }
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(
            io::BufReader::with_capacity(CHUNK, f),
        )),
    };
    let mut body = body;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Err(Damage(format!(
                    "cannot decompress ({}): {}",
                    h.compression.as_str(),
                    clean_io_message(&e.to_string())
                ))))
            }
        };
        if size > h.size {
            return Err(Err(Damage("longer than its recorded size".into())));
        }
        if first.len() < 8192 {
            let take = (8192 - first.len()).min(n);
            first.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        out.write_all(&buf[..n]).map_err(Ok)?;
    }
    if size != h.size {
        return Err(Err(Damage(format!(
            "decompressed to {size} bytes, {} recorded",
            h.size
        ))));
    }
    let got: [u8; 32] = hasher.finalize().into();
    if got != h.sha256 {
        return Err(Err(Damage(format!(
            "checksum mismatch: sha256 {} recorded, {} read",
            crate::stored::hex(&h.sha256),
            crate::stored::hex(&got)
        ))));
    }
    Ok(h)
}

/// SHA-256 and size of a plain file.
pub fn sha256_file(f: &mut dyn Read) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finalize().into(), size))
}

/// Every stored file: (name, path, stored size, mtime). Temporary and unknown files are counted
/// separately so `verify` can report them.
#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<(WalName, PathBuf, u64, i64)>,
    pub temps: Vec<PathBuf>,
    pub unknown: Vec<PathBuf>,
}

impl Repo {
    pub fn scan(&self) -> Result<Scan> {
        let mut s = Scan::default();
        let wal = self.wal_dir();
        let dirs = match fs::read_dir(&wal) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(s),
            Err(e) => return Err(io_fail(format!("cannot read {}", wal.display()), &e)),
        };
        for d in dirs {
            let d = d.map_err(|e| io_fail(format!("cannot read {}", wal.display()), &e))?;
            let dname = d.file_name().to_string_lossy().into_owned();
            let dpath = d.path();
            let tli = u32::from_str_radix(&dname, 16)
                .ok()
                .filter(|_| dname.len() == 8);
            if tli.is_none() || !dpath.is_dir() {
                s.unknown.push(dpath);
                continue;
            }
            let entries = fs::read_dir(&dpath)
                .map_err(|e| io_fail(format!("cannot read {}", dpath.display()), &e))?;
            for e in entries {
                let e = e.map_err(|e| io_fail(format!("cannot read {}", dpath.display()), &e))?;
                let n = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                if is_temp_name(&n) {
                    s.temps.push(p);
                    continue;
                }
                match WalName::parse(&n) {
                    Some(w) if Some(w.timeline) == tli => {
                        let m = e
                            .metadata()
                            .map_err(|e| io_fail(format!("cannot stat {}", p.display()), &e))?;
                        s.files.push((w, p, m.len(), m.mtime()));
                    }
                    _ => s.unknown.push(p),
                }
            }
        }
        s.files.sort_by_key(|f| f.0.to_string());
        Ok(s)
    }
}
