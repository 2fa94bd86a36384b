//! PostgreSQL's regular expressions (ARE, used for `/regex` database and user entries in 16+),
//! as far as this tool needs them: is a pattern valid, and does it match a name.
//!
//! Matching uses the `regex` crate after small ARE-to-Rust rewrites. Constructs only ARE has
//! (back-references, look-around, `\m`, `\M`, `\y`) are valid but not evaluated here: such an
//! entry is reported as undecided instead of guessed.

/// A compiled entry: Some(regex) when it can be evaluated here, None when only ARE can.
pub type Compiled = Option<regex::Regex>;

fn balanced(p: &str) -> Result<(), &'static str> {
    let b = p.as_bytes();
    let (mut paren, mut i) = (0i32, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if i + 1 >= b.len() {
                    return Err("invalid escape \\ sequence");
                }
                i += 1;
            }
            b'[' => {
                // A bracket expression ends at the first ']' that is not its first character.
                let mut j = i + 1;
                if b.get(j) == Some(&b'^') {
                    j += 1;
                }
                if b.get(j) == Some(&b']') {
                    j += 1;
                }
                while j < b.len() && b[j] != b']' {
                    if b[j] == b'[' && matches!(b.get(j + 1), Some(b':' | b'.' | b'=')) {
                        let close = b[j + 1];
                        let mut k = j + 2;
                        while k + 1 < b.len() && !(b[k] == close && b[k + 1] == b']') {
                            k += 1;
                        }
                        j = k + 1;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return Err("brackets [] not balanced");
                }
                i = j;
            }
            b'(' => paren += 1,
            b')' => {
                paren -= 1;
                if paren < 0 {
                    return Err("parentheses () not balanced");
                }
            }
            b'{' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b',') {
                    j += 1;
                }
                if b.get(j) != Some(&b'}') {
                    return Err("braces {} not balanced");
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    if paren != 0 {
        return Err("parentheses () not balanced");
    }
    Ok(())
}

fn are_only(p: &str) -> bool {
    [
        "(?=", "(?!", "(?<=", "(?<!", "\\m", "\\M", "\\y", "\\Y", "\\Z", "[[:<:]]", "[[:>:]]",
    ]
    .iter()
    .any(|s| p.contains(s))
        || p.as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\\' && (b'1'..=b'9').contains(&w[1]))
}

/// Rewrites what differs between ARE and the `regex` crate: a `{` not starting a bound is a
/// literal in ARE.
fn to_rust(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        let c = p[i..].chars().next().unwrap_or('\0');
        if c == '\\' && i + 1 < b.len() {
            let n = p[i + 1..].chars().next().unwrap_or('\0');
            out.push('\\');
            out.push(n);
            i += 1 + n.len_utf8();
            continue;
        }
        if c == '{' && !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            out.push_str("\\{");
        } else {
            out.push(c);
        }
        i += c.len_utf8();
    }
    out
}

/// Compiles `/pattern` (without the slash); Err is the server's "invalid regular expression"
/// reason.
pub fn compile(pattern: &str) -> Result<Compiled, String> {
    balanced(pattern).map_err(str::to_string)?;
    match regex::Regex::new(&to_rust(pattern)) {
        Ok(r) => Ok(Some(r)),
        Err(_) if are_only(pattern) => Ok(None),
        Err(e) => {
            let msg = e.to_string();
            let why = if msg.contains("repetition") {
                "quantifier operand invalid"
            } else if msg.contains("class") {
                "invalid character class"
            } else if msg.contains("range") {
                "invalid character range"
            } else if msg.contains("escape") {
                "invalid escape \\ sequence"
            } else {
                "invalid regular expression"
            };
            Err(why.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        assert!(compile(r"^db\d{2,4}$").unwrap().is_some());
        assert_eq!(compile(r"^db\d{2").unwrap_err(), "braces {} not balanced");
        assert_eq!(compile("(a").unwrap_err(), "parentheses () not balanced");
        assert_eq!(compile("[a").unwrap_err(), "brackets [] not balanced");
        assert!(compile("a{x}").unwrap().is_some());
        assert!(compile(r"(a)\1").unwrap().is_none());
        assert!(compile("*a").is_err());
    }

    #[test]
    fn unanchored_search() {
        let r = compile("db").unwrap().unwrap();
        assert!(r.is_match("mydb2"));
        let r = compile("^db$").unwrap().unwrap();
        assert!(!r.is_match("mydb"));
    }
}
