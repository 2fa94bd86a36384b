//! Checking the file against the tools: sections, keys and values, each mistake named with
//! the file and the line.

use super::apply::{configurable, levels};
use super::file::{error_at, ConfigFile, Entry, Section, Value, GLOBAL};
use crate::error::{Error, Result};
use crate::runner::Tool;
use clap::{Arg, ArgAction, Command};

/// Every configurable argument of `cmd` and of its subcommands called `--long`.
fn args_named<'a>(cmd: &'a Command, long: &str, out: &mut Vec<&'a Arg>) {
    out.extend(
        cmd.get_arguments()
            .filter(|a| configurable(a) && a.get_long() == Some(long)),
    );
    for s in cmd.get_subcommands() {
        args_named(s, long, out);
    }
}

/// Checks `entry`'s value against each of `args`.
fn check_values(file: &ConfigFile, entry: &Entry, args: &[&Arg]) -> Result<()> {
    for a in args {
        words_for(a, entry).map_err(|why| error_at(&file.path, entry.line, why))?;
    }
    Ok(())
}

/// Every configurable long option of `cmd` and of its subcommands, recursively.
fn all_longs(cmd: &Command, out: &mut Vec<String>) {
    out.extend(
        cmd.get_arguments()
            .filter(|a| configurable(a))
            .filter_map(|a| a.get_long().map(str::to_string)),
    );
    for s in cmd.get_subcommands() {
        all_longs(s, out);
    }
}

/// The words `entry` gives `arg` on a command line, checked as clap would check them.
pub(super) fn words_for(arg: &Arg, entry: &Entry) -> std::result::Result<Vec<String>, String> {
    let long = arg.get_long().unwrap_or_default();
    let many = matches!(arg.get_action(), ArgAction::Append)
        || arg.get_num_args().is_some_and(|r| r.max_values() > 1);
    let words = match (arg.get_action(), &entry.value) {
        (ArgAction::SetTrue | ArgAction::SetFalse, Value::Bool(b)) => {
            return Ok(vec![b.to_string()])
        }
        (ArgAction::SetTrue | ArgAction::SetFalse, _) => {
            return Err(format!("--{long} is a switch: write true or false"))
        }
        (ArgAction::Count, Value::Integer(n)) if (0..=255).contains(n) => {
            return Ok(vec![n.to_string()])
        }
        (ArgAction::Count, _) => return Err(format!("--{long} counts: write 0 to 255")),
        (_, Value::Bool(_)) => {
            return Err(format!(
                "--{long} takes a value, not true or false (write it in quotes if it is the word)"
            ))
        }
        (_, Value::List(items)) if many => items.iter().filter_map(Value::word).collect(),
        (_, Value::List(_)) => return Err(format!("--{long} takes one value, not a list")),
        (_, v) => vec![v.word().unwrap_or_default()],
    };
    for w in &words {
        check_word(arg, w).map_err(|why| {
            if super::apply::secret(long) {
                format!("invalid value for --{long}")
            } else {
                why
            }
        })?;
    }
    Ok(words)
}

/// Runs `arg`'s value parser on `word`, alone.
fn check_word(arg: &Arg, word: &str) -> std::result::Result<(), String> {
    let mut probe = Arg::new("value")
        .long("value")
        .action(ArgAction::Set)
        .num_args(1)
        .value_parser(arg.get_value_parser().clone());
    if arg.is_ignore_case_set() {
        probe = probe.ignore_case(true);
    }
    let long = arg.get_long().unwrap_or_default();
    Command::new("config")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--value={word}")])
        .map(|_| ())
        .map_err(|e| {
            use clap::error::{ContextKind, ContextValue};
            if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
                return format!(
                    "{word:?} is not a value of --{long} (one of: {})",
                    valid.join(", ")
                );
            }
            let why = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "not accepted".into());
            format!("{word:?} is not a value of --{long}: {why}")
        })
}

/// Every section and key this tool reads: `[global]` keys must be an option of some tool,
/// `[TOOL]` keys an option of the tool or of one of its subcommands, `[TOOL.SUB]` keys an
/// option of that subcommand or of the commands above it. Other tools' sections are theirs
/// to check; their names must be tools.
pub(super) fn check(
    file: &ConfigFile,
    cmd: &Command,
    tool: &str,
    tools: Option<&[Tool]>,
) -> Result<()> {
    let mut own = Vec::new();
    all_longs(cmd, &mut own);
    let mut everyone: Option<Vec<String>> = None;
    for s in &file.sections {
        let mut seen: Vec<String> = Vec::new();
        for e in &s.entries {
            if seen.contains(&e.option()) {
                return Err(error_at(
                    &file.path,
                    e.line,
                    format!("{:?} is set twice in {}", e.key, s.title()),
                ));
            }
            seen.push(e.option());
        }
        let name = s.path[0].as_str();
        if name == GLOBAL {
            for e in &s.entries {
                if own.contains(&e.option()) {
                    let mut args = Vec::new();
                    args_named(cmd, &e.option(), &mut args);
                    check_values(file, e, &args)?;
                    continue;
                }
                let all = everyone.get_or_insert_with(|| {
                    let mut v = Vec::new();
                    for t in tools.unwrap_or_default() {
                        all_longs(&(t.command)(), &mut v);
                    }
                    v
                });
                if tools.is_some() && !all.contains(&e.option()) {
                    return Err(unknown_key(file, s, e, "no pgdr tool has the option"));
                }
            }
        } else if name == tool {
            check_tool_section(file, cmd, s)?;
        } else if let Some(ts) = tools {
            if !ts.iter().any(|t| t.name == name) {
                let names: Vec<&str> = ts.iter().map(|t| t.name).collect();
                return Err(error_at(
                    &file.path,
                    s.line,
                    format!("unknown section [{name}]: no pgdr tool is called {name:?}"),
                )
                .hint(format!(
                    "sections are [{GLOBAL}] and the tools' names: {}",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(())
}

fn unknown_key(file: &ConfigFile, s: &Section, e: &Entry, why: &str) -> Error {
    error_at(
        &file.path,
        e.line,
        format!(
            "unknown key {:?} in {}: {why} --{}",
            e.key,
            s.title(),
            e.option()
        ),
    )
    .hint("keys are long options without the dashes; see --help")
}

fn check_tool_section(file: &ConfigFile, cmd: &Command, s: &Section) -> Result<()> {
    let sub = &s.path[1..];
    let lv = levels(cmd, sub);
    if lv.len() != sub.len() + 1 {
        let parent = lv.last().map(|c| c.get_name()).unwrap_or_default();
        let missing = &sub[lv.len() - 1];
        let names: Vec<&str> = lv
            .last()
            .map(|c| {
                c.get_subcommands()
                    .filter(|x| !x.is_hide_set())
                    .map(Command::get_name)
                    .collect()
            })
            .unwrap_or_default();
        let mut err = error_at(
            &file.path,
            s.line,
            format!(
                "unknown section {}: {parent} has no subcommand {missing:?}",
                s.title()
            ),
        );
        if !names.is_empty() {
            err = err.hint(format!("its subcommands are {}", names.join(", ")));
        }
        return Err(err);
    }
    let mut known = Vec::new();
    if sub.is_empty() {
        all_longs(cmd, &mut known);
    } else {
        for c in &lv {
            known.extend(
                c.get_arguments()
                    .filter(|a| configurable(a))
                    .filter_map(|a| a.get_long().map(str::to_string)),
            );
        }
    }
    let who = std::iter::once(cmd.get_name())
        .chain(sub.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    for e in &s.entries {
        if !known.contains(&e.option()) {
            return Err(unknown_key(file, s, e, &format!("{who} has no option")));
        }
        let mut args = Vec::new();
        if sub.is_empty() {
            args_named(cmd, &e.option(), &mut args);
        } else {
            for c in &lv {
                args.extend(
                    c.get_arguments()
                        .filter(|a| configurable(a) && a.get_long() == Some(e.option().as_str())),
                );
            }
        }
        check_values(file, e, &args)?;
    }
    Ok(())
}
