//! pgdr-hba: pg_hba.conf read, queried, checked and edited exactly as PostgreSQL reads it.
//!
//! - [`lex`]: records, continuation, tokens, `@file` and `include*` (hba.c's tokenizer);
//! - [`parse_line`]: `parse_hba_line` and option checks, per server version;
//! - [`addr`]: numeric addresses as glibc reads them, masks, local interfaces;
//! - [`pg_regex`]: `/regex` entries (PostgreSQL regular expressions);
//! - [`analyze`]: first-match (`match`), shadowing and the `check` warnings;
//! - [`edit`]: byte-preserving edits and aligned new lines;
//! - [`cli`]: the `hba-edit` command.

pub mod addr;
pub mod analyze;
pub mod cli;
pub mod edit;
pub mod lex;
pub mod parse_line;
pub mod pg_regex;
