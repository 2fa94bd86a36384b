//! Starting a clone's server as the data directory's owner with the snapshot's major version,
//! watching recovery until it reached the target, and stopping it.
//!
//! The postmaster is started directly (as pg_ctl does: its own session, output to a log
//! file), so a server that dies during recovery is noticed at once. Progress is read over
//! the clone's private socket with the `postgres` client library, as the data directory's
//! owner: no psql binary is needed (the bin directory of another major often has none), and
//! peer authentication works there when nothing else does for root, because a run as root
//! connects from a thread that has taken the owner's uid (Linux credentials are per thread;
//! the server sees the connecting thread's uid through SO_PEERCRED).

use crate::prepare::log_tail;
use pgdr_core::owner::{command_as, User};
use pgdr_core::{Context, Error, Result};
use pgdr_snap::datadir::postmaster_pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// One clone's server.
pub struct Server {
    pub pgdata: PathBuf,
    pub bindir: PathBuf,
    pub owner: User,
    pub socket_dir: PathBuf,
    pub port: u16,
    pub log: PathBuf,
    pub pg_version: u32,
    /// The settings the running server was given on its command line (`-c name=value`).
    options: Vec<(String, String)>,
    child: Option<Child>,
    client: Option<postgres::Client>,
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub in_recovery: bool,
    pub paused: bool,
    pub lsn: Option<String>,
    pub time: Option<String>,
    /// The startup process sleeps because no source has the next WAL (the end of what the
    /// archive and pg_wal hold, in standby mode).
    pub waiting_for_wal: bool,
}

/// How a connection attempt failed.
enum Refusal {
    /// Not accepting connections yet (no socket, starting up): try again.
    NotYet,
    /// The database does not exist: try the next one.
    NoDatabase,
    /// Refused for good (authentication, pg_hba.conf, no such role).
    Refused(String),
}

impl Server {
    pub fn new(
        pgdata: &Path,
        bindir: &Path,
        owner: &User,
        socket_dir: &Path,
        port: u16,
        log: &Path,
        pg_version: u32,
    ) -> Server {
        Server {
            pgdata: pgdata.to_path_buf(),
            bindir: bindir.to_path_buf(),
            owner: owner.clone(),
            socket_dir: socket_dir.to_path_buf(),
            port,
            log: log.to_path_buf(),
            pg_version,
            options: Vec::new(),
            child: None,
            client: None,
        }
    }

    /// Starts the postmaster in its own session, appending to the log, with `options` on its
    /// command line (`-c name=value`: above every configuration file, for this start only).
    pub fn start(&mut self, options: &[(String, String)]) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .context(|| format!("cannot open {}", self.log.display()))?;
        if pgdr_core::owner::is_root() {
            let _ = std::os::unix::fs::fchown(&log, Some(self.owner.uid), Some(self.owner.gid));
        }
        let err = log
            .try_clone()
            .context(|| "cannot duplicate the log file".into())?;
        let mut cmd = command_as(&self.owner, self.bindir.join("postgres"));
        cmd.arg("-D").arg(&self.pgdata);
        for (n, v) in options {
            cmd.arg("-c").arg(format!("{n}={v}"));
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        // SAFETY: setsid is async-signal-safe; it detaches the server from our terminal so
        // a Ctrl-C meant for snap-clone reaches only snap-clone (which then stops it).
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .context(|| format!("cannot start {}", self.bindir.join("postgres").display()))?;
        self.child = Some(child);
        self.options = options.to_vec();
        Ok(())
    }

    /// Rewrites postmaster.opts, the command line `pg_ctl restart` starts the server with
    /// again, without the options of [`Server::start`]: a restart of the clone has the
    /// snapshot's own settings. The postmaster writes the file when it starts
    /// (CreateOptsFile in postmaster.c: the program, then each argument in double quotes) and
    /// never reads it.
    ///
    /// # Errors
    /// The file cannot be read or replaced.
    pub fn forget_start_options(&self) -> Result<()> {
        if self.options.is_empty() {
            return Ok(());
        }
        let path = self.pgdata.join("postmaster.opts");
        let text =
            std::fs::read_to_string(&path).context(|| format!("cannot read {}", path.display()))?;
        let mut kept = text.trim_end_matches('\n').to_string();
        for (n, v) in &self.options {
            kept = kept.replacen(&format!(" \"-c\" \"{n}={v}\""), "", 1);
        }
        kept.push('\n');
        crate::prepare::write_owned(&path, kept.as_bytes(), &self.owner)
    }

    /// Whether the server we started has exited (its status), or is gone.
    pub fn exited(&mut self) -> Option<String> {
        match &mut self.child {
            Some(c) => match c.try_wait() {
                Ok(Some(st)) => Some(st.to_string()),
                Ok(None) => None,
                Err(e) => Some(e.to_string()),
            },
            None => postmaster_pid(&self.pgdata)
                .is_none()
                .then(|| "not running".into()),
        }
    }

    /// The server log's last lines (and the collector's current file, when it has one).
    pub fn log_tail(&self, n: usize) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Ok(cur) = std::fs::read_to_string(self.pgdata.join("current_logfiles")) {
            for l in cur.lines() {
                if let Some((_, f)) = l.split_once(' ') {
                    let p = self.pgdata.join(f.trim());
                    if let Ok(t) = std::fs::read_to_string(p) {
                        text.push_str(&t);
                    }
                }
            }
        }
        log_tail(&text, n)
    }

    /// A connection to the clone as its owner, over its socket.
    fn connect(&self, dbname: &str) -> std::result::Result<postgres::Client, Refusal> {
        let mut config = postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(self.port)
            .user(&self.owner.name)
            .dbname(dbname)
            .application_name("snap-clone")
            .connect_timeout(std::time::Duration::from_secs(5));
        let owner = self.owner.clone();
        let as_owner = pgdr_core::owner::is_root() && owner.uid != 0;
        let attempt = std::thread::spawn(move || {
            if as_owner {
                use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
                // This thread only: it ends once connected.
                let (g, u) = (
                    rustix::fs::Gid::from_raw(owner.gid),
                    rustix::fs::Uid::from_raw(owner.uid),
                );
                set_thread_groups(&[])
                    .and_then(|()| set_thread_res_gid(g, g, g))
                    .and_then(|()| set_thread_res_uid(u, u, u))
                    .map_err(|e| Refusal::Refused(format!("cannot act as {}: {e}", owner.name)))?;
            }
            config.connect(postgres::NoTls).map_err(|e| classify(&e))
        });
        attempt
            .join()
            .unwrap_or_else(|_| Err(Refusal::Refused("the connecting thread panicked".into())))
    }

    /// One look at recovery. Ok(None): not accepting connections yet.
    ///
    /// # Errors
    /// The clone refuses its owner's connection for good, or answers nonsense.
    pub fn probe(&mut self) -> Result<Option<Status>> {
        let paused = if self.pg_version >= 14 {
            "pg_get_wal_replay_pause_state() = 'paused'"
        } else {
            "pg_is_wal_replay_paused()"
        };
        // The startup process's sleep between attempts once no source has the next WAL
        // (RecoveryRetrieveRetryInterval since PostgreSQL 13, RecoveryWalAll before).
        let sql = format!(
            "SELECT pg_is_in_recovery(), \
             CASE WHEN pg_is_in_recovery() THEN {paused} ELSE false END, \
             pg_last_wal_replay_lsn()::text, \
             to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
             EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'startup' \
             AND wait_event IN ('RecoveryRetrieveRetryInterval', 'RecoveryWalAll'))"
        );
        if self.client.is_none() {
            self.client = match self.open_any()? {
                Some(c) => Some(c),
                None => return Ok(None),
            };
        }
        let client = self.client.as_mut().expect("connected");
        match client.query_one(sql.as_str(), &[]) {
            Ok(row) => Ok(Some(Status {
                in_recovery: row.get(0),
                paused: row.get(1),
                lsn: row.get(2),
                time: row.get(3),
                waiting_for_wal: row.get(4),
            })),
            Err(e) if e.as_db_error().is_some() => {
                Err(Error::failed("cannot read the clone's recovery state")
                    .because(pgdr_core::conn::error_text(&e)))
            }
            // The connection went away (a restart, a shutdown): look again later.
            Err(_) => {
                self.client = None;
                Ok(None)
            }
        }
    }

    /// Connects to postgres, else template1; None while the server is not ready yet.
    fn open_any(&self) -> Result<Option<postgres::Client>> {
        for db in ["postgres", "template1"] {
            match self.connect(db) {
                Ok(c) => return Ok(Some(c)),
                Err(Refusal::NotYet) => return Ok(None),
                Err(Refusal::NoDatabase) => continue,
                Err(Refusal::Refused(why)) => {
                    return Err(Error::failed("cannot connect to the clone")
                        .because(why)
                        .hint(
                            "let the data directory's owner connect over the local socket \
                             (peer or trust) to watch recovery, or clone without --start",
                        ))
                }
            }
        }
        Err(Error::failed("cannot connect to the clone")
            .because("it has neither a postgres nor a template1 database"))
    }

    /// A connection of its own to database `dbname` of the running clone, as its owner over
    /// its socket (the restore drill checks every database with one).
    ///
    /// # Errors
    /// The server does not accept connections, refuses the owner, or has no such database.
    pub fn client(&self, dbname: &str) -> Result<postgres::Client> {
        self.connect(dbname).map_err(|r| {
            let why = match r {
                Refusal::NotYet => "it does not accept connections".to_string(),
                Refusal::NoDatabase => "no such database".to_string(),
                Refusal::Refused(why) => why,
            };
            Error::failed(format!(
                "cannot connect to database {dbname:?} of the clone"
            ))
            .because(why)
        })
    }

    /// Runs one statement on the clone (connected by [`Server::probe`]).
    ///
    /// # Errors
    /// Not connected, or the statement failed.
    pub fn execute(&mut self, sql: &str) -> Result<()> {
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| Error::failed("not connected to the clone"))?;
        client.batch_execute(sql).map_err(|e| {
            Error::failed(format!("{sql} failed")).because(pgdr_core::conn::error_text(&e))
        })
    }

    /// Stops the server: fast shutdown when `graceful`, else immediate; waits until it is
    /// gone (SIGKILL after a timeout).
    pub fn stop(&mut self, graceful: bool) {
        self.client = None;
        let pid = postmaster_pid(&self.pgdata).or_else(|| {
            self.child
                .as_ref()
                .map(|c| c.id() as i32)
                .filter(|_| self.exited().is_none())
        });
        let Some(pid) = pid else {
            self.reap();
            return;
        };
        let sig = if graceful {
            libc::SIGINT
        } else {
            libc::SIGQUIT
        };
        // SAFETY: plain kill(2) on the postmaster's pid.
        unsafe { libc::kill(pid, sig) };
        let deadline = Instant::now() + Duration::from_secs(if graceful { 60 } else { 15 });
        while Instant::now() < deadline {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(200));
        }
        self.reap();
        // Backends notice the postmaster's death by themselves; wait for them briefly so the
        // clone's files are no longer open when it is destroyed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && pids_in(&self.pgdata) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn reap(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.try_wait();
        }
    }

    /// Leaves the server running after snap-clone exits.
    pub fn detach(mut self) {
        self.client = None;
        self.child = None;
    }
}

/// Whether a failed connection is worth another try.
fn classify(e: &postgres::Error) -> Refusal {
    use postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        return match db.code() {
            c if *c == SqlState::CANNOT_CONNECT_NOW => Refusal::NotYet,
            c if *c == SqlState::INVALID_CATALOG_NAME => Refusal::NoDatabase,
            _ => Refusal::Refused(pgdr_core::conn::error_text(e)),
        };
    }
    // Closed before the startup packet was answered: the postmaster is terminating its
    // children (a startup process that ended with FATAL); the next look sees it exit.
    if e.is_closed() {
        return Refusal::NotYet;
    }
    // No socket yet, connection refused or reset while it starts: an I/O error underneath.
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.is::<std::io::Error>() {
            return Refusal::NotYet;
        }
        src = s.source();
    }
    Refusal::Refused(e.to_string())
}

fn alive(pid: i32) -> bool {
    // A zombie child of ours still answers kill(0); waitpid reaps it.
    // SAFETY: WNOHANG waitpid on a pid, and kill(0) only checks for existence.
    unsafe {
        let mut st = 0;
        libc::waitpid(pid, &mut st, libc::WNOHANG);
        libc::kill(pid, 0) == 0
    }
}

/// Whether any process still has its working directory in `pgdata` (PostgreSQL processes
/// chdir into the data directory).
fn pids_in(pgdata: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        e.file_name().to_string_lossy().parse::<u32>().is_ok()
            && std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c == pgdata)
    })
}

/// How recovery ended up, once it reached the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// "paused" or "promoted".
    pub state: String,
    pub lsn: Option<String>,
    pub time: Option<String>,
}

/// What recovery must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Paused at the recovery target.
    Paused,
    /// Recovery ended (promoted), at the target or the end of WAL.
    Promoted,
    /// The end of the WAL the archive has (standby mode), then paused there.
    EndOfWal,
}

/// The end of the archive, as the server logged it before stopping with "recovery ended
/// before configured recovery target was reached" (xlogrecovery.c): one readable line
/// instead of the server's FATAL.
pub fn ended_before_target(log: &str, target: &str) -> Option<Error> {
    if !log.contains("recovery ended before configured recovery target was reached") {
        return None;
    }
    let after = |marker: &str| {
        log.lines().rev().find_map(|l| {
            l.find(marker)
                .map(|i| l[i + marker.len()..].trim().to_string())
        })
    };
    let lsn = after("redo done at ").and_then(|s| s.split_whitespace().next().map(str::to_string));
    let xact = after("last completed transaction was at log time ");
    let end = match (lsn, xact) {
        (Some(l), Some(t)) => format!("the archived WAL ends at {l}, its last transaction at {t}"),
        (Some(l), None) => {
            format!("the archived WAL ends at {l}, with no transaction after the snapshot")
        }
        (None, Some(t)) => format!("the archived WAL's last transaction is at {t}"),
        (None, None) => "the archived WAL ends before it".into(),
    };
    Some(
        Error::failed(format!("cannot recover to {target}"))
            .because(format!("{end}; the clone was rolled back"))
            .hint("pick a target at or before that moment, or --recovery-target latest"),
    )
}

/// Waits until recovery reached `goal`. Fails when the server exits, when `wait` runs out,
/// or on SIGINT/SIGTERM.
///
/// # Errors
/// As above; a server that stopped because the archive ends before `target` gets one
/// readable line ([`ended_before_target`]).
pub fn wait_reached(
    server: &mut Server,
    goal: Goal,
    target: &str,
    wait: Option<Duration>,
) -> Result<Reached> {
    let started = Instant::now();
    let mut last: Option<Status> = None;
    let mut pause = Duration::from_millis(20);
    let mut pause_asked = false;
    loop {
        if pgdr_core::signals::interrupted() {
            return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
        }
        if let Some(how) = server.exited() {
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(e) = ended_before_target(&log, target) {
                return Err(e);
            }
            return Err(
                Error::failed("the clone's server stopped during recovery").because(format!(
                    "postgres exited ({how}); server log: {}",
                    server.log_tail(14)
                )),
            );
        }
        let probed = match server.probe() {
            Ok(p) => p,
            // A refusal while the server goes down is the server's end, not the refusal: the
            // startup process logged its FATAL before the postmaster dropped connections.
            Err(e) => {
                let log = std::fs::read_to_string(&server.log).unwrap_or_default();
                return Err(ended_before_target(&log, target).unwrap_or(e));
            }
        };
        if let Some(st) = probed {
            let done = match goal {
                Goal::Promoted => !st.in_recovery,
                Goal::Paused => st.paused || !st.in_recovery,
                Goal::EndOfWal => st.paused,
            };
            if done {
                return Ok(Reached {
                    state: if st.in_recovery { "paused" } else { "promoted" }.into(),
                    lsn: st.lsn,
                    time: st.time,
                });
            }
            if goal == Goal::EndOfWal && st.waiting_for_wal && !pause_asked {
                server.execute("SELECT pg_wal_replay_pause()")?;
                pause_asked = true;
            }
            last = Some(st);
        }
        if let Some(w) = wait {
            if started.elapsed() >= w {
                let at = match &last {
                    Some(s) => format!(
                        "replayed up to {} ({})",
                        s.lsn.as_deref().unwrap_or("?"),
                        s.time.as_deref().unwrap_or("no transaction yet")
                    ),
                    None => "not accepting connections yet".into(),
                };
                return Err(Error::failed(format!(
                    "recovery did not reach the target within {}s",
                    w.as_secs_f64()
                ))
                .because(format!("{at}; server log: {}", server.log_tail(4)))
                .hint("give --wait more time, or pick a snapshot closer to the target"));
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
