//! Reading the configuration file: where it is, its TOML, and its sections with the line of
//! every key (an error names the file, the line and the key).

use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The file read when `PGDR_CONFIG` is not set.
pub const DEFAULT_PATH: &str = "/etc/pgdr/pgdr.toml";

/// The environment variable naming the file (empty: no file at all).
pub const ENV: &str = "PGDR_CONFIG";

/// The section whose keys apply to every tool that has the option.
pub const GLOBAL: &str = "global";

/// A parsed configuration file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// In file order; `[global]`, `[TOOL]`, `[TOOL.SUBCOMMAND]`…
    pub sections: Vec<Section>,
}

/// One section: `path` is `["global"]`, `["wal-archive"]` or `["wal-archive", "push"]`.
#[derive(Debug, Clone)]
pub struct Section {
    pub path: Vec<String>,
    /// The line of its header (1-based).
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// `[wal-archive.push]`.
    pub fn title(&self) -> String {
        format!("[{}]", self.path.join("."))
    }
}

/// `key = value`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// As written (`keep-daily`, or `keep_daily`).
    pub key: String,
    /// 1-based.
    pub line: usize,
    pub value: Value,
}

impl Entry {
    /// The long option it names: `_` may stand for `-`.
    pub fn option(&self) -> String {
        self.key.replace('_', "-")
    }
}

/// A value, as the command line would have it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Integer(i128),
    /// A string, a float or a date-time, as text.
    Text(String),
    List(Vec<Value>),
}

impl Value {
    /// The value as one command-line word (lists: `None`).
    pub fn word(&self) -> Option<String> {
        match self {
            Value::Bool(b) => Some(b.to_string()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Text(t) => Some(t.clone()),
            Value::List(_) => None,
        }
    }
}

/// Which file applies: `$PGDR_CONFIG` (`None` when it is set and empty), else the default
/// path. The flag says whether it was named explicitly (then it must exist).
pub fn locate() -> Option<(PathBuf, bool)> {
    match std::env::var_os(ENV) {
        Some(p) if p.is_empty() => None,
        Some(p) => Some((PathBuf::from(p), true)),
        None => Some((PathBuf::from(DEFAULT_PATH), false)),
    }
}

/// Reads and parses the file that applies, if any.
///
/// # Errors
/// Usage errors (exit 2): the file named by `PGDR_CONFIG` is missing; the file cannot be
/// read (permissions); it is not TOML or not of the expected shape.
pub fn load() -> Result<Option<ConfigFile>> {
    let Some((path, explicit)) = locate() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        r => r
            .usage_context(|| format!("cannot read the configuration file {}", path.display()))
            .map_err(|e| {
                e.hint(format!(
                    "fix it, or point {ENV} at another file; {ENV}= reads none"
                ))
            })?,
    };
    parse(&path, &text).map(Some)
}

/// The line (1-based) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A usage error naming `PATH:LINE`.
pub fn error_at(path: &Path, line: usize, what: impl std::fmt::Display) -> Error {
    Error::usage(format!(
        "bad configuration file {}:{line}: {what}",
        path.display()
    ))
}

/// Parses `text` (the file at `path`) into sections.
///
/// # Errors
/// Not TOML; a key outside any section; a section that is not a table; `[global]` with a
/// subsection; a value that is an inline table where a value is expected.
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile> {
    let root = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        error_at(path, line, e.message().trim())
            .hint("the file is TOML: see CONFIGURATION FILE in the man page")
    })?;
    let mut file = ConfigFile {
        path: path.to_path_buf(),
        sections: Vec::new(),
    };
    for (key, value) in root.get_ref() {
        let line = line_of(text, key.span().start);
        let name = key.get_ref().to_string();
        let DeValue::Table(table) = value.get_ref() else {
            return Err(
                error_at(path, line, format!("key {name:?} is outside any section"))
                    .hint(format!("put it under [{GLOBAL}] or [TOOL]")),
            );
        };
        let header = line_of(text, value.span().start.min(key.span().start));
        collect(&mut file, text, vec![name], header, table)?;
    }
    Ok(file)
}

/// Adds the section at `path` (and its subsections) to `file`.
fn collect(
    file: &mut ConfigFile,
    text: &str,
    path: Vec<String>,
    line: usize,
    table: &DeTable<'_>,
) -> Result<()> {
    let mut section = Section {
        path: path.clone(),
        line,
        entries: Vec::new(),
    };
    let mut subsections = Vec::new();
    for (key, value) in table {
        let line = line_of(text, key.span().start);
        let name = key.get_ref().to_string();
        match value.get_ref() {
            DeValue::Table(t) => {
                if path[0] == GLOBAL {
                    return Err(error_at(
                        &file.path,
                        line,
                        format!("[{GLOBAL}] has no subsections, but {name:?} is a table"),
                    )
                    .hint("sections are [global], [TOOL] and [TOOL.SUBCOMMAND]"));
                }
                let mut sub = path.clone();
                sub.push(name);
                subsections.push((sub, line, t));
            }
            v => section.entries.push(Entry {
                value: convert(v)
                    .map_err(|why| error_at(&file.path, line, format!("key {name:?}: {why}")))?,
                key: name,
                line,
            }),
        }
    }
    file.sections.push(section);
    for (sub, line, t) in subsections {
        collect(file, text, sub, line, t)?;
    }
    Ok(())
}

fn convert(v: &DeValue<'_>) -> std::result::Result<Value, String> {
    Ok(match v {
        DeValue::String(s) => Value::Text(s.to_string()),
        DeValue::Integer(i) => {
            Value::Integer(i128::from_str_radix(i.as_str(), i.radix()).map_err(|e| e.to_string())?)
        }
        DeValue::Float(f) => Value::Text(f.as_str().to_string()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Text(d.to_string()),
        DeValue::Array(items) => Value::List(
            items
                .iter()
                .map(|x: &Spanned<DeValue<'_>>| match x.get_ref() {
                    DeValue::Array(_) | DeValue::Table(_) => {
                        Err("a list holds plain values, not lists or tables".to_string())
                    }
                    other => convert(other),
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        DeValue::Table(_) => return Err("a table where a value is expected".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<ConfigFile> {
        parse(Path::new("/etc/pgdr/pgdr.toml"), text)
    }

    #[test]
    fn sections_keys_and_lines() {
        let f = p("# defaults\n[global]\nrepo = \"/zpdata02/wal\"\n\n[wal-archive.push]\nparallel = 4\n[snap-prune]\nkeep-daily = 7\ntz = 'local'\nflags = [1, \"a\"]\n").unwrap();
        let titles: Vec<_> = f.sections.iter().map(Section::title).collect();
        assert_eq!(
            titles,
            [
                "[global]",
                "[wal-archive]",
                "[wal-archive.push]",
                "[snap-prune]"
            ]
        );
        let g = &f.sections[0];
        assert_eq!(g.entries[0].key, "repo");
        assert_eq!(g.entries[0].line, 3);
        assert_eq!(g.entries[0].value, Value::Text("/zpdata02/wal".into()));
        let push = &f.sections[2];
        assert_eq!(push.entries[0].line, 6);
        assert_eq!(push.entries[0].value, Value::Integer(4));
        let prune = &f.sections[3];
        assert_eq!(prune.entries[2].value.word(), None);
        assert_eq!(
            prune.entries[2].value,
            Value::List(vec![Value::Integer(1), Value::Text("a".into())])
        );
    }

    #[test]
    fn shapes_that_are_refused() {
        let e = p("repo = 1\n").unwrap_err().to_string();
        assert!(
            e.contains("pgdr.toml:1: key \"repo\" is outside any section"),
            "{e}"
        );
        let e = p("[global]\n[global.x]\ny = 1\n").unwrap_err().to_string();
        assert!(e.contains("[global] has no subsections"), "{e}");
        let e = p("[global]\nrepo = \n").unwrap_err().to_string();
        assert!(
            e.starts_with("bad configuration file /etc/pgdr/pgdr.toml:2:"),
            "{e}"
        );
        let e = p("[snap-take]\nx = [[1]]\n").unwrap_err().to_string();
        assert!(
            e.contains(":2: key \"x\": a list holds plain values"),
            "{e}"
        );
    }

    #[test]
    fn integers_in_any_radix_are_decimal_words() {
        let f = p("[t]\na = 0x10\nb = -7\nc = 1.5\n").unwrap();
        let words: Vec<_> = f.sections[0]
            .entries
            .iter()
            .map(|e| e.value.word().unwrap())
            .collect();
        assert_eq!(words, ["16", "-7", "1.5"]);
    }
}
