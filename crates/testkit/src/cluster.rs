//! A throwaway PostgreSQL cluster: initdb as the `postgres` OS user when root, a free port,
//! its socket in a short temporary directory, stopped and removed on drop.

use crate::majors::{program_path, server_bindir};
use crate::{chown_to_pg_user, free_port, pg_user, run_ok, short_tempdir, Unavailable};
use pgdr_core::owner::{command_as, User};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Creates an empty data directory with the mode PostgreSQL insists on, owned by the pg user.
fn make_data_dir(data: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if !data.exists() {
        std::fs::create_dir_all(data).unwrap();
    }
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown_to_pg_user(data);
}

/// Builds a [`Cluster`].
#[derive(Debug, Clone, Default)]
pub struct ClusterBuilder {
    conf: Vec<String>,
    hba: Vec<String>,
    initdb_args: Vec<String>,
    data_dir: Option<PathBuf>,
    bindir: Option<PathBuf>,
    start: bool,
}

impl ClusterBuilder {
    /// A line appended to postgresql.conf before the first start.
    pub fn conf(mut self, line: impl Into<String>) -> Self {
        self.conf.push(line.into());
        self
    }
    /// A line put at the top of pg_hba.conf before the first start.
    pub fn hba(mut self, line: impl Into<String>) -> Self {
        self.hba.push(line.into());
        self
    }
    pub fn initdb_arg(mut self, arg: impl Into<String>) -> Self {
        self.initdb_args.push(arg.into());
        self
    }
    /// Put the data directory here (it must not exist or be empty; e.g. on a ZFS dataset).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
    /// Create the cluster but do not start it.
    pub fn init_only(mut self) -> Cluster {
        self.start = false;
        Cluster::create(self)
    }
    /// Create and start the cluster.
    pub fn start(mut self) -> Cluster {
        self.start = true;
        Cluster::create(self)
    }
}

/// A running (or stopped) throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Holds the socket directory, the log and (by default) the data directory.
    pub root: tempfile::TempDir,
    pub data: PathBuf,
    pub sockdir: PathBuf,
    pub port: u16,
    /// The server binaries (initdb, pg_ctl, postgres) of this cluster's major.
    pub bindir: PathBuf,
    pub owner: User,
    pub log: PathBuf,
}

impl Cluster {
    /// A builder for a cluster of the newest distribution server (PostgreSQL 15 here).
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// A builder for a cluster of PostgreSQL `major` (13 to 18; see [`crate::majors`]), for
    /// `skip_unless!(Cluster::with_major(17)).start()`.
    ///
    /// # Errors
    /// [`Unavailable`] when no server of that major is installed (`make deps` installs them).
    pub fn with_major(major: u32) -> Result<ClusterBuilder, Unavailable> {
        Ok(ClusterBuilder {
            bindir: Some(server_bindir(major)?),
            ..ClusterBuilder::default()
        })
    }

    /// A started cluster with default settings (wal_level=replica, archive off).
    pub fn start() -> Cluster {
        Self::builder().start()
    }

    fn create(b: ClusterBuilder) -> Cluster {
        let root = short_tempdir("pgdr-");
        let sockdir = root.path().join("s");
        std::fs::create_dir(&sockdir).unwrap();
        chown_to_pg_user(&sockdir);
        let data = b
            .data_dir
            .clone()
            .unwrap_or_else(|| root.path().join("data"));
        make_data_dir(&data);
        let bindir = match &b.bindir {
            Some(d) => d.clone(),
            None => pgdr_core::pgbin::bindir(None).expect("PostgreSQL server binaries"),
        };
        let owner = pg_user();
        let log = root.path().join("log");
        std::fs::write(&log, "").unwrap();
        chown_to_pg_user(&log);
        let c = Cluster {
            root,
            data,
            sockdir,
            port: 0,
            bindir,
            owner,
            log,
        };
        let mut initdb = c.cmd("initdb");
        initdb
            .args(["-D"])
            .arg(&c.data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .args(&b.initdb_args);
        run_ok(&mut initdb);
        let mut c = c;
        c.port = free_port();
        let mut conf = format!(
            "\n# pgdr-testkit\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n\
             shared_buffers = 16MB\nlogging_collector = off\n",
            c.port,
            c.sockdir.display()
        );
        for l in &b.conf {
            conf.push_str(l);
            conf.push('\n');
        }
        c.append_conf(&conf);
        if !b.hba.is_empty() {
            let hba_path = c.data.join("pg_hba.conf");
            let old = std::fs::read_to_string(&hba_path).unwrap();
            let mut new = b.hba.join("\n");
            new.push('\n');
            new.push_str(&old);
            std::fs::write(&hba_path, new).unwrap();
        }
        if b.start {
            c.start_server();
        }
        c
    }

    /// The major version of the data directory (its PG_VERSION).
    pub fn major(&self) -> u32 {
        let text = std::fs::read_to_string(self.data.join("PG_VERSION")).expect("PG_VERSION");
        pgdr_pgformat::version::parse_pg_version(&text).expect("a known major")
    }

    /// A command for a PostgreSQL program, run as the cluster's owner: the server's own, else
    /// the newest client's (pg_basebackup, psql, pgbench of 18 for a server packaged without
    /// them; [`crate::majors::program_path`]).
    pub fn cmd(&self, program: &str) -> Command {
        command_as(&self.owner, program_path(&self.bindir, program))
    }

    /// Appends text to postgresql.conf.
    pub fn append_conf(&self, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// `pg_ctl start -w`, retrying on a new port if another process took ours meanwhile.
    pub fn start_server(&mut self) {
        for attempt in 0..3 {
            let out = self
                .cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "start"])
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if attempt < 2 && log.contains("could not bind") {
                self.port = free_port();
                self.append_conf(&format!("port = {}\n", self.port));
                continue;
            }
            panic!(
                "pg_ctl start failed: {}\n{}\nlog:\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "fast", "stop"])
            .output();
    }

    pub fn restart(&mut self) {
        self.stop();
        self.start_server();
    }

    /// Whether the postmaster is running.
    pub fn is_running(&self) -> bool {
        self.cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("status")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// A libpq conninfo string for the superuser over the socket.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.sockdir.display(),
            self.port
        )
    }

    /// A conninfo over TCP on 127.0.0.1.
    pub fn tcp_conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conninfo(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to test cluster: {e}"))
    }

    /// Runs SQL statements (no results).
    pub fn execute(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {}", pgdr_core::conn::error_text(&e)));
    }

    /// The first column of the first row as text (`NULL` as None).
    pub fn query_value(&self, sql: &str) -> Option<String> {
        let rows = self
            .client()
            .simple_query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {}", pgdr_core::conn::error_text(&e)));
        rows.into_iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })?
    }

    /// The server log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A streaming standby of this (running) primary: `pg_basebackup -X stream -R` (of 18 when
    /// the server package has none), started.
    pub fn standby(&self) -> Cluster {
        self.standby_in(None)
    }

    /// Like [`Cluster::standby`], with the data directory at `dir` (e.g. on a ZFS dataset).
    pub fn standby_in(&self, dir: Option<&Path>) -> Cluster {
        let root = short_tempdir("pgdr-");
        let sockdir = root.path().join("s");
        std::fs::create_dir(&sockdir).unwrap();
        chown_to_pg_user(&sockdir);
        let data = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.path().join("data"));
        make_data_dir(&data);
        let log = root.path().join("log");
        std::fs::write(&log, "").unwrap();
        chown_to_pg_user(&log);
        let mut s = Cluster {
            root,
            data,
            sockdir,
            port: free_port(),
            bindir: self.bindir.clone(),
            owner: self.owner.clone(),
            log,
        };
        let conninfo = format!("{} application_name=standby", self.conninfo());
        run_ok(
            s.cmd("pg_basebackup")
                .arg("-D")
                .arg(&s.data)
                .args(["-X", "stream", "-R", "-c", "fast", "-d"])
                .arg(&conninfo),
        );
        if !self.bindir.join("pg_basebackup").is_file() {
            // A newer pg_basebackup's -R spells out every option of its own libpq
            // (sslnegotiation is 17+, gssdelegation 16+); an older server's walreceiver
            // refuses options it does not know. The last setting in the file wins.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(s.data.join("postgresql.auto.conf"))
                .unwrap();
            writeln!(f, "primary_conninfo = '{conninfo}'").unwrap();
        }
        s.append_conf(&format!(
            "\n# pgdr-testkit standby\nport = {}\nunix_socket_directories = '{}'\n",
            s.port,
            s.sockdir.display()
        ));
        s.start_server();
        s
    }

    /// Waits until `sql` returns `t`, panicking after `timeout`.
    pub fn wait_for(&self, sql: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.query_value(sql).as_deref() == Some("t") {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for: {sql}\nlog:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate: nothing in a throwaway cluster needs a clean shutdown.
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// A client of a server listening on `socket_dir` and `port` as `postgres` (a clone that
/// snap-clone started: its document's socket_dir and port).
pub fn connect_at(socket_dir: &std::path::Path, port: u16) -> postgres::Client {
    let conn = format!(
        "host={} port={port} user=postgres dbname=postgres",
        socket_dir.display()
    );
    postgres::Client::connect(&conn, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to {conn}: {e}"))
}
