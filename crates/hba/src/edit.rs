//! The file as a document: parsed once, edited by byte ranges so every untouched line keeps
//! its bytes, new lines written in the columns of their neighbours.

use crate::lex::{self, AuthLine, Kind, Source, Token, Tokenized};
use crate::parse_line::{self, Address, Build, ConnType, LineError, Rule, DB_KEYWORDS};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A parsed pg_hba.conf and everything it includes.
pub struct Doc {
    pub path: PathBuf,
    pub text: String,
    pub version: u32,
    pub tok: Tokenized,
    pub rules: Vec<Rule>,
    pub errors: Vec<LineError>,
    /// For each tokenized line, its rule index (None for an error line).
    pub line_rule: Vec<Option<usize>>,
}

impl Doc {
    pub fn parse(
        path: &Path,
        text: String,
        version: u32,
        src: &dyn Source,
        resolve: parse_line::Resolver,
    ) -> Doc {
        let mut tok = lex::tokenize(path, &text, version, src);
        let mut rules = Vec::with_capacity(tok.lines.len());
        let mut errors = Vec::new();
        let mut line_rule = Vec::with_capacity(tok.lines.len());
        for l in &mut tok.lines {
            match parse_line::parse_line_taking(l, version, Build::default(), resolve) {
                Ok(r) => {
                    line_rule.push(Some(rules.len()));
                    rules.push(r);
                }
                Err(e) => {
                    line_rule.push(None);
                    errors.push(e);
                }
            }
        }
        Doc {
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
        self.tok.kinds[i] == Kind::Empty && self.tok.records[i].text.trim_start().starts_with('#')
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
                    return Layout::of(l, &self.rules[r], &self.tok.records[i].text);
                }
            }
        }
        Layout::default()
    }

    /// Inserts `line` (no line break) at byte offset `at`.
    pub fn insert(&self, text: &str, at: usize, line: &str) -> String {
        let eol = self.eol();
        let mut out = String::with_capacity(text.len() + line.len() + 2);
        out.push_str(&text[..at]);
        if at > 0 && !text[..at].ends_with('\n') {
            out.push_str(eol);
        }
        out.push_str(line);
        out.push_str(eol);
        out.push_str(&text[at..]);
        out
    }
}

/// Columns of a neighbouring line: type, database, user, address, method (visual columns).
#[derive(Debug, Clone)]
pub struct Layout {
    pub cols: [Option<usize>; 5],
    pub tabs: bool,
}

impl Default for Layout {
    /// initdb's sample file.
    fn default() -> Self {
        Layout {
            cols: [Some(0), Some(8), Some(24), Some(40), Some(64)],
            tabs: false,
        }
    }
}

fn visual(s: &str, byte: usize) -> usize {
    let mut col = 0;
    for c in s[..byte.min(s.len())].chars() {
        col = if c == '\t' {
            (col / 8 + 1) * 8
        } else {
            col + 1
        };
    }
    col
}

impl Layout {
    pub fn of(l: &AuthLine, r: &Rule, raw: &str) -> Layout {
        let v: Vec<usize> = l.field_cols.iter().map(|&b| visual(raw, b)).collect();
        let mut cols = [None; 5];
        for (i, c) in cols.iter_mut().enumerate().take(3) {
            *c = v.get(i).copied();
        }
        let method_field = if r.conn == ConnType::Local {
            3
        } else {
            cols[3] = v.get(3).copied();
            let mask_column = matches!(r.address, Some(Address::Ip { .. }))
                && l.fields.get(3).is_some_and(|f| !f[0].s.contains('/'));
            if mask_column {
                5
            } else {
                4
            }
        };
        cols[4] = v.get(method_field).copied();
        let tabs = raw.contains('\t');
        Layout { cols, tabs }
    }

    /// Joins columns: each starts at its neighbour's column when there is room.
    pub fn render(&self, parts: &[(Option<usize>, String)]) -> String {
        let mut out = String::new();
        for (i, (slot, text)) in parts.iter().enumerate() {
            if i > 0 {
                let want = slot.and_then(|s| self.cols[s]);
                let cur = visual(&out, out.len());
                match want {
                    Some(w) if w > cur => {
                        if self.tabs {
                            let mut c = cur;
                            while c < w {
                                out.push('\t');
                                c = (c / 8 + 1) * 8;
                            }
                        } else {
                            out.push_str(&" ".repeat(w - cur));
                        }
                    }
                    _ => out.push(if self.tabs { '\t' } else { ' ' }),
                }
            }
            out.push_str(text);
        }
        out
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.ends_with('\\')
        || s.bytes()
            .any(|b| lex::is_blank(b) || b == b',' || b == b'#' || b == b'"')
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A quoted token whose quotes change its meaning (a keyword, `+role`, `@file`).
fn quote_matters(t: &Token) -> bool {
    DB_KEYWORDS.contains(&t.s.as_str())
        || matches!(t.s.as_str(), "samehost" | "samenet")
        || t.s.starts_with('+')
        || (t.s.starts_with('@') && t.s.len() > 1)
}

/// A token as it must be written so the server reads it back the same.
pub fn render_token(t: &Token) -> String {
    if t.quoted {
        if quote_matters(t) || needs_quotes(&t.s) {
            return quote(&t.s);
        }
        return t.s.clone();
    }
    for prefix in ['+', '@'] {
        if let Some(rest) = t.s.strip_prefix(prefix) {
            if needs_quotes(rest) && !rest.is_empty() {
                return format!("{prefix}{}", quote(rest));
            }
        }
    }
    if needs_quotes(&t.s) {
        quote(&t.s)
    } else {
        t.s.clone()
    }
}

/// A token in JSON: its name, with quotes only where quoting changes the meaning.
pub fn token_json(t: &Token) -> String {
    if t.quoted && quote_matters(t) {
        quote(&t.s)
    } else {
        t.s.clone()
    }
}

/// The reverse of [`token_json`].
pub fn token_from_json(s: &str) -> Token {
    if s.starts_with('"') {
        if let Some(t) = lex::tokens_of(s).into_iter().next() {
            return t;
        }
    }
    Token::new(s, false)
}

/// A rule as `list` prints it, serialized straight from the parsed rule (no `Value` tree: a
/// 100,000-line file must list fast).
pub struct RuleOut<'a>(pub &'a Rule);

struct Toks<'a>(&'a [Token]);

impl serde::Serialize for Toks<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for t in self.0 {
            if t.quoted && quote_matters(t) {
                seq.serialize_element(&quote(&t.s))?;
            } else {
                seq.serialize_element(&t.s)?;
            }
        }
        seq.end()
    }
}

struct Opts<'a>(&'a [(String, String)]);

impl serde::Serialize for Opts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // A repeated option keeps its first place and its last value, as the server keeps
        // the last assignment.
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(self.0.len());
        for (k, v) in self.0 {
            match pairs.iter_mut().find(|(k2, _)| k2 == k) {
                Some(p) => p.1 = v,
                None => pairs.push((k, v)),
            }
        }
        let mut m = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in pairs {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl serde::Serialize for RuleOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.0;
        let (address, netmask) = match &r.address {
            Some(a) => {
                let (x, m) = a.view();
                (Some(x), m)
            }
            None => (None, None),
        };
        let mut m = s.serialize_map(Some(10))?;
        m.serialize_entry("file", &r.file.to_string_lossy())?;
        m.serialize_entry("line", &r.line)?;
        m.serialize_entry("type", r.conn.name())?;
        m.serialize_entry("database", &Toks(&r.databases))?;
        m.serialize_entry("user", &Toks(&r.users))?;
        m.serialize_entry("address", &address)?;
        m.serialize_entry("netmask", &netmask)?;
        m.serialize_entry("method", &r.method)?;
        m.serialize_entry("options", &Opts(&r.options))?;
        m.serialize_entry("comment", &r.comment)?;
        m.end()
    }
}

/// A rule as `list` prints it, as a JSON value (for small documents).
pub fn rule_json(r: &Rule) -> Value {
    serde_json::to_value(RuleOut(r)).unwrap_or(Value::Null)
}

/// A rule to write: columns as text, before validation by the parser.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub conn: String,
    pub databases: Vec<Token>,
    pub users: Vec<Token>,
    /// Zero (local), one (CIDR, name, keyword) or two (address and netmask) columns.
    pub address: Vec<String>,
    pub method: String,
    pub options: Vec<(String, String)>,
    pub comment: Option<String>,
}

impl NewRule {
    /// The line in the given layout.
    pub fn render(&self, layout: &Layout) -> String {
        let list = |toks: &[Token]| toks.iter().map(render_token).collect::<Vec<_>>().join(",");
        let mut parts: Vec<(Option<usize>, String)> = vec![
            (Some(0), self.conn.clone()),
            (Some(1), list(&self.databases)),
            (Some(2), list(&self.users)),
        ];
        for (i, a) in self.address.iter().enumerate() {
            parts.push((if i == 0 { Some(3) } else { None }, a.clone()));
        }
        parts.push((Some(4), self.method.clone()));
        for (k, v) in &self.options {
            let v = if needs_quotes(v) { quote(v) } else { v.clone() };
            parts.push((None, format!("{k}={v}")));
        }
        let mut line = layout.render(&parts);
        if let Some(c) = &self.comment {
            line.push_str("  # ");
            line.push_str(c);
        }
        line
    }

    /// Checks the rule exactly as the server would read its line.
    pub fn validate(&self, version: u32, path: &Path) -> Result<Rule, String> {
        for t in self.databases.iter().chain(&self.users) {
            if t.s.contains(['\n', '\r', '\0']) {
                return Err(format!(
                    "invalid name {:?}: line breaks are not allowed",
                    t.s
                ));
            }
        }
        for (k, v) in &self.options {
            if k.is_empty() || needs_quotes(k) || k.contains('=') || v.contains(['\n', '\r', '\0'])
            {
                return Err(format!("invalid option {k:?}"));
            }
        }
        if let Some(c) = &self.comment {
            if c.contains(['\n', '\r', '\0']) || c.ends_with('\\') {
                return Err("a comment must be one line and not end with a backslash".into());
            }
        }
        if self.databases.is_empty() || self.users.is_empty() {
            return Err("a rule needs at least one database and one user".into());
        }
        let line = self.render(&Layout {
            cols: [None; 5],
            tabs: false,
        });
        let t = lex::tokenize(path, &line, version, &lex::Disk);
        let Some(l) = t.lines.first() else {
            return Err("empty rule".into());
        };
        if t.lines.len() != 1 || t.records.len() != 1 {
            return Err("the rule does not fit on one line".into());
        }
        parse_line::parse_line(l, version, Build::default(), &crate::addr::resolves)
            .map_err(|e| e.message)
    }
}

/// Address column text from a user's `--address` or a JSON address/netmask pair.
pub fn address_columns(address: &str, netmask: Option<&str>) -> Result<Vec<String>, String> {
    let a = address.trim();
    if let Some(m) = netmask {
        let mask = match crate::addr::numeric_host(m) {
            crate::addr::Numeric::Ip(ip) => ip,
            _ => return Err(format!("invalid netmask \"{m}\"")),
        };
        return Ok(match crate::addr::prefix_len(&mask) {
            Some(p) => vec![format!("{a}/{p}")],
            None => vec![a.to_string(), m.to_string()],
        });
    }
    // "ADDR MASK" in one argument.
    let parts: Vec<&str> = a.split_whitespace().collect();
    if parts.len() == 2 && !a.starts_with('"') {
        return address_columns(parts[0], Some(parts[1]));
    }
    if !a.starts_with('"') && !a.contains('/') {
        if let crate::addr::Numeric::Ip(ip) = crate::addr::numeric_host(a) {
            // A single host: the server needs a mask, so say /32 or /128.
            return Ok(vec![format!("{a}/{}", crate::addr::bits(&ip).1)]);
        }
    }
    Ok(vec![a.to_string()])
}

/// Reads `{"rules": [...]}` entries (list's shape) into rules to write.
pub fn rule_from_json(v: &Value) -> Result<NewRule, String> {
    let o = v.as_object().ok_or("each rule must be a JSON object")?;
    let text = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{k}\" must be a string")),
        }
    };
    let list = |k: &str| -> Result<Vec<Token>, String> {
        match o.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(token_from_json)
                        .ok_or_else(|| format!("\"{k}\" must hold strings"))
                })
                .collect(),
            Some(Value::String(s)) => Ok(lex::tokens_of(s)),
            _ => Err(format!("\"{k}\" is missing (a list of names)")),
        }
    };
    let conn = text("type")?.ok_or("\"type\" is missing")?;
    let method = text("method")?.ok_or("\"method\" is missing")?;
    let address = match text("address")? {
        Some(a) => address_columns(&a, text("netmask")?.as_deref())?,
        None => vec![],
    };
    let mut options = Vec::new();
    match o.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("option \"{k}\" must be a string"))?;
                options.push((k.clone(), v.to_string()));
            }
        }
        Some(Value::Array(a)) => {
            for x in a {
                let s = x.as_str().ok_or("options must be strings \"name=value\"")?;
                let (k, v) = s.split_once('=').ok_or("options must be \"name=value\"")?;
                options.push((k.to_string(), v.to_string()));
            }
        }
        Some(_) => return Err("\"options\" must be an object".into()),
    }
    Ok(NewRule {
        conn,
        databases: list("database")?,
        users: list("user")?,
        address,
        method,
        options,
        comment: text("comment")?.filter(|c| !c.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Doc {
        Doc::parse(
            Path::new("/nonexistent/pg_hba.conf"),
            text.to_string(),
            16,
            &lex::Disk,
            &|_| true,
        )
    }

    #[test]
    fn tokens_round_trip() {
        for (s, q) in [
            ("all", true),
            ("all", false),
            ("my db", false),
            ("+admins", true),
            ("+my role", false),
            ("a\"b", false),
            ("x,y", true),
            ("", true),
        ] {
            let t = Token::new(s, q);
            let text = render_token(&t);
            let back = lex::tokens_of(&text);
            assert_eq!(back.len(), 1, "{text}");
            assert_eq!(back[0].s, s, "{text}");
            if quote_matters(&t) || s == "all" {
                assert_eq!(back[0].quoted, q, "{text}");
            }
            let j = token_from_json(&token_json(&t));
            assert_eq!(j.s, s);
        }
    }

    #[test]
    fn aligned_like_neighbours() {
        let d = doc("# TYPE  DATABASE        USER            ADDRESS                 METHOD\nlocal   all             all                                     trust\nhost    all             all             127.0.0.1/32            trust\n");
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

    #[test]
    fn validation_uses_the_parser() {
        let nr = NewRule {
            conn: "host".into(),
            databases: vec![Token::new("all", false)],
            users: vec![Token::new("all", false)],
            address: address_columns("10.0.0.1", None).unwrap(),
            method: "peer".into(),
            options: vec![],
            comment: None,
        };
        assert_eq!(nr.address, ["10.0.0.1/32"]);
        assert_eq!(
            nr.validate(16, Path::new("/x")).unwrap_err(),
            "peer authentication is only supported on local sockets"
        );
        assert_eq!(
            address_columns("10.0.0.0", Some("255.0.255.0")).unwrap(),
            ["10.0.0.0", "255.0.255.0"]
        );
        assert_eq!(
            address_columns("10.0.0.0 255.0.0.0", None).unwrap(),
            ["10.0.0.0/8"]
        );
    }
}
