//! `check`: unknown names, invalid values, out-of-range numbers, bad units and enums,
//! settings that need a restart.
//!
//! With a connection the server's `pg_settings` is the catalog. Without one, the server
//! binary that will read the file checks every effective setting itself (crate::binary), as
//! the data directory's owner and never as root; what it cannot check is listed as
//! unchecked, and `ok` is then false.

use crate::binary::{self, Binary};
use crate::catalog::{self, Catalog, Param};
use crate::doc::{CheckReport, Problem, ServerCheck, Unchecked};
use crate::files::Files;
use crate::load::{Entry, Loaded};
use crate::secrets::Masker;
use crate::server::Server;
use pgdr_core::Result;
use std::path::Path;

/// Checks the tree of `files`: against the server at `dbname` when given, else against the
/// server binary of `pg_version` (else the version beside the files, else the newest
/// installed).
///
/// # Errors
/// Exit 1: a connection or query that fails, unreadable files. Exit 2: invalid UTF-8.
pub fn check(
    files: &Files,
    dbname: Option<&str>,
    pg_version: Option<u32>,
    masker: Masker,
) -> Result<CheckReport> {
    match dbname {
        Some(d) => online(files, &Server::connect(Some(d))?.catalog()?, masker),
        None => offline(files, pg_version, masker),
    }
}

/// Problems the parser finds: syntax errors, files that cannot be read, unknown names (when
/// a catalog says which exist).
fn parse_problems(l: &Loaded, masker: Masker) -> Vec<Problem> {
    l.errors()
        .filter_map(|e| {
            let problem = match (&e.error, &e.name) {
                (Some(err), Some(n)) => format!("{err} \"{n}\""),
                (Some(err), None) => err.clone(),
                _ => return None,
            };
            Some(Problem {
                name: e.name.clone(),
                value: e.setting.as_deref().map(|v| masker.text(v)),
                file: Some(e.file.clone()),
                line: Some(e.line),
                problem,
            })
        })
        .collect()
}

/// The entries the server would apply: the last of each name, without errors.
fn effective(l: &Loaded) -> impl Iterator<Item = &Entry> {
    l.entries
        .iter()
        .filter(|e| e.error.is_none() && !e.ignore && e.name.is_some())
}

fn problem(e: &Entry, masker: Masker, text: String) -> Problem {
    Problem {
        name: e.name.clone(),
        value: e.setting.as_deref().map(|v| masker.text(v)),
        file: Some(e.file.clone()),
        line: Some(e.line),
        problem: text,
    }
}

fn online(files: &Files, cat: &Catalog, masker: Masker) -> Result<CheckReport> {
    let l = files.load(Some(cat))?;
    let mut problems = parse_problems(&l, masker);
    let mut needs_restart = Vec::new();
    for e in effective(&l) {
        let (n, v) = (
            e.name.as_deref().unwrap_or(""),
            e.setting.as_deref().unwrap_or(""),
        );
        let Some(param) = cat.get(n) else { continue };
        if param.context == "internal" {
            problems.push(problem(
                e,
                masker,
                format!("parameter \"{n}\" cannot be changed"),
            ));
            continue;
        }
        if let Some(msg) = catalog::check_value(param, v) {
            problems.push(problem(e, masker, msg));
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
    Ok(CheckReport {
        ok: problems.is_empty(),
        catalog: cat.source.clone(),
        pg_version: None,
        problems,
        unchecked: vec![],
        needs_restart,
        server_check: None,
    })
}

fn offline(files: &Files, pg_version: Option<u32>, masker: Masker) -> Result<CheckReport> {
    // Names and values both go to the binary: its own list of names is the authority.
    let l = files.load(None)?;
    let mut problems = parse_problems(&l, masker);
    let entries: Vec<&Entry> = effective(&l).collect();
    let settings: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.name.clone().unwrap_or_default(),
                e.setting.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut unchecked = Vec::new();
    let binary = Binary::find(pg_version, &files.version_dirs());
    let user = binary::run_as(files.pgdata.as_deref(), Some(Path::new(&files.target)));
    let (server_check, catalog, version) = match (&binary, &user) {
        (Ok(b), Ok(u)) => match b.check(&settings, u) {
            Ok(verdict) => {
                for (name, msg) in &verdict.problems {
                    match entries.iter().find(|e| {
                        e.name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    }) {
                        Some(e) => problems.push(problem(e, masker, msg.clone())),
                        None => problems.push(Problem {
                            name: Some(name.clone()),
                            value: None,
                            file: None,
                            line: None,
                            problem: msg.clone(),
                        }),
                    }
                }
                for msg in &verdict.other {
                    problems.push(Problem {
                        name: None,
                        value: None,
                        file: None,
                        line: None,
                        problem: msg.clone(),
                    });
                }
                let check = ServerCheck {
                    ran: true,
                    binary: Some(b.postgres().display().to_string()),
                    run_as: Some(u.name.clone()),
                    reason: None,
                    errors: verdict.messages,
                };
                (check, "postgres -C (the server binary)", Some(b.major))
            }
            Err(e) => (not_run(Some(b), e.to_string()), "none", Some(b.major)),
        },
        (Err(e), _) => (not_run(None, e.to_string()), "none", pg_version),
        (Ok(b), Err(why)) => (not_run(Some(b), why.clone()), "none", Some(b.major)),
    };
    if let Ok(b) = &binary {
        problems.extend(conninfo_problems(&entries, b, masker));
    }
    if !server_check.ran {
        let why = server_check.reason.clone().unwrap_or_default();
        for e in &entries {
            unchecked.push(Unchecked {
                name: e.name.clone().unwrap_or_default(),
                file: Some(e.file.clone()),
                line: Some(e.line),
                reason: why.clone(),
            });
        }
    }
    Ok(CheckReport {
        ok: problems.is_empty() && unchecked.is_empty(),
        catalog: catalog.to_string(),
        pg_version: version,
        problems,
        unchecked,
        needs_restart: vec![],
        server_check: Some(server_check),
    })
}

/// libpq connection keywords and the release that added them (fe-connect.c,
/// PQconninfoOptions), from 12 on.
const KEYWORD_SINCE: &[(&str, u32)] = &[
    ("gssencmode", 12),
    ("tcp_user_timeout", 12),
    ("channel_binding", 13),
    ("sslpassword", 13),
    ("ssl_min_protocol_version", 13),
    ("ssl_max_protocol_version", 13),
    ("sslcrldir", 14),
    ("sslsni", 14),
    ("require_auth", 16),
    ("sslcertmode", 16),
    ("load_balance_hosts", 16),
    ("gssdelegation", 16),
    ("sslnegotiation", 17),
    ("min_protocol_version", 18),
    ("max_protocol_version", 18),
    ("sslkeylogfile", 18),
    ("oauth_issuer", 18),
    ("oauth_client_id", 18),
    ("oauth_client_secret", 18),
    ("oauth_scope", 18),
];

/// primary_conninfo keywords the libpq the server's WAL receiver loads does not know: the
/// receiver fails with "invalid connection option" and the standby never streams
/// (pg_basebackup -R of a newer release writes sslnegotiation, for one).
fn conninfo_problems(entries: &[&Entry], b: &Binary, masker: Masker) -> Vec<Problem> {
    let Some((libpq, path)) = b.walreceiver_libpq() else {
        return Vec::new();
    };
    let Some(e) = entries.iter().rev().find(|e| {
        e.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("primary_conninfo"))
    }) else {
        return Vec::new();
    };
    let Ok(keys) = pgdr_core::conn::ConnParams::keywords_of(e.setting.as_deref().unwrap_or(""))
    else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|k| {
            let since = KEYWORD_SINCE.iter().find(|(n, _)| n == k)?.1;
            (since > libpq).then(|| {
                problem(
                    e,
                    masker,
                    format!(
                        "primary_conninfo option \"{k}\" came with libpq {since}; the WAL receiver of this server loads libpq {libpq} ({}), which refuses it (invalid connection option): remove it",
                        path.display()
                    ),
                )
            })
        })
        .collect()
}

fn not_run(b: Option<&Binary>, reason: String) -> ServerCheck {
    ServerCheck {
        ran: false,
        binary: b.map(|b| b.postgres().display().to_string()),
        run_as: None,
        reason: Some(reason),
        errors: vec![],
    }
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
            match (
                catalog::to_base_units(&probe, file_value),
                current.parse::<f64>().ok(),
            ) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9 * b.abs().max(1.0),
                _ => file_value == current,
            }
        }
        _ => file_value == current,
    }
}
