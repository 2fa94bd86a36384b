//! Defaults from one TOML file (SPEC "Operating it"), applied to every tool the same way from
//! its clap definition, so no tool has code of its own for it.
//!
//! The file is `$PGDR_CONFIG`, else `/etc/pgdr/pgdr.toml` (`PGDR_CONFIG=` empty: no file). A
//! missing default file is no file; a file named by `PGDR_CONFIG` must exist.
//!
//! ```toml
//! [global]                    # every tool that has the option
//! repo = "/zpdata02/wal"
//! pgdata = "/zpdata01/pg"
//!
//! [wal-archive]               # one tool: its options and its subcommands' options
//! compress = "zstd"
//!
//! [wal-archive.push]          # one subcommand (also the tool's own options, e.g. repo)
//! parallel = 4
//!
//! [snap-prune]
//! keep-hourly = 24
//! keep-daily = 7
//! ```
//!
//! Keys are long options without the dashes (`_` may stand for `-`); switches take `true` or
//! `false`; options given several times take a list. Where several sections set a key, the most
//! specific wins: `[TOOL.SUBCOMMAND]` over `[TOOL]` over `[global]`. Precedence for each
//! option: the command line, then the environment variable that feeds it (PGDATA,
//! WAL_ARCHIVE_REPO, …; set but empty counts as unset), then the file, then the built-in
//! default. A file value also yields to a conflicting option given on the command line (a
//! file's `--pgdata` to a `-d`). Unknown sections and keys are errors naming the file and line:
//! `[global]` keys must be an option of some pgdr tool, `[TOOL]` keys an option of that tool
//! or one of its subcommands; each tool checks `[global]` and its own sections.

pub mod apply;
mod check;
pub mod file;
pub mod print;

pub use apply::{apply, subcommand_path, Applied};
pub use file::{load, ConfigFile, DEFAULT_PATH, ENV};
pub use print::{print, PrintedConfig, Setting, Source};

use std::ffi::OsString;

/// The id and long name of the flag every tool has.
pub const PRINT_CONFIG: &str = "print-config";

/// `--print-config`, added to every tool by the runner.
pub fn print_config_arg() -> clap::Arg {
    clap::Arg::new(PRINT_CONFIG)
        .long(PRINT_CONFIG)
        .global(true)
        .action(clap::ArgAction::SetTrue)
        .help("Print each effective setting and where it came from (flag, env, file, default), run nothing")
        .long_help(format!(
            "Print each effective setting of this command and where it came from (the command \
line, an environment variable, the configuration file ${ENV} or {DEFAULT_PATH}, or the built-in \
default) as one JSON document, and run nothing. Required options may be left out."
        ))
}

/// Whether `argv` asks for `--print-config` (before any `--`).
pub fn wants_print(argv: &[OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a.to_str() == Some("--print-config"))
}

/// The run's command with the configuration file (if there is one) applied.
///
/// # Errors
/// As [`load`] and [`apply`]: usage errors naming the file, line and key.
pub fn prepare(
    cmd: clap::Command,
    argv: &[OsString],
    tools: Option<&[crate::runner::Tool]>,
) -> crate::Result<Applied> {
    match load()? {
        None => Ok(Applied::none(cmd, argv)),
        Some(f) => apply(&f, cmd, argv, tools),
    }
}
