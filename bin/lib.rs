//! The pgdr package: the seven tools' binaries live in `bin/`, each a call into its domain
//! crate. This library is the one list of them, used by the man-page generator and the tests.

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
