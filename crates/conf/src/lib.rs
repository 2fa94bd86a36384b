//! pgdr-conf: postgresql.conf and postgresql.auto.conf read exactly as PostgreSQL reads them
//! (`guc-file.l`, `conffiles.c`) and written without disturbing a byte the change does not
//! need; postgresql.auto.conf written exactly as `ALTER SYSTEM` writes it ([`auto`]).

pub mod auto;
pub mod catalog;
pub mod cli;
pub mod edit;
pub mod lex;
pub mod load;
pub mod parse;
