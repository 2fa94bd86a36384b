//! pgdr-conf: postgresql.conf and postgresql.auto.conf read exactly as PostgreSQL reads them
//! (`guc-file.l`, `conffiles.c`) and written without disturbing a byte the change does not
//! need; postgresql.auto.conf written exactly as `ALTER SYSTEM` writes it ([`auto`]).
//!
//! Reading: [`lex`] (the lexer of guc-file.l), [`parse`] (one file, line by line), [`load`]
//! (the tree with its includes: the rows of pg_file_settings), [`files`] (which files a
//! command means).
//!
//! Checking: [`catalog`] (what the server knows about each parameter, value checks as guc.c
//! does them), [`binary`] (the server binary that will read the file, checking values
//! without a running server), [`server`] (a running server: pg_settings, pg_file_settings,
//! pg_reload_conf()).
//!
//! Changing: [`edit`] (one line at a time, every other byte kept), [`plan`] (what set, unset
//! and apply will change), [`auto`] (ALTER SYSTEM's file), [`secrets`] (passwords masked in
//! output).
//!
//! The command: [`doc`] (the JSON documents), [`cmd`] (one module per subcommand, without
//! clap), [`cli`] (parsing and rendering only).

pub mod auto;
pub mod binary;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod doc;
pub mod edit;
pub mod files;
pub mod lex;
pub mod load;
pub mod parse;
pub mod plan;
pub mod secrets;
pub mod server;
