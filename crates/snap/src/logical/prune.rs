//! snap-prune over logical snapshots: the same policy as for physical snapshots
//! ([`crate::retention`]), applied to each database and label on its own, in a snapshot
//! directory or a repository. A logical snapshot needs no WAL, so the report has no
//! `oldest_kept` for `wal-archive prune -`.

use super::place::Place;
use crate::retention::{self, Calendar, Item, Policy, FUTURE};
use chrono::{DateTime, SecondsFormat, Utc};
use pgdr_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What snap-prune was asked for, for logical snapshots.
#[derive(Debug)]
pub struct LogicalPruneRequest {
    pub place: Place,
    /// Only this database's snapshots (else every database, each on its own).
    pub database: Option<String>,
    /// Only snapshots with this label (else every label, each on its own).
    pub label: Option<String>,
    pub policy: Policy,
    pub local_time: bool,
    pub dry_run: bool,
    pub wait_lock: Option<Duration>,
    /// The clock: snapshots dated after it are in the future.
    pub now: DateTime<Utc>,
}

/// snap-prune's report for logical snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogicalPruneReport {
    /// Always "logical".
    pub kind: String,
    /// The snapshot directory pruned (--snapshot-dir), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub snapshot_dir: Option<PathBuf>,
    /// The repository pruned (--repo), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub repository: Option<String>,
    /// The database whose snapshots were considered (--database), or null for all.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub database: Option<String>,
    /// The label considered (--label), or null for all.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
    /// Nothing was removed: "destroyed" lists what would have been.
    pub dry_run: bool,
    /// The snapshots kept, newest first, each with the rules that keep it.
    pub kept: Vec<KeptLogical>,
    /// The snapshots removed (with --dry-run: that would be), oldest first.
    pub destroyed: Vec<LogicalRef>,
    /// What snap-take --logical runs killed before they could clean up had left, removed
    /// (with --dry-run: that would be): staging directories (`DIR/.NAME.pgdr-tmp.PID`),
    /// pg_dump's plaintext scratch copies (`$TMPDIR/pgdr-dump-XXXXXX`) whose run is gone, a
    /// repository's dump files without a manifest (`dumps/NAME`).
    pub leftovers_removed: Vec<String>,
    /// What needs a human: snapshots dated in the future, kept and counted by no rule.
    pub problems: Vec<String>,
}

impl pgdr_core::Document for LogicalPruneReport {
    const PRODUCERS: &'static [&'static str] = &["snap-prune"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// A kept logical snapshot and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeptLogical {
    /// Its name.
    pub snapshot: String,
    /// Its database.
    pub database: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its label, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
    /// The rules that keep it (as for physical snapshots: "newest", "daily snapshot", …).
    pub reasons: Vec<String>,
}

/// A logical snapshot named in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogicalRef {
    /// Its name.
    pub snapshot: String,
    /// Its database.
    pub database: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its label, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
}

/// Applies the policy to each (database, label) group of the place's logical snapshots.
///
/// # Errors
/// An empty policy (usage); the place cannot be read; the lock is held (exit 75); a removal
/// failed (the message lists what was removed before it).
pub fn run(req: &LogicalPruneRequest) -> Result<LogicalPruneReport> {
    if req.policy.is_empty() {
        return Err(Error::usage("no retention rule given")
            .because("an empty policy would keep only the newest snapshot")
            .hint("give at least one --keep-* or --pitr-window"));
    }
    let _lock = if req.dry_run {
        None
    } else {
        Some(req.place.lock(req.wait_lock, false)?)
    };
    let all: Vec<_> = req
        .place
        .list()?
        .into_iter()
        .filter(|m| req.database.as_ref().is_none_or(|d| *d == m.database))
        .filter(|m| req.label.is_none() || m.label == req.label)
        .collect();
    let mut groups: Vec<(String, Option<String>)> = all
        .iter()
        .map(|m| (m.database.clone(), m.label.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    let cal: &dyn Calendar = if req.local_time {
        &chrono::Local
    } else {
        &chrono::Utc
    };
    let (mut kept, mut doomed, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for (db, label) in &groups {
        let members: Vec<_> = all
            .iter()
            .filter(|m| &m.database == db && &m.label == label)
            .collect();
        // Snapshots of one second are ordered by the milliseconds of `created`, not by name.
        let items: Vec<Item> = members
            .iter()
            .map(|m| Item {
                name: m.snapshot.clone(),
                time: m.created.timestamp(),
                subsec_millis: m.created.timestamp_subsec_millis(),
            })
            .collect();
        for v in retention::apply(&items, &req.policy, cal, req.now.timestamp()) {
            let m = members
                .iter()
                .find(|m| m.snapshot == v.name)
                .expect("listed");
            if v.reasons.iter().any(|r| r == FUTURE) {
                problems.push(format!(
                    "{} is dated {}, after now ({}): a clock that had jumped ahead; it is kept and \
                     counted by no rule (check it, then remove it by hand)",
                    m.snapshot,
                    m.created.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    req.now.to_rfc3339_opts(SecondsFormat::Secs, true)
                ));
            }
            if v.keep() {
                kept.push(KeptLogical {
                    snapshot: m.snapshot.clone(),
                    database: m.database.clone(),
                    created: m.created,
                    label: m.label.clone(),
                    reasons: v.reasons.clone(),
                });
            } else {
                doomed.push(LogicalRef {
                    snapshot: m.snapshot.clone(),
                    database: m.database.clone(),
                    created: m.created,
                    label: m.label.clone(),
                });
            }
        }
    }
    kept.sort_by(|a, b| b.created.cmp(&a.created).then(b.snapshot.cmp(&a.snapshot)));
    doomed.sort_by(|a, b| a.created.cmp(&b.created).then(a.snapshot.cmp(&b.snapshot)));
    if !req.dry_run {
        let mut gone: Vec<&str> = Vec::new();
        for d in &doomed {
            if let Err(e) = req.place.remove(&d.snapshot) {
                let done = if gone.is_empty() {
                    "none".to_string()
                } else {
                    gone.join(", ")
                };
                return Err(Error::failed(format!("cannot remove {}", d.snapshot))
                    .because(format!("{e}; removed before the failure: {done}"))
                    .hint("nothing else was changed; run again after fixing the cause"));
            }
            gone.push(&d.snapshot);
        }
    }
    // Under the lock (a dry run lists what a real run would remove).
    let leftovers_removed = super::leftovers::remove(&req.place, req.dry_run)?;
    let (snapshot_dir, repository) = req.place.names();
    Ok(LogicalPruneReport {
        kind: super::meta::KIND.into(),
        snapshot_dir,
        repository,
        database: req.database.clone(),
        label: req.label.clone(),
        dry_run: req.dry_run,
        kept,
        destroyed: doomed,
        leftovers_removed,
        problems,
    })
}

/// The place and filters given on the command line.
#[derive(Debug, Default)]
pub struct Given {
    pub snapshot_dir: Option<PathBuf>,
    pub repo: Option<PathBuf>,
    pub database: Option<String>,
    pub label: Option<String>,
}

/// The request from the command line and the document on stdin, if any: a snap-take
/// --logical document names the place and the database; a snap-prune --logical report the
/// place, the filters and whether it was a dry run (then this is one too).
///
/// # Errors
/// Usage errors: no place, two places, a document that is not a logical one.
pub fn request(
    doc: Option<(serde_json::Map<String, serde_json::Value>, String)>,
    given: Given,
    policy: Policy,
    local_time: bool,
    dry_run: bool,
    wait_lock: Option<Duration>,
) -> Result<LogicalPruneRequest> {
    let hint = "pipe in the output of snap-take --logical or snap-prune --logical";
    let (dir, repo, mut database, mut label, upstream_dry_run) = match doc {
        None => (given.snapshot_dir, given.repo, None, None, false),
        Some((map, tool)) => {
            if given.snapshot_dir.is_some() || given.repo.is_some() {
                return Err(Error::usage(
                    "give either - or --snapshot-dir/--repo, not both",
                ));
            }
            if tool == "snap-take" {
                let m: super::meta::LogicalSnapshot =
                    pgdr_core::doc::from_map(map, "snap-take --logical's", hint)?;
                (
                    m.snapshot_dir,
                    m.repository.map(PathBuf::from),
                    Some(m.database),
                    None,
                    false,
                )
            } else {
                let r: LogicalPruneReport =
                    pgdr_core::doc::from_map(map, "snap-prune --logical's", hint)?;
                (
                    r.snapshot_dir,
                    r.repository.map(PathBuf::from),
                    r.database,
                    r.label,
                    r.dry_run,
                )
            }
        }
    };
    if given.database.is_some() {
        database = given.database;
    }
    if given.label.is_some() {
        label = given.label;
    }
    if let Some(l) = &label {
        crate::meta::check_label_arg("--label", l)?;
    }
    let place = match (repo, dir) {
        (Some(r), None) => Place::repo(&r)?,
        (None, Some(d)) => Place::dir(&d)?,
        (None, None) => {
            return Err(Error::usage("no place for logical snapshots")
                .hint("give --snapshot-dir DIR or --repo REPO, or '-' to read snap-take's output"))
        }
        (Some(_), Some(_)) => {
            return Err(Error::usage("--repo and --snapshot-dir exclude each other"))
        }
    };
    Ok(LogicalPruneRequest {
        place,
        database,
        label,
        policy,
        local_time,
        dry_run: dry_run || upstream_dry_run,
        wait_lock,
        now: Utc::now(),
    })
}
