//! The lexer of PostgreSQL's `guc-file.l`, byte for byte: the same token classes, the same
//! longest-match-then-earliest-rule choice, and `DeescapeQuotedString` for quoted values.
//! A logical line is a physical line (strings cannot hold a newline), so lexing works per line.

/// Token classes, in the order of the flex rules (the order breaks ties of equal length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Id,
    QualifiedId,
    String,
    UnquotedString,
    Integer,
    Real,
    Equals,
    /// Any other single byte (`.` rule): a syntax error wherever it appears.
    Error,
}

/// A token with its byte range in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// `LETTER`: `[A-Za-z_\200-\377]`.
pub fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// `LETTER_OR_DIGIT`.
pub fn is_letter_or_digit(b: u8) -> bool {
    is_letter(b) || b.is_ascii_digit()
}

fn id_len(s: &[u8]) -> usize {
    if s.first().is_some_and(|&b| is_letter(b)) {
        1 + s[1..]
            .iter()
            .take_while(|&&b| is_letter_or_digit(b))
            .count()
    } else {
        0
    }
}

fn qualified_id_len(s: &[u8]) -> usize {
    let a = id_len(s);
    if a == 0 || s.get(a) != Some(&b'.') {
        return 0;
    }
    let b = id_len(&s[a + 1..]);
    if b == 0 {
        0
    } else {
        a + 1 + b
    }
}

fn unquoted_len(s: &[u8]) -> usize {
    if s.first().is_some_and(|&b| is_letter(b)) {
        1 + s[1..]
            .iter()
            .take_while(|&&b| {
                is_letter_or_digit(b) || matches!(b, b'-' | b'.' | b'_' | b':' | b'/')
            })
            .count()
    } else {
        0
    }
}

/// `\'([^'\\\n]|\\.|\'\')*\'`: the longest match. A doubled quote may either continue the
/// string or close it, so remember the last place a quote could close it.
fn string_len(s: &[u8]) -> usize {
    if s.first() != Some(&b'\'') {
        return 0;
    }
    let mut i = 1;
    let mut last_end = 0;
    while i < s.len() {
        match s[i] {
            b'\'' => {
                last_end = i + 1;
                if s.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    break;
                }
            }
            b'\\' => match s.get(i + 1) {
                Some(&c) if c != b'\n' => i += 2,
                _ => break,
            },
            b'\n' => break,
            _ => i += 1,
        }
    }
    last_end
}

fn sign_len(s: &[u8]) -> usize {
    usize::from(matches!(s.first(), Some(b'-' | b'+')))
}

/// `{SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*`
fn integer_len(s: &[u8]) -> usize {
    let sg = sign_len(s);
    let t = &s[sg..];
    let letters = |from: usize| {
        t[from..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count()
    };
    let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
    let dec = if digits > 0 {
        digits + letters(digits)
    } else {
        0
    };
    let hex = if t.starts_with(b"0x") {
        let h = t[2..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if h > 0 {
            2 + h + letters(2 + h)
        } else {
            0
        }
    } else {
        0
    };
    let body = dec.max(hex);
    if body == 0 {
        0
    } else {
        sg + body
    }
}

/// `{SIGN}?{DIGIT}*"."{DIGIT}*{EXPONENT}?` with `EXPONENT [Ee]{SIGN}?{DIGIT}+`.
fn real_len(s: &[u8]) -> usize {
    let sg = sign_len(s);
    let t = &s[sg..];
    let d1 = t.iter().take_while(|b| b.is_ascii_digit()).count();
    if t.get(d1) != Some(&b'.') {
        return 0;
    }
    let mut n = d1 + 1;
    n += t[n..].iter().take_while(|b| b.is_ascii_digit()).count();
    if matches!(t.get(n), Some(b'e' | b'E')) {
        let e = n + 1 + sign_len(&t[n + 1..]);
        let ed = t[e..].iter().take_while(|b| b.is_ascii_digit()).count();
        if ed > 0 {
            n = e + ed;
        }
    }
    sg + n
}

/// Where a `#` comment starts, if the line has one outside a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    /// Byte offset of a `#` comment (to the end of the line).
    pub comment: Option<usize>,
}

/// Lexes one line (without its `\n`).
pub fn lex_line(line: &[u8]) -> Lexed {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        match rest[0] {
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                return Lexed {
                    tokens,
                    comment: Some(i),
                }
            }
            _ => {}
        }
        let candidates = [
            (Tok::Id, id_len(rest)),
            (Tok::QualifiedId, qualified_id_len(rest)),
            (Tok::String, string_len(rest)),
            (Tok::UnquotedString, unquoted_len(rest)),
            (Tok::Integer, integer_len(rest)),
            (Tok::Real, real_len(rest)),
            (Tok::Equals, usize::from(rest[0] == b'=')),
            (Tok::Error, 1),
        ];
        // Longest match; on a tie the earlier rule (max_by_key keeps the last maximum, so
        // compare with the position reversed).
        let (kind, len) = candidates
            .iter()
            .enumerate()
            .max_by_key(|(pos, (_, len))| (*len, usize::MAX - pos))
            .map(|(_, c)| *c)
            .expect("candidates are never empty");
        tokens.push(Token {
            kind,
            start: i,
            end: i + len,
        });
        i += len;
    }
    Lexed {
        tokens,
        comment: None,
    }
}

/// `DeescapeQuotedString`: strips the quotes, turns `''` into `'`, and applies the backslash
/// escapes `\b \f \n \r \t`, octal `\o \oo \ooo`, and `\x` → `x`. Like C, the value ends at
/// an embedded NUL.
pub fn deescape(quoted: &[u8]) -> String {
    let s = &quoted[1..];
    let len = s.len();
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut i = 0;
    while i < len {
        let c = s[i];
        if c == b'\\' {
            i += 1;
            let e = s.get(i).copied().unwrap_or(0);
            match e {
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'0'..=b'7' => {
                    let mut k = 0;
                    let mut v: u32 = 0;
                    while k < 3 && matches!(s.get(i + k), Some(b'0'..=b'7')) {
                        v = (v << 3) + u32::from(s[i + k] - b'0');
                        k += 1;
                    }
                    i += k - 1;
                    out.push(v as u8);
                }
                _ => out.push(e),
            }
        } else if c == b'\'' && s.get(i + 1) == Some(&b'\'') {
            i += 1;
            out.push(b'\'');
        } else {
            out.push(c);
        }
        i += 1;
    }
    // The closing quote was copied last.
    out.pop();
    if let Some(nul) = out.iter().position(|&b| b == 0) {
        out.truncate(nul);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value text of a value token: de-escaped for strings, verbatim otherwise.
pub fn token_value(line: &[u8], t: &Token) -> String {
    let text = &line[t.start..t.end];
    if t.kind == Tok::String {
        deescape(text)
    } else {
        String::from_utf8_lossy(text).into_owned()
    }
}

/// Whether a token can be a parameter's value.
pub fn is_value(k: Tok) -> bool {
    matches!(
        k,
        Tok::Id | Tok::String | Tok::Integer | Tok::Real | Tok::UnquotedString
    )
}

/// Whether a token can be a parameter's name.
pub fn is_name(k: Tok) -> bool {
    matches!(k, Tok::Id | Tok::QualifiedId)
}

/// Whether `name` is one token that PostgreSQL accepts as a parameter name.
pub fn valid_name(name: &str) -> bool {
    let l = lex_line(name.as_bytes());
    l.comment.is_none()
        && l.tokens.len() == 1
        && is_name(l.tokens[0].kind)
        && l.tokens[0].start == 0
        && l.tokens[0].end == name.len()
}

/// ALTER SYSTEM's quoting (`escape_single_quotes_ascii`): always quoted, `'` and `\` doubled.
pub fn quote_always(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            s.push(c);
        }
        s.push(c);
    }
    s.push('\'');
    s
}

/// Minimal quoting: bare only when the lexer reads the text back as one value token with the
/// same text (so `10.0.0.1`, `/tmp`, `*`, `1.5GB`, `pg_catalog.english` get quotes).
pub fn quote_minimal(value: &str) -> String {
    let l = lex_line(value.as_bytes());
    let bare = !value.is_empty()
        && l.comment.is_none()
        && l.tokens.len() == 1
        && l.tokens[0].kind != Tok::String
        && is_value(l.tokens[0].kind)
        && l.tokens[0].start == 0
        && l.tokens[0].end == value.len();
    if bare {
        value.to_string()
    } else {
        quote_always(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(Tok, String)> {
        let l = lex_line(s.as_bytes());
        l.tokens
            .iter()
            .map(|t| (t.kind, s[t.start..t.end].to_string()))
            .collect()
    }

    #[test]
    fn token_classes_follow_flex_rules() {
        use Tok::*;
        assert_eq!(kinds("on"), vec![(Id, "on".into())]);
        assert_eq!(kinds("128MB"), vec![(Integer, "128MB".into())]);
        assert_eq!(kinds("0x1F"), vec![(Integer, "0x1F".into())]);
        assert_eq!(kinds("-1"), vec![(Integer, "-1".into())]);
        assert_eq!(
            kinds("1.5GB"),
            vec![(Real, "1.5".into()), (Id, "GB".into())]
        );
        assert_eq!(
            kinds("1e3"),
            vec![(Integer, "1e".into()), (Integer, "3".into())]
        );
        assert_eq!(kinds("1.0e3"), vec![(Real, "1.0e3".into())]);
        assert_eq!(kinds("pg_log/x"), vec![(UnquotedString, "pg_log/x".into())]);
        assert_eq!(
            kinds("pg_catalog.english"),
            vec![(QualifiedId, "pg_catalog.english".into())]
        );
        assert_eq!(kinds("a.b.c"), vec![(UnquotedString, "a.b.c".into())]);
        assert_eq!(kinds("*")[0].0, Error);
        assert_eq!(kinds("/tmp")[0].0, Error);
        assert_eq!(kinds(".")[0].0, Real);
        assert_eq!(
            kinds("10.0.0.1"),
            vec![
                (Real, "10.0".into()),
                (Real, ".0".into()),
                (Real, ".1".into())
            ]
        );
        assert_eq!(kinds("'it''s'"), vec![(String, "'it''s'".into())]);
        assert_eq!(kinds("'a'''")[0], (String, "'a'''".into()));
        assert_eq!(
            kinds("'a'' x"),
            vec![
                (String, "'a'".into()),
                (Error, "'".into()),
                (Id, "x".into())
            ]
        );
        assert_eq!(kinds("'unterminated")[0], (Error, "'".into()));
        let l = lex_line(b"x = 'a # b' # c");
        assert_eq!(l.comment, Some(12));
        assert_eq!(l.tokens.len(), 3);
        assert_eq!(lex_line(b"on#x").comment, Some(2));
    }

    #[test]
    fn deescape_like_postgres() {
        assert_eq!(deescape(b"'it''s'"), "it's");
        assert_eq!(deescape(br"'it\'s'"), "it's");
        assert_eq!(deescape(br"'a\nb\tc\\d\qe'"), "a\nb\tc\\dqe");
        assert_eq!(deescape(br"'\101\1012'"), "AA2");
        assert_eq!(deescape(br"'ab\0cd'"), "ab");
        assert_eq!(deescape(b"''"), "");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_always(r"it's a\b"), r"'it''s a\\b'");
        assert_eq!(quote_minimal("on"), "on");
        assert_eq!(quote_minimal("128MB"), "128MB");
        assert_eq!(quote_minimal("0.5"), "0.5");
        assert_eq!(quote_minimal("pg_log/x"), "pg_log/x");
        for v in [
            "10.0.0.1",
            "*",
            "/tmp",
            "1.5GB",
            "pg_catalog.english",
            "",
            "a b",
            "x#y",
        ] {
            assert!(quote_minimal(v).starts_with('\''), "{v}");
        }
        assert!(valid_name("work_mem") && valid_name("a.b") && valid_name("Ünï"));
        assert!(!valid_name("a.b.c") && !valid_name("1x") && !valid_name("a b"));
    }
}
