//! The PostgreSQL majors the matrix tests run against, and where their programs are.
//!
//! PostgreSQL 15 is the distribution's (`/usr/lib/postgresql/15/bin`); 13, 14, 16, 17 and 18 are
//! the server binaries `make deps` installs under `PGDR_PG_ROOT/<major>/bin` (initdb, pg_ctl,
//! postgres only), and `PGDR_PG_ROOT/18-tools/bin` holds every PostgreSQL 18 program (psql,
//! pg_basebackup, pg_dump, pgbench, pg_controldata, pg_waldump), which work against older
//! servers too. `PGDR_PG_ROOT` defaults to `/var/cache/pgdr/postgresql` as root, else
//! `${XDG_CACHE_HOME:-~/.cache}/pgdr/postgresql` (tests/deps/pg-majors.sh installs there).

use crate::Unavailable;
use std::path::{Path, PathBuf};

/// Every major pgdr supports and tests against a real server (SPEC "Supported PostgreSQL
/// versions"), oldest first.
pub const MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// The directory `make deps` installs the majors into (see the module documentation).
pub fn pg_root() -> PathBuf {
    if let Some(r) = std::env::var_os("PGDR_PG_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    if crate::is_root() {
        return PathBuf::from("/var/cache/pgdr/postgresql");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/nonexistent".into()))
                .join(".cache")
        });
    cache.join("pgdr/postgresql")
}

/// The server binaries (initdb, pg_ctl, postgres) of `major`: `PGDR_PG_ROOT/<major>/bin`,
/// else the distribution's. Checked to be that major (`postgres --version`).
///
/// # Errors
/// [`Unavailable`] when no server of that major is installed here, saying how to get one.
pub fn server_bindir(major: u32) -> Result<PathBuf, Unavailable> {
    let candidates = [
        pg_root().join(format!("{major}/bin")),
        PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
        PathBuf::from(format!("/usr/pgsql-{major}/bin")),
    ];
    for d in candidates {
        if d.join("pg_ctl").is_file() && d.join("initdb").is_file() {
            let got = pgdr_core::pgbin::program_major(&d.join("postgres"));
            return match got {
                Some(m) if m == major => Ok(d),
                _ => Err(Unavailable(format!(
                    "{} is not a PostgreSQL {major} server (postgres --version says {got:?})",
                    d.display()
                ))),
            };
        }
    }
    Err(Unavailable(format!(
        "no PostgreSQL {major} server in {}/{major}/bin or /usr/lib/postgresql/{major}/bin: run `make deps`",
        pg_root().display()
    )))
}

/// The newest client programs: PostgreSQL 18's, from `PGDR_PG_ROOT/18-tools/bin`.
///
/// # Errors
/// [`Unavailable`] when `make deps` has not installed them.
pub fn client_bindir() -> Result<PathBuf, Unavailable> {
    let d = pg_root().join("18-tools/bin");
    if d.join("pg_basebackup").is_file() && d.join("psql").is_file() {
        Ok(d)
    } else {
        Err(Unavailable(format!(
            "no PostgreSQL 18 client programs in {}: run `make deps`",
            d.display()
        )))
    }
}

/// `program` from `bindir` when that directory has it, else the newest client programs'
/// ([`client_bindir`]): the npm server packages have no psql, pg_basebackup or pgbench.
///
/// # Panics
/// When neither has it (`make deps` not run).
pub fn program_path(bindir: &Path, program: &str) -> PathBuf {
    let own = bindir.join(program);
    if own.is_file() {
        return own;
    }
    match client_bindir() {
        Ok(d) if d.join(program).is_file() => d.join(program),
        Ok(d) => panic!("no {program} in {} or {}", bindir.display(), d.display()),
        Err(u) => panic!("no {program} in {}: {u}", bindir.display()),
    }
}
