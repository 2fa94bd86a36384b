//! libpq's password file (src/interfaces/libpq/fe-connect.c `passwordFromFile`).

use super::{ConnParams, DEFAULT_SOCKET_DIRS};
use crate::error::Result;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// libpq's password file: `hostname:port:database:username:password`, `*` matching anything,
/// `\` escaping `:` and `\`. Ignored (as libpq does, with a warning) when it is not a plain
/// file or is readable or writable by group or others.
///
/// # Errors
/// None today; the `Result` is kept for callers.
pub fn pgpass_lookup(file: &Path, p: &ConnParams) -> Result<Option<String>> {
    Ok(match search(file, p) {
        Search::Found(pw) => Some(pw),
        Search::NotFound(_) => None,
    })
}

/// What looking in the password file gave.
pub(super) enum Search {
    Found(String),
    /// Why not, for the message when the server then asks for a password: "the password
    /// file F does not exist", "… has no line for localhost:5432:db:user", ….
    NotFound(String),
}

/// [`pgpass_lookup`], saying why nothing was found.
pub(super) fn search(file: &Path, p: &ConnParams) -> Search {
    let f = file.display();
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) => {
            return Search::NotFound(format!(
                "the password file {f} {}",
                if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_string()
                } else {
                    format!(
                        "cannot be read ({})",
                        crate::error::clean_io_message(&e.to_string())
                    )
                }
            ))
        }
    };
    if !meta.is_file() {
        // PGPASSFILE=/dev/null is the usual way to turn the file off: no warning for that.
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_char_device() {
            eprintln!("WARNING: password file \"{f}\" is not a plain file");
        }
        return Search::NotFound(format!("the password file {f} is not a plain file"));
    }
    if meta.mode() & 0o077 != 0 {
        eprintln!(
            "WARNING: password file \"{f}\" has group or world access; permissions should be u=rw (0600) or less"
        );
        return Search::NotFound(format!(
            "the password file {f} was ignored: it has group or world access (chmod 0600 it)"
        ));
    }
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            return Search::NotFound(format!(
                "the password file {f} cannot be read ({})",
                crate::error::clean_io_message(&e.to_string())
            ))
        }
    };
    let host = p
        .first("host")
        .or(p.first("hostaddr"))
        .unwrap_or("localhost");
    // A socket in the default directory is matched as "localhost", as libpq does.
    let host = if host.is_empty() || DEFAULT_SOCKET_DIRS.contains(&host) {
        "localhost"
    } else {
        host
    };
    let port = p.first("port").unwrap_or("5432");
    let db = p.get("dbname").unwrap_or("");
    let user = p.get("user").unwrap_or("");
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let m = |pat: &str, v: &str| pat == "*" || pat == v;
        if m(&fields[0], host) && m(&fields[1], port) && m(&fields[2], db) && m(&fields[3], user) {
            return Search::Found(fields[4..].join(":"));
        }
    }
    Search::NotFound(format!(
        "the password file {f} has no line for {host}:{port}:{db}:{user}"
    ))
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("non-empty").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().expect("non-empty").push(c),
        }
    }
    fields
}
