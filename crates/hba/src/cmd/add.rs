//! `add`: one rule, idempotent. By default it goes just before the first rule of its shadow
//! (the earlier rules that, alone or together, would match every connection it would), so
//! that it can match; else after the last rule. A rule with the same type, database, user and
//! address but another method or options is replaced in place only with `--replace`.

use super::{
    commit, new_rule, record_for, refuse_errors, validate, ChangeOptions, Selector, Target,
};
use crate::doc::{rule_doc, AddAction, AddReport};
use crate::file::line_number_at;
use crate::lex::Kind;
use crate::shadow::{self, full_key, identity, Shadow};
use pgdr_core::{Error, Result};

/// Where the new rule goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Placement {
    /// Before the first rule of its shadow, else last.
    #[default]
    Auto,
    /// Before every other rule.
    First,
    /// Just before the rule starting on this line.
    Before(usize),
    /// Just after the rule starting on this line.
    After(usize),
}

/// The rule to add and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddSpec {
    pub rule: Selector,
    /// Authentication method.
    pub method: String,
    /// NAME=VALUE options.
    pub options: Vec<String>,
    /// A comment written after the rule.
    pub comment: Option<String>,
    pub placement: Placement,
    /// Replace a rule with the same identity but another method or options.
    pub replace: bool,
}

/// Adds the rule to `t`.
///
/// # Errors
/// Exit 2: a rule the server would reject, --before/--after naming no rule. Exit 1: the file
/// has lines the server rejects, a conflicting rule without --replace (or in an included
/// file), and [`commit`]'s failures.
pub fn add(t: &Target, spec: &AddSpec, opts: &ChangeOptions) -> Result<AddReport> {
    let mut nr = new_rule(
        &spec.rule,
        &spec.method,
        &spec.options,
        spec.comment.clone(),
    )?;
    let rule = validate(&nr, t.version, &t.file)?;
    let file = t.load()?;
    refuse_errors(&file)?;
    let version = t.version;
    let show = opts.show_secrets;
    let id = identity(&rule, version);
    let full = full_key(&rule, version);
    let report = |changed, action, line, position, rule, replaced, warnings| AddReport {
        file: t.file.display().to_string(),
        changed,
        action,
        line,
        position,
        rule,
        replaced,
        warnings,
        dry_run: opts.dry_run,
        diff: None,
        backup: None,
        reload: None,
    };
    if let Some(old) = file.rules.iter().find(|r| identity(r, version) == id) {
        if full_key(old, version) == full {
            return Ok(report(
                false,
                AddAction::Unchanged,
                old.line,
                None,
                Some(rule_doc(old, show)),
                None,
                vec![],
            ));
        }
        if !spec.replace {
            return Err(Error::failed(format!(
                "a rule for the same type, database, user and address exists at {}:{} with method {}",
                old.file.display(),
                old.line,
                old.method
            ))
            .hint("use --replace to change it in place, or remove it first"));
        }
        if !file.is_own(old) {
            return Err(Error::failed(format!(
                "the rule to replace is in the included file {}",
                old.file.display()
            ))
            .hint(format!("edit it with -f {}", old.file.display())));
        }
        let rec = &file.tok.records[old.origin];
        if nr.comment.is_none() {
            nr.comment = old.comment().map(str::to_string);
        }
        let line = nr.render(&file.own_layout(old));
        let new_text = format!(
            "{}{}{}{}",
            &file.text[..rec.start],
            line,
            file.line_ending(rec.end),
            &file.text[rec.end..]
        );
        let newfile = file.reparse(&new_text);
        let new_rule = newfile
            .rules
            .iter()
            .find(|r| r.line == rec.line && newfile.is_own(r))
            .map(|r| rule_doc(r, show));
        let w = commit(&file, &new_text, opts)?;
        let mut out = report(
            true,
            AddAction::Replaced,
            rec.line,
            None,
            new_rule,
            Some(rule_doc(old, show)),
            vec![],
        );
        (out.diff, out.backup, out.reload) = (w.diff, w.backup, w.reload);
        return Ok(out);
    }
    // Where it goes.
    let (at, position) = match spec.placement {
        Placement::First => {
            match (0..file.tok.records.len()).find(|&i| file.tok.kinds[i] != Kind::Empty) {
                Some(i) => (file.offset_before(i), "first".to_string()),
                None => (file.text.len(), "first (the file has no rules)".to_string()),
            }
        }
        Placement::Before(l) => {
            let i = record_for(&file, l, "--before")?;
            (file.offset_before(i), format!("before line {l}"))
        }
        Placement::After(l) => {
            let i = record_for(&file, l, "--after")?;
            (file.tok.records[i].end, format!("after line {l}"))
        }
        Placement::Auto => match shadow::place_before(&file.rules, &rule, version) {
            Some((j, s)) => {
                let r = &file.rules[j];
                let at = format!("{}:{}", r.file.display(), r.line);
                let why = match s {
                    Shadow::By(_) => format!(
                        "before {at}, which matches every connection the new rule would and would shadow it"
                    ),
                    Shadow::Together(_) => format!(
                        "before {at}, the first of the rules that together match every connection the new rule would and would shadow it"
                    ),
                };
                (file.offset_before(r.origin), why)
            }
            None => (file.offset_end(), "after the last rule".to_string()),
        },
    };
    let line = nr.render(&file.layout_near(at));
    let (new_text, start) = file.insert(&file.text, at, &line);
    let at_line = line_number_at(&new_text, start);
    let newfile = file.reparse(&new_text);
    let idx = newfile
        .rules
        .iter()
        .position(|r| r.line == at_line && newfile.is_own(r));
    // The server must read the new line as the rule given, on its own line: never write a
    // file where it is swallowed by its neighbour (or read as something else).
    if idx.is_none_or(|i| full_key(&newfile.rules[i], version) != full) {
        return Err(Error::failed(format!(
            "cannot add the rule at {}:{at_line}",
            t.file.display()
        ))
        .because("PostgreSQL would not read it there as the rule given (a neighbouring line runs into it)")
        .hint("add it elsewhere with --before LINE or --after LINE"));
    }
    let mut warnings = Vec::new();
    if let Some(idx) = idx {
        let (before, new) = (&newfile.rules[..idx], &newfile.rules[idx]);
        if let Some(s) = shadow::shadow_of(before, new, version) {
            warnings.push(format!(
                "the new rule {}",
                crate::warnings::shadow_message(before, &s, "it")
            ));
        }
        if let Some(w) = crate::warnings::regex_before_16(new, version) {
            warnings.push(format!("the new rule's {w}"));
        }
    }
    let new_rule = idx.map(|i| rule_doc(&newfile.rules[i], show));
    let w = commit(&file, &new_text, opts)?;
    let mut out = report(
        true,
        AddAction::Added,
        at_line,
        Some(position),
        new_rule,
        None,
        warnings,
    );
    (out.diff, out.backup, out.reload) = (w.diff, w.backup, w.reload);
    Ok(out)
}
