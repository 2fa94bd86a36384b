//! The server's verdict on a new pg_hba.conf, for `--reload`: the connection is made before
//! anything is written, the server must read the file being edited (`hba_file`), and after the
//! write `pg_hba_file_rules` (which reads the file on disk, as a reload would) says whether
//! the server accepts every line; only then is the configuration reloaded.

use crate::doc::ServerWarning;
use pgdr_core::{Error, Result};
use std::path::Path;

/// A connection to the server whose pg_hba.conf is edited.
pub struct Server {
    client: postgres::Client,
}

/// What the server makes of the file on disk.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Lines it rejects (line, message): with any, it would not load the file.
    pub rejected: Vec<(usize, String)>,
    /// Lines it loads with a message (hostssl with ssl = off).
    pub warnings: Vec<ServerWarning>,
}

fn sql_error(what: &str) -> impl Fn(postgres::Error) -> Error + '_ {
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

    /// Refuses a server that reads another file than `path` (its `hba_file`).
    ///
    /// # Errors
    /// The query fails, or the server's file is another one (exit 1).
    pub fn ensure_reads(&mut self, path: &Path) -> Result<()> {
        let row = self
            .client
            .query_one("SELECT current_setting('hba_file')", &[])
            .map_err(sql_error("cannot ask the server for hba_file"))?;
        let server: String = row.get(0);
        let same = match (std::fs::canonicalize(&server), std::fs::canonicalize(path)) {
            (Ok(a), Ok(b)) => a == b,
            _ => Path::new(&server) == path,
        };
        if !same {
            return Err(
                Error::failed("--reload: the server reads another pg_hba.conf")
                    .because(format!("its hba_file is {server}, not {}", path.display()))
                    .hint("pass -f with the server's file"),
            );
        }
        Ok(())
    }

    /// Reads `pg_hba_file_rules` (hbafuncs.c): the server parses the file on disk now.
    ///
    /// # Errors
    /// The view cannot be read (by default only superusers may).
    pub fn verdict(&mut self) -> Result<Verdict> {
        let rows = self
            .client
            .query(
                "SELECT line_number, type IS NULL AS failed, error FROM pg_hba_file_rules WHERE error IS NOT NULL OR type IS NULL ORDER BY line_number",
                &[],
            )
            .map_err(sql_error("cannot read pg_hba_file_rules"))?;
        let mut v = Verdict::default();
        for r in &rows {
            let line: i32 = r.get(0);
            let failed: bool = r.get(1);
            let msg: Option<String> = r.get(2);
            let msg = msg.unwrap_or_else(|| "invalid line".into());
            let line = usize::try_from(line).unwrap_or(0);
            if failed {
                v.rejected.push((line, msg));
            } else {
                v.warnings.push(ServerWarning { line, message: msg });
            }
        }
        Ok(v)
    }

    /// `pg_reload_conf()`.
    ///
    /// # Errors
    /// The call fails (e.g. no permission to signal the postmaster).
    pub fn reload(&mut self) -> Result<()> {
        self.client
            .simple_query("SELECT pg_reload_conf()")
            .map_err(sql_error("pg_reload_conf() failed"))?;
        Ok(())
    }
}
