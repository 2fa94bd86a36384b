//! What `set`, `unset` and `apply` will change, before anything is written: the new text of
//! each file and a report per parameter.
//!
//! postgresql.conf: a set edits the effective line in place (in whichever file of the tree
//! it is), else uncomments the commented-out sample line (keeping its trailing comment), else
//! appends; an unset comments out every active line of the name. Changes apply one after the
//! other, each seeing the ones before. postgresql.auto.conf (`--auto`): the file ALTER
//! SYSTEM would leave after the same SET/RESET statements.

use crate::doc::{Action, Change, Shadowed};
use crate::files::Files;
use crate::load::{self, Loaded};
use crate::parse::{self, Kind};
use crate::secrets::Masker;
use crate::{auto, edit};
use pgdr_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The changes to make, by file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// New text of each file that changes.
    pub texts: BTreeMap<String, String>,
    /// Text before, of every file read ("" for a file that does not exist yet).
    pub olds: BTreeMap<String, String>,
    /// Per parameter, in the order given (values masked as printed).
    pub changes: Vec<Change>,
    /// Changes a later postgresql.auto.conf overrides.
    pub shadowed: Vec<Shadowed>,
}

impl Plan {
    /// The files whose text changes.
    pub fn files(&self) -> Vec<String> {
        self.texts.keys().cloned().collect()
    }

    /// Whether anything changes.
    pub fn changed(&self) -> bool {
        !self.texts.is_empty()
    }
}

/// Plans `changes` (name, Some(value) to set, None to unset) for `files`.
///
/// # Errors
/// Exit 1: a file that cannot be read or has an error (nothing is planned on top of it),
/// postgresql.auto.conf that ALTER SYSTEM would refuse. Exit 2: invalid UTF-8.
pub fn plan(files: &Files, changes: &[(String, Option<String>)], masker: Masker) -> Result<Plan> {
    let mut plan = if files.conf.is_none() {
        plan_auto(files, changes, masker)?
    } else {
        plan_conf(files, changes, masker)?
    };
    plan.texts
        .retain(|f, t| plan.olds.get(f) != Some(t) || !Path::new(f).exists());
    Ok(plan)
}

fn plan_auto(files: &Files, changes: &[(String, Option<String>)], masker: Masker) -> Result<Plan> {
    let path = Path::new(&files.target);
    let old = if path.exists() {
        pgdr_core::fsx::read_text(path)?
    } else {
        String::new()
    };
    let before = auto::entries(&old)?;
    let refs: Vec<(&str, Option<&str>)> = changes
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_deref()))
        .collect();
    let new = if auto::is_noop(&old, &refs)? {
        old.clone()
    } else {
        auto::apply(&old, &refs)?
    };
    let new_file = parse::parse(&new);
    let mut plan = Plan::default();
    for (n, v) in changes {
        let same_name = |k: &String| k.eq_ignore_ascii_case(n);
        let old_v = before
            .iter()
            .rev()
            .find(|(k, _)| same_name(k))
            .map(|(_, v)| v.clone());
        let line = new_file
            .lines
            .iter()
            .find(|l| matches!(&l.kind, Kind::Setting { name, .. } if name.eq_ignore_ascii_case(n)))
            .map(|l| l.number)
            .unwrap_or(0);
        let once = before.iter().filter(|(k, _)| same_name(k)).count() == 1;
        let action = match (&old_v, v) {
            (Some(o), Some(nv)) if o == nv && once => Action::Unchanged,
            (_, Some(_)) => Action::Set,
            (Some(_), None) => Action::Removed,
            (None, None) => Action::Unchanged,
        };
        plan.changes.push(Change {
            name: n.clone(),
            action,
            old: old_v.map(|x| masker.text(&x)),
            new: v.as_deref().map(|x| masker.text(x)),
            file: files.target.clone(),
            line,
        });
    }
    plan.olds.insert(files.target.clone(), old);
    plan.texts.insert(files.target.clone(), new);
    Ok(plan)
}

fn plan_conf(files: &Files, changes: &[(String, Option<String>)], masker: Masker) -> Result<Plan> {
    let conf = files.conf.clone().expect("conf is set without --auto");
    let loaded = load::load(&conf, None, None)?;
    if let Some(e) = loaded.errors().next() {
        return Err(
            Error::failed(format!("{conf} has an error; nothing was changed"))
                .because(format!(
                    "{} line {}: {}",
                    e.file,
                    e.line,
                    e.error.as_deref().unwrap_or("")
                ))
                .hint("run 'conf-edit show' and fix the file first"),
        );
    }
    let mut plan = Plan::default();
    for (f, parsed) in &loaded.files {
        plan.olds.insert(f.clone(), parsed.text.clone());
    }
    let current = |plan: &Plan, f: &str| -> parse::File {
        parse::parse(
            plan.texts
                .get(f)
                .or_else(|| plan.olds.get(f))
                .map(String::as_str)
                .unwrap_or(""),
        )
    };
    for (n, v) in changes {
        // Re-resolve through the pending texts: an earlier change may have moved lines.
        let tree = overlay(&conf, &plan.texts)?;
        let mut reports: Vec<Change> = Vec::new();
        let mut report = |action, old: Option<String>, new: Option<&str>, file: &str, line| {
            reports.push(Change {
                name: n.clone(),
                action,
                old: old.map(|x| masker.text(&x)),
                new: new.map(|x| masker.text(x)),
                file: file.to_string(),
                line,
            })
        };
        let mut edits: Vec<(String, String)> = Vec::new();
        match v {
            Some(v) => {
                if let Some(e) = tree.effective(n) {
                    let file = current(&plan, &e.file);
                    let old_v = e.setting.clone();
                    if old_v.as_deref() == Some(v.as_str()) {
                        report(Action::Unchanged, old_v, Some(v), &e.file, e.line);
                    } else {
                        let line = edit::set_in_line(&file, e.line, v)
                            .expect("the effective entry is a setting line");
                        edits.push((e.file.clone(), edit::replace_line(&file, e.line, &line)));
                        report(Action::Edited, old_v, Some(v), &e.file, e.line);
                    }
                } else {
                    let file = current(&plan, &conf);
                    if let Some((num, line)) = edit::uncomment_candidate(&file, n, v) {
                        edits.push((conf.clone(), edit::replace_line(&file, num, &line)));
                        report(Action::Uncommented, None, Some(v), &conf, num);
                    } else {
                        let t = edit::append(&file.text, n, v);
                        let num = parse::parse(&t).lines.len() as u32;
                        edits.push((conf.clone(), t));
                        report(Action::Appended, None, Some(v), &conf, num);
                    }
                }
            }
            None => {
                let mut any = false;
                for f in tree.files.keys() {
                    let file = current(&plan, f);
                    let (t, lines) = edit::comment_out(&file, n);
                    for (num, old) in &lines {
                        any = true;
                        report(Action::CommentedOut, Some(old.clone()), None, f, *num);
                    }
                    if !lines.is_empty() {
                        edits.push((f.clone(), t));
                    }
                }
                if !any {
                    report(Action::Unchanged, None, None, &conf, 0);
                }
            }
        }
        plan.changes.extend(reports);
        plan.texts.extend(edits);
    }
    // A later postgresql.auto.conf entry wins over anything written here.
    if let Some(auto_path) = &files.auto {
        if let Ok(t) = load::read(auto_path) {
            let af = parse::parse(&t);
            for (n, v) in changes {
                if v.is_none() {
                    continue;
                }
                let last = af.effective_lines().filter(|l| matches!(&l.kind, Kind::Setting { name, .. } if name.eq_ignore_ascii_case(n))).last();
                if let Some(l) = last {
                    if let Kind::Setting { value, .. } = &l.kind {
                        plan.shadowed.push(Shadowed {
                            name: n.clone(),
                            file: auto_path.clone(),
                            line: l.number,
                            value: masker.text(value),
                        });
                    }
                }
            }
        }
    }
    Ok(plan)
}

/// Loads `conf` (no auto.conf), reading pending texts instead of the disk.
fn overlay(conf: &str, texts: &BTreeMap<String, String>) -> Result<Loaded> {
    if texts.is_empty() {
        return load::load(conf, None, None);
    }
    load::load_with(conf, None, None, texts)
}

/// How many settings the tree of `files` would have active after `plan` (postgresql.conf and
/// its includes, or postgresql.auto.conf alone), and before.
///
/// # Errors
/// As [`load::load_with`].
pub fn settings_before_and_after(files: &Files, plan: &Plan) -> Result<(usize, usize)> {
    let count = |l: &Loaded| {
        l.entries
            .iter()
            .filter(|e| e.error.is_none() && e.name.is_some())
            .count()
    };
    let top = files.conf.as_deref().unwrap_or(&files.target);
    let before = if Path::new(top).exists() {
        count(&load::load(top, None, None)?)
    } else {
        0
    };
    let after = if Path::new(top).exists() || plan.texts.contains_key(top) {
        count(&load::load_with(top, None, None, &plan.texts)?)
    } else {
        0
    };
    Ok((before, after))
}
