//! snap-take --logical: pg_dump in directory format with N jobs from one snapshot this run
//! exports and holds itself, so the moment of the dump is known (its clock_timestamp() and
//! WAL position); every file is stored compressed with its SHA-256 in a snapshot directory
//! or a repository while pg_dump writes it, and the snapshot published all at once under the
//! lock of the place.
//!
//! A failed or interrupted run (SIGINT/SIGTERM, pg_dump failing, the server restarting in
//! the middle) leaves nothing that looks like a snapshot: the staging directory or the
//! uploaded files are removed. A run killed with SIGKILL leaves a hidden staging directory,
//! pg_dump's scratch copy or files without a manifest, which the next snap-take --logical or
//! snap-prune --logical removes ([`super::leftovers`]).

use super::meta::{LogicalSnapshot, KIND};
use super::place::{read_all, Place, Upload};
use super::tools;
use chrono::{DateTime, SubsecRound, Utc};
use pgdr_core::conn::ConnParams;
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::Lsn;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What snap-take --logical was asked for.
#[derive(Debug, Clone, Default)]
pub struct LogicalRequest {
    /// -d: the database to dump.
    pub dsn: Option<String>,
    /// --table patterns (pg_dump's, matched with --strict-names: each must match).
    pub tables: Vec<String>,
    /// --exclude-table patterns.
    pub exclude_tables: Vec<String>,
    /// pg_dump's --jobs.
    pub jobs: u32,
    /// --to REPO.
    pub to: Option<PathBuf>,
    /// --snapshot-dir DIR.
    pub snapshot_dir: Option<PathBuf>,
    pub label: Option<String>,
    /// --pg-bin: where pg_dump is.
    pub pg_bin: Option<PathBuf>,
    pub wait_lock: Option<Duration>,
}

/// What the server says about itself.
struct Server {
    version: String,
    major: u32,
    database: String,
    in_recovery: bool,
    system_identifier: Option<String>,
    wal_segment_size: Option<u64>,
}

fn failed(e: &postgres::Error) -> Error {
    Error::failed("cannot read the server's settings").because(pgdr_core::conn::error_text(e))
}

fn ask(client: &mut postgres::Client) -> Result<Server> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version'), \
             current_database()::text, pg_is_in_recovery()",
            &[],
        )
        .map_err(|e| failed(&e))?;
    let num: i32 = row.get(0);
    // A role without EXECUTE on pg_control_system() (a managed service) still dumps; the
    // snapshot then says it does not know the system.
    let sysid = client
        .query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .ok()
        .map(|r| r.get::<_, String>(0));
    let seg = client
        .query_one(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'",
            &[],
        )
        .ok()
        .map(|r| r.get::<_, i64>(0) as u64);
    Ok(Server {
        version: row.get(1),
        major: (num / 10000) as u32,
        database: row.get(2),
        in_recovery: row.get(3),
        system_identifier: sysid,
        wal_segment_size: seg,
    })
}

/// The transaction holding the dump's snapshot: REPEATABLE READ, its snapshot exported for
/// pg_dump --snapshot, open until pg_dump is done.
struct Exported {
    client: postgres::Client,
    id: String,
    at: DateTime<Utc>,
    lsn: Lsn,
}

fn export(params: &ConnParams, in_recovery: bool) -> Result<Exported> {
    let mut client = params.connect()?;
    let fail = |e: postgres::Error| {
        Error::failed("cannot export a snapshot for pg_dump")
            .because(pgdr_core::conn::error_text(&e))
    };
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .map_err(fail)?;
    // The snapshot is taken when this statement starts; clock_timestamp() is read after
    // that, so every transaction visible in the dump committed before `at`.
    let lsn_fn = if in_recovery {
        "pg_last_wal_replay_lsn()"
    } else {
        "pg_current_wal_lsn()"
    };
    let row = client
        .query_one(
            &format!(
                "SELECT pg_export_snapshot(), \
                 to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
                 coalesce({lsn_fn}, '0/0')::text"
            ),
            &[],
        )
        .map_err(fail)?;
    let at: String = row.get(1);
    let lsn: String = row.get(2);
    Ok(Exported {
        id: row.get(0),
        at: at
            .parse()
            .map_err(|e| Error::failed("cannot read the snapshot's time").because(e))?,
        lsn: lsn
            .parse()
            .map_err(|e| Error::failed("cannot read the snapshot's WAL position").because(e))?,
        client,
    })
}

/// The conninfo pg_dump gets (the password goes through its environment, never argv).
pub fn child_conninfo(params: &ConnParams) -> (String, Option<String>) {
    let mut p = params.clone();
    let pw = p.get("password").map(str::to_string);
    p.remove("password");
    p.remove("passfile");
    (p.to_string(), pw)
}

/// pg_dump's arguments.
fn pg_dump_args(req: &LogicalRequest, snapshot: &str, out: &Path, conninfo: &str) -> Vec<String> {
    let mut a = vec![
        "--format=directory".to_string(),
        // pgdr compresses every file itself (zstd, as the repository stores WAL): faster
        // than pg_dump's gzip, and smaller.
        "--compress=0".into(),
        format!("--jobs={}", req.jobs.max(1)),
        format!("--snapshot={snapshot}"),
        // Its output is scratch: pgdr syncs what it stores.
        "--no-sync".into(),
        format!("--file={}", out.display()),
    ];
    if !req.tables.is_empty() {
        a.push("--strict-names".into());
    }
    a.extend(req.tables.iter().map(|t| format!("--table={t}")));
    a.extend(
        req.exclude_tables
            .iter()
            .map(|t| format!("--exclude-table={t}")),
    );
    a.push(format!("--dbname={conninfo}"));
    a
}

/// Runs a client program (in its own process group, so its parallel workers can be stopped
/// together), polling for SIGINT/SIGTERM; its stderr's last lines on failure. It gets
/// SIGTERM when this thread dies (killed with SIGKILL too), so a pg_dump does not go on
/// writing a scratch copy nobody reads; and umask 077, so what it writes is its user's only.
///
/// # Errors
/// It cannot start, fails (its last error line), or the run was interrupted (it is killed).
pub fn run_program(mut cmd: Command, what: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe
    // system calls (umask, prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            // The parent died before the signal was asked for: nobody would send it.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("the parent process exited"));
            }
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child: Child = cmd.spawn().context(|| format!("cannot run {program}"))?;
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if pgdr_core::signals::interrupted() {
            kill_group(&child);
            let _ = child.wait();
            return Err(Error::failed("interrupted")
                .because(format!("SIGINT or SIGTERM arrived during {what}")));
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e).context(|| format!("cannot wait for {program}")),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(Error::failed(format!("{what} failed")).because(last_error(&stderr, &status.to_string())))
}

/// The line that says what went wrong in a client program's stderr (its "error:" line, with
/// the server's DETAIL), else its last line.
pub fn last_error(stderr: &str, status: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .position(|l| l.contains("error:") || l.contains("ERROR:") || l.contains("FATAL:"));
    match pick {
        Some(i) => {
            let mut s = lines[i].to_string();
            if let Some(d) = lines.get(i + 1).filter(|l| l.starts_with("DETAIL:")) {
                s.push_str("; ");
                s.push_str(d);
            }
            s
        }
        None => lines
            .last()
            .map_or_else(|| format!("it exited with {status}"), |l| (*l).to_string()),
    }
}

fn kill_group(child: &Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
    }
}

/// The time and name of a new snapshot here, as snap-take names physical ones (whole
/// seconds; milliseconds when that second is taken).
fn free_name(place: &Place, label: Option<&str>) -> Result<(DateTime<Utc>, String)> {
    let at = Utc::now().trunc_subsecs(3);
    let whole = crate::meta::snapshot_name(at, label, false);
    if !place.occupied(&whole)? {
        return Ok((at, whole));
    }
    let mut t = at;
    for _ in 0..1000 {
        t += chrono::Duration::milliseconds(1);
        let n = crate::meta::snapshot_name(t, label, true);
        if !place.occupied(&n)? {
            return Ok((t, n));
        }
    }
    Err(
        Error::failed(format!("cannot name a snapshot in {}", place.describe()))
            .because(format!("{whole} and the thousand names after it are taken")),
    )
}

/// The place a request names.
///
/// # Errors
/// Neither or both of --to and --snapshot-dir (usage), or the repository cannot be opened.
pub fn place_of(to: Option<&Path>, dir: Option<&Path>) -> Result<Place> {
    match (to, dir) {
        (Some(r), None) => Place::repo(r),
        (None, Some(d)) => Place::dir(d),
        (None, None) => Err(Error::usage("no place for the logical snapshot")
            .hint("pass --snapshot-dir DIR or --to REPO")),
        (Some(_), Some(_)) => Err(Error::usage("--to and --snapshot-dir exclude each other")),
    }
}

/// Checks that a repository may hold dumps of this server: bound to its system (binding an
/// unbound one).
fn check_repo(place: &mut Place, server: &Server) -> Result<u64> {
    let sysid: Option<u64> = server
        .system_identifier
        .as_deref()
        .and_then(|s| s.parse().ok());
    let Place::Repo(repo, loc) = place else {
        return Ok(sysid.unwrap_or(0));
    };
    let Some(sysid) = sysid else {
        return Err(Error::failed(format!("cannot store a dump in repository {loc}"))
            .because("this role may not read the server's system identifier (pg_control_system()), so it cannot be matched with the repository's")
            .hint("dump into --snapshot-dir DIR, or grant EXECUTE on pg_control_system()"));
    };
    match repo.identity() {
        Some(id) if id.system_identifier != sysid => Err(Error::failed(format!(
            "cannot store a dump in repository {loc}"
        ))
        .because(format!(
            "it holds database system {}, the server is {sysid}",
            id.system_identifier
        ))
        .hint("use the repository of this cluster")),
        Some(_) => Ok(sysid),
        None => {
            let size = server.wal_segment_size.unwrap_or(16 << 20);
            repo.bind(
                pgdr_repo::repo::Identity {
                    system_identifier: sysid,
                    wal_segment_size: size,
                },
                "snap-take --logical",
            )?;
            Ok(sysid)
        }
    }
}

/// Takes a logical snapshot.
///
/// # Errors
/// Usage errors; the server cannot be reached or is of a major pgdr does not know; no
/// pg_dump of a sufficient major; the lock is held (exit 75); pg_dump failed (a pattern that
/// matches no table, no privilege, the server restarting); storing failed. Nothing that
/// looks like a snapshot is left behind.
pub fn run(req: &LogicalRequest) -> Result<LogicalSnapshot> {
    let started = Instant::now();
    if let Some(l) = &req.label {
        crate::meta::check_label_arg("--label", l)?;
    }
    if req.jobs == 0 {
        return Err(Error::usage("invalid --jobs 0").because("pg_dump needs at least one job"));
    }
    let mut place = place_of(req.to.as_deref(), req.snapshot_dir.as_deref())?;
    let params = ConnParams::resolve(req.dsn.as_deref())?;
    let mut client = params.connect()?;
    let server = ask(&mut client)?;
    drop(client);
    if !(12..=18).contains(&server.major) {
        return Err(
            Error::failed(format!("cannot dump PostgreSQL {}", server.version))
                .because("pgdr knows PostgreSQL 12 to 18"),
        );
    }
    let pg_dump = tools::find(
        "pg_dump",
        server.major,
        &format!("a server of PostgreSQL {}", server.version),
        req.pg_bin.as_deref(),
    )?;
    let sysid = check_repo(&mut place, &server)?;
    let _lock = place.lock(req.wait_lock, true)?;
    // Under the lock no other run is dumping here: what killed runs left goes before this
    // dump needs the space.
    let removed = super::leftovers::remove(&place, false)?;
    let (created, name) = free_name(&place, req.label.as_deref())?;
    pgdr_core::signals::set_cooperative(true);
    let r = (|| -> Result<LogicalSnapshot> {
        let upload = Upload::begin(&place, &name, sysid)?;
        let scratch = upload.scratch()?;
        let out = scratch.path().join("dump");
        let exported = export(&params, server.in_recovery)?;
        let (conninfo, password) = child_conninfo(&params);
        let mut cmd = Command::new(&pg_dump.path);
        cmd.args(pg_dump_args(req, &exported.id, &out, &conninfo));
        if let Some(pw) = password {
            cmd.env("PGPASSWORD", pw);
        }
        let files = dump_and_store(cmd, &out, &upload, req.jobs.max(1) as usize)?;
        // The snapshot can go: everything is read.
        let _ = exported.client.close();
        let toc = super::toc::parse(&read_all(&out.join("toc.dat"))?).map_err(|e| {
            Error::failed("pg_dump's output cannot be read").because(format!("toc.dat: {e}"))
        })?;
        drop(scratch);
        let (snapshot_dir, repository) = place.names();
        let mut tables: Vec<String> = toc
            .tables()
            .into_iter()
            .map(|(s, t)| format!("{s}.{t}"))
            .collect();
        tables.sort();
        let meta = LogicalSnapshot {
            snapshot: name.clone(),
            kind: KIND.into(),
            created,
            label: req.label.clone(),
            database: server.database.clone(),
            tables,
            table_patterns: req.tables.clone(),
            exclude_table_patterns: req.exclude_tables.clone(),
            server_version: server.version.clone(),
            pg_version: server.major,
            system_identifier: server.system_identifier.clone(),
            from_standby: server.in_recovery,
            consistent_at: exported.at,
            lsn: exported.lsn,
            pg_dump: pg_dump.clone(),
            jobs: req.jobs,
            snapshot_dir,
            repository,
            location: place.location(&name),
            bytes: files.iter().map(|f| f.bytes).sum(),
            stored_bytes: files.iter().map(|f| f.stored_bytes).sum(),
            files,
            seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            tool_version: pgdr_core::VERSION.into(),
            removed_leftovers: Vec::new(),
        };
        if pgdr_core::signals::interrupted() {
            return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
        }
        upload.publish(&meta)?;
        // Reported by this run only, not stored with the snapshot.
        Ok(LogicalSnapshot {
            removed_leftovers: removed,
            ..meta
        })
    })();
    pgdr_core::signals::set_cooperative(false);
    r.map_err(|e| {
        let why = e.why.clone().map_or(String::new(), |w| format!("{w}; "));
        Error {
            why: Some(format!("{why}no snapshot was stored")),
            ..e
        }
    })
}

/// A file pg_dump is still writing, read as it grows: at its end, more is waited for until
/// pg_dump has exited (`done`); `failed` stops the reading.
struct Follow<'a> {
    file: std::fs::File,
    done: &'a AtomicBool,
    failed: &'a AtomicBool,
}

impl Read for Follow<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.failed.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("pg_dump did not finish"));
            }
            // Read `done` before the file: once pg_dump has exited, an empty read is the end.
            let finished = self.done.load(Ordering::SeqCst);
            let n = self.file.read(buf)?;
            if n > 0 || finished {
                return Ok(n);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs pg_dump and stores its files while it writes them (`jobs` at a time, each followed
/// as it grows, removed from the scratch directory once stored), so compressing and
/// checksumming overlap the dump instead of following it.
fn dump_and_store(
    cmd: Command,
    dir: &Path,
    upload: &Upload<'_>,
    jobs: usize,
) -> Result<Vec<super::meta::DumpedFile>> {
    let done = AtomicBool::new(false);
    let failed = AtomicBool::new(false);
    let queue: Mutex<(Vec<String>, bool)> = Mutex::new((Vec::new(), false));
    let results = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let dumped = std::thread::scope(|s| {
        // Finds pg_dump's files as they appear; the queue's flag says no more will.
        s.spawn(|| {
            let mut seen: HashSet<String> = HashSet::new();
            loop {
                let last = done.load(Ordering::SeqCst);
                let mut new: Vec<String> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !seen.contains(n))
                    .collect();
                new.sort();
                seen.extend(new.iter().cloned());
                let mut q = queue.lock().unwrap();
                q.0.extend(new);
                if last || failed.load(Ordering::SeqCst) {
                    q.1 = true;
                    return;
                }
                drop(q);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        for _ in 0..jobs {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let next = {
                    let mut q = queue.lock().unwrap();
                    match q.0.pop() {
                        Some(n) => Some(n),
                        None if q.1 => return,
                        None => None,
                    }
                };
                let Some(name) = next else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let path = dir.join(&name);
                let stored = std::fs::File::open(&path)
                    .context(|| format!("cannot read {}", path.display()))
                    .and_then(|file| {
                        let mut f = Follow {
                            file,
                            done: &done,
                            failed: &failed,
                        };
                        upload.store(&name, &path, &mut f)
                    });
                match stored {
                    Ok(f) => {
                        // toc.dat stays: the snapshot's table list is read from it.
                        if name != "toc.dat" {
                            let _ = std::fs::remove_file(&path);
                        }
                        results.lock().unwrap().push(f);
                    }
                    Err(e) => {
                        if !failed.swap(true, Ordering::SeqCst) {
                            first_error.lock().unwrap().get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
        let r = run_program(cmd, "pg_dump");
        if r.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        done.store(true, Ordering::SeqCst);
        r
    });
    dumped?;
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    if pgdr_core::signals::interrupted() {
        return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
    }
    let mut out = results.into_inner().unwrap();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_dump_gets_no_password_and_strict_patterns() {
        let p = ConnParams::parse("host=/tmp port=5 user=u dbname=app password=sekret").unwrap();
        let (ci, pw) = child_conninfo(&p);
        assert!(!ci.contains("sekret") && ci.contains("dbname=app"), "{ci}");
        assert_eq!(pw.as_deref(), Some("sekret"));
        let req = LogicalRequest {
            tables: vec!["public.job_*".into()],
            exclude_tables: vec!["public.job_tmp".into()],
            jobs: 4,
            ..Default::default()
        };
        let a = pg_dump_args(&req, "00000003-1", Path::new("/s/dump"), &ci);
        assert!(a.contains(&"--strict-names".to_string()));
        assert!(a.contains(&"--table=public.job_*".to_string()));
        assert!(a.contains(&"--exclude-table=public.job_tmp".to_string()));
        assert!(a.contains(&"--jobs=4".to_string()));
        assert!(a.contains(&"--snapshot=00000003-1".to_string()));
        assert!(a.iter().all(|x| !x.contains("sekret")));
    }

    #[test]
    fn the_error_line_of_a_client_program_is_found() {
        let err = "pg_dump: error: no matching tables were found for pattern \"x\"\n";
        assert_eq!(
            last_error(err, "exit status: 1"),
            "pg_dump: error: no matching tables were found for pattern \"x\""
        );
        let q = "pg_dump: error: query failed: ERROR:  permission denied for table t\npg_dump: detail: Query was: LOCK TABLE\n";
        assert!(last_error(q, "1").contains("permission denied"));
        assert_eq!(
            last_error("", "exit status: 1"),
            "it exited with exit status: 1"
        );
    }
}
