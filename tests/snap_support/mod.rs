//! Shared by tests/snap_take.rs and tests/snap_prune.rs: starting a snapshot's clone as a
//! server of its own, and checking it is a consistent database.
#![allow(dead_code)]

use pgdr_testkit::{chown_to_pg_user, free_port, pg_user, run_ok, short_tempdir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn bindir() -> PathBuf {
    pgdr_core::pgbin::bindir(None).unwrap()
}

pub fn as_pg(program: &str) -> Command {
    pgdr_core::owner::command_as(&pg_user(), bindir().join(program))
}

/// A clone started on its own port and socket; stopped on drop.
pub struct Running {
    pub data: PathBuf,
    pub port: u16,
    pub sock: tempfile::TempDir,
    pub log: PathBuf,
}

impl Running {
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.sock.path().display(),
            self.port
        )
    }
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conninfo(), postgres::NoTls).unwrap()
    }
    pub fn value(&self, sql: &str) -> String {
        let rows = self.client().simple_query(sql).unwrap();
        rows.into_iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
                _ => None,
            })
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = as_pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// Makes a clone startable as a server of its own (what snap-clone automates): no pid file,
/// no standby.signal, its own port and socket, no archiving, no primary; with the backup
/// label when the snapshot has one. Then starts it and waits until it accepts connections.
pub fn start_clone(
    data: &Path,
    backup_label: Option<&str>,
    tablespace_map: Option<&str>,
) -> Running {
    for f in [
        "postmaster.pid",
        "postmaster.opts",
        "standby.signal",
        "recovery.signal",
    ] {
        let _ = std::fs::remove_file(data.join(f));
    }
    if let Some(l) = backup_label {
        std::fs::write(data.join("backup_label"), l).unwrap();
    }
    if let Some(m) = tablespace_map {
        std::fs::write(data.join("tablespace_map"), m).unwrap();
    }
    let sock = short_tempdir("pgdr-cl-");
    let port = free_port();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(data.join("postgresql.auto.conf"))
        .unwrap();
    writeln!(
        f,
        "port = {port}\nunix_socket_directories = '{}'\nlisten_addresses = ''\narchive_mode = off\nprimary_conninfo = ''",
        sock.path().display()
    )
    .unwrap();
    let u = pg_user();
    pgdr_core::owner::chown_tree(data, u.uid, u.gid).unwrap();
    let log = sock.path().join("log");
    std::fs::write(&log, "").unwrap();
    chown_to_pg_user(&log);
    let out = as_pg("pg_ctl")
        .arg("-D")
        .arg(data)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "120", "start"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clone did not start: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    Running {
        data: data.to_path_buf(),
        port,
        sock,
        log,
    }
}

/// The consistency checks: the pgbench tables are readable and counted right, and
/// pg_amcheck finds nothing wrong in them (heap and B-tree indexes).
pub fn assert_consistent(r: &Running, scale: i64) {
    assert_eq!(
        r.value("select count(*) from pgbench_accounts"),
        (scale * 100_000).to_string()
    );
    assert_eq!(
        r.value("select count(*) from pgbench_branches"),
        scale.to_string()
    );
    // Every history row refers to an existing account: a torn image would break this less
    // often than amcheck, but it is a real read of the data.
    r.value("select count(*) from pgbench_history h join pgbench_accounts a using (aid)");
    let out = as_pg("pg_amcheck")
        .args(["--install-missing", "-h"])
        .arg(r.sock.path())
        .args([
            "-p",
            &r.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-t",
            "pgbench_*",
            "--heapallindexed",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_amcheck failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pgbench -i` on a cluster.
pub fn pgbench_init(c: &pgdr_testkit::Cluster, scale: i64) {
    run_ok(
        c.cmd("pgbench")
            .args(["-i", "-q", "-s", &scale.to_string(), "-h"])
            .arg(&c.sockdir)
            .args(["-p", &c.port.to_string(), "-U", "postgres", "postgres"]),
    );
}

/// pgbench writing to the primary in the background for `secs` seconds.
pub fn pgbench_load(c: &pgdr_testkit::Cluster, secs: u32) -> Child {
    c.cmd("pgbench")
        .args(["-n", "-c", "2", "-T", &secs.to_string(), "-h"])
        .arg(&c.sockdir)
        .args(["-p", &c.port.to_string(), "-U", "postgres", "postgres"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
