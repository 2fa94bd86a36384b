//! New lines as they must be written: each token quoted only where the server needs it, the
//! columns aligned like the neighbouring rule's, and the result read back through the real
//! parser before anything is written.

use crate::lex::{self, AuthLine, Token};
use crate::parse_line::{self, Address, Build, ConnType, Rule, DB_KEYWORDS};
use std::path::Path;

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
            // An address without /LEN has its netmask in the next column.
            let address_token = l
                .field_cols
                .get(3)
                .and_then(|&c| raw.get(c..))
                .and_then(|t| t.split([' ', '\t', '\r']).next());
            let mask_column = matches!(r.address, Some(Address::Ip { .. }))
                && address_token.is_some_and(|t| !t.contains('/'));
            if mask_column {
                5
            } else {
                4
            }
        };
        cols[4] = v.get(method_field).copied();
        // A local line has no address column: a new host line beside it puts its address one
        // user-column width after the user (initdb's file: users at 24, addresses at 40),
        // when that leaves room before the method.
        if let (None, Some(db), Some(user), Some(method)) = (cols[3], cols[1], cols[2], cols[4]) {
            let at = user + user.saturating_sub(db);
            if at > user && at < method {
                cols[3] = Some(at);
            }
        }
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

pub(crate) fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.ends_with('\\')
        || s.bytes()
            .any(|b| lex::is_blank(b) || b == b',' || b == b'#' || b == b'"')
}

pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A quoted token whose quotes change its meaning (a keyword, `+role`, `@file`).
pub(crate) fn quote_matters(t: &Token) -> bool {
    DB_KEYWORDS.contains(&t.s.as_ref())
        || matches!(t.s.as_ref(), "samehost" | "samenet")
        || t.s.starts_with('+')
        || (t.s.starts_with('@') && t.s.len() > 1)
}

/// A token as it must be written so the server reads it back the same.
pub fn render_token(t: &Token) -> String {
    if t.quoted {
        if quote_matters(t) || needs_quotes(&t.s) {
            return quote(&t.s);
        }
        return t.s.to_string();
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
        t.s.to_string()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
