//! What every tool promises alike (SPEC "Conventions"): help with examples, version, usage
//! errors as one line with the documented code, a man page with the required sections, and a
//! closed stdout pipe that ends the run quietly.

use pgdr_testkit::tool;
use std::process::{Command, Stdio};

/// repl-lag follows the monitoring-plugin codes: a usage error is UNKNOWN (3), not 2.
fn usage_code(name: &str) -> i32 {
    if name == "repl-lag" {
        3
    } else {
        2
    }
}

#[test]
fn every_tool_is_built_and_listed_once() {
    let tools = pgdr_docgen::tools();
    assert!(!tools.is_empty());
    let mut names: Vec<_> = tools.iter().map(|t| t.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), tools.len(), "a tool is listed twice");
    for t in &tools {
        assert!(
            pgdr_testkit::bin_dir().join(t.name).is_file(),
            "{} not built",
            t.name
        );
        assert_eq!((t.command)().get_name(), t.name);
    }
}

#[test]
fn help_has_examples_and_version_matches() {
    for t in pgdr_docgen::tools() {
        let help = tool(t.name).arg("--help").run().ok();
        assert!(
            help.stdout.contains("Usage:"),
            "{}: {}",
            t.name,
            help.stdout
        );
        assert!(
            help.stdout.to_lowercase().contains("example"),
            "{} --help has no examples",
            t.name
        );
        let v = tool(t.name).arg("--version").run().ok();
        assert_eq!(
            v.stdout.trim(),
            format!("{} {}", t.name, pgdr_core::VERSION)
        );
    }
}

#[test]
fn unknown_flag_is_one_line_usage_error() {
    for t in pgdr_docgen::tools() {
        tool(t.name)
            .arg("--no-such-flag")
            .run()
            .expect_error(usage_code(t.name), t.name);
    }
}

#[test]
fn man_pages_have_the_required_sections() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/man1");
    for t in pgdr_docgen::tools() {
        let page = std::fs::read_to_string(dir.join(format!("{}.1", t.name)))
            .unwrap_or_else(|e| panic!("man page of {}: {e}", t.name));
        for section in [
            "SYNOPSIS",
            "JSON OUTPUT",
            "EXIT STATUS",
            "POSTGRESQL VERSIONS",
            "EXAMPLES",
        ] {
            assert!(page.contains(section), "{}.1 lacks {section}", t.name);
        }
        // Every exit code the tool documents appears in the page.
        for (code, _) in t.man.exit_status {
            assert!(
                page.contains(&format!(".B {code}\n")),
                "{}.1 lacks exit code {code}",
                t.name
            );
        }
    }
}

#[test]
fn closed_stdout_ends_quietly() {
    // conf-edit show prints a document; with the reading end already closed the write fails
    // with EPIPE, which must end the run without a panic message or a signal death.
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("postgresql.conf");
    std::fs::write(&conf, "port = 5433\nwork_mem = '4MB'\n").unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(pgdr_testkit::bin_dir().join("conf-edit"))
        .args(["-f"])
        .arg(&conf)
        .arg("show")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn failure_prints_nothing_on_stdout() {
    let out = tool("conf-edit")
        .args(["-f", "/nonexistent/postgresql.conf", "show"])
        .run()
        .expect_error(1, "conf-edit");
    assert!(
        out.stderr.contains("No such file or directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn password_in_dbname_is_not_in_the_process_title() {
    // A server that accepts the TCP connection and never answers keeps the tool waiting
    // while we read its command line as `ps` would.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = Command::new(pgdr_testkit::bin_dir().join("repl-lag"))
        .arg("-d")
        .arg(format!(
            "host=127.0.0.1 port={port} user=u password=s3cretpw sslmode=disable connect_timeout=20"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cmdline = format!("/proc/{}/cmdline", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let seen = loop {
        let text =
            String::from_utf8_lossy(&std::fs::read(&cmdline).unwrap_or_default()).into_owned();
        // Before the tool's first instruction has run, the kernel shows what we passed.
        if text.contains("password=********") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(listener);
    assert!(
        seen.contains("password=********"),
        "command line never masked: {seen:?}"
    );
    assert!(!seen.contains("s3cretpw"), "{seen:?}");
}
