//! `apply -`: make the file's own rules equal to the rules of a `list` document, in order,
//! keeping the lines (and comments) of rules that stay, replacing in place what changed only
//! in method or options, and aligning new lines like their neighbours.
//!
//! Refused: a document with masked secrets (writing `********` back would lock users out or
//! worse), and one that would remove every rule of the file (an empty or cut-short document)
//! unless `allow_empty`.

use super::{commit, validate, ChangeOptions, Target};
use crate::doc::{ApplyReport, HbaList};
use crate::file::HbaFile;
use crate::layout::NewRule;
use crate::parse_line::Rule;
use crate::shadow::{full_key, identity};
use pgdr_core::{Error, Result};

/// Applies `input` (a `list` document) to `t`.
///
/// # Errors
/// Exit 2: a rule the server would reject. Exit 1: a masked option in the document, every
/// rule removed without `allow_empty`, the file has lines the server rejects, and
/// [`commit`]'s failures.
pub fn apply(
    t: &Target,
    input: &HbaList,
    allow_empty: bool,
    opts: &ChangeOptions,
) -> Result<ApplyReport> {
    if let Some((i, r)) = input
        .rules
        .iter()
        .enumerate()
        .find(|(_, r)| !r.masked.is_empty())
    {
        return Err(Error::failed(format!(
            "rules[{i}] ({}:{}) has a masked secret: {}",
            r.file,
            r.line,
            r.masked.join(", ")
        ))
        .because("its value was printed as ******** and writing that back would replace the secret")
        .hint("run the producing 'hba-edit list' with --show-secrets"));
    }
    let mut wanted: Vec<(NewRule, Rule)> = Vec::new();
    for (i, r) in input.rules.iter().enumerate() {
        let nr = r
            .to_new_rule()
            .map_err(|why| Error::usage(format!("rules[{i}] is malformed")).because(why))?;
        let rule = validate(&nr, t.version, &t.file).map_err(|e| {
            Error::usage(format!("rules[{i}]: PostgreSQL would reject this rule"))
                .because(e.why.unwrap_or_default())
        })?;
        wanted.push((nr, rule));
    }
    let file = t.load()?;
    super::refuse_errors(&file)?;
    let own: Vec<&Rule> = file.own_rules().collect();
    if wanted.is_empty() && !own.is_empty() && !allow_empty {
        return Err(Error::failed(format!(
            "the document on stdin would remove every rule of {} ({})",
            t.file.display(),
            own.len()
        ))
        .because("it has no rules: an empty or cut-short document")
        .hint("pass --allow-empty if an empty pg_hba.conf is really meant"));
    }
    let (new_text, counts) = edit(&file, &own, &wanted);
    let changed = new_text != file.text;
    let mut out = ApplyReport {
        file: t.file.display().to_string(),
        changed,
        added: counts.added,
        removed: counts.removed,
        replaced: counts.replaced,
        kept: counts.kept,
        dry_run: opts.dry_run,
        diff: None,
        backup: None,
        reload: None,
    };
    if changed {
        let w = commit(&file, &new_text, opts)?;
        (out.diff, out.backup, out.reload) = (w.diff, w.backup, w.reload);
    }
    Ok(out)
}

#[derive(Default)]
struct Counts {
    added: usize,
    removed: usize,
    replaced: usize,
    kept: usize,
}

/// The new text: a diff of the rule lists (Myers) turned into byte-range edits.
fn edit(file: &HbaFile, own: &[&Rule], wanted: &[(NewRule, Rule)]) -> (String, Counts) {
    let version = file.version;
    let old_keys: Vec<String> = own.iter().map(|r| full_key(r, version)).collect();
    let new_keys: Vec<String> = wanted.iter().map(|(_, r)| full_key(r, version)).collect();
    // (start, end, order, text): insertions sort before a removal at the same offset.
    let mut edits: Vec<(usize, usize, usize, String)> = Vec::new();
    let mut c = Counts::default();
    let mut seq = 0;
    let insert_at = |at: usize, nr: &NewRule, edits: &mut Vec<_>, seq: &mut usize| {
        let line = nr.render(&file.layout_near(at));
        *seq += 1;
        edits.push((at, at, *seq, line));
    };
    let point = |old_index: usize| -> usize {
        if old_index > 0 {
            file.tok.records[own[old_index - 1].origin].end
        } else if let Some(first) = own.first() {
            file.offset_before(first.origin)
        } else {
            file.offset_end()
        }
    };
    use similar::DiffOp;
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old_keys, &new_keys) {
        match op {
            DiffOp::Equal { len, .. } => c.kept += len,
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for r in &own[old_index..old_index + old_len] {
                    let (s, e) = file.removal_range(r.origin);
                    edits.push((s, e, usize::MAX, String::new()));
                    c.removed += 1;
                }
            }
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => {
                let at = point(old_index);
                for (nr, _) in &wanted[new_index..new_index + new_len] {
                    insert_at(at, nr, &mut edits, &mut seq);
                    c.added += 1;
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let olds = &own[old_index..old_index + old_len];
                let news = &wanted[new_index..new_index + new_len];
                let same_identity = old_len == new_len
                    && olds
                        .iter()
                        .zip(news)
                        .all(|(o, (_, n))| identity(o, version) == identity(n, version));
                if same_identity {
                    for (o, (nr, _)) in olds.iter().zip(news) {
                        let rec = &file.tok.records[o.origin];
                        let mut nr = nr.clone();
                        if nr.comment.is_none() {
                            nr.comment = o.comment().map(str::to_string);
                        }
                        let line = format!(
                            "{}{}",
                            nr.render(&file.own_layout(o)),
                            file.line_ending(rec.end)
                        );
                        edits.push((rec.start, rec.end, usize::MAX, line));
                        c.replaced += 1;
                    }
                } else {
                    // In the place of the first replaced line, below its comments.
                    let at = file.tok.records[olds[0].origin].start;
                    for (nr, _) in news {
                        insert_at(at, nr, &mut edits, &mut seq);
                        c.added += 1;
                    }
                    for r in olds {
                        let (s, e) = file.removal_range(r.origin);
                        edits.push((s, e, usize::MAX, String::new()));
                        c.removed += 1;
                    }
                }
            }
        }
    }
    edits.sort_by_key(|e| (e.0, e.2));
    let eol = if file.text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut new_text = String::with_capacity(file.text.len());
    let mut pos = 0;
    for (s, e, _, text) in edits {
        let s = s.max(pos);
        new_text.push_str(&file.text[pos..s]);
        if s == e {
            if !new_text.is_empty() && !new_text.ends_with('\n') {
                new_text.push_str(eol);
            }
            new_text.push_str(&text);
            new_text.push_str(eol);
        } else {
            new_text.push_str(&text);
        }
        pos = e.max(pos);
    }
    new_text.push_str(&file.text[pos..]);
    (new_text, c)
}
