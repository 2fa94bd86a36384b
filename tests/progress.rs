//! Progress of long work (SPEC "Operating it"): on stderr when stderr is a terminal (a real
//! pseudo-terminal from script(1)), nothing at all in a pipe.

mod wal_support;

use pgdr_testkit::{tool, Cluster};
use std::path::Path;
use std::process::Command;
use wal_support::{init, make_segments, wa};

/// What a terminal shows while `args` runs under a pseudo-terminal (stdout and stderr both
/// go to it), or None when script(1) is missing here.
fn on_a_terminal(args: &[&str]) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            !pgdr_testkit::require_all(),
            "script(1) (util-linux) is missing"
        );
        eprintln!("SKIP: script(1) (util-linux) is missing");
        return None;
    }
    let line = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("PGDR_CONFIG", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn bin(name: &str) -> String {
    pgdr_testkit::bin_dir().join(name).display().to_string()
}

/// The JSON document at the end of what a terminal showed.
fn last_document(screen: &str) -> serde_json::Value {
    let start = screen.rfind("{\"tool\"").expect("a document");
    serde_json::from_str(screen[start..].trim()).unwrap()
}

#[test]
fn a_copy_snapshot_shows_bytes_rate_and_time_left_on_a_terminal_only() {
    let c = Cluster::builder().init_only();
    let data = c.data.display().to_string();
    let store = c.root.path().join("snaps");
    let store = store.to_str().unwrap();
    let snap_take = bin("snap-take");
    let take = [
        snap_take.as_str(),
        "--backend",
        "copy",
        "--pgdata",
        &data,
        "--snapshot-dir",
        store,
    ];
    let Some(screen) = on_a_terminal(&take) else {
        return;
    };
    let bar = screen
        .split(['\r', '\n'])
        .find(|l| l.contains(&format!("copying {data}")))
        .unwrap_or_else(|| panic!("no progress line: {screen:?}"));
    // Bytes done of the total, the rate and the time left.
    assert!(
        bar.contains("iB/") && bar.contains("/s") && bar.contains("left"),
        "{bar:?}"
    );
    // The total is the data directory's size.
    let total = indicatif::HumanBytes(dir_bytes(&c.data)).to_string();
    assert!(bar.contains(&format!("/{total} ")), "{bar:?} total {total}");
    let doc = last_document(&screen);
    assert_eq!(doc["tool"], "snap-take");
    // In a pipe (cron, CI): the document, and not one byte on stderr.
    let out = tool("snap-take")
        .args([
            "--backend",
            "copy",
            "--snapshot-dir",
            store,
            "--pgdata",
            &data,
        ])
        .run()
        .ok();
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
    assert_eq!(out.json()["tool"], "snap-take");
}

#[test]
fn verify_shows_progress_on_a_terminal_only() {
    let (dir, names) = make_segments(3);
    let d = pgdr_testkit::short_tempdir("pgdr-prog");
    let repo = d.path().join("repo");
    init(&repo, None);
    for n in &names {
        wa(&repo)
            .arg("push")
            .arg(dir.path().join("pg_wal").join(n))
            .run()
            .ok();
    }
    let repo_s = repo.display().to_string();
    let Some(screen) = on_a_terminal(&[bin("wal-archive").as_str(), "verify", "--repo", &repo_s])
    else {
        return;
    };
    assert!(
        screen.contains(&format!("verifying {repo_s}")) && screen.contains("left"),
        "{screen:?}"
    );
    assert_eq!(last_document(&screen)["ok"], true);
    let out = wa(&repo).arg("verify").run().ok();
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
