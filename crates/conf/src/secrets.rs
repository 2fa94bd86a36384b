//! Passwords inside values (`primary_conninfo`, `restore_command` with a URI, …) shown as
//! `********`, as SPEC "Conventions" 5 requires of every output, unless `--show-secrets`.

/// Masks `password=...` inside conninfo-like text and the password of `scheme://user:pw@`.
pub fn mask_secrets(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("password=") {
        let (head, tail) = rest.split_at(i + "password=".len());
        out.push_str(head);
        let quoted = tail.starts_with('\'');
        let end = if quoted {
            tail[1..].find('\'').map(|j| j + 2).unwrap_or(tail.len())
        } else {
            tail.find([' ', '\t', '\'', '\n']).unwrap_or(tail.len())
        };
        out.push_str(pgdr_core::conn::MASK);
        rest = &tail[end..];
    }
    out.push_str(rest);
    // URIs: postgres://user:secret@host
    if let Some(i) = out.find("://") {
        let after = &out[i + 3..];
        if let Some(at) = after.find('@') {
            if let Some(colon) = after[..at].find(':') {
                let masked = format!(
                    "{}{}{}",
                    &out[..i + 3 + colon + 1],
                    pgdr_core::conn::MASK,
                    &after[at..]
                );
                return masked;
            }
        }
    }
    out
}

/// Whether printed values show secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Masker {
    /// --show-secrets: print values as they are.
    pub show_secrets: bool,
}

impl Masker {
    /// The value as printed, and whether anything in it was masked.
    pub fn show(&self, s: &str) -> (String, bool) {
        if self.show_secrets {
            return (s.to_string(), false);
        }
        let m = mask_secrets(s);
        let masked = m != s;
        (m, masked)
    }

    /// The value as printed.
    pub fn text(&self, s: &str) -> String {
        self.show(s).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_uri_secrets() {
        assert_eq!(
            mask_secrets("host=p user=r password=s3cret port=5"),
            "host=p user=r password=******** port=5"
        );
        assert_eq!(mask_secrets("password='a b' x=1"), "password=******** x=1");
        assert_eq!(
            mask_secrets("postgres://u:pw@h/db"),
            "postgres://u:********@h/db"
        );
        let m = Masker::default();
        assert_eq!(m.show("work_mem"), ("work_mem".to_string(), false));
        assert!(m.show("password=x").1);
        let all = Masker { show_secrets: true };
        assert_eq!(all.show("password=x"), ("password=x".to_string(), false));
    }
}
