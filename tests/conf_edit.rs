//! conf-edit against a real PostgreSQL: `--auto set` writes the bytes ALTER SYSTEM writes,
//! set → reload → pg_settings, check, and bad inputs that must change nothing. `show` against
//! each major's own `pg_file_settings` on every fixture: tests/majors.rs (helpers in
//! tests/oracle).

use pgdr_testkit::{tool, Cluster};
use serde_json::Value;
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
        assert_eq!(out.json()["changed"], true, "{sql}");
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
    assert_eq!(out.json()["changed"], false);
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
    let doc = out.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["reload"]["errors"], serde_json::json!([]), "{doc}");
    assert_eq!(
        doc["reload"]["pending_restart"],
        serde_json::json!([]),
        "{doc}"
    );
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
        .json();
    let s = &get["settings"];
    assert_eq!(s["nonexistent.param"], Value::Null);
    for (name, want) in [
        ("work_mem", "12MB"),
        ("application_name", "it's # x"),
        ("search_path", "a, \"B c\""),
        ("statement_timeout", "1.5min"),
        ("listen_addresses", "127.0.0.1"),
    ] {
        assert_eq!(s[name]["value"], want, "{name}");
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
        .json();
    assert_eq!(
        doc["reload"]["pending_restart"],
        serde_json::json!(["max_connections"]),
        "{doc}"
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
    let doc = out.json();
    let problems: Vec<String> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
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
        "{doc}"
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
        .json();
    let mut problems: Vec<String> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        vec!["fsync", "max_connections", "wal_level", "work_mem"],
        "{doc}"
    );
    assert_eq!(
        doc["needs_restart"],
        serde_json::json!(["shared_buffers"]),
        "{doc}"
    );
    // Offline: the server binary itself reads the files, as the data directory's owner.
    let conf = c.data.join("postgresql.conf");
    let good = tool(TOOL)
        .arg("-D")
        .arg(&c.data)
        .arg("check")
        .run()
        .ok()
        .json();
    assert_eq!(good["ok"], true, "{good}");
    assert_eq!(good["server_check"]["ran"], true, "{good}");
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
        .json();
    std::fs::write(&conf, &original).unwrap();
    assert!(doc["problems"].to_string().contains("bogus"), "{doc}");
    assert!(
        !doc["server_check"]["errors"].as_array().unwrap().is_empty(),
        "{doc}"
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
    let doc = run(&["show"]).ok().json();
    assert_eq!(doc["errors"][0]["line"], 2);
    // --dry-run and --backup.
    std::fs::write(&conf, "work_mem = 4MB # c\n").unwrap();
    let doc = run(&["set", "work_mem=8MB", "--dry-run"]).ok().json();
    assert!(
        doc["diff"]
            .as_str()
            .unwrap()
            .contains("+work_mem = 8MB # c"),
        "{doc}"
    );
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "work_mem = 4MB # c\n"
    );
    let doc = run(&["set", "work_mem=8MB", "--backup"]).ok().json();
    let bak = doc["backups"][0].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(bak).unwrap(),
        "work_mem = 4MB # c\n"
    );
    // Idempotent.
    let doc = run(&["set", "work_mem=8MB"]).ok().json();
    assert_eq!(doc["changed"], false);
    // Secrets are masked.
    run(&["set", "primary_conninfo=host=p user=r password=s3cret"]).ok();
    let out = run(&["get", "primary_conninfo"]).ok();
    assert!(
        !out.stdout.contains("s3cret") && out.stdout.contains("********"),
        "{}",
        out.stdout
    );
}
