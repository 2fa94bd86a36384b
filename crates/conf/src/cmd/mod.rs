//! The subcommands' operations, one module each, callable without clap: each takes the
//! [`Files`](crate::files::Files) and plain arguments and returns its document (crate::doc).

pub mod change;
pub mod check;
pub mod get;
pub mod show;

use crate::lex;
use pgdr_core::{Error, Result};

/// Refuses what is not one parameter name token.
///
/// # Errors
/// Exit 2.
pub fn check_name(n: &str) -> Result<()> {
    if lex::valid_name(n) {
        Ok(())
    } else {
        Err(Error::usage(format!("invalid parameter name \"{n}\""))
            .because("a name is a letter followed by letters, digits or _, with at most one dot"))
    }
}
