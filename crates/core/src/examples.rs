//! The examples of `--help`: one table per tool (its man page's EXAMPLES, `ManExtra::examples`),
//! shown by the tool's `--help` and by each subcommand's `--help` for the examples that run
//! that subcommand (found by reading each example's command line as clap would).

use clap::Command;
use std::ffi::OsString;

/// The simple commands of a shell line: words (quotes removed), split at `|`, `||`, `&&`, `;`,
/// `&` and parentheses, redirections and their targets left out.
pub fn shell_commands(line: &str) -> Vec<Vec<String>> {
    shell_list(line).into_iter().map(|(c, _)| c).collect()
}

/// [`shell_commands`], each with the control operators (`&&`, `||`, `;`, `|`, `&`) met after
/// it and before the next command, in order (parentheses are not kept).
pub fn shell_list(line: &str) -> Vec<(Vec<String>, Vec<&'static str>)> {
    let mut out: Vec<(Vec<String>, Vec<&'static str>)> = Vec::new();
    let mut cmd: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut redirect = false;
    let mut chars = line.chars().peekable();
    let end_word =
        |cmd: &mut Vec<String>, word: &mut String, in_word: &mut bool, redirect: &mut bool| {
            if *in_word {
                if *redirect {
                    *redirect = false;
                } else {
                    cmd.push(std::mem::take(word));
                }
                word.clear();
                *in_word = false;
            }
        };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(n) => {
                    in_word = true;
                    word.push(n);
                }
            },
            c if c.is_whitespace() => end_word(&mut cmd, &mut word, &mut in_word, &mut redirect),
            '|' | '&' | ';' | '(' | ')' => {
                end_word(&mut cmd, &mut word, &mut in_word, &mut redirect);
                if !cmd.is_empty() {
                    out.push((std::mem::take(&mut cmd), Vec::new()));
                }
                let doubled = chars.peek() == Some(&c);
                let op = match c {
                    '|' if doubled => Some("||"),
                    '&' if doubled => Some("&&"),
                    '|' => Some("|"),
                    '&' => Some("&"),
                    ';' => Some(";"),
                    _ => None,
                };
                if doubled && op.is_some() {
                    chars.next();
                }
                if let (Some(op), Some(last)) = (op, out.last_mut()) {
                    last.1.push(op);
                }
            }
            '>' | '<' => {
                // `2>&1`: the digits are the descriptor, not a word.
                if in_word && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end_word(&mut cmd, &mut word, &mut in_word, &mut redirect);
                while chars.peek().is_some_and(|n| *n == '>' || *n == '&') {
                    chars.next();
                }
                redirect = true;
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut cmd, &mut word, &mut in_word, &mut redirect);
    if !cmd.is_empty() {
        out.push((cmd, Vec::new()));
    }
    out
}

/// Each run of `tool` in an example line, as its argument list (the tool first). A quoted
/// word holding a command line (`archive_command = 'wal-archive push %p'`) is read too.
pub fn invocations(tool: &str, line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for words in shell_commands(line) {
        if let Some(at) = words
            .iter()
            .position(|w| w == tool || w.ends_with(&format!("/{tool}")))
        {
            out.push(words[at..].to_vec());
        }
        for w in &words {
            if w.contains(char::is_whitespace) && w.contains(tool) {
                out.extend(invocations(tool, w));
            }
        }
    }
    out
}

/// The subcommands an invocation runs (empty: the tool itself).
fn path_of(cmd: &Command, args: &[String]) -> Vec<String> {
    let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    crate::config::subcommand_path(cmd, &argv)
}

/// `Examples:` for `-h` (command lines) and `--help` (each with what it does).
fn render(examples: &[&(&str, &str)]) -> (String, String) {
    let mut short = String::from("Examples:");
    let mut long = String::from("Examples:");
    for (i, (what, line)) in examples.iter().enumerate() {
        short.push_str(&format!("\n  {line}"));
        if i > 0 {
            long.push('\n');
        }
        long.push_str(&format!("\n  {what}\n    {line}"));
    }
    (short, long)
}

/// Attaches the examples (what it does, the command line) to `cmd` and, per subcommand,
/// those that run it. A command whose definition has an `after_help` of its own keeps it.
pub fn attach(cmd: Command, examples: &[(&str, &str)]) -> Command {
    let tool = cmd.get_name().to_string();
    let runs: Vec<(Vec<String>, &(&str, &str))> = examples
        .iter()
        .flat_map(|ex| {
            invocations(&tool, ex.1)
                .into_iter()
                .map(|args| (path_of(&cmd, &args), ex))
                .collect::<Vec<_>>()
        })
        .collect();
    let all: Vec<&(&str, &str)> = examples.iter().collect();
    attach_level(cmd, &[], &all, &runs)
}

fn attach_level(
    mut cmd: Command,
    at: &[String],
    examples: &[&(&str, &str)],
    runs: &[(Vec<String>, &(&str, &str))],
) -> Command {
    let own_help = cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some();
    if !examples.is_empty() && !own_help {
        let (short, long) = render(examples);
        cmd = cmd.after_help(short).after_long_help(long);
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        let mut path = at.to_vec();
        path.push(name.clone());
        let mut mine: Vec<&(&str, &str)> = Vec::new();
        for (p, ex) in runs {
            if p.starts_with(&path) && !mine.iter().any(|m| std::ptr::eq(*m, *ex)) {
                mine.push(ex);
            }
        }
        cmd = cmd.mut_subcommand(&name, |s| attach_level(s, &path, &mine, runs));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_become_commands() {
        let c = shell_commands(
            "snap-take --pgdata /pg | snap-prune - --keep-daily 7 > f.tmp && mv f.tmp 'a b'",
        );
        assert_eq!(
            c,
            vec![
                vec!["snap-take", "--pgdata", "/pg"],
                vec!["snap-prune", "-", "--keep-daily", "7"],
                vec!["mv", "f.tmp", "a b"],
            ]
        );
        let c = shell_commands("snap-clone --name x \\\n    --start 2>&1 | jq .port");
        assert_eq!(c[0], ["snap-clone", "--name", "x", "--start"]);
    }

    #[test]
    fn runs_inside_quoted_settings_are_found() {
        let runs = invocations("wal-archive", "archive_command = 'wal-archive push %p'");
        assert_eq!(runs, vec![vec!["wal-archive", "push", "%p"]]);
        let runs = invocations(
            "hba-edit",
            "hba-edit -f old/pg_hba.conf list | hba-edit -f new/pg_hba.conf apply -",
        );
        assert_eq!(runs.len(), 2);
        assert!(invocations("repl-lag", "1 * * * * snap-take").is_empty());
    }

    #[test]
    fn subcommands_get_the_examples_that_run_them() {
        static MAN: crate::man::ManExtra = crate::man::ManExtra {
            exit_status: &[],
            json_output: "",
            documents: &[],
            examples: &[
                ("Push:", "archive_command = '/usr/bin/wal-archive push %p'"),
                ("List:", "wal-archive --repo /r list --pretty"),
                ("Both:", "wal-archive list | wal-archive push x"),
            ],
            extra_sections: &[],
        };
        let cmd = Command::new("wal-archive")
            .arg(clap::Arg::new("repo").long("repo").global(true))
            .subcommand(Command::new("push").arg(clap::Arg::new("p")))
            .subcommand(Command::new("list"))
            .subcommand(Command::new("get").after_help("Examples:\n  own"));
        let mut cmd = attach(cmd, MAN.examples);
        let help = |c: &mut Command, name: &str| {
            c.find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string()
        };
        let push = help(&mut cmd, "push");
        assert!(push.contains("Push:\n    archive_command"), "{push}");
        assert!(push.contains("Both:") && !push.contains("List:"), "{push}");
        let list = help(&mut cmd, "list");
        assert!(list.contains("List:") && list.contains("Both:") && !list.contains("Push:"));
        assert!(help(&mut cmd, "get").contains("own"));
        let top = cmd.render_help().to_string();
        assert!(top.contains("Examples:\n  archive_command"), "{top}");
    }
}
