//! Applying the file to a tool's clap definition, generically: every long option the file
//! sets for this run becomes that argument's default value, so clap itself keeps the order
//! flag > environment (`env = "PGDATA"`) > file > built-in default, and `ArgMatches::value_source`
//! tells where each value came from.

use super::check::{check, words_for};
use super::file::{error_at, ConfigFile, GLOBAL};
use crate::error::Result;
use crate::runner::Tool;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::path::PathBuf;

/// The run's command with the file's values in place.
#[derive(Debug, Clone)]
pub struct Applied {
    base: Command,
    /// The subcommands given on the command line (`["push"]`).
    pub path: Vec<String>,
    /// The file's values for this run.
    pub supplied: Vec<Supplied>,
    /// The file they came from.
    pub file: Option<PathBuf>,
}

/// One option whose default the file supplies.
#[derive(Debug, Clone)]
pub struct Supplied {
    /// The command level that defines the argument (0: the tool, 1: its subcommand, …).
    pub level: usize,
    pub id: String,
    pub words: Vec<String>,
    /// `[wal-archive.push]`.
    pub section: String,
    pub line: usize,
}

/// Whether the file can set `arg`: a long option (not help, version or --print-config).
pub(crate) fn configurable(arg: &Arg) -> bool {
    !arg.is_positional()
        && arg.get_long().is_some()
        && arg.get_id() != super::PRINT_CONFIG
        && matches!(
            arg.get_action(),
            ArgAction::Set
                | ArgAction::Append
                | ArgAction::SetTrue
                | ArgAction::SetFalse
                | ArgAction::Count
        )
}

/// Options a `[global]` key does not reach, though they share its name: there the option
/// chooses what the run works on rather than where. `snap-prune --repo` prunes a repository's
/// images instead of the data directory's snapshots, so `[global] repo` (the WAL repository
/// every other tool reads) must not turn `snap-take | snap-prune -` into an image prune; it is
/// set in `[snap-prune]` when wanted.
const NOT_FROM_GLOBAL: &[(&str, &str)] = &[("snap-prune", "repo")];

fn not_from_global(tool: &str, long: &str) -> bool {
    NOT_FROM_GLOBAL.contains(&(tool, long))
}

/// Options whose values are shown as `********`.
pub(crate) fn secret(long: &str) -> bool {
    ["password", "secret", "passphrase", "token"]
        .iter()
        .any(|w| long.contains(w))
}

/// The subcommands `argv` runs, found as clap would: options (and the values they take) are
/// skipped, the first word naming a subcommand descends into it. Works for `--help` too.
pub fn subcommand_path(cmd: &Command, argv: &[OsString]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cur = cmd;
    let mut inherited: Vec<&Arg> = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let Some(word) = argv[i].to_str() else {
            i += 1;
            continue;
        };
        if word == "--" {
            break;
        }
        let visible = || cur.get_arguments().chain(inherited.iter().copied());
        let takes_value = |a: &Arg| a.get_action().takes_values();
        if let Some(long) = word.strip_prefix("--") {
            let found = visible().find(|a| {
                a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|v| v.contains(&long))
            });
            if found.is_some_and(takes_value) {
                i += 1;
            }
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                if let Some(a) = visible().find(|a| a.get_short() == Some(c)) {
                    if takes_value(a) {
                        // The value is the rest of the word, or the next word.
                        if at + c.len_utf8() == shorts.len() {
                            i += 1;
                        }
                        break;
                    }
                }
            }
        } else if let Some(sub) = cur.find_subcommand(word) {
            inherited.extend(cur.get_arguments().filter(|a| a.is_global_set()));
            path.push(sub.get_name().to_string());
            cur = sub;
        }
        i += 1;
    }
    path
}

/// The commands along `path`: the tool first.
pub(super) fn levels<'a>(cmd: &'a Command, path: &[String]) -> Vec<&'a Command> {
    let mut out = vec![cmd];
    let mut cur = cmd;
    for name in path {
        match cur.find_subcommand(name) {
            Some(s) => {
                out.push(s);
                cur = s;
            }
            None => break,
        }
    }
    out
}

/// Changes the command at `path` below `cmd`.
fn at_level(cmd: Command, path: &[String], f: impl FnOnce(Command) -> Command) -> Command {
    match path.split_first() {
        None => f(cmd),
        Some((first, rest)) => cmd.mut_subcommand(first, |s| at_level(s, rest, f)),
    }
}

/// `cmd` with every environment variable that is set but empty dropped, at every level: it
/// counts as unset (then the file or the default applies). Left to clap, "" would be the
/// value, and a global option's variable would even override the flag given at another level.
fn without_empty_env(mut cmd: Command) -> Command {
    let empty: Vec<String> = cmd
        .get_arguments()
        .filter(|a| {
            a.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.is_empty())
        })
        .map(|a| a.get_id().to_string())
        .collect();
    for id in empty {
        cmd = cmd.mut_arg(id, |a| a.env(None));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        cmd = cmd.mut_subcommand(name, without_empty_env);
    }
    cmd
}

/// Checks the file against the tool (and, for `[global]` and section names, against every
/// registered tool), and gives the command of the run `argv` the file's values.
///
/// # Errors
/// Usage errors naming the file and line: an unknown section, subcommand or key; a key given
/// twice in a section; a value the option does not accept.
pub fn apply(
    file: &ConfigFile,
    cmd: Command,
    argv: &[OsString],
    tools: Option<&[Tool]>,
) -> Result<Applied> {
    let tool = cmd.get_name().to_string();
    check(file, &cmd, &tool, tools)?;
    let path = subcommand_path(&cmd, argv);
    let lv = levels(&cmd, &path);
    // Sections of this run, least specific first: [global], [tool], [tool.sub], …
    let mut chain: Vec<&super::file::Section> = file
        .sections
        .iter()
        .filter(|s| s.path == [GLOBAL])
        .collect();
    for depth in 0..lv.len() {
        let want: Vec<&str> = std::iter::once(tool.as_str())
            .chain(path[..depth].iter().map(String::as_str))
            .collect();
        chain.extend(file.sections.iter().filter(|s| s.path == want));
    }
    let mut supplied = Vec::new();
    for (level, c) in lv.iter().enumerate() {
        for arg in c.get_arguments().filter(|a| configurable(a)) {
            let long = arg.get_long().unwrap_or_default();
            let found = chain.iter().rev().find_map(|s| {
                if s.path == [GLOBAL] && not_from_global(&tool, long) {
                    return None;
                }
                s.entries
                    .iter()
                    .find(|e| e.option() == long)
                    .map(|e| (s, e))
            });
            let Some((section, entry)) = found else {
                continue;
            };
            let words =
                words_for(arg, entry).map_err(|why| error_at(&file.path, entry.line, why))?;
            supplied.push(Supplied {
                level,
                id: arg.get_id().to_string(),
                words,
                section: section.title(),
                line: entry.line,
            });
        }
    }
    Ok(Applied {
        base: cmd,
        path,
        supplied,
        file: Some(file.path.clone()),
    })
}

impl Applied {
    /// The command as defined, with no file.
    pub fn none(cmd: Command, argv: &[OsString]) -> Applied {
        Applied {
            path: subcommand_path(&cmd, argv),
            base: cmd,
            supplied: Vec::new(),
            file: None,
        }
    }

    /// The command with the file's values, but those in `skip`.
    fn command(&self, skip: &[usize]) -> Command {
        let mut cmd = without_empty_env(self.base.clone());
        for (k, s) in self.supplied.iter().enumerate() {
            if skip.contains(&k) {
                continue;
            }
            let id = s.id.clone();
            let words = s.words.clone();
            cmd = at_level(cmd, &self.path[..s.level], |c| {
                let groups: Vec<String> = c
                    .get_groups()
                    .filter(|g| g.is_required_set() && g.get_args().any(|a| a == id.as_str()))
                    .map(|g| g.get_id().to_string())
                    .collect();
                let mut c = c.mut_arg(&id, |a| a.required(false).default_values(words));
                for g in groups {
                    c = c.mut_group(g, |g| g.required(false));
                }
                c
            });
        }
        cmd
    }

    /// The matches of the command at `level` (0: the tool).
    fn level_matches<'m>(&self, m: &'m ArgMatches, level: usize) -> Option<&'m ArgMatches> {
        let mut cur = m;
        for name in &self.path[..level] {
            cur = cur.subcommand_matches(name)?;
        }
        Some(cur)
    }

    /// The file values that yield to an option given on the command line or in the
    /// environment that conflicts with them (clap ignores conflicts with defaults, and the
    /// tool would otherwise see both).
    fn yielding(&self, m: &ArgMatches) -> Vec<usize> {
        let lv = levels(&self.base, &self.path);
        let mut out = Vec::new();
        for (k, s) in self.supplied.iter().enumerate() {
            let (Some(c), Some(lm)) = (lv.get(s.level), self.level_matches(m, s.level)) else {
                continue;
            };
            let Some(arg) = c.get_arguments().find(|a| a.get_id() == s.id.as_str()) else {
                continue;
            };
            let mut rivals: Vec<String> = c
                .get_arg_conflicts_with(arg)
                .iter()
                .map(|a| a.get_id().to_string())
                .collect();
            for other in c.get_arguments() {
                if c.get_arg_conflicts_with(other)
                    .iter()
                    .any(|a| a.get_id() == s.id.as_str())
                {
                    rivals.push(other.get_id().to_string());
                }
            }
            for g in c.get_groups() {
                let mut g = g.clone();
                if !g.is_multiple() && g.get_args().any(|a| a == s.id.as_str()) {
                    rivals.extend(g.get_args().map(|a| a.to_string()));
                }
            }
            let explicit = rivals.iter().filter(|r| **r != s.id).any(|r| {
                matches!(
                    lm.try_contains_id(r).ok().and_then(|_| lm.value_source(r)),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            });
            if explicit {
                out.push(k);
            }
        }
        out
    }

    /// Parses `argv`. `relaxed` (for --print-config): nothing is required and errors are
    /// ignored. Returns the matches and the file values in effect (indices into `supplied`).
    ///
    /// # Errors
    /// clap's, for the runner to report.
    pub fn parse(
        &self,
        argv: &[OsString],
        relaxed: bool,
    ) -> std::result::Result<(ArgMatches, Vec<usize>), clap::Error> {
        let prepare = |c: Command| if relaxed { relax(c) } else { c };
        let m = prepare(self.command(&[])).try_get_matches_from(argv)?;
        let skip = self.yielding(&m);
        let in_effect = (0..self.supplied.len())
            .filter(|k| !skip.contains(k))
            .collect();
        if skip.is_empty() {
            return Ok((m, in_effect));
        }
        let m = prepare(self.command(&skip)).try_get_matches_from(argv)?;
        Ok((m, in_effect))
    }

    /// The commands of the run (the tool first).
    pub fn levels(&self) -> Vec<&Command> {
        levels(&self.base, &self.path)
    }

    /// The matches at `level`, for the printed settings.
    pub fn matches_at<'m>(&self, m: &'m ArgMatches, level: usize) -> Option<&'m ArgMatches> {
        self.level_matches(m, level)
    }
}

/// Nothing required, errors ignored, at every level.
fn relax(cmd: Command) -> Command {
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let groups: Vec<String> = cmd.get_groups().map(|g| g.get_id().to_string()).collect();
    let mut cmd = cmd
        .ignore_errors(true)
        .subcommand_required(false)
        .arg_required_else_help(false);
    for id in ids {
        cmd = cmd.mut_arg(id, |a| a.required(false));
    }
    for g in groups {
        cmd = cmd.mut_group(g, |g| g.required(false));
    }
    cmd.mut_subcommands(relax)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::parse;
    use crate::Error;
    use std::path::Path;

    fn cmd() -> Command {
        Command::new("wal-archive")
            .arg(
                Arg::new("repo")
                    .long("repo")
                    .global(true)
                    .env("PGDR_TEST_APPLY_REPO"),
            )
            .arg(
                Arg::new("pretty")
                    .long("pretty")
                    .global(true)
                    .action(ArgAction::SetTrue),
            )
            .subcommand(
                Command::new("push")
                    .arg(Arg::new("path").required(true))
                    .arg(
                        Arg::new("parallel")
                            .long("parallel")
                            .value_parser(clap::value_parser!(u32))
                            .default_value("0"),
                    )
                    .arg(
                        Arg::new("compress")
                            .long("compress")
                            .value_parser(["none", "lz4", "zstd"]),
                    ),
            )
            .subcommand(
                Command::new("prune")
                    .arg(Arg::new("before").long("before"))
                    .arg(Arg::new("keep-days").long("keep-days"))
                    .arg(
                        Arg::new("dry-run")
                            .long("dry-run")
                            .action(ArgAction::SetTrue),
                    )
                    .group(
                        clap::ArgGroup::new("bound")
                            .required(true)
                            .args(["before", "keep-days"]),
                    ),
            )
            .subcommand_required(true)
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("wal-archive")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn run(text: &str, words: &[&str]) -> Result<(Applied, ArgMatches)> {
        let f = parse(Path::new("/p.toml"), text)?;
        let a = apply(&f, cmd(), &argv(words), None)?;
        let (m, _) = a
            .parse(&argv(words), false)
            .map_err(|e| Error::usage(e.to_string()))?;
        Ok((a, m))
    }

    #[test]
    fn the_path_skips_options_and_their_values() {
        let c = cmd();
        assert_eq!(
            subcommand_path(&c, &argv(&["--repo", "push", "prune"])),
            ["prune"]
        );
        assert_eq!(
            subcommand_path(&c, &argv(&["--repo=x", "push", "p"])),
            ["push"]
        );
        assert_eq!(
            subcommand_path(&c, &argv(&["--", "push"])),
            Vec::<String>::new()
        );
        assert_eq!(subcommand_path(&c, &argv(&["push", "--help"])), ["push"]);
    }

    #[test]
    fn global_repo_does_not_turn_snap_prune_to_images() {
        let prune = || {
            Command::new("snap-prune")
                .arg(Arg::new("repo").long("repo"))
                .arg(Arg::new("keep-daily").long("keep-daily"))
        };
        let words = [OsString::from("snap-prune")];
        let f = parse(
            Path::new("/p.toml"),
            "[global]\nrepo = \"/g\"\nkeep-daily = \"7\"\n",
        )
        .unwrap();
        let (m, _) = apply(&f, prune(), &words, None)
            .unwrap()
            .parse(&words, false)
            .unwrap();
        assert_eq!(m.get_one::<String>("repo"), None);
        assert_eq!(m.get_one::<String>("keep-daily").unwrap(), "7");
        let f = parse(
            Path::new("/p.toml"),
            "[global]\nrepo = \"/g\"\n[snap-prune]\nrepo = \"/i\"\n",
        )
        .unwrap();
        let (m, _) = apply(&f, prune(), &words, None)
            .unwrap()
            .parse(&words, false)
            .unwrap();
        assert_eq!(m.get_one::<String>("repo").unwrap(), "/i");
    }

    #[test]
    fn sections_from_least_to_most_specific() {
        let text = "[global]\nrepo = \"/g\"\n[wal-archive]\nparallel = 2\n[wal-archive.push]\nparallel = 4\n";
        let (_, m) = run(text, &["push", "x"]).unwrap();
        assert_eq!(m.get_one::<String>("repo").unwrap(), "/g");
        let push = m.subcommand_matches("push").unwrap();
        assert_eq!(*push.get_one::<u32>("parallel").unwrap(), 4);
        let (_, m) = run(text, &["push", "x", "--parallel", "7", "--repo", "/f"]).unwrap();
        assert_eq!(m.get_one::<String>("repo").unwrap(), "/f");
        assert_eq!(m.value_source("repo"), Some(ValueSource::CommandLine));
        let push = m.subcommand_matches("push").unwrap();
        assert_eq!(*push.get_one::<u32>("parallel").unwrap(), 7);
    }

    #[test]
    fn a_file_value_satisfies_a_required_group_and_yields_to_a_rival_flag() {
        let text = "[wal-archive.prune]\nkeep-days = \"14\"\n";
        let (_, m) = run(text, &["prune"]).unwrap();
        let p = m.subcommand_matches("prune").unwrap();
        assert_eq!(p.get_one::<String>("keep-days").unwrap(), "14");
        let (_, m) = run(text, &["prune", "--before", "x"]).unwrap();
        let p = m.subcommand_matches("prune").unwrap();
        assert_eq!(p.get_one::<String>("before").unwrap(), "x");
        assert_eq!(p.get_one::<String>("keep-days"), None);
    }

    #[test]
    fn mistakes_name_the_file_line_and_key() {
        let e = run("[wal-archive.push]\nparalel = 4\n", &["push", "x"]).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("/p.toml:2: unknown key \"paralel\" in [wal-archive.push]: wal-archive push has no option --paralel"), "{e}");
        let e = run("[wal-archive.pusj]\n", &["push", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/p.toml:1: unknown section [wal-archive.pusj]: wal-archive has no subcommand \"pusj\""), "{e}");
        assert!(e.contains("its subcommands are push, prune"), "{e}");
        let e = run("[wal-archive.push]\ncompress = \"xz\"\n", &["push", "x"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2: \"xz\" is not a value of --compress (one of: none, lz4, zstd)"),
            "{e}"
        );
        let e = run("[wal-archive.push]\nparallel = -1\n", &["push", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"-1\" is not a value of --parallel"), "{e}");
        let e = run("[wal-archive]\npretty = \"yes\"\n", &["push", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--pretty is a switch"), "{e}");
        let e = run("[wal-archive]\nrepo = 1\nrepo = 2\n", &["push", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad configuration file /p.toml:3:"), "{e}");
        let e = run("[wal-archive]\nrepo = \"a\"\nrepo_ = 2\n", &["push", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"repo_\""), "{e}");
    }

    #[test]
    fn a_tool_section_key_may_belong_to_a_subcommand() {
        let (_, m) = run(
            "[wal-archive]\ncompress = \"lz4\"\ndry_run = true\n",
            &["push", "x"],
        )
        .unwrap();
        let push = m.subcommand_matches("push").unwrap();
        assert_eq!(push.get_one::<String>("compress").unwrap(), "lz4");
        let (_, m) = run(
            "[wal-archive]\ndry_run = true\n",
            &["prune", "--before", "x"],
        )
        .unwrap();
        assert!(m.subcommand_matches("prune").unwrap().get_flag("dry-run"));
    }

    #[test]
    fn an_empty_variable_counts_as_unset_and_the_flag_wins() {
        // Only this test uses the variable, so setting it does not race the others.
        std::env::set_var("PGDR_TEST_EMPTY_IDENTITY", "");
        let c = || {
            Command::new("wal-archive")
                .arg(
                    Arg::new("identity")
                        .long("identity")
                        .global(true)
                        .env("PGDR_TEST_EMPTY_IDENTITY")
                        .value_parser(clap::value_parser!(PathBuf)),
                )
                .subcommand(Command::new("list"))
        };
        let identity = |words: &[&str], file: Option<&str>| {
            let a = match file {
                None => Applied::none(c(), &argv(words)),
                Some(t) => apply(
                    &parse(Path::new("/p.toml"), t).unwrap(),
                    c(),
                    &argv(words),
                    None,
                )
                .unwrap(),
            };
            let (m, _) = a.parse(&argv(words), false).map_err(|e| e.to_string())?;
            Ok::<_, String>(
                m.subcommand_matches("list")
                    .unwrap()
                    .get_one::<PathBuf>("identity")
                    .cloned(),
            )
        };
        let k = Some(PathBuf::from("/k"));
        assert_eq!(identity(&["--identity", "/k", "list"], None), Ok(k.clone()));
        assert_eq!(identity(&["list", "--identity", "/k"], None), Ok(k.clone()));
        assert_eq!(identity(&["list"], None), Ok(None));
        let file = Some("[global]\nidentity = \"/f\"\n");
        assert_eq!(identity(&["list"], file), Ok(Some(PathBuf::from("/f"))));
        assert_eq!(identity(&["--identity", "/k", "list"], file), Ok(k));
    }
}
