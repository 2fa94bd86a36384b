//! Starting a clone's server as the data directory's owner with the snapshot's major version,
//! watching recovery until it reached the target, and stopping it.
//!
//! The postmaster is started directly (as pg_ctl does: its own session, output to a log
//! file), so a server that dies during recovery is noticed at once. Progress is read with
//! psql run as the owner over the clone's private socket (peer authentication works there
//! when nothing else does for root).

use crate::prepare::log_tail;
use pgdr_core::owner::{command_as, User};
use pgdr_core::{Context, Error, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// One clone's server.
#[derive(Debug)]
pub struct Server {
    pub pgdata: PathBuf,
    pub bindir: PathBuf,
    pub owner: User,
    pub socket_dir: PathBuf,
    pub port: u16,
    pub log: PathBuf,
    pub pg_version: u32,
    child: Option<Child>,
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub in_recovery: bool,
    pub paused: bool,
    pub lsn: Option<String>,
    pub time: Option<String>,
}

/// Whether the postmaster recorded in `pgdata/postmaster.pid` is alive, and its pid.
pub fn running_pid(pgdata: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    (rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)).then_some(pid)
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
            child: None,
        }
    }

    /// Starts the postmaster in its own session, appending to the log.
    pub fn start(&mut self) -> Result<()> {
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
        cmd.arg("-D")
            .arg(&self.pgdata)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
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
        Ok(())
    }

    /// Whether the server we started has exited (its status), or is gone.
    pub fn exited(&mut self) -> Option<String> {
        match &mut self.child {
            Some(c) => match c.try_wait() {
                Ok(Some(st)) => Some(st.to_string()),
                Ok(None) => None,
                Err(e) => Some(e.to_string()),
            },
            None => running_pid(&self.pgdata)
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

    /// One look at recovery. Ok(None): not accepting connections yet.
    pub fn probe(&self) -> Result<Option<Status>> {
        let paused = if self.pg_version >= 14 {
            "pg_get_wal_replay_pause_state() = 'paused'"
        } else {
            "pg_is_wal_replay_paused()"
        };
        let sql = format!(
            "SELECT pg_is_in_recovery(), \
             CASE WHEN pg_is_in_recovery() THEN {paused} ELSE false END, \
             pg_last_wal_replay_lsn(), \
             to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        );
        let mut last = String::new();
        for db in ["postgres", "template1"] {
            let out = command_as(&self.owner, self.bindir.join("psql"))
                .args(["-X", "-A", "-t", "-q", "-w", "-F", "|", "-h"])
                .arg(&self.socket_dir)
                .arg("-p")
                .arg(self.port.to_string())
                .arg("-U")
                .arg(&self.owner.name)
                .arg("-d")
                .arg(db)
                .arg("-c")
                .arg(&sql)
                .env("PGCONNECT_TIMEOUT", "5")
                .env_remove("PGSERVICE")
                .env_remove("PGOPTIONS")
                .stdin(Stdio::null())
                .output()
                .context(|| format!("cannot run {}", self.bindir.join("psql").display()))?;
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                let f: Vec<&str> = text.trim().split('|').collect();
                if f.len() < 4 {
                    return Err(Error::failed("cannot read the clone's recovery state")
                        .because(format!("psql printed {:?}", text.trim())));
                }
                let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
                return Ok(Some(Status {
                    in_recovery: f[0] == "t",
                    paused: f[1] == "t",
                    lsn: opt(f[2]),
                    time: opt(f[3]),
                }));
            }
            last = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if !(last.contains("database \"postgres\" does not exist")) {
                break;
            }
        }
        // Refused for good (authentication, pg_hba.conf, no such role), as opposed to
        // "starting up" / "not yet accepting connections" / no socket yet.
        let transient = [
            "starting up",
            "not yet accepting",
            "not accepting connections",
            "shutting down",
            "in recovery mode",
        ];
        let refused = last.contains("fe_sendauth")
            || (last.contains("FATAL") && !transient.iter().any(|t| last.contains(t)));
        if refused {
            return Err(Error::failed("cannot connect to the clone")
                .because(last)
                .hint(
                    "let the data directory's owner connect over the local socket (peer or trust) \
                 to watch recovery, or clone without --start",
                ));
        }
        Ok(None)
    }

    /// Stops the server: fast shutdown when `graceful`, else immediate; waits until it is
    /// gone (SIGKILL after a timeout).
    pub fn stop(&mut self, graceful: bool) {
        let pid = running_pid(&self.pgdata).or_else(|| {
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
        self.child = None;
    }
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

/// Waits until recovery paused at the target (pause) or ended (promote). Fails when the
/// server exits, when `wait` runs out, or on SIGINT/SIGTERM.
pub fn wait_reached(server: &mut Server, promote: bool, wait: Option<Duration>) -> Result<Reached> {
    let started = Instant::now();
    let mut last: Option<Status> = None;
    let mut pause = Duration::from_millis(20);
    loop {
        if pgdr_core::signals::interrupted() {
            return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
        }
        if let Some(how) = server.exited() {
            return Err(
                Error::failed("the clone's server stopped during recovery").because(format!(
                    "postgres exited ({how}); server log: {}",
                    server.log_tail(14)
                )),
            );
        }
        if let Some(st) = server.probe()? {
            let done = if promote {
                !st.in_recovery
            } else {
                st.paused || !st.in_recovery
            };
            if done {
                return Ok(Reached {
                    state: if st.in_recovery { "paused" } else { "promoted" }.into(),
                    lsn: st.lsn,
                    time: st.time,
                });
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
