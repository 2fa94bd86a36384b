//! Logical snapshots and single-table restore (issue 16) on real PostgreSQL servers: the
//! schema of the issue (foreign keys, sequences, a partitioned and a TOAST-heavy table, an
//! index and a trigger per table) dumped whole and in part with 2 jobs into a snapshot
//! directory and a repository; one table restored into a database that has a table of that
//! name (renamed, fail, replace); a table restored from a physical snapshot to a time between
//! two batches; retention; failures that leave nothing behind; every major 13 to 18 with
//! pg_dump 18. (Over 600 lines: one file per feature, as the other tools' tests are.)

mod logical_support;

use logical_support::*;
use pgdr_clone::tables::doc::RestoreReport;
use pgdr_snap::logical::list::LogicalList;
use pgdr_snap::logical::meta::LogicalSnapshot;
use pgdr_snap::logical::place::Place;
use pgdr_snap::logical::prune::LogicalPruneReport;
use pgdr_testkit::{short_tempdir, skip_unless, tool, Cluster};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Every entry of a snapshot directory, hidden ones too.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Entries other than the lock file.
fn snapshots(dir: &Path) -> Vec<String> {
    entries(dir).into_iter().filter(|e| e != ".lock").collect()
}

fn take(c: &Cluster, db: &str, dir: &Path, extra: &[&str]) -> LogicalSnapshot {
    snap_take()
        .args(["--logical", "-d", &conninfo(c, db), "--snapshot-dir"])
        .arg(dir)
        .args(extra)
        .run()
        .ok()
        .document::<LogicalSnapshot>()
}

fn restore(
    c: &Cluster,
    registry: &Path,
    snap: &str,
    dir: &Path,
    into: &str,
    extra: &[&str],
) -> pgdr_testkit::ToolOutput {
    snap_clone(registry)
        .args(["--snapshot", snap, "--snapshot-dir"])
        .arg(dir)
        .args(["--into", &conninfo(c, into)])
        .args(extra)
        .run()
}

/// A logical snapshot of the whole database and one of two tables with 2 jobs: consistent at
/// a known moment, every file stored compressed with the SHA-256 the manifest lists; a
/// pattern that matches no table fails and stores nothing.
#[test]
fn logical_snapshots_of_a_database_and_of_two_tables() {
    let c = Cluster::start();
    app(&c, "app");
    let d = short_tempdir("pgdr-lg");
    let dir = d.path().join("snaps");
    let before = value(&c, "app", "select clock_timestamp()");
    let all = take(&c, "app", &dir, &["--jobs", "2", "--label", "nightly"]);
    let after = value(&c, "app", "select clock_timestamp()");
    assert_eq!(all.kind, "logical");
    assert_eq!(all.database, "app");
    assert_eq!(all.label.as_deref(), Some("nightly"));
    assert!(all.snapshot.starts_with("pgdr-") && all.snapshot.ends_with("Z-nightly"));
    assert_eq!(
        all.tables,
        [
            "public.customers",
            "public.documents",
            "public.events",
            "public.events_2024",
            "public.events_2025",
            "public.job_info"
        ]
    );
    assert_eq!(all.pg_version, 15);
    assert_eq!(
        all.system_identifier.as_deref(),
        Some(
            value(
                &c,
                "app",
                "select system_identifier::text from pg_control_system()"
            )
            .as_str()
        )
    );
    let t = |s: &str| pgdr_clone::target::parse_time(s).unwrap();
    assert!(t(&before) <= all.consistent_at && all.consistent_at <= t(&after));
    assert!(all.lsn.0 > 0);
    assert_eq!(all.jobs, 2);
    assert!(all.pg_dump.version.starts_with("18"), "{:?}", all.pg_dump);
    assert_eq!(all.snapshot_dir.as_deref(), Some(dir.as_path()));
    // TOAST-heavy md5 text compresses: stored is smaller than pg_dump's files.
    assert!(
        all.stored_bytes < all.bytes,
        "{} {}",
        all.stored_bytes,
        all.bytes
    );
    assert_eq!(all.bytes, all.files.iter().map(|f| f.bytes).sum::<u64>());
    let place = Place::dir(&dir).unwrap();
    for f in &all.files {
        let mut out = Vec::new();
        place.read_file(&all, &f.file, &mut out).unwrap();
        assert_eq!(out.len() as u64, f.bytes, "{}", f.file);
    }
    // The stored metadata is the printed document.
    assert_eq!(place.get(&all.snapshot).unwrap().unwrap(), all);

    let two = take(
        &c,
        "app",
        &dir,
        &[
            "--jobs",
            "2",
            "--table",
            "public.job_info",
            "--table",
            "documents",
        ],
    );
    assert_eq!(two.tables, ["public.documents", "public.job_info"]);
    assert_eq!(two.table_patterns, ["public.job_info", "documents"]);
    let list = snap_take()
        .args(["--list", "--logical", "--snapshot-dir"])
        .arg(&dir)
        .run()
        .ok()
        .document::<LogicalList>();
    let names: Vec<&str> = list.logical.iter().map(|l| l.snapshot.as_str()).collect();
    assert_eq!(names, [all.snapshot.as_str(), two.snapshot.as_str()]);
    assert_eq!(list.logical[1].consistent_at, two.consistent_at);
    // SPEC: "snap-take --list lists them": a snapshot directory alone is logical snapshots.
    let plain = snap_take()
        .args(["--list", "--snapshot-dir"])
        .arg(&dir)
        .run()
        .ok()
        .document::<LogicalList>();
    assert_eq!(plain, list);

    // A pattern that matches no table: exit 1, one line, nothing stored.
    let listed = entries(&dir);
    let out = snap_take()
        .args(["--logical", "-d", &conninfo(&c, "app"), "--snapshot-dir"])
        .arg(&dir)
        .args(["--table", "public.job_info", "--table", "no_such_*"])
        .run()
        .expect_error(1, "snap-take");
    assert!(
        out.stderr.contains("no matching tables") && out.stderr.contains("no_such_*"),
        "{}",
        out.stderr
    );
    assert_eq!(entries(&dir), listed);
    // Neither a place nor a usable label.
    tool("snap-take")
        .args(["--logical", "-d", &conninfo(&c, "app")])
        .run()
        .expect_error(2, "snap-take");
}

/// One table restored into a database that has a table of that name: renamed (rows equal to
/// the source at the snapshot, the original untouched, every name suffixed), fail (nothing
/// changes), replace (definition and rows replaced, foreign keys other tables hold kept and
/// validated; a violating row fails the replace and changes nothing).
#[test]
fn one_table_restored_renamed_failed_and_replaced() {
    let c = Cluster::start();
    app(&c, "app");
    let d = short_tempdir("pgdr-lr");
    let dir = d.path().join("snaps");
    let registry = d.path().join("clones");
    let at_snapshot = rows(&c, "app", "job_info");
    let snap = take(&c, "app", &dir, &["--jobs", "2"]);
    // Production moves on after the snapshot.
    client(&c, "app")
        .batch_execute("insert into job_info (customer_id, state) values (3, 'done'); update job_info set state = 'done' where id < 50")
        .unwrap();
    assert_ne!(rows(&c, "app", "job_info"), at_snapshot);

    // The live database has its own job_info.
    app(&c, "live");
    client(&c, "live")
        .batch_execute("delete from job_info where id > 10; insert into job_info (customer_id, state) values (1, 'running')")
        .unwrap();
    let live_rows = rows(&c, "live", "job_info");
    let live_catalog = catalog(&c, "live");

    // --dry-run: the precheck and the plan, nothing changed.
    let plan = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "live",
        &["--table", "job_info", "--dry-run"],
    )
    .ok()
    .document::<RestoreReport>();
    assert!(plan.dry_run);
    assert!(
        plan.checks.iter().any(|c| c == "CREATE on schema public"),
        "{:?}",
        plan.checks
    );
    assert_eq!(plan.tables[0].rows, None);
    assert_eq!(catalog(&c, "live"), live_catalog);

    let rep = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "live",
        &["--table", "job_info"],
    )
    .ok()
    .document::<RestoreReport>();
    let stamp = snap.consistent_at.format("%Y%m%d%H%M%S").to_string();
    let copy = format!("job_info_pgdr_{stamp}");
    assert_eq!(rep.tables[0].restored_as, format!("public.{copy}"));
    assert_eq!(rep.tables[0].action, "renamed");
    assert_eq!(rep.tables[0].rows, Some(200));
    assert_eq!(rep.as_of, snap.consistent_at);
    assert!(rep.pg_restore.version.starts_with("18"));
    assert_eq!(rows(&c, "live", &copy), at_snapshot);
    assert_eq!(
        rows(&c, "live", "job_info"),
        live_rows,
        "the original is untouched"
    );
    // Every object of the copy has the suffix, and the report lists each one.
    let objects: Vec<(String, String)> = rep
        .objects
        .iter()
        .map(|o| (o.kind.clone(), o.restored_as.clone()))
        .collect();
    for (kind, name) in [
        ("table", copy.clone()),
        ("sequence", format!("job_info_id_seq_pgdr_{stamp}")),
        ("index", format!("job_info_pkey_pgdr_{stamp}")),
        ("index", format!("job_info_customer_idx_pgdr_{stamp}")),
        ("constraint", format!("job_state_check_pgdr_{stamp}")),
        ("trigger", format!("job_info_touch_pgdr_{stamp}")),
    ] {
        assert!(
            objects.contains(&(kind.to_string(), name.clone())),
            "{kind} {name}: {objects:?}"
        );
    }
    let now = catalog(&c, "live");
    let added: Vec<&String> = now.iter().filter(|l| !live_catalog.contains(l)).collect();
    assert!(added.iter().all(|l| l.contains(&stamp)), "{added:?}");
    assert!(
        live_catalog.iter().all(|l| now.contains(l)),
        "nothing of the target was changed"
    );
    // Its foreign key to customers (not restored) is left out, and said so.
    assert!(rep
        .skipped
        .iter()
        .any(|s| s.kind == "FK CONSTRAINT" && s.reason.contains("public.customers")));
    // The identity keeps counting where the snapshot was.
    assert_eq!(
        value(
            &c,
            "live",
            &format!("insert into {copy} (customer_id, state) values (1, 'new') returning id")
        ),
        "201"
    );
    // The same moment again: refused, naming the copy.
    let out = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "live",
        &["--table", "job_info"],
    )
    .expect_error(1, "snap-clone");
    assert!(out.stderr.contains(&copy), "{}", out.stderr);

    // fail: nothing changes when a name exists.
    let before_fail = catalog(&c, "live");
    let out = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "live",
        &["--table", "job_info", "--on-conflict", "fail"],
    )
    .expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains("table public.job_info"),
        "{}",
        out.stderr
    );
    assert_eq!(catalog(&c, "live"), before_fail);

    // replace: other tables' foreign keys on job_info are kept and validated.
    let mut k = client(&c, "live");
    k.batch_execute(
        "create table job_notes (job_id bigint references job_info (id), note text);
         insert into job_notes values (1, 'a'), (5, 'b');
         grant select on job_info to public",
    )
    .unwrap();
    // A note on a job the snapshot does not have (live's own job 201): the replace must fail
    // and change nothing.
    let orphan: String = value(&c, "live", "select max(id)::text from job_info");
    assert_eq!(orphan, "201");
    k.batch_execute(&format!(
        "insert into job_notes values ({orphan}, 'orphan')"
    ))
    .unwrap();
    let before_replace = catalog(&c, "live");
    let out = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "live",
        &["--table", "job_info", "--on-conflict", "replace"],
    )
    .expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains("job_notes") && out.stderr.contains("rolled back"),
        "{}",
        out.stderr
    );
    assert_eq!(catalog(&c, "live"), before_replace);
    assert_eq!(rows(&c, "live", "job_info"), live_rows);
    k.batch_execute(&format!("delete from job_notes where job_id = {orphan}"))
        .unwrap();
    let rep = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "live",
        &["--table", "job_info", "--on-conflict", "replace"],
    )
    .ok()
    .document::<RestoreReport>();
    assert_eq!(rep.tables[0].action, "replaced");
    assert_eq!(rep.tables[0].restored_as, "public.job_info");
    assert_eq!(rows(&c, "live", "job_info"), at_snapshot);
    assert_eq!(rep.foreign_keys.len(), 1);
    assert_eq!(rep.foreign_keys[0].table, "public.job_notes");
    assert!(rep.foreign_keys[0].validated);
    assert_eq!(
        value(&c, "live", "select count(*) from pg_constraint where conrelid = 'job_notes'::regclass and contype = 'f' and convalidated"),
        "1"
    );
    assert_eq!(
        value(
            &c,
            "live",
            "select has_table_privilege('public', 'public.job_info', 'select')::text"
        ),
        "true",
        "the grants stay"
    );
    assert!(value(&c, "live", "select count(*) from pg_trigger where tgrelid = 'job_info'::regclass and tgname = 'job_info_touch'") == "1");
}

/// The partitioned and the TOAST-heavy tables, from a repository, into a database that lacks
/// them: created under their own names with their partitions, rows equal; the trigger
/// function the target lacks is created too.
#[test]
fn partitioned_and_toast_tables_from_a_repository() {
    let c = Cluster::start();
    app(&c, "app");
    let d = short_tempdir("pgdr-lp");
    let repo = d.path().join("repo");
    tool("wal-archive")
        .args(["init", "--repo"])
        .arg(&repo)
        .args(["-d", &conninfo(&c, "app")])
        .run()
        .ok();
    let snap = snap_take()
        .args([
            "--logical",
            "-d",
            &conninfo(&c, "app"),
            "--jobs",
            "2",
            "--to",
        ])
        .arg(&repo)
        .run()
        .ok()
        .document::<LogicalSnapshot>();
    assert_eq!(snap.repository.as_deref(), Some(repo.to_str().unwrap()));
    assert_eq!(snap.location, format!("dumps/{}", snap.snapshot));
    assert!(repo
        .join("dumps")
        .join(&snap.snapshot)
        .join("manifest")
        .is_file());
    c.execute("create database empty");
    let rep = tool("snap-clone")
        .args(["--snapshot", &snap.snapshot, "--repo"])
        .arg(&repo)
        .args([
            "--into",
            &conninfo(&c, "empty"),
            "--table",
            "events",
            "--table",
            "documents",
            "--table",
            "customers",
            "--jobs",
            "2",
        ])
        .run()
        .ok()
        .document::<RestoreReport>();
    let actions: Vec<(&str, &str, Option<u64>)> = rep
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.action.as_str(), t.rows))
        .collect();
    assert_eq!(
        actions,
        [
            ("public.events", "created", Some(300)),
            ("public.documents", "created", Some(12)),
            ("public.customers", "created", Some(20))
        ]
    );
    assert_eq!(
        rep.tables[0].partitions,
        ["public.events_2024", "public.events_2025"]
    );
    assert!(rep
        .objects
        .iter()
        .any(|o| o.kind == "function" && o.name == "touch()" && o.action == "created"));
    for t in ["events", "documents", "customers"] {
        assert_eq!(rows(&c, "empty", t), rows(&c, "app", t), "{t}");
    }
    assert_eq!(
        value(
            &c,
            "empty",
            "select count(*) from pg_inherits where inhparent = 'events'::regclass"
        ),
        "2"
    );
    // The foreign keys among restored tables come along.
    assert_eq!(
        value(&c, "empty", "select count(*) from pg_constraint where contype = 'f' and conparentid = 0 and confrelid = 'customers'::regclass"),
        "2"
    );
}

/// A table from a physical snapshot at a time between two batches: exactly the rows committed
/// before T, in the production database under the new name, and no clone left; a failure
/// leaves neither a change nor a clone.
#[test]
fn one_table_from_a_physical_snapshot_at_a_time_between_batches() {
    single_table_at_a_time(None);
}

fn single_table_at_a_time(major: Option<u32>) {
    let b = match major {
        Some(m) => skip_unless!(Cluster::with_major(m)),
        None => Cluster::builder(),
    };
    let d = short_tempdir("pgdr-lt");
    let repo = d.path().join("repo");
    let registry = d.path().join("clones");
    let wal_archive = pgdr_testkit::bin_dir().join("wal-archive");
    let mut p = b
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = '{} push %p --repo {}'",
            wal_archive.display(),
            repo.display()
        ))
        .init_only();
    tool("wal-archive")
        .args(["init", "--repo"])
        .arg(&repo)
        .arg("--pgdata")
        .arg(&p.data)
        .run()
        .ok();
    p.start_server();
    p.execute(SCHEMA);
    p.execute("insert into customers (name) values ('a'), ('b'); insert into job_info (customer_id, state) select 1, 'new' from generate_series(1, 10)");
    let snap = tool("snap-take")
        .arg("--pgdata")
        .arg(&p.data)
        .args(["--backend", "copy", "-d", &p.conninfo()])
        .run()
        .ok()
        .json();
    p.execute(
        "insert into job_info (customer_id, state) select 2, 'running' from generate_series(1, 10)",
    );
    let at_t = rows(&p, "postgres", "job_info");
    std::thread::sleep(Duration::from_millis(300));
    let t = p.query_value("select clock_timestamp()::text").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.execute("insert into job_info (customer_id, state) select 2, 'done' from generate_series(1, 10); delete from job_info where id <= 5");
    let name = p
        .query_value("select pg_walfile_name(pg_switch_wal())")
        .unwrap();
    p.wait_for(
        &format!("select coalesce(last_archived_wal >= '{name}', false) from pg_stat_archiver"),
        WAIT,
    );
    let production = rows(&p, "postgres", "job_info");
    let sc = |extra: &[&str]| {
        snap_clone(&registry)
            .arg("--pgdata")
            .arg(&p.data)
            .args([
                "--backend",
                "copy",
                "--snapshot",
                snap["snapshot"].as_str().unwrap(),
            ])
            .args(["--recovery-target-time", &t, "--repo"])
            .arg(&repo)
            .args(["--into", &p.conninfo(), "--wait", "120"])
            .args(extra)
            .run()
    };
    // A table the snapshot lacks: nothing restored, no clone left.
    let out = sc(&["--table", "no_such_table"]).expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains("no_such_table") && out.stderr.contains("destroyed"),
        "{}",
        out.stderr
    );
    let clones = snap_clone(&registry).arg("--list").run().ok().json();
    assert_eq!(clones["clones"].as_array().unwrap().len(), 0);

    let rep = sc(&["--table", "job_info"])
        .ok()
        .document::<RestoreReport>();
    assert_eq!(rep.kind, "physical");
    let when = pgdr_clone::target::parse_time(&t).unwrap();
    assert_eq!(rep.as_of, when);
    let copy = format!("job_info_pgdr_{}", when.format("%Y%m%d%H%M%S"));
    assert_eq!(rep.tables[0].restored_as, format!("public.{copy}"));
    assert_eq!(rep.tables[0].rows, Some(20));
    assert_eq!(
        rows(&p, "postgres", &copy),
        at_t,
        "exactly the rows committed before T"
    );
    assert_eq!(rows(&p, "postgres", "job_info"), production);
    let clone = rep.clone.expect("the temporary clone is reported");
    assert!(!clone.kept);
    assert!(rep.pg_dump.is_some());
    let clones = snap_clone(&registry).arg("--list").run().ok().json();
    assert_eq!(
        clones["clones"].as_array().unwrap().len(),
        0,
        "no clone is left"
    );
}

/// Retention per database and label, in a snapshot directory and through snap-take's
/// document on stdin; what killed runs left is not a snapshot.
#[test]
fn retention_over_logical_snapshots() {
    let c = Cluster::start();
    c.execute("create database a");
    c.execute("create database b");
    for db in ["a", "b"] {
        client(&c, db)
            .batch_execute("create table t (n int); insert into t values (1)")
            .unwrap();
    }
    let d = short_tempdir("pgdr-lk");
    let dir = d.path().join("snaps");
    let mut taken = Vec::new();
    for (db, label) in [
        ("a", None),
        ("a", None),
        ("a", Some("x")),
        ("b", None),
        ("b", None),
    ] {
        let mut extra = vec![];
        if let Some(l) = label {
            extra.extend(["--label", l]);
        }
        taken.push(take(&c, db, &dir, &extra));
    }
    // A run killed in the middle leaves a hidden staging directory: not a snapshot.
    std::fs::create_dir(dir.join(format!(
        ".{}.pgdr-tmp.1",
        taken[0].snapshot.replace("Z", "Z-killed")
    )))
    .unwrap();
    // SPEC's `snap-prune --snapshot-dir DIR`: a snapshot directory alone is logical snapshots.
    let preview = tool("snap-prune")
        .args(["--snapshot-dir"])
        .arg(&dir)
        .args(["--keep-last", "1", "--dry-run"])
        .run()
        .ok()
        .document::<LogicalPruneReport>();
    let r = tool("snap-prune")
        .args(["--logical", "--snapshot-dir"])
        .arg(&dir)
        .args(["--keep-last", "1"])
        .run()
        .ok()
        .document::<LogicalPruneReport>();
    assert_eq!(preview.destroyed, r.destroyed);
    let kept: Vec<(&str, Option<&str>)> = r
        .kept
        .iter()
        .map(|k| (k.database.as_str(), k.label.as_deref()))
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    for g in [("a", None), ("a", Some("x")), ("b", None)] {
        assert!(kept.contains(&g), "{g:?} {kept:?}");
    }
    let destroyed: Vec<&str> = r.destroyed.iter().map(|x| x.snapshot.as_str()).collect();
    assert_eq!(
        destroyed,
        [taken[0].snapshot.as_str(), taken[3].snapshot.as_str()]
    );
    let left = snap_take()
        .args(["--list", "--logical", "--snapshot-dir"])
        .arg(&dir)
        .run()
        .ok()
        .document::<LogicalList>();
    assert_eq!(left.logical.len(), 3);
    // snap-take | snap-prune -: the same place, that database only.
    let doc = snap_take()
        .args(["--logical", "-d", &conninfo(&c, "b"), "--snapshot-dir"])
        .arg(&dir)
        .run()
        .ok();
    let r = tool("snap-prune")
        .arg("-")
        .args(["--keep-last", "1", "--dry-run"])
        .stdin(doc.stdout.clone())
        .run()
        .ok()
        .document::<LogicalPruneReport>();
    assert!(r.dry_run);
    assert_eq!(r.database.as_deref(), Some("b"));
    assert_eq!(r.destroyed.len(), 1);
    assert!(r.kept.iter().all(|k| k.database == "b"));
}

/// A dump that cannot finish leaves nothing that looks like a snapshot: the server restarting
/// in the middle, SIGTERM in the middle; and bad targets fail with one line.
#[test]
fn failures_leave_nothing_behind() {
    let mut c = Cluster::start();
    app(&c, "app");
    let d = short_tempdir("pgdr-lf");
    let dir = d.path().join("snaps");
    std::fs::create_dir(&dir).unwrap();
    // pg_dump waits for the lock a session holds on job_info: a dump in progress.
    let start = |c: &Cluster| {
        let mut locker = client(c, "app");
        locker
            .batch_execute("begin; lock table job_info in access exclusive mode")
            .unwrap();
        let child = std::process::Command::new(pgdr_testkit::bin_dir().join("snap-take"))
            .args(["--logical", "-d", &conninfo(c, "app"), "--snapshot-dir"])
            .arg(&dir)
            .env("PGDR_PG_ROOT", pgdr_testkit::majors::pg_root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.wait_for(
            "select exists (select from pg_stat_activity where application_name = 'pg_dump' and wait_event_type = 'Lock')",
            WAIT,
        );
        (locker, child)
    };
    let (locker, child) = start(&c);
    c.restart();
    drop(locker);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("snap-take: pg_dump failed") && err.contains("no snapshot was stored"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        snapshots(&dir),
        Vec::<String>::new(),
        "nothing but the lock file"
    );

    let (locker, child) = start(&c);
    // SAFETY: kill(2) on the pid of a child this test started and has not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    drop(locker);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_eq!(snapshots(&dir), Vec::<String>::new());
    c.wait_for(
        "select not exists (select from pg_stat_activity where application_name = 'pg_dump')",
        WAIT,
    );

    // Bad targets: a database that does not exist; a role without CREATE on the schema.
    let snap = take(&c, "app", &dir, &[]);
    let registry = d.path().join("clones");
    let out = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "no_such_db",
        &["--table", "job_info"],
    )
    .expect_error(1, "snap-clone");
    assert!(
        out.stderr.contains("no_such_db") && out.stderr.contains("does not exist"),
        "{}",
        out.stderr
    );
    c.execute("create database live");
    c.execute("create role nopriv login");
    client(&c, "live")
        .batch_execute("revoke create on schema public from public")
        .unwrap();
    let out = snap_clone(&registry)
        .args(["--snapshot", &snap.snapshot, "--snapshot-dir"])
        .arg(&dir)
        .args([
            "--into",
            &format!("{} user=nopriv", conninfo(&c, "live")),
            "--table",
            "job_info",
        ])
        .run()
        .expect_error(1, "snap-clone");
    assert!(
        out.stderr
            .contains("may not create tables in schema public"),
        "{}",
        out.stderr
    );
    // A name that would pass 63 bytes once renamed: shortened the same way every time, and
    // reported.
    let long = "a_table_with_a_very_long_name_of_fifty_five_bytes_xxxxx";
    client(&c, "app")
        .batch_execute(&format!(
            "create table {long} (id int primary key); insert into {long} values (1)"
        ))
        .unwrap();
    let snap = take(&c, "app", &dir, &["--table", long]);
    client(&c, "live")
        .batch_execute(&format!("create table {long} (id int)"))
        .unwrap();
    let rep = restore(
        &c,
        &registry,
        &snap.snapshot,
        &dir,
        "live",
        &["--table", long],
    )
    .ok()
    .document::<RestoreReport>();
    let t = rep.objects.iter().find(|o| o.kind == "table").unwrap();
    assert!(t.shortened && t.restored_as.len() <= 63, "{t:?}");
    assert_eq!(
        t.restored_as,
        pgdr_clone::tables::plan::renamed(
            long,
            &snap.consistent_at.format("%Y%m%d%H%M%S").to_string()
        )
        .0
    );
    assert_eq!(
        value(
            &c,
            "live",
            &format!("select count(*) from \"{}\"", t.restored_as)
        ),
        "1"
    );
    c.stop();
}

/// What depends on the server's version, on every major 13 to 18 with pg_dump 18: the schema
/// dumped with 2 jobs, one table restored renamed beside its namesake, rows equal.
fn logical_round_trip(major: u32) {
    let c = skip_unless!(Cluster::with_major(major)).start();
    app(&c, "app");
    let d = short_tempdir("pgdr-lm");
    let dir = d.path().join("snaps");
    let snap = take(&c, "app", &dir, &["--jobs", "2"]);
    assert_eq!(snap.pg_version, major);
    assert!(snap.pg_dump.version.starts_with("18"));
    app(&c, "live");
    for t in ["job_info", "events"] {
        let rep = restore(
            &c,
            &d.path().join("clones"),
            &snap.snapshot,
            &dir,
            "live",
            &["--table", t],
        )
        .ok()
        .document::<RestoreReport>();
        assert_eq!(rep.tables[0].action, "renamed", "PostgreSQL {major}");
        let copy = rep.tables[0]
            .restored_as
            .trim_start_matches("public.")
            .to_string();
        assert_eq!(
            rows(&c, "live", &copy),
            rows(&c, "app", t),
            "PostgreSQL {major}: {t}"
        );
    }
}

mod majors {
    macro_rules! matrix {
        ($($module:ident = $major:literal),* $(,)?) => {$(
            mod $module {
                #[test]
                fn logical_snapshot_and_renamed_restore() {
                    super::super::logical_round_trip($major);
                }
                #[test]
                fn one_table_from_a_physical_snapshot() {
                    super::super::single_table_at_a_time(Some($major));
                }
            }
        )*};
    }
    matrix!(
        pg13 = 13,
        pg14 = 14,
        pg15 = 15,
        pg16 = 16,
        pg17 = 17,
        pg18 = 18
    );
}

/// An encrypted repository: every object of the dump is an age file for the repository's
/// recipient; snap-clone restores with the identity and fails with one line without it.
#[test]
fn an_encrypted_repository() {
    let c = Cluster::start();
    app(&c, "app");
    let d = short_tempdir("pgdr-le");
    let key = d.path().join("key");
    let recipient = pgdr_testkit::age_keygen(&key);
    let repo = d.path().join("repo");
    tool("wal-archive")
        .args(["init", "--repo"])
        .arg(&repo)
        .args(["-d", &conninfo(&c, "app"), "--encrypt-to", &recipient])
        .run()
        .ok();
    let snap = snap_take()
        .args([
            "--logical",
            "-d",
            &conninfo(&c, "app"),
            "--table",
            "job_info",
            "--to",
        ])
        .arg(&repo)
        .run()
        .ok()
        .document::<LogicalSnapshot>();
    let dump = repo.join("dumps").join(&snap.snapshot);
    for f in std::fs::read_dir(dump.join("files")).unwrap().flatten() {
        let head = std::fs::read(f.path()).unwrap();
        assert!(
            head.starts_with(b"age-encryption.org/v1"),
            "{}",
            f.path().display()
        );
    }
    assert!(std::fs::read(dump.join("manifest"))
        .unwrap()
        .starts_with(b"age-encryption.org/v1"));
    app(&c, "live");
    let into = ["--into", &conninfo(&c, "live"), "--table", "job_info"];
    tool("snap-clone")
        .args(["--snapshot", &snap.snapshot, "--repo"])
        .arg(&repo)
        .args(into)
        .run()
        .expect_error(1, "snap-clone");
    let rep = tool("snap-clone")
        .env("PGDR_IDENTITY", &key)
        .args(["--snapshot", &snap.snapshot, "--repo"])
        .arg(&repo)
        .args(into)
        .run()
        .ok()
        .document::<RestoreReport>();
    let copy = rep.tables[0]
        .restored_as
        .trim_start_matches("public.")
        .to_string();
    assert_eq!(rows(&c, "live", &copy), rows(&c, "app", "job_info"));
}
