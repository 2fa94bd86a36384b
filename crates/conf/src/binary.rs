//! The PostgreSQL server binary that will read the file, used without a running server:
//! `postgres --describe-config` for names, types, ranges and contexts, and the server's own
//! value checks (guc.c `parse_and_validate_value`: booleans, enums, units, ranges, check
//! hooks such as time zones and recovery targets) by running
//! `postgres -D SCRATCH -c config_file=SCRATCH/check.conf -C config_file` on the settings.
//!
//! How the second works: at start-up the postmaster reads the configuration file
//! (guc-file.l `ProcessConfigFileInternal`) before it looks at the data directory, logs one
//! line per bad setting, and exits; `-C` makes a good file exit right after reading it. The
//! settings are written one per name into a scratch directory, so every message names the
//! one setting it is about. An unknown name stops the server before any value is checked,
//! so unknown names are taken out and the rest checked again. PostgreSQL refuses to run as
//! root: the binary runs as the data directory's owner, else the file's, else the
//! `postgres` OS user.

use crate::catalog::Catalog;
use pgdr_core::owner::{self, User};
use pgdr_core::{Context, Error, Result};
use std::path::{Path, PathBuf};

/// A server binary of one major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// Its bin directory.
    pub bindir: PathBuf,
    /// Its major version.
    pub major: u32,
}

/// The server's verdict on some settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// (name, message) for each setting the server refuses.
    pub problems: Vec<(String, String)>,
    /// Messages about no one setting (the run failed for another reason when non-empty).
    pub other: Vec<String>,
    /// Every message the server printed, one per problem (with its DETAIL and HINT).
    pub messages: Vec<String>,
}

/// Parameters not written into the scratch file: where the server looks for the rest
/// (data_directory would point it at another postgresql.auto.conf), and what cannot be in a
/// file at all (the caller reports those).
const NOT_CHECKED_HERE: &[&str] = &["data_directory", "config_file"];

/// Written last: they change where and how the server logs the messages that follow.
const LOGGING: &[&str] = &[
    "lc_messages",
    "log_line_prefix",
    "log_destination",
    "logging_collector",
    "syslog_facility",
    "syslog_ident",
];

impl Binary {
    /// The binary for `pg_version`, else the version in PG_VERSION of the first of `dirs`
    /// that has one, else the newest installed.
    ///
    /// # Errors
    /// No such binary, or an unreadable PG_VERSION (exit 1).
    pub fn find(pg_version: Option<u32>, dirs: &[PathBuf]) -> Result<Binary> {
        let major = match pg_version {
            Some(v) => Some(v),
            None => dirs
                .iter()
                .find_map(|d| std::fs::read_to_string(d.join("PG_VERSION")).ok())
                .map(|s| {
                    s.trim().parse::<u32>().map_err(|_| {
                        Error::failed("cannot tell the PostgreSQL version")
                            .because(format!("PG_VERSION says {:?}", s.trim()))
                            .hint("pass --pg-version")
                    })
                })
                .transpose()?,
        };
        let bindir = pgdr_core::pgbin::bindir(major)?;
        let found = version_of(&bindir)?;
        // pgbin falls back to PATH, which may hold another major.
        if let Some(m) = major.filter(|m| *m != found) {
            return Err(
                Error::failed(format!("cannot find the PostgreSQL {m} server binaries"))
                    .because(format!(
                        "{} is PostgreSQL {found}",
                        bindir.join("postgres").display()
                    ))
                    .hint("install that version's server package, or pass --pg-version"),
            );
        }
        Ok(Binary {
            bindir,
            major: found,
        })
    }

    /// The postgres executable.
    pub fn postgres(&self) -> PathBuf {
        self.bindir.join("postgres")
    }

    /// The libpq the server's WAL receiver loads (libpqwalreceiver.so resolved by the dynamic
    /// linker, as ldd shows it: a packaged server may load the system's newer libpq), and its
    /// major version (its file is libpq.so.5.N since PostgreSQL 10). None when either cannot
    /// be found.
    pub fn walreceiver_libpq(&self) -> Option<(u32, PathBuf)> {
        let lib = self.bindir.parent()?.join("lib");
        let receiver = [
            lib.join("postgresql/libpqwalreceiver.so"),
            lib.join("libpqwalreceiver.so"),
        ]
        .into_iter()
        .find(|p| p.is_file())?;
        let out = std::process::Command::new("ldd")
            .arg(&receiver)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let path = text.lines().find_map(|l| {
            let (name, rest) = l.trim().split_once("=>")?;
            name.trim()
                .starts_with("libpq.so")
                .then(|| rest.split_whitespace().next().map(PathBuf::from))?
        })?;
        let real = std::fs::canonicalize(path).ok()?;
        let major = real
            .file_name()?
            .to_str()?
            .strip_prefix("libpq.so.5.")?
            .split('.')
            .next()?
            .parse()
            .ok()?;
        Some((major, real))
    }

    /// Names, types, ranges and contexts from `postgres --describe-config` (which reads no
    /// file and may run as root).
    ///
    /// # Errors
    /// The binary cannot run or fails.
    pub fn catalog(&self) -> Result<Catalog> {
        let out = std::process::Command::new(self.postgres())
            .arg("--describe-config")
            .output()
            .context(|| "cannot run postgres --describe-config".into())?;
        if !out.status.success() {
            return Err(Error::failed("postgres --describe-config failed")
                .because(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(Catalog::from_describe_config(&String::from_utf8_lossy(
            &out.stdout,
        )))
    }

    /// The server's verdict on `settings` (name, value), run as `user`.
    ///
    /// # Errors
    /// The scratch directory cannot be made, or the binary cannot run.
    pub fn check(&self, settings: &[(String, String)], user: &User) -> Result<Verdict> {
        let scratch = tempfile::Builder::new()
            .prefix("pgdr-conf-check.")
            .tempdir()
            .context(|| "cannot make a scratch directory".into())?;
        let data = scratch.path().join("data");
        std::fs::create_dir(&data).context(|| format!("cannot create {}", data.display()))?;
        // The server reads it after the configuration file; present, it is not logged missing.
        let auto = data.join("postgresql.auto.conf");
        std::fs::write(&auto, "").context(|| format!("cannot create {}", auto.display()))?;
        if owner::is_root() {
            owner::chown_tree(scratch.path(), user.uid, user.gid)?;
        }
        let mut todo: Vec<&(String, String)> = settings
            .iter()
            .filter(|(n, _)| !NOT_CHECKED_HERE.contains(&n.to_ascii_lowercase().as_str()))
            .collect();
        todo.sort_by_key(|(n, _)| LOGGING.contains(&n.to_ascii_lowercase().as_str()));
        let mut verdict = Verdict::default();
        let unknown = |m: &str| m.starts_with("unrecognized configuration parameter");
        for _ in 0..3 {
            let Some(run) = self.run(scratch.path(), &data, &todo, user)? else {
                break;
            };
            verdict.messages.extend(run.messages);
            let (names, values): (Vec<_>, Vec<_>) =
                run.problems.into_iter().partition(|(_, m)| unknown(m));
            verdict.other.extend(run.other);
            if names.is_empty() {
                verdict.problems.extend(values);
                break;
            }
            // An unknown name ends the server's reading before any value is checked: check
            // the others again without it.
            todo.retain(|(n, _)| !names.iter().any(|(u, _)| u.eq_ignore_ascii_case(n)));
            verdict.problems.extend(names);
            if todo.is_empty() {
                break;
            }
        }
        Ok(verdict)
    }

    /// One run: None when the server accepts every setting.
    fn run(
        &self,
        scratch: &Path,
        data: &Path,
        settings: &[&(String, String)],
        user: &User,
    ) -> Result<Option<Verdict>> {
        let conf = scratch.join("check.conf");
        let mut text = String::new();
        for (n, v) in settings {
            text.push_str(n);
            text.push_str(" = ");
            // A newline or carriage return (written as \n, \r in the file being checked) cannot
            // stand raw inside a quoted value (guc-file.l): escaped again, as PostgreSQL reads it.
            let q = crate::lex::quote_always(v)
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            text.push_str(&q);
            text.push('\n');
        }
        std::fs::write(&conf, text).context(|| format!("cannot write {}", conf.display()))?;
        if owner::is_root() {
            std::os::unix::fs::chown(&conf, Some(user.uid), Some(user.gid))
                .context(|| format!("cannot give {} to {}", conf.display(), user.name))?;
        }
        let mut cmd = owner::command_as(user, self.postgres());
        cmd.arg("-D")
            .arg(data)
            .arg("-c")
            .arg(format!("config_file={}", conf.display()))
            .args(["-C", "config_file"])
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .stdin(std::process::Stdio::null());
        let out = cmd
            .output()
            .context(|| format!("cannot run {}", self.postgres().display()))?;
        if out.status.success() {
            return Ok(None);
        }
        Ok(Some(parse_messages(&String::from_utf8_lossy(&out.stderr))))
    }
}

/// The major version of the binaries in `bindir` (`postgres -V`: "postgres (PostgreSQL) 15.10").
fn version_of(bindir: &Path) -> Result<u32> {
    let out = std::process::Command::new(bindir.join("postgres"))
        .arg("-V")
        .output()
        .context(|| format!("cannot run {}/postgres -V", bindir.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .last()
        .and_then(|v| v.split('.').next())
        .and_then(|m| {
            m.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .ok_or_else(|| {
            Error::failed("cannot tell the version of the server binaries")
                .because(format!("postgres -V says {:?}", text.trim()))
                .hint("pass --pg-version")
        })
}

/// Who runs the binary: ourselves when not root; else the data directory's owner, the
/// file's owner, or the `postgres` OS user, whichever is first and not root.
///
/// # Errors
/// Root, and no other user to run as (the reason, for "unchecked").
pub fn run_as(pgdata: Option<&Path>, file: Option<&Path>) -> std::result::Result<User, String> {
    use std::os::unix::fs::MetadataExt;
    if !owner::is_root() {
        return owner::current_user().ok_or_else(|| "cannot tell who this process runs as".into());
    }
    let owner_of = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| m.uid())
            .filter(|&u| u != 0)
            .and_then(owner::user_by_uid)
    };
    pgdata
        .and_then(owner_of)
        .or_else(|| file.and_then(owner_of))
        .or_else(|| owner::user_by_name("postgres").filter(|u| u.uid != 0))
        .ok_or_else(|| {
            "PostgreSQL refuses to run as root, and neither the data directory, the file nor a postgres OS user gives another user".into()
        })
}

/// Groups the server's stderr into messages (a LOG/WARNING/FATAL line with its DETAIL and
/// HINT lines), and assigns each to the parameter it names.
fn parse_messages(stderr: &str) -> Verdict {
    const MAIN: &[&str] = &["LOG:  ", "WARNING:  ", "ERROR:  ", "FATAL:  "];
    const MORE: &[&str] = &["DETAIL:  ", "HINT:  "];
    let mut messages: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if let Some((_, text)) = MAIN
            .iter()
            .find_map(|m| line.find(m).map(|i| (m, &line[i + m.len()..])))
        {
            messages.push(text.trim().to_string());
        } else if let Some(text) = MORE
            .iter()
            .find_map(|m| line.find(m).map(|i| &line[i + m.len()..]))
        {
            if let Some(last) = messages.last_mut() {
                last.push_str(". ");
                last.push_str(text.trim().trim_end_matches('.'));
            }
        } else if !line.trim().is_empty() {
            messages.push(line.trim().to_string());
        }
    }
    let mut v = Verdict::default();
    for m in messages {
        if m.starts_with("skipping missing configuration file")
            || (m.starts_with("configuration file \"") && m.contains("\" contains errors"))
        {
            continue;
        }
        // The scratch file's name and line mean nothing to the caller.
        let m = match m.find(" in file \"") {
            Some(i) if m.starts_with("unrecognized configuration parameter") => m[..i].to_string(),
            _ => m,
        };
        match parameter_named(&m) {
            Some(name) => v.problems.push((name, m.clone())),
            None => v.other.push(m.clone()),
        }
        v.messages.push(m);
    }
    v
}

/// The parameter a server message is about: `… parameter "NAME" …`.
fn parameter_named(m: &str) -> Option<String> {
    let i = m.find("parameter \"")? + "parameter \"".len();
    let end = m[i..].find('"')?;
    Some(m[i..i + end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_grouped_and_named() {
        let stderr = "2026-01-01 00:00:00.000 GMT [1] LOG:  skipping missing configuration file \"/s/data/postgresql.auto.conf\"\n\
2026-01-01 00:00:00.000 GMT [1] LOG:  invalid value for parameter \"wal_level\": \"bogus\"\n\
2026-01-01 00:00:00.000 GMT [1] HINT:  Available values: minimal, replica, logical.\n\
2026-01-01 00:00:00.000 GMT [1] LOG:  8 8kB is outside the valid range for parameter \"shared_buffers\" (16 .. 1073741823)\n\
2026-01-01 00:00:00.000 GMT [1] FATAL:  configuration file \"/s/check.conf\" contains errors\n";
        let v = parse_messages(stderr);
        assert_eq!(
            v.problems,
            vec![
                (
                    "wal_level".to_string(),
                    "invalid value for parameter \"wal_level\": \"bogus\". Available values: minimal, replica, logical".to_string()
                ),
                (
                    "shared_buffers".to_string(),
                    "8 8kB is outside the valid range for parameter \"shared_buffers\" (16 .. 1073741823)".to_string()
                ),
            ]
        );
        assert!(v.other.is_empty());
        assert_eq!(v.messages.len(), 2);
    }
}
