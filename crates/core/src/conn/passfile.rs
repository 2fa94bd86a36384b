//! libpq's password file (src/interfaces/libpq/fe-connect.c `passwordFromFile`).

use super::{ConnParams, DEFAULT_SOCKET_DIRS};
use crate::error::Result;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// libpq's password file: `hostname:port:database:username:password`, `*` matching anything,
/// `\` escaping `:` and `\`. Ignored (as libpq does, with a warning) when it is not a plain
/// file or is readable or writable by group or others.
pub fn pgpass_lookup(file: &Path, p: &ConnParams) -> Result<Option<String>> {
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if !meta.is_file() {
        // PGPASSFILE=/dev/null is the usual way to turn the file off: no warning for that.
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_char_device() {
            return Ok(None);
        }
        eprintln!(
            "WARNING: password file \"{}\" is not a plain file",
            file.display()
        );
        return Ok(None);
    }
    if meta.mode() & 0o077 != 0 {
        eprintln!(
            "WARNING: password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
            file.display()
        );
        return Ok(None);
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
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
            return Ok(Some(fields[4..].join(":")));
        }
    }
    Ok(None)
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
