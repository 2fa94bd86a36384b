//! Server oracles for tests/majors.rs (and any test of one major): a running server's own
//! account of a file compared with pgdr's reading of it: pg_hba_file_rules and
//! pg_file_settings on the whole fixture corpus, `pg_control_*()` and `pg_controldata` for
//! pg_control. (Over 600 lines: each oracle carries the rules of how its view shows what the
//! server read, per major; one file keeps each comparison whole.)

use pgdr_pgformat::control::{self, ControlData};
use pgdr_pgformat::Lsn;
use pgdr_testkit::majors::{client_bindir, server_bindir};
use pgdr_testkit::{run_ok, tool, Cluster};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub fn hba_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hba_edit")
}

pub fn conf_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conf_edit")
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => s.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| unquote(x.as_str().unwrap()))
        .collect()
}

/// The options column of pg_hba_file_rules (hbafuncs.c get_hba_options; hba.c before 15) for
/// a rule as `list` prints it; None where an ldapurl makes the server derive values.
fn view_options(rule: &Value) -> Option<BTreeSet<String>> {
    let method = rule["method"].as_str().unwrap();
    let mut o = BTreeMap::new();
    for (k, v) in rule["options"].as_object().unwrap() {
        o.insert(k.clone(), v.as_str().unwrap().to_string());
    }
    let mut out = BTreeSet::new();
    if o.contains_key("ldapurl") {
        return None;
    }
    if method == "gss" || method == "sspi" {
        if o.get("include_realm").is_none_or(|v| v == "1") {
            out.insert("include_realm=true".to_string());
        }
        if let Some(v) = o.get("krb_realm") {
            out.insert(format!("krb_realm={v}"));
        }
    }
    if let Some(v) = o.get("map") {
        out.insert(format!("map={v}"));
    }
    if method == "cert" {
        out.insert("clientcert=verify-full".into());
    } else if let Some(v) = o.get("clientcert") {
        // 13 also takes 1 (shown as verify-ca) and 0 or no-verify (off, not shown); 14+
        // refuse them, so they only get here on 13.
        match v.as_str() {
            "0" | "no-verify" => {}
            "1" => {
                out.insert("clientcert=verify-ca".into());
            }
            v => {
                out.insert(format!("clientcert={v}"));
            }
        }
    }
    if let Some(v) = o.get("pamservice") {
        out.insert(format!("pamservice={v}"));
    }
    if method == "ldap" {
        for k in [
            "ldapserver",
            "ldapport",
            "ldapscheme",
            "ldapprefix",
            "ldapsuffix",
            "ldapbasedn",
            "ldapbinddn",
            "ldapbindpasswd",
            "ldapsearchattribute",
            "ldapsearchfilter",
        ] {
            if let Some(v) = o.get(k) {
                out.insert(format!("{k}={v}"));
            }
        }
        if o.get("ldaptls").is_some_and(|v| v == "1") {
            out.insert("ldaptls=true".into());
        }
        if !o.is_empty() {
            // Every option parsed resets the scope to LDAP_SCOPE_SUBTREE.
            out.insert("ldapscope=2".into());
        }
    }
    if method == "radius" {
        for k in [
            "radiusservers",
            "radiussecrets",
            "radiusidentifiers",
            "radiusports",
        ] {
            if let Some(v) = o.get(k) {
                out.insert(format!("{k}={v}"));
            }
        }
    }
    Some(out)
}

struct ViewRow {
    /// The file the line is in: file_name (16+, where include directives exist), else None
    /// (the main file).
    file: Option<String>,
    line: i32,
    kind: Option<String>,
    database: Option<Vec<String>>,
    user: Option<Vec<String>>,
    address: Option<String>,
    netmask: Option<String>,
    method: Option<String>,
    options: Option<Vec<String>>,
    error: Option<String>,
}

fn view(c: &Cluster) -> Vec<ViewRow> {
    c.client()
        .query(
            &format!(
                "SELECT line_number, type, database, user_name, address, netmask, auth_method, \
                 options, error, {} FROM pg_hba_file_rules ORDER BY {}",
                if c.major() >= 16 {
                    "file_name"
                } else {
                    "NULL::text"
                },
                if c.major() >= 16 {
                    "rule_number, line_number"
                } else {
                    "line_number"
                },
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| ViewRow {
            line: r.get(0),
            kind: r.get(1),
            database: r.get(2),
            user: r.get(3),
            address: r.get(4),
            netmask: r.get(5),
            method: r.get(6),
            options: r.get(7),
            error: r.get(8),
            file: r.get(9),
        })
        .collect()
}

/// Whether the server rejects a line only because of how it was built (the npm packages of
/// 13, 14, 16, 17, 18 have no GSSAPI, LDAP or PAM): not the file's fault, and not something a
/// parser can know, so such a line is left out of the comparison.
fn build_specific(row: &ViewRow) -> bool {
    row.kind.is_none()
        && row
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not supported by this build"))
}

/// Swaps `text` into the running server's pg_hba.conf (the view reads the file on disk; the
/// loaded rules stay as they were since nothing reloads), and compares `list` and `check`.
fn compare_with_server(c: &Cluster, name: &str, text: &[u8]) -> usize {
    let path = c.data.join("pg_hba.conf");
    let saved = std::fs::read(&path).unwrap();
    std::fs::write(&path, text).unwrap();
    let rows = view(c);
    let path_s = path.to_str().unwrap();
    let list = tool("hba-edit")
        .args(["-f", path_s, "list", "--show-secrets"])
        .run()
        .ok()
        .json();
    let check = tool("hba-edit").args(["-f", path_s, "check"]).run();
    std::fs::write(&path, saved).unwrap();

    // Keyed by (file, line): lines of included files (16+) are numbered in their own file.
    let key = |v: &Value| {
        let file = v["file"].as_str().unwrap_or(path_s).to_string();
        (file, v["line"].as_i64().unwrap())
    };
    let rules: BTreeMap<(String, i64), &Value> = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (key(r), r))
        .collect();
    let errors: BTreeMap<(String, i64), &Value> = list["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (key(e), e))
        .collect();
    let mut seen = BTreeSet::new();
    let mut server_rejects = false;
    for row in &rows {
        let line = (
            row.file.clone().unwrap_or_else(|| path_s.to_string()),
            row.line as i64,
        );
        seen.insert(line.clone());
        let ctx = format!("{name}:{}:{}", line.0, line.1);
        if build_specific(row) {
            assert!(
                rules.contains_key(&line) || errors.contains_key(&line),
                "{ctx}: list does not show the line"
            );
            continue;
        }
        // A row without a type is a line the server rejects; a typed row with an error (hostssl
        // with ssl = off) still loads.
        if row.kind.is_none() {
            server_rejects = true;
            let e = errors.get(&line).unwrap_or_else(|| {
                panic!(
                    "{ctx}: server rejects it ({:?}); list: {:?}",
                    row.error,
                    rules.get(&line)
                )
            });
            if let Some(msg) = &row.error {
                if !msg.starts_with("hostssl record cannot match") {
                    assert_eq!(e["message"].as_str().unwrap(), msg, "{ctx}");
                }
            }
            continue;
        }
        let r = rules.get(&line).unwrap_or_else(|| {
            panic!(
                "{ctx}: server accepts it; list says {:?}",
                errors.get(&line)
            )
        });
        assert_eq!(r["type"].as_str(), row.kind.as_deref(), "{ctx} type");
        assert_eq!(
            Some(strings(&r["database"])),
            row.database,
            "{ctx} database"
        );
        assert_eq!(Some(strings(&r["user"])), row.user, "{ctx} user");
        assert_eq!(
            r["address"].as_str().map(str::to_string),
            row.address,
            "{ctx} address"
        );
        assert_eq!(
            r["netmask"].as_str().map(str::to_string),
            row.netmask,
            "{ctx} netmask"
        );
        assert_eq!(
            r["method"].as_str().map(str::to_string),
            row.method,
            "{ctx} method"
        );
        if let Some(expected) = view_options(r) {
            let got: BTreeSet<String> = row
                .options
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            assert_eq!(expected, got, "{ctx} options");
        }
    }
    for line in rules.keys().chain(errors.keys()) {
        assert!(
            seen.contains(line),
            "{name}:{line:?}: the server shows no such line"
        );
    }
    // check fails exactly when the server would refuse to load the file.
    let expect_fail = server_rejects || rows.iter().all(|r| r.kind.is_none() && !build_specific(r));
    assert_eq!(
        check.code,
        Some(if expect_fail { 1 } else { 0 }),
        "{name}: check {}",
        check.stdout
    );
    rows.len()
}

/// hba-edit `list` and `check` agree with `c`'s pg_hba_file_rules on every file of
/// tests/fixtures/hba_edit and on generated lines of every connection type, address form and
/// method.
pub fn hba_corpus_agrees(c: &Cluster) {
    for f in ["admins", "admins list"] {
        std::fs::copy(hba_fixtures().join(f), c.data.join(f)).unwrap();
    }
    copy_dir(&hba_fixtures().join("inc"), &c.data.join("inc"));
    let mut total = 0;
    let mut names: Vec<_> = std::fs::read_dir(hba_fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    names.sort();
    for n in &names {
        total += compare_with_server(c, n, &std::fs::read(hba_fixtures().join(n)).unwrap());
    }
    assert!(total >= 60, "the corpus has only {total} lines");
    // Generated cases: every connection type with every address form and method.
    let mut gen = String::new();
    for t in [
        "local",
        "host",
        "hostssl",
        "hostnossl",
        "hostgssenc",
        "hostnogssenc",
    ] {
        for a in [
            "",
            "10.0.0.0/8",
            "::1/128",
            "all",
            "samehost",
            "db.example",
            "10.1.2.3 255.255.0.0",
        ] {
            for m in [
                "trust",
                "reject",
                "md5",
                "scram-sha-256",
                "password",
                "peer",
                "ident",
                "gss",
                "cert",
                "pam",
            ] {
                let a = if t == "local" { "" } else { a };
                gen.push_str(&format!("{t} all all {a} {m}\n"));
            }
        }
    }
    compare_with_server(c, "generated", gen.as_bytes());
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

type Row = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
);

fn server_rows(c: &Cluster) -> Vec<(Row, bool)> {
    let mut client = c.client();
    let rows = client
        .query(
            "SELECT name, setting, sourcefile, sourceline, error, applied FROM pg_file_settings ORDER BY seqno",
            &[],
        )
        .unwrap();
    rows.iter()
        .map(|r| ((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)), r.get(5)))
        .collect()
}

/// conf-edit `show` agrees with `c`'s pg_file_settings on every file of
/// tests/fixtures/conf_edit (includes, include_dir, errors, every token form).
pub fn conf_corpus_agrees(c: &Cluster) {
    let conf = c.data.join("postgresql.conf");
    let original = std::fs::read(&conf).unwrap();
    copy_dir(&conf_fixtures().join("inc"), &c.data.join("inc"));
    let mut names: Vec<PathBuf> = std::fs::read_dir(conf_fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "{} fixtures", names.len());
    let mut failures = Vec::new();
    for f in &names {
        std::fs::write(&conf, std::fs::read(f).unwrap()).unwrap();
        // A restart-only parameter that the running server got from its old file and that this
        // file drops is reported against no file: server state, not file content.
        let (server, applied): (Vec<Row>, Vec<bool>) = server_rows(c)
            .into_iter()
            .filter(|(r, _)| {
                !(r.0.is_none()
                    && r.2.is_none()
                    && r.4.as_deref().is_some_and(|e| {
                        e.ends_with("cannot be changed without restarting the server")
                    }))
            })
            .unzip();
        let out = tool("conf-edit")
            .arg("-D")
            .arg(&c.data)
            .arg("show")
            .run()
            .ok();
        let doc = out.json();
        let entries = doc["entries"].as_array().unwrap();
        let s = |v: &Value| v.as_str().map(str::to_string);
        let mine: Vec<Row> = entries
            .iter()
            .map(|e| {
                (
                    s(&e["name"]),
                    s(&e["setting"]),
                    s(&e["file"]),
                    e["line"].as_i64().map(|l| l as i32),
                    s(&e["error"]),
                )
            })
            .collect();
        // The server cannot apply a bad value, or a restart-only parameter that differs from
        // the running one. show finds the first kind with the server binary and, reading the
        // files alone, not the second: every row it refuses must be one the server refuses.
        const NOT_APPLIED: &str = "setting could not be applied";
        let value_errors = server.iter().any(|r| r.4.as_deref() == Some(NOT_APPLIED));
        for (m, r) in mine.iter().zip(&server) {
            if m.4.as_deref() == Some(NOT_APPLIED) && r.4.as_deref() != Some(NOT_APPLIED) {
                failures.push(format!("{}: refused {m:?}, server {r:?}", f.display()));
            }
        }
        let strip = |rows: &[Row]| -> Vec<Row> {
            rows.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if r.4.as_deref() == Some(NOT_APPLIED) {
                        r.4 = None;
                    }
                    r
                })
                .collect()
        };
        let (server_cmp, mine) = (strip(&server), strip(&mine));
        if mine != server_cmp {
            failures.push(format!(
                "{}:\n  server: {server_cmp:?}\n  conf-edit: {mine:?}",
                f.display()
            ));
            continue;
        }
        let dotted = server
            .iter()
            .any(|r| r.0.as_deref().is_some_and(|n| n.contains('.')));
        if !value_errors && !dotted {
            let mine_applied: Vec<bool> = entries
                .iter()
                .map(|e| e["applied"].as_bool().unwrap())
                .collect();
            if mine_applied != applied {
                failures.push(format!(
                    "{}: applied differs: server {applied:?}, conf-edit {mine_applied:?}",
                    f.display()
                ));
            }
        }
    }
    std::fs::write(&conf, original).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// pgdr's reading of `c`'s pg_control against the server's own (`pg_control_*()`, which read
/// the same file) and against `pg_controldata` of that format where one is installed. The file
/// changes under a running server (checkpoints, restartpoints): a read counts when the server's
/// view was the same before and after it.
pub fn compare_control(c: &Cluster) {
    let sql = "select s.system_identifier, s.pg_control_version, s.catalog_version_no, \
               extract(epoch from s.pg_control_last_modified)::bigint, \
               k.checkpoint_lsn, k.redo_lsn, k.redo_wal_file, k.timeline_id, k.prev_timeline_id, \
               extract(epoch from k.checkpoint_time)::bigint, \
               r.min_recovery_end_lsn, r.min_recovery_end_timeline, r.backup_start_lsn, \
               r.backup_end_lsn, r.end_of_backup_record_required, \
               i.database_block_size, i.bytes_per_wal_segment, i.data_page_checksum_version \
               from pg_control_system() s, pg_control_checkpoint() k, pg_control_recovery() r, \
               pg_control_init() i";
    let server = || -> Vec<String> {
        let rows = c.client().simple_query(sql).unwrap();
        rows.iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap().to_string())
                        .collect(),
                ),
                _ => None,
            })
            .unwrap()
    };
    let (ctl, theirs) = (0..50)
        .find_map(|_| {
            let before = server();
            let ctl = control::parse(&std::fs::read(c.data.join("global/pg_control")).unwrap())
                .unwrap_or_else(|e| panic!("PostgreSQL {}: {e}", c.major()));
            let after = server();
            (before == after).then_some((ctl, after))
        })
        .expect("pg_control kept changing");
    let b = |v: bool| if v { "t" } else { "f" }.to_string();
    let mine = vec![
        ctl.system_identifier.to_string(),
        ctl.pg_control_version.to_string(),
        ctl.catalog_version.to_string(),
        ctl.time.to_string(),
        ctl.checkpoint_lsn.to_string(),
        ctl.redo_lsn.to_string(),
        ctl.redo_wal_file(),
        ctl.timeline.to_string(),
        ctl.prev_timeline.to_string(),
        ctl.checkpoint_time.to_string(),
        ctl.min_recovery_point.to_string(),
        ctl.min_recovery_point_timeline.to_string(),
        ctl.backup_start.to_string(),
        ctl.backup_end.to_string(),
        b(ctl.backup_end_required),
        ctl.block_size.to_string(),
        ctl.wal_segment_size.to_string(),
        ctl.data_checksum_version.to_string(),
    ];
    assert_eq!(
        mine,
        theirs,
        "PostgreSQL {}: pgdr vs pg_control_*()",
        c.major()
    );
    assert!(ctl.written_by(c.major()), "{ctl:?}");
    let wal_level = c.query_value("show wal_level").unwrap();
    assert_eq!(ctl.wal_level, if wal_level == "logical" { 2 } else { 1 });
    match controldata_for(ctl.pg_control_version) {
        Some(prog) => compare_controldata(c, &prog, &ctl),
        // 17's format (1700) is the one no installed pg_controldata reads: the npm package
        // has none, the distribution's is 15 (1300) and the client tools' 18 (1800).
        None => assert!(
            ctl.pg_control_version == 1700 || !pgdr_testkit::require_all(),
            "no pg_controldata for pg_control version {}: run `make deps`",
            ctl.pg_control_version
        ),
    }
}

/// A pg_controldata built for pg_control version `version`: the distribution's (15: 1300,
/// the format of 13 to 16) or 18's from the client tools (1800).
fn controldata_for(version: u32) -> Option<PathBuf> {
    [server_bindir(15).ok(), client_bindir().ok()]
        .into_iter()
        .flatten()
        .map(|d| d.join("pg_controldata"))
        .filter(|p| p.is_file())
        .find(|p| {
            pgdr_core::pgbin::program_major(p)
                .and_then(|m| {
                    control::LAYOUTS
                        .iter()
                        .find(|l| (l.first_major..=l.last_major).contains(&m))
                })
                .is_some_and(|l| l.version == version)
        })
}

/// The fields pg_controldata prints that pgdr reads, compared when the file did not change
/// while pg_controldata ran.
fn compare_controldata(c: &Cluster, prog: &Path, ctl: &ControlData) {
    let text = run_ok(
        pgdr_core::owner::command_as(&c.owner, prog)
            .arg("-D")
            .arg(&c.data)
            .env("LC_ALL", "C"),
    );
    let now = control::parse(&std::fs::read(c.data.join("global/pg_control")).unwrap()).unwrap();
    if &now != ctl {
        return compare_controldata(c, prog, &now);
    }
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {name:?} in:\n{text}"))
            .trim()
            .to_string()
    };
    let lsn = |name: &str| field(name).parse::<Lsn>().unwrap();
    let ctx = format!("PostgreSQL {} vs {}", c.major(), prog.display());
    assert_eq!(
        field("pg_control version number"),
        ctl.pg_control_version.to_string(),
        "{ctx}"
    );
    assert_eq!(
        field("Database system identifier"),
        ctl.system_identifier.to_string(),
        "{ctx}"
    );
    assert_eq!(
        lsn("Latest checkpoint location"),
        ctl.checkpoint_lsn,
        "{ctx}"
    );
    assert_eq!(
        lsn("Latest checkpoint's REDO location"),
        ctl.redo_lsn,
        "{ctx}"
    );
    assert_eq!(
        field("Latest checkpoint's TimeLineID"),
        ctl.timeline.to_string(),
        "{ctx}"
    );
    assert_eq!(
        lsn("Minimum recovery ending location"),
        ctl.min_recovery_point,
        "{ctx}"
    );
    assert_eq!(lsn("Backup start location"), ctl.backup_start, "{ctx}");
    assert_eq!(lsn("Backup end location"), ctl.backup_end, "{ctx}");
    let level = ["minimal", "replica", "logical"][ctl.wal_level as usize];
    assert_eq!(field("wal_level setting"), level, "{ctx}");
    assert_eq!(
        field("Bytes per WAL segment"),
        ctl.wal_segment_size.to_string(),
        "{ctx}"
    );
    assert_eq!(
        field("Database block size"),
        ctl.block_size.to_string(),
        "{ctx}"
    );
    assert_eq!(
        field("Data page checksum version"),
        ctl.data_checksum_version.to_string(),
        "{ctx}"
    );
}
