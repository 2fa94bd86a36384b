//! The documents conf-edit prints, one serde type each. `get`'s [`GetReport`] and `show`'s
//! [`ShowReport`] are also what `conf-edit apply -` reads back ([`Incoming`]).
//!
//! A value that carries a password (`primary_conninfo = '… password=…'`) is printed with the
//! password as `********` unless `--show-secrets`, and says so in its `masked` flag, so a
//! reader never has to guess from the text whether it may write the value back.

use pgdr_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// get: the effective value of each name asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetReport {
    /// By name: where the effective value comes from, or null when no file sets it (apply
    /// then comments the name out).
    pub settings: BTreeMap<String, Option<Setting>>,
}

impl pgdr_core::Document for GetReport {
    const PRODUCERS: &'static [&'static str] = &["conf-edit"];
}

/// An effective setting: the last line of its name that the server reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The value as the server reads it (quotes and escapes removed).
    pub value: String,
    /// The file of the line.
    pub file: String,
    /// The line.
    pub line: u32,
    /// The value shows a password as ******** (the producer ran without --show-secrets):
    /// apply refuses to write it.
    pub masked: bool,
}

/// show: every effective setting with its source, the rows of pg_file_settings, errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowReport {
    /// Effective settings by lower-case name.
    pub settings: BTreeMap<String, Setting>,
    /// Every row as pg_file_settings has it, in the order the server reads them.
    pub entries: Vec<Entry>,
    /// The rows with an error.
    pub errors: Vec<FileError>,
    /// Every file read, includes and postgresql.auto.conf too.
    pub files: Vec<String>,
}

impl pgdr_core::Document for ShowReport {
    const PRODUCERS: &'static [&'static str] = &["conf-edit"];
}

/// A row of pg_file_settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Order in which the server reads the rows (from 1).
    pub seqno: u32,
    /// The parameter name as written; null for an error that is not about one.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub name: Option<String>,
    /// The value; null for an error row.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub setting: Option<String>,
    /// The file.
    pub file: String,
    /// The line.
    pub line: u32,
    /// Whether the server would apply this row when it starts with these files (not
    /// overridden later, no error anywhere). A value the server binary refuses (checked with
    /// `postgres -C` when it can be run) is f with "setting could not be applied", as in
    /// pg_file_settings; the server would not start. Read from the files: a running server that
    /// reloaded a changed restart-only parameter (max_connections, shared_buffers …) keeps its
    /// old value, and its pg_file_settings says f with "setting could not be applied" until
    /// it restarts (`conf-edit check -d` lists such settings).
    pub applied: bool,
    /// The server's error for the row, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub error: Option<String>,
    /// setting shows a password as ********.
    pub masked: bool,
}

/// A row with an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileError {
    /// The file; null when the server names none (a restart-only parameter dropped from
    /// every file).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub file: Option<String>,
    /// The line; null when the server names none.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub line: Option<u32>,
    /// The parameter, if the error is about one.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub name: Option<String>,
    /// The error.
    pub error: String,
}

/// What apply - reads: get's or show's document (told apart by entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Get(GetReport),
    Show(ShowReport),
}

impl Incoming {
    /// Parses the document on stdin as the producer's type.
    ///
    /// # Errors
    /// Usage errors (exit 2) naming the field, as [pgdr_core::doc::read_stdin].
    pub fn read_stdin() -> Result<Incoming> {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Error::usage("cannot read JSON from stdin").because(e))?;
        Self::parse(&text)
    }

    /// [Incoming::read_stdin] on a text.
    ///
    /// # Errors
    /// As [Incoming::read_stdin].
    pub fn parse(text: &str) -> Result<Incoming> {
        let (map, _) = pgdr_core::doc::parse_any(text, &["conf-edit"])?;
        let hint = "pipe in the output of conf-edit get or conf-edit show";
        if map.contains_key("entries") {
            pgdr_core::doc::from_map(map, "conf-edit show's", hint).map(Incoming::Show)
        } else {
            pgdr_core::doc::from_map(map, "conf-edit get's", hint).map(Incoming::Get)
        }
    }

    /// (name, value or None to unset, masked), in name order.
    pub fn settings(&self) -> Vec<(String, Option<String>, bool)> {
        match self {
            Incoming::Get(g) => g
                .settings
                .iter()
                .map(|(n, s)| {
                    (
                        n.clone(),
                        s.as_ref().map(|s| s.value.clone()),
                        s.as_ref().is_some_and(|s| s.masked),
                    )
                })
                .collect(),
            Incoming::Show(s) => s
                .settings
                .iter()
                .map(|(n, s)| (n.clone(), Some(s.value.clone()), s.masked))
                .collect(),
        }
    }
}

/// What happened to one parameter in set, unset or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The effective line was changed in place.
    Edited,
    /// The commented-out sample line was uncommented with the new value.
    Uncommented,
    /// A new line was appended.
    Appended,
    /// Active lines were commented out (unset).
    CommentedOut,
    /// postgresql.auto.conf: the entry was written as ALTER SYSTEM writes it.
    Set,
    /// postgresql.auto.conf: the entry was removed (ALTER SYSTEM RESET).
    Removed,
    /// Nothing to do: the value is already in effect, or nothing to unset.
    Unchanged,
}

/// One parameter's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The parameter.
    pub name: String,
    /// What was done.
    pub action: Action,
    /// The value before (masked like every printed value); null if none.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub old: Option<String>,
    /// The value after; null when unset.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub new: Option<String>,
    /// The file of the line.
    pub file: String,
    /// The line (0: none).
    pub line: u32,
}

/// A change that a later file overrides (postgresql.auto.conf wins over postgresql.conf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shadowed {
    /// The parameter.
    pub name: String,
    /// The overriding file.
    pub file: String,
    /// Its line.
    pub line: u32,
    /// The value that wins.
    pub value: String,
}

/// A setting whose value could not be checked, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unchecked {
    /// The parameter.
    pub name: String,
    /// Its file; null for a value given on the command line.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub file: Option<String>,
    /// Its line; null for a value given on the command line.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub line: Option<u32>,
    /// Why it was not checked (no server binary of that version, no user to run it as, …).
    pub reason: String,
}

/// set, unset, apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeReport {
    /// Whether a file changed (or, with --dry-run, would).
    pub changed: bool,
    /// Nothing was written.
    pub dry_run: bool,
    /// Each parameter's change, in the order given.
    pub changes: Vec<Change>,
    /// The files changed.
    pub files: Vec<String>,
    /// Previous files kept with --backup.
    pub backups: Vec<String>,
    /// Changes a later file overrides.
    pub shadowed: Vec<Shadowed>,
    /// New values that could not be checked against the server (they were written anyway).
    pub unchecked: Vec<Unchecked>,
    /// The unified diff, with --dry-run; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub diff: Option<String>,
    /// The server's verdict, with --reload; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reload: Option<ReloadReport>,
}

impl pgdr_core::Document for ChangeReport {
    const PRODUCERS: &'static [&'static str] = &["conf-edit"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// What the server made of the new files after pg_reload_conf().
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadReport {
    /// pg_reload_conf() ran after the server accepted the new files.
    pub reloaded: bool,
    /// Changes the server applied, with the value it now uses.
    pub applied: Vec<Applied>,
    /// Parameters that take effect only after a restart (those changed here and any other
    /// the server reports).
    pub pending_restart: Vec<String>,
    /// Changes the server did not take, and why (another file overrides them).
    pub not_applied: Vec<NotApplied>,
    /// Errors the server reports in files this run did not cause.
    pub errors: Vec<FileError>,
}

/// A change the server applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    /// The parameter, as pg_settings names it.
    pub name: String,
    /// pg_settings.setting now (in the parameter's base unit).
    pub setting: String,
    /// pg_settings.source now.
    pub source: String,
}

/// A change the server did not take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotApplied {
    /// The parameter.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    /// Nothing wrong and nothing left unchecked (exit 0; else exit 1).
    pub ok: bool,
    /// What names and values were checked against: pg_settings of the server (-d), or
    /// the server binary (postgres -C on the settings, postgres --describe-config).
    pub catalog: String,
    /// The PostgreSQL major version checked against; null with -d.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pg_version: Option<u32>,
    /// Each problem: unknown names, invalid values, out-of-range numbers, bad units and
    /// enums, syntax errors.
    pub problems: Vec<Problem>,
    /// Settings that could not be checked (never counted as fine).
    pub unchecked: Vec<Unchecked>,
    /// Parameters whose value differs from the running server's and need a restart (-d).
    pub needs_restart: Vec<String>,
    /// The server binary's run on the settings; null with -d.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub server_check: Option<ServerCheck>,
}

impl pgdr_core::Document for CheckReport {
    const PRODUCERS: &'static [&'static str] = &["conf-edit"];
}

/// A problem check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// The parameter, if the problem is about one.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub name: Option<String>,
    /// Its value (masked like every printed value).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub value: Option<String>,
    /// The file.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub file: Option<String>,
    /// The line.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub line: Option<u32>,
    /// The server's message.
    pub problem: String,
}

/// The server binary's check of the settings, as the user it ran as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerCheck {
    /// Whether the binary ran.
    pub ran: bool,
    /// The postgres binary.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub binary: Option<String>,
    /// The OS user it ran as (never root).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub run_as: Option<String>,
    /// Why it did not run.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reason: Option<String>,
    /// What the server said about the settings, message by message.
    pub errors: Vec<String>,
}
