//! snap-prune's command line: arguments (or snap-take's or snap-prune's document) in, the
//! report out. The operation is [`crate::cmd::prune`].

use crate::backend::BackendKind;
use crate::cmd::prune::PruneRequest;
use crate::cmd::prune_images::ImagePruneRequest;
use crate::doc::{ImageReport, PruneReport};
use crate::logical::meta::KIND;
use crate::logical::prune::LogicalPruneReport;
use crate::meta::SnapshotMeta;
use crate::registry::Registry;
use crate::retention::Policy;
use clap::Parser;
use pgdr_core::cli::Stdin;
use pgdr_core::{Error, Outcome, OutputArgs, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Apply a retention policy to the snapshots snap-take made.
#[derive(Debug, Parser)]
#[command(
    name = "snap-prune",
    version,
    about = "Apply a retention policy to the snapshots snap-take made",
    long_about = "Apply a retention policy to the snapshots snap-take made of one data directory, \
destroying the ones no rule keeps. Only snapshots that carry snap-take's metadata are ever \
touched; the newest is always kept; a snapshot with a clone is never destroyed (it is \
reported as skipped). Every kept snapshot lists the rules that keep it, and oldest_kept \
carries the wal_start that 'wal-archive prune -' needs.\n\n\
Rules (restic's 'forget' is the model; a snapshot is kept if any rule keeps it):\n\
--keep-last N keeps the N newest snapshots.\n\
--keep-hourly/daily/weekly/monthly/yearly N: walking from the newest to the oldest, keeps \
the newest snapshot of each calendar hour, day, ISO week (Monday to Sunday), month or year, \
for the N most recent such periods that have snapshots (periods without snapshots do not \
count, so a pause never deletes history). If fewer than N periods exist, the oldest \
snapshot is kept too ('oldest daily snapshot'). Periods are in UTC, or in the local zone \
with --tz local.\n\
--keep-within D keeps every snapshot taken at most D before the newest one.\n\
--pitr-window D keeps what point-in-time recovery to any moment of the last D needs: every \
snapshot at most D before the newest one, and the newest snapshot before that.\n\
Durations are anchored on the newest snapshot, never on the clock, so a snap-take that \
stopped running never lets the history age away. Durations: 90s, 15m, 36h, 7d, 2w, 1y.\n\n\
A snapshot dated after now (taken while the clock had jumped ahead) is kept, counted by no \
rule and listed under problems: windows and calendar periods are anchored on the newest \
snapshot that is not in the future, as restic's forget does, so one snapshot dated 2042 \
never makes the real ones look old. oldest_kept is never such a snapshot unless nothing else \
is left.\n\n\
What snap-take runs that were killed left of unfinished snapshots (btrfs and copy: \
.NAME.partial in the store; ZFS: snapshots with pgdr:tool but no pgdr:meta whose pgdr:taker \
is gone, and their POOL/pgdr-read-* clones) and of btrfs views (.view-PID-NAME in the store \
that no live snap-take --to holds) is removed first, under the store's lock, and \
listed in removed_leftovers; --dry-run lists it and removes nothing.\n\n\
With --tz local, periods are local calendar periods. When summer time ends, the repeated \
local hour (02:00 to 03:00 twice, say) is one hourly period: --keep-hourly keeps one \
snapshot (the later) for those two real hours and so reaches one real hour further back, \
as restic does (it buckets by local wall-clock time too); sanoid marks the repeated hour's \
snapshots with a dst suffix and recommends running in UTC. When summer time starts, the \
skipped hour simply has no snapshots. --tz utc (the default) has neither effect.\n\n\
Worked example: snapshots every 15 minutes for 3 days, --keep-hourly 24 --keep-daily 7 \
keeps 27: the :45 snapshot of each of the last 24 hours (the newest is the day's daily), \
23:45 of the two earlier days, and the very first snapshot as 'oldest daily' because fewer \
than 7 days exist.\n\n\
With --repo the same rules apply to the images snap-take --to stored in a repository (every \
image of the repository's cluster, whichever data directory it was taken of; --label and \
--system-id narrow them): the newest is always kept, every kept image lists its reasons, \
--dry-run removes nothing, and oldest_kept.wal_start feeds 'wal-archive prune - --repo'. An \
image's manifest is removed first, then every piece (object) no remaining image references; \
a piece a remaining image needs is never removed, and neither is one an upload in progress \
has decided to reference: the prune holds the repository's images.lock, as an upload does. \
After a failover the rules count only images a clone recovers onto the repository's newest \
timeline (snap-clone follows it): an image of the abandoned timeline consistent after the \
switch is kept outside the policy, with the reason 'not counted', so it never stands in for \
the last N or the base of the PITR window.\n\n\
With --logical (or --database, or a document of snap-take --logical on stdin) the policy \
applies to the logical snapshots in --snapshot-dir DIR or the repository --repo REPO instead \
of its images: to each database and label on its own (--database NAME and --label L pick \
one), with the same rules; the newest of each database and label is always kept. What snap-take --logical runs \
killed before they could clean up (SIGKILL, the OOM killer) left is removed too, under the lock a \
live run would hold, with one note each (leftovers_removed; --dry-run lists it): hidden staging \
directories DIR/.NAME.pgdr-tmp.PID, a repository's dump files without a manifest, and \
pg_dump's plaintext scratch copies $TMPDIR/pgdr-dump-XXXXXX whose run is provably gone."
)]
pub struct Args {
    /// '-' reads a snap-take (or snap-prune) document from stdin to learn the target; a
    /// snap-prune document of a dry run makes this a dry run too.
    #[arg(value_name = "-", value_parser = pgdr_core::cli::stdin_marker)]
    pub input: Option<Stdin>,
    /// The data directory whose snapshots to prune.
    #[arg(long, short = 'D', env = "PGDATA", value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    /// Storage backend: zfs, btrfs or copy (default: detected from PGDATA).
    #[arg(long, value_enum, hide_possible_values = true)]
    pub backend: Option<BackendKind>,
    /// Where btrfs and copy snapshots are kept (as given to snap-take).
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Prune the images in this repository instead of local snapshots (--pgdata is not used);
    /// with --logical, the logical snapshots it holds. An encrypted one is read with the
    /// identity file $PGDR_IDENTITY names.
    #[arg(long, value_name = "REPO", conflicts_with_all = ["backend", "snapshot_dir"])]
    pub repo: Option<PathBuf>,
    /// With --repo: only images of this database system (the repository's must be it).
    #[arg(long, value_name = "ID", requires = "repo", conflicts_with_all = ["logical", "database"])]
    pub system_id: Option<String>,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have snapshots.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have snapshots.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have snapshots.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have snapshots.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have snapshots.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot at most DURATION older than the newest.
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep what recovery to any moment of the last DURATION needs.
    #[arg(long, value_name = "DURATION")]
    pub pitr_window: Option<String>,
    /// Only consider snapshots with this label (others are left alone).
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// Calendar periods in utc (default) or the local time zone.
    #[arg(long, value_enum, default_value = "utc", hide_possible_values = true)]
    pub tz: Tz,
    /// Print what would be destroyed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait up to this many seconds for another run on the same data directory.
    #[arg(long, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
    /// Prune logical snapshots (snap-take --logical) in --snapshot-dir or --repo (implied by
    /// --database, and by --snapshot-dir without --pgdata and --repo).
    #[arg(long)]
    pub logical: bool,
    /// Only this database's logical snapshots (implies --logical; default: every database,
    /// each on its own).
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Tz {
    Utc,
    Local,
}

pgdr_core::tool_args!(Args);

fn duration(flag: &str, v: &Option<String>) -> Result<Option<u64>> {
    v.as_deref()
        .map(|s| {
            pgdr_core::units::parse_duration(s)
                .map_err(|e| Error::usage(format!("invalid {flag}")).because(e))
        })
        .transpose()
}

/// What a document on stdin says: a local target (pgdata, backend, store) or a repository,
/// the database system, and whether it comes from a dry run.
struct FromStdin {
    local: Option<(PathBuf, Option<BackendKind>, Option<PathBuf>)>,
    repository: Option<PathBuf>,
    system_id: Option<String>,
    dry_run: bool,
}

/// What snap-take's (a snapshot or an image) or snap-prune's document read from stdin says.
fn from_stdin(map: Map<String, Value>, tool: String) -> Result<FromStdin> {
    let hint = "pipe in the output of snap-take or snap-prune";
    let kind = |b: &str| {
        BackendKind::parse(b).ok_or_else(|| {
            Error::usage("the document on stdin names no backend")
                .because(format!("unknown backend {b:?}"))
                .hint(hint)
        })
    };
    let of_snapshot = |m: SnapshotMeta| -> Result<FromStdin> {
        let kind = kind(&m.backend)?;
        // btrfs and copy snapshots live in the store: the directory of the snapshot.
        let store = match kind {
            BackendKind::Zfs => None,
            _ => Path::new(&m.location).parent().map(Path::to_path_buf),
        };
        Ok(FromStdin {
            local: Some((m.pgdata, Some(kind), store)),
            repository: None,
            system_id: Some(m.system_identifier),
            dry_run: false,
        })
    };
    if tool == "snap-take" && map.contains_key("image") {
        let r: ImageReport = pgdr_core::doc::from_map(map, "snap-take's", hint)?;
        return of_snapshot(r.snapshot);
    }
    if tool == "snap-take" {
        return of_snapshot(pgdr_core::doc::from_map(map, "snap-take's", hint)?);
    }
    let r: PruneReport = pgdr_core::doc::from_map(map, "snap-prune's", hint)?;
    let local = match (r.pgdata, r.backend.as_str()) {
        (Some(p), b) => Some((p, Some(kind(b)?), r.store)),
        (None, _) => None,
    };
    Ok(FromStdin {
        local,
        repository: r.repository.map(PathBuf::from),
        system_id: None,
        dry_run: r.dry_run,
    })
}

/// Parses the arguments into the operation's request, runs it, prints the report.
pub fn run(args: Args) -> Result<Outcome> {
    let policy = Policy {
        last: args.keep_last,
        hourly: args.keep_hourly,
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
        yearly: args.keep_yearly,
        within: duration("--keep-within", &args.keep_within)?,
        pitr_window: duration("--pitr-window", &args.pitr_window)?,
    };
    let wait_lock = pgdr_core::lock::wait_duration("--wait-lock", args.wait_lock)?;
    let doc = match args.input {
        Some(Stdin) => Some(pgdr_core::doc::read_stdin_any(&[
            "snap-take",
            "snap-prune",
        ])?),
        None => None,
    };
    let logical_doc = doc
        .as_ref()
        .is_some_and(|(m, _)| m.get("kind").and_then(Value::as_str) == Some(KIND));
    // A snapshot directory with no data directory and no document names no physical
    // snapshots: it is where logical snapshots are kept (SPEC: `snap-prune --snapshot-dir DIR`).
    let logical_dir = doc.is_none()
        && args.pgdata.is_none()
        && args.repo.is_none()
        && args.snapshot_dir.is_some();
    if args.logical || args.database.is_some() || logical_doc || logical_dir {
        let req = crate::logical::prune::request(
            doc,
            crate::logical::prune::Given {
                snapshot_dir: args.snapshot_dir,
                repo: args.repo,
                database: args.database,
                label: args.label,
            },
            policy,
            matches!(args.tz, Tz::Local),
            args.dry_run,
            wait_lock,
        )?;
        return Outcome::document(&crate::logical::prune::run(&req)?);
    }
    let doc = doc.map(|(map, tool)| from_stdin(map, tool)).transpose()?;
    let upstream_dry_run = doc.as_ref().is_some_and(|d| d.dry_run);
    let repo = args
        .repo
        .clone()
        .or_else(|| doc.as_ref().and_then(|d| d.repository.clone()));
    if let Some(repo) = repo {
        let system_id = match (&args.system_id, doc.as_ref().and_then(|d| d.system_id.clone())) {
            (Some(given), Some(doc_id)) if *given != doc_id => {
                return Err(Error::usage("give either - or --system-id, not both").because(
                    format!("the document on stdin is about database system {doc_id}, --system-id names {given}"),
                ))
            }
            (given, doc_id) => given.clone().or(doc_id),
        };
        let report = crate::cmd::prune_images::run(&ImagePruneRequest {
            repo,
            system_id,
            policy,
            label: args.label,
            local_time: matches!(args.tz, Tz::Local),
            dry_run: args.dry_run || upstream_dry_run,
            wait_lock,
            now: chrono::Utc::now(),
        })?;
        return Outcome::document(&report);
    }
    let (pgdata, kind, store) = match (doc.and_then(|d| d.local), &args.pgdata) {
        (Some(t), given) => {
            if let Some(p) = given {
                // --pgdata (or $PGDATA) beside '-' must name the same data directory.
                if p.canonicalize().ok() != t.0.canonicalize().ok() {
                    return Err(Error::usage("give either - or --pgdata, not both").because(
                        format!(
                            "the document on stdin is about {}, --pgdata (or $PGDATA) names {}",
                            t.0.display(),
                            p.display()
                        ),
                    ));
                }
            }
            t
        }
        (None, Some(p)) => (p.clone(), None, None),
        (None, None) => {
            return Err(Error::usage("no target")
                .hint("give --pgdata DIR, --repo REPO, or '-' to read snap-take's output"))
        }
    };
    let report = crate::cmd::prune::run(&PruneRequest {
        pgdata,
        backend: args.backend.or(kind),
        store: args.snapshot_dir.or(store),
        policy,
        label: args.label,
        local_time: matches!(args.tz, Tz::Local),
        dry_run: args.dry_run || upstream_dry_run,
        wait_lock,
        registry: Registry::host(),
        now: chrono::Utc::now(),
    })?;
    Outcome::document(&report)
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "The policy was applied (or, with --dry-run, shown)."),
        (1, "It failed: not a data directory (or snapshot directory), the storage or the repository cannot be read (an image whose manifest cannot be read stops it before anything is removed), or a destroy failed (the message lists what was destroyed before)."),
        (2, "Usage error: bad arguments, no retention rule, malformed JSON on stdin, or a document that is not snap-take's or snap-prune's."),
        (75, "Another snap-take, snap-prune or snap-clone run holds the lock of this data directory's snapshots, or (--repo) an upload or a prune holds the repository's images.lock, or (--logical) another run holds the lock of the snapshot directory or the repository's dumps (see --wait-lock)."),
    ],
    documents: &[
        pgdr_core::man::DocSection::of::<PruneReport>("snap-prune"),
        pgdr_core::man::DocSection::of::<LogicalPruneReport>("snap-prune --logical"),
    ],
    json_output: "",
    examples: &[
        ("Preview a policy:", "snap-prune --pgdata /zpdata01/pg --keep-hourly 24 --keep-daily 7 --dry-run"),
        ("Keep point-in-time recovery possible for a week, plus monthly snapshots for half a year:", "snap-prune --pgdata /zpdata01/pg --pitr-window 7d --keep-monthly 6"),
        ("After snap-take, and before pruning the WAL archive to what the remaining snapshots need:", "snap-take --pgdata /zpdata01/pg | snap-prune - --keep-hourly 24 --keep-daily 7 | wal-archive prune - --repo /zpdata02/wal"),
        ("The same with the data directory, the policy and the repository in /etc/pgdr/pgdr.toml ([global] pgdata, repo; [snap-prune] keep-hourly = 24, keep-daily = 7):", "snap-take | snap-prune - | wal-archive prune -"),
        ("Images in a repository, with their own retention, then the WAL they no longer need:", "snap-take --pgdata /zpdata01/pg | snap-take - --to /backup/pg | snap-prune - --repo /backup/pg --keep-daily 30 | wal-archive prune - --repo /backup/pg"),
        ("Preview the retention of images in a repository:", "snap-prune --repo /backup/pg --keep-daily 30 --dry-run"),
        ("A week of daily and a year of monthly logical snapshots of one database in a directory:", "snap-prune --logical --snapshot-dir /backup/logical --database app --keep-daily 7 --keep-monthly 12"),
        ("Right after a logical snapshot into a repository, in the same place and for the same database:", "snap-take --logical -d 'dbname=app' --to /backup/app | snap-prune - --keep-daily 30"),
    ],
    extra_sections: &[(
        "FILES",
        "The lock is .lock in the snapshot store (.pgdr-snapshots/NAME beside the data directory, or --snapshot-dir), shared with snap-take and snap-clone, by root and the data directory's owner alike, and removed when the run ends (a dry run takes none). Which snapshots have clones comes from the host's clone registry, $PGDR_CLONE_DIR (default /var/lib/pgdr/clones), and for ZFS also from the datasets' origins. With --repo the lock is images.lock in the repository (a dry run takes none).",
    )],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("snap-prune", run)
}
