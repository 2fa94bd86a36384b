//! The `conf-edit` command line.

use crate::catalog::{self, Catalog, Param};
use crate::edit::{self, Change};
use crate::lex;
use crate::load::{self, Loaded};
use crate::{auto, parse};
use clap::{Parser, Subcommand};
use pgdr_core::fsx::{self, WriteOptions};
use pgdr_core::{Error, Outcome, OutputArgs, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const AFTER_HELP: &str = "\
Examples:
  conf-edit -f /etc/postgresql/15/main/postgresql.conf get wal_level max_wal_senders
  conf-edit -D /var/lib/postgresql/15/main set wal_level=replica max_wal_senders=10 --dry-run
  conf-edit -D $PGDATA set archive_mode=on 'archive_command=wal-archive push %p' --reload -d 'host=/run/postgresql'
  conf-edit -D $PGDATA --auto set port=5433 recovery_target_action=pause
  conf-edit -D $PGDATA unset shared_preload_libraries
  conf-edit -f primary.conf get max_connections | conf-edit -f standby.conf apply -
  conf-edit -D $PGDATA check -d 'host=/run/postgresql'";

/// Read, check and change postgresql.conf and postgresql.auto.conf as the server does.
#[derive(Debug, Parser)]
#[command(
    name = "conf-edit",
    version = pgdr_core::VERSION,
    about = "Read, check and change postgresql.conf and postgresql.auto.conf as PostgreSQL reads them",
    long_about = "Read, check and change postgresql.conf and postgresql.auto.conf with PostgreSQL's own \
grammar (guc-file.l): 'name = value' or 'name value', quoted strings with '' and backslash escapes, \
units, comments, include, include_if_exists and include_dir; the last setting of a name wins, and \
postgresql.auto.conf overrides postgresql.conf. 'set' edits the effective line in place, else uncomments \
the commented-out sample line, else appends; untouched bytes stay as they were. With --auto the \
target is postgresql.auto.conf, written byte for byte as ALTER SYSTEM writes it. Every write is atomic \
and keeps mode and owner.",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// The file to read or change (default: $PGDATA/postgresql.conf; with --auto,
    /// $PGDATA/postgresql.auto.conf).
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The data directory (default: $PGDATA); where postgresql.auto.conf is.
    #[arg(
        short = 'D',
        long = "pgdata",
        global = true,
        value_name = "DIR",
        env = "PGDATA"
    )]
    pub pgdata: Option<PathBuf>,
    /// Work on postgresql.auto.conf, written the way ALTER SYSTEM writes it.
    #[arg(long, global = true)]
    pub auto: bool,
    /// Change nothing; print what would change (a unified diff in "diff").
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Keep the previous file beside the new one (NAME.pgdr-TIME.bak).
    #[arg(long, global = true)]
    pub backup: bool,
    /// After a change, run pg_reload_conf() on -d and report pg_file_settings.
    #[arg(long, global = true, requires = "dbname")]
    pub reload: bool,
    /// A libpq conninfo string or postgres:// URI (for check and --reload).
    #[arg(short = 'd', long = "dbname", global = true, value_name = "CONNINFO")]
    pub dbname: Option<String>,
    /// Print passwords in conninfo values instead of ********.
    #[arg(long, global = true)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print the effective value, file and line of each NAME (null when not set).
    Get {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Print every effective setting with its source, every row as pg_file_settings has it,
    /// and every error.
    Show,
    /// Set parameters: edit the effective line, else uncomment the sample line, else append.
    Set {
        #[arg(required = true, value_name = "NAME=VALUE")]
        settings: Vec<String>,
    },
    /// Comment out every active line of each NAME (with --auto: remove it, as ALTER SYSTEM RESET).
    Unset {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Apply {"settings": {NAME: VALUE | {"value": VALUE} | null}} read from stdin (what get
    /// and show print); null unsets.
    Apply {
        /// Must be '-' (read stdin).
        #[arg(value_name = "-")]
        input: String,
    },
    /// Check names and values: unknown names, bad booleans and enums, numbers out of range,
    /// bad units, settings that need a restart. Against pg_settings with -d, else against the
    /// local server binary (postgres --describe-config and postgres -C, run as the data
    /// directory's owner, never as root).
    Check,
}

pgdr_core::tool_args!(Args);

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "success (check: no problem found)"),
        (1, "the operation failed or was refused and nothing was changed (a missing file, a file with a syntax error, a failed write or connection); check found problems"),
        (2, "usage error or malformed input: bad arguments, a name that is not a parameter name, a value with a newline, invalid UTF-8, malformed JSON on stdin"),
    ],
    documents: &[],
    json_output: "get: {\"settings\": {NAME: {\"value\", \"file\", \"line\"} or null}}.\n\
show: {\"settings\": {name: {\"value\", \"file\", \"line\"}}, \"entries\": [{\"seqno\", \"name\", \"setting\", \"file\", \"line\", \"applied\", \"error\"}] (the rows of pg_file_settings), \"errors\": [{\"file\", \"line\", \"name\", \"error\"}], \"files\": [...]}.\n\
set, unset, apply: {\"changed\", \"dry_run\", \"changes\": [{\"name\", \"action\" (edited, uncommented, appended, commented_out, removed, unchanged), \"old\", \"new\", \"file\", \"line\"}], \"files\": [changed files], \"backups\", \"shadowed\": [{\"name\", \"file\", \"line\", \"value\"}] (a later file, such as postgresql.auto.conf, overrides the change), \"diff\" (with --dry-run), \"reload\" (with --reload: {\"applied\", \"pending_restart\", \"errors\"})}.\n\
check: {\"ok\", \"catalog\", \"problems\": [{\"name\", \"value\", \"file\", \"line\", \"problem\"}], \"needs_restart\": [names], \"server_check\"}.\n\
Passwords inside conninfo values show as ******** unless --show-secrets.",
    examples: &[
        ("Read two settings", "conf-edit -D /var/lib/postgresql/15/main get wal_level max_wal_senders"),
        ("Prepare a primary and reload", "conf-edit -D $PGDATA set wal_level=replica max_wal_senders=10 --reload -d 'host=/run/postgresql'"),
        ("Write recovery settings as ALTER SYSTEM would", "conf-edit -D /clone --auto set port=5499 recovery_target_action=pause"),
        ("Copy settings between hosts", "conf-edit -f a.conf get max_connections | conf-edit -f b.conf apply -"),
        ("See a change first", "conf-edit -D $PGDATA set shared_buffers=2GB --dry-run"),
    ],
    extra_sections: &[(
        "GRAMMAR",
        "Exactly PostgreSQL's: a bare value is an identifier, a number with an optional unit, or a letter followed by letters, digits and -._:/; anything else must be quoted. conf-edit writes values bare only when PostgreSQL reads them back unchanged, and keeps quotes where they were. A list parameter (shared_preload_libraries, search_path) is written as one string 'a, b', which the server splits; an empty list is ''.",
    )],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("conf-edit", run)
}

/// The files involved.
struct Paths {
    /// The file the command reads or changes.
    target: String,
    /// postgresql.conf (the top of the tree), when not --auto.
    conf: Option<String>,
    /// postgresql.auto.conf, read after conf.
    auto: Option<String>,
    pgdata: Option<PathBuf>,
}

fn absolute(p: &Path) -> String {
    let s = p.to_string_lossy();
    if s.starts_with('/') {
        load::canonicalize(&s)
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        load::canonicalize(&format!("{}/{s}", cwd.display()))
    }
}

fn paths(a: &Args) -> Result<Paths> {
    let pgdata = a.pgdata.clone().map(|p| PathBuf::from(absolute(&p)));
    let need = || {
        Error::usage("no file to work on")
            .because("neither -f nor -D is given and PGDATA is not set")
            .hint("pass -f FILE or -D DATADIR")
    };
    if a.auto {
        let target = match (&a.file, &pgdata) {
            (Some(f), _) => absolute(f),
            (None, Some(d)) => format!("{}/postgresql.auto.conf", d.display()),
            (None, None) => return Err(need()),
        };
        return Ok(Paths {
            target: target.clone(),
            conf: None,
            auto: Some(target),
            pgdata,
        });
    }
    let conf = match (&a.file, &pgdata) {
        (Some(f), _) => absolute(f),
        (None, Some(d)) => format!("{}/postgresql.conf", d.display()),
        (None, None) => return Err(need()),
    };
    let auto_dir = match &pgdata {
        Some(d) => d.display().to_string(),
        None => data_directory_of(&conf).unwrap_or_else(|| {
            Path::new(&conf)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| ".".into())
        }),
    };
    Ok(Paths {
        target: conf.clone(),
        conf: Some(conf),
        auto: Some(format!("{auto_dir}/postgresql.auto.conf")),
        pgdata,
    })
}

/// A `data_directory` setting in the file (Debian keeps postgresql.conf in /etc).
fn data_directory_of(conf: &str) -> Option<String> {
    let l = load::load(conf, None, None).ok()?;
    let e = l.effective("data_directory")?;
    let v = e.setting.clone()?;
    Some(if v.starts_with('/') {
        load::canonicalize(&v)
    } else {
        load::absolute_location(&v, conf)
    })
}

/// Loads the tree: conf then auto (or auto alone with --auto).
fn load_tree(p: &Paths, names: Option<&dyn load::Names>) -> Result<Loaded> {
    match &p.conf {
        Some(c) => load::load(c, p.auto.as_deref(), names),
        None => {
            let t = p.target.clone();
            if !Path::new(&t).exists() {
                return Ok(Loaded {
                    ok: true,
                    ..Loaded::default()
                });
            }
            load::load(&t, None, names)
        }
    }
}

/// Masks `password=...` inside conninfo-like text.
pub fn mask_secrets(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("password=") {
        let (head, tail) = rest.split_at(i + "password=".len());
        out.push_str(head);
        let quoted = tail.starts_with('\'');
        let end = if quoted {
            tail[1..].find('\'').map(|j| j + 2).unwrap_or(tail.len())
        } else {
            tail.find([' ', '\t', '\'', '\n']).unwrap_or(tail.len())
        };
        out.push_str(pgdr_core::conn::MASK);
        rest = &tail[end..];
    }
    out.push_str(rest);
    // URIs: postgres://user:secret@host
    if let Some(i) = out.find("://") {
        let after = &out[i + 3..];
        if let Some(at) = after.find('@') {
            if let Some(colon) = after[..at].find(':') {
                let masked = format!(
                    "{}{}{}",
                    &out[..i + 3 + colon + 1],
                    pgdr_core::conn::MASK,
                    &after[at..]
                );
                return masked;
            }
        }
    }
    out
}

struct Ctx {
    show_secrets: bool,
}

impl Ctx {
    fn v(&self, s: &str) -> String {
        if self.show_secrets {
            s.to_string()
        } else {
            mask_secrets(s)
        }
    }
}

pub fn run(a: Args) -> Result<Outcome> {
    let p = paths(&a)?;
    let ctx = Ctx {
        show_secrets: a.show_secrets,
    };
    match &a.command {
        Cmd::Get { names } => {
            for n in names {
                check_name(n)?;
            }
            let l = load_tree(&p, None)?;
            let mut settings = Map::new();
            for n in names {
                let v = match l.effective(n) {
                    Some(e) => {
                        json!({"value": ctx.v(e.setting.as_deref().unwrap_or("")), "file": e.file, "line": e.line})
                    }
                    None => Value::Null,
                };
                settings.insert(n.clone(), v);
            }
            Outcome::json(json!({ "settings": settings }))
        }
        Cmd::Show => {
            let cat = offline_catalog(&p).ok();
            let l = load_tree(&p, cat.as_ref().map(|c| c as &dyn load::Names))?;
            let mut settings = Map::new();
            for e in &l.entries {
                if let (Some(n), None) = (&e.name, &e.error) {
                    settings.insert(
                        n.to_ascii_lowercase(),
                        json!({"value": ctx.v(e.setting.as_deref().unwrap_or("")), "file": e.file, "line": e.line}),
                    );
                }
            }
            let entries: Vec<Value> = l
                .entries
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                    if let Some(s) = &e.setting {
                        v["setting"] = Value::String(ctx.v(s));
                    }
                    v
                })
                .collect();
            let errors: Vec<Value> = l
                .errors()
                .map(|e| json!({"file": e.file, "line": e.line, "name": e.name, "error": e.error}))
                .collect();
            Outcome::json(json!({
                "settings": settings,
                "entries": entries,
                "errors": errors,
                "files": l.files.keys().collect::<Vec<_>>(),
            }))
        }
        Cmd::Set { settings } => {
            let mut changes = Vec::new();
            for s in settings {
                let Some((n, v)) = s.split_once('=') else {
                    return Err(Error::usage(format!("invalid setting \"{s}\""))
                        .because("expected NAME=VALUE")
                        .hint(
                            "quote the whole argument for the shell: 'archive_command=cp %p /a/%f'",
                        ));
                };
                changes.push((n.trim().to_string(), Some(v.to_string())));
            }
            change(&a, &p, &ctx, changes)
        }
        Cmd::Unset { names } => change(
            &a,
            &p,
            &ctx,
            names.iter().map(|n| (n.clone(), None)).collect(),
        ),
        Cmd::Apply { input } => {
            if input != "-" {
                return Err(Error::usage("apply reads JSON from stdin only")
                    .hint("pass '-' and pipe the JSON in"));
            }
            let doc = pgdr_core::input::read_stdin_json()?;
            change(&a, &p, &ctx, changes_from_json(&doc)?)
        }
        Cmd::Check => check(&a, &p, &ctx),
    }
}

fn check_name(n: &str) -> Result<()> {
    if lex::valid_name(n) {
        Ok(())
    } else {
        Err(Error::usage(format!("invalid parameter name \"{n}\""))
            .because("a name is a letter followed by letters, digits or _, with at most one dot"))
    }
}

/// Turns `{"settings": {...}}` into changes.
pub fn changes_from_json(doc: &Value) -> Result<Vec<(String, Option<String>)>> {
    let settings = doc
        .get("settings")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Error::usage("malformed JSON on stdin")
                .because("expected {\"settings\": {NAME: VALUE, ...}}")
                .hint("pipe in the output of conf-edit get or show")
        })?;
    let mut out = Vec::new();
    for (name, v) in settings {
        let v = match v {
            Value::Object(o) => o.get("value").cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        let value = match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Bool(b) => Some(if b { "on" } else { "off" }.to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Array(items) => {
                let mut parts = Vec::new();
                for it in items {
                    let s = match it {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    parts.push(list_element(&s));
                }
                Some(parts.join(", "))
            }
            Value::Object(_) => {
                return Err(Error::usage(format!("malformed value for \"{name}\""))
                    .because("expected a string, number, boolean, list or null"))
            }
        };
        out.push((name.clone(), value));
    }
    Ok(out)
}

/// One element of a list parameter, double-quoted when the server would otherwise split or
/// fold it (like quote_identifier).
fn list_element(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// set/unset/apply.
fn change(
    a: &Args,
    p: &Paths,
    ctx: &Ctx,
    changes: Vec<(String, Option<String>)>,
) -> Result<Outcome> {
    for (n, v) in &changes {
        check_name(n)?;
        auto::validate(n, v.as_deref())?;
    }
    // New texts by file, applied one change at a time so each sees the ones before.
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut olds: BTreeMap<String, String> = BTreeMap::new();
    let mut report: Vec<Change> = Vec::new();
    let mut shadowed = Vec::new();
    if a.auto {
        let old = if Path::new(&p.target).exists() {
            fsx::read_text(Path::new(&p.target))?
        } else {
            String::new()
        };
        let before = auto::entries(&old)?;
        let refs: Vec<(&str, Option<&str>)> = changes
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_deref()))
            .collect();
        let new = if auto::is_noop(&old, &refs)? {
            old.clone()
        } else {
            auto::apply(&old, &refs)?
        };
        let new_file = parse::parse(&new);
        for (n, v) in &changes {
            let old_v = before
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone());
            let line = new_file.lines.iter().find(|l| matches!(&l.kind, parse::Kind::Setting{name, ..} if name.eq_ignore_ascii_case(n))).map(|l| l.number).unwrap_or(0);
            let action = match (&old_v, v) {
                (Some(o), Some(nv))
                    if o == nv
                        && before
                            .iter()
                            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                            .count()
                            == 1 =>
                {
                    "unchanged"
                }
                (_, Some(_)) => "set",
                (Some(_), None) => "removed",
                (None, None) => "unchanged",
            };
            report.push(Change {
                name: n.clone(),
                action,
                old: old_v.map(|x| ctx.v(&x)),
                new: v.as_deref().map(|x| ctx.v(x)),
                file: p.target.clone(),
                line,
            });
        }
        olds.insert(p.target.clone(), old);
        texts.insert(p.target.clone(), new);
    } else {
        let conf = p.conf.clone().expect("conf is set without --auto");
        let loaded = load::load(&conf, None, None)?;
        if let Some(e) = loaded.errors().next() {
            return Err(
                Error::failed(format!("{} has an error; nothing was changed", conf))
                    .because(format!(
                        "{} line {}: {}",
                        e.file,
                        e.line,
                        e.error.as_deref().unwrap_or("")
                    ))
                    .hint("run 'conf-edit show' and fix the file first"),
            );
        }
        for f in loaded.files.keys() {
            olds.insert(f.clone(), loaded.files[f].text.clone());
        }
        let current = |texts: &BTreeMap<String, String>,
                       olds: &BTreeMap<String, String>,
                       f: &str|
         -> parse::File {
            parse::parse(
                texts
                    .get(f)
                    .or_else(|| olds.get(f))
                    .map(String::as_str)
                    .unwrap_or(""),
            )
        };
        for (n, v) in &changes {
            // Re-resolve through the pending texts: an earlier change may have moved lines.
            let tree = load_overlay(&conf, &texts)?;
            match v {
                Some(v) => {
                    if let Some(e) = tree.effective(n) {
                        let file = current(&texts, &olds, &e.file);
                        let old_v = e.setting.clone();
                        if old_v.as_deref() == Some(v.as_str()) {
                            report.push(Change {
                                name: n.clone(),
                                action: "unchanged",
                                old: old_v.map(|x| ctx.v(&x)),
                                new: Some(ctx.v(v)),
                                file: e.file.clone(),
                                line: e.line,
                            });
                            continue;
                        }
                        let line = edit::set_in_line(&file, e.line, v)
                            .expect("the effective entry is a setting line");
                        texts.insert(e.file.clone(), edit::replace_line(&file, e.line, &line));
                        report.push(Change {
                            name: n.clone(),
                            action: "edited",
                            old: old_v.map(|x| ctx.v(&x)),
                            new: Some(ctx.v(v)),
                            file: e.file.clone(),
                            line: e.line,
                        });
                    } else {
                        let file = current(&texts, &olds, &conf);
                        if let Some((num, line)) = edit::uncomment_candidate(&file, n, v) {
                            texts.insert(conf.clone(), edit::replace_line(&file, num, &line));
                            report.push(Change {
                                name: n.clone(),
                                action: "uncommented",
                                old: None,
                                new: Some(ctx.v(v)),
                                file: conf.clone(),
                                line: num,
                            });
                        } else {
                            let t = edit::append(&file.text, n, v);
                            let num = parse::parse(&t).lines.len() as u32;
                            texts.insert(conf.clone(), t);
                            report.push(Change {
                                name: n.clone(),
                                action: "appended",
                                old: None,
                                new: Some(ctx.v(v)),
                                file: conf.clone(),
                                line: num,
                            });
                        }
                    }
                }
                None => {
                    let mut any = false;
                    for f in tree.files.keys() {
                        let file = current(&texts, &olds, f);
                        let (t, lines) = edit::comment_out(&file, n);
                        for (num, old) in &lines {
                            any = true;
                            report.push(Change {
                                name: n.clone(),
                                action: "commented_out",
                                old: Some(ctx.v(old)),
                                new: None,
                                file: f.clone(),
                                line: *num,
                            });
                        }
                        if !lines.is_empty() {
                            texts.insert(f.clone(), t);
                        }
                    }
                    if !any {
                        report.push(Change {
                            name: n.clone(),
                            action: "unchanged",
                            old: None,
                            new: None,
                            file: conf.clone(),
                            line: 0,
                        });
                    }
                }
            }
        }
        // A later postgresql.auto.conf entry wins over anything written here.
        if let Some(auto_path) = &p.auto {
            if let Ok(t) = load::read(auto_path) {
                let af = parse::parse(&t);
                for (n, v) in &changes {
                    if v.is_none() {
                        continue;
                    }
                    if let Some(l) = af.effective_lines().filter(|l| matches!(&l.kind, parse::Kind::Setting{name, ..} if name.eq_ignore_ascii_case(n))).last() {
                        if let parse::Kind::Setting { value, .. } = &l.kind {
                            shadowed.push(json!({"name": n, "file": auto_path, "line": l.number, "value": ctx.v(value)}));
                        }
                    }
                }
            }
        }
    }
    texts.retain(|f, t| olds.get(f) != Some(t) || !Path::new(f).exists());
    let changed = !texts.is_empty();
    let mut doc = json!({
        "changed": changed,
        "dry_run": a.dry_run,
        "changes": report,
        "files": texts.keys().collect::<Vec<_>>(),
        "shadowed": shadowed,
    });
    if a.dry_run {
        let mut diff = String::new();
        for (f, t) in &texts {
            diff.push_str(&pgdr_core::diff::unified(
                olds.get(f).map(String::as_str).unwrap_or(""),
                t,
                f,
            ));
        }
        doc["diff"] = Value::String(ctx.v(&diff));
        return Outcome::json(doc);
    }
    let mut backups = Vec::new();
    for (f, t) in &texts {
        if p.conf.is_none() {
            let w = auto::write_text(
                Path::new(f),
                olds.get(f).cloned().unwrap_or_default(),
                t.clone(),
                a.backup,
            )?;
            backups.extend(w.backup);
        } else {
            let r = fsx::write_atomic(
                Path::new(f),
                t.as_bytes(),
                &WriteOptions {
                    backup: a.backup,
                    new_mode: Some(0o600),
                },
            )?;
            backups.extend(r.backup);
        }
    }
    doc["backups"] = json!(backups);
    if a.reload {
        let names: Vec<String> = changes.iter().map(|(n, _)| n.clone()).collect();
        doc["reload"] = reload(a.dbname.as_deref(), &names, ctx)?;
    }
    Outcome::json(doc)
}

/// Loads `conf` (no auto.conf), reading pending texts instead of the disk.
fn load_overlay(conf: &str, texts: &BTreeMap<String, String>) -> Result<Loaded> {
    if texts.is_empty() {
        return load::load(conf, None, None);
    }
    // Write the overlay into a private temporary copy? Simpler: parse from memory.
    load::load_with(conf, None, None, texts)
}

/// `pg_reload_conf()`, then what the server made of the files.
fn reload(dsn: Option<&str>, names: &[String], ctx: &Ctx) -> Result<Value> {
    let mut c = pgdr_core::conn::connect(dsn)?;
    let q = |c: &mut postgres::Client, sql: &str| -> Result<Vec<postgres::Row>> {
        c.query(sql, &[])
            .map_err(|e| Error::failed("query failed").because(pgdr_core::conn::error_text(&e)))
    };
    let before: String = q(&mut c, "SELECT pg_conf_load_time()::text")?[0].get(0);
    q(&mut c, "SELECT pg_reload_conf()")?;
    // The postmaster reloads asynchronously; our backend re-reads at its next command.
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now: String = q(&mut c, "SELECT pg_conf_load_time()::text")?[0].get(0);
        if now != before {
            break;
        }
    }
    let mut applied = Vec::new();
    let mut pending = Vec::new();
    for n in names {
        let rows = c
            .query("SELECT name, setting, pending_restart, source FROM pg_settings WHERE lower(name) = lower($1)", &[n])
            .map_err(|e| Error::failed("query failed").because(pgdr_core::conn::error_text(&e)))?;
        if let Some(r) = rows.first() {
            let name: String = r.get(0);
            let setting: String = r.get(1);
            let pr: bool = r.get(2);
            applied.push(
                json!({"name": name, "setting": ctx.v(&setting), "source": r.get::<_, String>(3)}),
            );
            if pr {
                pending.push(name);
            }
        }
    }
    let mut errors = Vec::new();
    for r in q(&mut c, "SELECT sourcefile, sourceline, name, error FROM pg_file_settings WHERE error IS NOT NULL ORDER BY seqno")? {
        errors.push(json!({"file": r.get::<_, Option<String>>(0), "line": r.get::<_, Option<i32>>(1), "name": r.get::<_, Option<String>>(2), "error": r.get::<_, Option<String>>(3)}));
    }
    for r in q(
        &mut c,
        "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name",
    )? {
        let n: String = r.get(0);
        if !pending.contains(&n) {
            pending.push(n);
        }
    }
    Ok(json!({"reloaded": true, "applied": applied, "pending_restart": pending, "errors": errors}))
}

/// The server binaries for this data directory's major version.
fn server_bindir(pgdata: Option<&Path>) -> Result<PathBuf> {
    let major = pgdata
        .and_then(|d| std::fs::read_to_string(d.join("PG_VERSION")).ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    pgdr_core::pgbin::bindir(major)
}

fn offline_catalog(p: &Paths) -> Result<Catalog> {
    let bindir = server_bindir(p.pgdata.as_deref())?;
    // --describe-config reads no files and is allowed as root.
    let out = std::process::Command::new(bindir.join("postgres"))
        .arg("--describe-config")
        .output()
        .map_err(|e| Error::failed("cannot run postgres --describe-config").because(e))?;
    if !out.status.success() {
        return Err(Error::failed("postgres --describe-config failed")
            .because(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(Catalog::from_describe_config(&String::from_utf8_lossy(
        &out.stdout,
    )))
}

fn online_catalog(dsn: Option<&str>) -> Result<Catalog> {
    let mut c = pgdr_core::conn::connect(dsn)?;
    let rows = c
        .query(
            "SELECT name, context, vartype, unit, min_val, max_val, coalesce(enumvals, '{}')::text[], setting FROM pg_settings",
            &[],
        )
        .map_err(|e| Error::failed("cannot read pg_settings").because(pgdr_core::conn::error_text(&e)))?;
    let mut params = std::collections::HashMap::new();
    for r in rows {
        let name: String = r.get(0);
        let num = |i: usize| {
            r.get::<_, Option<String>>(i)
                .and_then(|s| s.parse::<f64>().ok())
        };
        params.insert(
            name.to_ascii_lowercase(),
            Param {
                name: name.clone(),
                context: r.get(1),
                vartype: r.get(2),
                unit: r.get(3),
                min: num(4),
                max: num(5),
                enumvals: r.get(6),
                setting: r.get(7),
            },
        );
    }
    Ok(Catalog {
        params,
        source: "pg_settings".into(),
    })
}

fn check(a: &Args, p: &Paths, ctx: &Ctx) -> Result<Outcome> {
    let cat = match &a.dbname {
        Some(d) => online_catalog(Some(d))?,
        None => offline_catalog(p)?,
    };
    let l = load_tree(p, Some(&cat))?;
    let mut problems = Vec::new();
    for e in l.errors() {
        let problem = match (&e.error, &e.name) {
            (Some(err), Some(n)) => format!("{err} \"{n}\""),
            (Some(err), None) => err.clone(),
            _ => continue,
        };
        problems.push(json!({"name": e.name, "value": e.setting.as_deref().map(|v| ctx.v(v)), "file": e.file, "line": e.line, "problem": problem}));
    }
    let mut needs_restart = Vec::new();
    for e in l
        .entries
        .iter()
        .filter(|e| e.error.is_none() && !e.ignore && e.name.is_some())
    {
        let (n, v) = (
            e.name.as_deref().unwrap_or(""),
            e.setting.as_deref().unwrap_or(""),
        );
        let Some(param) = cat.get(n) else { continue };
        if param.context == "internal" {
            problems.push(json!({"name": n, "value": ctx.v(v), "file": e.file, "line": e.line, "problem": format!("parameter \"{n}\" cannot be changed")}));
            continue;
        }
        if let Some(msg) = catalog::check_value(param, v) {
            problems.push(json!({"name": n, "value": ctx.v(v), "file": e.file, "line": e.line, "problem": msg}));
            continue;
        }
        if param.context == "postmaster" {
            let differs = match &param.setting {
                Some(cur) => !same_value(param, v, cur),
                None => true,
            };
            if differs && !needs_restart.contains(&param.name) {
                needs_restart.push(param.name.clone());
            }
        }
    }
    let server_check = if a.dbname.is_none() {
        postgres_c(p)
    } else {
        Value::Null
    };
    if let Some(errs) = server_check.get("errors").and_then(Value::as_array) {
        for e in errs {
            problems.push(
                json!({"name": null, "value": null, "file": null, "line": null, "problem": e}),
            );
        }
    }
    let ok = problems.is_empty();
    let code = if ok { 0 } else { 1 };
    Ok(Outcome::json(json!({
        "ok": ok,
        "catalog": cat.source,
        "problems": problems,
        "needs_restart": needs_restart,
        "server_check": server_check,
    }))?
    .with_code(code))
}

/// Whether a file value equals the server's current setting (pg_settings.setting is in the
/// base unit).
fn same_value(p: &Param, file_value: &str, current: &str) -> bool {
    match p.vartype.as_str() {
        "bool" => catalog::parse_bool(file_value) == catalog::parse_bool(current),
        "enum" => file_value.eq_ignore_ascii_case(current),
        "integer" | "real" => {
            let probe = Param {
                min: Some(f64::MIN),
                max: Some(f64::MAX),
                ..p.clone()
            };
            // Normalise through the same conversion the check uses.
            match (to_base(&probe, file_value), current.parse::<f64>().ok()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9 * b.abs().max(1.0),
                _ => file_value == current,
            }
        }
        _ => file_value == current,
    }
}

fn to_base(p: &Param, v: &str) -> Option<f64> {
    catalog::to_base_units(p, v)
}

/// Runs `postgres -C` against the data directory as its owner: the server's own parser and
/// value checks read the files. Never as root.
fn postgres_c(p: &Paths) -> Value {
    let Some(pgdata) = &p.pgdata else {
        return json!({"ran": false, "reason": "no data directory (-D or PGDATA)"});
    };
    let owner = match pgdr_core::owner::data_dir_owner(pgdata) {
        Ok(o) => o,
        Err(e) => return json!({"ran": false, "reason": e.to_string()}),
    };
    if owner.uid == 0 {
        return json!({"ran": false, "reason": "the data directory is owned by root"});
    }
    let bindir = match server_bindir(Some(pgdata)) {
        Ok(b) => b,
        Err(e) => return json!({"ran": false, "reason": e.to_string()}),
    };
    let mut cmd = pgdr_core::owner::command_as(&owner, bindir.join("postgres"));
    cmd.arg("-D").arg(pgdata);
    if let Some(c) = &p.conf {
        cmd.arg("-c").arg(format!("config_file={c}"));
    }
    cmd.args(["-C", "config_file"]);
    if pgdr_core::owner::is_root() && owner.uid == 0 {
        return json!({"ran": false, "reason": "refusing to run postgres as root"});
    }
    match cmd.output() {
        Ok(o) if o.status.success() => json!({"ran": true, "errors": []}),
        Ok(o) => {
            let errs: Vec<String> = String::from_utf8_lossy(&o.stderr)
                .lines()
                // "2026-01-01 00:00:00.000 UTC [123] LOG:  text" → "LOG: text"
                .map(|l| {
                    let l = l.split_once("] ").map(|(_, r)| r).unwrap_or(l);
                    l.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .filter(|l| !l.is_empty())
                .collect();
            json!({"ran": true, "errors": errs})
        }
        Err(e) => json!({"ran": false, "reason": e.to_string()}),
    }
}
