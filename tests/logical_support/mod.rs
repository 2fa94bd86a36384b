//! Shared by tests/snap_logical.rs: the schema of issue 16 (foreign keys, sequences, a
//! partitioned and a TOAST-heavy table, an index and a trigger per table), databases on a
//! test cluster, and reading tables back for comparison.
#![allow(dead_code)]

use pgdr_testkit::{tool, Cluster, ToolCommand};

/// The schema: customers ← job_info (identity), events (partitioned, bigserial), documents
/// (TOAST-heavy); each with an index and a trigger that stamps `updated`.
pub const SCHEMA: &str = "
create function touch() returns trigger language plpgsql as $$
begin new.updated := coalesce(new.updated, '2020-01-01'); return new; end $$;
create table customers (id serial primary key, name text not null, updated timestamptz);
create index customers_name_idx on customers (name);
create trigger customers_touch before insert or update on customers
  for each row execute function touch();
create table job_info (
  id bigint generated always as identity primary key,
  customer_id int not null references customers (id),
  state text not null,
  updated timestamptz,
  constraint job_state_check check (state in ('new', 'running', 'done')));
create index job_info_customer_idx on job_info (customer_id);
create trigger job_info_touch before insert or update on job_info
  for each row execute function touch();
create table events (
  id bigserial, at date not null, customer_id int references customers (id),
  payload text, updated timestamptz, primary key (id, at)) partition by range (at);
create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');
create table events_2025 partition of events for values from ('2025-01-01') to ('2026-01-01');
create index events_customer_idx on events (customer_id);
create trigger events_touch before insert on events for each row execute function touch();
create table documents (
  id int primary key, customer_id int references customers (id), body text,
  updated timestamptz);
create index documents_customer_idx on documents (customer_id);
create trigger documents_touch before insert or update on documents
  for each row execute function touch();
";

/// Rows for the schema: 20 customers, 200 jobs, 300 events over two partitions, 12
/// documents of ~64 kB each (stored out of line, in TOAST).
pub const ROWS: &str = "
insert into customers (name) select 'customer ' || g from generate_series(1, 20) g;
insert into job_info (customer_id, state) select 1 + g % 20, 'new' from generate_series(1, 200) g;
insert into events (at, customer_id, payload)
  select date '2024-12-01' + g % 60, 1 + g % 20, 'event ' || g from generate_series(1, 300) g;
insert into documents (id, customer_id, body)
  select g, 1 + g % 20, (select string_agg(md5(g::text || i::text), '') from generate_series(1, 2000) i)
  from generate_series(1, 12) g;
";

/// A conninfo for database `db` of `c`.
pub fn conninfo(c: &Cluster, db: &str) -> String {
    format!(
        "host={} port={} user=postgres dbname={db}",
        c.sockdir.display(),
        c.port
    )
}

pub fn client(c: &Cluster, db: &str) -> postgres::Client {
    postgres::Client::connect(&conninfo(c, db), postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
}

/// Creates database `db` with the schema and its rows.
pub fn app(c: &Cluster, db: &str) {
    c.execute(&format!("create database {db}"));
    let mut k = client(c, db);
    k.batch_execute(SCHEMA).unwrap();
    k.batch_execute(ROWS).unwrap();
}

/// A table's rows as text, ordered: what a restore must reproduce exactly.
pub fn rows(c: &Cluster, db: &str, table: &str) -> Vec<String> {
    client(c, db)
        .query(&format!("select t::text from {table} t order by 1"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// One value.
pub fn value(c: &Cluster, db: &str, sql: &str) -> String {
    let rows = client(c, db).simple_query(sql).unwrap();
    rows.into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Every relation, constraint and trigger of a database with its definition: what "nothing
/// changed" compares.
pub fn catalog(c: &Cluster, db: &str) -> Vec<String> {
    client(c, db)
        .query(
            "select 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '') \
               from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' \
             union all select 'con ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) \
               from pg_constraint where connamespace = 'public'::regnamespace \
             union all select 'trg ' || tgrelid::regclass || ' ' || tgname from pg_trigger where not tgisinternal \
             union all select 'fn ' || p.oid::regprocedure from pg_proc p where pronamespace = 'public'::regnamespace \
             order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// snap-take with the test environment.
pub fn snap_take() -> ToolCommand {
    tool("snap-take")
}

/// snap-clone with a private clone registry.
pub fn snap_clone(registry: &std::path::Path) -> ToolCommand {
    tool("snap-clone").env("PGDR_CLONE_DIR", registry)
}
