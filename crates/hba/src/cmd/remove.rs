//! `remove`: the rules with a type, database, user and address (or the line --line), with
//! the comment lines directly above them that belong to them alone.

use super::{commit, new_rule, record_for, validate, ChangeOptions, Selector, Target};
use crate::doc::{rule_doc, RawLine, RemoveReport};
use crate::shadow::identity;
use pgdr_core::Result;

/// Which rules to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveSpec {
    /// Every rule of the file with this identity (rules in included files are left alone).
    Rules(Selector),
    /// The rule, directive or rejected line starting on this line.
    Line(usize),
}

/// Removes from `t`.
///
/// # Errors
/// Exit 2: a selector the server would reject, --line naming nothing. [`commit`]'s failures.
pub fn remove(t: &Target, spec: &RemoveSpec, opts: &ChangeOptions) -> Result<RemoveReport> {
    let file = t.load()?;
    let show = opts.show_secrets;
    let mut ranges = Vec::new();
    let mut removed = Vec::new();
    let mut removed_lines = Vec::new();
    let mut not_removed = Vec::new();
    match spec {
        RemoveSpec::Line(l) => {
            let i = record_for(&file, *l, "--line")?;
            ranges.push(file.removal_range(i));
            match file.rules.iter().find(|r| r.origin == i && file.is_own(r)) {
                Some(r) => removed.push(rule_doc(r, show)),
                None => removed_lines.push(RawLine {
                    file: t.file.display().to_string(),
                    line: *l,
                    text: file.tok.records[i].text(&file.text).to_string(),
                }),
            }
        }
        RemoveSpec::Rules(sel) => {
            // Any valid method will do: only the identity is compared.
            let probe = validate(&new_rule(sel, "reject", &[], None)?, t.version, &t.file)?;
            let id = identity(&probe, t.version);
            for r in file.rules.iter().filter(|r| identity(r, t.version) == id) {
                if file.is_own(r) {
                    ranges.push(file.removal_range(r.origin));
                    removed.push(rule_doc(r, show));
                } else {
                    not_removed.push(rule_doc(r, show));
                }
            }
        }
    }
    let mut out = RemoveReport {
        file: t.file.display().to_string(),
        changed: !ranges.is_empty(),
        removed,
        removed_lines,
        not_removed,
        dry_run: opts.dry_run,
        diff: None,
        backup: None,
        reload: None,
    };
    if ranges.is_empty() {
        return Ok(out);
    }
    ranges.sort();
    ranges.dedup();
    let mut new_text = String::with_capacity(file.text.len());
    let mut pos = 0;
    for (s, e) in ranges {
        let s = s.max(pos);
        new_text.push_str(&file.text[pos..s]);
        pos = e.max(pos);
    }
    new_text.push_str(&file.text[pos..]);
    let w = commit(&file, &new_text, opts)?;
    (out.diff, out.backup, out.reload) = (w.diff, w.backup, w.reload);
    Ok(out)
}
