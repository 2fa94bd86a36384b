//! `set`, `unset` and `apply -`: validate, plan (crate::plan), write, and with --reload make
//! it one transaction with the server.
//!
//! New values are checked first, as ALTER SYSTEM checks them: against the server's
//! pg_settings with --reload, else by the server binary that will read the file
//! (crate::binary); a value either refuses is refused with exit 1 and nothing is written.
//! A value that could not be checked is written and listed as unchecked.
//!
//! With --reload the connection is made before anything is written, and the server must
//! read the file. After the write, pg_file_settings (the server parsing the new files) must
//! show no error this change caused; only then does pg_reload_conf() run. Otherwise, or if
//! the reload fails, or a restart-only value turns out not to be pending, every file is put
//! back byte for byte, the server reloads again, and the run exits 1.

use super::check_name;
use crate::auto;
use crate::binary::{self, Binary};
use crate::catalog::{self, Catalog};
use crate::doc::{Applied, ChangeReport, FileError, Incoming, NotApplied, ReloadReport, Unchecked};
use crate::files::Files;
use crate::plan::{self, Plan};
use crate::secrets::Masker;
use crate::server::{FileSettingError, Server};
use pgdr_core::fsx::{self, WriteOptions};
use pgdr_core::{Error, Result};
use std::path::{Path, PathBuf};

/// How a change is made.
#[derive(Debug, Clone, Default)]
pub struct ChangeOptions {
    /// Write nothing; report the diff.
    pub dry_run: bool,
    /// Keep each previous file beside the new one.
    pub backup: bool,
    /// --reload: Some(conninfo), where None inside means the PG* environment alone.
    pub reload: Option<Option<String>>,
    /// How values are printed.
    pub masker: Masker,
    /// The server version whose binary checks values (else PG_VERSION, else the newest).
    pub pg_version: Option<u32>,
    /// apply: allow a document that leaves the file without any setting.
    pub allow_empty: bool,
}

/// `set NAME=VALUE...`.
///
/// # Errors
/// As [`change`]; an argument without `=` (exit 2).
pub fn set(files: &Files, settings: &[String], opts: &ChangeOptions) -> Result<ChangeReport> {
    let mut changes = Vec::new();
    for s in settings {
        let Some((n, v)) = s.split_once('=') else {
            return Err(Error::usage(format!("invalid setting \"{s}\""))
                .because("expected NAME=VALUE")
                .hint("quote the whole argument for the shell: 'archive_command=cp %p /a/%f'"));
        };
        changes.push((n.trim().to_string(), Some(v.to_string())));
    }
    change(files, changes, opts, false)
}

/// `unset NAME...`.
///
/// # Errors
/// As [`change`].
pub fn unset(files: &Files, names: &[String], opts: &ChangeOptions) -> Result<ChangeReport> {
    change(
        files,
        names.iter().map(|n| (n.clone(), None)).collect(),
        opts,
        false,
    )
}

/// `apply -`: the settings of a get or show document (null unsets).
///
/// # Errors
/// Exit 1: a masked value in the document (named), a document that would leave the file
/// without settings (unless `allow_empty`); as [`change`].
pub fn apply(files: &Files, input: &Incoming, opts: &ChangeOptions) -> Result<ChangeReport> {
    let settings = input.settings();
    let masked: Vec<&str> = settings
        .iter()
        .filter(|(_, _, m)| *m)
        .map(|(n, _, _)| n.as_str())
        .collect();
    if !masked.is_empty() {
        return Err(Error::failed(format!(
            "the document on stdin has masked values: {}",
            masked.join(", ")
        ))
        .because("a password was printed as ******** and writing that back would replace it")
        .hint("run the producing conf-edit with --show-secrets"));
    }
    let changes = settings.into_iter().map(|(n, v, _)| (n, v)).collect();
    change(files, changes, opts, true)
}

/// One file written, to put back.
struct Written {
    path: PathBuf,
    old: String,
    existed: bool,
    backup: Option<PathBuf>,
}

/// Validates, plans and writes `changes` (name, Some(value) or None to unset).
///
/// # Errors
/// Exit 2: a bad name, a value with a newline. Exit 1: a value the server refuses, files
/// that cannot be read or have errors, a failed write; with --reload a failed connection, a
/// server that does not read the file, or one that rejects the new files (put back).
pub fn change(
    files: &Files,
    changes: Vec<(String, Option<String>)>,
    opts: &ChangeOptions,
    refuse_empty: bool,
) -> Result<ChangeReport> {
    for (n, v) in &changes {
        check_name(n)?;
        auto::validate(n, v.as_deref())?;
    }
    let masker = opts.masker;
    let mut server = match &opts.reload {
        Some(dbname) => Some(Server::connect(dbname.as_deref())?),
        None => None,
    };
    let plan = plan::plan(files, &changes, masker)?;
    if refuse_empty && !opts.allow_empty {
        let (before, after) = plan::settings_before_and_after(files, &plan)?;
        if before > 0 && after == 0 {
            return Err(Error::failed(format!(
                "the document on stdin would leave {} without any setting ({before} now)",
                files.target
            ))
            .because("an empty or cut-short document")
            .hint("pass --allow-empty if that is really meant"));
        }
    }
    let catalog = match &mut server {
        Some(s) => {
            for f in plan.files() {
                s.ensure_reads(&f)?;
            }
            Some(s.catalog()?)
        }
        None => None,
    };
    let unchecked = validate(files, &changes, catalog.as_ref(), opts.pg_version)?;
    let mut report = ChangeReport {
        changed: plan.changed(),
        dry_run: opts.dry_run,
        changes: plan.changes.clone(),
        files: plan.files(),
        backups: vec![],
        shadowed: plan.shadowed.clone(),
        unchecked,
        diff: None,
        reload: None,
    };
    if opts.dry_run {
        let mut diff = String::new();
        for (f, t) in &plan.texts {
            let old = plan.olds.get(f).map(String::as_str).unwrap_or("");
            diff.push_str(&pgdr_core::diff::unified(old, t, f));
        }
        report.diff = Some(masker.text(&diff));
        return Ok(report);
    }
    let baseline = match &mut server {
        Some(s) => s.file_errors()?,
        None => vec![],
    };
    let written = write(files, &plan, opts.backup)?;
    report.backups = written
        .iter()
        .filter_map(|w| w.backup.as_ref().map(|b| b.display().to_string()))
        .collect();
    if let (Some(s), Some(cat)) = (&mut server, &catalog) {
        match transaction(s, cat, &changes, &plan, &baseline, masker) {
            Ok(r) => report.reload = Some(r),
            Err(e) => return Err(roll_back(s, &written, e)),
        }
    }
    Ok(report)
}

/// Checks the new values; returns what could not be checked.
///
/// # Errors
/// Exit 1 naming every value the server refuses.
fn validate(
    files: &Files,
    changes: &[(String, Option<String>)],
    catalog: Option<&Catalog>,
    pg_version: Option<u32>,
) -> Result<Vec<Unchecked>> {
    let sets: Vec<(String, String)> = changes
        .iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone())))
        .collect();
    if sets.is_empty() {
        return Ok(vec![]);
    }
    let mut refused: Vec<String> = Vec::new();
    let mut unchecked = Vec::new();
    match catalog {
        Some(cat) => {
            for (n, v) in &sets {
                match cat.get(n) {
                    None if !n.contains('.') => {
                        refused.push(format!("unrecognized configuration parameter \"{n}\""))
                    }
                    None => {}
                    Some(p) if p.context == "internal" => {
                        refused.push(format!("parameter \"{}\" cannot be changed", p.name))
                    }
                    Some(p) => refused.extend(catalog::check_value(p, v)),
                }
            }
        }
        None => {
            let checked = Binary::find(pg_version, &files.version_dirs())
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    let user =
                        binary::run_as(files.pgdata.as_deref(), Some(Path::new(&files.target)))?;
                    b.check(&sets, &user).map_err(|e| e.to_string())
                });
            match checked {
                Ok(v) if v.other.is_empty() => {
                    refused.extend(v.problems.into_iter().map(|(_, m)| m));
                }
                Ok(v) => unchecked_all(&sets, &v.other.join("; "), &mut unchecked),
                Err(why) => unchecked_all(&sets, &why, &mut unchecked),
            }
        }
    }
    if refused.is_empty() {
        return Ok(unchecked);
    }
    Err(Error::failed("the server refuses the new values")
        .because(refused.join("; "))
        .hint("nothing was changed"))
}

fn unchecked_all(sets: &[(String, String)], why: &str, out: &mut Vec<Unchecked>) {
    for (n, _) in sets {
        out.push(Unchecked {
            name: n.clone(),
            file: None,
            line: None,
            reason: why.to_string(),
        });
    }
}

/// Writes the plan's files: postgresql.auto.conf as ALTER SYSTEM would (a new file gets the
/// directory's owner), others atomically keeping mode and owner (a new one gets 0600).
fn write(files: &Files, plan: &Plan, backup: bool) -> Result<Vec<Written>> {
    let mut out = Vec::new();
    for (f, t) in &plan.texts {
        let path = Path::new(f);
        let old = plan.olds.get(f).cloned().unwrap_or_default();
        let existed = path.exists();
        let b = if files.conf.is_none() {
            auto::write_text(path, old.clone(), t.clone(), backup)?.backup
        } else {
            fsx::write_atomic(
                path,
                t.as_bytes(),
                &WriteOptions {
                    backup,
                    new_mode: Some(0o600),
                },
            )?
            .backup
        };
        out.push(Written {
            path: path.to_path_buf(),
            old,
            existed,
            backup: b,
        });
    }
    Ok(out)
}

/// The server's verdict on the written files, the reload, and what it applied.
fn transaction(
    s: &mut Server,
    cat: &Catalog,
    changes: &[(String, Option<String>)],
    plan: &Plan,
    baseline: &[FileSettingError],
    masker: Masker,
) -> Result<ReloadReport> {
    let names: Vec<String> = changes
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    let files = plan.files();
    let written = |f: &String| files.iter().any(|w| same_file(w, f));
    let mut pending: Vec<String> = Vec::new();
    let mut to_confirm: Vec<String> = Vec::new();
    let mut rejected: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for e in s.file_errors()? {
        let name = e.name.clone().unwrap_or_default();
        if e.error
            .ends_with("cannot be changed without restarting the server")
        {
            pending.push(name);
            continue;
        }
        // A restart-only parameter whose new value differs from the running one: valid
        // values wait for a restart (pg_settings.pending_restart after the reload).
        if e.error == "setting could not be applied" {
            if let Some(p) = cat.get(&name) {
                let valid = e
                    .setting
                    .as_deref()
                    .is_some_and(|v| catalog::check_value(p, v).is_none());
                if p.context == "postmaster" && valid {
                    to_confirm.push(p.name.clone());
                    continue;
                }
            }
        }
        let ours = names.contains(&name.to_ascii_lowercase())
            || (e.file.as_ref().is_some_and(written) && !baseline.contains(&e));
        if ours {
            rejected.push(describe(&e, masker));
        } else {
            errors.push(FileError {
                file: e.file,
                line: e.line,
                name: e.name,
                error: e.error,
            });
        }
    }
    if !rejected.is_empty() {
        return Err(
            Error::failed("the server rejects the new configuration").because(rejected.join("; "))
        );
    }
    s.reload()?;
    for n in to_confirm {
        match s.current(&n)? {
            Some(c) if c.pending_restart => pending.push(c.name),
            _ => {
                return Err(Error::failed("the server rejects the new configuration")
                    .because(format!("the new value of \"{n}\" could not be applied")))
            }
        }
    }
    let mut applied = Vec::new();
    let mut not_applied = Vec::new();
    for (n, v) in changes {
        if pending.iter().any(|p| p.eq_ignore_ascii_case(n)) {
            continue;
        }
        let rows = s.file_settings(n)?;
        let winner = rows.iter().rev().find(|r| r.applied);
        let at = |r: &crate::server::FileSetting| {
            format!(
                "{}:{}",
                r.file.as_deref().unwrap_or("?"),
                r.line.unwrap_or(0)
            )
        };
        let taken = match (v, winner) {
            (Some(_), Some(w)) if w.file.as_ref().is_some_and(written) => Ok(()),
            (Some(_), Some(w)) => Err(format!("overridden by {}", at(w))),
            (Some(_), None) => Err("the server did not apply it".to_string()),
            (None, None) => Ok(()),
            (None, Some(w)) => Err(format!("still set in {}", at(w))),
        };
        match taken {
            Ok(()) => {
                if let Some(c) = s.current(n)? {
                    applied.push(Applied {
                        name: c.name,
                        setting: masker.text(&c.setting),
                        source: c.source,
                    });
                }
            }
            Err(reason) => not_applied.push(NotApplied {
                name: n.clone(),
                reason,
            }),
        }
    }
    for n in s.pending_restart()? {
        if !pending.contains(&n) {
            pending.push(n);
        }
    }
    Ok(ReloadReport {
        reloaded: true,
        applied,
        pending_restart: pending,
        not_applied,
        errors,
    })
}

/// The same file, by its real path when both exist (the server names files its own way).
fn same_file(a: &str, b: &str) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn describe(e: &FileSettingError, masker: Masker) -> String {
    let mut s = String::new();
    if let Some(f) = &e.file {
        s.push_str(&format!("{f}:{}: ", e.line.unwrap_or(0)));
    }
    s.push_str(&e.error);
    if let Some(n) = &e.name {
        s.push_str(&format!(" \"{n}\""));
        if let Some(v) = &e.setting {
            s.push_str(&format!(" = '{}'", masker.text(v)));
        }
    }
    s
}

/// Puts every written file back byte for byte (a new file is removed), drops the backups
/// this run made, reloads again, and returns the error to report.
fn roll_back(s: &mut Server, written: &[Written], e: Error) -> Error {
    let mut failures = Vec::new();
    for w in written {
        let r = if w.existed {
            fsx::write_atomic(&w.path, w.old.as_bytes(), &WriteOptions::default()).map(|_| ())
        } else {
            std::fs::remove_file(&w.path).map_err(|e| {
                Error::failed(format!("cannot remove {}", w.path.display())).because(e)
            })
        };
        if let Err(pe) = r {
            failures.push(pe.to_string());
        }
        if let Some(b) = &w.backup {
            let _ = std::fs::remove_file(b);
        }
    }
    let _ = s.reload();
    if failures.is_empty() {
        e.hint("the previous files were put back and the server reloaded")
    } else {
        e.hint(format!(
            "putting the previous files back failed too: {}",
            failures.join("; ")
        ))
    }
}
