//! libpq's connection strings: `key=value` conninfo and `postgresql://` URIs
//! (src/interfaces/libpq/fe-connect.c `conninfo_parse`, `conninfo_uri_parse`), and masking
//! the password in either.

use super::MASK;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Quotes a conninfo value when it needs it.
pub fn quote_value(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(super) fn parse_conninfo(s: &str) -> Result<BTreeMap<String, String>> {
    let bad = |why: String| Error::usage("invalid connection string").because(why);
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad(format!("missing \"=\" after \"{key}\"")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(bad("unterminated quoted string".into()));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.insert(key, value);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => {
                    return Err(Error::usage("invalid connection URI")
                        .because(format!("invalid percent-encoded token \"{s}\"")))
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        Error::usage("invalid connection URI").because("percent-decoded text is not UTF-8")
    })
}

/// `postgresql://[user[:password]@][host][:port][,...][/dbname][?param=value&...]`
pub(super) fn parse_uri(s: &str) -> Result<BTreeMap<String, String>> {
    let rest = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
        .unwrap_or(s);
    let mut out = BTreeMap::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (main, None),
    };
    let hostpart = match authority.rsplit_once('@') {
        Some((userinfo, h)) => {
            let (u, pw) = match userinfo.split_once(':') {
                Some((u, pw)) => (u, Some(pw)),
                None => (userinfo, None),
            };
            if !u.is_empty() {
                out.insert("user".into(), percent_decode(u)?);
            }
            if let Some(pw) = pw {
                out.insert("password".into(), percent_decode(pw)?);
            }
            h
        }
        None => authority,
    };
    let (mut hosts, mut ports) = (Vec::new(), Vec::new());
    for hp in hostpart.split(',').filter(|x| !x.is_empty()) {
        let (h, p) = if let Some(rest) = hp.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| {
                Error::usage("invalid connection URI").because(format!("missing \"]\" in \"{hp}\""))
            })?;
            (h.to_string(), after.strip_prefix(':').map(str::to_string))
        } else {
            match hp.split_once(':') {
                Some((h, p)) => (percent_decode(h)?, Some(p.to_string())),
                None => (percent_decode(hp)?, None),
            }
        };
        hosts.push(h);
        ports.push(p.unwrap_or_default());
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        out.insert("host".into(), hosts.join(","));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.insert("port".into(), ports.join(","));
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        out.insert("dbname".into(), percent_decode(db)?);
    }
    if let Some(q) = query {
        for kv in q.split('&').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                Error::usage("invalid connection URI").because(format!(
                    "missing key/value separator \"=\" in URI query parameter \"{kv}\""
                ))
            })?;
            let k = percent_decode(k)?;
            // libpq accepts ssl=true as sslmode=require.
            let (k, v) = if k == "ssl" && v == "true" {
                ("sslmode".to_string(), "require".to_string())
            } else {
                (k, percent_decode(v)?)
            };
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// Masks the password in a conninfo string or URI found in free text (`primary_conninfo`).
pub fn redact_conninfo(s: &str) -> String {
    if s.starts_with("postgresql://") || s.starts_with("postgres://") {
        let scheme_end = s.find("://").map(|i| i + 3).unwrap_or(0);
        let rest = &s[scheme_end..];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let mut out = String::from(&s[..scheme_end]);
        let authority = &rest[..auth_end];
        match authority.rsplit_once('@') {
            Some((ui, host)) => match ui.split_once(':') {
                Some((u, _)) => out.push_str(&format!("{u}:{MASK}@{host}")),
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        let tail = &rest[auth_end..];
        // A password= query parameter, too.
        let mut parts = Vec::new();
        for (i, seg) in tail.split('&').enumerate() {
            let (prefix, kv) = if i == 0 {
                match seg.split_once('?') {
                    Some((p, kv)) => (format!("{p}?"), kv),
                    None => (String::new(), seg),
                }
            } else {
                (String::new(), seg)
            };
            if kv.starts_with("password=") {
                parts.push(format!("{prefix}password={MASK}"));
            } else if i == 0 && prefix.is_empty() {
                parts.push(seg.to_string());
            } else {
                parts.push(format!("{prefix}{kv}"));
            }
        }
        out.push_str(&parts.join("&"));
        return out;
    }
    // key=value form: find password = value, quoted or not, and replace the value only.
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = find_keyword(rest, "password") {
        let after_key = &rest[pos + "password".len()..];
        let trimmed = after_key.trim_start();
        let Some(after_eq) = trimmed.strip_prefix('=') else {
            out.push_str(&rest[..pos + "password".len()]);
            rest = after_key;
            continue;
        };
        let value_start = after_eq.trim_start();
        let consumed_before_value = rest.len() - value_start.len();
        out.push_str(&rest[..consumed_before_value]);
        let value_len = conninfo_value_len(value_start);
        out.push_str(MASK);
        rest = &value_start[value_len..];
    }
    out.push_str(rest);
    out
}

/// The position of `kw` as a whole keyword (start of text or after whitespace).
fn find_keyword(s: &str, kw: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(kw) {
        let at = from + i;
        let ok_before = at == 0 || s[..at].ends_with(char::is_whitespace);
        let after = s[at + kw.len()..].trim_start();
        if ok_before && after.starts_with('=') {
            return Some(at);
        }
        from = at + kw.len();
    }
    None
}

fn conninfo_value_len(v: &str) -> usize {
    let mut it = v.char_indices().peekable();
    if v.starts_with('\'') {
        it.next();
        while let Some((i, c)) = it.next() {
            match c {
                '\\' => {
                    it.next();
                }
                '\'' => return i + 1,
                _ => {}
            }
        }
        return v.len();
    }
    while let Some((i, c)) = it.next() {
        if c.is_whitespace() {
            return i;
        }
        if c == '\\' {
            it.next();
        }
    }
    v.len()
}
