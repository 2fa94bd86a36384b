//! Changes to postgresql.conf that keep every byte the change does not need: the effective
//! line edited in place, else the commented-out sample line uncommented (its trailing comment
//! kept), else a new line appended; `unset` comments out every active line.

use crate::lex::{self, Tok};
use crate::parse::{self, Kind};

/// Replaces line `number` (1-based) of `text` with `new_line` (no newline).
pub fn replace_line(file: &parse::File, number: u32, new_line: &str) -> String {
    let l = &file.lines[number as usize - 1];
    let mut s = String::with_capacity(file.text.len() + new_line.len());
    s.push_str(&file.text[..l.start]);
    s.push_str(new_line);
    s.push_str(&file.text[l.end..]);
    s
}

/// The value as it should be written, given the token it replaces (a quoted value stays
/// quoted; otherwise quotes only where the lexer needs them).
pub fn render_value(value: &str, was_quoted: bool) -> String {
    if was_quoted {
        lex::quote_always(value)
    } else {
        lex::quote_minimal(value)
    }
}

/// Line `number` with its value token replaced.
pub fn set_in_line(file: &parse::File, number: u32, value: &str) -> Option<String> {
    let l = &file.lines[number as usize - 1];
    let Kind::Setting { value_tok, .. } = &l.kind else {
        return None;
    };
    let text = file.line_text(l);
    let v = render_value(value, value_tok.kind == Tok::String);
    Some(format!(
        "{}{}{}",
        &text[..value_tok.start],
        v,
        &text[value_tok.end..]
    ))
}

/// A commented-out sample line for `name` (`#name = value  # comment`): its number and the
/// uncommented text with the new value.
pub fn uncomment_candidate(file: &parse::File, name: &str, value: &str) -> Option<(u32, String)> {
    for l in &file.lines {
        if l.kind != Kind::Blank {
            continue;
        }
        let text = file.line_text(l);
        let trimmed = text.trim_start_matches([' ', '\t']);
        let Some(body) = trimmed.strip_prefix('#') else {
            continue;
        };
        let lead = &text[..text.len() - trimmed.len()];
        let inner = parse::classify(body.as_bytes(), false, 1);
        if let Kind::Setting {
            name: n, value_tok, ..
        } = inner
        {
            if n.eq_ignore_ascii_case(name) {
                let v = render_value(value, value_tok.kind == Tok::String);
                let new = format!(
                    "{lead}{}{}{}",
                    &body[..value_tok.start],
                    v,
                    &body[value_tok.end..]
                );
                return Some((l.number, new));
            }
        }
    }
    None
}

/// `text` with `name = value` appended on a line of its own.
pub fn append(text: &str, name: &str, value: &str) -> String {
    let mut s = text.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(name);
    s.push_str(" = ");
    s.push_str(&lex::quote_minimal(value));
    s.push('\n');
    s
}

/// `text` with every active line of `name` commented out. Returns the new text and the
/// lines changed.
pub fn comment_out(file: &parse::File, name: &str) -> (String, Vec<(u32, String)>) {
    let mut out = String::with_capacity(file.text.len() + 8);
    let mut last = 0;
    let mut lines = Vec::new();
    for l in &file.lines {
        if let Kind::Setting { name: n, value, .. } = &l.kind {
            if n.eq_ignore_ascii_case(name) {
                out.push_str(&file.text[last..l.start]);
                out.push('#');
                last = l.start;
                lines.push((l.number, value.clone()));
            }
        }
    }
    out.push_str(&file.text[last..]);
    (out, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_keeps_bytes() {
        let f = parse::parse(
            "# top\nwork_mem = 4MB\t\t# per sort\nlisten_addresses = 'localhost' # x\n",
        );
        assert_eq!(
            set_in_line(&f, 2, "64MB").unwrap(),
            "work_mem = 64MB\t\t# per sort"
        );
        assert_eq!(
            set_in_line(&f, 3, "*").unwrap(),
            "listen_addresses = '*' # x"
        );
        assert_eq!(
            set_in_line(&f, 2, "1.5GB").unwrap(),
            "work_mem = '1.5GB'\t\t# per sort"
        );
    }

    #[test]
    fn uncomment_and_append() {
        let f = parse::parse("#wal_level = replica\t\t\t# minimal, replica, or logical\n  #archive_command = ''\t# cmd\n");
        assert_eq!(
            uncomment_candidate(&f, "WAL_LEVEL", "logical").unwrap(),
            (
                1,
                "wal_level = logical\t\t\t# minimal, replica, or logical".into()
            )
        );
        assert_eq!(
            uncomment_candidate(&f, "archive_command", "cp %p /a/%f").unwrap(),
            (2, "  archive_command = 'cp %p /a/%f'\t# cmd".into())
        );
        assert!(uncomment_candidate(&f, "port", "1").is_none());
        assert_eq!(append("a = 1", "port", "5433"), "a = 1\nport = 5433\n");
    }

    #[test]
    fn comment_out_every_occurrence() {
        let f = parse::parse("port = 1\n# port = 2\nPort=3 # c\nx.y = 1\n");
        let (t, lines) = comment_out(&f, "port");
        assert_eq!(t, "#port = 1\n# port = 2\n#Port=3 # c\nx.y = 1\n");
        assert_eq!(lines.len(), 2);
    }
}
