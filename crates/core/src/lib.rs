//! pgdr-core: what every pgdr tool shares.
//!
//! The runner ([`runner::main`]) parses arguments with clap (defaults from the configuration
//! file, [`config`]; `--print-config`; `--help` examples, [`examples`]), calls the tool, prints
//! exactly one JSON document on success and one stderr line on failure, and maps errors to
//! exit codes. Around it: atomic file replacement ([`fsx`]), locks ([`lock`]), signal clean-up
//! ([`signals`]), PostgreSQL connections as libpq makes them ([`conn`]), running commands as a
//! data directory's owner ([`owner`]), progress on a terminal ([`progress`]), units, and
//! man-page rendering ([`man`]).

pub mod argv;
pub mod cli;
pub mod config;
pub mod conn;
pub mod diff;
pub mod doc;
pub mod error;
pub mod examples;
pub mod fsx;
pub mod holder;
pub mod input;
pub mod lock;
pub mod man;
pub mod owner;
pub mod pgbin;
pub mod procstat;
pub mod progress;
pub mod runner;
pub mod signals;
pub mod units;

pub use doc::Document;
pub use error::{Context, Error, ErrorKind, Result};
pub use runner::{Outcome, OutputArgs, ToolArgs};

/// The version every tool reports (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The names of pgdr's tools (the documents every tool prints, such as `--print-config`'s,
/// name them as producers; pgdr-docgen holds the tools themselves).
pub const TOOLS: &[&str] = &[
    "hba-edit",
    "conf-edit",
    "wal-archive",
    "snap-take",
    "snap-prune",
    "snap-clone",
    "repl-lag",
];
