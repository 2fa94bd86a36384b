//! `wal-archive check`: a running primary archives into the repository, end to end (the
//! settings, the cluster, the archiver's state, and a forced WAL switch arriving in it).
//! An archive_command that pushes into several repositories (`push %p --repo A && push %p
//! --repo B`) has each of them checked: opened, of the server's cluster, holding the segment.

use crate::doc::{ArchiverState, CheckProblem, CheckReport, CommandRepo};
use chrono::{DateTime, Utc};
use pgdr_core::conn::{self, ConnParams};
use pgdr_core::{Error, Result};
use pgdr_pgformat::wal_name::WalName;
use pgdr_repo::repo::{self, Repo};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to check against.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The primary (a conninfo); `None`: the PG* environment, as libpq.
    pub dbname: Option<String>,
    /// How long to wait for the switched segment to arrive.
    pub timeout: Duration,
}

/// The findings so far.
#[derive(Default)]
struct Findings {
    problems: Vec<CheckProblem>,
    warnings: Vec<CheckProblem>,
}

impl Findings {
    fn problem(&mut self, code: &str, message: impl Into<String>) {
        self.problems.push(CheckProblem {
            code: code.into(),
            message: message.into(),
        });
    }
    fn warning(&mut self, code: &str, message: impl Into<String>) {
        self.warnings.push(CheckProblem {
            code: code.into(),
            message: message.into(),
        });
    }
}

/// One row of a query, as text (NULL: `None`).
fn row(
    client: &mut postgres::Client,
    sql: &str,
) -> std::result::Result<Vec<Option<String>>, String> {
    let msgs = client.simple_query(sql).map_err(|e| conn::error_text(&e))?;
    let r = msgs
        .into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .ok_or("no row")?;
    Ok((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
}

/// Checks the primary `o.dbname` against the repository at `location`.
///
/// # Errors
/// Not an initialised repository; the server cannot be reached; the server is a standby
/// (exit 1: check its primary). Everything else is a problem in the report.
pub fn check(location: &Path, o: &CheckOptions) -> Result<CheckReport> {
    let repo = Repo::open(location)?;
    let params = ConnParams::resolve(o.dbname.as_deref())?;
    let mut client = params.connect()?;
    let server = params.describe();
    let recovery = row(&mut client, "select pg_is_in_recovery()::text")
        .map_err(|why| Error::failed(format!("cannot check {server}")).because(why))?;
    if recovery.first().cloned().flatten().as_deref() == Some("true") {
        return Err(Error::failed(format!("cannot check {server}"))
            .because("it is a standby (in recovery): check archives what a primary writes")
            .hint("run wal-archive check with -d naming the primary"));
    }
    let mut f = Findings::default();
    let settings = row(
        &mut client,
        "select current_setting('archive_mode'), current_setting('archive_command'), \
         current_setting('archive_library', true), \
         (select system_identifier::text from pg_control_system())",
    );
    let (mode, command, library, sysid) = match settings {
        Ok(v) => (v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone()),
        Err(why) => {
            f.problem(
                "settings_unreadable",
                format!("cannot read the archive settings: {why}"),
            );
            (None, None, None, None)
        }
    };
    if let Some(m) = &mode {
        if m == "off" {
            f.problem(
                "archive_mode_off",
                "archive_mode is off: nothing is archived (set it to on and restart the server)",
            );
        }
    }
    let library = library.filter(|l| !l.is_empty());
    if let Some(l) = &library {
        f.problem(
            "archive_library_set",
            format!(
                "archive_library is {l:?}: the server archives through it, not archive_command"
            ),
        );
    }
    let (target, named) = command.as_deref().map_or((None, Vec::new()), |c| {
        command_target(c, location, &repo.location(), &mut f)
    });
    let repo_sysid = repo.identity().map(|i| i.system_identifier.to_string());
    compare_sysid(&sysid, &repo_sysid, &mut f);

    // The switch: a transaction id makes sure there is WAL to switch away from.
    let started = Instant::now();
    let switched = row(&mut client, "select txid_current()").and_then(|_| {
        row(&mut client, "select pg_walfile_name(pg_switch_wal())")?
            .first()
            .cloned()
            .flatten()
            .ok_or_else(|| "no segment name".to_string())
    });
    let mut arrived = false;
    let mut archiver = read_archiver(&mut client);
    match &switched {
        Err(why) => f.problem("switch_failed", format!("cannot force a WAL switch: {why}")),
        Ok(name) => {
            let (a, state) = wait_for(&repo, &mut client, name, o.timeout)?;
            arrived = a;
            archiver = state.or(archiver);
            if !arrived {
                let archived_elsewhere = archiver
                    .as_ref()
                    .and_then(|s| s.last_archived_wal.as_deref())
                    .is_some_and(|l| archived_past(l, name));
                if archived_elsewhere {
                    f.problem(
                        "segment_elsewhere",
                        format!("the server archived {name} (pg_stat_archiver) but it is not in {}: archive_command stores it elsewhere", repo.location()),
                    );
                } else {
                    f.problem(
                        "segment_not_arrived",
                        format!(
                            "{name} did not arrive in {} within {} s of the switch",
                            repo.location(),
                            o.timeout.as_secs_f64()
                        ),
                    );
                }
            }
        }
    }
    let waited = started.elapsed().as_secs_f64();
    if let Ok(name) = &switched {
        history_archived(&repo, name, &mut f);
    }
    if let Some(a) = archiver.as_ref().filter(|a| a.failing) {
        f.problem(
            "archiver_failing",
            format!(
                "the archiver failed on {} at {} and has not succeeded since (see the server log)",
                a.last_failed_wal.as_deref().unwrap_or("?"),
                a.last_failed_time.map_or("?".to_string(), |t| t
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            ),
        );
    }
    // A repository bound by this very switch's push.
    let repo_sysid = match repo_sysid {
        None => {
            let now = Repo::open(location)
                .ok()
                .and_then(|r| r.identity())
                .map(|i| i.system_identifier.to_string());
            match &now {
                Some(_) => compare_sysid(&sysid, &now, &mut f),
                None => f.warning(
                    "repository_unbound",
                    "the repository is bound to no cluster yet (the first push binds it)",
                ),
            }
            now
        }
        some => some,
    };
    let server_archived = switched.as_ref().ok().is_some_and(|name| {
        archiver
            .as_ref()
            .and_then(|s| s.last_archived_wal.as_deref())
            .is_some_and(|l| archived_past(l, name))
    });
    let command_repos = named
        .iter()
        .map(|n| {
            if same_location(n, location) {
                return CommandRepo {
                    repo: n.clone(),
                    given: true,
                    system_identifier: repo_sysid.clone(),
                    arrived,
                };
            }
            let expected = (arrived || server_archived)
                .then(|| switched.as_deref().ok())
                .flatten();
            other_repo(n, &sysid, switched.as_deref().ok(), expected, &mut f)
        })
        .collect();
    Ok(CheckReport {
        repo: repo.location(),
        server,
        ok: f.problems.is_empty(),
        problems: f.problems,
        warnings: f.warnings,
        server_system_identifier: sysid,
        repo_system_identifier: repo_sysid,
        archive_mode: mode,
        archive_command: command.as_deref().map(mask_secrets),
        archive_library: library,
        command_repo: target,
        command_repos,
        archiver,
        switched_segment: switched.ok(),
        arrived,
        waited_seconds: waited,
    })
}

/// A server past timeline 1 needs its timeline's history in the repository: PostgreSQL finds
/// timelines by their history files, so without it a recovery from the repository ignores
/// this server's WAL and ends on the old timeline (the history is archived only when
/// archiving was on at the promotion). Unknown when it cannot be read (no identity).
fn history_archived(repo: &Repo, segment: &str, f: &mut Findings) {
    let Some(tli) = WalName::parse(segment)
        .map(|w| w.timeline)
        .filter(|t| *t > 1)
    else {
        return;
    };
    let name = WalName::parse(&format!("{tli:08X}.history")).expect("a history name");
    let mut sink = Vec::new();
    if let Err(pgdr_repo::file::RestoreError::Missing) =
        pgdr_repo::file::restore(repo, &name, &mut sink)
    {
        f.problem(
            "history_missing",
            format!(
                "the server is on timeline {tli} but {name} is not in {}: a recovery from it \
                 cannot follow timeline {tli} and would end on an older one (push it: \
                 wal-archive push PGDATA/pg_wal/{name} --repo {})",
                repo.location(),
                repo.location()
            ),
        );
    }
}

/// Another repository archive_command pushes into (`named`), checked: it opens, holds the
/// WAL of the server's cluster (`server`), and has `segment` (a problem when it lacks the
/// `expected` one: a segment the checked repository got or the server counted archived).
fn other_repo(
    named: &str,
    server: &Option<String>,
    segment: Option<&str>,
    expected: Option<&str>,
    f: &mut Findings,
) -> CommandRepo {
    let mut found = CommandRepo {
        repo: named.to_string(),
        given: false,
        system_identifier: None,
        arrived: false,
    };
    let unreadable = |f: &mut Findings, e: Error| {
        f.problem(
            "command_repo_unreadable",
            format!("archive_command also pushes into {named}, which cannot be read: {e}"),
        );
    };
    let repo = match Repo::open(Path::new(named)) {
        Ok(r) => r,
        Err(e) => {
            unreadable(f, e);
            return found;
        }
    };
    found.system_identifier = repo.identity().map(|i| i.system_identifier.to_string());
    if let (Some(s), Some(r)) = (server, &found.system_identifier) {
        if s != r {
            f.problem(
                "command_repo_system_identifier_mismatch",
                format!("archive_command also pushes into {named}, which holds WAL of {r}, the server's system identifier is {s}: another cluster's repository"),
            );
        }
    }
    let Some(w) = segment.and_then(WalName::parse) else {
        return found;
    };
    match repo.store().head(&repo::key_of(&w)) {
        Ok(o) => found.arrived = o.is_some(),
        Err(e) => {
            unreadable(f, e);
            return found;
        }
    }
    if let Some(name) = expected.filter(|_| !found.arrived) {
        f.problem(
            "command_repo_segment_missing",
            format!("archive_command also pushes into {named}, and {name} is not in it"),
        );
    }
    found
}

fn compare_sysid(server: &Option<String>, repo: &Option<String>, f: &mut Findings) {
    if let (Some(s), Some(r)) = (server, repo) {
        if s != r {
            f.problem(
                "system_identifier_mismatch",
                format!("the server's system identifier is {s}, the repository holds WAL of {r}: another cluster's repository"),
            );
        }
    }
}

/// Waits up to `timeout` for `name` to be in the repository; stops early when the server
/// says it archived it and the repository still lacks it (archived elsewhere).
fn wait_for(
    repo: &Repo,
    client: &mut postgres::Client,
    name: &str,
    timeout: Duration,
) -> Result<(bool, Option<ArchiverState>)> {
    let w = WalName::parse(name).ok_or_else(|| {
        Error::failed("unexpected answer from the server")
            .because(format!("pg_walfile_name gave {name:?}"))
    })?;
    let key = repo::key_of(&w);
    let deadline = Instant::now() + timeout;
    loop {
        // Read the archiver first: if it archived the segment and the repository lacks it
        // after that, it went elsewhere.
        let state = read_archiver(client);
        if repo.store().head(&key)?.is_some() {
            return Ok((true, settled(client, name, state)));
        }
        let server_done = state
            .as_ref()
            .and_then(|s| s.last_archived_wal.as_deref())
            .is_some_and(|l| archived_past(l, name));
        if server_done || Instant::now() >= deadline {
            return Ok((false, state));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The archiver's state once it reports `name` archived: push publishes the segment before
/// the server counts the success, so a reading taken in between still shows the failures
/// before it. Waits up to 10 seconds for the server's statistics to catch up.
fn settled(
    client: &mut postgres::Client,
    name: &str,
    mut state: Option<ArchiverState>,
) -> Option<ArchiverState> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = state
            .as_ref()
            .and_then(|s| s.last_archived_wal.as_deref())
            .is_some_and(|l| archived_past(l, name));
        if done || Instant::now() >= deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(100));
        state = read_archiver(client).or(state);
    }
}

/// Whether the archiver's last archived file `last` shows that segment `name` was archived
/// (a later segment, or the segment itself; not its .backup or .partial file).
fn archived_past(last: &str, name: &str) -> bool {
    last == name || last.get(..24).is_some_and(|seg| seg > name)
}

fn read_archiver(client: &mut postgres::Client) -> Option<ArchiverState> {
    let v = row(
        client,
        "select archived_count::text, last_archived_wal, \
         extract(epoch from last_archived_time)::text, failed_count::text, last_failed_wal, \
         extract(epoch from last_failed_time)::text, \
         coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)::text \
         from pg_stat_archiver",
    )
    .ok()?;
    let time = |i: usize| {
        let secs: f64 = v[i].as_deref()?.parse().ok()?;
        DateTime::<Utc>::from_timestamp_micros((secs * 1e6).round() as i64)
    };
    let count = |i: usize| v[i].as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
    Some(ArchiverState {
        archived_count: count(0),
        last_archived_wal: v[1].clone(),
        last_archived_time: time(2),
        failed_count: count(3),
        last_failed_wal: v[4].clone(),
        last_failed_time: time(5),
        failing: v[6].as_deref() == Some("true"),
    })
}

/// Where `archive_command` sends WAL, checked against the repository; returns the
/// repository it names (the checked one when it is among them, else the first) and every
/// repository its pushes name, in order, each once.
fn command_target(
    command: &str,
    location: &Path,
    shown: &str,
    f: &mut Findings,
) -> (Option<String>, Vec<String>) {
    if command.trim().is_empty() {
        f.problem(
            "archive_command_empty",
            "archive_command is empty: the server archives nothing and keeps every segment",
        );
        return (None, Vec::new());
    }
    let pushes = find_pushes(command);
    let mut named: Vec<String> = Vec::new();
    for r in pushes.iter().filter_map(|p| p.repo.clone()) {
        if !named.iter().any(|n| n == &r) {
            named.push(r);
        }
    }
    let Some(p) = pushes.first() else {
        f.problem(
            "archive_command_not_wal_archive",
            format!(
                "archive_command does not run 'wal-archive push': {}",
                mask_secrets(command)
            ),
        );
        return (None, named);
    };
    if pushes.iter().any(|p| p.hidden) {
        f.problem(
            "archive_command_hides_failures",
            format!(
                "archive_command can succeed when a 'wal-archive push' in it failed (a ';', '&' or '||' follows it, or it is piped): PostgreSQL would take the segment for archived and recycle it; join the pushes with && and pipe none: {}",
                mask_secrets(command)
            ),
        );
    }
    if named.is_empty() {
        let config = p
            .config
            .as_deref()
            .unwrap_or(pgdr_core::config::DEFAULT_PATH);
        let gives = match config_repo(Path::new(config)) {
            Some(r) if same_location(&r, location) => format!("; {config} here gives {r}"),
            Some(r) => format!("; {config} here gives {r}, not {shown}"),
            None => String::new(),
        };
        f.warning(
            "repo_not_named",
            format!("archive_command names no repository: the server's environment (WAL_ARCHIVE_REPO, PGDR_REPO) or configuration file ({config}, unless the server sets PGDR_CONFIG) decides{gives}; the forced switch shows where it went"),
        );
        return (None, named);
    }
    let unnamed = pushes.iter().filter(|p| p.repo.is_none()).count();
    if unnamed > 0 {
        f.warning(
            "repo_not_named",
            format!(
                "{unnamed} of the {} 'wal-archive push' in archive_command name no repository: the server's environment (WAL_ARCHIVE_REPO, PGDR_REPO) or configuration file decides where those go, and check reads only {}",
                pushes.len(),
                named.join(" and ")
            ),
        );
    }
    let target = match named.iter().find(|n| same_location(n, location)) {
        Some(n) => n.clone(),
        None => {
            f.problem(
                "archive_command_other_repo",
                format!(
                    "archive_command pushes into {}, not {shown}",
                    named.join(" and ")
                ),
            );
            named[0].clone()
        }
    };
    (Some(target), named)
}

/// The repository a configuration file gives `wal-archive push` (the most specific of
/// `[wal-archive.push]`, `[wal-archive]`, `[global]`), when this host can read it.
fn config_repo(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let file = pgdr_core::config::file::parse(path, &text).ok()?;
    let in_section = |want: &[&str]| {
        file.sections
            .iter()
            .filter(|s| s.path == want)
            .flat_map(|s| &s.entries)
            .filter(|e| e.option() == "repo")
            .find_map(|e| e.value.word())
    };
    in_section(&["wal-archive", "push"])
        .or_else(|| in_section(&["wal-archive"]))
        .or_else(|| in_section(&[pgdr_core::config::file::GLOBAL]))
}

/// A `wal-archive push` found in an archive_command.
#[derive(Debug, Default, PartialEq)]
struct Push {
    /// --repo, else WAL_ARCHIVE_REPO, else PGDR_REPO set before the program.
    repo: Option<String>,
    /// PGDR_CONFIG set before the program.
    config: Option<String>,
    /// Whether the command's exit status can be another's when this push fails: it is piped
    /// into a command, or a `;`, `&` or `||` follows it (sh(1): the last pipeline's status is
    /// the list's), so PostgreSQL would take a failed push for an archived segment.
    hidden: bool,
}

/// Every simple command of `command` that runs a program named `wal-archive` with `push`,
/// in order, and the repository each names.
fn find_pushes(command: &str) -> Vec<Push> {
    let mut found = Vec::new();
    let list = pgdr_core::examples::shell_list(command);
    for (i, (words, ops)) in list.iter().enumerate() {
        let Some(at) = words
            .iter()
            .position(|w| Path::new(w).file_name().and_then(|n| n.to_str()) == Some("wal-archive"))
        else {
            continue;
        };
        let args = &words[at + 1..];
        if !args.iter().any(|a| a == "push") {
            continue;
        }
        let assigned = |name: &str| {
            words[..at]
                .iter()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let flag = args.iter().enumerate().find_map(|(i, a)| match a.as_str() {
            "--repo" => args.get(i + 1).cloned(),
            _ => a.strip_prefix("--repo=").map(str::to_string),
        });
        let piped = ops.first() == Some(&"|");
        let later = list[i..]
            .iter()
            .flat_map(|(_, ops)| ops)
            .any(|op| matches!(*op, ";" | "&" | "||"));
        found.push(Push {
            repo: flag
                .or_else(|| assigned("WAL_ARCHIVE_REPO"))
                .or_else(|| assigned("PGDR_REPO")),
            config: assigned(pgdr_core::config::ENV),
            hidden: piped || later,
        });
    }
    found
}

/// Whether two repository locations are the same: S3 URLs by text (without a trailing
/// `/`), directories by their canonical path.
fn same_location(named: &str, location: &Path) -> bool {
    let loc = location.to_string_lossy();
    if named.starts_with("s3://") || loc.starts_with("s3://") {
        return named.trim_end_matches('/') == loc.trim_end_matches('/');
    }
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    canon(Path::new(named)) == canon(location)
}

/// `archive_command` with the values of secret-looking variables masked.
fn mask_secrets(command: &str) -> String {
    command
        .split(' ')
        .map(|w| match w.split_once('=') {
            Some((name, _))
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && ["KEY", "SECRET", "TOKEN", "PASSWORD"]
                        .iter()
                        .any(|s| name.to_ascii_uppercase().contains(s)) =>
            {
                format!("{name}={}", conn::MASK)
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_push(command: &str) -> Option<Push> {
        find_pushes(command).into_iter().next()
    }

    #[test]
    fn the_repository_of_an_archive_command() {
        let p = find_push("/usr/bin/wal-archive push %p --repo /arch").unwrap();
        assert_eq!(p.repo.as_deref(), Some("/arch"));
        let p = find_push("test ! -f x && wal-archive push --repo='/a b' %p").unwrap();
        assert_eq!(p.repo.as_deref(), Some("/a b"));
        let p = find_push("WAL_ARCHIVE_REPO=s3://b/p AWS_REGION=x wal-archive push %p").unwrap();
        assert_eq!(p.repo.as_deref(), Some("s3://b/p"));
        let p = find_push("PGDR_CONFIG=/etc/x.toml wal-archive push %p").unwrap();
        assert_eq!(
            p,
            Push {
                repo: None,
                config: Some("/etc/x.toml".into()),
                hidden: false,
            }
        );
        assert_eq!(find_push("cp %p /mnt/%f"), None);
        assert_eq!(find_push("wal-archive list --repo /x"), None);
        // Every push of a compound command, in order.
        let all = find_pushes(
            "wal-archive push %p --repo /a && AWS_REGION=x WAL_ARCHIVE_REPO=s3://b/p wal-archive push %p",
        );
        let repos: Vec<_> = all.iter().map(|p| p.repo.as_deref()).collect();
        assert_eq!(repos, [Some("/a"), Some("s3://b/p")]);
    }

    /// A compound command whose pushes name some repositories and not others: where the
    /// unnamed ones go is the server's environment's say, which check cannot read.
    #[test]
    fn a_push_naming_no_repository_beside_others_is_a_warning() {
        let codes = |command: &str| {
            let mut f = Findings {
                problems: Vec::new(),
                warnings: Vec::new(),
            };
            let (target, named) = command_target(command, Path::new("/a"), "/a", &mut f);
            let w: Vec<String> = f.warnings.iter().map(|w| w.code.clone()).collect();
            (target, named, w, f.problems.len())
        };
        let (target, named, w, p) = codes("wal-archive push %p --repo /a && wal-archive push %p");
        assert_eq!(
            (target.as_deref(), named, p),
            (Some("/a"), vec!["/a".to_string()], 0)
        );
        assert_eq!(w, ["repo_not_named"]);
        let (_, _, w, _) = codes("wal-archive push %p --repo /a && wal-archive push %p --repo /b");
        assert!(w.is_empty(), "{w:?}");
    }

    /// A push whose failure the command's exit status may not carry (sh(1): a list's status
    /// is its last pipeline's, a pipeline's its last command's).
    #[test]
    fn a_push_whose_failure_the_command_can_hide() {
        let hidden = |c: &str| -> Vec<bool> { find_pushes(c).iter().map(|p| p.hidden).collect() };
        assert_eq!(hidden("wal-archive push %p --repo /a"), [false]);
        assert_eq!(
            hidden("wal-archive push %p --repo /a && wal-archive push %p --repo /b"),
            [false, false]
        );
        assert_eq!(
            hidden("wal-archive push %p --repo /a ; wal-archive push %p --repo /b"),
            [true, false]
        );
        assert_eq!(
            hidden("wal-archive push %p --repo /a || wal-archive push %p --repo /b"),
            [true, false]
        );
        assert_eq!(
            hidden("wal-archive push %p --repo /a & wal-archive push %p --repo /b"),
            [true, false]
        );
        assert_eq!(hidden("wal-archive push %p --repo /a | logger"), [true]);
        assert_eq!(hidden("wal-archive push %p --repo /a; exit 0"), [true]);
        assert_eq!(
            hidden("wal-archive push %p --repo /a 2>&1 && echo ok | logger"),
            [false]
        );
        assert_eq!(
            hidden("cd /x; test ! -f y && wal-archive push %p --repo '/a;b'"),
            [false]
        );
        assert_eq!(
            hidden("(wal-archive push %p --repo /a; true) && wal-archive push %p --repo /b"),
            [true, false]
        );
    }

    #[test]
    fn secrets_are_masked() {
        let m = mask_secrets(
            "AWS_ACCESS_KEY_ID=abc AWS_SECRET_ACCESS_KEY=s3cr3t AWS_REGION=eu wal-archive push %p",
        );
        assert!(!m.contains("s3cr3t") && !m.contains("abc"), "{m}");
        assert!(m.contains("AWS_REGION=eu"), "{m}");
    }

    #[test]
    fn locations_compare_canonically() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("r");
        std::fs::create_dir(&r).unwrap();
        let dotted = format!("{}/./r/", d.path().display());
        assert!(same_location(&dotted, &r));
        assert!(!same_location("/elsewhere", &r));
        assert!(same_location("s3://b/p/", Path::new("s3://b/p")));
        assert!(!same_location("s3://b/q", Path::new("s3://b/p")));
    }
}
