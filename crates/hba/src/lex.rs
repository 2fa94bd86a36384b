//! pg_hba.conf lines and tokens exactly as `hba.c` reads them: physical lines joined by
//! backslash continuation (PostgreSQL 14+), `next_token` (blanks, commas, double quotes, `#`),
//! `next_field_expand` (comma lists, `@file`), and the `include*` directives (16+).
//!
//! File access goes through [`Source`] so the logic stays testable without a disk.
//!
//! Over 600 lines because hba.c's tokenizer is one piece (records, tokens, `@file`,
//! `include*`) and its tests are the corpus of tricky lines.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Pre-14 servers read lines into a fixed buffer of this size (`MAX_LINE` in hba.c).
const PRE14_MAX_LINE: usize = 20480;
/// `CONF_FILE_MAX_DEPTH`: nesting limit for `@file` and `include*`.
const MAX_DEPTH: usize = 10;

/// Where included files come from (the disk in the tool, a map in unit tests).
pub trait Source {
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// Entries of a directory: (name, is_dir).
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<(String, bool)>>;
}

/// The real file system.
pub struct Disk;

impl Source for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        let bytes = std::fs::read(path)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<(String, bool)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(path)? {
            let e = e?;
            // get_dirent_type follows symlinks.
            let is_dir = std::fs::metadata(e.path())
                .map(|m| m.is_dir())
                .unwrap_or(false);
            out.push((e.file_name().to_string_lossy().into_owned(), is_dir));
        }
        Ok(out)
    }
}

/// One logical record of a file: one physical line, or several joined by continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// First physical line (1-based): what PostgreSQL reports.
    pub line: usize,
    /// Physical lines consumed.
    pub nlines: usize,
    /// Byte range in the file, including the final line break.
    pub start: usize,
    pub end: usize,
    /// The joined text the tokenizer sees, when it is not simply the line without its line
    /// break (continuation lines joined, backslashes removed): see [`Record::text`].
    pub joined: Option<String>,
    /// Pre-14 only: longer than the server's line buffer.
    pub too_long: bool,
}

/// `pg_strip_crlf`: every trailing CR and LF.
fn strip_crlf(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// Splits a file into records as `tokenize_auth_file` does.
pub fn records(text: &str, version: u32) -> Vec<Record> {
    Records::new(text, version).collect()
}

/// [`records`] one at a time (a reader that needs only the lines keeps none of them).
pub struct Records<'t> {
    text: &'t str,
    version: u32,
    pos: usize,
    line: usize,
}

impl<'t> Records<'t> {
    pub fn new(text: &'t str, version: u32) -> Records<'t> {
        Records {
            text,
            version,
            pos: 0,
            line: 1,
        }
    }

    /// The end of the physical line starting at `pos` (after its line break).
    fn next_phys(&self, pos: usize) -> usize {
        // str::find of one ASCII char is a fast memchr, unlike a byte-by-byte search.
        match self.text[pos..].find('\n') {
            Some(i) => pos + i + 1,
            None => self.text.len(),
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let (text, len) = (self.text, self.text.len());
        if self.pos >= len {
            return None;
        }
        let start = self.pos;
        let first_end = self.next_phys(start);
        let first = strip_crlf(&text[start..first_end]);
        // Most records are one line: no copy of their text.
        let continued = self.version >= 14 && first.ends_with('\\');
        if !continued {
            let r = Record {
                line: self.line,
                nlines: 1,
                start,
                end: first_end,
                joined: None,
                too_long: self.version < 14 && first_end - start >= PRE14_MAX_LINE - 1,
            };
            self.pos = first_end;
            self.line += 1;
            return Some(r);
        }
        let mut buf = String::new();
        let mut last_backslash_len = 0usize;
        let mut nlines = 0;
        loop {
            let end = self.next_phys(self.pos);
            let phys = &text[self.pos..end];
            self.pos = end;
            nlines += 1;
            buf.push_str(strip_crlf(phys));
            // A continuation counts only beyond the previous splice point (hba.c).
            if buf.len() > last_backslash_len && buf.ends_with('\\') && self.pos < len {
                buf.pop();
                last_backslash_len = buf.len();
                continue;
            }
            if buf.len() > last_backslash_len && buf.ends_with('\\') {
                // Backslash on the last line of the file: stripped, then end of file.
                buf.pop();
            }
            break;
        }
        let r = Record {
            line: self.line,
            nlines,
            start,
            end: self.pos,
            joined: Some(buf),
            too_long: false,
        };
        self.line += nlines;
        Some(r)
    }
}

impl Record {
    /// The text the tokenizer sees, given the text of the file the record is in.
    pub fn text<'a>(&'a self, file_text: &'a str) -> &'a str {
        match &self.joined {
            Some(j) => j,
            None => strip_crlf(&file_text[self.start..self.end]),
        }
    }
}

/// `pg_isblank`.
pub fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r'
}

/// A token after dequoting; `quoted` is `initial_quote` (a quote before the first character).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token {
    /// The words nearly every line repeats ([`common_word`]) are borrowed, not allocated
    /// for each line of a 100,000-line file.
    pub s: Cow<'static, str>,
    pub quoted: bool,
}

/// `s` as a `'static` str when it is a connection type, keyword or method: most tokens of a
/// file are. (A `match`, so that each comparison is a few inlined loads.)
fn common_word(s: &str) -> Option<&'static str> {
    Some(match s {
        "local" => "local",
        "host" => "host",
        "hostssl" => "hostssl",
        "hostnossl" => "hostnossl",
        "hostgssenc" => "hostgssenc",
        "hostnogssenc" => "hostnogssenc",
        "all" => "all",
        "sameuser" => "sameuser",
        "samerole" => "samerole",
        "samegroup" => "samegroup",
        "replication" => "replication",
        "samehost" => "samehost",
        "samenet" => "samenet",
        "trust" => "trust",
        "reject" => "reject",
        "md5" => "md5",
        "scram-sha-256" => "scram-sha-256",
        "password" => "password",
        "peer" => "peer",
        "ident" => "ident",
        "cert" => "cert",
        "gss" => "gss",
        "sspi" => "sspi",
        "pam" => "pam",
        "ldap" => "ldap",
        "radius" => "radius",
        "bsd" => "bsd",
        "oauth" => "oauth",
        _ => return None,
    })
}

impl Token {
    pub fn new(s: impl Into<Cow<'static, str>>, quoted: bool) -> Token {
        Token {
            s: s.into(),
            quoted,
        }
    }
    /// `token_is_keyword`.
    pub fn is_keyword(&self, k: &str) -> bool {
        !self.quoted && self.s == k
    }
    /// `token_is_member_check`.
    pub fn is_member_check(&self) -> bool {
        !self.quoted && self.s.starts_with('+')
    }
}

/// The tokenizer's state over one record's text.
struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    p: usize,
    comment: Option<usize>,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Cursor<'a> {
        Cursor {
            s,
            b: s.as_bytes(),
            p: 0,
            comment: None,
        }
    }

    fn get(&mut self) -> u8 {
        let c = self.b.get(self.p).copied().unwrap_or(0);
        self.p += 1;
        c
    }
    fn at_end(&self) -> bool {
        self.b.get(self.p).copied().unwrap_or(0) == 0
    }

    /// `next_token`: (token, terminating comma, start offset), or None at end of line.
    fn next_token(&mut self) -> Option<(Token, bool, usize)> {
        let mut c = self.get();
        while c != 0 && (is_blank(c) || c == b',') {
            c = self.get();
        }
        let start = self.p.saturating_sub(1);
        // Most tokens have no quotes: then the token is a slice of the line.
        let mut j = start;
        while j < self.b.len() {
            let b = self.b[j];
            if b == 0 || is_blank(b) || b == b',' || b == b'#' || b == b'"' {
                break;
            }
            j += 1;
        }
        let stop = self.b.get(j).copied().unwrap_or(0);
        if j > start && stop != b'"' && c != b'"' {
            // Cut at ASCII delimiters of a str, so on character boundaries: no need to
            // validate the bytes again (the lossy copy is for safety only).
            let s = match self.s.get(start..j) {
                Some(s) => common_word(s).map_or_else(|| Cow::Owned(s.to_owned()), Cow::Borrowed),
                None => Cow::Owned(String::from_utf8_lossy(&self.b[start..j]).into_owned()),
            };
            let comma = stop == b',';
            if stop == b'#' {
                self.comment = Some(j);
                self.p = self.b.len();
            } else {
                self.p = j;
            }
            return Some((Token::new(s, false), comma, start));
        }
        let mut buf: Vec<u8> = Vec::new();
        let (mut in_quote, mut was_quote, mut saw_quote) = (false, false, false);
        let mut initial_quote = false;
        let mut comma = false;
        while c != 0 && (!is_blank(c) || in_quote) {
            if c == b'#' && !in_quote {
                self.comment = Some(self.p - 1);
                self.p = self.b.len() + 1;
                c = 0;
                break;
            }
            if c == b',' && !in_quote {
                comma = true;
                break;
            }
            if c != b'"' || was_quote {
                buf.push(c);
            }
            was_quote = in_quote && c == b'"' && !was_quote;
            if c == b'"' {
                in_quote = !in_quote;
                saw_quote = true;
                if buf.is_empty() {
                    initial_quote = true;
                }
            }
            c = self.get();
        }
        let _ = c;
        self.p -= 1;
        if saw_quote || !buf.is_empty() {
            let s = String::from_utf8_lossy(&buf).into_owned();
            Some((Token::new(s, initial_quote), comma, start))
        } else {
            None
        }
    }
}

/// One tokenized line (`TokenizedAuthLine`), from the top file or an included one.
#[derive(Debug, Clone)]
pub struct AuthLine {
    pub file: Arc<Path>,
    pub line: usize,
    /// The fields, each a list of tokens. Empty in a parsed [`crate::file::HbaFile`]: the
    /// parser keeps what it needs (the rule's entries) and lets the rest go.
    pub fields: Vec<Vec<Token>>,
    /// Byte offset of each field in the record text (layout of neighbours for new lines).
    pub field_cols: Vec<usize>,
    pub err: Option<String>,
    /// Text after an unquoted `#`, trimmed.
    pub comment: Option<String>,
    /// Index of the top file's record this line comes from (an include directive for lines
    /// of included files).
    pub origin: usize,
}

impl AuthLine {
    /// The line, leaving this one empty: the tokenizer refills one line for every record,
    /// so a reader that keeps lines takes them.
    pub fn take(&mut self) -> AuthLine {
        AuthLine {
            file: self.file.clone(),
            line: self.line,
            fields: std::mem::take(&mut self.fields),
            field_cols: std::mem::take(&mut self.field_cols),
            err: self.err.take(),
            comment: self.comment.take(),
            origin: self.origin,
        }
    }
}

/// What a record of the top file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Blank or comment only.
    Empty,
    /// A line handed to the parser (rule or error).
    Line,
    /// An `include*` directive that worked.
    Include,
}

/// The tokenized top file: its records, what each is, and every line (included ones inline).
#[derive(Debug, Clone)]
pub struct Tokenized {
    pub records: Vec<Record>,
    pub kinds: Vec<Kind>,
    pub lines: Vec<AuthLine>,
}

struct Ctx<'a> {
    version: u32,
    src: &'a dyn Source,
}

/// Where tokenized lines go, in file order (includes inline).
type Sink<'s> = &'s mut dyn FnMut(&mut AuthLine);

/// `AbsoluteConfigLocation`: relative to the directory of the referencing file.
pub fn absolute_location(name: &str, outer: &Path) -> PathBuf {
    let p = Path::new(name);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        outer.parent().unwrap_or(Path::new("/")).join(p)
    };
    canonicalize(&joined)
}

/// `canonicalize_path`: drops `.` and empty components and resolves `..` lexically.
fn canonicalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn os_message(e: &std::io::Error) -> String {
    pgdr_core::error::clean_io_message(&e.to_string())
}

impl Ctx<'_> {
    fn open(&self, path: &Path, depth: usize) -> Result<String, (String, std::io::ErrorKind)> {
        if depth > MAX_DEPTH {
            return Err((
                format!(
                    "could not open file \"{}\": maximum nesting depth exceeded",
                    path.display()
                ),
                std::io::ErrorKind::Other,
            ));
        }
        self.src.read(path).map_err(|e| {
            (
                format!(
                    "could not open file \"{}\": {}",
                    path.display(),
                    os_message(&e)
                ),
                e.kind(),
            )
        })
    }

    /// `next_field_expand`: the field's tokens into `toks` (empty), and its column.
    fn next_field(
        &self,
        cur: &mut Cursor,
        toks: &mut Vec<Token>,
        file: &Path,
        depth: usize,
        err: &mut Option<String>,
    ) -> usize {
        let mut first_col = None;
        while let Some((tok, comma, start)) = cur.next_token() {
            first_col.get_or_insert(start);
            if !tok.quoted && tok.s.len() > 1 && tok.s.starts_with('@') {
                self.expand_file(toks, file, &tok.s[1..], depth + 1, err);
            } else {
                toks.push(tok);
            }
            if !(comma && err.is_none()) {
                break;
            }
        }
        first_col.unwrap_or(0)
    }

    /// `tokenize_expand_file`: every token of every line of an `@file`.
    fn expand_file(
        &self,
        toks: &mut Vec<Token>,
        outer: &Path,
        name: &str,
        depth: usize,
        err: &mut Option<String>,
    ) {
        let full = absolute_location(name, outer);
        let text = match self.open(&full, depth) {
            Ok(t) => t,
            Err((msg, _)) => {
                *err = Some(if self.version < 16 {
                    // Pre-16 wording (tokenize_inc_file).
                    let why = msg.rsplit(": ").next().unwrap_or("").to_string();
                    format!(
                        "could not open secondary authentication file \"@{name}\" as \"{}\": {why}",
                        full.display()
                    )
                } else {
                    msg
                });
                return;
            }
        };
        let mut lines = Vec::new();
        self.tokenize(&full, &text, depth, 0, &mut |l| lines.push(l.take()), None);
        for l in lines {
            if let Some(e) = l.err {
                *err = Some(e);
                break;
            }
            for f in l.fields {
                toks.extend(f);
            }
        }
    }

    /// `tokenize_auth_file` for one file; appends to `out`. `top` gets the records of the top
    /// file and what each is, when asked for.
    fn tokenize(
        &self,
        file: &Path,
        text: &str,
        depth: usize,
        origin: usize,
        out: Sink,
        mut top: Option<(&mut Vec<Record>, &mut Vec<Kind>)>,
    ) {
        // One line refilled for every record: its vectors are allocated once a file, not once
        // a line of a 100,000-line file. A reader that keeps lines takes them (AuthLine::take).
        let mut l = AuthLine {
            file: Arc::from(file),
            line: 0,
            fields: Vec::with_capacity(6),
            field_cols: Vec::with_capacity(6),
            err: None,
            comment: None,
            origin: 0,
        };
        let mut spare: Vec<Vec<Token>> = Vec::new();
        // One search of the file instead of one a line: few files hold a NUL.
        let has_nul = text.contains('\0');
        for (i, rec) in Records::new(text, self.version).enumerate() {
            let origin = if depth == 0 { i } else { origin };
            let mut err: Option<String> = None;
            if rec.too_long {
                err = Some("authentication file line too long".into());
            }
            // C strings end at a NUL byte.
            let t = rec.text(text);
            let nul = if has_nul { t.find('\0') } else { None };
            let t = &t[..nul.unwrap_or(t.len())];
            let mut cur = Cursor::new(t);
            // The previous line's field vectors serve again (those a reader took are gone).
            spare.extend(
                l.fields
                    .drain(..)
                    .filter(|f| f.capacity() > 0)
                    .map(|mut f| {
                        f.clear();
                        f
                    }),
            );
            l.field_cols.clear();
            while !cur.at_end() && err.is_none() {
                // One token a field, mostly: a new vector holds one (rules keep theirs).
                let mut f = spare.pop().unwrap_or_else(|| Vec::with_capacity(1));
                let col = self.next_field(&mut cur, &mut f, file, depth, &mut err);
                if f.is_empty() {
                    spare.push(f);
                } else {
                    l.fields.push(f);
                    l.field_cols.push(col);
                }
            }
            let fields = &l.fields;
            let mut kind = Kind::Line;
            if fields.is_empty() && err.is_none() {
                kind = Kind::Empty;
            } else if err.is_none() && fields.len() == 2 && self.version >= 16 {
                let first = fields[0][0].s.as_ref();
                let second = fields[1][0].s.clone();
                if matches!(first, "include" | "include_if_exists" | "include_dir") {
                    let e = match first {
                        "include" => self.include(file, &second, depth, false, origin, out),
                        "include_if_exists" => {
                            self.include(file, &second, depth, true, origin, out)
                        }
                        _ => self.include_dir(file, &second, depth, origin, out),
                    };
                    match e {
                        None => kind = Kind::Include,
                        Some(e) => err = Some(e),
                    }
                }
            }
            // Only a line handed to the parser keeps its comment (not a comment line).
            let comment = cur.comment.filter(|_| kind == Kind::Line).map(|c| {
                t[c + 1..]
                    .trim_matches(|ch: char| ch == ' ' || ch == '\t' || ch == '\r')
                    .to_string()
            });
            let line = rec.line;
            if let Some((r, k)) = top.as_mut() {
                r.push(rec);
                k.push(kind);
            }
            if kind == Kind::Line {
                l.line = line;
                l.err = err;
                l.comment = comment;
                l.origin = origin;
                out(&mut l);
            }
        }
    }

    /// `tokenize_include_file`; Some(error) when the directive fails.
    fn include(
        &self,
        outer: &Path,
        name: &str,
        depth: usize,
        missing_ok: bool,
        origin: usize,
        out: Sink,
    ) -> Option<String> {
        let full = absolute_location(name, outer);
        match self.open(&full, depth + 1) {
            Ok(text) => {
                self.tokenize(&full, &text, depth + 1, origin, out, None);
                None
            }
            Err((_, std::io::ErrorKind::NotFound)) if missing_ok => None,
            Err((msg, _)) => Some(msg),
        }
    }

    /// `include_dir` via `GetConfFilesInDir`.
    fn include_dir(
        &self,
        outer: &Path,
        name: &str,
        depth: usize,
        origin: usize,
        out: Sink,
    ) -> Option<String> {
        if name.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
            return Some("empty configuration directory name".into());
        }
        let dir = absolute_location(name, outer);
        let entries = match self.src.read_dir(&dir) {
            Ok(e) => e,
            Err(_) => return Some(format!("could not open directory \"{}\"", dir.display())),
        };
        let mut files: Vec<String> = entries
            .into_iter()
            .filter(|(n, is_dir)| {
                !n.starts_with('.') && n.len() >= 6 && n.ends_with(".conf") && !is_dir
            })
            .map(|(n, _)| canonicalize(&dir.join(n)).to_string_lossy().into_owned())
            .collect();
        // qsort with strcmp: byte order.
        files.sort();
        let mut errs = Vec::new();
        for f in files {
            if let Some(e) = self.include(outer, &f, depth, false, origin, out) {
                errs.push(e);
            }
        }
        if errs.is_empty() {
            None
        } else {
            Some(errs.join("\n"))
        }
    }
}

/// Tokenizes a top-level file (its path should be absolute so relative includes resolve as
/// the server resolves them).
pub fn tokenize(file: &Path, text: &str, version: u32, src: &dyn Source) -> Tokenized {
    let mut lines = Vec::new();
    let (records, kinds) = tokenize_each(file, text, version, src, &mut |l| lines.push(l.take()));
    Tokenized {
        records,
        kinds,
        lines,
    }
}

/// [`tokenize`], handing each line to `each` as soon as it is read (a parser can take what
/// it needs, or the whole line with [`AuthLine::take`], and let the rest go: the line is
/// refilled for the next record); returns the records and kinds of the top file.
pub fn tokenize_each(
    file: &Path,
    text: &str,
    version: u32,
    src: &dyn Source,
    each: Sink,
) -> (Vec<Record>, Vec<Kind>) {
    let ctx = Ctx { version, src };
    let (mut records, mut kinds) = (Vec::new(), Vec::new());
    ctx.tokenize(file, text, 0, 0, each, Some((&mut records, &mut kinds)));
    (records, kinds)
}

/// [`tokenize_each`] for a reader that needs the lines only (list, check, match): the
/// records of the file are not kept.
pub fn tokenize_lines(file: &Path, text: &str, version: u32, src: &dyn Source, each: Sink) {
    Ctx { version, src }.tokenize(file, text, 0, 0, each, None);
}

/// Tokenizes one field's worth of text the way a pg_hba.conf line would (for command-line
/// values such as `--database 'a,"b c"'`). Returns every token of every field.
pub fn tokens_of(text: &str) -> Vec<Token> {
    let mut cur = Cursor::new(text);
    let mut out = Vec::new();
    while let Some((t, _, _)) = cur.next_token() {
        out.push(t);
    }
    out
}

/// Tokenizes a command-line value that must be exactly one pg_hba.conf field (`--database`,
/// `--user`): a comma list of names, keywords, `"quoted names"`, `+group`, `@file`,
/// `/regex`. What the server would read otherwise is refused, with the reason, instead of
/// written: an unquoted `#` (the rest is a comment), an unmatched `"` (the quote runs to the
/// end of the line), a blank between names (it ends the field, so the next name becomes the
/// next column). (hba.c next_token/next_field_expand.)
///
/// # Errors
/// Why the value is not one field.
pub fn field_tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut cur = Cursor::new(text);
    let mut out = Vec::new();
    let mut continues = true;
    while let Some((t, comma, _)) = cur.next_token() {
        if cur.comment.is_some() {
            return Err("an unquoted '#' starts a comment there".into());
        }
        if !continues {
            return Err("a blank ends the field (separate names with commas)".into());
        }
        continues = comma;
        out.push(t);
    }
    if cur.comment.is_some() {
        return Err("an unquoted '#' starts a comment there".into());
    }
    if text.bytes().filter(|b| *b == b'"').count() % 2 == 1 {
        return Err("a '\"' is unmatched (inside quotes write it twice)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_command_line_field_is_one_field_or_refused() {
        let names = |s: &str| -> Vec<String> {
            field_tokens(s)
                .unwrap()
                .iter()
                .map(|t| t.s.to_string())
                .collect()
        };
        assert_eq!(names("app"), ["app"]);
        assert_eq!(names("a,b"), ["a", "b"]);
        assert_eq!(names("a, b"), ["a", "b"]);
        assert_eq!(names("\"x#y\""), ["x#y"]);
        assert_eq!(names("\"a\"\"b\""), ["a\"b"]);
        assert_eq!(names("\"bob all\""), ["bob all"]);
        assert_eq!(names("+grp,@file,/^rep_"), ["+grp", "@file", "/^rep_"]);
        for bad in ["x#y", "a\"b", "bob all", "a,b c", "a #c"] {
            assert!(field_tokens(bad).is_err(), "{bad}");
        }
    }

    pub struct Mem(pub HashMap<PathBuf, String>);
    impl Source for Mem {
        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
        fn read_dir(&self, path: &Path) -> std::io::Result<Vec<(String, bool)>> {
            let v: Vec<_> = self
                .0
                .keys()
                .filter(|k| k.parent() == Some(path))
                .map(|k| (k.file_name().unwrap().to_string_lossy().into_owned(), false))
                .collect();
            if v.is_empty() {
                Err(std::io::ErrorKind::NotFound.into())
            } else {
                Ok(v)
            }
        }
    }

    fn fields(line: &str) -> Vec<Vec<(String, bool)>> {
        let t = tokenize(Path::new("/d/pg_hba.conf"), line, 16, &Mem(HashMap::new()));
        t.lines[0]
            .fields
            .iter()
            .map(|f| f.iter().map(|t| (t.s.to_string(), t.quoted)).collect())
            .collect()
    }
    fn strs(line: &str) -> Vec<Vec<String>> {
        fields(line)
            .into_iter()
            .map(|f| f.into_iter().map(|t| t.0).collect())
            .collect()
    }

    #[test]
    fn comma_lists_and_blanks() {
        assert_eq!(
            strs("local db1, db2 all peer"),
            vec![vec!["local"], vec!["db1", "db2"], vec!["all"], vec!["peer"]]
        );
        assert_eq!(
            strs("local db1 ,db2 all peer"),
            vec![
                vec!["local"],
                vec!["db1"],
                vec!["db2"],
                vec!["all"],
                vec!["peer"]
            ]
        );
        assert_eq!(strs("local a,,b x")[1], vec!["a", "b"]);
        assert_eq!(strs("host all all 10.0.0.0/8 md5#c")[4], vec!["md5"]);
    }

    #[test]
    fn quoting() {
        let f = fields(r#"host "all" al"l" ab"c d"e "a""b" "+x" +"y z""#);
        assert_eq!(f[1][0], ("all".into(), true));
        assert_eq!(f[2][0], ("all".into(), false));
        assert_eq!(f[3][0], ("abc de".into(), false));
        assert_eq!(f[4][0], ("a\"b".into(), true));
        assert_eq!(f[5][0], ("+x".into(), true));
        assert_eq!(f[6][0], ("+y z".into(), false));
        // Unterminated quote: the rest of the line.
        let f = fields("host \"unterminated all ::1/128 trust");
        assert_eq!(f.len(), 2);
        assert_eq!(f[1][0].0, "unterminated all ::1/128 trust");
        // "#" inside quotes is literal; an empty quoted token counts.
        let f = fields("local \"a#b\" \"\" x");
        assert_eq!(f[1][0].0, "a#b");
        assert_eq!(f[2][0], ("".into(), true));
    }

    #[test]
    fn continuation_and_line_numbers() {
        let text = "host all all 10.0.0.0/8 \\\n  scram-sha-256\nhost all\\\nall 0.0.0.0/0 trust\n# c \\\nhost x\nlocal a b c\n";
        let t = tokenize(Path::new("/p"), text, 15, &Mem(HashMap::new()));
        assert_eq!(t.lines.len(), 3);
        assert_eq!(t.lines[0].line, 1);
        assert_eq!(t.lines[0].fields.len(), 5);
        assert_eq!(t.lines[1].line, 3);
        assert_eq!(t.lines[1].fields[1][0].s, "allall");
        assert_eq!(t.lines[2].line, 7);
        assert_eq!(
            t.kinds,
            vec![Kind::Line, Kind::Line, Kind::Empty, Kind::Line]
        );
        // Before 14: no continuation.
        let t = tokenize(Path::new("/p"), text, 13, &Mem(HashMap::new()));
        assert_eq!(t.lines[0].fields.len(), 5);
        assert_eq!(t.lines[0].fields[4][0].s, "\\");
        // A double backslash keeps one; an empty line ends the record.
        let r = records("a\\\\\n\nb\n", 16);
        assert_eq!(r[0].text("a\\\\\n\nb\n"), "a\\");
        assert_eq!(r[0].nlines, 2);
        assert_eq!(r[1].line, 3);
        // Records cover every byte.
        let r = records("x\r\n\\\ny", 16);
        assert_eq!(r.last().unwrap().end, 6);
    }

    #[test]
    fn at_files_and_includes() {
        let mut m = HashMap::new();
        m.insert(
            PathBuf::from("/d/admins"),
            "alice, bob # c\ncarol\n".to_string(),
        );
        m.insert(PathBuf::from("/d/my list"), "x".to_string());
        m.insert(
            PathBuf::from("/d/inc.conf"),
            "local all all trust\n".to_string(),
        );
        m.insert(
            PathBuf::from("/d/conf.d/b.conf"),
            "local b b trust\n".to_string(),
        );
        m.insert(
            PathBuf::from("/d/conf.d/a.conf"),
            "local a a trust\n".to_string(),
        );
        m.insert(
            PathBuf::from("/d/conf.d/.h.conf"),
            "local h h trust\n".to_string(),
        );
        let src = Mem(m);
        let text = "local @admins,z @\"my list\" peer\nlocal \"@admins\" @ peer\ninclude \"inc.conf\"\ninclude_dir conf.d\ninclude_if_exists nope.conf\ninclude missing.conf\n";
        let t = tokenize(Path::new("/d/pg_hba.conf"), text, 16, &src);
        let names: Vec<_> = t.lines[0].fields[1].iter().map(|t| t.s.as_ref()).collect();
        assert_eq!(names, ["alice", "bob", "carol", "z"]);
        assert_eq!(t.lines[0].fields[2][0].s, "x");
        assert_eq!(t.lines[1].fields[1][0].s, "@admins");
        assert_eq!(t.lines[1].fields[2][0].s, "@");
        assert_eq!(&*t.lines[2].file, Path::new("/d/inc.conf"));
        assert_eq!(t.lines[2].origin, 2);
        assert_eq!(t.lines[3].fields[1][0].s, "a");
        assert_eq!(t.lines[4].fields[1][0].s, "b");
        assert_eq!(t.lines.len(), 6);
        assert!(t.lines[5].err.as_deref().unwrap().contains("missing.conf"));
        assert_eq!(
            t.kinds,
            vec![
                Kind::Line,
                Kind::Line,
                Kind::Include,
                Kind::Include,
                Kind::Include,
                Kind::Line
            ]
        );
        // Before 16 "include" is just a word.
        let t = tokenize(Path::new("/d/pg_hba.conf"), "include inc.conf\n", 15, &src);
        assert_eq!(t.kinds, vec![Kind::Line]);
        // A missing @file is an error of the line.
        let t = tokenize(
            Path::new("/d/pg_hba.conf"),
            "local @nope all peer\n",
            15,
            &src,
        );
        assert!(t.lines[0]
            .err
            .as_deref()
            .unwrap()
            .starts_with("could not open secondary authentication file \"@nope\""));
    }

    #[test]
    fn comment_text() {
        let t = tokenize(
            Path::new("/p"),
            "local all all peer   # the admins \n",
            15,
            &Mem(HashMap::new()),
        );
        assert_eq!(t.lines[0].comment.as_deref(), Some("the admins"));
    }
}
