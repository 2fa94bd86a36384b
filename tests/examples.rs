//! Examples in --help (SPEC "Conventions" 8, "Operating it"): every subcommand's --help has
//! examples, taken from the tool's one table (its man page's EXAMPLES), and every example is
//! a command line the tool accepts.

use pgdr_core::examples::invocations;
use pgdr_testkit::tool;

/// Subcommands whose examples are still to be written into their tool's table (delete a line
/// when its examples exist: the test fails while a listed one has them).
const NOT_YET: &[(&str, &str)] = &[];

#[test]
fn every_subcommand_help_has_examples() {
    for t in pgdr_docgen::tools() {
        let cmd = (t.command)();
        let mut runs = vec![vec![]];
        runs.extend(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| vec![s.get_name().to_string()]),
        );
        for sub in runs {
            for flag in ["-h", "--help"] {
                let out = tool(t.name).args(&sub).arg(flag).run().ok();
                let has = out.stdout.contains("\nExamples:\n  ");
                let waived = sub
                    .first()
                    .is_some_and(|s| NOT_YET.contains(&(t.name, s.as_str())));
                assert_eq!(
                    has,
                    !waived,
                    "{} {} {flag}: examples {}\n{}",
                    t.name,
                    sub.join(" "),
                    if waived {
                        "exist: remove it from NOT_YET"
                    } else {
                        "missing"
                    },
                    out.stdout
                );
            }
        }
    }
}

#[test]
fn subcommand_help_shows_the_examples_that_run_it() {
    // conf-edit's table: "get" appears in get's help, "apply" in apply's, neither in the other.
    let get = tool("conf-edit").args(["get", "--help"]).run().ok().stdout;
    assert!(get.contains("Read two settings\n    conf-edit -D"), "{get}");
    assert!(!get.contains("--auto set"), "{get}");
    let apply = tool("conf-edit").args(["apply", "-h"]).run().ok().stdout;
    assert!(apply.contains("| conf-edit -f b.conf apply -"), "{apply}");
    // -h lists the command lines alone, --help says what each does.
    assert!(!apply.contains("Copy settings between hosts"), "{apply}");
}

#[test]
fn every_example_is_a_command_line_the_tool_accepts() {
    for t in pgdr_docgen::tools() {
        for (what, line) in t.man.examples {
            for args in invocations(t.name, line) {
                // Placeholders stand for values; "..." for the rest of a rule.
                if args.iter().any(|a| a == "...") {
                    continue;
                }
                let r = pgdr_docgen::command(&t).try_get_matches_from(&args);
                // A required option may come from the environment or the configuration file.
                let missing = r
                    .as_ref()
                    .is_err_and(|e| e.kind() == clap::error::ErrorKind::MissingRequiredArgument);
                assert!(
                    r.is_ok() || missing,
                    "{}: example {what:?} ({line}) is refused: {}",
                    t.name,
                    r.unwrap_err()
                );
            }
        }
    }
}
