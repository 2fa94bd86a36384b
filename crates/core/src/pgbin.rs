//! Where the PostgreSQL server binaries of a major version are.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The bin directory for `major` (or the newest installed when `None`), the first of:
///
/// 1. `PGDR_PG_BINDIR`, as given (an override: its version is not checked);
/// 2. `PGDR_PG_ROOT/<major>/bin` when `PGDR_PG_ROOT` is set (one directory per major, the
///    layout `make deps` installs for the tests: tests/deps/pg-majors.sh);
/// 3. `/usr/lib/postgresql/<major>/bin` (Debian/Ubuntu), then `/usr/pgsql-<major>/bin` (RHEL);
/// 4. the directory of `pg_ctl` on PATH, when `pg_ctl --version` is of `major`.
///
/// A directory counts when it has `pg_ctl`. With `None`, the newest under
/// `/usr/lib/postgresql`, else `pg_ctl` on PATH.
///
/// # Errors
/// No such directory: the error names the major and where it looked.
pub fn bindir(major: Option<u32>) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("PGDR_PG_BINDIR") {
        return Ok(PathBuf::from(d));
    }
    let has_pg_ctl = |d: &Path| d.join("pg_ctl").is_file();
    // Set but empty counts as unset (not the relative path N/bin).
    let root = std::env::var_os("PGDR_PG_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from);
    match major {
        Some(m) => {
            for d in candidates(m, root.as_deref()) {
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
            // Another major's server on PATH would misread this one's data directory.
            if has_pg_ctl(&d) && major.is_none_or(|m| program_major(&d.join("pg_ctl")) == Some(m)) {
                return Ok(d);
            }
        }
    }
    Err(not_found(major, root.as_deref()))
}

/// Where [`bindir`] looks for `major`, in order, before PATH.
fn candidates(major: u32, root: Option<&Path>) -> Vec<PathBuf> {
    root.map(|r| r.join(format!("{major}/bin")))
        .into_iter()
        .chain([
            PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
            PathBuf::from(format!("/usr/pgsql-{major}/bin")),
        ])
        .collect()
}

/// [`bindir`]'s error, naming only the places it looked (PGDR_PG_ROOT only when set).
fn not_found(major: Option<u32>, root: Option<&Path>) -> Error {
    let (which, places) = match major {
        Some(m) => (
            format!("PostgreSQL {m} "),
            candidates(m, root)
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => (String::new(), "/usr/lib/postgresql/*/bin".to_string()),
    };
    Error::failed(format!("cannot find the {which}server binaries"))
        .because(format!("no pg_ctl in {places} or on PATH"))
        .hint("install that major's server package, or set PGDR_PG_BINDIR")
}

/// The major version a PostgreSQL program reports (`pg_ctl (PostgreSQL) 15.18 (Debian …)` → 15,
/// `9.6.24` → 9, `19beta1` → 19).
pub fn program_major(program: &Path) -> Option<u32> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    version_major(&String::from_utf8_lossy(&out.stdout))
}

/// The major in a `--version` line, see [`program_major`].
fn version_major(line: &str) -> Option<u32> {
    let v = line.split(')').nth(1)?.split_whitespace().next()?;
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_error_names_only_where_it_looked() {
        use super::not_found as e;
        assert_eq!(
            e(Some(17), None).to_string(),
            "cannot find the PostgreSQL 17 server binaries: no pg_ctl in \
             /usr/lib/postgresql/17/bin, /usr/pgsql-17/bin or on PATH (install that major's \
             server package, or set PGDR_PG_BINDIR)"
        );
        assert!(e(Some(17), Some(Path::new("/opt/pg")))
            .to_string()
            .contains(
            "no pg_ctl in /opt/pg/17/bin, /usr/lib/postgresql/17/bin, /usr/pgsql-17/bin or on PATH"
        ));
        assert!(e(None, None)
            .to_string()
            .contains("no pg_ctl in /usr/lib/postgresql/*/bin or on PATH"));
    }

    #[test]
    fn version_lines() {
        use super::version_major as m;
        assert_eq!(
            m("pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(m("postgres (PostgreSQL) 18.4\n"), Some(18));
        assert_eq!(m("pg_ctl (PostgreSQL) 9.6.24\n"), Some(9));
        assert_eq!(m("pg_ctl (PostgreSQL) 19beta1\n"), Some(19));
        assert_eq!(m("nonsense"), None);
    }
}
