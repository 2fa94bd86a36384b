//! `make install` (SPEC "Operating it": shell and system integration): the tools, their man
//! pages, bash/zsh/fish completions from the same definitions as --help, and the example
//! systemd units, which systemd-analyze accepts; and man pages that name only pages that exist.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `make install DESTDIR=… PREFIX=/usr/local` of the debug build, once for the tests here.
/// It goes to one fixed directory under cargo's target tmpdir, emptied first: a static
/// TempDir is never dropped, so each run used to leave its 1.4 GB install behind in /tmp.
fn installed() -> &'static Path {
    static DEST: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DEST.get_or_init(|| {
        let dest = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install");
        if dest.exists() {
            std::fs::remove_dir_all(&dest).unwrap();
        }
        std::fs::create_dir_all(&dest).unwrap();
        let out = Command::new("make")
            .current_dir(repo_root())
            .args(["-s", "install", "PREFIX=/usr/local", "PROFILE=debug"])
            .arg(format!("DESTDIR={}", dest.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make install: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dest
    })
}

fn prefix() -> PathBuf {
    installed().join("usr/local")
}

#[test]
fn tools_pages_and_completions_are_installed() {
    let p = prefix();
    for t in pgdr_docgen::tools() {
        let bin = p.join("bin").join(t.name);
        let v = Command::new(&bin).arg("--version").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&v.stdout).trim(),
            format!("{} {}", t.name, pgdr_core::VERSION)
        );
        let page = p.join("share/man/man1").join(format!("{}.1", t.name));
        assert_eq!(
            std::fs::read(&page).unwrap(),
            std::fs::read(repo_root().join("man/man1").join(format!("{}.1", t.name))).unwrap()
        );
        for (shell, dir, name) in pgdr_docgen::COMPLETIONS {
            let f = p.join("share").join(dir).join(name.replace("{}", t.name));
            let text =
                std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert_eq!(text, pgdr_docgen::completion(&t, *shell), "{}", f.display());
            assert!(text.contains("print-config"), "{}", f.display());
        }
    }
    assert!(
        std::fs::read_to_string(p.join("share/zsh/site-functions/_wal-archive"))
            .unwrap()
            .starts_with("#compdef wal-archive")
    );
}

/// What bash completes after `words` (the last one being completed).
fn bash_completes(file: &Path, words: &[&str]) -> Vec<String> {
    let script = format!(
        "source '{}'; f=$(complete -p {tool} | sed -E 's/.*-F ([^ ]+).*/\\1/'); \
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
         $f {tool} '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        tool = words[0],
        words = words.join(" "),
        cword = words.len() - 1,
        line = words.join(" "),
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_options() {
    let dir = prefix().join("share/bash-completion/completions");
    let subs = bash_completes(&dir.join("wal-archive"), &["wal-archive", "pu"]);
    assert_eq!(subs, ["push"]);
    let opts = bash_completes(&dir.join("snap-prune"), &["snap-prune", "--keep-d"]);
    assert_eq!(opts, ["--keep-daily"]);
    let opts = bash_completes(&dir.join("repl-lag"), &["repl-lag", "--print-c"]);
    assert_eq!(opts, ["--print-config"]);
}

#[test]
fn systemd_units_are_installed_and_valid() {
    let dir = prefix().join("lib/systemd/system");
    let units = pgdr_docgen::units("/usr/local/bin");
    let names: Vec<_> = units.iter().map(|(n, _)| *n).collect();
    for base in ["pgdr-snap", "pgdr-copy", "pgdr-lag"] {
        for kind in ["service", "timer"] {
            assert!(
                names.contains(&format!("{base}.{kind}").as_str()),
                "{names:?}"
            );
        }
    }
    for (name, text) in &units {
        assert_eq!(
            &std::fs::read_to_string(dir.join(name)).unwrap(),
            text,
            "{name}"
        );
        assert!(!text.contains("@BINDIR@"));
        strict_parse(name, text);
    }
    // systemd's own check, with the commands pointing at this build's binaries and `man`
    // reading the installed pages (Documentation=man:…).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!pgdr_testkit::require_all(), "systemd-analyze is missing");
        eprintln!("SKIP: systemd-analyze is missing; the units were parsed strictly only");
        return;
    }
    let here = tempfile::tempdir().unwrap();
    let bindir = pgdr_testkit::bin_dir();
    let mut files = Vec::new();
    for (name, text) in pgdr_docgen::units(bindir.to_str().unwrap()) {
        let f = here.path().join(name);
        std::fs::write(&f, text).unwrap();
        files.push(f);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .env("MANPATH", prefix().join("share/man"))
        .output()
        .unwrap();
    // A warning (an unknown key) exits 0 too: any output is a failure.
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The unit file syntax, with only the keys these units may use.
fn strict_parse(name: &str, text: &str) {
    let known: &[(&str, &[&str])] = &[
        (
            "Unit",
            &[
                "Description",
                "Documentation",
                "After",
                "Wants",
                "ConditionPathExists",
                "ConditionPathIsDirectory",
            ],
        ),
        (
            "Service",
            &[
                "Type",
                "ExecStart",
                "Nice",
                "IOSchedulingClass",
                "IOSchedulingPriority",
            ],
        ),
        ("Timer", &["OnCalendar", "AccuracySec", "Persistent"]),
        ("Install", &["WantedBy"]),
    ];
    let mut section: Option<&[&str]> = None;
    let mut seen = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let (_, keys) = known
                .iter()
                .find(|(n, _)| *n == s)
                .unwrap_or_else(|| panic!("{name}:{}: unknown section [{s}]", i + 1));
            section = Some(keys);
            seen.push(s.to_string());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}:{}: not KEY=VALUE: {line}", i + 1));
        let keys = section.unwrap_or_else(|| panic!("{name}:{}: a key before any section", i + 1));
        assert!(keys.contains(&key), "{name}:{}: unknown key {key}", i + 1);
        assert!(!value.is_empty(), "{name}:{}: {key} is empty", i + 1);
    }
    let want = if name.ends_with(".timer") {
        vec!["Unit", "Timer", "Install"]
    } else {
        vec!["Unit", "Service"]
    };
    assert_eq!(seen, want, "{name}");
}

#[test]
fn man_pages_name_only_pages_that_exist() {
    let dir = repo_root().join("man/man1");
    let tools: Vec<&str> = pgdr_docgen::tools().iter().map(|t| t.name).collect();
    let reference = regex::Regex::new(r"([A-Za-z0-9_.\\-]+)\((\d)\)").unwrap();
    for t in &tools {
        let page = std::fs::read_to_string(dir.join(format!("{t}.1"))).unwrap();
        for c in reference.captures_iter(&page) {
            let name = c[1].replace("\\-", "-");
            if tools.iter().any(|x| name.starts_with(x)) {
                assert!(
                    dir.join(format!("{name}.{}", &c[2])).is_file(),
                    "{t}.1 names {name}({}), which does not exist",
                    &c[2]
                );
            }
        }
        // Every subcommand is described in the page itself.
        let cmd = pgdr_docgen::command(pgdr_docgen::TOOLS.iter().find(|x| x.name == *t).unwrap());
        for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            assert!(
                page.contains(&format!(".SS \"{t} {}\"", s.get_name())),
                "{t}.1 does not describe {}",
                s.get_name()
            );
        }
    }
    // And mandoc finds nothing to warn about (make man-check runs it too).
    if Command::new("mandoc").arg("-V").output().is_ok() {
        for t in &tools {
            let out = Command::new("mandoc")
                .args(["-T", "lint", "-W", "warning"])
                .arg(dir.join(format!("{t}.1")))
                .output()
                .unwrap();
            assert!(
                out.status.success() && out.stdout.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}
