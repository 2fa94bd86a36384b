//! Running a restore, in one transaction of snap-clone's own on the target: the statements
//! a replace needs first; then the chosen entries of the table of contents in their order —
//! the definitions as pg_restore writes them (`--file=- --use-list`), run statement by
//! statement under the new names, and each table's data streamed from its pg_dump file
//! into COPY (the TOC's own COPY statement, renamed), the way pg_restore copies a data file
//! after it; then the statements a replace needs after. A failure anywhere (a statement,
//! pg_restore, a damaged file, SIGINT/SIGTERM) rolls the transaction back: the target is as
//! it was.

use super::plan::Plan;
use super::select::Name;
use super::source::{CopyRows, Prepared, Source};
use super::sql::{self, Piece, Splitter};
use pgdr_core::{Context, Error, Result};
use pgdr_snap::logical::take::last_error;
use pgdr_snap::logical::toc::Toc;
use pgdr_snap::logical::tools::Program;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

/// What a restore runs.
pub struct Exec<'a> {
    pub pg_restore: &'a Program,
    pub source: &'a Source<'a>,
    pub prepared: &'a Prepared,
    pub toc: &'a Toc,
    pub plan: &'a Plan,
    /// Statements before the script (replace: drop foreign keys and tables).
    pub before: Vec<String>,
    /// Statements after it (replace: foreign keys, owners, grants back).
    pub after: Vec<String>,
    /// --jobs: index builds use jobs - 1 parallel maintenance workers.
    pub jobs: u32,
    /// Each restored table (and partition), by its name in the snapshot → the table asked
    /// for, to count rows.
    pub table_of: HashMap<Name, Name>,
}

fn db_error(what: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |e| {
        Error::failed(format!("cannot restore {what}")).because(pgdr_core::conn::error_text(&e))
    }
}

/// "TABLE public.child" from pg_restore's `-- Name: child; Type: TABLE; Schema: public;
/// Owner: -` header in a statement's leading comments.
fn entry_of(stmt: &str) -> String {
    let Some(l) = stmt.lines().find_map(|l| {
        l.strip_prefix("-- Name: ")
            .or_else(|| l.strip_prefix("-- Data for Name: "))
    }) else {
        return "the tables".into();
    };
    let field = |k: &str| {
        l.split("; ")
            .find_map(|p| p.strip_prefix(k))
            .unwrap_or("")
            .to_string()
    };
    let name = l.split("; ").next().unwrap_or("");
    let schema = field("Schema: ");
    let kind = field("Type: ");
    if schema.is_empty() || schema == "-" {
        format!("{kind} {name}")
    } else {
        format!("{kind} {schema}.{name}")
    }
}

/// Runs a plain SET of the script; a setting this server does not know (a newer pg_restore's
/// transaction_timeout on PostgreSQL 16 and older) is skipped, as psql would go on.
fn set(tx: &mut postgres::Transaction<'_>, stmt: &str) -> Result<()> {
    let fail = db_error("the session settings");
    tx.batch_execute("SAVEPOINT pgdr_set").map_err(&fail)?;
    match tx.batch_execute(stmt) {
        Ok(()) => {}
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_OBJECT) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT pgdr_set")
                .map_err(&fail)?;
        }
        Err(e) => return Err(fail(e)),
    }
    tx.batch_execute("RELEASE SAVEPOINT pgdr_set")
        .map_err(&fail)
}

/// Streams one table's data file into COPY.
fn copy(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    source: &Source<'_>,
    file: &str,
    what: &str,
) -> Result<u64> {
    let fail = db_error(what);
    let mut w = tx.copy_in(sql).map_err(&fail)?;
    {
        let mut rows = CopyRows::new(std::io::BufWriter::with_capacity(1 << 20, &mut w));
        source.read_data(file, &mut rows)?;
        rows.finish()
            .map_err(|e| Error::failed(format!("cannot restore {what}")).because(e))?;
    }
    if pgdr_core::signals::interrupted() {
        return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
    }
    w.finish().map_err(&fail)
}

/// Runs pg_restore's script (definitions only: data goes through [`copy`]) on `tx`.
fn stream(tx: &mut postgres::Transaction<'_>, out: impl Read, x: &Exec<'_>) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, out);
    let mut splitter = Splitter::default();
    let mut line = Vec::new();
    loop {
        if pgdr_core::signals::interrupted() {
            return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
        }
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .context(|| "cannot read pg_restore's output".into())?;
        if n == 0 {
            break;
        }
        let text = std::str::from_utf8(&line).map_err(|_| {
            Error::failed("cannot restore the tables")
                .because("pg_restore's script is not UTF-8 (a database in another encoding); pgdr restores UTF-8 dumps")
        })?;
        for piece in splitter.push(text) {
            let Piece::Statement(stmt) = piece else {
                continue; // \restrict and \unrestrict: psql's, not SQL
            };
            let what = entry_of(&stmt);
            if sql::is_set(&stmt) {
                set(tx, &stmt)?;
                continue;
            }
            if sql::is_copy_from_stdin(&stmt) {
                // Data entries never go to pg_restore here (see run()).
                return Err(Error::failed(format!("cannot restore {what}"))
                    .because("pg_restore wrote table data where only definitions were asked for"));
            }
            tx.batch_execute(&x.plan.renames.apply(&stmt))
                .map_err(db_error(&what))?;
        }
    }
    if let Some(rest) = splitter.finish() {
        return Err(Error::failed("cannot restore the tables").because(format!(
            "pg_restore's script ended inside a statement: {}",
            rest.trim().chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// pg_restore of the entries `ids` (in that order), its script run on `tx`.
fn restore_entries(tx: &mut postgres::Transaction<'_>, ids: &[i32], x: &Exec<'_>) -> Result<()> {
    let mut list = tempfile::Builder::new()
        .prefix("pgdr-restore-list-")
        .tempfile()
        .context(|| "cannot write pg_restore's list".into())?;
    for id in ids {
        writeln!(list, "{id};").context(|| "cannot write pg_restore's list".into())?;
    }
    list.flush()
        .context(|| "cannot write pg_restore's list".into())?;
    let mut cmd = Command::new(&x.pg_restore.path);
    cmd.arg("--file=-")
        .arg(format!("--use-list={}", list.path().display()))
        // A restore into another database: its roles, privileges and tablespaces are not
        // the snapshot's (a replace gives the replaced table's owner and grants back).
        .args([
            "--no-owner",
            "--no-privileges",
            "--no-tablespaces",
            "--no-security-labels",
        ])
        .arg(&x.prepared.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .context(|| format!("cannot run {}", x.pg_restore.path.display()))?;
    let mut err = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let out = child.stdout.take().expect("piped");
    let streamed = stream(tx, out, x);
    if streamed.is_err() {
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        }
    }
    let status = child.wait();
    let stderr = errors.join().unwrap_or_default();
    streamed?;
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => {
            Err(Error::failed("pg_restore failed").because(last_error(&stderr, &s.to_string())))
        }
        Err(e) => Err(e).context(|| "cannot wait for pg_restore".into()),
    }
}

/// Restores the plan into `client`'s database in one transaction.
///
/// # Errors
/// pg_restore or a statement failed, a file was damaged, or the run was interrupted: the
/// transaction was rolled back and nothing changed.
pub fn run(client: &mut postgres::Client, x: &Exec<'_>) -> Result<HashMap<Name, u64>> {
    let mut tx = client
        .transaction()
        .map_err(db_error("the tables: cannot begin a transaction"))?;
    if x.jobs > 1 {
        tx.batch_execute(&format!(
            "SET LOCAL max_parallel_maintenance_workers = {}",
            x.jobs - 1
        ))
        .map_err(db_error("the tables"))?;
    }
    for s in &x.before {
        tx.batch_execute(s).map_err(db_error("the tables"))?;
    }
    let mut rows: HashMap<Name, u64> = HashMap::new();
    // Definitions in runs of pg_restore, each table's data between them, in TOC order.
    let mut pending: Vec<i32> = Vec::new();
    for id in &x.plan.entries {
        let e = x.toc.by_id(*id).expect("planned from this TOC");
        let data = match (&e.filename, e.desc.as_str()) {
            (Some(f), "TABLE DATA") => f,
            _ => {
                pending.push(*id);
                continue;
            }
        };
        if !pending.is_empty() {
            restore_entries(&mut tx, &pending, x)?;
            pending.clear();
        }
        let what = format!("TABLE DATA {}.{}", e.namespace, e.tag);
        let n = copy(
            &mut tx,
            &x.plan.renames.apply(&e.copy_stmt),
            x.source,
            data,
            &what,
        )?;
        let t = (e.namespace.clone(), e.tag.clone());
        if let Some(top) = x.table_of.get(&t) {
            *rows.entry(top.clone()).or_default() += n;
        }
    }
    if !pending.is_empty() {
        restore_entries(&mut tx, &pending, x)?;
    }
    for s in &x.after {
        tx.batch_execute(s).map_err(|e| {
            Error::failed("cannot keep the foreign keys, owner and grants of the replaced tables")
                .because(format!("{}: {}", s, pgdr_core::conn::error_text(&e)))
        })?;
    }
    if pgdr_core::signals::interrupted() {
        return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
    }
    tx.commit().map_err(db_error("the tables: COMMIT failed"))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_a_statement_restores_is_named() {
        let s = "--\n-- Name: child; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.child ();";
        assert_eq!(super::entry_of(s), "TABLE public.child");
        let d = "--\n-- Data for Name: child; Type: TABLE DATA; Schema: public; Owner: -\n--\nCOPY public.child FROM stdin;";
        assert_eq!(super::entry_of(d), "TABLE DATA public.child");
        assert_eq!(super::entry_of("SELECT 1;"), "the tables");
    }
}
