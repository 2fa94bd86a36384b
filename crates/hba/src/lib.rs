//! pgdr-hba: pg_hba.conf read, queried, checked and edited exactly as PostgreSQL reads it.
//!
//! Reading, as src/backend/libpq/hba.c does:
//! - [`lex`]: records, continuation, tokens, `@file` and `include*` (the tokenizer);
//! - [`parse_line`]: `parse_hba_line` and the option checks, per server version;
//! - [`addr`]: numeric addresses as glibc reads them, masks, local interfaces;
//! - [`pg_regex`]: `/regex` entries (PostgreSQL's regular expressions);
//! - [`file`](mod@file): a whole file with its includes, kept with its text for byte-exact edits.
//!
//! What the rules mean together:
//! - [`check_hba`]: the first-match search for a connection (`match`);
//! - [`coverage`]: the client addresses rules admit, alone and together;
//! - [`shadow`]: rules that earlier rules, alone or together, leave nothing to match;
//! - [`warnings`]: the findings of `check`.
//!
//! Writing and the command:
//! - [`layout`]: new lines quoted and aligned like their neighbours;
//! - [`doc`]: the JSON documents, one type each;
//! - [`json`]: `list`'s document written by hand (serde_json's bytes, faster);
//! - [`cmd`]: one module per subcommand, callable without clap;
//! - [`server`]: the connection for `--reload` (the server's verdict on a new file);
//! - [`cli`]: the `hba-edit` command line, parsing and rendering only.

pub mod addr;
pub mod check_hba;
pub mod cli;
pub mod cmd;
pub mod coverage;
pub mod doc;
pub mod file;
pub mod json;
pub mod layout;
pub mod lex;
pub mod parse_line;
pub mod pg_regex;
pub mod server;
pub mod shadow;
pub mod warnings;

/// Rules from text, for unit tests (no file access: includes are missing).
#[cfg(test)]
pub(crate) mod testing {
    use crate::lex;
    use crate::parse_line::{parse_line, Build, Rule};
    use std::path::Path;

    pub struct NoFiles;
    impl lex::Source for NoFiles {
        fn read(&self, _: &Path) -> std::io::Result<String> {
            Err(std::io::ErrorKind::NotFound.into())
        }
        fn read_dir(&self, _: &Path) -> std::io::Result<Vec<(String, bool)>> {
            Err(std::io::ErrorKind::NotFound.into())
        }
    }

    pub fn rules(text: &str, v: u32) -> Vec<Rule> {
        let t = lex::tokenize(Path::new("/d/pg_hba.conf"), text, v, &NoFiles);
        t.lines
            .iter()
            .map(|l| parse_line(l, v, Build::default(), &|_| true).unwrap())
            .collect()
    }
}
