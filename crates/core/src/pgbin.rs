//! Where the PostgreSQL server binaries are.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The bin directory for `major` (or the newest installed when `None`): `PGDR_PG_BINDIR`,
/// then `/usr/lib/postgresql/<major>/bin` (Debian/Ubuntu), then `/usr/pgsql-<major>/bin`
/// (RHEL), then the directory of `pg_ctl` on PATH.
pub fn bindir(major: Option<u32>) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("PGDR_PG_BINDIR") {
        return Ok(PathBuf::from(d));
    }
    let has_pg_ctl = |d: &Path| d.join("pg_ctl").is_file();
    match major {
        Some(m) => {
            for d in [
                PathBuf::from(format!("/usr/lib/postgresql/{m}/bin")),
                PathBuf::from(format!("/usr/pgsql-{m}/bin")),
            ] {
                if has_pg_ctl(&d) {
                    return Ok(d);
                }
            }
        }
        None => {
            let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let v: u32 = e.file_name().to_str()?.parse().ok()?;
                    let d = e.path().join("bin");
                    has_pg_ctl(&d).then_some((v, d))
                })
                .collect();
            found.sort();
            if let Some((_, d)) = found.pop() {
                return Ok(d);
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if has_pg_ctl(&d) {
                return Ok(d);
            }
        }
    }
    let which = major
        .map(|m| format!("PostgreSQL {m} "))
        .unwrap_or_default();
    Err(
        Error::failed(format!("cannot find the {which}server binaries"))
            .because("no pg_ctl under /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin or on PATH")
            .hint("install the server package, or set PGDR_PG_BINDIR"),
    )
}
