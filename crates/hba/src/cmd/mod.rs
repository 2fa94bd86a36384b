//! The subcommands' operations, one module each, callable without clap: each takes a
//! [`Target`] and plain arguments and returns its document (crate::doc).
//!
//! What changes a file goes through [`commit`]: a unified diff with --dry-run; otherwise an
//! atomic write, and with --reload one transaction with the server (connect first, write,
//! let the server read the new file, reload only if it accepts every line, else put the
//! previous file back byte for byte).

pub mod add;
pub mod apply;
pub mod check;
pub mod list;
pub mod matching;
pub mod remove;

use crate::doc::ReloadReport;
use crate::file::{HbaFile, HbaRules};
use crate::layout::{self, NewRule};
use crate::lex;
use crate::parse_line::{ConnType, Rule};
use crate::server::Server;
use pgdr_core::fsx::{self, WriteOptions};
use pgdr_core::{Context, Error, Result};
use std::path::{Path, PathBuf};

/// PostgreSQL majors whose pg_hba.conf rules this crate knows (parse_line.rs has the
/// per-version rules).
pub const VERSIONS: std::ops::RangeInclusive<u32> = 12..=18;

/// The version assumed when neither --pg-version nor PG_VERSION beside the file says.
pub const DEFAULT_VERSION: u32 = 15;

/// The file an operation works on and the server version whose rules apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Absolute, so relative includes resolve as the server resolves them.
    pub file: PathBuf,
    /// PostgreSQL major version.
    pub version: u32,
}

impl Target {
    /// `file`, else `pgdata`/pg_hba.conf; the version from `pg_version`, else PG_VERSION
    /// beside the file, else [`DEFAULT_VERSION`].
    ///
    /// # Errors
    /// Usage errors (exit 2): no file, an unreadable PG_VERSION, a version not in
    /// [`VERSIONS`].
    pub fn resolve(
        file: Option<&Path>,
        pgdata: Option<&Path>,
        pg_version: Option<u32>,
    ) -> Result<Target> {
        let file = match (file, pgdata) {
            (Some(f), _) => f.to_path_buf(),
            (None, Some(d)) if !d.as_os_str().is_empty() => d.join("pg_hba.conf"),
            _ => {
                return Err(Error::usage("no pg_hba.conf given")
                    .because("neither -f nor -D is given and PGDATA is not set")
                    .hint("pass -f FILE"))
            }
        };
        let file =
            std::path::absolute(&file).usage_context(|| format!("bad path {}", file.display()))?;
        let version = match pg_version {
            Some(v) => v,
            None => {
                let pv = file.parent().map(|d| d.join("PG_VERSION"));
                match pv.and_then(|p| std::fs::read_to_string(p).ok()) {
                    Some(s) => {
                        let s = s.trim();
                        s.split('.')
                            .next()
                            .and_then(|m| m.parse().ok())
                            .ok_or_else(|| {
                                Error::usage("cannot tell the PostgreSQL version")
                                    .because(format!("PG_VERSION beside the file says {s:?}"))
                                    .hint("pass --pg-version")
                            })?
                    }
                    None => DEFAULT_VERSION,
                }
            }
        };
        if !VERSIONS.contains(&version) {
            return Err(
                Error::usage(format!("unsupported PostgreSQL version {version}"))
                    .because(format!(
                        "hba-edit knows the rules of PostgreSQL {} to {}",
                        VERSIONS.start(),
                        VERSIONS.end()
                    ))
                    .hint("pass --pg-version"),
            );
        }
        Ok(Target { file, version })
    }

    /// Reads and parses the file.
    ///
    /// # Errors
    /// As [`HbaFile::load`].
    pub fn load(&self) -> Result<HbaFile> {
        HbaFile::load(&self.file, self.version)
    }

    /// Reads and parses the file's rules only (for reading, not editing).
    ///
    /// # Errors
    /// As [`HbaRules::load`].
    pub fn load_rules(&self) -> Result<HbaRules> {
        HbaRules::load(&self.file, self.version)
    }
}

/// How a change is made.
#[derive(Debug, Clone, Default)]
pub struct ChangeOptions {
    /// Write nothing; report the diff.
    pub dry_run: bool,
    /// Keep the previous file beside the new one.
    pub backup: bool,
    /// Ask the server for its verdict and reload: Some(conninfo), where None inside means
    /// the PG* environment alone.
    pub reload: Option<Option<String>>,
    /// Print secrets in the report instead of ********.
    pub show_secrets: bool,
}

/// What happened to the file: the fields add, remove and apply reports share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub dry_run: bool,
    pub diff: Option<String>,
    pub backup: Option<String>,
    pub reload: Option<ReloadReport>,
}

/// Writes `new_text` over the file (or, with --dry-run, shows it), then --reload.
///
/// # Errors
/// Exit 1: the connection fails or the server reads another file (nothing written), the
/// write fails, or the server rejects the new file or cannot reload it (the previous file is
/// put back, the server reloaded again).
pub fn commit(file: &HbaFile, new_text: &str, opts: &ChangeOptions) -> Result<Written> {
    let path = &file.path;
    if opts.dry_run {
        return Ok(Written {
            dry_run: true,
            diff: Some(pgdr_core::diff::unified(
                &file.text,
                new_text,
                &path.display().to_string(),
            )),
            ..Written::default()
        });
    }
    let mut server = match &opts.reload {
        Some(dbname) => {
            let mut s = Server::connect(dbname.as_deref())?;
            s.ensure_reads(path)?;
            Some(s)
        }
        None => None,
    };
    let report = fsx::write_atomic(
        path,
        new_text.as_bytes(),
        &WriteOptions {
            backup: opts.backup,
            new_mode: None,
        },
    )?;
    let backup = report.backup.clone();
    let mut reload = None;
    if let Some(s) = &mut server {
        let verdict = s.verdict().and_then(|v| match v.rejected.first() {
            Some((line, msg)) => Err(Error::failed("the server rejects the new pg_hba.conf")
                .because(format!("line {line}: {msg}"))),
            None => s.reload().map(|_| v),
        });
        match verdict {
            Ok(v) => {
                reload = Some(ReloadReport {
                    done: true,
                    server_warnings: v.warnings,
                })
            }
            Err(e) => return Err(roll_back(s, path, &file.text, backup.as_deref(), e)),
        }
    }
    Ok(Written {
        dry_run: false,
        diff: None,
        backup: backup.map(|b| b.display().to_string()),
        reload,
    })
}

/// Puts the previous text back byte for byte (mode and owner kept), drops the backup this
/// run made, reloads again, and returns the error to report.
fn roll_back(s: &mut Server, path: &Path, old: &str, backup: Option<&Path>, e: Error) -> Error {
    let put_back = fsx::write_atomic(path, old.as_bytes(), &WriteOptions::default());
    if let Some(b) = backup {
        let _ = std::fs::remove_file(b);
    }
    let _ = s.reload();
    match put_back {
        Ok(_) => e.hint("the previous file was put back and reloaded"),
        Err(pe) => e.hint(format!("putting the previous file back failed too: {pe}")),
    }
}

/// Which rules: the selector of add, remove and match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Connection type (local, host, hostssl, …).
    pub conn: String,
    /// Database entries as written in the file (comma lists, "quoted" keywords).
    pub database: Vec<String>,
    /// User entries as written in the file.
    pub user: Vec<String>,
    /// Address column text for non-local types: CIDR, bare IP, "ADDR MASK", host name,
    /// .domain, all, samehost, samenet.
    pub address: Option<String>,
}

/// A connection type from its name.
///
/// # Errors
/// An unknown name (exit 2).
pub fn parse_type(s: &str) -> Result<ConnType> {
    ConnType::parse(s).ok_or_else(|| {
        Error::usage(format!("invalid connection type \"{s}\""))
            .hint("use local, host, hostssl, hostnossl, hostgssenc or hostnogssenc")
    })
}

/// The tokens of `--FLAG` values, each one pg_hba.conf field as written in the file.
///
/// # Errors
/// A value the server would read as something else (exit 2), with how to quote it.
fn tokens(flag: &str, values: &[String]) -> Result<Vec<lex::Token>> {
    let mut out = Vec::new();
    for v in values {
        let t = lex::field_tokens(v).map_err(|why| {
            Error::usage(format!("--{flag} {v:?} is not one pg_hba.conf field"))
                .because(why)
                .hint(format!(
                    "write a name with blanks, commas, '#' or '\"' in double quotes, a '\"' \
                     inside as '\"\"': --{flag} '{}'",
                    layout::quote(v)
                ))
        })?;
        out.extend(t);
    }
    Ok(out)
}

/// The rule to write for a selector, method, options (NAME=VALUE) and comment.
///
/// # Errors
/// Usage errors: a bad type, an address for local or none for TCP, an option without `=`.
pub fn new_rule(
    sel: &Selector,
    method: &str,
    options: &[String],
    comment: Option<String>,
) -> Result<NewRule> {
    let conn = parse_type(&sel.conn)?;
    let address = match (&sel.address, conn) {
        (Some(_), ConnType::Local) => {
            return Err(Error::usage("--address makes no sense with --type local"))
        }
        (None, ConnType::Local) => vec![],
        (None, _) => {
            return Err(Error::usage(format!("--type {} needs --address", sel.conn))
                .hint("e.g. --address 10.0.0.0/24, --address all"))
        }
        (Some(a), _) => layout::address_columns(a, None).map_err(Error::usage)?,
    };
    let mut opts = Vec::new();
    for o in options {
        let (k, v) = o.split_once('=').ok_or_else(|| {
            Error::usage(format!("invalid --option {o:?}")).hint("use --option NAME=VALUE")
        })?;
        opts.push((k.to_string(), v.to_string()));
    }
    Ok(NewRule {
        conn: conn.name().to_string(),
        databases: tokens("database", &sel.database)?,
        users: tokens("user", &sel.user)?,
        address,
        method: method.to_string(),
        options: opts,
        comment,
    })
}

/// The rule as the server would read its line.
///
/// # Errors
/// The server would reject it (exit 2).
pub fn validate(nr: &NewRule, version: u32, file: &Path) -> Result<Rule> {
    nr.validate(version, file)
        .map_err(|why| Error::usage("PostgreSQL would reject this rule").because(why))
}

/// Refuses to edit a file the server would not load.
///
/// # Errors
/// The file has a line the server rejects (exit 1).
pub fn refuse_errors(file: &HbaFile) -> Result<()> {
    if let Some(e) = file.errors.first() {
        return Err(Error::failed(format!(
            "{} has lines PostgreSQL rejects",
            file.path.display()
        ))
        .because(format!("{}:{}: {}", e.file.display(), e.line, e.message))
        .hint("see 'hba-edit check'; 'hba-edit remove --line N' removes a line"));
    }
    Ok(())
}

/// The record starting on `line` (for --before, --after, --line).
///
/// # Errors
/// No rule, error line or directive starts there (exit 2).
pub fn record_for(file: &HbaFile, line: usize, flag: &str) -> Result<usize> {
    file.record_at_line(line).ok_or_else(|| {
        Error::usage(format!(
            "{flag} {line}: no rule starts on line {line} of {}",
            file.path.display()
        ))
        .hint("see the line numbers in 'hba-edit list'")
    })
}
