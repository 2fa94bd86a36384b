//! hba-edit against a real PostgreSQL: real connections are the oracle for `match`, and
//! `--reload` is exercised on a running server. `list` and `check` against each major's own
//! `pg_hba_file_rules` on the whole corpus: tests/majors.rs (helpers in tests/oracle).
//!
//! Past 600 lines: one test per behaviour against a real server, with the connection oracle
//! they share.

use pgdr_hba::doc::{
    AddAction, AddReport, ApplyReport, CheckReport, HbaList, MatchReport, RemoveReport, RuleDoc,
    WarningKind,
};
use pgdr_testkit::{tool, Cluster};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn hba(args: &[&str]) -> pgdr_testkit::ToolOutput {
    tool("hba-edit").args(args).run()
}

/// `-f F [FLAGS] CMD --type host --database all --user app --address 10.1.0.0/16 [EXTRA]`:
/// the rule the editing test adds, replaces and removes.
fn app_rule<'a>(f: &'a str, flags: &[&'a str], cmd: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["-f", f];
    v.extend_from_slice(flags);
    v.push(cmd);
    v.extend_from_slice(&[
        "--type",
        "host",
        "--database",
        "all",
        "--user",
        "app",
        "--address",
        "10.1.0.0/16",
    ]);
    v.extend_from_slice(extra);
    v
}

fn psql(c: &Cluster, host: &str, db: &str, user: &str, replication: bool) -> (bool, String) {
    let mut conninfo = format!(
        "host={host} port={} dbname={db} user={user} sslmode=disable",
        c.port
    );
    if replication {
        conninfo.push_str(" replication=true");
    }
    let out = Command::new(c.bindir.join("psql"))
        .args([
            conninfo.as_str(),
            "-XAtc",
            if replication {
                "IDENTIFY_SYSTEM"
            } else {
                "select 1"
            },
        ])
        .env("PGPASSWORD", "pw")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn match_names_the_rule_the_server_uses() {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut c = Cluster::builder()
        .conf("log_connections = on")
        .conf(if ipv6 {
            "listen_addresses = '127.0.0.1,::1'"
        } else {
            "listen_addresses = '127.0.0.1'"
        })
        .start();
    c.execute(
        "CREATE ROLE grp; CREATE ROLE team;
         CREATE ROLE alice LOGIN PASSWORD 'pw'; CREATE ROLE bob LOGIN PASSWORD 'pw';
         CREATE ROLE carol LOGIN PASSWORD 'pw' IN ROLE grp; CREATE ROLE frank LOGIN PASSWORD 'pw' IN ROLE team;
         CREATE ROLE dave LOGIN PASSWORD 'pw'; CREATE ROLE rep LOGIN REPLICATION PASSWORD 'pw';",
    );
    for db in ["app", "bob", "team"] {
        c.execute(&format!("CREATE DATABASE {db}"));
    }
    let rules = "\
local   all         postgres                            trust
local   app         alice                               password
local   sameuser    all                                 password
local   all         +grp                                password
local   samerole    all                                 password
local   all         all                                 reject
host    replication rep         127.0.0.1/32            password
host    all         rep         127.0.0.1/32            reject
hostssl all         all         0.0.0.0/0               password
host    app         alice,bob   127.0.0.0/8             password
host    all         +grp        127.0.0.1 255.255.255.255 password
host    all         all         ::1/128                 password
host    postgres    all         samehost                password
";
    let path = c.data.join("pg_hba.conf");
    std::fs::write(&path, rules).unwrap();
    c.restart();
    let sock = c.sockdir.to_str().unwrap().to_string();
    let members: BTreeMap<&str, &str> = [("carol", "grp"), ("frank", "team")].into_iter().collect();
    let mut cases = vec![
        ("local", "app", "alice"),
        ("local", "bob", "bob"),
        ("local", "postgres", "carol"),
        ("local", "team", "frank"),
        ("local", "postgres", "bob"),
        ("127.0.0.1", "replication", "rep"),
        ("127.0.0.1", "postgres", "rep"),
        ("127.0.0.1", "app", "alice"),
        ("127.0.0.1", "postgres", "carol"),
        ("127.0.0.1", "postgres", "bob"),
        ("127.0.0.1", "app", "dave"),
    ];
    if ipv6 {
        cases.push(("::1", "app", "bob"));
        cases.push(("::1", "postgres", "carol"));
    } else {
        eprintln!("\n*** no IPv6 loopback here: ::1 cases not run ***\n");
    }
    for (host, db, user) in cases {
        let replication = db == "replication";
        let log_before = c.log_text().len();
        let (ok, err) = psql(
            &c,
            if host == "local" { &sock } else { host },
            db,
            user,
            replication,
        );
        let log = c.log_text()[log_before..].to_string();
        let mut args = vec![
            "-f",
            path.to_str().unwrap(),
            "match",
            "--database",
            db,
            "--user",
            user,
        ];
        if host == "local" {
            args.extend(["--type", "local"]);
        } else {
            args.extend(["--type", "host", "--address", host]);
        }
        let member = members.get(user).copied();
        let member_arg = member.unwrap_or("");
        args.extend(["--member-of", member_arg]);
        let m: MatchReport = hba(&args).ok().document();
        let ctx = format!("{host} {db} {user}: server ok={ok} {err} log={log}");
        assert!(m.decided, "{ctx}: {m:?}");
        if ok {
            // "connection authenticated: identity=... method=password (FILE:LINE)"
            let line: i64 = log
                .lines()
                .find_map(|l| l.split("pg_hba.conf:").nth(1))
                .and_then(|t| t.trim_end_matches(')').parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: no line in the server log"));
            assert_eq!(
                m.matched.as_ref().map(|r| r.line as i64),
                Some(line),
                "{ctx}: {m:?}"
            );
        } else if err.contains("rejects connection") {
            assert_eq!(
                m.matched.as_ref().map(|r| r.method.as_ref()),
                Some("reject"),
                "{ctx}: {m:?}"
            );
        } else {
            assert!(err.contains("no pg_hba.conf entry"), "{ctx}");
            assert!(m.matched.is_none(), "{ctx}: {m:?}");
        }
    }
    // Without --member-of, +grp depends on membership.
    let m = hba(&[
        "-f",
        path.to_str().unwrap(),
        "match",
        "--type",
        "local",
        "--database",
        "postgres",
        "--user",
        "carol",
    ])
    .ok()
    .document::<MatchReport>();
    assert!(!m.decided, "{m:?}");
    assert_eq!(m.depends_on[0].line, 4, "{m:?}");
}

#[test]
fn reload_puts_the_previous_file_back_when_the_server_rejects_it() {
    let c = Cluster::start();
    let path = c.data.join("pg_hba.conf");
    let p = path.to_str().unwrap();
    let before = std::fs::read(&path).unwrap();
    let dsn = c.conninfo();
    // oauth exists only from 18 on: told the wrong version, the tool accepts what the
    // server refuses.
    hba(&[
        "-f",
        p,
        "--pg-version",
        "18",
        "add",
        "--type",
        "host",
        "--database",
        "all",
        "--user",
        "x",
        "--address",
        "10.9.0.0/16",
        "--method",
        "oauth",
        "--option",
        "issuer=https://i",
        "--option",
        "scope=openid",
        "--reload",
        "--backup",
        "-d",
        &dsn,
    ])
    .expect_error(1, "hba-edit");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the previous file was not put back"
    );
    let baks: Vec<_> = std::fs::read_dir(&c.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bak"))
        .collect();
    assert!(baks.is_empty(), "a refused change left {baks:?}");
    // A good change is written and reloaded: the loaded rules now reject that user.
    let out = hba(&[
        "-f",
        p,
        "add",
        "--type",
        "local",
        "--database",
        "all",
        "--user",
        "blocked",
        "--method",
        "reject",
        "--first",
        "--reload",
        "-d",
        &dsn,
    ])
    .ok()
    .document::<AddReport>();
    assert!(out.reload.as_ref().is_some_and(|r| r.done), "{out:?}");
    c.execute("CREATE ROLE blocked LOGIN");
    let err = postgres::Client::connect(
        &format!(
            "host={} port={} user=blocked dbname=postgres",
            c.sockdir.display(),
            c.port
        ),
        postgres::NoTls,
    )
    .err()
    .expect("the reloaded rules should reject 'blocked'");
    assert!(format!("{err:?}").contains("rejects connection"), "{err:?}");
    // A server reading another file is refused before anything is written.
    let other = tempfile::tempdir().unwrap();
    let o = other.path().join("pg_hba.conf");
    std::fs::write(&o, "local all all trust\n").unwrap();
    hba(&[
        "-f",
        o.to_str().unwrap(),
        "add",
        "--type",
        "local",
        "--database",
        "x",
        "--user",
        "y",
        "--method",
        "reject",
        "--reload",
        "-d",
        &dsn,
    ])
    .expect_error(1, "hba-edit");
    assert_eq!(
        std::fs::read_to_string(&o).unwrap(),
        "local all all trust\n"
    );
}

const SAMPLE: &str = "\
# TYPE  DATABASE        USER            ADDRESS                 METHOD

# \"local\" is for Unix domain socket connections only
local   all             all                                     peer
# IPv4 local connections:
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             0.0.0.0/0               scram-sha-256  # everyone else
# IPv6 local connections:
host    all             all             ::1/128                 scram-sha-256
";

fn sample_file(dir: &Path) -> PathBuf {
    let p = dir.join("pg_hba.conf");
    std::fs::write(&p, SAMPLE).unwrap();
    p
}

#[test]
fn add_is_idempotent_placed_before_its_shadow_and_keeps_every_other_byte() {
    let d = tempfile::tempdir().unwrap();
    let p = sample_file(d.path());
    let f = p.to_str().unwrap();
    let add = [
        "-f",
        f,
        "add",
        "--type",
        "host",
        "--database",
        "replication",
        "--user",
        "replicator",
        "--address",
        "10.0.0.5",
        "--method",
        "scram-sha-256",
    ];
    let out: AddReport = hba(&add).ok().document();
    assert!(out.changed);
    // 0.0.0.0/0 would not shadow a replication rule: `all` does not cover `replication`.
    assert_eq!(
        out.position.as_deref(),
        Some("after the last rule"),
        "{out:?}"
    );
    let once = std::fs::read_to_string(&p).unwrap();
    assert!(once.starts_with(SAMPLE), "untouched lines changed:\n{once}");
    assert_eq!(
        &once[SAMPLE.len()..],
        "host    replication     replicator      10.0.0.5/32             scram-sha-256\n"
    );
    let again: AddReport = hba(&add).ok().document();
    assert!(!again.changed, "{again:?}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), once);

    // A rule that 0.0.0.0/0 would shadow goes just before it, above nothing it does not own.
    let out: AddReport = hba(&app_rule(f, &[], "add", &["--method", "md5"]))
        .ok()
        .document();
    assert_eq!(out.line, 7, "{out:?}");
    let text = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[6],
        "host    all             app             10.1.0.0/16             md5"
    );
    assert!(lines[7].contains("0.0.0.0/0"));
    // The server's verdict: the new rule is matched first for that client.
    let m = hba(&[
        "-f",
        f,
        "match",
        "--type",
        "host",
        "--database",
        "x",
        "--user",
        "app",
        "--address",
        "10.1.2.3",
    ])
    .ok()
    .document::<MatchReport>();
    assert_eq!(m.matched.as_ref().map(|r| r.line), Some(7), "{m:?}");

    // Same identity, other method: refused without --replace, replaced in place with it.
    let other = app_rule(f, &[], "add", &["--method", "scram-sha-256"]);
    hba(&other).expect_error(1, "hba-edit");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    let mut with_replace = other.clone();
    with_replace.push("--replace");
    let out: AddReport = hba(&with_replace).ok().document();
    assert_eq!(out.action, AddAction::Replaced);
    let replaced = std::fs::read_to_string(&p).unwrap();
    assert_eq!(
        replaced.lines().nth(6),
        Some("host    all             app             10.1.0.0/16             scram-sha-256")
    );
    assert_eq!(replaced.lines().count(), text.lines().count());

    // --dry-run shows a diff and writes nothing; remove takes it out again.
    let out: RemoveReport = hba(&app_rule(f, &[], "remove", &["--dry-run"]))
        .ok()
        .document();
    assert!(
        out.diff
            .as_deref()
            .unwrap()
            .contains("-host    all             app"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), replaced);
    let out: RemoveReport = hba(&app_rule(f, &[], "remove", &["--backup"]))
        .ok()
        .document();
    assert_eq!(out.removed.len(), 1);
    assert_eq!(
        std::fs::read_to_string(out.backup.as_deref().unwrap()).unwrap(),
        replaced
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), once);
    let out: RemoveReport = hba(&app_rule(f, &[], "remove", &[])).ok().document();
    assert!(!out.changed);

    // A rule the server would reject is refused before anything is written.
    hba(&[
        "-f",
        f,
        "add",
        "--type",
        "host",
        "--database",
        "all",
        "--user",
        "x",
        "--address",
        "10.0.0.0/8",
        "--method",
        "peer",
    ])
    .expect_error(2, "hba-edit");
    hba(&[
        "-f",
        f,
        "add",
        "--type",
        "host",
        "--database",
        "all",
        "--user",
        "x",
        "--address",
        "db.example.com/32",
        "--method",
        "md5",
    ])
    .expect_error(2, "hba-edit");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), once);
}

#[test]
fn apply_makes_the_rules_equal_and_keeps_comments_of_kept_rules() {
    let d = tempfile::tempdir().unwrap();
    let p = sample_file(d.path());
    let f = p.to_str().unwrap();
    // list | apply on the same file changes nothing.
    let listed = hba(&["-f", f, "list"]).ok().stdout;
    let out = tool("hba-edit")
        .args(["-f", f, "apply", "-"])
        .stdin(listed.clone())
        .run()
        .ok()
        .document::<ApplyReport>();
    assert!(!out.changed, "{out:?}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), SAMPLE);
    // Another file gets exactly these rules.
    let new = d.path().join("new");
    std::fs::create_dir(&new).unwrap();
    let np = new.join("pg_hba.conf");
    std::fs::write(
        &np,
        "# mine\nlocal all all trust # keep?\nhost all all ::1/128 scram-sha-256  # v6 stays\n",
    )
    .unwrap();
    let out = tool("hba-edit")
        .args(["-f", np.to_str().unwrap(), "apply", "-"])
        .stdin(listed.clone())
        .run()
        .ok()
        .document::<ApplyReport>();
    assert!(out.changed, "{out:?}");
    let a = pgdr_core::doc::parse::<HbaList>(&listed)
        .unwrap()
        .rules
        .to_vec();
    let b = hba(&["-f", np.to_str().unwrap(), "list"])
        .ok()
        .document::<HbaList>()
        .rules
        .to_vec();
    let strip = |v: &[RuleDoc<'static>]| -> Vec<RuleDoc<'static>> {
        v.iter()
            .map(|r| RuleDoc {
                file: "".into(),
                line: 0,
                comment: None,
                ..r.clone()
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    let text = std::fs::read_to_string(&np).unwrap();
    assert!(text.contains("# v6 stays"), "{text}");
    assert!(text.starts_with("# mine\n"), "{text}");
    // Malformed input changes nothing.
    tool("hba-edit")
        .args(["-f", np.to_str().unwrap(), "apply", "-"])
        .stdin("{\"rules\": [{\"type\": \"host\"")
        .run()
        .expect_error(2, "hba-edit");
    tool("hba-edit")
        .args(["-f", np.to_str().unwrap(), "apply", "-"])
        .stdin(r#"{"tool": "hba-edit", "file": "/x", "pg_version": 15, "rules": [{"file": "/x", "line": 1, "type": "host", "database": ["all"], "user": ["all"], "address": "10.0.0.0", "netmask": "255.0.0.0", "method": "peer", "options": {}, "comment": null, "masked": []}], "errors": []}"#)
        .run()
        .expect_error(2, "hba-edit");
    assert_eq!(std::fs::read_to_string(&np).unwrap(), text);
}

#[test]
fn bad_inputs_fail_clearly_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope.conf");
    hba(&["-f", missing.to_str().unwrap(), "list"]).expect_error(1, "hba-edit");
    hba(&["-f", d.path().to_str().unwrap(), "list"]).expect_error(1, "hba-edit");
    let bad = d.path().join("bad.conf");
    std::fs::write(&bad, b"local all all trust\n\xff\xfe\n").unwrap();
    hba(&["-f", bad.to_str().unwrap(), "list"]).expect_error(2, "hba-edit");
    hba(&[
        "-f",
        bad.to_str().unwrap(),
        "add",
        "--type",
        "local",
        "--database",
        "a",
        "--user",
        "b",
        "--method",
        "trust",
    ])
    .expect_error(2, "hba-edit");
    assert_eq!(
        std::fs::read(&bad).unwrap(),
        b"local all all trust\n\xff\xfe\n"
    );
    if !pgdr_testkit::is_root() {
        let unreadable = d.path().join("unreadable.conf");
        std::fs::write(&unreadable, "local all all trust\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
        hba(&["-f", unreadable.to_str().unwrap(), "list"]).expect_error(1, "hba-edit");
    } else {
        eprintln!("running as root: an unreadable file cannot be made; that case is not run");
    }
    // A 1 MB line: read, reported as the server would, and no edit on top of it.
    let big = d.path().join("big.conf");
    let mut text = String::from("local all all trust\n");
    text.push_str(&"x".repeat(1 << 20));
    text.push('\n');
    std::fs::write(&big, &text).unwrap();
    let out: HbaList = hba(&["-f", big.to_str().unwrap(), "list"]).ok().document();
    assert_eq!(out.errors[0].line, Some(2));
    hba(&["-f", big.to_str().unwrap(), "check"]).expect_code(1);
    hba(&[
        "-f",
        big.to_str().unwrap(),
        "add",
        "--type",
        "local",
        "--database",
        "a",
        "--user",
        "b",
        "--method",
        "trust",
    ])
    .expect_error(1, "hba-edit");
    assert_eq!(std::fs::read_to_string(&big).unwrap(), text);
    // Usage errors.
    hba(&[
        "-f",
        big.to_str().unwrap(),
        "add",
        "--type",
        "bogus",
        "--database",
        "a",
        "--user",
        "b",
        "--method",
        "trust",
    ])
    .expect_error(2, "hba-edit");
    hba(&[
        "-f",
        big.to_str().unwrap(),
        "match",
        "--type",
        "host",
        "--database",
        "a",
        "--user",
        "b",
    ])
    .expect_error(2, "hba-edit");
    tool("hba-edit")
        .args(["list"])
        .run()
        .expect_error(2, "hba-edit");
    hba(&["-f", big.to_str().unwrap(), "--pg-version", "9", "list"]).expect_error(2, "hba-edit");
}

/// Issue 18, item 3: `--reload` connects before it writes (a closed port leaves the file as
/// it was) and, without -d, uses the PG* environment as libpq does.
#[test]
fn reload_connects_first_and_uses_the_environment() {
    let c = Cluster::start();
    let path = c.data.join("pg_hba.conf");
    let p = path.to_str().unwrap();
    let before = std::fs::read(&path).unwrap();
    let closed = pgdr_testkit::free_port();
    let rule = [
        "-f",
        p,
        "add",
        "--type",
        "local",
        "--database",
        "all",
        "--user",
        "nobody1",
        "--method",
        "reject",
        "--reload",
    ];
    let mut args = rule.to_vec();
    let dsn = format!("host=127.0.0.1 port={closed} user=postgres dbname=postgres");
    args.extend(["-d", &dsn]);
    let out = hba(&args).expect_error(1, "hba-edit");
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "written before connecting"
    );
    // No -d: PGHOST, PGPORT, PGUSER, PGDATABASE.
    let out: AddReport = tool("hba-edit")
        .args(rule)
        .env("PGHOST", &c.sockdir)
        .env("PGPORT", c.port.to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        .run()
        .ok()
        .document();
    assert!(out.reload.is_some_and(|r| r.done));
    assert_ne!(std::fs::read(&path).unwrap(), before);
}

/// Issue 18, item 2: a secret shown masked is never written back; with --show-secrets it is.
#[test]
fn masked_secrets_are_not_written_back() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src.conf");
    std::fs::write(
        &src,
        "local all all peer\nhost all all 10.0.0.0/8 ldap ldapserver=ldap.example ldapbasedn=\"dc=example\" ldapbinddn=cn=pg ldapbindpasswd=s3cret ldapsearchattribute=uid\n",
    )
    .unwrap();
    let dst = d.path().join("dst.conf");
    std::fs::write(&dst, "local all all trust\n").unwrap();
    let s = src.to_str().unwrap();
    let listed = hba(&["-f", s, "list"]).ok();
    assert!(!listed.stdout.contains("s3cret"), "{}", listed.stdout);
    let doc: HbaList = listed.document();
    let rules = doc.rules.to_vec();
    assert_eq!(rules[1].masked, ["ldapbindpasswd"]);
    assert_eq!(
        rules[1]
            .options
            .0
            .iter()
            .find(|(k, _)| k == "ldapbindpasswd")
            .map(|(_, v)| v.as_ref()),
        Some("********")
    );
    let out = tool("hba-edit")
        .args(["-f", dst.to_str().unwrap(), "apply", "-"])
        .stdin(listed.stdout)
        .run()
        .expect_error(1, "hba-edit");
    assert!(out.stderr.contains("ldapbindpasswd"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&dst).unwrap(),
        "local all all trust\n"
    );
    let clear = hba(&["-f", s, "--show-secrets", "list"]).ok();
    let doc: HbaList = clear.document();
    assert!(doc.rules.to_vec()[1].masked.is_empty());
    tool("hba-edit")
        .args(["-f", dst.to_str().unwrap(), "apply", "-"])
        .stdin(clear.stdout)
        .run()
        .ok();
    assert!(std::fs::read_to_string(&dst)
        .unwrap()
        .contains("ldapbindpasswd=s3cret"));
}

/// Issue 18, item 5: an `apply -` that would remove every rule is refused without
/// --allow-empty.
#[test]
fn apply_of_an_empty_document_is_refused_without_allow_empty() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty.conf");
    std::fs::write(&empty, "# nothing here yet\n").unwrap();
    let p = sample_file(d.path());
    let f = p.to_str().unwrap();
    let listed = hba(&["-f", empty.to_str().unwrap(), "list"]).ok().stdout;
    let out = tool("hba-edit")
        .args(["-f", f, "apply", "-"])
        .stdin(listed.clone())
        .run()
        .expect_error(1, "hba-edit");
    assert!(out.stderr.contains("--allow-empty"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), SAMPLE);
    let out: ApplyReport = tool("hba-edit")
        .args(["-f", f, "apply", "-", "--allow-empty"])
        .stdin(listed)
        .run()
        .ok()
        .document();
    assert_eq!(out.removed, 4, "{out:?}");
    let left: HbaList = hba(&["-f", f, "list"]).ok().document();
    assert!(left.rules.is_empty());
}

/// Issue 18, item 7: the IPv4 and IPv6 catch-alls together shadow `samenet`: `check` says so,
/// and `add` puts the rule where the server uses it (real connections from 127.0.0.1 and ::1
/// get in without a password).
#[test]
fn rules_shadowed_together_are_reported_and_add_places_before_them() {
    pgdr_testkit::skip_unless!(std::net::TcpListener::bind("[::1]:0")
        .map_err(|e| pgdr_testkit::Unavailable(format!("no IPv6 loopback (::1): {e}"))));
    let c = Cluster::builder()
        .conf("listen_addresses = '127.0.0.1,::1'")
        .start();
    c.execute("CREATE ROLE app LOGIN PASSWORD 'pw'");
    let path = c.data.join("pg_hba.conf");
    let p = path.to_str().unwrap();
    let base = "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n";
    // Appended by hand, the samenet rule is dead, and check says so.
    std::fs::write(&path, format!("{base}host all all samenet trust\n")).unwrap();
    let report: CheckReport = hba(&["-f", p, "check"]).ok().document();
    let w = report
        .warnings
        .iter()
        .find(|w| w.kind == pgdr_hba::doc::WarningKind::Shadowed)
        .unwrap_or_else(|| panic!("no shadowed warning: {report:?}"));
    assert_eq!(w.line, 4);
    assert!(
        w.message.contains(":2, ") && w.message.contains(":3 "),
        "{}",
        w.message
    );
    // add puts it before the catch-alls, and the server then uses it.
    std::fs::write(&path, base).unwrap();
    let dsn = c.conninfo();
    let out: AddReport = hba(&[
        "-f",
        p,
        "add",
        "--type",
        "host",
        "--database",
        "all",
        "--user",
        "all",
        "--address",
        "samenet",
        "--method",
        "trust",
        "--reload",
        "-d",
        &dsn,
    ])
    .ok()
    .document();
    assert_eq!(out.line, 2, "{out:?}");
    assert!(out.warnings.is_empty(), "{out:?}");
    let report: CheckReport = hba(&["-f", p, "check"]).ok().document();
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.kind != pgdr_hba::doc::WarningKind::Shadowed),
        "{report:?}"
    );
    for host in ["127.0.0.1", "::1"] {
        let out = Command::new(c.bindir.join("psql"))
            .arg(format!(
                "host={host} port={} dbname=postgres user=app sslmode=disable",
                c.port
            ))
            .args(["-XAtc", "select 1"])
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", "/nonexistent")
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// kill -9 at many points of an edit of a large file, stepping from the moment hba-edit opens
/// its new file: pg_hba.conf is always the old file or the new one, whole, and its directory
/// holds nothing else. The new file has no name until it replaces the old one; replacing an
/// occupied name takes a link to a temporary name and a rename over the old file, so a kill
/// between those two system calls alone may leave that name, holding the whole new file.
#[test]
fn kill_9_leaves_the_old_or_the_new_file_and_nothing_half_written() {
    let d = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(d.path()).unwrap();
    let p = dir.join("pg_hba.conf");
    // About 24 MB: writing and syncing it takes long enough for kills to land in it.
    let old = format!(
        "{SAMPLE}{}",
        format!("# {}\n", "x".repeat(1200)).repeat(20_000)
    );
    std::fs::write(&p, &old).unwrap();
    let f = p.to_str().unwrap();
    let args = app_rule(f, &[], "add", &["--method", "md5"]);
    hba(&args).ok();
    let new = std::fs::read_to_string(&p).unwrap();
    assert_ne!(new, old);
    let others = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "pg_hba.conf")
            .collect()
    };
    for i in 0..25u64 {
        std::fs::write(&p, &old).unwrap();
        let mut run = Command::new(pgdr_testkit::bin_dir().join("hba-edit"));
        run.env_clear()
            .env("PGDR_CONFIG", "")
            .env("LC_ALL", "C")
            .args(&args);
        pgdr_testkit::kill_9_when(
            &mut run,
            |pid| pgdr_testkit::opened_in(pid, &dir, &p),
            std::time::Duration::from_micros(i * 2500),
        );
        let now = std::fs::read_to_string(&p).unwrap();
        assert!(now == old || now == new, "kill {i}: pg_hba.conf torn");
        for left in others() {
            assert!(left.contains(".pgdr-tmp."), "kill {i}: {left}");
            assert_eq!(now, old, "kill {i}: {left} beside the new file");
            let bytes = std::fs::read_to_string(dir.join(&left)).unwrap();
            assert!(bytes == new, "kill {i}: {left} is not the whole new file");
            std::fs::remove_file(dir.join(&left)).unwrap();
        }
    }
}

/// A database or user written as a regular expression means one from PostgreSQL 16 on; a
/// server of 13 to 15 reads it as a literal name (hba.c). `check` and `add` say so for such a
/// file, and say nothing for a 16 one; a member check (`+/grp`) is no regex.
#[test]
fn a_regex_before_16_is_flagged_as_a_literal_name() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("pg_hba.conf");
    let pgv = d.path().join("PG_VERSION");
    std::fs::write(
        &f,
        "local all all peer\nhost \"app\" +/grp 10.0.0.0/8 scram-sha-256\nhost all /^rep_ 10.1.0.0/16 scram-sha-256\n",
    )
    .unwrap();
    let f_s = f.to_str().unwrap();
    for (version, flagged) in [("13", true), ("15", true), ("16", false), ("18", false)] {
        std::fs::write(&pgv, format!("{version}\n")).unwrap();
        let c: CheckReport = hba(&["-f", f_s, "check"]).ok().document();
        let lines: Vec<usize> = c
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::RegexBefore16)
            .map(|w| w.line)
            .collect();
        assert_eq!(
            lines,
            if flagged { vec![3] } else { vec![] },
            "{version}: {c:?}"
        );
        let a: AddReport = hba(&[
            "-f",
            f_s,
            "add",
            "--type",
            "host",
            "--database",
            "/^app[0-9]+$",
            "--user",
            "all",
            "--address",
            "10.2.0.0/16",
            "--method",
            "scram-sha-256",
            "--dry-run",
        ])
        .ok()
        .document();
        let said = a
            .warnings
            .iter()
            .any(|w| w.contains("literal name of a database"));
        assert_eq!(said, flagged, "{version}: {a:?}");
    }
}

/// A host rule added beside initdb's `local replication` line (which has no address column)
/// is aligned like initdb's host lines: address at column 40, method at 64.
#[test]
fn a_host_rule_beside_a_local_line_is_aligned_like_its_neighbours() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("pg_hba.conf");
    std::fs::write(
        &f,
        "local   all             all                                     scram-sha-256\n\
         host    all             all             127.0.0.1/32            scram-sha-256\n\
         local   replication     all                                     scram-sha-256\n\
         host    replication     all             127.0.0.1/32            scram-sha-256\n",
    )
    .unwrap();
    let f_s = f.to_str().unwrap();
    let a: AddReport = hba(&[
        "-f",
        f_s,
        "add",
        "--type",
        "host",
        "--database",
        "replication",
        "--user",
        "replicator",
        "--address",
        "127.0.0.1/32",
        "--method",
        "scram-sha-256",
    ])
    .ok()
    .document();
    let text = std::fs::read_to_string(&f).unwrap();
    let line = text.lines().nth(a.line - 1).unwrap();
    assert_eq!(line.find("127.0.0.1/32"), Some(40), "{line:?}");
    assert_eq!(line.find("scram-sha-256"), Some(64), "{line:?}");
}

/// A --user or --database value is one pg_hba.conf field as written in the file: a name the
/// server would read as something else (an unquoted '#' starts a comment, an unmatched '"'
/// runs to the end of the line, a blank starts the next column) is refused with the quoted
/// spelling, and nothing is written; quoted, it is the role it names. (Before: `x#y` was
/// written as the rule of role x, `bob all` as one for bob and all users.)
#[test]
fn a_name_the_server_would_read_otherwise_is_refused_not_rewritten() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("pg_hba.conf");
    let text = "local all all trust\nhost all all 0.0.0.0/0 reject\n";
    std::fs::write(&f, text).unwrap();
    std::fs::write(d.path().join("PG_VERSION"), "18\n").unwrap();
    let f_s = f.to_str().unwrap();
    for user in ["x#y", "a\"b", "bob all"] {
        let out = hba(&[
            "-f",
            f_s,
            "add",
            "--type",
            "host",
            "--database",
            "app",
            "--user",
            user,
            "--address",
            "10.0.0.12",
            "--method",
            "md5",
        ])
        .expect_error(2, "hba-edit");
        assert!(
            out.stderr.contains("not one pg_hba.conf field"),
            "{}",
            out.stderr
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
    }
    let a: AddReport = hba(&[
        "-f",
        f_s,
        "add",
        "--type",
        "host",
        "--database",
        "app",
        "--user",
        "\"x#y\"",
        "--address",
        "10.0.0.12",
        "--method",
        "md5",
    ])
    .ok()
    .document();
    assert_eq!(a.rule.unwrap().user, ["x#y"]);
    let l: HbaList = hba(&["-f", f_s, "list"]).ok().document();
    assert!(l.rules.iter().any(|r| r.user == ["x#y"]), "{l:?}");
}

/// A rule added after a line ending in a backslash (a comment's too, from 15) would be read
/// as the rest of that line: an empty line ends it first, and the rule is its own line.
#[test]
fn a_rule_added_after_a_backslash_line_stands_alone() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("pg_hba.conf");
    std::fs::write(
        &f,
        "local all all trust\nhost all all 127.0.0.9/32 md5 # note \\\n",
    )
    .unwrap();
    std::fs::write(d.path().join("PG_VERSION"), "18\n").unwrap();
    let f_s = f.to_str().unwrap();
    let add = || -> AddReport {
        hba(&[
            "-f",
            f_s,
            "add",
            "--type",
            "host",
            "--database",
            "all",
            "--user",
            "all",
            "--address",
            "10.0.0.1/32",
            "--method",
            "scram-sha-256",
        ])
        .ok()
        .document()
    };
    let a = add();
    assert_eq!(a.line, 4, "{a:?}");
    assert!(a.rule.is_some(), "{a:?}");
    let l: HbaList = hba(&["-f", f_s, "list"]).ok().document();
    let rules: Vec<_> = l.rules.iter().collect();
    assert_eq!(rules.len(), 3, "{l:?}");
    assert_eq!(rules[2].line, 4, "{l:?}");
    // Again: the same rule is there, unchanged.
    assert!(!add().changed);
}
