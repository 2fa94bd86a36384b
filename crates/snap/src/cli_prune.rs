//! snap-prune: a retention policy over snap-take's snapshots.

use crate::backend::{Backend, BackendKind};
use crate::doc::{KeptSnapshot, OldestKept, PruneReport, SkippedSnapshot, SnapshotRef};
use crate::meta::SnapshotMeta;
use crate::retention::{self, Calendar, Item, Policy};
use clap::Parser;
use pgdr_core::{Error, Outcome, OutputArgs, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

const AFTER_HELP: &str = "\
Examples:
  snap-prune --pgdata /zpdata01/pg --keep-hourly 24 --keep-daily 7 --dry-run
  snap-prune --pgdata /zpdata01/pg --pitr-window 7d --keep-monthly 6
  snap-take --pgdata /zpdata01/pg | snap-prune - --keep-hourly 24 --keep-daily 7 | wal-archive prune - --repo /zpdata02/wal";

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
Worked example: snapshots every 15 minutes for 3 days, --keep-hourly 24 --keep-daily 7 \
keeps 27: the :45 snapshot of each of the last 24 hours (the newest is the day's daily), \
23:45 of the two earlier days, and the very first snapshot as 'oldest daily' because fewer \
than 7 days exist.",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// '-' reads a snap-take (or snap-prune) document from stdin to learn the target.
    #[arg(value_name = "-")]
    pub input: Option<String>,
    /// The data directory whose snapshots to prune.
    #[arg(long, short = 'D', value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    /// Storage backend: zfs, btrfs or copy (default: detected from PGDATA).
    #[arg(long, value_enum, hide_possible_values = true)]
    pub backend: Option<BackendKind>,
    /// Where btrfs and copy snapshots are kept (as given to snap-take).
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
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

/// The target named by a snap-take document (or a snap-prune one) on stdin.
fn target_from_doc(doc: &Value) -> Result<(PathBuf, Option<BackendKind>, Option<PathBuf>)> {
    let bad = |why: &str| {
        Error::usage("the document on stdin names no data directory")
            .because(why.to_string())
            .hint("pipe in the output of snap-take")
    };
    let pgdata = doc
        .get("pgdata")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no \"pgdata\" field"))?;
    let kind = match doc.get("backend").and_then(Value::as_str) {
        Some(b) => {
            Some(BackendKind::parse(b).ok_or_else(|| bad(&format!("unknown backend {b:?}")))?)
        }
        None => None,
    };
    // btrfs and copy snapshots live in a store: the directory of the snapshot's location.
    let store = match kind {
        Some(BackendKind::Btrfs | BackendKind::Copy) => doc
            .get("location")
            .and_then(Value::as_str)
            .and_then(|l| Path::new(l).parent().map(Path::to_path_buf))
            .or_else(|| {
                doc.get("snapshot_dir")
                    .and_then(Value::as_str)
                    .map(PathBuf::from)
            }),
        _ => None,
    };
    Ok((PathBuf::from(pgdata), kind, store))
}

fn brief(m: &SnapshotMeta) -> SnapshotRef {
    SnapshotRef {
        snapshot: m.snapshot.clone(),
        created: m.created,
        label: m.label.clone(),
    }
}

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
    if policy.is_empty() {
        return Err(Error::usage("no retention rule given")
            .because("an empty policy would keep only the newest snapshot")
            .hint("give at least one --keep-* or --pitr-window"));
    }
    let wait = crate::cli_take::wait(args.wait_lock)?;
    let (pgdata, kind, store) = match (args.input.as_deref(), &args.pgdata) {
        (Some("-"), None) => target_from_doc(&pgdr_core::input::read_stdin_json()?)?,
        (Some("-"), Some(_)) => return Err(Error::usage("give either - or --pgdata, not both")),
        (Some(other), _) => {
            return Err(Error::usage(format!("unexpected argument {other:?}"))
                .hint("the only argument is '-' (read a snap-take document)"))
        }
        (None, Some(p)) => (p.clone(), None, None),
        (None, None) => {
            return Err(Error::usage("no target")
                .hint("give --pgdata DIR, or '-' to read snap-take's output"))
        }
    };
    let kind = args.backend.or(kind);
    let store = args.snapshot_dir.clone().or(store);
    let pgdata = crate::sys::check_data_dir(&pgdata)?;
    let backend = Backend::detect(&pgdata, kind, store.as_deref())?;
    let _lock = if args.dry_run {
        None
    } else {
        Some(pgdr_core::lock::acquire(
            &backend.lock_path(),
            &format!("data directory {}", pgdata.display()),
            wait,
        )?)
    };
    let all = backend.list()?;
    let considered: Vec<&SnapshotMeta> = all
        .iter()
        .filter(|m| args.label.is_none() || m.label == args.label)
        .collect();
    let items: Vec<Item> = considered
        .iter()
        .map(|m| Item {
            name: m.snapshot.clone(),
            time: m.created.timestamp(),
        })
        .collect();
    let cal: &dyn Calendar = match args.tz {
        Tz::Utc => &chrono::Utc,
        Tz::Local => &chrono::Local,
    };
    let verdicts = retention::apply(&items, &policy, cal);
    let by_name = |n: &str| {
        considered
            .iter()
            .find(|m| m.snapshot == n)
            .copied()
            .expect("listed")
    };
    let mut kept = Vec::new();
    let mut destroyed = Vec::new();
    let mut skipped = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    for v in verdicts.iter().rev() {
        // oldest first, so a failure part-way leaves the newest ones
        let m = by_name(&v.name);
        if v.keep() {
            kept.push(KeptSnapshot {
                snapshot: m.snapshot.clone(),
                created: m.created,
                label: m.label.clone(),
                reasons: v.reasons.iter().map(|r| r.to_string()).collect(),
            });
            continue;
        }
        if backend.has_clones(&m.snapshot)? {
            skipped.push(SkippedSnapshot {
                snapshot: m.snapshot.clone(),
                created: m.created,
                label: m.label.clone(),
                reason: "a clone depends on it".into(),
            });
            continue;
        }
        if !args.dry_run {
            if let Err(e) = backend.destroy(m) {
                let done = if gone.is_empty() {
                    "none".to_string()
                } else {
                    gone.join(", ")
                };
                return Err(Error::failed(format!("cannot destroy {}", m.snapshot))
                    .because(format!("{}; destroyed before the failure: {done}", e))
                    .hint("nothing else was changed; run again after fixing the cause"));
            }
        }
        gone.push(m.snapshot.clone());
        destroyed.push(brief(m));
    }
    kept.reverse();
    // The oldest snapshot that still exists afterwards (of any label): WAL older than its
    // wal_start is no longer needed by any snapshot.
    let oldest_kept = all
        .iter()
        .find(|m| !gone.contains(&m.snapshot))
        .map(|m| OldestKept {
            snapshot: m.snapshot.clone(),
            created: m.created,
            wal_start: m.wal_start.clone(),
            timeline: m.timeline,
        });
    Outcome::document(&PruneReport {
        pgdata,
        backend: backend.kind().name().into(),
        dry_run: args.dry_run,
        kept,
        destroyed,
        skipped,
        oldest_kept,
    })
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "The policy was applied (or, with --dry-run, shown)."),
        (1, "It failed: not a data directory, the storage cannot be read, or a destroy failed (the message lists what was destroyed before)."),
        (2, "Usage error: bad arguments, no retention rule, malformed JSON on stdin."),
        (75, "Another snap-take, snap-prune or snap-clone run holds the lock of this data directory (see --wait-lock)."),
    ],
    documents: &[pgdr_core::man::DocSection::of::<PruneReport>("snap-prune")],
    json_output: "",
    examples: &[
        ("Preview a policy:", "snap-prune --pgdata /zpdata01/pg --keep-hourly 24 --keep-daily 7 --dry-run"),
        ("Keep point-in-time recovery possible for a week, plus monthly snapshots for half a year:", "snap-prune --pgdata /zpdata01/pg --pitr-window 7d --keep-monthly 6"),
        ("After snap-take, and before pruning the WAL archive to what the remaining snapshots need:", "snap-take --pgdata /zpdata01/pg | snap-prune - --keep-hourly 24 --keep-daily 7 | wal-archive prune - --repo /zpdata02/wal"),
    ],
    extra_sections: &[],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("snap-prune", run)
}
