//! The files PostgreSQL reads, in its order (guc-file.l `ParseConfigFile`, `ParseConfigFp`,
//! conffiles.c `ParseConfigDirectory`, guc.c `ProcessConfigFileInternal`): includes processed
//! in place, relative paths against the including file's directory, at most 10 levels, then
//! postgresql.auto.conf. The result has the rows of the `pg_file_settings` view.

use crate::parse::{self, IncludeKind, Kind};
use pgdr_core::{Error, Result};
use std::collections::BTreeMap;

/// `CONF_FILE_MAX_DEPTH`.
pub const MAX_DEPTH: u32 = 10;

/// One row of `pg_file_settings`: a setting, or an error (then `name` is usually `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seqno: u32,
    pub name: Option<String>,
    pub setting: Option<String>,
    pub file: String,
    pub line: u32,
    pub applied: bool,
    pub error: Option<String>,
    /// An earlier occurrence that a later one overrides.
    pub ignore: bool,
}

/// Everything read.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    /// Every file read, by the path PostgreSQL names it, with its parse.
    pub files: BTreeMap<String, parse::File>,
    /// False when a file could not be read or has a syntax error.
    pub ok: bool,
}

impl Loaded {
    /// The winning entry for `name` (the last occurrence), if any.
    pub fn effective(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| {
            e.error.is_none()
                && e.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// Error rows.
    pub fn errors(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.error.is_some())
    }
}

/// PostgreSQL's `canonicalize_path` for Unix paths: no `//`, no `.` components, `..`
/// applied textually, no trailing slash.
pub fn canonicalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&p) if p != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            _ => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `canonicalize_path` before PostgreSQL 15 (src/port/path.c): no `//`, no trailing slash, and
/// only *trailing* `.` and `..` components are resolved; `inc/../inc/a.conf` stays as written.
/// 15 rewrote it to resolve every component ([`canonicalize`]); pg_file_settings shows the
/// server's own spelling.
pub fn canonicalize_pre15(path: &str) -> String {
    let mut p = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && p.ends_with('/')) {
            p.push(c);
        }
    }
    while p.len() > 1 && p.ends_with('/') {
        p.pop();
    }
    // trim_directory: drop the last component and the separators before it, keeping a leading
    // slash.
    fn trim_directory(p: &mut String) {
        let mut end = p.trim_end_matches('/').len();
        if end == 0 {
            end = 1.min(p.len());
        }
        let start = p[..end].rfind('/').map_or(0, |i| i);
        let keep = p[..start].trim_end_matches('/').len();
        p.truncate(if keep == 0 && p.starts_with('/') {
            1
        } else {
            keep
        });
    }
    let mut pending = 0;
    loop {
        if p.len() >= 2 && p.ends_with("/.") {
            trim_directory(&mut p);
        } else if p == "." {
            if pending > 0 {
                p.clear();
            }
            break;
        } else if (p.len() >= 3 && p.ends_with("/..")) || p == ".." {
            trim_directory(&mut p);
            pending += 1;
        } else if pending > 0 && !p.is_empty() {
            trim_directory(&mut p);
            pending -= 1;
            if p.is_empty() {
                p.push('.');
            }
        } else {
            break;
        }
    }
    if pending > 0 {
        p.push_str(&"../".repeat(pending - 1));
        p.push_str("..");
    }
    p
}

/// `AbsoluteConfigLocation`: an absolute path is kept as written; a relative one is joined to
/// the calling file's directory and canonicalized.
pub fn absolute_location(location: &str, calling_file: &str) -> String {
    absolute_location_for(location, calling_file, None)
}

/// [`absolute_location`] as PostgreSQL `major` spells it (None: 15 and later).
pub fn absolute_location_for(location: &str, calling_file: &str, major: Option<u32>) -> String {
    if location.starts_with('/') {
        return location.to_string();
    }
    let dir = match calling_file.rfind('/') {
        Some(0) => "/",
        Some(i) => &calling_file[..i],
        None => ".",
    };
    let joined = format!("{dir}/{location}");
    match major {
        Some(m) if m < 15 => canonicalize_pre15(&joined),
        _ => canonicalize(&joined),
    }
}

/// Reads a file for parsing. Invalid UTF-8 is refused (exit 2): conf-edit edits text.
pub fn read(path: &str) -> std::result::Result<String, ReadError> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map_err(|e| {
            ReadError::Utf8(Error::usage(format!("cannot read {path}")).because(format!(
                "invalid UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            )))
        }),
        Err(e) => Err(ReadError::Io(e)),
    }
}

pub enum ReadError {
    Io(std::io::Error),
    Utf8(Error),
}

struct Loader<'a> {
    out: Loaded,
    /// Texts to read instead of the disk (pending edits).
    overlay: &'a BTreeMap<String, String>,
    /// The major of the data directory holding the main file (its PG_VERSION), when known:
    /// include paths are spelled the way that server spells them.
    major: Option<u32>,
}

impl Loader<'_> {
    fn push(&mut self, mut e: Entry) {
        e.seqno = self.out.entries.len() as u32 + 1;
        self.out.entries.push(e);
    }

    fn error(&mut self, msg: String, file: &str, line: u32) {
        self.push(Entry {
            seqno: 0,
            name: None,
            setting: None,
            file: file.into(),
            line,
            applied: false,
            error: Some(msg),
            ignore: true,
        });
    }

    /// `ParseConfigFile`; `calling` is the including file and line.
    fn file(
        &mut self,
        path: &str,
        strict: bool,
        calling: Option<(&str, u32)>,
        depth: u32,
    ) -> Result<bool> {
        let (cfile, cline) = calling.unwrap_or(("", 0));
        if path.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
            self.error("empty configuration file name".into(), cfile, cline);
            return Ok(false);
        }
        if depth > MAX_DEPTH {
            self.error("nesting depth exceeded".into(), cfile, cline);
            return Ok(false);
        }
        let abs = match calling {
            Some((c, _)) => absolute_location_for(path, c, self.major),
            None => path.to_string(),
        };
        if calling.is_some_and(|(c, _)| c == abs) {
            self.error("configuration file recursion".into(), cfile, cline);
            return Ok(false);
        }
        let text = match self
            .overlay
            .get(&abs)
            .cloned()
            .map(Ok)
            .unwrap_or_else(|| read(&abs))
        {
            Ok(t) => t,
            Err(ReadError::Utf8(e)) => return Err(e),
            Err(ReadError::Io(e)) if e.raw_os_error() == Some(21) => {
                // fopen() works on a directory; flex then fails to read it.
                self.error("input in flex scanner failed".into(), &abs, 1);
                return Ok(false);
            }
            Err(_) if !strict => return Ok(true),
            Err(_) => {
                self.error(format!("could not open file \"{abs}\""), cfile, cline);
                return Ok(false);
            }
        };
        let parsed = self
            .out
            .files
            .entry(abs.clone())
            .or_insert_with(|| parse::parse(&text))
            .clone();
        self.fp(&abs, &parsed, depth)
    }

    /// `ParseConfigFp`, stopping at the first syntax error as `pg_file_settings` does.
    fn fp(&mut self, abs: &str, file: &parse::File, depth: u32) -> Result<bool> {
        let mut ok = true;
        for l in &file.lines {
            match &l.kind {
                Kind::Blank => {}
                Kind::Setting { name, value, .. } => self.push(Entry {
                    seqno: 0,
                    name: Some(name.clone()),
                    setting: Some(value.clone()),
                    file: abs.into(),
                    line: l.number,
                    applied: false,
                    error: None,
                    ignore: false,
                }),
                Kind::Include { kind, path } => {
                    let at = Some((abs, l.number));
                    let r = match kind {
                        IncludeKind::Include => self.file(path, true, at, depth + 1)?,
                        IncludeKind::IncludeIfExists => self.file(path, false, at, depth + 1)?,
                        IncludeKind::IncludeDir => self.dir(path, abs, l.number, depth + 1)?,
                    };
                    ok &= r;
                }
                Kind::SyntaxError { report_line, .. } => {
                    self.error("syntax error".into(), abs, *report_line);
                    return Ok(false);
                }
            }
        }
        Ok(ok)
    }

    /// `ParseConfigDirectory`: names ending in `.conf`, not starting with `.`, at least six
    /// bytes, not directories, in strcmp order; the first failing file ends the directory.
    fn dir(&mut self, dir: &str, calling: &str, line: u32, depth: u32) -> Result<bool> {
        if dir.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
            self.error("empty configuration directory name".into(), calling, line);
            return Ok(false);
        }
        let abs = absolute_location_for(dir, calling, self.major);
        let rd = match std::fs::read_dir(&abs) {
            Ok(rd) => rd,
            Err(_) => {
                self.error(format!("could not open directory \"{abs}\""), calling, line);
                return Ok(false);
            }
        };
        let mut names: Vec<String> = Vec::new();
        for de in rd.flatten() {
            let n = de.file_name();
            let Some(n) = n.to_str() else { continue };
            if n.len() < 6 || n.starts_with('.') || !n.ends_with(".conf") {
                continue;
            }
            let full = match self.major {
                Some(m) if m < 15 => canonicalize_pre15(&format!("{abs}/{n}")),
                _ => canonicalize(&format!("{abs}/{n}")),
            };
            match std::fs::metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => names.push(full),
                Err(_) => {
                    self.error(format!("could not stat file \"{full}\""), calling, line);
                    return Ok(false);
                }
            }
        }
        names.sort();
        for f in names {
            if !self.file(&f, true, Some((calling, line)), depth)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Knows which parameter names exist (a server's `pg_settings`, or `postgres --describe-config`).
pub trait Names {
    fn known(&self, name: &str) -> bool;
}

/// Loads `config` (an absolute path), then, when it read cleanly, `auto` (postgresql.auto.conf,
/// read if it exists), and marks rows the way `ProcessConfigFileInternal` does: unknown names
/// without a dot are errors (when `names` is given), earlier duplicates are ignored, and
/// nothing counts as applied when anything failed.
pub fn load(config: &str, auto: Option<&str>, names: Option<&dyn Names>) -> Result<Loaded> {
    load_with(config, auto, names, &BTreeMap::new())
}

/// [`load`], reading `overlay` texts instead of the files they name.
pub fn load_with(
    config: &str,
    auto: Option<&str>,
    names: Option<&dyn Names>,
    overlay: &BTreeMap<String, String>,
) -> Result<Loaded> {
    match overlay
        .get(config)
        .map(|_| Ok(String::new()))
        .unwrap_or_else(|| read(config))
    {
        Ok(_) => {}
        Err(ReadError::Utf8(e)) => return Err(e),
        Err(ReadError::Io(e)) => {
            return Err(Error::failed(format!("cannot read {config}"))
                .because(pgdr_core::error::clean_io_message(&e.to_string())))
        }
    }
    let major = std::path::Path::new(config)
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("PG_VERSION")).ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    let mut l = Loader {
        out: Loaded::default(),
        overlay,
        major,
    };
    let mut ok = l.file(config, true, None, 0)?;
    if ok {
        if let Some(a) = auto {
            ok = l.file(a, false, None, 0)?;
        }
    }
    let mut out = l.out;
    if ok {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..out.entries.len() {
            let Some(name) = out.entries[i].name.clone() else {
                continue;
            };
            if out.entries[i].error.is_some() {
                continue;
            }
            let key = name.to_ascii_lowercase();
            let known = names.map(|n| n.known(&key)).unwrap_or(true);
            if known || seen.contains_key(&key) {
                if seen.contains_key(&key) {
                    // guc.c compares the earlier names with strcmp: only the same spelling is
                    // marked ignored.
                    for p in 0..i {
                        if out.entries[p].name.as_deref() == Some(name.as_str()) {
                            out.entries[p].ignore = true;
                        }
                    }
                }
                seen.insert(key, i);
            } else if !name.contains('.') {
                out.entries[i].error = Some("unrecognized configuration parameter".into());
                ok = false;
            } else {
                seen.insert(key, i);
            }
        }
        if ok {
            for e in out.entries.iter_mut() {
                e.applied = !e.ignore && e.error.is_none();
            }
        }
    }
    out.ok = ok;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn paths() {
        assert_eq!(canonicalize("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(canonicalize("/.."), "/");
        // Before 15 only trailing . and .. go.
        for (path, want) in [
            ("/d/inc/../inc/a.conf", "/d/inc/../inc/a.conf"),
            ("/d//inc/./a.conf/", "/d/inc/./a.conf"),
            ("/d/inc/a/..", "/d/inc"),
            ("/d/inc/a/../..", "/d"),
            ("/d/.", "/d"),
            ("/..", "/"),
            ("a/../..", ".."),
            ("a/..", "."),
        ] {
            assert_eq!(canonicalize_pre15(path), want, "{path}");
        }
        assert_eq!(
            absolute_location_for("../inc/a.conf", "/d/inc/x.conf", Some(14)),
            "/d/inc/../inc/a.conf"
        );
        assert_eq!(
            absolute_location_for("../inc/a.conf", "/d/inc/x.conf", Some(15)),
            "/d/inc/a.conf"
        );
        assert_eq!(
            absolute_location("x.conf", "/etc/pg/main.conf"),
            "/etc/pg/x.conf"
        );
        assert_eq!(
            absolute_location("../x.conf", "/etc/pg/main.conf"),
            "/etc/x.conf"
        );
        assert_eq!(absolute_location("/abs//x", "/etc/pg/main.conf"), "/abs//x");
    }

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn includes_in_place_and_last_wins() {
        let d = tempfile::tempdir().unwrap();
        let main = write(
            d.path(),
            "main.conf",
            "work_mem = 1MB\ninclude 'a.conf'\ninclude_dir 'conf.d'\ninclude_if_exists 'none.conf'\nport = 5\n",
        );
        write(d.path(), "a.conf", "work_mem = 2MB\n");
        write(d.path(), "conf.d/b.conf", "port = 1\n");
        write(d.path(), "conf.d/B.conf", "port = 2\n");
        write(d.path(), "conf.d/.h.conf", "port = 3\n");
        write(d.path(), "conf.d/a.conf.bak", "port = 4\n");
        let l = load(&main, None, None).unwrap();
        assert!(l.ok);
        let rows: Vec<_> = l
            .entries
            .iter()
            .map(|e| (e.setting.clone().unwrap(), e.applied))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("1MB".into(), false),
                ("2MB".into(), true),
                ("2".into(), false),
                ("1".into(), false),
                ("5".into(), true)
            ]
        );
        assert_eq!(
            l.effective("WORK_MEM").unwrap().setting.as_deref(),
            Some("2MB")
        );
    }

    #[test]
    fn errors_and_loops() {
        let d = tempfile::tempdir().unwrap();
        let main = write(d.path(), "main.conf", "a = 1\ninclude 'loop.conf'\nb = 2\n");
        write(d.path(), "loop.conf", "include 'main.conf'\n");
        let l = load(&main, None, None).unwrap();
        assert!(!l.ok);
        assert_eq!(l.errors().count(), 1);
        assert_eq!(
            l.errors().next().unwrap().error.as_deref(),
            Some("nesting depth exceeded")
        );
        let bad = write(
            d.path(),
            "bad.conf",
            "a = 1\nb = = 2\nc = 3\ninclude 'missing.conf'\n",
        );
        let l = load(&bad, Some("/nonexistent/auto.conf"), None).unwrap();
        let errs: Vec<_> = l
            .errors()
            .map(|e| (e.line, e.error.clone().unwrap()))
            .collect();
        assert_eq!(errs, vec![(2, "syntax error".to_string())]);
        assert_eq!(l.entries.len(), 2);
    }
}
