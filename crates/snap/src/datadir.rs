//! Facts about a data directory: that it is one, its major version, where its pieces really
//! are (pg_wal, tablespaces), its owner, and whether its postmaster is alive.

use pgdr_core::{Context, Error, Result};
use std::path::{Path, PathBuf};

/// A path is a data directory when it holds PG_VERSION and global/pg_control. Returns it
/// canonical.
///
/// # Errors
/// Not a data directory, or it cannot be resolved.
pub fn check_data_dir(pgdata: &Path) -> Result<PathBuf> {
    let canon = pgdata
        .canonicalize()
        .context(|| format!("{} is not a data directory", pgdata.display()))?;
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
///
/// # Errors
/// PG_VERSION cannot be read, or names a major outside the supported ones.
pub fn pg_version(dir: &Path) -> Result<u32> {
    let text = pgdr_core::fsx::read_text(&dir.join("PG_VERSION"))?;
    pgdr_pgformat::version::parse_pg_version(&text)
        .map_err(|e| Error::failed(format!("cannot use {}", dir.display())).because(e))
}

/// The pid of the postmaster running on `pgdata`, from its `postmaster.pid`, when that
/// process is alive. A pid the file names but another process now has (the server died and
/// the pid was reused) is not the postmaster: a postmaster's working directory is its data
/// directory (postmaster.c, ChangeToDataDir), which is checked where /proc lets us see it.
pub fn postmaster_pid(pgdata: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    let p = rustix::process::Pid::from_raw(pid)?;
    match rustix::process::test_kill_process(p) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return None,
    }
    match std::fs::read_link(format!("/proc/{pid}/cwd")) {
        Ok(cwd) if Some(cwd.as_path()) != pgdata.canonicalize().ok().as_deref() => None,
        _ => Some(pid),
    }
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
    /// Reads the layout of `pgdata`.
    ///
    /// # Errors
    /// pg_wal or a tablespace link cannot be resolved.
    pub fn of(pgdata: &Path) -> Result<Layout> {
        let wal_link = pgdata.join("pg_wal");
        let pg_wal = wal_link
            .canonicalize()
            .context(|| format!("cannot resolve {}", wal_link.display()))?;
        let mut tablespaces = Vec::new();
        if let Ok(rd) = std::fs::read_dir(pgdata.join("pg_tblspc")) {
            for e in rd.flatten() {
                let p = e.path();
                let Ok(target) = std::fs::read_link(&p) else {
                    continue; // in-place tablespace directories (allow_in_place_tablespaces)
                };
                let resolved = p
                    .canonicalize()
                    .context(|| format!("tablespace {} points nowhere", p.display()))?;
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

    /// Runs a backend's "can one snapshot cover this?" check on pg_wal and every tablespace,
    /// returning the tablespaces with their paths relative to what is snapshotted.
    ///
    /// # Errors
    /// The first piece `check` refuses.
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
