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
    vec![Tool {
        name: "hba-edit",
        command: pgdr_hba::cli::command,
        man: &pgdr_hba::cli::MAN,
    }]
}
