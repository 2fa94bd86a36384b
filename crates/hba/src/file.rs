//! One pg_hba.conf as PostgreSQL reads it (with the files it includes), kept with its text
//! so that edits are byte ranges: every line an edit does not touch keeps its bytes.

use crate::layout::Layout;
use crate::lex::{self, AuthLine, Kind, Source, Tokenized};
use crate::parse_line::{self, Build, LineError, Rule};
use pgdr_core::Result;
use std::path::{Path, PathBuf};

/// What list, check and match need of a file: its rules and the lines the server rejects,
/// without the text, records and columns an edit needs (a large file in far less memory).
pub struct HbaRules {
    pub path: PathBuf,
    pub version: u32,
    pub rules: Vec<Rule>,
    pub errors: Vec<LineError>,
}

impl HbaRules {
    /// Reads and parses `path` (absolute) with the rules of PostgreSQL `version`.
    ///
    /// # Errors
    /// The file cannot be read (exit 1) or is not UTF-8 (exit 2).
    pub fn load(path: &Path, version: u32) -> Result<HbaRules> {
        let text = pgdr_core::fsx::read_text(path)?;
        // At most one rule a line (included files aside): one allocation, never regrown and
        // copied, and the pages of the unused tail are never touched.
        let mut rules = Vec::with_capacity(line_count(&text));
        let mut errors = Vec::new();
        lex::tokenize_lines(path, &text, version, &lex::Disk, &mut |l| {
            match parse_line::parse_line_taking(
                l,
                version,
                Build::default(),
                &crate::addr::resolves,
            ) {
                Ok(r) => rules.push(r),
                Err(e) => errors.push(e),
            }
        });
        Ok(HbaRules {
            path: path.to_path_buf(),
            version,
            rules,
            errors,
        })
    }
}

/// A parsed pg_hba.conf and everything it includes.
pub struct HbaFile {
    pub path: PathBuf,
    pub text: String,
    pub version: u32,
    pub tok: Tokenized,
    pub rules: Vec<Rule>,
    pub errors: Vec<LineError>,
    /// For each tokenized line, its rule index (None for an error line).
    pub line_rule: Vec<Option<usize>>,
}

impl HbaFile {
    pub fn parse(
        path: &Path,
        text: String,
        version: u32,
        src: &dyn Source,
        resolve: parse_line::Resolver,
    ) -> HbaFile {
        let mut lines = Vec::new();
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        let mut line_rule = Vec::new();
        let (records, kinds) = lex::tokenize_each(path, &text, version, src, &mut |l| {
            let mut l = l.take();
            match parse_line::parse_line_taking(&mut l, version, Build::default(), resolve) {
                Ok(r) => {
                    line_rule.push(Some(rules.len()));
                    rules.push(r);
                }
                Err(e) => {
                    line_rule.push(None);
                    errors.push(e);
                }
            }
            // The rule has its entries; layouts need only the columns. Freed now, the
            // memory serves the next line.
            l.fields = Vec::new();
            lines.push(l);
        });
        let tok = Tokenized {
            records,
            kinds,
            lines,
        };
        HbaFile {
            path: path.to_path_buf(),
            text,
            version,
            tok,
            rules,
            errors,
            line_rule,
        }
    }

    /// Whether a rule is written in this file (not in an included one).
    pub fn is_own(&self, r: &Rule) -> bool {
        *r.file == *self.path
    }

    /// The tokenized line of the top file for record `i`, if it is one.
    fn line_of_record(&self, rec: usize) -> Option<(&AuthLine, Option<usize>)> {
        self.tok
            .lines
            .iter()
            .zip(&self.line_rule)
            .find(|(l, _)| l.origin == rec && *l.file == *self.path)
            .map(|(l, r)| (l, *r))
    }

    /// The record index whose first line is `line`, if it holds a rule, an error or a directive.
    pub fn record_at_line(&self, line: usize) -> Option<usize> {
        self.tok
            .records
            .iter()
            .position(|r| r.line == line)
            .filter(|&i| self.tok.kinds[i] != Kind::Empty)
    }

    /// Where a new line goes before record `rec`: above the comment lines directly over it.
    pub fn offset_before(&self, rec: usize) -> usize {
        let mut i = rec;
        while i > 0 && self.is_comment_line(i - 1) {
            i -= 1;
        }
        self.tok.records[i].start
    }

    fn is_comment_line(&self, i: usize) -> bool {
        self.tok.kinds[i] == Kind::Empty
            && self.tok.records[i]
                .text(&self.text)
                .trim_start()
                .starts_with('#')
    }

    /// After the last rule, error line or directive; at the end if there is none.
    pub fn offset_end(&self) -> usize {
        match self.tok.kinds.iter().rposition(|k| *k != Kind::Empty) {
            Some(i) => self.tok.records[i].end,
            None => self.text.len(),
        }
    }

    /// The line break the file uses.
    fn eol(&self) -> &'static str {
        if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        }
    }

    /// The layout of the rule nearest to byte offset `at` (before it if any, else after).
    pub fn layout_near(&self, at: usize) -> Layout {
        let candidates = |before: bool| {
            let recs = &self.tok.records;
            let mut idx: Vec<usize> = (0..recs.len())
                .filter(|&i| {
                    if before {
                        recs[i].end <= at
                    } else {
                        recs[i].start >= at
                    }
                })
                .collect();
            if before {
                idx.reverse();
            }
            idx
        };
        for before in [true, false] {
            for i in candidates(before) {
                if self.tok.records[i].nlines != 1 || self.tok.kinds[i] != Kind::Line {
                    continue;
                }
                if let Some((l, Some(r))) = self.line_of_record(i) {
                    return Layout::of(l, &self.rules[r], self.tok.records[i].text(&self.text));
                }
            }
        }
        Layout::default()
    }

    /// Inserts `line` (no line break) at byte offset `at`; returns the new text and the offset
    /// `line` starts at in it.
    pub fn insert(&self, text: &str, at: usize, line: &str) -> (String, usize) {
        let eol = self.eol();
        let before = &text[..at];
        let mut out = String::with_capacity(text.len() + line.len() + 4);
        out.push_str(before);
        if at > 0 && !before.ends_with('\n') {
            out.push_str(eol);
        }
        // A line ending in a backslash continues onto the next one (hba.c tokenize_auth_file;
        // from 15 also a comment's): an empty line ends it, so the new line stands alone.
        let last = before
            .strip_suffix('\n')
            .map_or(before, |b| b.strip_suffix('\r').unwrap_or(b));
        if last.ends_with('\\') {
            out.push_str(eol);
        }
        let start = out.len();
        out.push_str(line);
        out.push_str(eol);
        out.push_str(&text[at..]);
        (out, start)
    }
}

impl HbaFile {
    /// Reads and parses `path` (absolute, so relative includes resolve as the server resolves
    /// them) with the rules of PostgreSQL `version`; `radiusservers` names are looked up.
    ///
    /// # Errors
    /// The file cannot be read (exit 1) or is not UTF-8 (exit 2).
    pub fn load(path: &Path, version: u32) -> Result<HbaFile> {
        let text = pgdr_core::fsx::read_text(path)?;
        Ok(HbaFile::parse(
            path,
            text,
            version,
            &lex::Disk,
            &crate::addr::resolves,
        ))
    }

    /// The same file with another text (an edit's result), parsed the same way.
    pub fn reparse(&self, text: &str) -> HbaFile {
        HbaFile::parse(
            &self.path,
            text.to_string(),
            self.version,
            &lex::Disk,
            &crate::addr::resolves,
        )
    }

    /// The rules written in this file, in order (not those of included files).
    pub fn own_rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| self.is_own(r))
    }

    /// Byte range of a record, with the comment lines directly above it when they belong to it
    /// alone (nothing but a blank line, a comment or the end of the file follows the record).
    pub fn removal_range(&self, rec: usize) -> (usize, usize) {
        let r = &self.tok.records[rec];
        let standalone = self
            .tok
            .kinds
            .get(rec + 1)
            .is_none_or(|k| *k == Kind::Empty);
        let start = if standalone {
            self.offset_before(rec)
        } else {
            r.start
        };
        (start, r.end)
    }

    /// The layout of a rule's own line (a one-line record), else of its neighbours.
    pub fn own_layout(&self, r: &Rule) -> Layout {
        let rec = &self.tok.records[r.origin];
        if rec.nlines == 1 {
            if let Some(l) = self
                .tok
                .lines
                .iter()
                .find(|l| l.origin == r.origin && *l.file == *self.path)
            {
                return Layout::of(l, r, rec.text(&self.text));
            }
        }
        self.layout_near(rec.start)
    }

    /// The line break that ends the text before byte `end` ("" at a last line without one).
    pub fn line_ending(&self, end: usize) -> &'static str {
        let before = &self.text[..end];
        if before.ends_with("\r\n") {
            "\r\n"
        } else if before.ends_with('\n') {
            "\n"
        } else {
            ""
        }
    }
}

/// How many lines `text` has (a last one without a line break counts).
fn line_count(text: &str) -> usize {
    let breaks = text.as_bytes().iter().filter(|&&b| b == b'\n').count();
    breaks + usize::from(!text.ends_with('\n'))
}

/// The 1-based line number of byte offset `at` in `text`.
pub fn line_number_at(text: &str, at: usize) -> usize {
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::NewRule;
    use crate::lex::Token;

    fn file(text: &str) -> HbaFile {
        HbaFile::parse(
            Path::new("/nonexistent/pg_hba.conf"),
            text.to_string(),
            16,
            &lex::Disk,
            &|_| true,
        )
    }

    #[test]
    fn aligned_like_neighbours() {
        let d = file("# TYPE  DATABASE        USER            ADDRESS                 METHOD\nlocal   all             all                                     trust\nhost    all             all             127.0.0.1/32            trust\n");
        let nr = NewRule {
            conn: "host".into(),
            databases: vec![Token::new("replication", false)],
            users: vec![Token::new("rep", false)],
            address: vec!["10.0.0.0/8".into()],
            method: "scram-sha-256".into(),
            options: vec![],
            comment: Some("standby".into()),
        };
        let l = nr.render(&d.layout_near(d.text.len()));
        assert_eq!(
            l,
            "host    replication     rep             10.0.0.0/8              scram-sha-256  # standby"
        );
        let local = NewRule {
            conn: "local".into(),
            address: vec![],
            method: "peer".into(),
            comment: None,
            ..nr
        };
        assert_eq!(
            local.render(&d.layout_near(0)),
            "local   replication     rep                                     peer"
        );
    }
}
