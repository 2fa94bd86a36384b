//! `list`'s and `check`'s documents written by hand, straight from the parsed rules: the
//! bytes `serde_json::to_writer` writes for [`HbaList`] and [`CheckReport`], without building
//! a [`RuleDoc`] (five allocations) per rule or escaping the keys one byte at a time. A
//! 100,000-rule list is 20 MB of JSON; serde took a third of `list`'s time writing it.
//!
//! Anything unusual (a string with a character JSON escapes, the errors) goes through
//! serde_json itself, so the two cannot differ; the tests compare them.
//!
//! [`RuleDoc`]: crate::doc::RuleDoc

use crate::doc::{shown_options, token_json, CheckReport, HbaList};
use crate::lex::Token;
use crate::parse_line::{Address, Rule};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Flushed to the writer when this full (the caller buffers too: it stays one copy).
const CHUNK: usize = 64 * 1024;

/// Compact JSON into a buffer that is handed to `w` in large pieces.
struct Out<'w> {
    buf: Vec<u8>,
    w: &'w mut dyn Write,
}

impl Write for Out<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        self.w.flush()
    }
}

impl Out<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A JSON string, escaped as serde_json escapes it.
    fn str(&mut self, s: &str) -> serde_json::Result<()> {
        // serde_json escapes `"`, `\` and the control characters, nothing else.
        let plain = !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
        if plain {
            self.buf.push(b'"');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.push(b'"');
            Ok(())
        } else {
            serde_json::to_writer(&mut *self, s)
        }
    }

    fn opt_str(&mut self, s: Option<&str>) -> serde_json::Result<()> {
        match s {
            Some(s) => self.str(s),
            None => {
                self.raw(b"null");
                Ok(())
            }
        }
    }

    fn uint(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.raw(&digits[i..]);
    }

    /// `["a","b"]` of tokens as list shows them.
    fn tokens(&mut self, toks: &[Token]) -> serde_json::Result<()> {
        self.raw(b"[");
        for (i, t) in toks.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            self.str(&token_json(t))?;
        }
        self.raw(b"]");
        Ok(())
    }

    fn spill(&mut self) -> serde_json::Result<()> {
        if self.buf.len() >= CHUNK {
            self.w.write_all(&self.buf).map_err(serde_json::Error::io)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The file of the previous rule and its JSON string: most rules share one file (one
/// `Arc`), whose name is escaped once.
struct FileName {
    path: Option<Arc<Path>>,
    json: Vec<u8>,
}

impl FileName {
    fn json(&mut self, p: &Arc<Path>) -> serde_json::Result<&[u8]> {
        if !self.path.as_ref().is_some_and(|q| Arc::ptr_eq(q, p)) {
            self.json.clear();
            serde_json::to_writer(&mut self.json, &p.to_string_lossy())?;
            self.path = Some(p.clone());
        }
        Ok(&self.json)
    }
}

/// A file name as the previous warning's (warnings borrow it from their rules).
#[derive(Default)]
struct SameText {
    text: String,
    json: Vec<u8>,
}

impl SameText {
    fn json(&mut self, s: &str) -> serde_json::Result<&[u8]> {
        if self.json.is_empty() || self.text != s {
            self.json.clear();
            serde_json::to_writer(&mut self.json, s)?;
            self.text.clear();
            self.text.push_str(s);
        }
        Ok(&self.json)
    }
}

/// Writes `report` as `serde_json::to_writer` would.
///
/// # Errors
/// The writer's I/O errors.
pub fn write_check(report: &CheckReport, w: &mut dyn Write) -> serde_json::Result<()> {
    let mut out = Out {
        buf: Vec::with_capacity(CHUNK + 4096),
        w,
    };
    let mut file = SameText::default();
    out.raw(b"{\"file\":");
    out.str(&report.file)?;
    out.raw(b",\"pg_version\":");
    out.uint(report.pg_version.into());
    out.raw(if report.ok {
        b",\"ok\":true,\"rules\":"
    } else {
        b",\"ok\":false,\"rules\":"
    });
    out.uint(report.rules as u64);
    out.raw(b",\"errors\":");
    serde_json::to_writer(&mut out, &report.errors)?;
    out.raw(b",\"warnings\":[");
    for (i, w) in report.warnings.iter().enumerate() {
        if i > 0 {
            out.raw(b",");
        }
        out.raw(b"{\"file\":");
        out.raw(file.json(&w.file)?);
        out.raw(b",\"line\":");
        out.uint(w.line as u64);
        out.raw(b",\"kind\":");
        serde_json::to_writer(&mut out, &w.kind)?;
        out.raw(b",\"message\":");
        out.str(&w.message)?;
        out.raw(b"}");
        out.spill()?;
    }
    out.raw(b"]}");
    out.flush().map_err(serde_json::Error::io)
}

/// Writes `list` (whose rules are `rules`) as `serde_json::to_writer` would.
///
/// # Errors
/// The writer's I/O errors.
pub fn write_list(
    list: &HbaList,
    rules: &[Rule],
    show_secrets: bool,
    w: &mut dyn Write,
) -> serde_json::Result<()> {
    let mut out = Out {
        buf: Vec::with_capacity(CHUNK + 4096),
        w,
    };
    let mut file = FileName {
        path: None,
        json: Vec::new(),
    };
    let mut text = String::new();
    out.raw(b"{\"file\":");
    out.str(&list.file)?;
    out.raw(b",\"pg_version\":");
    out.uint(list.pg_version.into());
    out.raw(b",\"rules\":[");
    for (i, r) in rules.iter().enumerate() {
        if i > 0 {
            out.raw(b",");
        }
        rule(&mut out, r, show_secrets, &mut file, &mut text)?;
        out.spill()?;
    }
    out.raw(b"],\"errors\":");
    serde_json::to_writer(&mut out, &list.errors)?;
    out.raw(b"}");
    out.flush().map_err(serde_json::Error::io)
}

/// One rule, as [`crate::doc::RuleDoc::of`] shows it.
fn rule(
    out: &mut Out,
    r: &Rule,
    show_secrets: bool,
    file: &mut FileName,
    text: &mut String,
) -> serde_json::Result<()> {
    out.raw(b"{\"file\":");
    out.raw(file.json(&r.file)?);
    out.raw(b",\"line\":");
    out.uint(r.line as u64);
    out.raw(b",\"type\":\"");
    out.raw(r.conn.name().as_bytes());
    out.raw(b"\",\"database\":");
    out.tokens(&r.databases)?;
    out.raw(b",\"user\":");
    out.tokens(&r.users)?;
    out.raw(b",\"address\":");
    match &r.address {
        None => out.raw(b"null,\"netmask\":null"),
        Some(Address::Ip { addr, mask }) => {
            text.clear();
            crate::addr::push_text(addr, text);
            out.str(text)?;
            out.raw(b",\"netmask\":");
            text.clear();
            crate::addr::push_text(mask, text);
            out.str(text)?;
        }
        Some(a) => {
            out.str(&a.view().0)?;
            out.raw(b",\"netmask\":null");
        }
    }
    out.raw(b",\"method\":");
    out.str(r.method)?;
    out.raw(b",\"options\":");
    if r.options().is_empty() {
        out.raw(b"{}");
    } else {
        let (options, _) = shown_options(r, show_secrets);
        serde_json::to_writer(&mut *out, &options)?;
    }
    out.raw(b",\"comment\":");
    out.opt_str(r.comment())?;
    out.raw(b",\"masked\":");
    if r.options().is_empty() {
        out.raw(b"[]");
    } else {
        let (_, masked) = shown_options(r, show_secrets);
        serde_json::to_writer(&mut *out, &masked)?;
    }
    out.raw(b"}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::check::check;
    use crate::cmd::list::list;
    use crate::file::HbaRules;
    use pgdr_core::Document;

    /// The hand-written bytes are serde_json's, for every kind of value a rule can hold.
    #[test]
    fn written_as_serde_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("inc.conf");
        std::fs::write(&inc, "local all \"all\" trust # included\n").unwrap();
        let text = format!(
            "# a comment\n\
             local all all peer\n\
             local \"all\",\"+x\",@\"f\" +g,\"sameuser\" md5 # \"quoted\" \\ back\\slash\n\
             host all all 10.1.2.3/32 md5\n\
             host all all 10.1.2.3 255.255.0.0 md5\n\
             host all all fe80::1:2/64 scram-sha-256\n\
             host all all ::ffff:10.1.2.3/128 trust\n\
             hostssl \"db\\\"x\" \"us\tr\" all cert clientcert=verify-full map=m\n\
             host all all samehost trust\nhost all all samenet trust\n\
             host all all .example.com trust\nhost all all db.Example.com trust\n\
             host all all 10.0.0.0/8 ldap ldapserver=h ldapbasedn=\"dc=x\" ldapbindpasswd=s3cret ldapbindpasswd=other\n\
             host all all 10.0.0.0/8 radius radiusservers=127.0.0.1 radiussecrets=\"a,b\" radiussecrets=c\n\
             local dé ü→ peer # ünïcode\n\
             host all all 10.0.0.0/33 md5\n\
             local all all bogus\n\
             include {}\n\
             local all all trust #\n",
            inc.display()
        );
        let f = dir.path().join("pg_hba \"x\".conf");
        std::fs::write(&f, text).unwrap();
        for version in [13, 16] {
            let rules = HbaRules::load(&f, version).unwrap();
            assert!(rules.rules.len() > 10 && !rules.errors.is_empty());
            for show in [false, true] {
                let doc = list(&rules, show);
                let mut fast = Vec::new();
                doc.write_json(&mut fast).unwrap();
                let slow = serde_json::to_vec(&doc).unwrap();
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(slow).unwrap()
                );
            }
            let report = check(&rules);
            assert!(!report.warnings.is_empty());
            let mut fast = Vec::new();
            report.write_json(&mut fast).unwrap();
            let slow = serde_json::to_vec(&report).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
        // A file whose rules all load: ok is true, and no rules at all.
        for text in ["local all all peer\nlocal all all peer\n", "# nothing\n"] {
            std::fs::write(&f, text).unwrap();
            let rules = HbaRules::load(&f, 16).unwrap();
            let report = check(&rules);
            let mut fast = Vec::new();
            report.write_json(&mut fast).unwrap();
            assert_eq!(fast, serde_json::to_vec(&report).unwrap());
        }
    }
}
