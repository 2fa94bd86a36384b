//! conf-edit against a real PostgreSQL: `--auto set` writes the bytes ALTER SYSTEM writes,
//! set → reload → pg_settings, check, and bad inputs that must change nothing. `show` against
//! each major's own `pg_file_settings` on every fixture: tests/majors.rs (helpers in
//! tests/oracle).
//!
//! Past 600 lines: one test per behaviour against a real server, with the helpers they share.

use pgdr_conf::doc::{ChangeReport, CheckReport, GetReport, ShowReport};
use pgdr_testkit::{tool, Cluster};
use std::collections::BTreeMap;
use std::path::Path;

const TOOL: &str = "conf-edit";

#[test]
fn auto_set_is_byte_identical_to_alter_system() {
    let c = Cluster::start();
    let auto = c.data.join("postgresql.auto.conf");
    let d = tempfile::tempdir().unwrap();
    let copy = d.path().join("postgresql.auto.conf");
    std::fs::copy(&auto, &copy).unwrap();
    let steps: &[(&str, &[&str], bool)] = &[
        (
            "ALTER SYSTEM SET work_mem = '64MB'",
            &["work_mem=64MB"],
            true,
        ),
        ("ALTER SYSTEM SET port = 5499", &["port=5499"], true),
        (
            r"ALTER SYSTEM SET application_name = E'it''s a \\ test'",
            &[r"application_name=it's a \ test"],
            true,
        ),
        (
            "ALTER SYSTEM SET shared_preload_libraries = pg_stat_statements, auto_explain",
            &["shared_preload_libraries=pg_stat_statements, auto_explain"],
            true,
        ),
        (
            "ALTER SYSTEM SET search_path = \"$user\", public",
            &["search_path=\"$user\", public"],
            true,
        ),
        (
            "ALTER SYSTEM SET Work_Mem = '1.5MB'",
            &["WORK_MEM=1.5MB"],
            true,
        ),
        (
            "ALTER SYSTEM SET archive_mode = 'off'",
            &["archive_mode=off"],
            true,
        ),
        (
            "ALTER SYSTEM SET restore_command = 'cp /arch/%f \"%p\"'",
            &["restore_command=cp /arch/%f \"%p\""],
            true,
        ),
        (
            "ALTER SYSTEM SET primary_conninfo = ''",
            &["primary_conninfo="],
            true,
        ),
        ("ALTER SYSTEM RESET work_mem", &["work_mem"], false),
        ("ALTER SYSTEM RESET port", &["port"], false),
    ];
    for (sql, args, set) in steps {
        c.execute(sql);
        let out = tool(TOOL)
            .arg("-f")
            .arg(&copy)
            .arg("--auto")
            .arg(if *set { "set" } else { "unset" })
            .args(*args)
            .run()
            .ok();
        assert!(out.document::<ChangeReport>().changed, "{sql}");
        let want = std::fs::read_to_string(&auto).unwrap();
        let got = std::fs::read_to_string(&copy).unwrap();
        assert_eq!(got, want, "after {sql}");
    }
    // Setting the same value again changes nothing.
    let out = tool(TOOL)
        .arg("-f")
        .arg(&copy)
        .args(["--auto", "set", "archive_mode=off"])
        .run()
        .ok();
    assert!(!out.document::<ChangeReport>().changed);
    // The library API gives the same bytes.
    let before = std::fs::read_to_string(&auto).unwrap();
    c.execute("ALTER SYSTEM SET recovery_target_action = 'pause'");
    let lib =
        pgdr_conf::auto::apply(&before, &[("recovery_target_action", Some("pause"))]).unwrap();
    assert_eq!(lib, std::fs::read_to_string(&auto).unwrap());
    c.execute("ALTER SYSTEM RESET ALL");
}

#[test]
fn set_reload_get_round_trip() {
    let c = Cluster::start();
    let conf = c.data.join("postgresql.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let out = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .args([
            "set",
            "work_mem=12MB",
            "application_name=it's # x",
            "search_path=a, \"B c\"",
            "statement_timeout=1.5min",
            "listen_addresses=127.0.0.1",
            "--reload",
            "-d",
        ])
        .arg(c.conninfo())
        .run()
        .ok();
    let doc: ChangeReport = out.document();
    assert!(doc.changed);
    let reload = doc.reload.as_ref().unwrap();
    assert_eq!(reload.errors, [], "{doc:?}");
    assert!(reload.pending_restart.is_empty(), "{doc:?}");
    let after = std::fs::read_to_string(&conf).unwrap();
    // Untouched lines keep their bytes: only lines that mention the names changed.
    let changed: Vec<_> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(changed.len() <= 5, "{changed:?}");
    let get = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .args([
            "get",
            "work_mem",
            "application_name",
            "search_path",
            "statement_timeout",
            "listen_addresses",
            "nonexistent.param",
        ])
        .run()
        .ok()
        .document::<GetReport>();
    let s = &get.settings;
    assert_eq!(s["nonexistent.param"], None);
    for (name, want) in [
        ("work_mem", "12MB"),
        ("application_name", "it's # x"),
        ("search_path", "a, \"B c\""),
        ("statement_timeout", "1.5min"),
        ("listen_addresses", "127.0.0.1"),
    ] {
        assert_eq!(s[name].as_ref().unwrap().value, want, "{name}");
    }
    // What the server now reports.
    assert_eq!(c.query_value("SHOW work_mem").as_deref(), Some("12MB"));
    assert_eq!(
        c.query_value("SHOW application_name").as_deref(),
        Some("it's # x")
    );
    assert_eq!(
        c.query_value("SHOW search_path").as_deref(),
        Some("a, \"B c\"")
    );
    assert_eq!(
        c.query_value("SHOW statement_timeout").as_deref(),
        Some("90s")
    );
    // A restart-only change is reported as pending.
    let doc = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .args(["set", "max_connections=42", "--reload", "-d"])
        .arg(c.conninfo())
        .run()
        .ok()
        .document::<ChangeReport>();
    assert_eq!(
        doc.reload.as_ref().unwrap().pending_restart,
        ["max_connections"],
        "{doc:?}"
    );
    // unset comments the line out; after reload the default is back.
    tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .args(["unset", "work_mem", "max_connections", "--reload", "-d"])
        .arg(c.conninfo())
        .run()
        .ok();
    assert_eq!(c.query_value("SHOW work_mem").as_deref(), Some("4MB"));
    // get | apply between two files.
    let d = tempfile::tempdir().unwrap();
    let other = d.path().join("other.conf");
    std::fs::write(&other, "#application_name = ''\t# keep me\n").unwrap();
    let piped = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .args(["get", "application_name", "search_path"])
        .run()
        .ok()
        .stdout;
    tool(TOOL)
        .arg("-f")
        .arg(&other)
        .args(["apply", "-"])
        .stdin(piped)
        .run()
        .ok();
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "application_name = 'it''s # x'\t# keep me\nsearch_path = 'a, \"B c\"'\n"
    );
}

#[test]
fn check_with_and_without_a_connection() {
    let c = Cluster::start();
    let d = c.root.path().join("cand");
    std::fs::create_dir(&d).unwrap();
    let f = d.join("candidate.conf");
    std::fs::write(
        &f,
        "fsync = o\nwork_mem = 1mb\nwal_level = bogus\nmax_connections = 0\nnosuch_param = 1\nshared_buffers = 32MB\nrandom_page_cost = 2\n",
    )
    .unwrap();
    let out = tool(TOOL)
        .arg("-f")
        .arg(&f)
        .arg("check")
        .arg("-d")
        .arg(c.conninfo())
        .run()
        .expect_code(1);
    let doc: CheckReport = out.document();
    let problems: Vec<String> = doc
        .problems
        .iter()
        .map(|p| p.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        problems,
        vec![
            "nosuch_param",
            "fsync",
            "work_mem",
            "wal_level",
            "max_connections"
        ],
        "{doc:?}"
    );
    std::fs::write(&f, "fsync = o\nwork_mem = 1mb\nwal_level = bogus\nmax_connections = 0\nshared_buffers = 32MB\nrandom_page_cost = 2\n").unwrap();
    let doc = tool(TOOL)
        .arg("-f")
        .arg(&f)
        .arg("check")
        .arg("-d")
        .arg(c.conninfo())
        .run()
        .expect_code(1)
        .document::<CheckReport>();
    let mut problems: Vec<String> = doc
        .problems
        .iter()
        .map(|p| p.name.clone().unwrap())
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        vec!["fsync", "max_connections", "wal_level", "work_mem"],
        "{doc:?}"
    );
    assert_eq!(doc.needs_restart, ["shared_buffers"], "{doc:?}");
    // Offline: the server binary itself reads the files, as the data directory's owner.
    let conf = c.data.join("postgresql.conf");
    let good = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .arg("check")
        .run()
        .ok()
        .document::<CheckReport>();
    assert!(good.ok, "{good:?}");
    assert!(good.server_check.as_ref().unwrap().ran, "{good:?}");
    let original = std::fs::read(&conf).unwrap();
    let mut bad = original.clone();
    bad.extend_from_slice(b"wal_level = bogus\n");
    std::fs::write(&conf, &bad).unwrap();
    let doc = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .arg("check")
        .run()
        .expect_code(1)
        .document::<CheckReport>();
    std::fs::write(&conf, &original).unwrap();
    assert!(
        doc.problems.iter().any(|p| p.problem.contains("bogus")),
        "{doc:?}"
    );
    assert!(
        !doc.server_check.as_ref().unwrap().errors.is_empty(),
        "{doc:?}"
    );
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn bad_inputs_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let conf = p.join("postgresql.conf");
    std::fs::write(&conf, "work_mem = 4MB\n").unwrap();
    let cmd = |args: &[&str]| tool(TOOL).arg("-f").arg(&conf).args(args);
    let run = |args: &[&str]| cmd(args).run();
    let before = snapshot(p);
    run(&["set", "bad name=1"]).expect_error(2, TOOL);
    run(&["set", "a.b.c=1"]).expect_error(2, TOOL);
    run(&["set", "work_mem=1\n2"]).expect_error(2, TOOL);
    run(&["set", "work_mem"]).expect_error(2, TOOL);
    run(&["get", "1abc"]).expect_error(2, TOOL);
    cmd(&["apply", "-"])
        .stdin("{\"settings\": ")
        .run()
        .expect_error(2, TOOL);
    cmd(&["apply", "-"])
        .stdin("[1]")
        .run()
        .expect_error(2, TOOL);
    assert_eq!(snapshot(p), before);
    // Missing file.
    tool(TOOL)
        .arg("-f")
        .arg(p.join("none.conf"))
        .args(["get", "x"])
        .run()
        .expect_error(1, TOOL);
    tool(TOOL)
        .arg("-f")
        .arg(p.join("none.conf"))
        .args(["set", "x=1"])
        .run()
        .expect_error(1, TOOL);
    // Include loop, include of a missing file: refused, nothing written.
    std::fs::write(&conf, "include 'loop.conf'\nwork_mem = 4MB\n").unwrap();
    std::fs::write(p.join("loop.conf"), "include 'postgresql.conf'\n").unwrap();
    let before = snapshot(p);
    let out = run(&["set", "work_mem=8MB"]).expect_error(1, TOOL);
    assert!(out.stderr.contains("nesting depth"), "{}", out.stderr);
    std::fs::write(&conf, "include 'missing.conf'\nwork_mem = 4MB\n").unwrap();
    let out = run(&["set", "work_mem=8MB"]).expect_error(1, TOOL);
    assert!(out.stderr.contains("missing.conf"), "{}", out.stderr);
    std::fs::write(&conf, "include 'loop.conf'\nwork_mem = 4MB\n").unwrap();
    assert_eq!(snapshot(p), before);
    // include_if_exists of a missing file is fine.
    std::fs::write(&conf, "include_if_exists 'missing.conf'\nwork_mem = 4MB\n").unwrap();
    run(&["set", "work_mem=8MB"]).ok();
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "include_if_exists 'missing.conf'\nwork_mem = 8MB\n"
    );
    // Invalid UTF-8.
    std::fs::write(&conf, b"application_name = '\xff'\n").unwrap();
    let before = snapshot(p);
    run(&["set", "work_mem=8MB"]).expect_error(2, TOOL);
    run(&["show"]).expect_error(2, TOOL);
    assert_eq!(snapshot(p), before);
    // A syntax error in the file: set refuses, show reports it.
    std::fs::write(&conf, "work_mem = 4MB\nlisten_addresses = *\n").unwrap();
    run(&["set", "work_mem=8MB"]).expect_error(1, TOOL);
    let doc: ShowReport = run(&["show"]).ok().document();
    assert_eq!(doc.errors[0].line, Some(2));
    // get still answers with the file's last word, and says on stderr that the server uses
    // none of it while the error stays.
    let out = run(&["get", "work_mem"]).ok();
    let doc: GetReport = out.document();
    assert_eq!(doc.settings["work_mem"].as_ref().unwrap().value, "4MB");
    assert!(
        out.stderr.contains(":2: syntax error") && out.stderr.contains("applies no change"),
        "{}",
        out.stderr
    );
    // --dry-run and --backup.
    std::fs::write(&conf, "work_mem = 4MB # c\n").unwrap();
    let doc: ChangeReport = run(&["set", "work_mem=8MB", "--dry-run"]).ok().document();
    assert!(
        doc.diff.as_deref().unwrap().contains("+work_mem = 8MB # c"),
        "{doc:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "work_mem = 4MB # c\n"
    );
    let doc: ChangeReport = run(&["set", "work_mem=8MB", "--backup"]).ok().document();
    let bak = &doc.backups[0];
    assert_eq!(
        std::fs::read_to_string(bak).unwrap(),
        "work_mem = 4MB # c\n"
    );
    // Idempotent.
    let doc: ChangeReport = run(&["set", "work_mem=8MB"]).ok().document();
    assert!(!doc.changed);
    // Secrets are masked.
    run(&["set", "primary_conninfo=host=p user=r password=s3cret"]).ok();
    let out = run(&["get", "primary_conninfo"]).ok();
    assert!(
        !out.stdout.contains("s3cret") && out.stdout.contains("********"),
        "{}",
        out.stdout
    );
}

/// Issue 18, item 2: a value shown masked is never written back (`get | apply` between two
/// data directories); with --show-secrets it is.
#[test]
fn masked_values_are_not_written_back() {
    let d = tempfile::tempdir().unwrap();
    let (x, y) = (d.path().join("x"), d.path().join("y"));
    std::fs::create_dir_all(&x).unwrap();
    std::fs::create_dir_all(&y).unwrap();
    tool(TOOL)
        .arg("-D")
        .arg(&x)
        .args([
            "--auto",
            "set",
            "primary_conninfo=host=p user=r password=s3cret",
        ])
        .run()
        .ok();
    let got = tool(TOOL)
        .arg("-D")
        .arg(&x)
        .args(["--auto", "get", "primary_conninfo"])
        .run()
        .ok();
    let doc: GetReport = got.document();
    let s = doc.settings["primary_conninfo"].as_ref().unwrap();
    assert!(s.masked, "{doc:?}");
    assert_eq!(s.value, "host=p user=r password=********");
    let out = tool(TOOL)
        .arg("-D")
        .arg(&y)
        .args(["--auto", "apply", "-"])
        .stdin(got.stdout)
        .run()
        .expect_error(1, TOOL);
    assert!(out.stderr.contains("primary_conninfo"), "{}", out.stderr);
    assert!(!y.join("postgresql.auto.conf").exists());
    // show's document carries the flag too.
    let shown = tool(TOOL)
        .arg("-D")
        .arg(&x)
        .args(["--auto", "show"])
        .run()
        .ok();
    let doc: ShowReport = shown.document();
    assert!(doc.settings["primary_conninfo"].masked);
    assert!(doc.entries.iter().any(|e| e.masked));
    tool(TOOL)
        .arg("-D")
        .arg(&y)
        .args(["--auto", "apply", "-"])
        .stdin(shown.stdout)
        .run()
        .expect_error(1, TOOL);
    // The producer shows the secret: copied as it is.
    let clear = tool(TOOL)
        .arg("-D")
        .arg(&x)
        .args(["--auto", "--show-secrets", "get", "primary_conninfo"])
        .run()
        .ok();
    assert!(
        !clear.document::<GetReport>().settings["primary_conninfo"]
            .as_ref()
            .unwrap()
            .masked
    );
    tool(TOOL)
        .arg("-D")
        .arg(&y)
        .args(["--auto", "apply", "-"])
        .stdin(clear.stdout)
        .run()
        .ok();
    assert!(std::fs::read_to_string(y.join("postgresql.auto.conf"))
        .unwrap()
        .contains("password=s3cret"));
}

/// Issue 18, item 3: --reload is one transaction: it connects before writing, a value the
/// server refuses (before or after the write) leaves every byte as it was, a restart-only
/// change is pending and not an error, and only what the server applied is reported applied.
#[test]
fn reload_is_a_transaction() {
    let c = Cluster::start();
    let conf = c.data.join("postgresql.conf");
    let auto = c.data.join("postgresql.auto.conf");
    let dsn = c.conninfo();
    let set = |args: &[&str]| {
        tool(TOOL)
            .arg("-D")
            .arg(&c.data)
            .arg("set")
            .args(args)
            .args(["--reload", "-d", &dsn])
            .run()
    };
    let before = std::fs::read(&conf).unwrap();
    let work_mem = c.query_value("SHOW work_mem");
    // A closed port: nothing written.
    let closed = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        pgdr_testkit::free_port()
    );
    let out = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .args(["set", "work_mem=8MB", "--reload", "-d", &closed])
        .run()
        .expect_error(1, TOOL);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    assert_eq!(std::fs::read(&conf).unwrap(), before);
    // A bad enum is refused before writing (pg_settings says so).
    let out = set(&["work_mem=64MB", "wal_level=replcia"]).expect_error(1, TOOL);
    assert!(out.stderr.contains("replcia"), "{}", out.stderr);
    assert_eq!(std::fs::read(&conf).unwrap(), before);
    // A time zone only the server can judge: written, rejected by the server, put back.
    let out =
        set(&["work_mem=64MB", "log_timezone=Mars/Olympus", "--backup"]).expect_error(1, TOOL);
    assert!(out.stderr.contains("log_timezone"), "{}", out.stderr);
    assert_eq!(std::fs::read(&conf).unwrap(), before, "not put back");
    assert_eq!(c.query_value("SHOW work_mem"), work_mem);
    let baks: Vec<_> = std::fs::read_dir(&c.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bak"))
        .collect();
    assert!(baks.is_empty(), "{baks:?}");
    // A restart-only change waits for a restart and is no error.
    let doc: ChangeReport = set(&["wal_level=logical"]).ok().document();
    let r = doc.reload.unwrap();
    assert!(
        r.pending_restart.contains(&"wal_level".to_string()),
        "{r:?}"
    );
    assert!(r.errors.is_empty(), "{r:?}");
    assert!(r.applied.iter().all(|a| a.name != "wal_level"), "{r:?}");
    // postgresql.auto.conf overrides work_mem: not applied, and says why.
    c.execute("ALTER SYSTEM SET work_mem = '3MB'");
    let doc: ChangeReport = set(&["work_mem=5MB", "maintenance_work_mem=70MB"])
        .ok()
        .document();
    let r = doc.reload.unwrap();
    assert_eq!(
        r.applied
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["maintenance_work_mem"],
        "{r:?}"
    );
    assert_eq!(r.not_applied[0].name, "work_mem");
    assert!(
        r.not_applied[0]
            .reason
            .contains(&auto.display().to_string()),
        "{r:?}"
    );
    assert_eq!(
        c.query_value("SHOW maintenance_work_mem").as_deref(),
        Some("70MB")
    );
    // Without -d, the PG* environment.
    let doc: ChangeReport = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .args(["--auto", "unset", "work_mem", "--reload"])
        .env("PGHOST", &c.sockdir)
        .env("PGPORT", c.port.to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        .run()
        .ok()
        .document();
    assert!(doc.reload.unwrap().reloaded);
    assert_eq!(c.query_value("SHOW work_mem").as_deref(), Some("5MB"));
    // A file the server does not read: refused before writing.
    let d = tempfile::tempdir().unwrap();
    let other = d.path().join("other.conf");
    std::fs::write(&other, "work_mem = 1MB\n").unwrap();
    tool(TOOL)
        .arg("-f")
        .arg(&other)
        .args(["set", "work_mem=2MB", "--reload", "-d", &dsn])
        .run()
        .expect_error(1, TOOL);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "work_mem = 1MB\n");
}

/// Issue 18, item 4: without a server, the server binary checks names and values (enums
/// too), as the postgres user, not root; what it cannot check is unchecked, never OK; and
/// --auto set refuses what ALTER SYSTEM refuses.
#[test]
fn values_are_checked_by_the_server_binary_without_a_server() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("candidate.conf");
    std::fs::write(
        &f,
        "wal_level = bogus\narchive_mode = maybe\ndynamic_shared_memory_type = windows\nwork_mem = 64MB\nmax_wal_senders = 10\n",
    )
    .unwrap();
    let doc: CheckReport = tool(TOOL)
        .arg("-f")
        .arg(&f)
        .arg("check")
        .run()
        .expect_code(1)
        .document();
    let mut names: Vec<String> = doc.problems.iter().filter_map(|p| p.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        ["archive_mode", "dynamic_shared_memory_type", "wal_level"],
        "{doc:?}"
    );
    assert!(doc.unchecked.is_empty(), "{doc:?}");
    let sc = doc.server_check.unwrap();
    assert!(sc.ran);
    assert_ne!(sc.run_as.as_deref(), Some("root"));
    assert_eq!(doc.pg_version, Some(15));
    // An unknown name and the values after it.
    std::fs::write(&f, "nosuch_param = 1\nfsync = maybe\nwork_mem = 64MB\n").unwrap();
    let doc: CheckReport = tool(TOOL)
        .arg("-f")
        .arg(&f)
        .arg("check")
        .run()
        .expect_code(1)
        .document();
    let names: Vec<String> = doc.problems.iter().filter_map(|p| p.name.clone()).collect();
    assert_eq!(names, ["nosuch_param", "fsync"], "{doc:?}");
    assert_eq!(doc.problems[1].line, Some(2));
    // A value with an escaped newline is what PostgreSQL reads (a newline), and the range
    // error after it is still found (before: the scratch file had a raw newline, a syntax
    // error, and the real problem was missed).
    std::fs::write(&f, "application_name = 'a\\nb'\nvacuum_cost_delay = -1\n").unwrap();
    let doc: CheckReport = tool(TOOL)
        .arg("-f")
        .arg(&f)
        .arg("check")
        .run()
        .expect_code(1)
        .document();
    let names: Vec<String> = doc.problems.iter().filter_map(|p| p.name.clone()).collect();
    assert_eq!(names, ["vacuum_cost_delay"], "{doc:?}");
    // A good file is ok.
    std::fs::write(&f, "work_mem = 64MB\nwal_level = logical\n").unwrap();
    let doc: CheckReport = tool(TOOL)
        .arg("-f")
        .arg(&f)
        .arg("check")
        .run()
        .ok()
        .document();
    assert!(doc.ok && doc.problems.is_empty(), "{doc:?}");
    // A version whose binary is not here: nothing is called fine.
    let doc: CheckReport = tool(TOOL)
        .arg("-f")
        .arg(&f)
        .args(["--pg-version", "9", "check"])
        .run()
        .expect_code(1)
        .document();
    assert!(!doc.ok);
    assert_eq!(
        doc.unchecked
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["work_mem", "wal_level"],
        "{doc:?}"
    );
    // set and --auto set refuse what ALTER SYSTEM refuses; nothing is written.
    let data = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let out = tool(TOOL)
        .arg("-D")
        .arg(&data)
        .args(["--auto", "set", "wal_level=bogus"])
        .run()
        .expect_error(1, TOOL);
    assert!(out.stderr.contains("wal_level"), "{}", out.stderr);
    assert!(!data.join("postgresql.auto.conf").exists());
    tool(TOOL)
        .arg("-f")
        .arg(&f)
        .args(["set", "archive_mode=maybe"])
        .run()
        .expect_error(1, TOOL);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "work_mem = 64MB\nwal_level = logical\n"
    );
    let doc: ChangeReport = tool(TOOL)
        .arg("-D")
        .arg(&data)
        .args(["--auto", "set", "wal_level=logical"])
        .run()
        .ok()
        .document();
    assert!(doc.changed && doc.unchecked.is_empty(), "{doc:?}");
}

/// show marks a value the server refuses as pg_file_settings does: not applied, "setting
/// could not be applied"; an earlier duplicate stays ignored and is not the effective setting.
#[test]
fn show_refuses_the_values_the_server_refuses() {
    let c = Cluster::start();
    let conf = c.data.join("postgresql.conf");
    let original = std::fs::read(&conf).unwrap();
    let mut text = original.clone();
    text.extend_from_slice(
        b"work_mem = 4MB\nwork_mem = 'abc'\nmaintenance_work_mem = 10\nlog_min_messages = bogus\nrandom_page_cost = 2\n",
    );
    std::fs::write(&conf, &text).unwrap();
    let doc: ShowReport = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .arg("show")
        .run()
        .ok()
        .document();
    let mut client = c.client();
    let server: Vec<(String, bool, Option<String>)> = client
        .query(
            "SELECT name, applied, error FROM pg_file_settings \
             WHERE name IN ('work_mem', 'maintenance_work_mem', 'log_min_messages', 'random_page_cost') \
             ORDER BY seqno",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    std::fs::write(&conf, &original).unwrap();
    let names = [
        "work_mem",
        "maintenance_work_mem",
        "log_min_messages",
        "random_page_cost",
    ];
    let mine: Vec<(String, bool, Option<String>)> = doc
        .entries
        .iter()
        .filter(|e| e.name.as_deref().is_some_and(|n| names.contains(&n)))
        .map(|e| (e.name.clone().unwrap(), e.applied, e.error.clone()))
        .collect();
    assert_eq!(mine, server, "{doc:?}");
    let refused = |n: &str| {
        (
            n.to_string(),
            false,
            Some("setting could not be applied".to_string()),
        )
    };
    // The five rows appended (the cluster's own file may set some of these names too).
    let tail = &mine[mine.len() - 5..];
    assert_eq!(tail[0], ("work_mem".to_string(), false, None));
    assert_eq!(tail[1], refused("work_mem"));
    assert_eq!(tail[2], refused("maintenance_work_mem"));
    assert_eq!(tail[3], refused("log_min_messages"));
    assert_eq!(tail[4], ("random_page_cost".to_string(), true, None));
    assert!(!doc.settings.contains_key("work_mem"), "{:?}", doc.settings);
    assert!(
        !doc.settings.contains_key("log_min_messages"),
        "{:?}",
        doc.settings
    );
    assert_eq!(doc.settings["random_page_cost"].value, "2");
    assert_eq!(doc.errors.len(), 3, "{:?}", doc.errors);
}

/// Issue 18, item 5: an apply that would leave the file without any setting is refused
/// without --allow-empty.
#[test]
fn apply_that_empties_the_file_needs_allow_empty() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src.conf");
    std::fs::write(&src, "# nothing set here\n").unwrap();
    let dst = d.path().join("dst.conf");
    std::fs::write(&dst, "work_mem = 4MB\nport = 5433\n").unwrap();
    let got = tool(TOOL)
        .arg("-f")
        .arg(&src)
        .args(["get", "work_mem", "port"])
        .run()
        .ok()
        .stdout;
    let out = tool(TOOL)
        .arg("-f")
        .arg(&dst)
        .args(["apply", "-"])
        .stdin(got.clone())
        .run()
        .expect_error(1, TOOL);
    assert!(out.stderr.contains("--allow-empty"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&dst).unwrap(),
        "work_mem = 4MB\nport = 5433\n"
    );
    tool(TOOL)
        .arg("-f")
        .arg(&dst)
        .args(["apply", "-", "--allow-empty"])
        .stdin(got)
        .run()
        .ok();
    assert_eq!(
        std::fs::read_to_string(&dst).unwrap(),
        "#work_mem = 4MB\n#port = 5433\n"
    );
}
