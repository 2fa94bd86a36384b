//! `snap-clone --drill`: a restore drill for cron. The newest snapshot of a data directory
//! (or image of a repository, restored into a temporary directory) is cloned as any clone
//! ([`crate::create`]), recovered to the end of the archive (or to a time) and promoted, so
//! the amcheck extension can be created in it; its data is checked with amcheck
//! (`pg_amcheck --all --heapallindexed` of the clone's major when it is installed beside the
//! server binaries, else the server's functions: `bt_index_check(index, true)` for every
//! B-tree index and, from 14, `verify_heapam` for every table, in every database); then the
//! clone is destroyed, also when a step failed or SIGINT/SIGTERM arrived. The report says
//! whether every step passed ([`DrillReport`]); [`prometheus`] renders it for node_exporter's
//! textfile collector.

use crate::create::{CreateRequest, Source};
use crate::doc::{CloneReport, Corruption, DrillReport};
use crate::prepare::Action;
use crate::replay::Policy;
use crate::server::Server;
use crate::target::Target;
use chrono::{DateTime, Utc};
use pgdr_core::owner::{command_as, User};
use pgdr_core::{Context, Error, ErrorKind, Outcome, Result};
use pgdr_snap::registry::Registry;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What --drill prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The report; exit 1 unless the drill passed.
    Json,
    /// The metrics; exit 0 whenever they were written.
    Prometheus,
}

/// The drill's output in `format` (default json) with its exit code.
///
/// # Errors
/// The report cannot be serialised.
pub fn render(report: &DrillReport, format: Option<Format>) -> Result<Outcome> {
    Ok(match format.unwrap_or(Format::Json) {
        Format::Prometheus => Outcome::text(prometheus(report)),
        Format::Json => Outcome::document(report)?.with_code(u8::from(!report.success)),
    })
}

/// A drill clone's default name: `drill-YYYYmmddTHHMMSSZ-PID` (unique on the host).
pub fn clone_name() -> String {
    format!(
        "drill-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    )
}

/// Runs the drill `req` describes (which snapshot or image, where, the WAL source); the
/// drill itself starts the clone, promotes it at the target (by default the end of the
/// archive: [`Target::Latest`]), and for an image without `target_dir` restores it into
/// `$TMPDIR/pgdr-drill-NAME`.
///
/// # Errors
/// Only usage errors (exit 2): every other failure is the report's (`success` false).
pub fn run(mut req: CreateRequest) -> Result<DrillReport> {
    let started = Instant::now();
    req.start = true;
    // Promoted: the clone must be writable for CREATE EXTENSION amcheck.
    req.action = Action::Promote;
    // Destroyed once checked: a restart to hand the snapshot's settings back would only cost a
    // checkpoint.
    if req.replay != Policy::Off {
        req.replay = Policy::Kept;
    }
    if req.target.is_none() && !matches!(req.source, Source::Before(_)) {
        req.target = Some(Target::Latest);
    }
    let (source, mut location) = match &req.image_repo {
        Some(r) => ("repo", r.display().to_string()),
        None => (
            "pgdata",
            req.pgdata
                .as_ref()
                .or(req.snapshot_dir.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
    };
    if req.image_repo.is_some() && req.target_dir.is_none() {
        req.target_dir = Some(std::env::temp_dir().join(format!("pgdr-drill-{}", req.name)));
    }
    pgdr_core::signals::set_cooperative(true);
    let mut report = DrillReport {
        success: false,
        source: source.into(),
        location: String::new(),
        snapshot: None,
        clone: req.name.clone(),
        recovery: None,
        amcheck: "not_run".into(),
        amcheck_program: None,
        corruption: vec![],
        error: None,
        cleaned_up: false,
        finished: Utc::now(),
        seconds: 0.0,
    };
    let registry = &req.registry;
    let mut root = req.target_dir.clone();
    match crate::create::run(&req) {
        Err(e) if e.kind == ErrorKind::Usage => return Err(e),
        Err(e) => report.error = Some(e.to_string()),
        Ok(doc) => {
            report.snapshot = Some(doc.snapshot.clone());
            report.recovery = Some(doc.recovery.clone());
            let rec = registry.read(&req.name).ok().flatten();
            if let Some(rec) = &rec {
                root = Some(rec.root.clone());
                if req.image_repo.is_none() {
                    location = rec.source_pgdata.display().to_string();
                }
            }
            match check(registry, &doc) {
                Ok(c) => {
                    report.amcheck = c.how.into();
                    report.amcheck_program = c.program;
                    report.corruption = c.found;
                }
                Err(e) => report.error = Some(e.to_string()),
            }
            if let Err(e) = crate::destroy::run(registry, &req.name, None) {
                let line = format!("the clone could not be destroyed: {e}");
                report.error = Some(match report.error.take() {
                    Some(first) => format!("{first}; {line}"),
                    None => line,
                });
            }
        }
    }
    report.location = location;
    report.cleaned_up = matches!(registry.read(&req.name), Ok(None))
        && root.is_none_or(|r| !r.exists() && !r.is_symlink());
    report.success = report.error.is_none() && report.corruption.is_empty() && report.cleaned_up;
    report.finished = Utc::now();
    report.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(report)
}

/// What the check found.
struct Checked {
    how: &'static str,
    program: Option<PathBuf>,
    found: Vec<Corruption>,
}

fn interrupted() -> Result<()> {
    if pgdr_core::signals::interrupted() {
        return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
    }
    Ok(())
}

/// Checks the running clone `doc` with amcheck.
fn check(registry: &Registry, doc: &CloneReport) -> Result<Checked> {
    interrupted()?;
    let rec = registry
        .read(&doc.clone)?
        .ok_or_else(|| Error::failed(format!("the clone {} has no record", doc.clone)))?;
    let srv = rec
        .server
        .as_ref()
        .ok_or_else(|| Error::failed(format!("the clone {} has no server", doc.clone)))?;
    let bindir = pgdr_core::pgbin::bindir(Some(srv.pg_version))?;
    let owner = pgdr_core::owner::data_dir_owner(&rec.path)?;
    let server = Server::new(
        &rec.path,
        &bindir,
        &owner,
        &srv.socket_dir,
        srv.port,
        &srv.log,
        srv.pg_version,
    );
    let mut main = server
        .client("postgres")
        .or_else(|_| server.client("template1"))?;
    let available = main
        .query_opt(
            "SELECT FROM pg_available_extensions WHERE name = 'amcheck'",
            &[],
        )
        .map_err(|e| sql_error("cannot list the clone's extensions", &e))?
        .is_some();
    if !available {
        return Ok(Checked {
            how: "unavailable",
            program: None,
            found: vec![],
        });
    }
    let program = bindir.join("pg_amcheck");
    if program.is_file() {
        let found = pg_amcheck(&program, &owner, &srv.socket_dir, srv.port)?;
        return Ok(Checked {
            how: "pg_amcheck",
            program: Some(program),
            found,
        });
    }
    let databases: Vec<String> = main
        .query(
            "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname",
            &[],
        )
        .map_err(|e| sql_error("cannot list the clone's databases", &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    drop(main);
    let mut found = Vec::new();
    for db in databases {
        interrupted()?;
        let mut c = server.client(&db)?;
        found.extend(with_functions(&mut c, &db, srv.pg_version)?);
    }
    Ok(Checked {
        how: "functions",
        program: None,
        found,
    })
}

fn sql_error(what: &str, e: &postgres::Error) -> Error {
    Error::failed(what).because(pgdr_core::conn::error_text(e))
}

/// Runs pg_amcheck on every database of the clone as its owner; kills it on SIGINT/SIGTERM.
fn pg_amcheck(
    program: &Path,
    owner: &User,
    socket_dir: &Path,
    port: u16,
) -> Result<Vec<Corruption>> {
    let mut child = command_as(owner, program)
        .arg("-h")
        .arg(socket_dir)
        .args(["-p", &port.to_string(), "-U", &owner.name])
        .args([
            "--all",
            "--install-missing",
            "--heapallindexed",
            "--no-password",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| format!("cannot run {}", program.display()))?;
    // Read both pipes while waiting, so a long report cannot block it.
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = p {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .context(|| "cannot wait for pg_amcheck".into())?
        {
            break st;
        }
        if pgdr_core::signals::interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            return interrupted().map(|()| vec![]);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let found = parse_pg_amcheck(&out);
    if !status.success() && found.is_empty() {
        let why = err
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        return Err(Error::failed("pg_amcheck failed").because(format!("{status}: {why}")));
    }
    Ok(found)
}

/// pg_amcheck's report (pg_amcheck.c): a line naming the relation, ending in ':', then the
/// indented message lines.
pub fn parse_pg_amcheck(out: &str) -> Vec<Corruption> {
    let mut v: Vec<Corruption> = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        if !line.starts_with(char::is_whitespace) {
            v.push(Corruption {
                relation: line.trim().trim_end_matches(':').to_string(),
                message: String::new(),
            });
        } else if let Some(c) = v.last_mut() {
            if !c.message.is_empty() {
                c.message.push(' ');
            }
            c.message.push_str(line.trim());
        }
    }
    v
}

/// The server's amcheck functions on every B-tree index and (14+) every table of one
/// database, after CREATE EXTENSION amcheck (the clone is a throwaway). An error a check
/// raises is corruption of that relation; a lost connection fails the check.
fn with_functions(c: &mut postgres::Client, db: &str, pg_version: u32) -> Result<Vec<Corruption>> {
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        .map_err(|e| sql_error(&format!("cannot create amcheck in database {db:?}"), &e))?;
    let list = |c: &mut postgres::Client, sql: &str| -> Result<Vec<(u32, String, String)>> {
        Ok(c.query(sql, &[])
            .map_err(|e| sql_error(&format!("cannot list relations of {db:?}"), &e))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    };
    let indexes = list(
        c,
        "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_am a ON a.oid = c.relam \
         WHERE a.amname = 'btree' AND c.relpersistence <> 't' AND i.indisvalid AND i.indisready \
         ORDER BY c.oid",
    )?;
    let mut found = Vec::new();
    let raised = |e: postgres::Error, relation: String| -> Result<Corruption> {
        match e.as_db_error() {
            Some(_) => Ok(Corruption {
                relation,
                message: pgdr_core::conn::error_text(&e),
            }),
            None => Err(sql_error("the amcheck connection failed", &e)),
        }
    };
    for (oid, nsp, name) in indexes {
        interrupted()?;
        let relation = format!("btree index \"{db}.{nsp}.{name}\"");
        if let Err(e) = c.execute("SELECT bt_index_check($1::oid::regclass, true)", &[&oid]) {
            found.push(raised(e, relation)?);
        }
    }
    if pg_version < 14 {
        return Ok(found);
    }
    let tables = list(
        c,
        "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't' ORDER BY c.oid",
    )?;
    for (oid, nsp, name) in tables {
        interrupted()?;
        let relation = format!("heap table \"{db}.{nsp}.{name}\"");
        match c.query(
            "SELECT blkno, offnum, attnum, msg FROM verify_heapam($1::oid::regclass, check_toast => true)",
            &[&oid],
        ) {
            Ok(rows) => found.extend(rows.iter().map(|r| {
                let (blk, off, att): (Option<i64>, Option<i32>, Option<i32>) =
                    (r.get(0), r.get(1), r.get(2));
                let mut at = relation.clone();
                if let Some(b) = blk {
                    at.push_str(&format!(", block {b}"));
                }
                if let Some(o) = off {
                    at.push_str(&format!(", offset {o}"));
                }
                if let Some(a) = att {
                    at.push_str(&format!(", attribute {a}"));
                }
                Corruption {
                    relation: at,
                    message: r.get::<_, Option<String>>(3).unwrap_or_default(),
                }
            })),
            Err(e) => found.push(raised(e, relation)?),
        }
    }
    Ok(found)
}

/// Unix seconds.
fn epoch(t: &DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The drill as the Prometheus text exposition format (version 0.0.4) for node_exporter's
/// textfile collector, labelled by source (pgdata or repo) and location.
pub fn prometheus(r: &DrillReport) -> String {
    let labels = format!(
        "source=\"{}\",location=\"{}\"",
        escape_label(&r.source),
        escape_label(&r.location)
    );
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{labels}}} {value}\n"
        ));
    };
    gauge(
        "pgdr_last_restore_drill_timestamp_seconds",
        "When the last restore drill ended, in Unix seconds.",
        epoch(&r.finished).to_string(),
    );
    gauge(
        "pgdr_last_restore_drill_success",
        "1 when the last restore drill recovered its clone, amcheck found no corruption and the clone was destroyed; else 0.",
        u8::from(r.success).to_string(),
    );
    gauge(
        "pgdr_last_restore_drill_seconds",
        "How long the last restore drill took.",
        r.seconds.to_string(),
    );
    if let Some(t) = r.recovery.as_ref().and_then(|rc| rc.reached_time) {
        gauge(
            "pgdr_last_restore_drill_reached_timestamp_seconds",
            "The commit time of the last transaction the last restore drill's clone replayed (pg_last_xact_replay_timestamp), in Unix seconds.",
            epoch(&t).to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_amcheck_reports_are_read_per_relation() {
        let out = "btree index \"postgres.public.t_n_idx\":\n    ERROR:  item order invariant violated for index \"t_n_idx\"\n    DETAIL:  Lower index tid=(1,2) (points to heap tid=(0,2)) higher index tid=(1,3).\nheap table \"app.public.t\", block 0, offset 3:\n    xmin 12345 precedes relation freeze threshold 0:700\n\n";
        let v = parse_pg_amcheck(out);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].relation, "btree index \"postgres.public.t_n_idx\"");
        assert!(v[0]
            .message
            .starts_with("ERROR:  item order invariant violated"));
        assert!(v[0].message.ends_with("higher index tid=(1,3)."));
        assert_eq!(
            v[1].relation,
            "heap table \"app.public.t\", block 0, offset 3"
        );
        assert_eq!(
            v[1].message,
            "xmin 12345 precedes relation freeze threshold 0:700"
        );
        assert!(parse_pg_amcheck("").is_empty());
    }

    #[test]
    fn prometheus_has_the_three_families_with_escaped_labels() {
        let r = DrillReport {
            success: false,
            source: "pgdata".into(),
            location: "/srv/\"pg\"".into(),
            snapshot: None,
            clone: "drill-x".into(),
            recovery: None,
            amcheck: "not_run".into(),
            amcheck_program: None,
            corruption: vec![],
            error: Some("no snapshot".into()),
            cleaned_up: true,
            finished: DateTime::from_timestamp(1_764_500_000, 500_000_000).unwrap(),
            seconds: 1.25,
        };
        let text = prometheus(&r);
        let labels = "{source=\"pgdata\",location=\"/srv/\\\"pg\\\"\"}";
        assert!(
            text.contains(&format!(
                "pgdr_last_restore_drill_timestamp_seconds{labels} 1764500000.5\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!("pgdr_last_restore_drill_success{labels} 0\n")));
        assert!(text.contains(&format!("pgdr_last_restore_drill_seconds{labels} 1.25\n")));
        assert!(!text.contains("reached"));
        assert_eq!(text.matches("# TYPE").count(), 3);
    }
}
