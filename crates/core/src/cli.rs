//! Argument pieces several tools share, so each flag means one thing and has one message.
//!
//! - [`Stdin`] with [`stdin_marker`]: the `-` argument that reads a document from stdin.
//! - [`ChangeArgs`]: `--dry-run` and `--backup` of tools that edit a file.
//! - [`ReloadArgs`]: `--reload` and `-d`, asking the server for its verdict on a change.
//!
//! A data directory given by `--pgdata`/`-D` defaults to `$PGDATA` through clap's `env`
//! (`#[arg(long, short = 'D', env = "PGDATA")]`), so every tool picks it up the same way.

/// The `-` argument: read the producer's document from standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stdin;

/// clap value parser for a `-` argument (`value_parser = pgdr_core::cli::stdin_marker`).
///
/// # Errors
/// Anything but `-`, with the one message every tool gives.
pub fn stdin_marker(s: &str) -> Result<Stdin, String> {
    if s == "-" {
        Ok(Stdin)
    } else {
        Err(format!(
            "{s:?}: the only positional argument is '-', which reads the document another pgdr tool printed from standard input"
        ))
    }
}

/// `--dry-run` and `--backup` for tools that change a file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ChangeArgs {
    /// Change nothing; print the change as a unified diff in "diff".
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the previous file beside the new one (NAME.pgdr-TIME.bak).
    #[arg(long)]
    pub backup: bool,
}

/// `--reload` and the connection it uses.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReloadArgs {
    /// After the change, have the server reload its configuration and check its verdict; if
    /// the server rejects the new file, put the previous one back and exit 1. Connects before
    /// writing anything.
    #[arg(long)]
    pub reload: bool,
    /// Connection: a libpq conninfo string or postgres:// URI (PG* variables, service files
    /// and the password file apply; without -d, the PG* environment alone).
    #[arg(short = 'd', long = "dbname", value_name = "CONNINFO")]
    pub dbname: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dash() {
        assert_eq!(stdin_marker("-"), Ok(Stdin));
        let e = stdin_marker("file.json").unwrap_err();
        assert!(e.contains("only positional argument is '-'"), "{e}");
    }
}
