//! Shared by the wal-archive tests: the binary, a repository made with `init`, a primary
//! archiving into it, segments of real clusters.
#![allow(dead_code)]

use pgdr_testkit::{chown_to_pg_user, short_tempdir, tool, Cluster};
use pgdr_wal::doc::{ListReport, Timeline};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const T: &str = "wal-archive";

pub fn bin() -> PathBuf {
    pgdr_testkit::bin_dir().join(T)
}

pub fn wa(repo: &Path) -> pgdr_testkit::ToolCommand {
    tool(T).arg("--repo").arg(repo)
}

/// `wal-archive init --repo R [--pgdata DIR]`, checked.
pub fn init(repo: &Path, pgdata: Option<&Path>) -> pgdr_wal::doc::InitReport {
    let mut c = wa(repo).arg("init");
    if let Some(p) = pgdata {
        c = c.arg("--pgdata").arg(p);
    }
    c.run().ok().document()
}

/// A primary archiving into `repo` with wal-archive; the repository is made by `init
/// --pgdata` before the server starts (so it belongs to the server's OS user).
pub fn archiving_primary(repo: &Path, extra: &str) -> Cluster {
    let mut c = Cluster::builder()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} push %p --repo {}{extra}'",
            bin().display(),
            repo.display()
        ))
        .conf("archive_timeout = 0")
        .init_only();
    let r = init(repo, Some(&c.data));
    assert!(r.created && r.system_identifier.is_some(), "{r:?}");
    c.start_server();
    c
}

pub fn wait_archived(c: &Cluster, name: &str) {
    c.wait_for(
        &format!("select coalesce(last_archived_wal >= '{name}', false) from pg_stat_archiver"),
        Duration::from_secs(120),
    );
}

/// Switches WAL and waits until the switched-from segment is archived; returns its name.
pub fn switch_and_wait(c: &Cluster) -> String {
    let name = c
        .query_value("select pg_walfile_name(pg_switch_wal())")
        .unwrap();
    wait_archived(c, &name);
    name
}

/// Segments of a short-lived cluster, copied out of pg_wal: (dir holding pg_wal/, names).
pub fn make_segments(n: usize) -> (tempfile::TempDir, Vec<String>) {
    let c = Cluster::start();
    let mut names = Vec::new();
    c.execute("create table x as select generate_series(1, 20000) g");
    for _ in 0..n {
        names.push(
            c.query_value("select pg_walfile_name(pg_switch_wal())")
                .unwrap(),
        );
        c.execute("insert into x select generate_series(1, 1000)");
    }
    let out = short_tempdir("pgdr-seg");
    let wal = out.path().join("pg_wal");
    fs::create_dir(&wal).unwrap();
    for n in &names {
        fs::copy(c.data.join("pg_wal").join(n), wal.join(n)).unwrap();
    }
    (out, names)
}

/// Marks every segment of a [`make_segments`] directory ready for archiving, as PostgreSQL
/// does (`pg_wal/archive_status/NAME.ready`), for `push --parallel`; returns that directory.
pub fn mark_ready(wal: &Path, names: &[String]) -> PathBuf {
    let status = wal.join("archive_status");
    fs::create_dir(&status).unwrap();
    for n in names {
        fs::write(status.join(format!("{n}.ready")), "").unwrap();
    }
    status
}

pub fn sha(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// Timeline `tli` of a list report.
pub fn timeline(l: &ListReport, tli: u32) -> Timeline {
    l.timelines
        .iter()
        .find(|t| t.timeline == tli)
        .cloned()
        .unwrap_or_else(|| panic!("no timeline {tli} in {l:?}"))
}

/// Whether any line of a server log is one of wal-archive's JSON documents.
pub fn log_has_document(log: &str) -> bool {
    log.lines()
        .any(|l| l.trim_start().starts_with('{') && l.contains("\"tool\":\"wal-archive\""))
}

/// A stopped copy of a base backup directory as a startable Cluster.
pub fn cluster_from(backup: &Path, primary: &Cluster, conf: &str) -> Cluster {
    let root = short_tempdir("pgdr-r");
    let data = root.path().join("data");
    let sockdir = root.path().join("s");
    fs::create_dir(&sockdir).unwrap();
    chown_to_pg_user(&sockdir);
    let st = Command::new("cp")
        .arg("-a")
        .arg(backup)
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    let log = root.path().join("log");
    fs::write(&log, "").unwrap();
    chown_to_pg_user(&log);
    let c = Cluster {
        root,
        data,
        sockdir,
        port: pgdr_testkit::free_port(),
        bindir: primary.bindir.clone(),
        owner: primary.owner.clone(),
        log,
    };
    c.append_conf(&format!(
        "\nport = {}\nunix_socket_directories = '{}'\n{conf}\n",
        c.port,
        c.sockdir.display()
    ));
    c
}

/// [`cluster_from`] recovering through `restore_command` to the end of the archive, on the
/// newest timeline, archiving nothing itself.
pub fn recovering_cluster(backup: &Path, primary: &Cluster, restore_command: &str) -> Cluster {
    let c = cluster_from(
        backup,
        primary,
        &format!(
            "archive_mode = off\nrestore_command = '{restore_command}'\n\
             recovery_target_timeline = 'latest'"
        ),
    );
    fs::write(c.data.join("recovery.signal"), "").unwrap();
    chown_to_pg_user(&c.data.join("recovery.signal"));
    c
}

/// The PITR scenario's end (tests/wal_archive.rs, tests/wal_archive_s3.rs): `restored`,
/// recovering to the restore point 'drill', pauses there (within `wait`) holding the 100
/// rows of `t` written before it, none written after, and pgbench's 200,000 accounts.
pub fn paused_at_the_restore_point(restored: &Cluster, wait: Duration) {
    restored.wait_for("select pg_get_wal_replay_pause_state() = 'paused'", wait);
    assert_eq!(
        restored.query_value("select count(*) from t").as_deref(),
        Some("100")
    );
    assert_eq!(
        restored
            .query_value("select count(*) from t where note = 'after'")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        restored
            .query_value("select count(*) from pgbench_accounts")
            .as_deref(),
        Some("200000")
    );
}
