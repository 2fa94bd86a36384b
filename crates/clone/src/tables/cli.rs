//! The arguments of snap-clone that restore tables into a database (`--into`), turned into
//! a [`TablesRequest`]: a logical snapshot when `--snapshot NAME` is one in `--snapshot-dir`
//! or `--repo`, else a physical snapshot (`--snapshot` or `--before`) cloned temporarily
//! with snap-clone's own create path.

use super::{From, TablesRequest};
use crate::cli::Args;
use crate::create::CreateRequest;
use crate::prepare::Action;
use pgdr_core::{Context, Error, Outcome, Result};
use pgdr_snap::logical::place::Place;
use pgdr_snap::registry::Registry;

/// Where the logical snapshot `name` is, if it is one.
fn logical_place(name: &str, args: &Args) -> Result<Option<Place>> {
    if let Some(d) = &args.snapshot_dir {
        let p = Place::dir(d)?;
        if p.get(name)?.is_some() {
            return Ok(Some(p));
        }
    }
    if let Some(r) = &args.repo {
        let p = Place::repo(r)?;
        if p.get(name)?.is_some() {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The request for a temporary clone of a physical snapshot, as snap-clone makes clones.
fn physical(args: &Args) -> Result<CreateRequest> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => format!(
            "tables-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            std::process::id()
        ),
    };
    pgdr_snap::meta::check_label_arg("--name", &name)?;
    let target_dir = match &args.target {
        Some(t) if t.is_absolute() => Some(t.clone()),
        Some(t) => Some(
            std::env::current_dir()
                .context(|| "cannot read the current directory".into())?
                .join(t),
        ),
        None => None,
    };
    Ok(CreateRequest {
        source: crate::cli::source(args)?,
        pgdata: args.pgdata.clone(),
        backend: args.backend,
        snapshot_dir: args.snapshot_dir.clone(),
        name,
        target_dir,
        port: args.port,
        target: crate::cli::parse_target(args)?,
        action: Action::Pause,
        restore_command: crate::cli::restore_command(args)?,
        shared_buffers: match &args.shared_buffers {
            None => None,
            Some(s) => Some(crate::cli::shared_buffers_setting(s)?),
        },
        replay: args.replay_settings.into(),
        start: true,
        wait: pgdr_core::lock::wait_duration("--wait", args.wait)?,
        wait_lock: pgdr_core::lock::wait_duration("--wait-lock", args.wait_lock)?,
        registry: Registry::host(),
        // A temporary clone is of a local snapshot: images are restored only with --target
        // and without --into (crate::cli::run).
        image_repo: None,
        parallel: args.parallel.into(),
    })
}

/// Runs `snap-clone --into …`, prints its report.
///
/// # Errors
/// Usage errors; whatever the restore refuses or fails with.
pub fn run(args: Args) -> Result<Outcome> {
    let into = args.into.clone().unwrap_or_default();
    if args.recovery_target_action == Some(Action::Promote) {
        return Err(
            Error::usage("--recovery-target-action does not apply with --into").because(
                "the temporary clone stays paused at the target while its tables are dumped",
            ),
        );
    }
    let logical = match &args.snapshot {
        Some(n) if args.input.is_none() && args.before.is_none() => {
            logical_place(n, &args)?.map(|place| From::Logical {
                place,
                name: n.clone(),
            })
        }
        _ => None,
    };
    let from = match logical {
        Some(l) => l,
        None => From::Physical {
            create: Box::new(physical(&args)?),
            keep_clone: args.keep_clone,
            database: args.database.clone(),
        },
    };
    let doc = super::run(&TablesRequest {
        into,
        tables: args.tables,
        on_conflict: args.on_conflict,
        jobs: args.jobs,
        dry_run: args.dry_run,
        pg_bin: args.pg_bin,
        from,
    })?;
    Outcome::document(&doc)
}
