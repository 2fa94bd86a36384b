//! Defaults from one file (SPEC "Operating it"), with the real binaries: the file, the
//! environment and the flags in every order of precedence, [global], [TOOL] and
//! [TOOL.SUBCOMMAND] sections, mistakes named with file and line, --print-config on every
//! tool, and a primary whose archive_command is just 'wal-archive push %p'.

mod wal_support;

use pgdr_core::config::{PrintedConfig, Setting, Source};
use pgdr_testkit::{chown_to_pg_user, short_tempdir, tool, Cluster, ToolCommand};
use std::path::{Path, PathBuf};
use wal_support::{bin, wait_archived};

/// A configuration file in a fresh directory.
struct Conf {
    dir: tempfile::TempDir,
    path: PathBuf,
}

fn conf(text: &str) -> Conf {
    let dir = short_tempdir("pgdr-conf");
    let path = dir.path().join("pgdr.toml");
    std::fs::write(&path, text).unwrap();
    Conf { dir, path }
}

fn with(c: &Conf, name: &str) -> ToolCommand {
    tool(name).env("PGDR_CONFIG", &c.path)
}

/// `--print-config` of `name ARGS`, checked.
fn printed(cmd: ToolCommand) -> PrintedConfig {
    cmd.arg("--print-config").run().ok().document()
}

fn setting(p: &PrintedConfig, key: &str) -> Setting {
    p.settings
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no {key} in {p:?}"))
}

#[test]
fn flag_over_env_over_file_over_default_in_every_combination() {
    let c = conf("[global]\nrepo = \"/from/file\"\n");
    let none = conf("");
    // Every subset of {file, env, flag} for --repo (which WAL_ARCHIVE_REPO feeds).
    for mask in 0..8u8 {
        let (file, env, flag) = (mask & 1 != 0, mask & 2 != 0, mask & 4 != 0);
        let mut cmd = with(if file { &c } else { &none }, "wal-archive");
        if env {
            cmd = cmd.env("WAL_ARCHIVE_REPO", "/from/env");
        }
        if flag {
            cmd = cmd.args(["--repo", "/from/flag"]);
        }
        let s = setting(&printed(cmd.arg("list")), "repo");
        let (value, source) = match (flag, env, file) {
            (true, _, _) => (serde_json::json!("/from/flag"), Source::Flag),
            (false, true, _) => (serde_json::json!("/from/env"), Source::Env),
            (false, false, true) => (serde_json::json!("/from/file"), Source::File),
            (false, false, false) => (serde_json::Value::Null, Source::Unset),
        };
        assert_eq!(
            (s.value.clone(), s.source),
            (value, source),
            "mask {mask}: {s:?}"
        );
        assert_eq!(s.env.is_some(), source == Source::Env, "{s:?}");
        if source == Source::Env {
            assert_eq!(s.env.as_deref(), Some("WAL_ARCHIVE_REPO"));
        }
        if source == Source::File {
            let at = format!("{}:2 [global]", c.path.display());
            assert_eq!(s.file.as_deref(), Some(at.as_str()));
        }
    }
    // An option no variable feeds: flag over file over the built-in default.
    let c = conf("[wal-archive.push]\nparallel = 4\n");
    let s = setting(
        &printed(with(&none, "wal-archive").args(["push", "x"])),
        "parallel",
    );
    assert_eq!(
        (s.value, s.source),
        (serde_json::json!("0"), Source::Default)
    );
    let s = setting(
        &printed(with(&c, "wal-archive").args(["push", "x"])),
        "parallel",
    );
    assert_eq!((s.value, s.source), (serde_json::json!("4"), Source::File));
    let p = printed(with(&c, "wal-archive").args(["push", "x", "--parallel", "2"]));
    let s = setting(&p, "parallel");
    assert_eq!((s.value, s.source), (serde_json::json!("2"), Source::Flag));
    // An environment variable set but empty counts as unset: the file shows through.
    let c = conf("[global]\npgdata = \"/from/file\"\n");
    let s = setting(&printed(with(&c, "snap-take").env("PGDATA", "")), "pgdata");
    assert_eq!(
        (s.value, s.source),
        (serde_json::json!("/from/file"), Source::File)
    );
    // conf-edit's -D takes PGDATA the same way as the other tools.
    for name in ["conf-edit", "snap-take", "snap-prune", "snap-clone"] {
        let mut cmd = with(&c, name).env("PGDATA", "/from/env");
        if name == "conf-edit" {
            cmd = cmd.arg("show");
        }
        let s = setting(&printed(cmd), "pgdata");
        assert_eq!(
            (s.value, s.source),
            (serde_json::json!("/from/env"), Source::Env),
            "{name}"
        );
    }
}

#[test]
fn the_most_specific_section_wins_and_reaches_only_its_subcommand() {
    let layers = [
        ("[global]\nrepo = \"/g\"\n", "/g", "[global]"),
        ("[wal-archive]\nrepo = \"/t\"\n", "/t", "[wal-archive]"),
        (
            "[wal-archive.list]\nrepo = \"/s\"\n",
            "/s",
            "[wal-archive.list]",
        ),
    ];
    // Every non-empty combination, written in both orders.
    for mask in 1..8usize {
        let chosen: Vec<_> = (0..3).filter(|i| mask & (1 << i) != 0).collect();
        let most = *chosen.last().unwrap();
        for reversed in [false, true] {
            let mut order = chosen.clone();
            if reversed {
                order.reverse();
            }
            let text: String = order.iter().map(|i| layers[*i].0).collect();
            let c = conf(&text);
            let s = setting(&printed(with(&c, "wal-archive").arg("list")), "repo");
            assert_eq!(s.value, serde_json::json!(layers[most].1), "{text}");
            assert!(
                s.file.as_deref().unwrap().ends_with(layers[most].2),
                "{s:?}"
            );
            // Another subcommand does not see [wal-archive.list].
            let s = setting(&printed(with(&c, "wal-archive").arg("verify")), "repo");
            let expect = chosen.iter().rev().find(|i| **i < 2).map(|i| layers[*i].1);
            assert_eq!(s.value.as_str(), expect, "{text}");
        }
    }
    // [global] keys reach every tool that has the option, and only those.
    let c = conf("[global]\npgdata = \"/pg\"\nrepo = \"/r\"\n\n[snap-prune]\nkeep-daily = 7\n");
    let p = printed(with(&c, "snap-prune"));
    assert_eq!(setting(&p, "pgdata").value, "/pg");
    assert_eq!(setting(&p, "keep-daily").value, "7");
    // snap-prune has --repo (a repository's images), which [global] repo must not choose.
    assert!(setting(&p, "repo").value.is_null(), "{p:?}");
    let p = printed(with(&c, "hba-edit").arg("list"));
    assert_eq!(setting(&p, "pgdata").value, "/pg");
    assert!(!p.settings.contains_key("keep-daily") && !p.settings.contains_key("repo"));
    assert_eq!(p.command, ["hba-edit", "list"]);
    let p = printed(with(&c, "repl-lag"));
    assert!(!p.settings.contains_key("pgdata") && !p.settings.contains_key("keep-daily"));
}

#[test]
fn the_file_makes_the_commands_short() {
    // A required option (snap-prune's policy group, wal-archive prune's bound) given by the file.
    let d = short_tempdir("pgdr-cfg");
    let repo = d.path().join("repo");
    let c = conf(&format!(
        "[global]\nrepo = \"{}\"\n\n[wal-archive.prune]\nkeep-days = 14\ndry-run = true\n",
        repo.display()
    ));
    let r: pgdr_wal::doc::InitReport = with(&c, "wal-archive").arg("init").run().ok().document();
    assert_eq!(r.repo, repo.display().to_string());
    let l: pgdr_wal::doc::ListReport = with(&c, "wal-archive").arg("list").run().ok().document();
    assert_eq!(l.repo, r.repo);
    let p: pgdr_wal::doc::PruneReport = with(&c, "wal-archive").arg("prune").run().ok().document();
    assert!(p.dry_run, "{p:?}");
    // A flag that conflicts with the file's bound replaces it instead of failing.
    let p: pgdr_wal::doc::PruneReport = with(&c, "wal-archive")
        .args(["prune", "--before", "000000010000000000000001"])
        .run()
        .ok()
        .document();
    assert!(p.dry_run);
    assert_eq!(p.source, pgdr_wal::doc::PruneSource::Before);
}

#[test]
fn mistakes_are_one_line_naming_file_line_and_key() {
    let cases = [
        (
            "[snap-prune]\nkeep-daily = 7\nkeep-dayly = 7\n",
            "snap-prune",
            ":3: unknown key \"keep-dayly\" in [snap-prune]",
        ),
        (
            "[global]\nrepoo = \"/x\"\n",
            "snap-prune",
            ":2: unknown key \"repoo\" in [global]: no pgdr tool has the option --repoo",
        ),
        (
            "\n[snap-prunne]\nkeep-daily = 7\n",
            "repl-lag",
            ":2: unknown section [snap-prunne]",
        ),
        (
            "[wal-archive.pussh]\n",
            "wal-archive",
            ":1: unknown section [wal-archive.pussh]: wal-archive has no subcommand \"pussh\"",
        ),
        (
            "[wal-archive.push]\ncompress = \"xz\"\n",
            "wal-archive",
            ":2: \"xz\" is not a value of --compress",
        ),
        (
            "[snap-prune]\ndry-run = \"yes\"\n",
            "snap-prune",
            ":2: --dry-run is a switch",
        ),
        (
            "repo = \"/x\"\n",
            "snap-take",
            ":1: key \"repo\" is outside any section",
        ),
        ("[global]\nrepo = /x\n", "snap-take", ":2:"),
    ];
    for (text, name, expect) in cases {
        let c = conf(text);
        let mut cmd = with(&c, name);
        if name == "wal-archive" {
            cmd = cmd.arg("list");
        }
        // repl-lag's usage errors are UNKNOWN (3), as monitoring plugins have them.
        let code = if name == "repl-lag" { 3 } else { 2 };
        let out = cmd.run().expect_error(code, name);
        let want = format!(
            "{name}: bad configuration file {}{expect}",
            c.path.display()
        );
        assert!(
            out.stderr.starts_with(&want),
            "{}\nwanted: {want}",
            out.stderr
        );
        // --print-config shows the mistake too instead of a guess.
        with(&c, name)
            .arg("--print-config")
            .run()
            .expect_error(code, name);
    }
    // restore_command: a broken file stops recovery (exit above 125), never ends it early.
    let c = conf("[wal-archive]\nrepoo = \"/x\"\n");
    let out = with(&c, "wal-archive")
        .args(["get", "000000010000000000000001", "/tmp/x"])
        .run()
        .expect_error(126, "wal-archive");
    assert!(
        out.stderr.contains("unknown key \"repoo\""),
        "{}",
        out.stderr
    );
    // PGDR_CONFIG naming a missing file is an error; the default path missing is no file.
    let out = tool("repl-lag")
        .env("PGDR_CONFIG", "/nonexistent/pgdr.toml")
        .run()
        .expect_error(3, "repl-lag");
    assert!(
        out.stderr.contains("/nonexistent/pgdr.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn print_config_on_every_tool_never_shows_a_password() {
    let c = conf(
        "[global]\ndbname = \"host=/tmp user=u password=s3cret dbname=postgres\"\npretty = true\n",
    );
    for t in pgdr_docgen::tools() {
        let out = with(&c, t.name).arg("--print-config").run().ok();
        assert!(!out.stdout.contains("s3cret"), "{}: {}", t.name, out.stdout);
        assert!(
            out.stdout.starts_with("{\n"),
            "pretty from the file: {}",
            out.stdout
        );
        let p: PrintedConfig = out.document();
        assert_eq!(p.command, [t.name]);
        assert_eq!(p.config_file.as_deref(), Some(c.path.to_str().unwrap()));
        assert_eq!(setting(&p, "pretty").source, Source::File, "{}", t.name);
        // Every long option of the tool is listed.
        for a in (t.command)().get_arguments() {
            if let (Some(long), false) = (a.get_long(), a.is_hide_set()) {
                assert!(
                    p.settings.contains_key(long),
                    "{}: --{long} missing",
                    t.name
                );
            }
        }
        if let Some(d) = p.settings.get("dbname") {
            let shown = d.value.to_string();
            assert!(shown.contains("password=********"), "{}: {shown}", t.name);
        }
    }
    // Required options may be missing, and the flags given are shown.
    let p: PrintedConfig = tool("wal-archive")
        .args(["push", "--print-config", "--repo", "/r"])
        .run()
        .ok()
        .document();
    assert_eq!(p.config_file, None);
    assert_eq!(setting(&p, "repo").source, Source::Flag);
}

/// A primary whose archive_command names no repository: the file does.
#[test]
fn archive_command_is_just_wal_archive_push() {
    let d = short_tempdir("pgdr-cfga");
    let repo = d.path().join("repo");
    let c = conf(&format!("[global]\nrepo = \"{}\"\n", repo.display()));
    chown_to_pg_user(c.dir.path());
    chown_to_pg_user(d.path());
    let mut primary = Cluster::builder()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = 'PGDR_CONFIG={} {} push %p'",
            c.path.display(),
            bin().display()
        ))
        .init_only();
    with(&c, "wal-archive")
        .arg("init")
        .arg("--pgdata")
        .arg(&primary.data)
        .run()
        .ok();
    chown_tree(&repo);
    primary.start_server();
    let name = primary
        .query_value("select pg_walfile_name(pg_switch_wal())")
        .unwrap();
    wait_archived(&primary, &name);
    let l: pgdr_wal::doc::ListReport = with(&c, "wal-archive").arg("list").run().ok().document();
    assert!(
        l.timelines
            .iter()
            .any(|t| t.last.as_deref() >= Some(name.as_str())),
        "{l:?}"
    );
    // And get by hand (restore_command = 'wal-archive get %f %p').
    let dest = d.path().join("seg");
    let g: pgdr_wal::doc::GetReport = with(&c, "wal-archive")
        .args(["get", &name])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.bytes, std::fs::metadata(&dest).unwrap().len());
}

fn chown_tree(p: &Path) {
    for e in walk(p) {
        chown_to_pg_user(&e);
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
