//! The `conf-edit` command line: arguments parsed into the operations' plain arguments
//! (crate::cmd), documents rendered. Nothing else happens here.

use crate::cmd::change::{self, ChangeOptions};
use crate::cmd::{check, get, show};
use crate::doc::{ChangeReport, CheckReport, GetReport, Incoming, ShowReport};
use crate::files::Files;
use crate::secrets::Masker;
use clap::{Parser, Subcommand};
use pgdr_core::cli::{ChangeArgs, ReloadArgs, Stdin};
use pgdr_core::man::DocSection;
use pgdr_core::{Outcome, OutputArgs, Result};
use std::path::PathBuf;

/// Read, check and change postgresql.conf and postgresql.auto.conf as the server does.
#[derive(Debug, Parser)]
#[command(
    name = "conf-edit",
    version = pgdr_core::VERSION,
    about = "Read, check and change postgresql.conf and postgresql.auto.conf as PostgreSQL reads them",
    long_about = "Read, check and change postgresql.conf and postgresql.auto.conf with PostgreSQL's own \
grammar (guc-file.l): 'name = value' or 'name value', quoted strings with '' and backslash escapes, \
units, comments, include, include_if_exists and include_dir; the last setting of a name wins, and \
postgresql.auto.conf overrides postgresql.conf. 'set' edits the effective line in place, else uncomments \
the commented-out sample line, else appends; untouched bytes stay as they were. With --auto the \
target is postgresql.auto.conf, written byte for byte as ALTER SYSTEM writes it. Every write is atomic \
and keeps mode and owner. New values are checked as the server checks them (its pg_settings with \
--reload, else the server binary that will read the file) and refused as ALTER SYSTEM refuses them."
)]
pub struct Args {
    /// The file to read or change (default: DIR/postgresql.conf of -D; with --auto,
    /// DIR/postgresql.auto.conf).
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The data directory; where postgresql.auto.conf is.
    #[arg(
        short = 'D',
        long = "pgdata",
        global = true,
        value_name = "DIR",
        env = "PGDATA"
    )]
    pub pgdata: Option<PathBuf>,
    /// Work on postgresql.auto.conf, written the way ALTER SYSTEM writes it.
    #[arg(long, global = true)]
    pub auto: bool,
    /// Print passwords in conninfo values instead of ******** (needed to copy them with
    /// apply).
    #[arg(long, global = true)]
    pub show_secrets: bool,
    /// PostgreSQL major version of the server binary that checks names and values (default:
    /// PG_VERSION of the data directory or beside the file, else the newest installed).
    #[arg(long, global = true, value_name = "MAJOR")]
    pub pg_version: Option<u32>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print the effective value, file and line of each NAME (null when not set).
    #[command()]
    Get {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Print every effective setting with its source, every row as pg_file_settings has it,
    /// and every error (values checked by the server binary, postgres -C, when it can run).
    #[command()]
    Show,
    /// Set parameters: edit the effective line, else uncomment the sample line, else append.
    #[command()]
    Set {
        #[arg(required = true, value_name = "NAME=VALUE")]
        settings: Vec<String>,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Comment out every active line of each NAME (with --auto: remove it, as ALTER SYSTEM RESET).
    #[command()]
    Unset {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Apply the settings of a get or show document read from stdin; null unsets.
    #[command()]
    Apply {
        /// "-": read conf-edit get's or show's document from standard input.
        #[arg(value_name = "-", value_parser = pgdr_core::cli::stdin_marker)]
        input: Stdin,
        /// Allow a document that leaves the file without any setting.
        #[arg(long)]
        allow_empty: bool,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Check names and values: unknown names, bad booleans and enums, numbers out of range,
    /// bad units, settings that need a restart. Against pg_settings with -d, else against the
    /// server binary that will read the file (run as the data directory's owner, never as
    /// root); what cannot be checked is listed as unchecked, and check then fails.
    #[command()]
    Check {
        /// Check against this server's pg_settings (a libpq conninfo string or URI).
        #[arg(short = 'd', long = "dbname", value_name = "CONNINFO")]
        dbname: Option<String>,
    },
}

pgdr_core::tool_args!(Args);

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "success (check: no problem found, nothing left unchecked)"),
        (1, "the operation failed or was refused and nothing was changed: a missing file, a file with a syntax error, a value the server refuses, a masked value or a document that would leave the file empty in apply, a failed write or connection, a server under --reload that does not read the file or rejects the new one (it was put back); check found problems or could not check everything"),
        (2, "usage error or malformed input: bad arguments, a name that is not a parameter name, a value with a newline, invalid UTF-8, malformed JSON or a document that is not conf-edit get's or show's on stdin"),
    ],
    documents: &[
        DocSection::of::<GetReport>("get (read back by apply -)"),
        DocSection::of::<ShowReport>("show (read back by apply -)"),
        DocSection::of::<ChangeReport>("set, unset, apply"),
        DocSection::of::<CheckReport>("check"),
    ],
    json_output: "Passwords inside conninfo values show as ******** unless --show-secrets, and the setting says so with \"masked\": true; apply refuses such a document.",
    examples: &[
        ("Read two settings", "conf-edit -D /var/lib/postgresql/15/main get wal_level max_wal_senders"),
        ("Prepare a primary and reload", "conf-edit -D $PGDATA set wal_level=replica max_wal_senders=10 --reload -d 'host=/run/postgresql dbname=postgres'"),
        ("Write recovery settings as ALTER SYSTEM would", "conf-edit -D /clone --auto set port=5499 recovery_target_action=pause"),
        ("Copy settings between hosts", "conf-edit -f a.conf get max_connections | conf-edit -f b.conf apply -"),
        ("See a change first", "conf-edit -D $PGDATA set shared_buffers=2GB --dry-run"),
        ("Check a candidate file with the server binary", "conf-edit -f candidate.conf --pg-version 15 check"),
        ("Every effective setting with its file and line:", "conf-edit -D $PGDATA show --pretty"),
        ("Comment out a vendor-only parameter:", "conf-edit -D $PGDATA unset shared_preload_libraries"),
        ("Drop primary_conninfo from auto.conf and reload:", "conf-edit -D $PGDATA --auto unset primary_conninfo --reload"),
        ("Check against the running server's pg_settings:", "conf-edit -D $PGDATA check -d 'host=/run/postgresql dbname=postgres'"),
        ("Copy a connection string with its password:", "conf-edit -D /a --auto get primary_conninfo --show-secrets | conf-edit -D /b --auto apply -"),
    ],
    extra_sections: &[
        (
            "GRAMMAR",
            "Exactly PostgreSQL's: a bare value is an identifier, a number with an optional unit, or a letter followed by letters, digits and -._:/; anything else must be quoted. conf-edit writes values bare only when PostgreSQL reads them back unchanged, and keeps quotes where they were. A list parameter (shared_preload_libraries, search_path) is written as one string 'a, b', which the server splits; an empty list is ''.",
        ),
        (
            "CHECKING WITHOUT A SERVER",
            "check without -d, and set and apply without --reload, hand the settings to the server binary that will read the file (--pg-version, else PG_VERSION of the data directory or beside the file, else the newest installed): postgres -C with the settings in a scratch configuration file, so the server's own checks decide (booleans, enums, units, ranges, time zones, recovery targets). It runs as the data directory's owner, else the file's, else the postgres OS user, never as root. What cannot be checked (no such binary, no user to run it as) is listed as unchecked; check then exits 1, set and apply write it and say so.",
        ),
        (
            "RELOAD",
            "--reload connects first (-d, else the PG* environment), refuses a server that does not read the file, checks new values against its pg_settings, writes, and reads pg_file_settings: any error the change caused puts every file back byte for byte and reloads again (exit 1). Otherwise pg_reload_conf() runs and the report lists what the server applied, what waits for a restart, and what another file overrides.",
        ),
    ],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("conf-edit", run)
}

fn options(a: &Args, c: &ChangeArgs, r: &ReloadArgs, allow_empty: bool) -> ChangeOptions {
    ChangeOptions {
        dry_run: c.dry_run,
        backup: c.backup,
        reload: r.reload.then(|| r.dbname.clone()),
        masker: Masker {
            show_secrets: a.show_secrets,
        },
        pg_version: a.pg_version,
        allow_empty,
    }
}

pub fn run(a: Args) -> Result<Outcome> {
    let files = Files::resolve(a.file.as_deref(), a.pgdata.as_deref(), a.auto)?;
    let masker = Masker {
        show_secrets: a.show_secrets,
    };
    match &a.command {
        Cmd::Get { names } => Outcome::document(&get::get(&files, names, masker)?),
        Cmd::Show => Outcome::document(&show::show(&files, a.pg_version, masker)?),
        Cmd::Set {
            settings,
            change: c,
            reload: r,
        } => Outcome::document(&change::set(&files, settings, &options(&a, c, r, false))?),
        Cmd::Unset {
            names,
            change: c,
            reload: r,
        } => Outcome::document(&change::unset(&files, names, &options(&a, c, r, false))?),
        Cmd::Apply {
            input: _,
            allow_empty,
            change: c,
            reload: r,
        } => {
            let input = Incoming::read_stdin()?;
            Outcome::document(&change::apply(
                &files,
                &input,
                &options(&a, c, r, *allow_empty),
            )?)
        }
        Cmd::Check { dbname } => {
            let report = check::check(&files, dbname.as_deref(), a.pg_version, masker)?;
            let code = if report.ok { 0 } else { 1 };
            Ok(Outcome::document(&report)?.with_code(code))
        }
    }
}
