//! One module per subcommand, each an operation callable without clap: it takes the
//! repository's location and a plain options struct and returns its document (or an error
//! worded for the user). Rendering, exit codes and the quiet rule are [`crate::cli`]'s.

pub mod check;
pub mod copy;
pub mod get;
pub mod info;
pub mod init;
pub mod list;
pub mod prefetch;
pub mod prune;
pub mod push;
pub mod verify;
