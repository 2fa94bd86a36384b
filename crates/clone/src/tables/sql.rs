//! The SQL of pg_restore's script, as far as a restore under new names needs it: a lexer
//! for PostgreSQL's tokens (src/backend/parser/scan.l: identifiers, quoted identifiers,
//! standard, E'' and dollar-quoted strings, comments, numbers), a splitter that finds where
//! each statement ends as psql does (src/fe_utils/psqlscan.l: a `;` outside quotes,
//! comments and parentheses, and outside BEGIN ATOMIC bodies), and a rewriter that gives
//! relations and the constraints, indexes, triggers, policies and rules of renamed tables
//! their new names. Pure: text in, text out. (Over 600 lines: the three share one token
//! model, and a third of the file is their tests.)
//!
//! pg_dump qualifies every relation with its schema (`public.child`), names regclass
//! literals in full (`nextval('public.child_id_seq'::regclass)`, `setval('public.s', …)`)
//! and writes the names of per-table objects unqualified right after the keyword that
//! introduces them (`ADD CONSTRAINT name`, `CREATE INDEX name ON`, `CREATE TRIGGER name`,
//! `COMMENT ON TRIGGER name ON`, `CLUSTER ON name`, …): those are the places rewritten.

use std::collections::HashMap;

/// A token's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Whitespace or a comment.
    Space,
    /// An unquoted identifier or keyword.
    Word,
    /// A double-quoted identifier.
    Quoted,
    /// A string constant ('…', E'…', B'…', X'…', N'…', U&'…') or a dollar-quoted one.
    Str,
    /// A number.
    Number,
    /// Any other character (operators, punctuation).
    Punct,
}

/// A token: its kind and byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn ident_cont(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// Where a quote-delimited token that starts at `i` (at the opening quote) ends, or None
/// when the text ends first. `backslash`: E'' strings, where `\` escapes the next byte.
fn quoted_end(b: &[u8], i: usize, q: u8, backslash: bool) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

/// A dollar-quote delimiter at `i` (`$$`, `$tag$`), or None.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < b.len() && b[j] == b'$' {
        return Some(j + 1);
    }
    if j < b.len() && ident_start(b[j]) {
        while j < b.len() && (ident_cont(b[j]) && b[j] != b'$') {
            j += 1;
        }
        if j < b.len() && b[j] == b'$' {
            return Some(j + 1);
        }
    }
    None
}

/// The tokens of `text`. `Ok` with every token when the text ends outside any quote or
/// comment; `Err(tokens so far)` when it ends inside one (the statement goes on).
pub fn lex(text: &str) -> Result<Vec<Token>, Vec<Token>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let tok = |kind, start, end| Token { kind, start, end };
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(tok(Kind::Space, start, i));
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            out.push(tok(Kind::Space, start, i));
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            loop {
                if i + 1 >= b.len() {
                    return Err(out);
                }
                if b[i] == b'/' && b[i + 1] == b'*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b[i + 1] == b'/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(tok(Kind::Space, start, i));
        } else if c == b'\'' {
            match quoted_end(b, i, b'\'', false) {
                Some(e) => i = e,
                None => return Err(out),
            }
            out.push(tok(Kind::Str, start, i));
        } else if c == b'"' {
            match quoted_end(b, i, b'"', false) {
                Some(e) => i = e,
                None => return Err(out),
            }
            out.push(tok(Kind::Quoted, start, i));
        } else if c == b'$' && dollar_tag(b, i).is_some() {
            let tag_end = dollar_tag(b, i).expect("checked");
            let tag = &b[i..tag_end];
            let body = &b[tag_end..];
            match body.windows(tag.len()).position(|w| w == tag) {
                Some(p) => i = tag_end + p + tag.len(),
                None => return Err(out),
            }
            out.push(tok(Kind::Str, start, i));
        } else if ident_start(c) {
            while i < b.len() && ident_cont(b[i]) {
                i += 1;
            }
            let word = &b[start..i];
            let next = b.get(i).copied();
            // A string constant with a prefix: E'…' (backslash escapes), B'…', X'…', N'…',
            // U&'…' (scan.l's xe, xb, xh, xn, xus).
            let prefix = word.len() == 1 && matches!(word[0] | 0x20, b'e' | b'b' | b'x' | b'n');
            if prefix && next == Some(b'\'') {
                let backslash = word[0] | 0x20 == b'e';
                match quoted_end(b, i, b'\'', backslash) {
                    Some(e) => i = e,
                    None => return Err(out),
                }
                out.push(tok(Kind::Str, start, i));
            } else if word.len() == 1 && word[0] | 0x20 == b'u' && next == Some(b'&') {
                let q = b.get(i + 1).copied();
                if let Some(q @ (b'\'' | b'"')) = q {
                    match quoted_end(b, i + 1, q, false) {
                        Some(e) => i = e,
                        None => return Err(out),
                    }
                    let kind = if q == b'"' { Kind::Quoted } else { Kind::Str };
                    out.push(tok(kind, start, i));
                } else {
                    out.push(tok(Kind::Word, start, i));
                }
            } else {
                out.push(tok(Kind::Word, start, i));
            }
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            out.push(tok(Kind::Number, start, i));
        } else {
            // One character (a multi-byte character is a Word above).
            i += 1;
            out.push(tok(Kind::Punct, start, i));
        }
    }
    Ok(out)
}

/// The name an identifier token stands for: unquoted ones folded to lower case (as
/// PostgreSQL does for ASCII letters), quoted ones unescaped.
pub fn ident_value(text: &str, t: &Token) -> Option<String> {
    let s = &text[t.start..t.end];
    match t.kind {
        Kind::Word => Some(s.to_ascii_lowercase()),
        Kind::Quoted if s.starts_with('"') => Some(s[1..s.len() - 1].replace("\"\"", "\"")),
        _ => None,
    }
}

/// `name` as an identifier in SQL: always double-quoted, so any name is safe.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `s` as a standard string constant.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The content of a string constant token (standard or E''; None for others).
fn string_value(text: &str, t: &Token) -> Option<String> {
    let s = &text[t.start..t.end];
    if let Some(inner) = s.strip_prefix('\'') {
        return Some(inner[..inner.len() - 1].replace("''", "'"));
    }
    let inner = s.strip_prefix("E'").or_else(|| s.strip_prefix("e'"))?;
    let inner = &inner[..inner.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            },
            '\'' => {
                chars.next();
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// Splits a qualified name written in SQL (`public."T"`, `s.t`) into its parts, or None.
pub fn parse_qualified(s: &str) -> Option<Vec<String>> {
    let toks = lex(s).ok()?;
    let mut parts = Vec::new();
    let mut want_ident = true;
    for t in toks.iter() {
        if want_ident {
            parts.push(ident_value(s, t)?);
            want_ident = false;
        } else if t.kind == Kind::Punct && &s[t.start..t.end] == "." {
            want_ident = true;
        } else {
            return None;
        }
    }
    (!want_ident && !parts.is_empty()).then_some(parts)
}

/// The significant tokens (no whitespace or comments) of a statement.
pub fn significant(text: &str) -> Vec<Token> {
    let toks = match lex(text) {
        Ok(t) | Err(t) => t,
    };
    toks.into_iter().filter(|t| t.kind != Kind::Space).collect()
}

/// A qualified name found in a statement: (schema, name) and the token of the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QName {
    pub schema: String,
    pub name: String,
    /// Index (in the significant tokens) of the name's token.
    pub at: usize,
}

/// Every `schema.name` in a statement (a third part, a column, is ignored), in order.
pub fn qualified_names(text: &str, toks: &[Token]) -> Vec<QName> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < toks.len() {
        let dot = &toks[i + 1];
        let is_dot = dot.kind == Kind::Punct && &text[dot.start..dot.end] == ".";
        match (
            ident_value(text, &toks[i]),
            is_dot,
            ident_value(text, &toks[i + 2]),
        ) {
            (Some(schema), true, Some(name)) => {
                // Not the tail of a longer name (a.b.c: only a.b counts).
                let after_dot = i > 0 && {
                    let p = &toks[i - 1];
                    p.kind == Kind::Punct && &text[p.start..p.end] == "."
                };
                if !after_dot {
                    out.push(QName {
                        schema,
                        name,
                        at: i + 2,
                    });
                    i += 3;
                    continue;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn word_is(text: &str, t: Option<&Token>, w: &str) -> bool {
    t.is_some_and(|t| t.kind == Kind::Word && text[t.start..t.end].eq_ignore_ascii_case(w))
}

fn punct_is(text: &str, t: Option<&Token>, p: &str) -> bool {
    t.is_some_and(|t| t.kind == Kind::Punct && &text[t.start..t.end] == p)
}

/// The unqualified names a statement gives per-table objects, with the index of each name's
/// token: after `CONSTRAINT`, `INDEX` (in CREATE [UNIQUE] INDEX), `TRIGGER`, `POLICY`,
/// `RULE`, `CLUSTER ON` and `USING INDEX`.
pub fn object_names(text: &str, toks: &[Token]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for i in 0..toks.len() {
        let t = &toks[i];
        if t.kind != Kind::Word {
            continue;
        }
        let w = text[t.start..t.end].to_ascii_lowercase();
        let mut at = match w.as_str() {
            "constraint" | "trigger" | "policy" | "rule" => i + 1,
            "index" => {
                let prev_ok = i > 0
                    && (word_is(text, toks.get(i - 1), "create")
                        || word_is(text, toks.get(i - 1), "unique")
                        || word_is(text, toks.get(i - 1), "using"));
                if !prev_ok {
                    continue;
                }
                i + 1
            }
            "on" if i > 0 && word_is(text, toks.get(i - 1), "cluster") => i + 1,
            _ => continue,
        };
        // CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] name
        while word_is(text, toks.get(at), "concurrently")
            || word_is(text, toks.get(at), "if")
            || word_is(text, toks.get(at), "not")
            || word_is(text, toks.get(at), "exists")
        {
            at += 1;
        }
        let Some(nt) = toks.get(at) else { continue };
        if punct_is(text, toks.get(at + 1), ".") {
            continue; // qualified: a relation, not an object name
        }
        if let Some(v) = ident_value(text, nt) {
            out.push((v, at));
        }
    }
    out
}

/// What to rename: relations (and extended statistics) by (schema, name), and the objects of
/// each renamed table by its (schema, name) and their own name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renames {
    pub relations: HashMap<(String, String), String>,
    pub objects: HashMap<(String, String), HashMap<String, String>>,
}

impl Renames {
    pub fn is_empty(&self) -> bool {
        self.relations.is_empty() && self.objects.is_empty()
    }

    /// `stmt` with the new names. Relations are replaced wherever they appear qualified or as
    /// a regclass string; object names only in a statement whose first qualified relation is
    /// a renamed table, and only where the statement names such an object.
    pub fn apply(&self, stmt: &str) -> String {
        if self.is_empty() {
            return stmt.to_string();
        }
        let toks = significant(stmt);
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        let qnames = qualified_names(stmt, &toks);
        for q in &qnames {
            if let Some(new) = self.relations.get(&(q.schema.clone(), q.name.clone())) {
                let t = &toks[q.at];
                edits.push((t.start, t.end, quote_ident(new)));
            }
        }
        for (i, t) in toks.iter().enumerate() {
            if t.kind != Kind::Str || !self.is_regclass_literal(stmt, &toks, i) {
                continue;
            }
            let Some(v) = string_value(stmt, t) else {
                continue;
            };
            let Some(parts) = parse_qualified(&v) else {
                continue;
            };
            if let [schema, name] = parts.as_slice() {
                if let Some(new) = self.relations.get(&(schema.clone(), name.clone())) {
                    edits.push((
                        t.start,
                        t.end,
                        quote_literal(&format!("{}.{}", quote_ident(schema), quote_ident(new))),
                    ));
                }
            }
        }
        let subject = qnames.iter().find(|q| {
            self.objects
                .contains_key(&(q.schema.clone(), q.name.clone()))
        });
        if let Some(q) = subject {
            let names = &self.objects[&(q.schema.clone(), q.name.clone())];
            for (name, at) in object_names(stmt, &toks) {
                if let Some(new) = names.get(&name) {
                    let t = &toks[at];
                    if !edits.iter().any(|e| e.0 == t.start) {
                        edits.push((t.start, t.end, quote_ident(new)));
                    }
                }
            }
        }
        edits.sort_by_key(|e| e.0);
        let mut out = String::with_capacity(stmt.len() + 64);
        let mut pos = 0;
        for (s, e, new) in edits {
            out.push_str(&stmt[pos..s]);
            out.push_str(&new);
            pos = e;
        }
        out.push_str(&stmt[pos..]);
        out
    }

    /// A string constant that names a relation: followed by `::regclass` (also
    /// `::pg_catalog.regclass`), or the first argument of nextval, currval or setval.
    fn is_regclass_literal(&self, text: &str, toks: &[Token], i: usize) -> bool {
        let cast = punct_is(text, toks.get(i + 1), ":")
            && punct_is(text, toks.get(i + 2), ":")
            && (word_is(text, toks.get(i + 3), "regclass")
                || (word_is(text, toks.get(i + 3), "pg_catalog")
                    && word_is(text, toks.get(i + 5), "regclass")));
        let arg = i >= 2
            && punct_is(text, toks.get(i - 1), "(")
            && ["nextval", "currval", "setval"]
                .iter()
                .any(|f| word_is(text, toks.get(i - 2), f));
        cast || arg
    }
}

/// Finds where statements end in a stream of lines, as psql does.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: String,
}

/// What the splitter found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A complete statement (with its `;`).
    Statement(String),
    /// A psql meta-command line (`\restrict KEY`, `\unrestrict KEY`): not SQL.
    Meta(String),
}

impl Splitter {
    /// Whether nothing but whitespace and comments is pending.
    pub fn is_idle(&self) -> bool {
        significant(&self.buf).is_empty()
    }

    /// The pending text's comments (pg_restore's `-- Name: …; Type: …` headers), for
    /// messages; consumes nothing.
    pub fn pending(&self) -> &str {
        &self.buf
    }

    /// Adds a line (with its newline); returns the statements it completes.
    pub fn push(&mut self, line: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        if self.is_idle() && line.starts_with('\\') {
            self.buf.clear();
            out.push(Piece::Meta(line.trim_end().to_string()));
            return out;
        }
        self.buf.push_str(line);
        while let Some(end) = statement_end(&self.buf) {
            let rest = self.buf.split_off(end);
            let stmt = std::mem::replace(&mut self.buf, rest);
            out.push(Piece::Statement(stmt));
        }
        out
    }

    /// What is left at the end of the input: only whitespace and comments, or an unfinished
    /// statement.
    pub fn finish(self) -> Option<String> {
        (!self.is_idle()).then_some(self.buf)
    }
}

/// The end (after its `;`) of the first complete statement in `text`, if any: a `;` outside
/// parentheses and outside a BEGIN ATOMIC … END body (psqlscan.l's paren_depth and
/// begin_depth).
pub fn statement_end(text: &str) -> Option<usize> {
    let toks = match lex(text) {
        Ok(t) | Err(t) => t,
    };
    let mut paren = 0i32;
    let mut begin = 0i32;
    let mut words: Vec<String> = Vec::new();
    for t in &toks {
        match t.kind {
            Kind::Punct => match &text[t.start..t.end] {
                "(" => paren += 1,
                ")" => paren = (paren - 1).max(0),
                ";" if paren == 0 && begin == 0 => return Some(t.end),
                _ => {}
            },
            Kind::Word => {
                let w = text[t.start..t.end].to_ascii_lowercase();
                // psqlscan.l: BEGIN counts only in CREATE [OR REPLACE] FUNCTION/PROCEDURE
                // (SQL-standard bodies); then CASE opens and END closes a level.
                let routine = words.first().is_some_and(|f| f == "create")
                    && words
                        .iter()
                        .take(4)
                        .any(|w| w == "function" || w == "procedure");
                if routine {
                    match w.as_str() {
                        "begin" => begin += 1,
                        "case" if begin > 0 => begin += 1,
                        "end" if begin > 0 => begin -= 1,
                        _ => {}
                    }
                }
                words.push(w);
            }
            _ => {}
        }
    }
    None
}

/// Whether a statement is `COPY … FROM stdin`: its data follows, up to a line `\.`.
pub fn is_copy_from_stdin(stmt: &str) -> bool {
    let toks = significant(stmt);
    word_is(stmt, toks.first(), "copy")
        && toks
            .windows(2)
            .any(|w| word_is(stmt, Some(&w[0]), "from") && word_is(stmt, Some(&w[1]), "stdin"))
}

/// Whether a statement is a plain `SET name = value` (session settings of the script).
pub fn is_set(stmt: &str) -> bool {
    let toks = significant(stmt);
    word_is(stmt, toks.first(), "set")
        && !word_is(stmt, toks.get(1), "session")
        && !word_is(stmt, toks.get(1), "role")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renames() -> Renames {
        let mut r = Renames::default();
        for (old, new) in [
            ("child", "child_pgdr_1"),
            ("child_id_seq", "child_id_seq_pgdr_1"),
            ("child_pkey", "child_pkey_pgdr_1"),
            ("child_parent_idx", "child_parent_idx_pgdr_1"),
        ] {
            r.relations
                .insert(("public".into(), old.into()), new.into());
        }
        let mut o = HashMap::new();
        for (old, new) in [
            ("child_pkey", "child_pkey_pgdr_1"),
            ("child_parent_idx", "child_parent_idx_pgdr_1"),
            ("positive", "positive_pgdr_1"),
            ("child_trg", "child_trg_pgdr_1"),
            ("child_parent_id_fkey", "child_parent_id_fkey_pgdr_1"),
        ] {
            o.insert(old.to_string(), new.to_string());
        }
        r.objects.insert(("public".into(), "child".into()), o);
        r
    }

    #[test]
    fn pg_dump_statements_get_new_names() {
        let r = renames();
        let cases = [
            (
                "CREATE TABLE public.child (\n    id bigint NOT NULL,\n    CONSTRAINT positive CHECK ((id > 0))\n);",
                "CREATE TABLE public.\"child_pgdr_1\" (\n    id bigint NOT NULL,\n    CONSTRAINT \"positive_pgdr_1\" CHECK ((id > 0))\n);",
            ),
            (
                "ALTER TABLE ONLY public.child ALTER COLUMN id SET DEFAULT nextval('public.child_id_seq'::regclass);",
                "ALTER TABLE ONLY public.\"child_pgdr_1\" ALTER COLUMN id SET DEFAULT nextval('\"public\".\"child_id_seq_pgdr_1\"'::regclass);",
            ),
            (
                "SELECT pg_catalog.setval('public.child_id_seq', 100, true);",
                "SELECT pg_catalog.setval('\"public\".\"child_id_seq_pgdr_1\"', 100, true);",
            ),
            (
                "ALTER SEQUENCE public.child_id_seq OWNED BY public.child.id;",
                "ALTER SEQUENCE public.\"child_id_seq_pgdr_1\" OWNED BY public.\"child_pgdr_1\".id;",
            ),
            (
                "ALTER TABLE ONLY public.child\n    ADD CONSTRAINT child_pkey PRIMARY KEY (id);",
                "ALTER TABLE ONLY public.\"child_pgdr_1\"\n    ADD CONSTRAINT \"child_pkey_pgdr_1\" PRIMARY KEY (id);",
            ),
            (
                "CREATE INDEX child_parent_idx ON public.child USING btree (parent_id);",
                "CREATE INDEX \"child_parent_idx_pgdr_1\" ON public.\"child_pgdr_1\" USING btree (parent_id);",
            ),
            (
                "CREATE TRIGGER child_trg BEFORE INSERT ON public.child FOR EACH ROW EXECUTE FUNCTION public.trg_f();",
                "CREATE TRIGGER \"child_trg_pgdr_1\" BEFORE INSERT ON public.\"child_pgdr_1\" FOR EACH ROW EXECUTE FUNCTION public.trg_f();",
            ),
            (
                "COMMENT ON CONSTRAINT positive ON public.child IS 'pos; public.child';",
                "COMMENT ON CONSTRAINT \"positive_pgdr_1\" ON public.\"child_pgdr_1\" IS 'pos; public.child';",
            ),
            (
                "ALTER TABLE ONLY public.child\n    ADD CONSTRAINT child_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.parent(id);",
                "ALTER TABLE ONLY public.\"child_pgdr_1\"\n    ADD CONSTRAINT \"child_parent_id_fkey_pgdr_1\" FOREIGN KEY (parent_id) REFERENCES public.parent(id);",
            ),
            (
                "COPY public.child (id, parent_id, payload) FROM stdin;",
                "COPY public.\"child_pgdr_1\" (id, parent_id, payload) FROM stdin;",
            ),
            (
                "ALTER TABLE public.child CLUSTER ON child_parent_idx;",
                "ALTER TABLE public.\"child_pgdr_1\" CLUSTER ON \"child_parent_idx_pgdr_1\";",
            ),
        ];
        for (from, to) in cases {
            assert_eq!(r.apply(from), to, "{from}");
        }
        // Another table's statement keeps its own names, also a constraint called like one of
        // the renamed table's; a column named like a constraint is no constraint.
        let other = "CREATE TABLE public.other (\n    positive int,\n    CONSTRAINT positive CHECK ((positive > 0))\n);";
        assert_eq!(r.apply(other), other);
        let s = "ALTER TABLE ONLY public.child ADD CONSTRAINT positive CHECK ((positive > 0));";
        assert!(r.apply(s).ends_with("CHECK ((positive > 0));"));
    }

    #[test]
    fn strings_comments_and_dollar_quotes_are_no_statement_ends() {
        let f = "CREATE FUNCTION public.f() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$ begin\n  null; -- x;\n return new; end $$;\n";
        assert_eq!(statement_end(f), Some(f.len() - 1));
        let q = "SELECT 'a;b' /* ; */, \"x;\" ;";
        assert_eq!(statement_end(q), Some(q.len()));
        assert_eq!(statement_end("SELECT E'\\';' ;"), Some(15));
        assert_eq!(statement_end("SELECT $t$ ; $t$"), None);
        assert_eq!(statement_end("SELECT (1;"), None);
        let atomic = "CREATE FUNCTION public.g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\n SELECT CASE WHEN true THEN 1 END;\nEND;";
        assert_eq!(statement_end(atomic), Some(atomic.len()));
        let mut sp = Splitter::default();
        assert_eq!(
            sp.push("\\restrict abc\n"),
            [Piece::Meta("\\restrict abc".into())]
        );
        assert!(sp.push("--\n-- Name: t; Type: TABLE\n--\n").is_empty());
        assert!(sp.is_idle());
        assert!(sp.push("CREATE TABLE public.t (\n").is_empty());
        let p = sp.push("    a int\n); SET x = 1;\n");
        assert_eq!(p.len(), 2);
        assert!(matches!(&p[1], Piece::Statement(s) if s.trim() == "SET x = 1;"));
        assert!(sp.finish().is_none());
        assert!(is_copy_from_stdin("\nCOPY public.t (a) FROM stdin;"));
        assert!(!is_copy_from_stdin("COPY public.t (a) TO stdout;"));
        assert!(is_set("SET transaction_timeout = 0;"));
        assert!(!is_set("SET SESSION AUTHORIZATION 'x';"));
    }

    #[test]
    fn names_are_read_as_postgres_reads_them() {
        assert_eq!(
            parse_qualified("public.\"Job Info\""),
            Some(vec!["public".into(), "Job Info".into()])
        );
        assert_eq!(
            parse_qualified("Public.T"),
            Some(vec!["public".into(), "t".into()])
        );
        assert_eq!(parse_qualified("a b"), None);
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        let s = "ALTER INDEX public.m_pkey ATTACH PARTITION public.m_2024_pkey;";
        let t = significant(s);
        let q = qualified_names(s, &t);
        assert_eq!(q.len(), 2);
        assert_eq!(
            (q[1].schema.as_str(), q[1].name.as_str()),
            ("public", "m_2024_pkey")
        );
        let s = "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"I x\" ON ONLY public.m USING btree (v);";
        let t = significant(s);
        assert_eq!(object_names(s, &t)[0].0, "I x");
    }
}
