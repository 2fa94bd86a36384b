//! The arguments of snap-clone that restore tables into a database (`--into`), turned into
//! a [`TablesRequest`]: a logical snapshot when `--snapshot NAME` is one in `--snapshot-dir`
//! or `--repo`, else a physical snapshot (`--snapshot`, `--before` or `--latest`) cloned
//! temporarily with snap-clone's own create path: a local snapshot, or an image of `--repo`
//! restored into `--target` or a new directory under $TMPDIR ([`image_repo`]).

use super::{From, TablesRequest};
use crate::cli::Args;
use crate::create::{CreateRequest, Source};
use crate::prepare::Action;
use pgdr_core::{Error, Outcome, Result};
use pgdr_snap::backend::discover;
use pgdr_snap::logical::place::Place;
use pgdr_snap::registry::Registry;
use pgdr_snap::{Backend, SnapshotMeta};
use std::path::PathBuf;

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

/// Whether this host has a snapshot made by snap-take that would serve `source` with the WAL
/// of --repo ([`crate::create::serves`]): of PGDATA (from the environment) or on an imported
/// ZFS pool or mounted btrfs filesystem, of the repository's database system, with --snapshot
/// NAME of that name, with --before T consistent by T. Another cluster's snapshots on this
/// host never serve (the repository's WAL cannot recover them): the image does. What cannot be
/// read counts as none.
fn local_snapshots(args: &Args, source: &Source, repo: &std::path::Path) -> Result<bool> {
    let system = crate::create::repo_system(repo)?;
    let wanted = |m: &SnapshotMeta| crate::create::serves(m, source, system.as_deref());
    let of_pgdata = args.pgdata.as_deref().is_some_and(|p| {
        Backend::detect(p, None, None)
            .and_then(|b| b.list())
            .is_ok_and(|v| v.iter().any(wanted))
    });
    Ok(
        of_pgdata
            || discover::discover(None).is_ok_and(|d| d.found.iter().any(|f| wanted(&f.meta))),
    )
}

/// The repository whose image the temporary clone is restored from, or None for a local
/// snapshot. An image when --repo is given, nothing names a local snapshot's place
/// (crate::cli::names_local_place), and either --target is given (as for a clone) or this
/// host has no snapshot that would serve the request ([`local_snapshots`]): on a host of
/// another region, --repo alone is enough; where the snapshots are, a local clone is the
/// quicker one and --repo is the WAL archive.
///
/// # Errors
/// The repository cannot be opened (to learn its database system).
fn image_repo(args: &Args, source: &Source) -> Result<Option<PathBuf>> {
    let Some(repo) = args.repo.as_ref() else {
        return Ok(None);
    };
    if crate::cli::names_local_place(args) {
        return Ok(None);
    }
    let image = args.target.is_some() || !local_snapshots(args, source, repo)?;
    Ok(image.then(|| repo.clone()))
}

use pgdr_core::fsx::absolute;

/// The request for a temporary clone of a physical snapshot, as snap-clone makes clones. An
/// image without --target is restored into $TMPDIR/pgdr-tables-NAME (made, and removed with
/// the clone, by the restore; as root given to the user that owned the source's data
/// directory, as for any image).
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
    let source = crate::cli::source(args)?;
    let image_repo = image_repo(args, &source)?;
    let target_dir = match (&args.target, &image_repo) {
        (Some(t), _) => Some(absolute(t)?),
        (None, Some(_)) => Some(absolute(
            &std::env::temp_dir().join(format!("pgdr-tables-{name}")),
        )?),
        (None, None) => None,
    };
    Ok(CreateRequest {
        source,
        pgdata: args.pgdata.clone(),
        backend: args.backend,
        snapshot_dir: args.snapshot_dir.clone(),
        name,
        target_dir,
        port: args.port,
        target: crate::cli::parse_target(args)?,
        action: Action::Pause,
        restore_command: crate::cli::restore_command(args)?,
        wal_repo: crate::cli::wal_repo(args),
        shared_buffers: match &args.shared_buffers {
            None => None,
            Some(s) => Some(crate::cli::shared_buffers_setting(s)?),
        },
        replay: args.replay_settings.into(),
        start: true,
        wait: pgdr_core::lock::wait_duration("--wait", args.wait)?,
        wait_lock: pgdr_core::lock::wait_duration("--wait-lock", args.wait_lock)?,
        registry: Registry::host(),
        image_repo,
        parallel: args.parallel.into(),
        temporary: true,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn image_of(argv: &[&str]) -> Option<PathBuf> {
        let args = Args::try_parse_from(
            ["snap-clone", "--into", "dbname=app", "--snapshot", "pgdr-x"]
                .iter()
                .chain(argv),
        )
        .unwrap();
        image_repo(&args, &crate::cli::source(&args).unwrap()).unwrap()
    }

    #[test]
    fn an_image_with_target_and_never_with_a_local_place() {
        assert_eq!(
            image_of(&["--repo", "/r", "--target", "/d"]),
            Some(PathBuf::from("/r"))
        );
        assert_eq!(image_of(&["--target", "/d"]), None);
        for local in [
            ["--pgdata", "/p"],
            ["--snapshot-dir", "/s"],
            ["--backend", "copy"],
        ] {
            let mut argv = vec!["--repo", "/r", "--target", "/d"];
            argv.extend(local);
            assert_eq!(image_of(&argv), None, "{local:?}");
        }
    }
}
