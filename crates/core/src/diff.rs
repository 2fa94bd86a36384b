//! Unified diffs for `--dry-run`.

/// A unified diff of `old` → `new`, labelled with the file's path (git's `a/`, `b/` for a
/// relative path; the path itself for an absolute one, as `diff -u` would); empty when equal.
pub fn unified(old: &str, new: &str, path: &str) -> String {
    if old == new {
        return String::new();
    }
    let (from, to) = if path.starts_with('/') {
        (path.to_string(), path.to_string())
    } else {
        (format!("a/{path}"), format!("b/{path}"))
    };
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shows_changed_line() {
        let d = super::unified("a\nb\nc\n", "a\nB\nc\n", "f");
        assert!(d.starts_with("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n"), "{d}");
        assert!(d.contains("\n-b\n+B\n"));
        assert_eq!(super::unified("x", "x", "f"), "");
        let d = super::unified("a\n", "b\n", "/etc/pg_hba.conf");
        assert!(
            d.starts_with("--- /etc/pg_hba.conf\n+++ /etc/pg_hba.conf\n"),
            "{d}"
        );
    }
}
