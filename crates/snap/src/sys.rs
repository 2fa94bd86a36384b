//! Running zfs/btrfs commands with one-line errors, and small filesystem facts.

use pgdr_core::{Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Runs `program args…`, returning stdout; a missing program or a failure is one clear line.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("the {program} command is not installed")
            } else {
                pgdr_core::error::clean_io_message(&e.to_string())
            };
            Error::failed(format!("cannot run {program}")).because(why)
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string();
    Err(Error::failed(format!("{program} {} failed", args.first().unwrap_or(&""))).because(first))
}

/// Whether `program` can be run at all.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The path relative to `base` as a string ("" when equal), if `path` is inside `base`.
pub fn rel_to(path: &Path, base: &Path) -> Option<String> {
    let r = path.strip_prefix(base).ok()?;
    Some(r.to_string_lossy().into_owned())
}

/// `a` joined with a relative string that may be empty.
pub fn join_rel(a: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        a.to_path_buf()
    } else {
        a.join(rel)
    }
}

/// A path is a data directory when it holds PG_VERSION and global/pg_control.
pub fn check_data_dir(pgdata: &Path) -> Result<PathBuf> {
    let canon = pgdata.canonicalize().map_err(|e| {
        Error::failed(format!("{} is not a data directory", pgdata.display()))
            .because(pgdr_core::error::clean_io_message(&e.to_string()))
    })?;
    if !canon.join("PG_VERSION").is_file() || !canon.join("global/pg_control").is_file() {
        return Err(
            Error::failed(format!("{} is not a data directory", pgdata.display()))
                .because("it has no PG_VERSION and global/pg_control")
                .hint("pass the PGDATA of a PostgreSQL cluster with --pgdata"),
        );
    }
    Ok(canon)
}

/// The major version in PG_VERSION; a major pgdr does not know (11, a 19 beta) is refused.
pub fn pg_version(dir: &Path) -> Result<u32> {
    let text = pgdr_core::fsx::read_text(&dir.join("PG_VERSION"))?;
    pgdr_pgformat::version::parse_pg_version(&text)
        .map_err(|e| Error::failed(format!("cannot use {}", dir.display())).because(e))
}

/// Where the data directory's pieces really are: pg_wal and each tablespace, resolved.
#[derive(Debug, Clone)]
pub struct Layout {
    pub pgdata: PathBuf,
    pub pg_wal: PathBuf,
    /// (oid, symlink target as written, resolved path).
    pub tablespaces: Vec<(String, PathBuf, PathBuf)>,
}

impl Layout {
    /// Runs a backend's "can one snapshot cover this?" check on pg_wal and every tablespace,
    /// returning the tablespaces with their paths relative to what is snapshotted.
    pub fn check_each(
        &self,
        check: impl Fn(&str, &Path) -> Result<String>,
    ) -> Result<Vec<crate::meta::Tablespace>> {
        check("pg_wal", &self.pg_wal)?;
        self.tablespaces
            .iter()
            .map(|(oid, target, resolved)| {
                Ok(crate::meta::Tablespace {
                    oid: oid.clone(),
                    target: target.clone(),
                    rel: check(&format!("tablespace {oid}"), resolved)?,
                })
            })
            .collect()
    }
}

pub fn layout(pgdata: &Path) -> Result<Layout> {
    let wal_link = pgdata.join("pg_wal");
    let pg_wal = wal_link.canonicalize().map_err(|e| {
        Error::failed(format!("cannot resolve {}", wal_link.display()))
            .because(pgdr_core::error::clean_io_message(&e.to_string()))
    })?;
    let mut tablespaces = Vec::new();
    if let Ok(rd) = std::fs::read_dir(pgdata.join("pg_tblspc")) {
        for e in rd.flatten() {
            let p = e.path();
            let Ok(target) = std::fs::read_link(&p) else {
                continue; // in-place tablespace directories (allow_in_place_tablespaces)
            };
            let resolved = p.canonicalize().map_err(|err| {
                Error::failed(format!("tablespace {} points nowhere", p.display()))
                    .because(pgdr_core::error::clean_io_message(&err.to_string()))
            })?;
            tablespaces.push((
                e.file_name().to_string_lossy().into_owned(),
                target,
                resolved,
            ));
        }
    }
    tablespaces.sort();
    Ok(Layout {
        pgdata: pgdata.to_path_buf(),
        pg_wal,
        tablespaces,
    })
}

/// statfs f_type of a path.
pub fn fs_type(path: &Path) -> Option<i64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    (rc == 0).then_some(st.f_type as i64)
}

pub const BTRFS_MAGIC: i64 = 0x9123_683E;

/// The device id of a path (btrfs gives each subvolume its own).
pub fn dev_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.dev())
}

/// A name usable as one path component in lock and store names.
pub fn flat_name(path: &Path) -> String {
    let mut s: String = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("_");
    s.retain(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if s.is_empty() {
        s.push_str("root");
    }
    s
}
