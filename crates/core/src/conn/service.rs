//! libpq's connection service file (src/interfaces/libpq/fe-connect.c `parseServiceInfo`,
//! `parseServiceFile`): `[name]` sections of `keyword=value` lines, `#` comments.
//!
//! Where libpq looks: the `servicefile` keyword (18) or PGSERVICEFILE, which must exist, else
//! `~/.pg_service.conf` when it exists; when the service is not defined there,
//! `PGSYSCONFDIR/pg_service.conf`. The first file that defines the service is the only one
//! read. Its settings fill in what the connection string left out, before the PG*
//! environment does (so they win over PGHOST, PGPORT, …, as in libpq).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The directory of the system-wide file when PGSYSCONFDIR is unset: Debian's libpq
/// (`pg_config --sysconfdir`); upstream's default is the installation's `etc`.
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// Where to look, as the caller's environment says.
pub(super) struct Places {
    /// The `servicefile` keyword, else PGSERVICEFILE.
    pub explicit: Option<PathBuf>,
    /// The user's home directory (HOME, else the password database).
    pub home: Option<PathBuf>,
    /// PGSYSCONFDIR, else [`DEFAULT_SYSCONFDIR`].
    pub sysconfdir: PathBuf,
}

/// A service's settings, in file order.
type Settings = Vec<(String, String)>;

/// A line number and what is wrong with it.
type LineError = (usize, &'static str);

fn bad(why: String) -> Error {
    Error::usage("invalid connection service").because(why)
}

/// The settings of service `name`, in file order, checked against `keywords`.
///
/// # Errors
/// Usage errors, worded as libpq words them: an explicit service file that does not exist,
/// a service defined nowhere (naming the files looked in), a line without `=`, a keyword
/// libpq does not know, a nested `service=`, an unreadable file.
pub(super) fn lookup(name: &str, places: &Places, keywords: &[&str]) -> Result<Settings> {
    let mut looked = Vec::new();
    let user_file = match &places.explicit {
        Some(f) if !f.exists() => {
            return Err(bad(format!("service file \"{}\" not found", f.display())))
        }
        Some(f) => Some(f.clone()),
        None => places
            .home
            .as_ref()
            .map(|h| h.join(".pg_service.conf"))
            .filter(|f| f.exists()),
    };
    if let Some(f) = user_file {
        if let Some(settings) = read(&f, name, keywords)? {
            return Ok(settings);
        }
        looked.push(f);
    }
    let system = places.sysconfdir.join("pg_service.conf");
    if system.exists() {
        if let Some(settings) = read(&system, name, keywords)? {
            return Ok(settings);
        }
        looked.push(system.clone());
    }
    let looked = if looked.is_empty() {
        format!(
            "no service file: neither ~/.pg_service.conf nor {} exists, and PGSERVICEFILE is unset",
            system.display()
        )
    } else {
        let files: Vec<String> = looked.iter().map(|f| f.display().to_string()).collect();
        format!("looked in {}", files.join(" and "))
    };
    Err(bad(format!(
        "definition of service \"{name}\" not found ({looked})"
    )))
}

/// The section `[name]` of one file, or None when the file has none.
fn read(file: &Path, name: &str, keywords: &[&str]) -> Result<Option<Settings>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        bad(format!(
            "cannot read service file \"{}\": {}",
            file.display(),
            crate::error::clean_io_message(&e.to_string())
        ))
    })?;
    parse(&text, name, keywords).map_err(|(line, why)| {
        bad(format!(
            "{why} in service file \"{}\", line {line}",
            file.display()
        ))
    })
}

/// Parses the text of a service file for section `name`. Only that section's lines are
/// checked, as libpq does; a later `[` ends it. Keys and values are taken as they are
/// around the first `=` (libpq trims only the line's ends).
fn parse(
    text: &str,
    name: &str,
    keywords: &[&str],
) -> std::result::Result<Option<Settings>, LineError> {
    let mut found: Option<Settings> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            if rest.strip_prefix(name).is_some_and(|r| r.starts_with(']')) {
                found = Some(Vec::new());
            }
            continue;
        }
        let Some(settings) = found.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err((i + 1, "syntax error"));
        };
        if key == "service" {
            return Err((i + 1, "nested service specifications not supported"));
        }
        if !keywords.contains(&key) {
            return Err((i + 1, "syntax error"));
        }
        settings.push((key.to_string(), value.to_string()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KW: &[&str] = &["host", "port", "user", "dbname"];

    #[test]
    fn sections_as_libpq_reads_them() {
        let text = "# comment\n[other]\nbogus line\n  [main] trailing  \n  host=/tmp  \nport=5433\nport=1\n\n[next]\nport=2\n";
        let got = parse(text, "main", KW).unwrap().unwrap();
        assert_eq!(
            got,
            vec![
                ("host".to_string(), "/tmp".to_string()),
                ("port".to_string(), "5433".to_string()),
                ("port".to_string(), "1".to_string()),
            ]
        );
        // The lines of other sections are not checked.
        assert_eq!(parse(text, "absent", KW).unwrap(), None);
        // "[mainx]" is not "[main]".
        assert_eq!(parse("[mainx]\nport=1\n", "main", KW).unwrap(), None);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("[s]\nhost = x\n", "s", KW), Err((2, "syntax error")));
        assert_eq!(parse("[s]\n\nbogus=1\n", "s", KW), Err((3, "syntax error")));
        assert_eq!(parse("[s]\nno equals\n", "s", KW), Err((2, "syntax error")));
        assert_eq!(
            parse("[s]\nservice=t\n", "s", KW),
            Err((2, "nested service specifications not supported"))
        );
    }

    #[test]
    fn user_file_then_system_file() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        let sys = d.path().join("etc");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::write(home.join(".pg_service.conf"), "[a]\nport=1\n").unwrap();
        std::fs::write(sys.join("pg_service.conf"), "[a]\nport=2\n[b]\nport=3\n").unwrap();
        let places = Places {
            explicit: None,
            home: Some(home.clone()),
            sysconfdir: sys.clone(),
        };
        let port = |name: &str, places: &Places| lookup(name, places, KW).map(|s| s[0].1.clone());
        assert_eq!(port("a", &places).unwrap(), "1");
        assert_eq!(port("b", &places).unwrap(), "3");
        let e = port("c", &places).unwrap_err().to_string();
        assert!(e.contains("definition of service \"c\" not found"), "{e}");
        assert!(
            e.contains(".pg_service.conf") && e.contains("etc/pg_service.conf"),
            "{e}"
        );
        // An explicit file replaces ~/.pg_service.conf, and must exist.
        let explicit = Places {
            explicit: Some(d.path().join("none.conf")),
            ..places
        };
        let e = port("a", &explicit).unwrap_err();
        assert!(e.to_string().contains("service file"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
