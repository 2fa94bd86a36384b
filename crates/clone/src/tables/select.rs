//! Which entries of pg_dump's table of contents belong to the tables a restore asks for:
//! their partitions, sequences, defaults, constraints, indexes, triggers, policies, rules,
//! statistics, comments and data, and which objects they need that the target may lack
//! (schemas, functions, types, sequences). Pure.
//!
//! An entry's table is read from its SQL, the way pg_dump writes it (src/bin/pg_dump/
//! pg_dump.c): `ALTER TABLE [ONLY] t …` for defaults and constraints, `CREATE INDEX i ON
//! [ONLY] t`, `CREATE TRIGGER n … ON t`, `ALTER SEQUENCE s OWNED BY t.c`, `ALTER TABLE t
//! ALTER COLUMN c ADD GENERATED … (SEQUENCE NAME s …)` for identity sequences, `ALTER TABLE
//! ONLY p ATTACH PARTITION c` — not from its dependencies, which for a foreign key list the
//! referenced table as well.

use super::doc::SkippedObject;
use super::sql;
use pgdr_core::{Error, Result};
use pgdr_snap::logical::toc::{Entry, Toc};
use std::collections::{HashMap, HashSet};

/// (schema, name).
pub type Name = (String, String);

/// `schema.name` for messages and reports (as PostgreSQL stores the names, unquoted).
pub fn display(n: &Name) -> String {
    format!("{}.{}", n.0, n.1)
}

/// A relation (or extended statistics object) a group creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rel {
    /// table, sequence, index, statistics.
    pub kind: &'static str,
    pub name: Name,
    /// The table it belongs to (None for a table).
    pub table: Option<Name>,
}

/// A per-table object (its name is unique per table only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obj {
    /// constraint, trigger, policy, rule.
    pub kind: &'static str,
    pub table: Name,
    pub name: String,
}

/// A table asked for with its partitions and everything that belongs to them.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub table: Name,
    /// Partitions, recursively.
    pub partitions: Vec<Name>,
    /// Dump IDs of its entries.
    pub entries: Vec<i32>,
    pub relations: Vec<Rel>,
    pub objects: Vec<Obj>,
}

/// An entry the restored objects need that the target may have already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    pub id: i32,
    /// pg_dump's kind (FUNCTION, TYPE, SCHEMA, …).
    pub desc: String,
    pub schema: String,
    pub tag: String,
}

/// A foreign key of a restored table on a table that is not restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFk {
    pub id: i32,
    pub table: Name,
    pub name: String,
    pub references: Name,
}

/// The entries that belong to the tables asked for.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub groups: Vec<Group>,
    /// What they need, to be created when the target lacks it.
    pub support: Vec<Support>,
    /// Foreign keys on tables that are not restored.
    pub outgoing: Vec<OutgoingFk>,
    pub skipped: Vec<SkippedObject>,
}

/// The kinds of objects a restore creates when the target lacks them (and leaves alone when
/// it has them).
const SUPPORT: &[&str] = &[
    "SCHEMA",
    "FUNCTION",
    "PROCEDURE",
    "AGGREGATE",
    "TYPE",
    "DOMAIN",
    "COLLATION",
    "SEQUENCE",
    "EXTENSION",
];

fn qnames(defn: &str) -> Vec<Name> {
    let toks = sql::significant(defn);
    sql::qualified_names(defn, &toks)
        .into_iter()
        .map(|q| (q.schema, q.name))
        .collect()
}

/// The qualified name right after the word `after` (e.g. REFERENCES, FROM, BY).
fn qname_after(defn: &str, after: &str) -> Option<Name> {
    let toks = sql::significant(defn);
    let q = sql::qualified_names(defn, &toks);
    let pos = toks.iter().position(|t| {
        t.kind == sql::Kind::Word && defn[t.start..t.end].eq_ignore_ascii_case(after)
    })?;
    q.into_iter()
        .find(|n| n.at == pos + 3)
        .map(|n| (n.schema, n.name))
}

/// The first per-table object name the entry's SQL gives (ADD CONSTRAINT name, CREATE
/// TRIGGER name, …).
fn first_object(defn: &str) -> Option<String> {
    let toks = sql::significant(defn);
    sql::object_names(defn, &toks)
        .into_iter()
        .next()
        .map(|n| n.0)
}

/// An entry's (schema, tag).
pub fn entry_name(e: &Entry) -> Name {
    (e.namespace.clone(), e.tag.clone())
}

/// The tables `asked` names (schema.table or table; unquoted names fold to lower case, as
/// in SQL), or every table that is not a partition when `asked` is empty.
///
/// # Errors
/// A name that matches no table of the snapshot, or tables of several schemas (usage).
pub fn resolve_tables(toc: &Toc, asked: &[String], snapshot: &str) -> Result<Vec<Name>> {
    let tables = toc.tables();
    let parts = partitions(toc);
    if asked.is_empty() {
        let children: HashSet<&Name> = parts.values().flatten().collect();
        return Ok(tables
            .iter()
            .filter(|t| !children.contains(t))
            .cloned()
            .collect());
    }
    let mut out = Vec::new();
    for a in asked {
        let p = sql::parse_qualified(a).ok_or_else(|| {
            // snap-take --logical takes pg_dump's patterns; a restore names its tables, so
            // that what it replaces or renames is never a surprise.
            let why = if a.contains(['*', '?']) {
                "--table takes a table's name, not a pattern (list the snapshot's tables with \
                 snap-take --list; without --table every table of the snapshot is restored)"
            } else {
                "give schema.table or table, quoting names as in SQL (public.\"Job\")"
            };
            Error::usage(format!("invalid --table {a:?}")).because(why)
        })?;
        let found: Vec<&Name> = match p.as_slice() {
            [s, t] => tables.iter().filter(|n| &n.0 == s && &n.1 == t).collect(),
            [t] => tables.iter().filter(|n| &n.1 == t).collect(),
            _ => Vec::new(),
        };
        match found.as_slice() {
            [one] => {
                if !out.contains(*one) {
                    out.push((*one).clone());
                }
            }
            [] => {
                let kind = toc
                    .entries
                    .iter()
                    .find(|e| {
                        e.desc != "TABLE" && e.desc.ends_with("VIEW") && p.last() == Some(&e.tag)
                    })
                    .map(|e| format!("; {} is a {}", a, e.desc.to_lowercase()))
                    .unwrap_or_default();
                return Err(not_found(&p, &tables, snapshot, &kind));
            }
            many => {
                return Err(
                    Error::usage(format!("--table {a} is ambiguous")).because(format!(
                        "{} match",
                        many.iter()
                            .map(|n| display(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                )
            }
        }
    }
    Ok(out)
}

/// No table `asked` (as parsed: unquoted parts already folded) in the snapshot. Names are
/// written as --table reads them, so a folded `sales.orderitems` is not shown against a
/// `Sales.OrderItems` that looks the same; a table that differs only in case is suggested.
fn not_found(asked: &[String], tables: &[Name], snapshot: &str, kind: &str) -> Error {
    let shown = asked
        .iter()
        .map(|p| sql_ident(p))
        .collect::<Vec<_>>()
        .join(".");
    let lower = |s: &str| s.to_lowercase();
    let near: Vec<&Name> = tables
        .iter()
        .filter(|n| match asked {
            [s, t] => lower(&n.0) == lower(s) && lower(&n.1) == lower(t),
            [t] => lower(&n.1) == lower(t),
            _ => false,
        })
        .collect();
    let hint = match near.as_slice() {
        [] => "see the snapshot's tables with snap-take --list".to_string(),
        many => format!(
            "unquoted names fold to lower case, as in SQL: {}",
            many.iter()
                .map(|n| {
                    let q = format!("{}.{}", sql::quote_ident(&n.0), sql::quote_ident(&n.1));
                    format!("--table '{}'", q.replace('\'', "'\\''"))
                })
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    };
    Error::failed(format!("no table {shown} in {snapshot}"))
        .because(format!("it holds {}{kind}", name_list(tables, 8)))
        .hint(hint)
}

/// `name` as --table reads it: bare when it reads back as itself, else double-quoted.
fn sql_ident(name: &str) -> String {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if bare {
        name.to_string()
    } else {
        sql::quote_ident(name)
    }
}

fn name_list(names: &[Name], max: usize) -> String {
    let mut v: Vec<String> = names
        .iter()
        .take(max)
        .map(|n| format!("{}.{}", sql_ident(&n.0), sql_ident(&n.1)))
        .collect();
    if names.len() > max {
        v.push(format!("and {} more", names.len() - max));
    }
    if v.is_empty() {
        "no tables".into()
    } else {
        v.join(", ")
    }
}

/// parent → partitions, from TABLE ATTACH entries (and `PARTITION OF` in older archives).
pub fn partitions(toc: &Toc) -> HashMap<Name, Vec<Name>> {
    let mut m: HashMap<Name, Vec<Name>> = HashMap::new();
    for e in &toc.entries {
        match e.desc.as_str() {
            "TABLE ATTACH" => {
                if let [parent, child, ..] = qnames(&e.defn).as_slice() {
                    m.entry(parent.clone()).or_default().push(child.clone());
                }
            }
            "TABLE" => {
                if let Some(parent) = qname_after(&e.defn, "of")
                    .filter(|_| e.defn.to_ascii_uppercase().contains("PARTITION OF"))
                {
                    m.entry(parent).or_default().push(entry_name(e));
                }
            }
            _ => {}
        }
    }
    m
}

/// The entries that belong to `tables` (and their partitions). Foreign keys on tables that
/// are not restored are kept (and listed in `outgoing`) when `keep_outgoing_fks`, else
/// skipped.
///
/// # Errors
/// A table that inherits from one not restored.
pub fn select(toc: &Toc, tables: &[Name], keep_outgoing_fks: bool) -> Result<Selection> {
    let parts = partitions(toc);
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<Name, usize> = HashMap::new();
    for t in tables {
        let gi = groups.len();
        let mut g = Group {
            table: t.clone(),
            ..Default::default()
        };
        group_of.insert(t.clone(), gi);
        let mut stack = vec![t.clone()];
        while let Some(p) = stack.pop() {
            for c in parts.get(&p).into_iter().flatten() {
                if group_of.insert(c.clone(), gi).is_none() {
                    g.partitions.push(c.clone());
                    stack.push(c.clone());
                }
            }
        }
        groups.push(g);
    }
    let table_ids: HashMap<i32, usize> = toc
        .entries
        .iter()
        .filter(|e| e.desc == "TABLE")
        .filter_map(|e| group_of.get(&entry_name(e)).map(|g| (e.dump_id, *g)))
        .collect();
    let mut sel = Selection::default();
    let mut included: HashMap<i32, usize> = HashMap::new();
    let mut owned_seq: HashMap<Name, usize> = HashMap::new();
    let mut indexes: HashMap<Name, usize> = HashMap::new();
    // Sequences first: their owners are named by later entries.
    for e in &toc.entries {
        match e.desc.as_str() {
            "SEQUENCE OWNED BY" => {
                if let Some(g) = qname_after(&e.defn, "by").and_then(|t| group_of.get(&t)) {
                    owned_seq.insert(entry_name(e), *g);
                    included.insert(e.dump_id, *g);
                }
            }
            "SEQUENCE"
                if e.defn
                    .trim_start()
                    .to_ascii_uppercase()
                    .starts_with("ALTER TABLE") =>
            {
                if let Some(g) = qnames(&e.defn).first().and_then(|t| group_of.get(t)) {
                    owned_seq.insert(entry_name(e), *g);
                }
            }
            _ => {}
        }
    }
    for e in &toc.entries {
        let subject = || qnames(&e.defn).into_iter().next();
        let g: Option<usize> = match e.desc.as_str() {
            "TABLE" => {
                let g = group_of.get(&entry_name(e)).copied();
                if let Some(gi) = g {
                    // A table that inherits from one not restored would join that table's
                    // inheritance tree in the target.
                    let foreign_parent = e.deps.iter().any(|d| {
                        toc.by_id(*d).is_some_and(|p| p.desc == "TABLE")
                            && !table_ids.contains_key(d)
                    });
                    if foreign_parent && e.defn.to_ascii_uppercase().contains("INHERITS") {
                        return Err(Error::failed(format!(
                            "cannot restore {} alone",
                            display(&entry_name(e))
                        ))
                        .because("it inherits from a table that is not restored")
                        .hint("restore its parent too (--table)"));
                    }
                    let grp = &mut groups[gi];
                    grp.relations.push(Rel {
                        kind: "table",
                        name: entry_name(e),
                        table: None,
                    });
                    let toks = sql::significant(&e.defn);
                    for (n, _) in sql::object_names(&e.defn, &toks) {
                        grp.objects.push(Obj {
                            kind: "constraint",
                            table: entry_name(e),
                            name: n,
                        });
                    }
                }
                g
            }
            "TABLE DATA" => group_of.get(&entry_name(e)).copied(),
            "SEQUENCE" | "SEQUENCE SET" => {
                let g = owned_seq.get(&entry_name(e)).copied();
                if let (Some(gi), "SEQUENCE") = (g, e.desc.as_str()) {
                    let owner = qname_after(&e.defn, "table")
                        .or_else(|| groups[gi].relations.first().map(|r| r.name.clone()));
                    groups[gi].relations.push(Rel {
                        kind: "sequence",
                        name: entry_name(e),
                        table: owner,
                    });
                }
                g
            }
            "DEFAULT" | "ROW SECURITY" => subject().and_then(|t| group_of.get(&t).copied()),
            "CONSTRAINT" | "CHECK CONSTRAINT" | "TRIGGER" | "POLICY" | "RULE" | "INDEX" => {
                let t = subject();
                let g = t.as_ref().and_then(|t| group_of.get(t).copied());
                if let (Some(gi), Some(t)) = (g, t) {
                    let kind = match e.desc.as_str() {
                        "CONSTRAINT" | "CHECK CONSTRAINT" => "constraint",
                        "TRIGGER" => "trigger",
                        "POLICY" => "policy",
                        "RULE" => "rule",
                        _ => "index",
                    };
                    let name = first_object(&e.defn).unwrap_or_else(|| e.tag.clone());
                    if kind == "index" || e.desc == "CONSTRAINT" {
                        let n = (e.namespace.clone(), name.clone());
                        indexes.insert(n.clone(), gi);
                        groups[gi].relations.push(Rel {
                            kind: "index",
                            name: n,
                            table: Some(t.clone()),
                        });
                    }
                    groups[gi].objects.push(Obj {
                        kind: if kind == "index" { "index" } else { kind },
                        table: t,
                        name,
                    });
                }
                g
            }
            "FK CONSTRAINT" => {
                let t = subject();
                let g = t.as_ref().and_then(|t| group_of.get(t).copied());
                match (g, t, qname_after(&e.defn, "references")) {
                    (Some(gi), Some(t), Some(r)) => {
                        let name = first_object(&e.defn).unwrap_or_default();
                        let inside = group_of.contains_key(&r);
                        if inside || keep_outgoing_fks {
                            if !inside {
                                sel.outgoing.push(OutgoingFk {
                                    id: e.dump_id,
                                    table: t.clone(),
                                    name: name.clone(),
                                    references: r,
                                });
                            }
                            groups[gi].objects.push(Obj {
                                kind: "constraint",
                                table: t,
                                name,
                            });
                            Some(gi)
                        } else {
                            sel.skipped.push(SkippedObject {
                                kind: e.desc.clone(),
                                name: format!("{} on {}", name, display(&t)),
                                reason: format!(
                                    "it references {}, which is not restored (the copy must not lock or depend on a live table)",
                                    display(&r)
                                ),
                            });
                            None
                        }
                    }
                    _ => None,
                }
            }
            "TABLE ATTACH" => match qnames(&e.defn).as_slice() {
                [p, c, ..] if group_of.contains_key(p) && group_of.contains_key(c) => {
                    group_of.get(c).copied()
                }
                _ => None,
            },
            "STATISTICS" => {
                let g = qname_after(&e.defn, "from").and_then(|t| group_of.get(&t).copied());
                if let Some(gi) = g {
                    groups[gi].relations.push(Rel {
                        kind: "statistics",
                        name: entry_name(e),
                        table: qname_after(&e.defn, "from"),
                    });
                }
                g
            }
            _ => None,
        };
        if let Some(gi) = g {
            included.insert(e.dump_id, gi);
        }
    }
    // Partition indexes are attached to their parent's only when both are restored.
    for e in toc.entries.iter().filter(|e| e.desc == "INDEX ATTACH") {
        if let [p, c, ..] = qnames(&e.defn).as_slice() {
            if let (Some(gi), true) = (indexes.get(c), indexes.contains_key(p)) {
                included.insert(e.dump_id, *gi);
            }
        }
    }
    // Comments on anything restored.
    for e in toc.entries.iter().filter(|e| e.desc == "COMMENT") {
        if let Some(gi) = e.deps.iter().find_map(|d| included.get(d).copied()) {
            included.insert(e.dump_id, gi);
        }
    }
    for e in &toc.entries {
        if let Some(gi) = included.get(&e.dump_id) {
            groups[*gi].entries.push(e.dump_id);
        }
    }
    // What the restored entries need, transitively, of the kinds a restore may create.
    let mut seen: HashSet<i32> = included.keys().copied().collect();
    let mut todo: Vec<i32> = toc
        .entries
        .iter()
        .filter(|e| included.contains_key(&e.dump_id) && e.desc != "FK CONSTRAINT")
        .flat_map(|e| e.deps.clone())
        .collect();
    while let Some(d) = todo.pop() {
        if !seen.insert(d) {
            continue;
        }
        let Some(e) = toc.by_id(d) else { continue };
        if !SUPPORT.contains(&e.desc.as_str()) {
            continue;
        }
        sel.support.push(Support {
            id: d,
            desc: e.desc.clone(),
            schema: e.namespace.clone(),
            tag: e.tag.clone(),
        });
        todo.extend(e.deps.iter().copied());
    }
    sel.support.sort_by_key(|s| s.id);
    sel.groups = groups;
    Ok(sel)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pgdr_snap::logical::toc::Entry;

    fn e(id: i32, desc: &str, tag: &str, defn: &str, deps: &[i32]) -> Entry {
        Entry {
            dump_id: id,
            had_dumper: desc == "TABLE DATA",
            table_oid: "0".into(),
            oid: "0".into(),
            tag: tag.into(),
            desc: desc.into(),
            section: 0,
            defn: defn.into(),
            drop_stmt: String::new(),
            copy_stmt: String::new(),
            namespace: if desc == "EXTENSION" {
                String::new()
            } else {
                "public".into()
            },
            tablespace: String::new(),
            tableam: String::new(),
            relkind: 0,
            owner: "postgres".into(),
            deps: deps.to_vec(),
            filename: (desc == "TABLE DATA").then(|| format!("{id}.dat")),
        }
    }

    /// The schema of the tests, as pg_dump 18 writes it.
    pub(crate) fn toc() -> Toc {
        let entries = vec![
            e(228, "FUNCTION", "trg_f()", "CREATE FUNCTION public.trg_f() RETURNS trigger LANGUAGE plpgsql AS $$ begin return new; end $$;", &[]),
            e(222, "TABLE", "child", "CREATE TABLE public.child (\n    id bigint NOT NULL,\n    parent_id integer NOT NULL,\n    CONSTRAINT positive CHECK ((id > 0))\n);", &[]),
            e(3356, "COMMENT", "CONSTRAINT positive ON child", "COMMENT ON CONSTRAINT positive ON public.child IS 'pos';", &[222]),
            e(221, "SEQUENCE", "child_id_seq", "CREATE SEQUENCE public.child_id_seq\n    START WITH 1;", &[222]),
            e(3357, "SEQUENCE OWNED BY", "child_id_seq", "ALTER SEQUENCE public.child_id_seq OWNED BY public.child.id;", &[221]),
            e(223, "TABLE", "m", "CREATE TABLE public.m (\n    id integer NOT NULL\n)\nPARTITION BY RANGE (id);", &[]),
            e(224, "TABLE", "m_1", "CREATE TABLE public.m_1 (\n    id integer CONSTRAINT m_id_not_null NOT NULL\n);", &[223]),
            e(220, "TABLE", "parent", "CREATE TABLE public.parent (\n    id integer NOT NULL\n);", &[]),
            e(219, "SEQUENCE", "parent_id_seq", "ALTER TABLE public.parent ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.parent_id_seq\n);", &[220]),
            e(3163, "TABLE ATTACH", "m_1", "ALTER TABLE ONLY public.m ATTACH PARTITION public.m_1 FOR VALUES FROM (0) TO (10);", &[224, 223]),
            e(3165, "DEFAULT", "child id", "ALTER TABLE ONLY public.child ALTER COLUMN id SET DEFAULT nextval('public.child_id_seq'::regclass);", &[221, 222]),
            e(3343, "TABLE DATA", "child", "", &[222]),
            e(3344, "TABLE DATA", "m_1", "", &[224]),
            e(3341, "TABLE DATA", "parent", "", &[220]),
            e(3358, "SEQUENCE SET", "child_id_seq", "SELECT pg_catalog.setval('public.child_id_seq', 100, true);", &[221]),
            e(3360, "SEQUENCE SET", "parent_id_seq", "SELECT pg_catalog.setval('public.parent_id_seq', 10, true);", &[219]),
            e(3176, "CONSTRAINT", "child child_pkey", "ALTER TABLE ONLY public.child\n    ADD CONSTRAINT child_pkey PRIMARY KEY (id);", &[222]),
            e(3178, "CONSTRAINT", "m m_pkey", "ALTER TABLE ONLY public.m\n    ADD CONSTRAINT m_pkey PRIMARY KEY (id);", &[223]),
            e(3181, "CONSTRAINT", "m_1 m_1_pkey", "ALTER TABLE ONLY public.m_1\n    ADD CONSTRAINT m_1_pkey PRIMARY KEY (id);", &[224, 3178]),
            e(3171, "CONSTRAINT", "parent parent_pkey", "ALTER TABLE ONLY public.parent\n    ADD CONSTRAINT parent_pkey PRIMARY KEY (id);", &[220]),
            e(3174, "INDEX", "child_parent_idx", "CREATE INDEX child_parent_idx ON public.child USING btree (parent_id);", &[222]),
            e(3186, "INDEX ATTACH", "m_1_pkey", "ALTER INDEX public.m_pkey ATTACH PARTITION public.m_1_pkey;", &[3178, 3181]),
            e(3192, "TRIGGER", "child child_trg", "CREATE TRIGGER child_trg BEFORE INSERT ON public.child FOR EACH ROW EXECUTE FUNCTION public.trg_f();", &[228, 222]),
            e(3190, "FK CONSTRAINT", "child child_parent_id_fkey", "ALTER TABLE ONLY public.child\n    ADD CONSTRAINT child_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.parent(id);", &[220, 222, 3171]),
        ];
        Toc {
            version: (1, 16, 0),
            dbname: "app".into(),
            server_version: "18.4".into(),
            pg_dump_version: "18.6".into(),
            entries,
        }
    }

    pub(crate) fn n(t: &str) -> Name {
        ("public".into(), t.into())
    }

    #[test]
    fn a_table_brings_what_belongs_to_it_and_nothing_of_others() {
        let t = toc();
        let sel = select(&t, &[n("child")], false).unwrap();
        let g = &sel.groups[0];
        assert_eq!(
            g.entries,
            [222, 3356, 221, 3357, 3165, 3343, 3358, 3176, 3174, 3192]
        );
        let rels: Vec<&str> = g.relations.iter().map(|r| r.name.1.as_str()).collect();
        assert_eq!(
            rels,
            ["child", "child_id_seq", "child_pkey", "child_parent_idx"]
        );
        // The foreign key to parent, which is not restored, is skipped and said so.
        assert_eq!(sel.skipped.len(), 1);
        assert!(sel.skipped[0].reason.contains("public.parent"));
        assert_eq!(sel.support[0].tag, "trg_f()");
        // With parent, the foreign key comes along; the identity sequence goes with parent.
        let sel = select(&t, &[n("child"), n("parent")], false).unwrap();
        assert!(sel.skipped.is_empty());
        assert!(sel.groups[0].entries.contains(&3190));
        assert_eq!(sel.groups[1].entries, [220, 219, 3341, 3360, 3171]);
        // A partitioned table brings its partitions, their keys and the index attachments.
        let sel = select(&t, &[n("m")], false).unwrap();
        assert_eq!(sel.groups[0].partitions, [n("m_1")]);
        assert_eq!(
            sel.groups[0].entries,
            [223, 224, 3163, 3344, 3178, 3181, 3186]
        );
        assert_eq!(
            resolve_tables(&t, &[], "s").unwrap(),
            [n("child"), n("m"), n("parent")]
        );
        assert!(resolve_tables(&t, &["nope".into()], "s").is_err());
        assert_eq!(
            resolve_tables(&t, &["Child".into()], "s").unwrap(),
            [n("child")]
        );
        // A pattern is a usage error that says so (snap-take's --table takes patterns).
        let e = resolve_tables(&t, &["public.ch*".into()], "s").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not a pattern"), "{e}");
    }

    #[test]
    fn a_name_that_folds_away_from_a_mixed_case_table_says_so() {
        let mut t = toc();
        let mut mixed = e(
            230,
            "TABLE",
            "OrderItems",
            "CREATE TABLE \"Sales\".\"OrderItems\" ();",
            &[],
        );
        mixed.namespace = "Sales".into();
        t.entries.push(mixed);
        let e = resolve_tables(&t, &["Sales.OrderItems".into()], "snap1")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "no table sales.orderitems in snap1: it holds public.child, public.m, public.m_1, \
             public.parent, \"Sales\".\"OrderItems\" (unquoted names fold to lower case, as in SQL: \
             --table '\"Sales\".\"OrderItems\"')"
        );
        // Quoted as suggested, it is found; a name with no near match points to --list.
        assert_eq!(
            resolve_tables(&t, &["\"Sales\".\"OrderItems\"".into()], "snap1").unwrap(),
            [("Sales".to_string(), "OrderItems".to_string())]
        );
        let e = resolve_tables(&t, &["nope".into()], "snap1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no table nope in snap1: it holds "), "{e}");
        assert!(
            e.ends_with("(see the snapshot's tables with snap-take --list)"),
            "{e}"
        );
    }
}
