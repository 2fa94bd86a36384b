//! What a table restore does, decided before anything changes from the entries that belong
//! to the tables ([`super::select`]) and what the target has: under which names everything is
//! created (`--on-conflict rename|fail|replace`), which needed objects are created because
//! the target lacks them, and which pg_dump files pg_restore reads. Pure: the target's
//! catalog comes in as data ([`Existing`]).

use super::doc::{RestoredObject, SkippedObject};
use super::select::{display, entry_name, Name, Rel, Selection, Support};
use super::sql::Renames;
use pgdr_core::{Error, Result};
use pgdr_snap::logical::toc::Toc;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How to treat names the target has already (--on-conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnConflict {
    /// Restore beside the existing table under new names.
    Rename,
    /// Change nothing when any name exists.
    Fail,
    /// Replace the existing table's definition and rows.
    Replace,
}

impl OnConflict {
    pub fn name(self) -> &'static str {
        match self {
            OnConflict::Rename => "rename",
            OnConflict::Fail => "fail",
            OnConflict::Replace => "replace",
        }
    }
}

/// What the target has, as the plan needs it.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// Relations (to_regclass finds them).
    pub relations: HashSet<Name>,
    /// Types (to_regtype finds them; every table has one).
    pub types: HashSet<Name>,
    /// Support entries (by dump ID) the target has.
    pub support: HashSet<i32>,
    /// Tables that can be replaced, each with the names its DROP frees (itself, its
    /// partitions, their indexes and owned sequences).
    pub replaceable: HashMap<Name, HashSet<Name>>,
}

/// What the restore will do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Dump IDs to restore, in TOC order.
    pub entries: Vec<i32>,
    pub renames: Renames,
    /// Per table asked for: (table, restored as, action, partitions as restored).
    pub tables: Vec<(Name, Name, &'static str, Vec<Name>)>,
    pub objects: Vec<RestoredObject>,
    pub skipped: Vec<SkippedObject>,
    /// Existing tables to drop first (replace).
    pub replace: Vec<Name>,
}

/// `old` with `_pgdr_<stamp>`, shortened to PostgreSQL's 63 bytes when longer: its first
/// bytes (on a character boundary), 8 hex digits of the SHA-256 of `old`, then the suffix.
/// Returns the name and whether it was shortened.
pub fn renamed(old: &str, stamp: &str) -> (String, bool) {
    const NAMEDATALEN: usize = 64;
    let suffix = format!("_pgdr_{stamp}");
    let full = format!("{old}{suffix}");
    if full.len() < NAMEDATALEN {
        return (full, false);
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(old.as_bytes());
    let tag: String = h.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let room = NAMEDATALEN - 1 - suffix.len() - 1 - tag.len();
    let mut cut = room.min(old.len());
    while !old.is_char_boundary(cut) {
        cut -= 1;
    }
    (format!("{}_{tag}{suffix}", &old[..cut]), true)
}

/// The names the catalog must be asked about: every relation and table of the groups, and
/// (for renames) the names they would get.
pub fn names_to_check(sel: &Selection, stamp: &str) -> Vec<Name> {
    let mut v = Vec::new();
    for g in &sel.groups {
        for r in &g.relations {
            v.push(r.name.clone());
            v.push((r.name.0.clone(), renamed(&r.name.1, stamp).0));
        }
    }
    v.extend(sel.outgoing.iter().map(|f| f.references.clone()));
    v.sort();
    v.dedup();
    v
}

fn kind_name(desc: &str) -> String {
    desc.to_lowercase()
}

/// Decides names and actions.
///
/// # Errors
/// `fail` and a name that exists; `rename` and a new name that exists too (restored from
/// the same moment before); `replace` and an existing name that is not the replaced table's;
/// a needed extension the target lacks.
pub fn decide(
    toc: &Toc,
    sel: &Selection,
    existing: &Existing,
    mode: OnConflict,
    stamp: &str,
) -> Result<Plan> {
    let mut plan = Plan {
        skipped: sel.skipped.clone(),
        ..Default::default()
    };
    let mut include: HashSet<i32> = HashSet::new();
    let mut problems: Vec<String> = Vec::new();
    for g in &sel.groups {
        let taken: Vec<&Rel> = g
            .relations
            .iter()
            .filter(|r| {
                existing.relations.contains(&r.name)
                    || (r.kind == "table" && existing.types.contains(&r.name))
            })
            .collect();
        let action: &'static str = match mode {
            _ if taken.is_empty() => "created",
            OnConflict::Fail => {
                problems.extend(
                    taken
                        .iter()
                        .map(|r| format!("{} {}", r.kind, display(&r.name))),
                );
                "created"
            }
            OnConflict::Rename => {
                for r in &g.relations {
                    let n = (r.name.0.clone(), renamed(&r.name.1, stamp).0);
                    if existing.relations.contains(&n) || existing.types.contains(&n) {
                        problems.push(format!(
                            "{} {} exists already (restored from this moment before?)",
                            r.kind,
                            display(&n)
                        ));
                    }
                }
                "renamed"
            }
            OnConflict::Replace => match existing.replaceable.get(&g.table) {
                Some(freed) => {
                    for r in taken.iter().filter(|r| !freed.contains(&r.name)) {
                        problems.push(format!(
                            "{} {} exists and is not {}'s",
                            r.kind,
                            display(&r.name),
                            display(&g.table)
                        ));
                    }
                    plan.replace.push(g.table.clone());
                    "replaced"
                }
                None => {
                    problems.extend(taken.iter().map(|r| {
                        format!(
                            "{} {} exists and there is no table {} to replace",
                            r.kind,
                            display(&r.name),
                            display(&g.table)
                        )
                    }));
                    "created"
                }
            },
        };
        let rename = action == "renamed";
        let new_name = |n: &str| {
            if rename {
                renamed(n, stamp)
            } else {
                (n.to_string(), false)
            }
        };
        if rename {
            for r in &g.relations {
                plan.renames
                    .relations
                    .insert(r.name.clone(), new_name(&r.name.1).0);
            }
            for o in &g.objects {
                plan.renames
                    .objects
                    .entry(o.table.clone())
                    .or_default()
                    .insert(o.name.clone(), new_name(&o.name).0);
            }
        }
        let target_of = |n: &Name| (n.0.clone(), new_name(&n.1).0);
        plan.tables.push((
            g.table.clone(),
            target_of(&g.table),
            action,
            g.partitions.iter().map(target_of).collect(),
        ));
        for r in &g.relations {
            let (to, shortened) = new_name(&r.name.1);
            plan.objects.push(RestoredObject {
                kind: r.kind.into(),
                schema: r.name.0.clone(),
                name: r.name.1.clone(),
                table: r.table.as_ref().map(|t| display(&target_of(t))),
                restored_as: to,
                action: action.into(),
                shortened,
            });
        }
        for o in g.objects.iter().filter(|o| o.kind != "index") {
            let (to, shortened) = new_name(&o.name);
            plan.objects.push(RestoredObject {
                kind: o.kind.into(),
                schema: o.table.0.clone(),
                name: o.name.clone(),
                table: Some(display(&target_of(&o.table))),
                restored_as: to,
                action: action.into(),
                shortened,
            });
        }
        include.extend(g.entries.iter().copied());
    }
    if !problems.is_empty() {
        let what = match mode {
            OnConflict::Fail => "names the restore would create exist in the target",
            _ => "the restore would collide with the target",
        };
        return Err(Error::failed(format!("nothing was restored: {what}"))
            .because(problems.join("; "))
            .hint(match mode {
                OnConflict::Fail => "use --on-conflict rename to restore beside them, or replace",
                OnConflict::Rename => "drop the earlier copy, or restore under another moment",
                OnConflict::Replace => "rename or drop those objects, or use --on-conflict rename",
            }));
    }
    let lacking: Vec<String> = sel
        .outgoing
        .iter()
        .filter(|f| !existing.relations.contains(&f.references))
        .map(|f| {
            format!(
                "foreign key {} of {} references {}, which the target lacks",
                f.name,
                display(&f.table),
                display(&f.references)
            )
        })
        .collect();
    if !lacking.is_empty() {
        return Err(Error::failed("nothing was restored: a replaced table would lose a foreign key")
            .because(lacking.join("; "))
            .hint("restore the referenced table too (--table), or use --on-conflict rename, which leaves such keys out"));
    }
    // What the target lacks is created; what it has is used.
    let mut lacking_ext = Vec::new();
    let mut created_support: Vec<&Support> = Vec::new();
    for s in &sel.support {
        if existing.support.contains(&s.id) {
            continue;
        }
        if s.desc == "EXTENSION" {
            lacking_ext.push(s.tag.clone());
            continue;
        }
        include.insert(s.id);
        created_support.push(s);
    }
    if !lacking_ext.is_empty() {
        return Err(Error::failed(
            "nothing was restored: the target lacks extensions the tables need",
        )
        .because(format!("no extension {}", lacking_ext.join(", ")))
        .hint("CREATE EXTENSION them in the target database first"));
    }
    // A sequence the restore creates gets its value too.
    let created_seqs: HashSet<Name> = created_support
        .iter()
        .filter(|s| s.desc == "SEQUENCE")
        .map(|s| (s.schema.clone(), s.tag.clone()))
        .collect();
    for e in &toc.entries {
        if e.desc == "SEQUENCE SET" && created_seqs.contains(&entry_name(e)) {
            include.insert(e.dump_id);
        }
        // A comment on a created object.
        if e.desc == "COMMENT"
            && e.deps
                .iter()
                .any(|d| created_support.iter().any(|s| s.id == *d))
        {
            include.insert(e.dump_id);
        }
    }
    for s in &created_support {
        plan.objects.push(RestoredObject {
            kind: kind_name(&s.desc),
            schema: s.schema.clone(),
            name: s.tag.clone(),
            table: None,
            restored_as: s.tag.clone(),
            action: "created".into(),
            shortened: false,
        });
    }
    for s in sel
        .support
        .iter()
        .filter(|s| existing.support.contains(&s.id))
    {
        if s.desc != "SCHEMA" {
            plan.skipped.push(SkippedObject {
                kind: s.desc.clone(),
                name: if s.schema.is_empty() {
                    s.tag.clone()
                } else {
                    format!("{}.{}", s.schema, s.tag)
                },
                reason: "the target has it already; the restored tables use the target's".into(),
            });
        }
    }
    let order: BTreeMap<usize, i32> = toc
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| include.contains(&e.dump_id))
        .map(|(i, e)| (i, e.dump_id))
        .collect();
    plan.entries = order.values().copied().collect();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::select::select;
    use crate::tables::select::tests::{n, toc};

    #[test]
    fn names_collide_rename_fail_or_replace() {
        let t = toc();
        let sel = select(&t, &[n("child")], false).unwrap();
        let mut ex = Existing::default();
        ex.relations.insert(n("child"));
        ex.types.insert(n("child"));
        ex.support.insert(228);
        let p = decide(&t, &sel, &ex, OnConflict::Rename, "20260321092837").unwrap();
        assert_eq!(p.tables[0].1, n("child_pgdr_20260321092837"));
        assert_eq!(p.tables[0].2, "renamed");
        assert_eq!(
            p.renames.relations[&n("child_pkey")],
            "child_pkey_pgdr_20260321092837"
        );
        assert_eq!(
            p.renames.objects[&n("child")]["positive"],
            "positive_pgdr_20260321092837"
        );
        assert!(!p.entries.contains(&228), "the target's function is used");
        assert!(p.skipped.iter().any(|s| s.kind == "FUNCTION"));
        assert!(p.entries.contains(&3343), "its data");
        let e = decide(&t, &sel, &ex, OnConflict::Fail, "x").unwrap_err();
        assert!(e.to_string().contains("table public.child"), "{e}");
        // Replace frees the table's own names; another table's index of the same name is a
        // collision.
        ex.replaceable.insert(
            n("child"),
            [n("child"), n("child_pkey"), n("child_id_seq")]
                .into_iter()
                .collect(),
        );
        let p = decide(&t, &sel, &ex, OnConflict::Replace, "x").unwrap();
        assert_eq!(p.replace, [n("child")]);
        assert!(p.renames.is_empty());
        ex.relations.insert(n("child_parent_idx"));
        let e = decide(&t, &sel, &ex, OnConflict::Replace, "x").unwrap_err();
        assert!(e.to_string().contains("child_parent_idx"), "{e}");
        // Restored once from this moment already: the new names are taken.
        let mut again = Existing::default();
        again.relations.insert(n("child"));
        again.relations.insert(n("child_pgdr_20260321092837"));
        let e = decide(&t, &sel, &again, OnConflict::Rename, "20260321092837").unwrap_err();
        assert!(
            e.to_string().contains("restored from this moment before"),
            "{e}"
        );
        // Without the function in the target, it is created.
        let mut empty = Existing::default();
        empty.relations.insert(n("child"));
        let p = decide(&t, &sel, &empty, OnConflict::Rename, "1").unwrap();
        assert!(p.entries.contains(&228));
        assert!(p
            .objects
            .iter()
            .any(|o| o.kind == "function" && o.action == "created"));
    }

    #[test]
    fn long_names_are_shortened_deterministically() {
        let (s, short) = renamed("job_info", "20260321092837");
        assert_eq!((s.as_str(), short), ("job_info_pgdr_20260321092837", false));
        let long = "a_table_name_that_is_quite_long_already_forty_five_x";
        let (s, short) = renamed(long, "20260321092837");
        assert!(short && s.len() <= 63, "{s} {}", s.len());
        assert!(s.ends_with("_pgdr_20260321092837"));
        assert_eq!(renamed(long, "20260321092837").0, s);
        let other = format!("{long}2");
        assert_ne!(renamed(&other, "20260321092837").0, s);
        let multibyte = "ééééééééééééééééééééééééééééééééééé";
        let (s, _) = renamed(multibyte, "20260321092837");
        assert!(s.len() <= 63);
    }
}
