//! pgdr-docgen: the one list of pgdr's tools (name, clap definition, man-page extras), and
//! what is generated from it: the man pages (`pgdr-docgen write|check DIR`), the shell
//! completions (`pgdr-docgen completions DIR`). Each binary in `bin/` registers the list
//! ([`register`]) and calls into its domain crate; the tests of every tool
//! (tests/cli_common.rs) walk this list too.

pub use pgdr_core::runner::Tool;

/// Every tool this build contains.
pub static TOOLS: &[Tool] = &[
    Tool {
        name: "hba-edit",
        command: pgdr_hba::cli::command,
        man: &pgdr_hba::cli::MAN,
    },
    Tool {
        name: "conf-edit",
        command: pgdr_conf::cli::command,
        man: &pgdr_conf::cli::MAN,
    },
    Tool {
        name: "wal-archive",
        command: pgdr_wal::cli::command,
        man: &pgdr_wal::cli::MAN,
    },
    Tool {
        name: "snap-take",
        command: pgdr_snap::cli_take::command,
        man: &pgdr_snap::cli_take::MAN,
    },
    Tool {
        name: "snap-prune",
        command: pgdr_snap::cli_prune::command,
        man: &pgdr_snap::cli_prune::MAN,
    },
    Tool {
        name: "snap-clone",
        command: pgdr_clone::cli::command,
        man: &pgdr_clone::cli::MAN,
    },
    Tool {
        name: "repl-lag",
        command: pgdr_lag::cli::command,
        man: &pgdr_lag::cli::MAN,
    },
];

/// Every tool this build contains.
pub fn tools() -> Vec<Tool> {
    TOOLS.to_vec()
}

/// Makes every tool known to the runner of this process (first thing in each binary).
pub fn register() {
    pgdr_core::runner::register(TOOLS);
}

/// The tool's command as users see it (`--help`, man page, completions): its definition with
/// `--print-config` and its examples.
pub fn command(t: &Tool) -> clap::Command {
    pgdr_core::runner::tool_command((t.command)(), Some(t.man))
}
