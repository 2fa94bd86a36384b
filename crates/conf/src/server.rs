//! The running server, for `check -d` and `--reload`: its catalog (`pg_settings`), whether
//! it reads the files being changed, what it makes of them (`pg_file_settings`, which parses
//! the files on disk when queried, as a reload would), `pg_reload_conf()`, and what it then
//! applied.

use crate::catalog::{Catalog, Param};
use pgdr_core::{Error, Result};

/// A connection to the server whose configuration is edited.
pub struct Server {
    client: postgres::Client,
}

/// A row of pg_file_settings with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettingError {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub name: Option<String>,
    pub setting: Option<String>,
    pub error: String,
}

/// A row of pg_file_settings for one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetting {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub applied: bool,
}

/// pg_settings for one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub name: String,
    pub setting: String,
    pub source: String,
    pub context: String,
    pub pending_restart: bool,
}

fn sql(what: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |e| Error::failed(what.to_string()).because(pgdr_core::conn::error_text(&e))
}

impl Server {
    /// Connects with `-d` (a conninfo string or URI), or with the PG* environment alone.
    ///
    /// # Errors
    /// The connection fails (exit 1).
    pub fn connect(dbname: Option<&str>) -> Result<Server> {
        Ok(Server {
            client: pgdr_core::conn::connect(dbname)?,
        })
    }

    /// What the server knows about every parameter (pg_settings), with its current values.
    ///
    /// # Errors
    /// The query fails.
    pub fn catalog(&mut self) -> Result<Catalog> {
        let rows = self
            .client
            .query(
                "SELECT name, context, vartype, unit, min_val, max_val, coalesce(enumvals, '{}')::text[], setting FROM pg_settings",
                &[],
            )
            .map_err(sql("cannot read pg_settings"))?;
        let mut params = std::collections::HashMap::new();
        for r in rows {
            let name: String = r.get(0);
            let num = |i: usize| {
                r.get::<_, Option<String>>(i)
                    .and_then(|s| s.parse::<f64>().ok())
            };
            params.insert(
                name.to_ascii_lowercase(),
                Param {
                    name: name.clone(),
                    context: r.get(1),
                    vartype: r.get(2),
                    unit: r.get(3),
                    min: num(4),
                    max: num(5),
                    enumvals: r.get(6),
                    setting: r.get(7),
                },
            );
        }
        Ok(Catalog {
            params,
            source: "pg_settings".into(),
        })
    }

    /// Refuses to go on when the server does not read `file` (its config_file, its
    /// postgresql.auto.conf, or a file it includes).
    ///
    /// # Errors
    /// The queries fail, or the file is not one the server reads (exit 1).
    pub fn ensure_reads(&mut self, file: &str) -> Result<()> {
        let row = self
            .client
            .query_one(
                "SELECT current_setting('config_file'), current_setting('data_directory') || '/postgresql.auto.conf', coalesce((SELECT array_agg(DISTINCT sourcefile) FROM pg_file_settings WHERE sourcefile IS NOT NULL), '{}')",
                &[],
            )
            .map_err(sql("cannot ask the server which files it reads"))?;
        let config: String = row.get(0);
        let auto: String = row.get(1);
        let others: Vec<String> = row.get(2);
        let same = |a: &str| match (std::fs::canonicalize(a), std::fs::canonicalize(file)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == file,
        };
        if same(&config) || same(&auto) || others.iter().any(|o| same(o)) {
            return Ok(());
        }
        Err(
            Error::failed("--reload: the server does not read this file")
                .because(format!(
                    "its configuration is {config} (and {auto}); {file} is neither, nor included"
                ))
                .hint("pass -f or -D for the server's own files"),
        )
    }

    /// Rows of pg_file_settings with an error, in the server's order.
    ///
    /// # Errors
    /// The view cannot be read (by default only superusers may).
    pub fn file_errors(&mut self) -> Result<Vec<FileSettingError>> {
        let rows = self
            .client
            .query(
                "SELECT sourcefile, sourceline, name, setting, error FROM pg_file_settings WHERE error IS NOT NULL ORDER BY seqno",
                &[],
            )
            .map_err(sql("cannot read pg_file_settings"))?;
        Ok(rows
            .iter()
            .map(|r| FileSettingError {
                file: r.get(0),
                line: r.get::<_, Option<i32>>(1).map(|l| l as u32),
                name: r.get(2),
                setting: r.get(3),
                error: r.get(4),
            })
            .collect())
    }

    /// Rows of pg_file_settings for `name`, in the server's order.
    ///
    /// # Errors
    /// The view cannot be read.
    pub fn file_settings(&mut self, name: &str) -> Result<Vec<FileSetting>> {
        let rows = self
            .client
            .query(
                "SELECT sourcefile, sourceline, applied FROM pg_file_settings WHERE lower(name) = lower($1) ORDER BY seqno",
                &[&name],
            )
            .map_err(sql("cannot read pg_file_settings"))?;
        Ok(rows
            .iter()
            .map(|r| FileSetting {
                file: r.get(0),
                line: r.get::<_, Option<i32>>(1).map(|l| l as u32),
                applied: r.get(2),
            })
            .collect())
    }

    /// pg_settings for `name`, if the server knows it.
    ///
    /// # Errors
    /// The query fails.
    pub fn current(&mut self, name: &str) -> Result<Option<Current>> {
        let rows = self
            .client
            .query(
                "SELECT name, setting, source, context, pending_restart FROM pg_settings WHERE lower(name) = lower($1)",
                &[&name],
            )
            .map_err(sql("cannot read pg_settings"))?;
        Ok(rows.first().map(|r| Current {
            name: r.get(0),
            setting: r.get(1),
            source: r.get(2),
            context: r.get(3),
            pending_restart: r.get(4),
        }))
    }

    /// Every parameter waiting for a restart.
    ///
    /// # Errors
    /// The query fails.
    pub fn pending_restart(&mut self) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name",
                &[],
            )
            .map_err(sql("cannot read pg_settings"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// `pg_reload_conf()`, and waits until this session has re-read the files (the
    /// postmaster signals every backend; this one reloads before its next command).
    ///
    /// # Errors
    /// The call fails.
    pub fn reload(&mut self) -> Result<()> {
        let load_time = |c: &mut postgres::Client| -> Result<String> {
            Ok(c.query_one("SELECT pg_conf_load_time()::text", &[])
                .map_err(sql("cannot read pg_conf_load_time()"))?
                .get(0))
        };
        let before = load_time(&mut self.client)?;
        self.client
            .simple_query("SELECT pg_reload_conf()")
            .map_err(sql("pg_reload_conf() failed"))?;
        for _ in 0..100 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if load_time(&mut self.client)? != before {
                break;
            }
        }
        Ok(())
    }
}
