//! One file as PostgreSQL's `ParseConfigFp` sees it, line by line, with the byte ranges an
//! editor needs to change one line and keep every other byte.

use crate::lex::{self, Tok, Token};

/// Which include directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeKind {
    Include,
    IncludeIfExists,
    IncludeDir,
}

impl IncludeKind {
    pub fn keyword(self) -> &'static str {
        match self {
            IncludeKind::Include => "include",
            IncludeKind::IncludeIfExists => "include_if_exists",
            IncludeKind::IncludeDir => "include_dir",
        }
    }
}

/// What a line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Empty, white space or a comment.
    Blank,
    /// `name [=] value [# comment]`.
    Setting {
        name: String,
        value: String,
        name_tok: Token,
        value_tok: Token,
    },
    /// `include[_if_exists|_dir] [=] 'path'`.
    Include { kind: IncludeKind, path: String },
    /// A syntax error. `near` is the offending token's text, `None` for "near end of line";
    /// `report_line` is the line PostgreSQL names in the error (see [`parse`]).
    SyntaxError {
        near: Option<String>,
        report_line: u32,
    },
}

/// One physical line (a logical line too: strings cannot hold a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: u32,
    /// Byte range in the file text, without the `\n`.
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// A parsed file. `text` is kept so edits can splice byte ranges.
#[derive(Debug, Clone)]
pub struct File {
    pub text: String,
    pub lines: Vec<Line>,
}

impl File {
    pub fn line_text(&self, l: &Line) -> &str {
        &self.text[l.start..l.end]
    }

    /// The first syntax error, where PostgreSQL's view of the file ends.
    pub fn first_error(&self) -> Option<&Line> {
        self.lines
            .iter()
            .find(|l| matches!(l.kind, Kind::SyntaxError { .. }))
    }

    /// Lines PostgreSQL reads when it stops at the first syntax error (pg_file_settings
    /// does: it abandons a file after one error).
    pub fn effective_lines(&self) -> impl Iterator<Item = &Line> {
        let stop = self.first_error().map(|l| l.number).unwrap_or(u32::MAX);
        self.lines.iter().filter(move |l| l.number <= stop)
    }
}

/// Classifies one line's tokens like ParseConfigFp's loop body.
pub fn classify(line: &[u8], at_eof_without_newline: bool, number: u32) -> Kind {
    let lexed = lex::lex_line(line);
    let t = &lexed.tokens;
    if t.is_empty() {
        return Kind::Blank;
    }
    // "near end of line" is reported one line up when the line ends at EOF without a
    // newline, because the line counter only moves on '\n' (a quirk kept for fidelity).
    let eol_line = if at_eof_without_newline {
        number - 1
    } else {
        number
    };
    let err_at = |i: usize| match t.get(i) {
        Some(tok) => Kind::SyntaxError {
            near: Some(String::from_utf8_lossy(&line[tok.start..tok.end]).into_owned()),
            report_line: number,
        },
        None => Kind::SyntaxError {
            near: None,
            report_line: eol_line,
        },
    };
    if !lex::is_name(t[0].kind) {
        return err_at(0);
    }
    let mut i = 1;
    if t.get(i).map(|x| x.kind) == Some(Tok::Equals) {
        i += 1;
    }
    match t.get(i) {
        Some(v) if lex::is_value(v.kind) => {}
        _ => return err_at(i),
    }
    if t.len() > i + 1 {
        return err_at(i + 1);
    }
    let name_tok = t[0];
    let value_tok = t[i];
    let name = String::from_utf8_lossy(&line[name_tok.start..name_tok.end]).into_owned();
    let value = lex::token_value(line, &value_tok);
    let kind = match name.to_ascii_lowercase().as_str() {
        "include" => Some(IncludeKind::Include),
        "include_if_exists" => Some(IncludeKind::IncludeIfExists),
        "include_dir" => Some(IncludeKind::IncludeDir),
        _ => None,
    };
    match kind {
        Some(kind) => Kind::Include { kind, path: value },
        None => Kind::Setting {
            name,
            value,
            name_tok,
            value_tok,
        },
    }
}

/// Parses a whole file.
pub fn parse(text: &str) -> File {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = 1u32;
    while start < bytes.len() {
        let (end, next, eof) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(p) => (start + p, start + p + 1, false),
            None => (bytes.len(), bytes.len(), true),
        };
        let kind = classify(&bytes[start..end], eof, number);
        lines.push(Line {
            number,
            start,
            end,
            kind,
        });
        start = next;
        number += 1;
    }
    File {
        text: text.to_string(),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Kind {
        parse(s).lines.remove(0).kind
    }

    fn value(s: &str) -> String {
        match kind(s) {
            Kind::Setting { value, .. } => value,
            k => panic!("{s}: {k:?}"),
        }
    }

    #[test]
    fn settings() {
        assert_eq!(value("shared_buffers 128MB\n"), "128MB");
        assert_eq!(value("  x.y = 'it''s' # c\n"), "it's");
        assert_eq!(
            value("archive_command = 'cp %p /a/%f # x'\n"),
            "cp %p /a/%f # x"
        );
        assert_eq!(value("log_directory = pg_log/x"), "pg_log/x");
        assert_eq!(value("fsync = on#x\r\n"), "on");
        assert_eq!(value("unix_socket_permissions = 0777\n"), "0777");
        assert_eq!(
            kind("INCLUDE = 'a.conf'\n"),
            Kind::Include {
                kind: IncludeKind::Include,
                path: "a.conf".into()
            }
        );
        assert_eq!(kind("# only a comment\n"), Kind::Blank);
        assert_eq!(kind("   \t\n"), Kind::Blank);
    }

    #[test]
    fn syntax_errors() {
        let near = |s: &str| match kind(s) {
            Kind::SyntaxError { near, .. } => near,
            k => panic!("{s}: {k:?}"),
        };
        assert_eq!(near("shared_buffers = 1.5GB\n").as_deref(), Some("GB"));
        assert_eq!(near("shared_buffers = 128 MB\n").as_deref(), Some("MB"));
        assert_eq!(near("listen_addresses = 10.0.0.1\n").as_deref(), Some(".0"));
        assert_eq!(near("listen_addresses = *\n").as_deref(), Some("*"));
        assert_eq!(
            near("unix_socket_directories = /tmp\n").as_deref(),
            Some("/")
        );
        assert_eq!(
            near("x = pg_catalog.english\n").as_deref(),
            Some("pg_catalog.english")
        );
        assert_eq!(near("my.ext.param = 1\n").as_deref(), Some("my.ext.param"));
        assert_eq!(near("work_mem =\n"), None);
        assert_eq!(near("x = 'a\n").as_deref(), Some("'"));
        // Line numbers: "near end of line" at EOF without newline names the line before.
        let f = parse("a = 1\nwork_mem =");
        assert_eq!(
            f.lines[1].kind,
            Kind::SyntaxError {
                near: None,
                report_line: 1
            }
        );
    }
}
