//! `snap-clone --into CONNINFO [--table T]…`: tables of a snapshot restored into an existing
//! database, as one transaction. From a logical snapshot, pg_restore reads it directly; from
//! a physical one (a local snapshot, or an image in a repository restored into a new
//! directory), a temporary clone recovers to the target, pg_dump dumps the tables from it,
//! and the clone is destroyed afterwards (also on failure; an image's directory with it).
//!
//! - [`select`]: which entries of pg_dump's table of contents belong to the tables; [`plan`]:
//!   the names they get (`--on-conflict rename|fail|replace`); both pure.
//! - [`sql`]: the lexer, statement splitter and renamer for pg_restore's script; pure.
//! - [`catalog`]: what the target has and what the role may do (the precheck).
//! - [`source`]: the archive: toc.dat for pg_restore, the data files streamed (a stored
//!   snapshot's decompressed and verified on the way).
//! - [`exec`]: pg_restore's script and the data run in one transaction.
//! - [`cli`]: the arguments of snap-clone that lead here.

pub mod catalog;
pub mod cli;
pub mod doc;
pub mod exec;
pub mod plan;
pub mod select;
pub mod source;
pub mod sql;

use crate::create::CreateRequest;
use crate::target::Target as RecoveryTarget;
use chrono::{DateTime, Utc};
use doc::{KeptForeignKey, RestoreReport, RestoredTable, TempClone};
use pgdr_core::{Context, Error, Result};
use pgdr_snap::logical::place::Place;
use pgdr_snap::logical::toc;
use pgdr_snap::logical::tools::{self, Program};
use plan::OnConflict;
use select::{display, Name};
use source::Source;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

/// What to restore, from where, into what.
#[derive(Debug)]
pub struct TablesRequest {
    /// --into: the target database.
    pub into: String,
    /// --table (empty: every table of the snapshot).
    pub tables: Vec<String>,
    pub on_conflict: OnConflict,
    /// --jobs: pg_dump's jobs on a clone, files fetched at once, index builds' parallel
    /// maintenance workers + 1.
    pub jobs: u32,
    pub dry_run: bool,
    /// --pg-bin: where pg_dump and pg_restore are.
    pub pg_bin: Option<PathBuf>,
    pub from: From,
}

/// The snapshot.
#[derive(Debug)]
pub enum From {
    /// A logical snapshot in a snapshot directory or a repository.
    Logical { place: Place, name: String },
    /// A physical snapshot: a temporary clone made with this request (started, paused at
    /// its target), dumped from `database` (default: the target's database name).
    Physical {
        create: Box<CreateRequest>,
        keep_clone: bool,
        database: Option<String>,
    },
}

/// The snapshot as the restore sees it.
struct Snapshot<'a> {
    name: String,
    kind: &'static str,
    source: Source<'a>,
    location: String,
    as_of: DateTime<Utc>,
    pg_dump: Option<Program>,
}

fn rounded(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Restores the tables.
///
/// # Errors
/// The target cannot be reached; the snapshot has no such table; a name collides (fail,
/// replace); a privilege is missing; pg_dump or pg_restore of a sufficient major is missing;
/// the restore failed (rolled back: the target is as it was, no clone is left).
pub fn run(req: &TablesRequest) -> Result<RestoreReport> {
    let started = Instant::now();
    if req.jobs == 0 {
        return Err(Error::usage("invalid --jobs 0"));
    }
    let mut target = catalog::connect(&req.into)?;
    // From here a signal only sets a flag: the restore rolls back, the clone is destroyed.
    pgdr_core::signals::set_cooperative(true);
    let r = run_from(req, &mut target, started);
    pgdr_core::signals::set_cooperative(false);
    r
}

fn run_from(
    req: &TablesRequest,
    target: &mut catalog::Target,
    started: Instant,
) -> Result<RestoreReport> {
    match &req.from {
        From::Logical { place, name } => {
            let snap = place.get(name)?.ok_or_else(|| {
                Error::failed(format!(
                    "no logical snapshot {name} in {}",
                    place.describe()
                ))
            })?;
            let restore_needs = snap.pg_dump.major().max(target.major);
            let pg_restore = tools::find(
                "pg_restore",
                restore_needs,
                &format!(
                    "a dump of pg_dump {} restored into PostgreSQL {}",
                    snap.pg_dump.version, target.version
                ),
                req.pg_bin.as_deref(),
            )?;
            let s = Snapshot {
                name: snap.snapshot.clone(),
                kind: "logical",
                source: Source::Stored(place, &snap),
                location: place.location(name),
                as_of: snap.consistent_at,
                pg_dump: None,
            };
            let mut rep = restore(target, &s, req, &pg_restore)?;
            rep.seconds = rounded(started);
            Ok(rep)
        }
        From::Physical {
            create,
            keep_clone,
            database,
        } => physical(
            target,
            req,
            create,
            *keep_clone,
            database.as_deref(),
            started,
        ),
    }
}

/// Plans, checks and (unless a dry run) restores.
fn restore(
    target: &mut catalog::Target,
    s: &Snapshot<'_>,
    req: &TablesRequest,
    pg_restore: &Program,
) -> Result<RestoreReport> {
    let toc_bytes = s.source.toc()?;
    let toc = toc::parse(&toc_bytes).map_err(|e| {
        Error::failed(format!("cannot read the table of contents of {}", s.name)).because(e)
    })?;
    let tables = select::resolve_tables(&toc, &req.tables, &s.name)?;
    let sel = select::select(&toc, &tables, req.on_conflict == OnConflict::Replace)?;
    let stamp = s.as_of.format("%Y%m%d%H%M%S").to_string();
    let names = plan::names_to_check(&sel, &stamp);
    let existing = catalog::existing(&mut target.client, &sel, &names, req.on_conflict)?;
    let plan = plan::decide(&toc, &sel, &existing, req.on_conflict, &stamp)?;
    let created_schemas: HashSet<String> = plan
        .objects
        .iter()
        .filter(|o| o.kind == "schema")
        .map(|o| o.name.clone())
        .collect();
    let schemas = catalog::schemas_of(&plan, &created_schemas);
    let pc = catalog::precheck(target, &plan, &schemas)?;
    let mut rep = RestoreReport {
        snapshot: s.name.clone(),
        kind: s.kind.into(),
        source: s.location.clone(),
        as_of: s.as_of,
        into: target.describe.clone(),
        server_version: target.version.clone(),
        on_conflict: req.on_conflict.name().into(),
        dry_run: req.dry_run,
        checks: pc.checks.clone(),
        tables: plan
            .tables
            .iter()
            .map(|(t, to, action, parts)| RestoredTable {
                table: display(t),
                restored_as: display(to),
                action: (*action).into(),
                rows: None,
                partitions: parts.iter().map(display).collect(),
            })
            .collect(),
        objects: plan.objects.clone(),
        skipped: plan.skipped.clone(),
        foreign_keys: pc
            .foreign_keys
            .iter()
            .filter(|f| !f.internal)
            .map(|f| KeptForeignKey {
                table: f.table.clone(),
                constraint: f.name.clone(),
                references: f.references.clone(),
                validated: f.validated,
            })
            .collect(),
        pg_restore: pg_restore.clone(),
        pg_dump: s.pg_dump.clone(),
        clone: None,
        seconds: 0.0,
    };
    if req.dry_run {
        return Ok(rep);
    }
    let mut table_of: HashMap<Name, Name> = HashMap::new();
    for g in &sel.groups {
        table_of.insert(g.table.clone(), g.table.clone());
        for p in &g.partitions {
            table_of.insert(p.clone(), g.table.clone());
        }
    }
    let prepared = s.source.prepare(&toc_bytes)?;
    let r = exec::run(
        &mut target.client,
        &exec::Exec {
            pg_restore,
            source: &s.source,
            prepared: &prepared,
            toc: &toc,
            plan: &plan,
            before: catalog::before_replace(&pc),
            after: catalog::after_replace(&pc, &target.user),
            jobs: req.jobs,
            table_of,
        },
    );
    let rows = r.map_err(|e| {
        let why = e.why.clone().map_or(String::new(), |w| format!("{w}; "));
        Error {
            why: Some(format!(
                "{why}nothing was changed in {} (the transaction was rolled back)",
                target.describe
            )),
            ..e
        }
    })?;
    for (t, r) in plan.tables.iter().zip(rep.tables.iter_mut()) {
        r.rows = Some(rows.get(&t.0).copied().unwrap_or(0));
    }
    Ok(rep)
}

/// The moment a temporary clone of `create` is as of, when the request names it: the
/// recovery target time, or the --before time recovered to.
fn known_as_of(create: &CreateRequest) -> Option<DateTime<Utc>> {
    match (create.target, &create.source) {
        (Some(RecoveryTarget::Time(t)), _) => Some(t),
        (None, crate::create::Source::Before(t)) => Some(*t),
        _ => None,
    }
}

/// The restore from a physical snapshot: a temporary clone, pg_dump of the tables from it,
/// the restore, the clone destroyed (kept with --keep-clone when all went well).
fn physical(
    target: &mut catalog::Target,
    req: &TablesRequest,
    create: &CreateRequest,
    keep_clone: bool,
    database: Option<&str>,
    started: Instant,
) -> Result<RestoreReport> {
    if let (OnConflict::Rename, Some(t)) = (req.on_conflict, known_as_of(create)) {
        let copies =
            catalog::earlier_copies(target, &req.tables, &t.format("%Y%m%d%H%M%S").to_string())?;
        if !copies.is_empty() {
            return Err(Error::failed(
                "nothing was restored: the restore would collide with the target",
            )
            .because(
                copies
                    .iter()
                    .map(|c| {
                        format!(
                            "table {} exists already (restored from this moment before?)",
                            display(c)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
            .hint("drop the earlier copy, or restore under another moment"));
        }
    }
    // The clone's record says `creating` while this run holds its name's lock: a run killed
    // before it is destroyed leaves it to the next run ([`crate::leftovers`]).
    let (made, name_lock) = crate::create::make(create)?;
    let registry = &create.registry;
    let result = (|| -> Result<RestoreReport> {
        if pgdr_core::signals::interrupted() {
            return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
        }
        let major = registry
            .read(&made.clone)?
            .and_then(|r| r.server)
            .map(|s| s.pg_version)
            .ok_or_else(|| Error::failed("cannot read the temporary clone's record"))?;
        let pg_dump = tools::find(
            "pg_dump",
            major,
            &format!("the clone of {} (PostgreSQL {major})", made.snapshot),
            req.pg_bin.as_deref(),
        )?;
        let pg_restore = tools::find(
            "pg_restore",
            pg_dump.major().max(target.major),
            &format!("a dump of pg_dump {}", pg_dump.version),
            req.pg_bin.as_deref(),
        )?;
        let owner = pgdr_core::owner::data_dir_owner(&made.path)?;
        let scratch = tempfile::Builder::new()
            .prefix("pgdr-tables-")
            .tempdir()
            .context(|| "cannot make a scratch directory for pg_dump".into())?;
        if pgdr_core::owner::is_root() {
            std::os::unix::fs::chown(scratch.path(), Some(owner.uid), Some(owner.gid)).context(
                || format!("cannot give {} to {}", scratch.path().display(), owner.name),
            )?;
        }
        let out = scratch.path().join("dump");
        let dbname = database.unwrap_or(&target.database).to_string();
        let conninfo = format!(
            "host={} port={} user={} dbname={}",
            pgdr_core::conn::quote_value(&made.socket_dir.display().to_string()),
            made.port,
            pgdr_core::conn::quote_value(&owner.name),
            pgdr_core::conn::quote_value(&dbname)
        );
        let mut cmd = pgdr_core::owner::command_as(&owner, &pg_dump.path);
        cmd.args([
            "--format=directory",
            "--compress=0",
            "--no-sync",
            &format!("--jobs={}", req.jobs),
            &format!("--file={}", out.display()),
        ]);
        if req.dry_run {
            cmd.arg("--schema-only");
        }
        if !req.tables.is_empty() {
            cmd.arg("--strict-names");
        }
        cmd.args(req.tables.iter().map(|t| format!("--table={t}")));
        cmd.arg(format!("--dbname={conninfo}"));
        pgdr_snap::logical::take::run_program(cmd, "pg_dump of the temporary clone")?;
        let as_of = known_as_of(create)
            .unwrap_or_else(|| made.recovery.reached_time.unwrap_or_else(Utc::now));
        let s = Snapshot {
            name: made.snapshot.clone(),
            kind: "physical",
            source: Source::Plain(&out),
            // An image's clone lives in a directory that is gone afterwards: its repository
            // says where the snapshot is.
            location: match &create.image_repo {
                Some(r) => r.display().to_string(),
                None => made.location.clone(),
            },
            as_of,
            pg_dump: Some(pg_dump.clone()),
        };
        let mut rep = restore(target, &s, req, &pg_restore)?;
        rep.clone = Some(TempClone {
            clone: made.clone.clone(),
            recovery_target: made.recovery.target.clone(),
            reached_time: made.recovery.reached_time,
            kept: keep_clone,
            port: made.port,
            socket_dir: made.socket_dir.display().to_string(),
        });
        Ok(rep)
    })();
    let destroy = |ok: bool| -> Option<String> {
        let rec = match registry.read(&made.clone) {
            Ok(Some(rec)) => rec,
            Ok(None) => return None,
            Err(e) => return Some(e.to_string()),
        };
        if ok && keep_clone {
            let kept = pgdr_snap::registry::CloneRecord {
                state: "ready".into(),
                ..rec
            };
            return registry.write(&kept).err().map(|e| e.to_string());
        }
        crate::destroy::remove(registry, &rec, true)
            .err()
            .map(|e| e.to_string())
    };
    let destroyed = destroy(result.is_ok());
    drop(name_lock);
    match result {
        Ok(mut rep) => {
            if let Some(e) = destroyed {
                return Err(Error::failed(format!(
                    "the tables were restored, but the temporary clone {} could not be destroyed",
                    made.clone
                ))
                .because(e)
                .hint(format!("snap-clone --destroy {}", made.clone)));
            }
            rep.seconds = rounded(started);
            Ok(rep)
        }
        Err(e) => {
            let note = match destroyed {
                None => format!("the temporary clone {} was destroyed", made.clone),
                Some(d) => format!(
                    "the temporary clone {} could not be destroyed ({d}; snap-clone --destroy {})",
                    made.clone, made.clone
                ),
            };
            let why = e.why.clone().map_or(String::new(), |w| format!("{w}; "));
            Err(Error {
                why: Some(format!("{why}{note}")),
                ..e
            })
        }
    }
}
