//! pgdr-docgen: the one list of pgdr's tools (name, clap definition, man-page extras), and
//! what is generated from it: the man pages (`pgdr-docgen write|check DIR`). The binaries in
//! `bin/` are each a call into their domain crate; the tests of every tool (tests/cli_common.rs)
//! walk this list too.

/// A tool: its name, its clap definition and the hand-written parts of its man page.
pub struct Tool {
    pub name: &'static str,
    pub command: fn() -> clap::Command,
    pub man: &'static pgdr_core::man::ManExtra,
}

/// Every tool this build contains.
pub fn tools() -> Vec<Tool> {
    vec![
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
    ]
}
