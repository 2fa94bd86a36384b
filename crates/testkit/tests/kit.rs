//! The test kit's own tests: each part starts and stops the real thing.

use pgdr_testkit::{skip_unless, BtrfsMount, Cluster, ZfsPool};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

#[test]
fn cluster_starts_answers_and_is_removed() {
    let root;
    {
        let c = Cluster::builder().conf("work_mem = '7MB'").start();
        root = c.root.path().to_path_buf();
        assert_eq!(c.query_value("select 1 + 1").as_deref(), Some("2"));
        assert_eq!(c.query_value("show work_mem").as_deref(), Some("7MB"));
        // Owned by the postgres OS user when we are root: PostgreSQL refuses root.
        let owner = std::fs::metadata(&c.data).unwrap().uid();
        assert_eq!(owner, pgdr_testkit::pg_user().uid);
        assert!(c.is_running());
        assert!(c.sockdir.join(format!(".s.PGSQL.{}", c.port)).exists());
        // TCP too.
        postgres::Client::connect(&c.tcp_conninfo(), postgres::NoTls).unwrap();
    }
    assert!(!root.exists(), "cluster directory left behind");
}

#[test]
fn cluster_is_stopped_after_a_panic() {
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let c = Cluster::start();
        tx.send((c.data.clone(), c.bindir.clone())).unwrap();
        panic!("test failure inside a test");
    })
    .join();
    assert!(r.is_err());
    let (data, _) = rx.recv().unwrap();
    assert!(!data.exists(), "data directory left after panic");
}

#[test]
fn streaming_standby_replays_primary_writes() {
    let p = Cluster::start();
    let s = p.standby();
    assert_eq!(
        s.query_value("select pg_is_in_recovery()").as_deref(),
        Some("t")
    );
    p.execute("create table t(x int); insert into t select generate_series(1,10)");
    s.wait_for(
        "select exists(select 1 from pg_class where relname = 't')",
        Duration::from_secs(30),
    );
    s.wait_for("select count(*) = 10 from t", Duration::from_secs(30));
    p.wait_for(
        "select count(*) = 1 from pg_stat_replication where state = 'streaming'",
        Duration::from_secs(30),
    );
}

#[test]
fn zfs_pool_dataset_snapshot() {
    let pool = skip_unless!(ZfsPool::create("512M"));
    let mnt = pool.create_dataset("pgdata");
    std::fs::write(mnt.join("f"), "x").unwrap();
    let ds = pool.dataset("pgdata");
    let out = std::process::Command::new("zfs")
        .args(["snapshot", &format!("{ds}@s1")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("zfs")
        .args(["get", "-H", "-p", "-o", "value", "mountpoint", &ds])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        mnt.to_str().unwrap()
    );
    let name = pool.name.clone();
    drop(pool);
    let out = std::process::Command::new("zpool")
        .args(["list", &name])
        .output()
        .unwrap();
    assert!(!out.status.success(), "pool {name} left behind");
}

#[test]
fn cluster_on_zfs_dataset() {
    let pool = skip_unless!(ZfsPool::create("1G"));
    let mnt = pool.create_dataset("pg");
    let c = Cluster::builder().data_dir(mnt.join("data")).start();
    assert_eq!(c.query_value("select 42").as_deref(), Some("42"));
    drop(c);
}

#[test]
fn btrfs_mount_and_subvolume() {
    let m = skip_unless!(BtrfsMount::create("300M"));
    let sv = m.subvolume("pg");
    std::fs::write(sv.join("f"), "x").unwrap();
    let out = std::process::Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(&sv)
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = m.path.clone();
    drop(m);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(path.to_str().unwrap()),
        "btrfs left mounted"
    );
}

#[test]
fn a_major_that_is_not_installed_is_unavailable_and_says_how_to_get_it() {
    let u = Cluster::with_major(11).unwrap_err();
    assert!(
        u.0.contains("no PostgreSQL 11 server") && u.0.contains("make deps"),
        "{u}"
    );
}

#[test]
fn with_major_starts_that_major_and_its_standby_streams() {
    let p = skip_unless!(Cluster::with_major(13)).start();
    assert_eq!(p.major(), 13);
    assert_eq!(
        p.query_value("select current_setting('server_version_num')::int / 10000")
            .as_deref(),
        Some("13")
    );
    // 13's npm package has no pg_basebackup: the standby is made with 18's.
    let s = p.standby();
    s.wait_for(
        "select status = 'streaming' from pg_stat_wal_receiver",
        Duration::from_secs(60),
    );
}
