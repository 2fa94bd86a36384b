//! Finding pg_dump and pg_restore of a major at least the one needed. pg_dump refuses to dump
//! a server newer than itself ("aborting because of server version mismatch",
//! src/bin/pg_dump/pg_dump.c), and pg_restore reads archives up to its own archive version
//! (K_VERS_MAX, src/bin/pg_dump/pg_backup_archiver.h), so the newest one installed is the
//! best choice and an older one is refused before anything starts.

use pgdr_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A PostgreSQL client program found, and which version it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Its path.
    pub path: PathBuf,
    /// Its version, as `--version` reports it (e.g. "18.6").
    pub version: String,
}

impl Program {
    /// The major version (18 for "18.6", 9 for "9.6.24").
    pub fn major(&self) -> u32 {
        let digits: String = self
            .version
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or(0)
    }
}

/// The version in a `--version` line: `pg_dump (PostgreSQL) 18.6` → "18.6",
/// `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → "15.18".
fn version_of(line: &str) -> Option<String> {
    let v = line.split(')').nth(1)?.split_whitespace().next()?;
    v.starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_string())
}

fn probe(path: &Path) -> Option<Program> {
    if !path.is_file() {
        return None;
    }
    let out = std::process::Command::new(path)
        .arg("--version")
        .env_remove("PGCLUSTER")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let version = version_of(&String::from_utf8_lossy(&out.stdout))?;
    Some(Program {
        path: path.to_path_buf(),
        version,
    })
}

/// The directories searched, in order: PATH, the distribution's layout
/// (`/usr/lib/postgresql/N/bin`, `/usr/pgsql-N/bin`), then `PGDR_PG_ROOT/*/bin`.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut subdirs = |root: &Path, pattern: &dyn Fn(&str) -> bool| {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| pattern(&e.file_name().to_string_lossy()))
            .map(|e| e.path().join("bin"))
            .collect();
        found.sort();
        dirs.extend(found);
    };
    subdirs(Path::new("/usr/lib/postgresql"), &|_| true);
    subdirs(Path::new("/usr"), &|n| n.starts_with("pgsql-"));
    if let Some(root) = std::env::var_os("PGDR_PG_ROOT").filter(|r| !r.is_empty()) {
        subdirs(Path::new(&root), &|_| true);
    }
    dirs
}

/// `name` (pg_dump, pg_restore) of a major at least `at_least`: from `pg_bin` when given
/// (`--pg-bin`), else the newest found on PATH, in the distribution's layout or under
/// `PGDR_PG_ROOT`.
///
/// # Errors
/// None found, or only older ones (the message names the newest and why it cannot be used).
pub fn find(name: &str, at_least: u32, why: &str, pg_bin: Option<&Path>) -> Result<Program> {
    let found: Vec<Program> = match pg_bin {
        Some(d) => probe(&d.join(name)).into_iter().collect(),
        None => {
            let mut seen = Vec::new();
            let mut found = Vec::new();
            for d in candidate_dirs() {
                let p = d.join(name);
                let real = p.canonicalize().unwrap_or_else(|_| p.clone());
                if seen.contains(&real) {
                    continue;
                }
                seen.push(real);
                if let Some(prog) = probe(&p) {
                    found.push(prog);
                }
            }
            found
        }
    };
    let best = found.iter().max_by_key(|p| p.major()).cloned();
    match best {
        Some(p) if p.major() >= at_least => Ok(p),
        Some(p) => Err(Error::failed(format!("cannot use {name} {} ({})", p.version, p.path.display()))
            .because(format!(
                "{why} needs {name} of PostgreSQL {at_least} or later; an older {name} refuses or misreads it"
            ))
            .hint(format!(
                "install PostgreSQL {at_least}'s client programs, or pass --pg-bin DIR"
            ))),
        None => {
            let root = std::env::var_os("PGDR_PG_ROOT").filter(|r| !r.is_empty());
            let looked = looked_in(pg_bin, root.as_deref().map(Path::new));
            Err(Error::failed(format!("cannot find {name}"))
                .because(format!("there is none in {looked}"))
                .hint(format!(
                    "install PostgreSQL {at_least}'s client programs, or pass --pg-bin DIR"
                )))
        }
    }
}

/// Where [`find`] looked, as [`candidate_dirs`] does: PGDR_PG_ROOT only when it is set.
fn looked_in(pg_bin: Option<&Path>, root: Option<&Path>) -> String {
    match (pg_bin, root) {
        (Some(d), _) => d.display().to_string(),
        (None, Some(r)) => format!(
            "PATH, /usr/lib/postgresql/N/bin, /usr/pgsql-N/bin and {}/N/bin",
            r.display()
        ),
        (None, None) => "PATH, /usr/lib/postgresql/N/bin and /usr/pgsql-N/bin".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_only_where_it_looked() {
        assert_eq!(
            looked_in(None, None),
            "PATH, /usr/lib/postgresql/N/bin and /usr/pgsql-N/bin"
        );
        assert_eq!(
            looked_in(None, Some(Path::new("/opt/pg"))),
            "PATH, /usr/lib/postgresql/N/bin, /usr/pgsql-N/bin and /opt/pg/N/bin"
        );
        assert_eq!(looked_in(Some(Path::new("/b")), None), "/b");
    }

    #[test]
    fn versions_are_read() {
        assert_eq!(
            version_of("pg_dump (PostgreSQL) 18.6\n").as_deref(),
            Some("18.6")
        );
        assert_eq!(
            version_of("pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)").as_deref(),
            Some("15.18")
        );
        assert_eq!(version_of("nonsense"), None);
        let p = Program {
            path: "/x".into(),
            version: "9.6.24".into(),
        };
        assert_eq!(p.major(), 9);
    }
}
