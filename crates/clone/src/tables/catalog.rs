//! What the target database has, asked before anything changes: which names exist, which
//! objects the restored tables need are there already, what the restoring role may do
//! (CREATE on the schemas, ownership of a table to replace and of the tables whose foreign
//! keys on it are kept), and what a replaced table carries that must outlive it (foreign
//! keys other tables hold on it, its owner and grants).

use super::plan::{Existing, OnConflict, Plan};
use super::select::{display, Name, Selection};
use super::sql::quote_ident;
use pgdr_core::conn::ConnParams;
use pgdr_core::{Error, Result};
use std::collections::{HashMap, HashSet};

/// The target database.
pub struct Target {
    pub client: postgres::Client,
    /// host, port, user, dbname (no password).
    pub describe: String,
    pub version: String,
    pub major: u32,
    pub database: String,
    pub user: String,
}

fn query_error(what: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |e| Error::failed(format!("cannot {what}")).because(pgdr_core::conn::error_text(&e))
}

/// The copies `--on-conflict rename` would make of the tables `asked` (as --table gives
/// them) under `stamp` that the target has already: `public.t_pgdr_STAMP` beside
/// `public.t`. An unqualified name is the table the target's search_path finds, as pg_dump
/// finds it in the temporary clone. Asked before a physical snapshot is cloned (its moment is
/// known from the recovery target), so a restore from the same moment twice is refused
/// before minutes of cloning, not after; the full plan still checks every name afterwards.
///
/// # Errors
/// The catalog cannot be read.
pub fn earlier_copies(client: &mut Target, asked: &[String], stamp: &str) -> Result<Vec<Name>> {
    let fail = query_error("read the target's catalog");
    let mut found = Vec::new();
    for a in asked {
        let (schema, table) = match super::sql::parse_qualified(a).as_deref() {
            Some([s, t]) => (Some(s.clone()), t.clone()),
            Some([t]) => (None, t.clone()),
            // Refused with its reason once the snapshot's tables are known.
            _ => continue,
        };
        let schema = match schema {
            Some(s) => s,
            None => {
                // pg_dump matches an unqualified --table with the default search_path
                // (expand_table_name_patterns RESETs it); this session's is kept empty.
                let mut tx = client.client.transaction().map_err(&fail)?;
                tx.batch_execute(
                    "SELECT pg_catalog.set_config('search_path', reset_val, true) \
                     FROM pg_catalog.pg_settings WHERE name = 'search_path'",
                )
                .map_err(&fail)?;
                let row = tx
                    .query_opt(
                        "SELECT n.nspname::text FROM pg_catalog.pg_class c \
                         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                         WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident($1))",
                        &[&table],
                    )
                    .map_err(&fail)?;
                tx.rollback().map_err(&fail)?;
                match row {
                    Some(r) => r.get(0),
                    None => continue,
                }
            }
        };
        let copy = (schema, super::plan::renamed(&table, stamp).0);
        let exists: bool = client
            .client
            .query_one(
                "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) \
                 IS NOT NULL",
                &[&copy.0, &copy.1],
            )
            .map_err(&fail)?
            .get(0);
        if exists && !found.contains(&copy) {
            found.push(copy);
        }
    }
    Ok(found)
}

/// Connects to the target database.
///
/// # Errors
/// It cannot be reached (a database that does not exist, authentication), or is of a major
/// pgdr does not know.
pub fn connect(dsn: &str) -> Result<Target> {
    let params = ConnParams::resolve(Some(dsn))?;
    let describe = params.describe();
    let mut client = params.connect().map_err(|e| {
        let hint = if e.to_string().contains("does not exist") {
            "create the database first (createdb), or name another with --into"
        } else {
            "check --into"
        };
        e.hint(hint)
    })?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int, \
             current_database()::text, current_user::text",
            &[],
        )
        .map_err(query_error("read the target's version"))?;
    // As pg_restore's script runs: every name pgdr reads back (pg_get_constraintdef) comes
    // schema-qualified, so it means the same whatever the script sets.
    client
        .batch_execute("SELECT pg_catalog.set_config('search_path', '', false)")
        .map_err(query_error("set up the session"))?;
    let num: i32 = row.get(1);
    let major = (num / 10000) as u32;
    if !(12..=18).contains(&major) {
        return Err(Error::failed(format!(
            "cannot restore into PostgreSQL {}",
            row.get::<_, String>(0)
        ))
        .because("pgdr knows PostgreSQL 12 to 18"));
    }
    Ok(Target {
        version: row.get(0),
        major,
        database: row.get(2),
        user: row.get(3),
        describe,
        client,
    })
}

/// A table to be replaced, as the target has it.
#[derive(Debug, Clone, Default)]
pub struct Replaced {
    pub table: Name,
    /// Every table of its tree (itself and its partitions), by OID.
    pub oids: Vec<u32>,
    /// Its owner (role name) and table-level grants, given back after the replace.
    pub owner: String,
    pub grants: Vec<String>,
}

/// A foreign key another table holds on a replaced table.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    /// The table that holds it, quoted for SQL, and as displayed.
    pub table_sql: String,
    pub table: String,
    pub name: String,
    /// pg_get_constraintdef(): `FOREIGN KEY (…) REFERENCES …` (with NOT VALID when it was).
    pub definition: String,
    pub validated: bool,
    pub references: String,
    /// Whether both sides are replaced: then the snapshot's definition makes it again.
    pub internal: bool,
}

/// What the precheck found.
#[derive(Debug, Default)]
pub struct Precheck {
    pub checks: Vec<String>,
    pub replaced: Vec<Replaced>,
    pub foreign_keys: Vec<ForeignKey>,
}

/// `schema.name` quoted for SQL.
pub fn sql_name(n: &Name) -> String {
    format!("{}.{}", quote_ident(&n.0), quote_ident(&n.1))
}

/// The names that exist, the support objects the target has, and (replace) the tables that
/// can be replaced with the names their drop frees.
///
/// # Errors
/// A catalog query fails.
pub fn existing(
    client: &mut postgres::Client,
    sel: &Selection,
    names: &[Name],
    mode: OnConflict,
) -> Result<Existing> {
    let fail = query_error("read the target's catalog");
    let schemas: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
    let rels: Vec<&str> = names.iter().map(|n| n.1.as_str()).collect();
    let mut ex = Existing::default();
    for row in client
        .query(
            "SELECT s, n, to_regclass(format('%I.%I', s, n)) IS NOT NULL, \
             to_regtype(format('%I.%I', s, n)) IS NOT NULL \
             FROM unnest($1::text[], $2::text[]) AS x(s, n)",
            &[&schemas, &rels],
        )
        .map_err(&fail)?
    {
        let n: Name = (row.get(0), row.get(1));
        if row.get::<_, bool>(2) {
            ex.relations.insert(n.clone());
        }
        if row.get::<_, bool>(3) {
            ex.types.insert(n);
        }
    }
    for s in &sel.support {
        let (sql, a, b): (&str, String, String) = match s.desc.as_str() {
            "SCHEMA" => (
                "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1 AND $2 = '')",
                s.tag.clone(),
                String::new(),
            ),
            "FUNCTION" | "PROCEDURE" | "AGGREGATE" => {
                let (f, args) = s.tag.split_once('(').unwrap_or((&s.tag, ")"));
                (
                    "SELECT to_regprocedure($1 || $2) IS NOT NULL",
                    format!("{}.{}(", quote_ident(&s.schema), quote_ident(f)),
                    args.to_string(),
                )
            }
            "TYPE" | "DOMAIN" => (
                "SELECT to_regtype(format('%I.%I', $1::text, $2::text)) IS NOT NULL",
                s.schema.clone(),
                s.tag.clone(),
            ),
            "SEQUENCE" => (
                "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) \
                 IS NOT NULL",
                s.schema.clone(),
                s.tag.clone(),
            ),
            "COLLATION" => (
                "SELECT EXISTS (SELECT FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace \
                 WHERE n.nspname = $1 AND c.collname = $2)",
                s.schema.clone(),
                s.tag.clone(),
            ),
            "EXTENSION" => (
                "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = $1 AND $2 = '')",
                s.tag.clone(),
                String::new(),
            ),
            _ => continue,
        };
        let has: bool = client.query_one(sql, &[&a, &b]).map_err(&fail)?.get(0);
        if has {
            ex.support.insert(s.id);
        }
    }
    if mode == OnConflict::Replace {
        for g in &sel.groups {
            if let Some((oid, kind)) = table_oid(client, &g.table)? {
                if kind == "r" || kind == "p" {
                    let freed = freed_by_drop(client, oid)?;
                    ex.replaceable.insert(g.table.clone(), freed);
                }
            }
        }
    }
    Ok(ex)
}

fn table_oid(client: &mut postgres::Client, t: &Name) -> Result<Option<(u32, String)>> {
    let row = client
        .query_opt(
            "SELECT c.oid, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&t.0, &t.1],
        )
        .map_err(query_error("read the target's catalog"))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// The tree of a table: itself and its partitions, recursively (OIDs).
const TREE: &str = "WITH RECURSIVE tree(oid) AS (SELECT $1::oid UNION \
    SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid)";

/// The names a DROP TABLE of `oid` frees: the table, its partitions, their indexes and the
/// sequences they own.
fn freed_by_drop(client: &mut postgres::Client, oid: u32) -> Result<HashSet<Name>> {
    let sql = format!(
        "{TREE} \
         SELECT n.nspname::text, c.relname::text FROM tree t JOIN pg_class c ON c.oid = t.oid \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
         UNION SELECT n.nspname::text, ic.relname::text FROM tree t JOIN pg_index x ON x.indrelid = t.oid \
           JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace \
         UNION SELECT n.nspname::text, s.relname::text FROM tree t JOIN pg_depend d ON d.refobjid = t.oid \
           AND d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_class'::regclass \
           AND d.deptype IN ('a', 'i') JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
           JOIN pg_namespace n ON n.oid = s.relnamespace"
    );
    let rows = client
        .query(&sql, &[&oid])
        .map_err(query_error("read the target's catalog"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn tree(client: &mut postgres::Client, oid: u32) -> Result<Vec<u32>> {
    let rows = client
        .query(&format!("{TREE} SELECT oid FROM tree"), &[&oid])
        .map_err(query_error("read the target's catalog"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Checks what the role may do and gathers what a replace must keep. `schemas`: the schemas
/// tables are restored into, each with whether the restore creates it.
///
/// # Errors
/// A missing privilege, a table to replace that the role does not own, a view on it, a
/// table holding a foreign key on it that the role does not own: one line naming it.
pub fn precheck(t: &mut Target, plan: &Plan, schemas: &[(String, bool)]) -> Result<Precheck> {
    let fail = query_error("read the target's catalog");
    let client = &mut t.client;
    let mut pc = Precheck::default();
    pc.checks.push(format!(
        "connected to {} as {} (PostgreSQL {})",
        t.describe, t.user, t.version
    ));
    let refuse = |what: String, why: String, hint: &str| {
        Err(Error::failed(format!("nothing was restored: {what}"))
            .because(why)
            .hint(hint.to_string()))
    };
    for (schema, created) in schemas {
        if *created {
            let ok: bool = client
                .query_one(
                    "SELECT has_database_privilege(current_database(), 'CREATE')",
                    &[],
                )
                .map_err(&fail)?
                .get(0);
            if !ok {
                return refuse(
                    format!("{} may not create schema {schema}", t.user),
                    format!("the target has no schema {schema} and the role lacks CREATE on database {}", t.database),
                    "create the schema first, or grant CREATE on the database",
                );
            }
            pc.checks.push(format!(
                "CREATE on database {} (for schema {schema})",
                t.database
            ));
            continue;
        }
        let row = client
            .query_opt(
                "SELECT has_schema_privilege(oid, 'CREATE') AND has_schema_privilege(oid, 'USAGE') \
                 FROM pg_namespace WHERE nspname = $1",
                &[schema],
            )
            .map_err(&fail)?;
        match row.map(|r| r.get::<_, bool>(0)) {
            Some(true) => pc.checks.push(format!("CREATE on schema {schema}")),
            Some(false) => {
                return refuse(
                    format!("{} may not create tables in schema {schema}", t.user),
                    format!("the role lacks CREATE (or USAGE) on schema {schema}"),
                    "GRANT CREATE, USAGE ON SCHEMA to the role, or restore as one that has it",
                )
            }
            None => {
                return refuse(
                    format!("the target has no schema {schema}"),
                    "the snapshot does not define it either".into(),
                    "create the schema first",
                )
            }
        }
    }
    let replaced: Vec<&Name> = plan.replace.iter().collect();
    let mut all_oids: Vec<u32> = Vec::new();
    for r in &replaced {
        let row = client
            .query_one(
                "SELECT c.oid, pg_has_role(c.relowner, 'USAGE'), c.relowner::regrole::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&r.0, &r.1],
            )
            .map_err(&fail)?;
        let oid: u32 = row.get(0);
        let owner: String = row.get(2);
        if !row.get::<_, bool>(1) {
            return refuse(
                format!("{} may not replace {}", t.user, display(r)),
                format!("it belongs to {owner}; replacing a table needs its ownership"),
                "restore as its owner (or a member of that role), or use --on-conflict rename",
            );
        }
        pc.checks
            .push(format!("owner of {} (role {owner})", display(r)));
        let oids = tree(client, oid)?;
        let grants = client
            .query(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END, \
                 a.privilege_type, a.is_grantable \
                 FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1 AND a.grantee <> c.relowner",
                &[&oid],
            )
            .map_err(&fail)?
            .iter()
            .map(|g| {
                format!(
                    "GRANT {} ON TABLE {} TO {}{}",
                    g.get::<_, String>(1),
                    sql_name(r),
                    g.get::<_, String>(0),
                    if g.get::<_, bool>(2) { " WITH GRANT OPTION" } else { "" }
                )
            })
            .collect();
        all_oids.extend(&oids);
        pc.replaced.push(Replaced {
            table: (*r).clone(),
            oids,
            owner,
            grants,
        });
    }
    if !pc.replaced.is_empty() {
        let views = client
            .query(
                "SELECT DISTINCT format('%I.%I', vn.nspname, v.relname), format('%I.%I', tn.nspname, tc.relname) \
                 FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid \
                 JOIN pg_class v ON v.oid = rw.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace \
                 JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
                 WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass \
                 AND d.refobjid = ANY($1) AND NOT v.oid = ANY($1)",
                &[&all_oids],
            )
            .map_err(&fail)?;
        if let Some(v) = views.first() {
            return refuse(
                format!("cannot replace {}", v.get::<_, String>(1)),
                format!(
                    "view {} depends on it, and a replace would have to drop it",
                    v.get::<_, String>(0)
                ),
                "drop and re-create the view around the restore, or use --on-conflict rename",
            );
        }
        pc.checks.push("no view depends on a replaced table".into());
        let fks = client
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname), n.nspname::text || '.' || c.relname::text, \
                 con.conname::text, pg_get_constraintdef(con.oid), con.convalidated, \
                 pg_has_role(c.relowner, 'USAGE'), con.conrelid = ANY($1), \
                 rn.nspname::text || '.' || rc.relname::text \
                 FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_class rc ON rc.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace \
                 WHERE con.contype = 'f' AND con.conparentid = 0 AND con.confrelid = ANY($1) \
                 ORDER BY 2, 3",
                &[&all_oids],
            )
            .map_err(&fail)?;
        for f in fks {
            let fk = ForeignKey {
                table_sql: f.get(0),
                table: f.get(1),
                name: f.get(2),
                definition: f.get(3),
                validated: f.get(4),
                internal: f.get(6),
                references: f.get(7),
            };
            if !fk.internal {
                if !f.get::<_, bool>(5) {
                    return refuse(
                        format!("cannot keep foreign key {} of {}", fk.name, fk.table),
                        format!(
                            "{} must drop and re-create it around the replace of {}, and does not own {}",
                            t.user, fk.references, fk.table
                        ),
                        "restore as a role that owns both tables, or use --on-conflict rename",
                    );
                }
                pc.checks.push(format!(
                    "owner of {}, which holds foreign key {} on {}",
                    fk.table, fk.name, fk.references
                ));
            }
            pc.foreign_keys.push(fk);
        }
    }
    Ok(pc)
}

/// The statements run before the restore's own (replace): the foreign keys on the replaced
/// tables dropped, then the tables.
pub fn before_replace(pc: &Precheck) -> Vec<String> {
    let mut v: Vec<String> = pc
        .foreign_keys
        .iter()
        .map(|f| {
            format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                f.table_sql,
                quote_ident(&f.name)
            )
        })
        .collect();
    v.extend(
        pc.replaced
            .iter()
            .map(|r| format!("DROP TABLE {}", sql_name(&r.table))),
    );
    v
}

/// The statements run after it: other tables' foreign keys created again (validated unless
/// they were NOT VALID), the replaced tables' owners and grants given back.
pub fn after_replace(pc: &Precheck, current_user: &str) -> Vec<String> {
    let mut v: Vec<String> = pc
        .foreign_keys
        .iter()
        .filter(|f| !f.internal)
        .map(|f| {
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                f.table_sql,
                quote_ident(&f.name),
                f.definition
            )
        })
        .collect();
    for r in &pc.replaced {
        if r.owner != current_user {
            v.push(format!(
                "ALTER TABLE {} OWNER TO {}",
                sql_name(&r.table),
                quote_ident(&r.owner)
            ));
        }
        v.extend(r.grants.iter().cloned());
    }
    v
}

/// The schemas the plan's tables go into, each with whether the restore creates it.
pub fn schemas_of(plan: &Plan, created_schemas: &HashSet<String>) -> Vec<(String, bool)> {
    let mut seen: HashMap<String, bool> = HashMap::new();
    for (_, to, _, _) in &plan.tables {
        seen.insert(to.0.clone(), created_schemas.contains(&to.0));
    }
    let mut v: Vec<(String, bool)> = seen.into_iter().collect();
    v.sort();
    v
}
