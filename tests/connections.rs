//! pgdr-core's libpq-style connections against a real server: sockets, TCP, passwords from
//! the password file, URIs, PG* variables and every sslmode, with a self-signed certificate.

use pgdr_core::conn::ConnParams;
use pgdr_testkit::{chown_to_pg_user, Cluster};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "pw:with\\colon s3cret";

struct Tls {
    cluster: Cluster,
    cert: PathBuf,
    dir: tempfile::TempDir,
}

/// A self-signed certificate for `cn` (with extra `openssl req` arguments) and its key.
fn self_signed(dir: &Path, cn: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
    let subject = format!("/CN={cn}");
    let out = Command::new("openssl")
        .args([
            "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", &subject,
        ])
        .args(extra)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A server that only accepts TCP over TLS: scram for `pwuser`, trust for the rest.
fn tls_cluster() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(
        dir.path(),
        "localhost",
        &["-addext", "subjectAltName=DNS:localhost"],
    );
    let cluster = Cluster::builder()
        .hba("hostnossl all all 127.0.0.1/32 reject")
        .hba("hostssl all pwuser 127.0.0.1/32 scram-sha-256")
        .hba("hostssl all all 127.0.0.1/32 trust")
        .init_only();
    for (f, name) in [(&cert, "server.crt"), (&key, "server.key")] {
        let to = cluster.data.join(name);
        std::fs::copy(f, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown_to_pg_user(&to);
    }
    cluster.append_conf("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    let mut cluster = cluster;
    cluster.start_server();
    cluster.execute(&format!(
        "create role pwuser login password '{}'",
        PASSWORD.replace('\'', "''")
    ));
    Tls { cluster, cert, dir }
}

fn connect(dsn: &str) -> pgdr_core::Result<postgres::Client> {
    // Nothing from this process's environment: only what the test passes.
    ConnParams::resolve_with(Some(dsn), &|k| {
        (k == "PGPASSFILE").then(|| "/dev/null".into())
    })?
    .connect()
}

fn uses_tls(c: &mut postgres::Client) -> bool {
    c.query_one(
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        &[],
    )
    .unwrap()
    .get(0)
}

fn passfile(dir: &Path, line: &str, mode: u32) -> PathBuf {
    let f = dir.join(format!("pgpass-{mode:o}"));
    std::fs::write(&f, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

#[test]
fn sslmodes_behave_as_in_libpq() {
    let t = tls_cluster();
    let port = t.cluster.port;
    // Unix socket: no TLS there, and none needed, whatever sslmode says (libpq ignores it).
    connect(&t.cluster.conninfo()).unwrap();
    for mode in ["require", "verify-full sslrootcert=/nonexistent/root.crt"] {
        let mut c = connect(&format!("{} sslmode={mode}", t.cluster.conninfo()))
            .unwrap_or_else(|e| panic!("socket with sslmode={mode}: {e}"));
        assert!(!uses_tls(&mut c));
    }
    // No TLS over TCP: the server's hostnossl reject line answers.
    let e = connect(&format!(
        "host=127.0.0.1 port={port} user=postgres sslmode=disable"
    ))
    .err()
    .expect("plain TCP must be rejected");
    assert!(
        e.to_string().contains("pg_hba.conf rejects connection"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 1);
    // prefer (libpq's default) and require encrypt without checking the certificate.
    for mode in ["", " sslmode=prefer", " sslmode=require"] {
        let mut c = connect(&format!("host=127.0.0.1 port={port} user=postgres{mode}")).unwrap();
        assert!(uses_tls(&mut c), "mode {mode:?}");
    }
    // verify-full: the chain and the host name.
    let root = t.cert.display();
    let mut c = connect(&format!(
        "host=localhost port={port} user=postgres sslmode=verify-full sslrootcert={root}"
    ))
    .unwrap();
    assert!(uses_tls(&mut c));
    let e = connect(&format!(
        "host=127.0.0.1 port={port} user=postgres sslmode=verify-full sslrootcert={root}"
    ))
    .err()
    .expect("host name 127.0.0.1 is not in the certificate");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // verify-ca ignores the name but needs the root certificate.
    connect(&format!(
        "host=127.0.0.1 port={port} user=postgres sslmode=verify-ca sslrootcert={root}"
    ))
    .unwrap();
    let e = connect(&format!(
        "host=127.0.0.1 port={port} user=postgres sslmode=verify-ca sslrootcert=/nonexistent/root.crt"
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("root certificate file"), "{e}");
    // require with a root file present behaves as verify-ca: a wrong CA fails.
    let (other, _) = self_signed(t.dir.path(), "other", &[]);
    let e = connect(&format!(
        "host=localhost port={port} user=postgres sslmode=require sslrootcert={}",
        other.display()
    ))
    .err()
    .expect("a certificate from another CA must fail when a root file is given");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn passwords_from_the_password_file_and_never_shown() {
    let t = tls_cluster();
    let port = t.cluster.port;
    let escaped = PASSWORD.replace('\\', "\\\\").replace(':', "\\:");
    let good = passfile(
        t.dir.path(),
        &format!("localhost:{port}:*:pwuser:{escaped}"),
        0o600,
    );
    let env_with = |file: PathBuf| {
        move |k: &str| match k {
            "PGPASSFILE" => Some(file.display().to_string()),
            "PGHOST" => Some("localhost".into()),
            "PGPORT" => Some(port.to_string()),
            "PGUSER" => Some("pwuser".into()),
            "PGDATABASE" => Some("postgres".into()),
            "PGSSLMODE" => Some("require".into()),
            _ => None,
        }
    };
    // Everything from PG* variables and the password file.
    let p = ConnParams::resolve_with(None, &env_with(good.clone())).unwrap();
    assert!(!p.to_string().contains("s3cret"));
    let mut c = p.connect().unwrap();
    let who: String = c.query_one("select current_user", &[]).unwrap().get(0);
    assert_eq!(who, "pwuser");
    // A password file readable by others is ignored, as libpq does: authentication fails.
    let open = passfile(t.dir.path(), &format!("*:*:*:pwuser:{escaped}"), 0o644);
    let e = ConnParams::resolve_with(None, &env_with(open))
        .unwrap()
        .connect()
        .err()
        .unwrap();
    assert!(e.to_string().contains("password"), "{e}");
    // A wrong password in the URI: the error names the server, never the password.
    let e = connect(&format!(
        "postgresql://pwuser:not-the-s3cret@localhost:{port}/postgres?sslmode=require"
    ))
    .err()
    .unwrap();
    let msg = e.to_string();
    assert!(!msg.contains("not-the-s3cret"), "{msg}");
    assert!(msg.contains("password authentication failed"), "{msg}");
    // The right one, percent-encoded in a URI.
    let enc: String = PASSWORD
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    connect(&format!(
        "postgresql://pwuser:{enc}@localhost:{port}/postgres?sslmode=require"
    ))
    .unwrap();
}

/// What a connection reached: (current_database, port, current_user).
type Reached = (String, String, String);

/// An environment for one case: (variable, value).
type Env = Vec<(&'static str, String)>;

/// What a connection reached.
fn reached(c: &mut postgres::Client) -> Reached {
    let r = c
        .query_one(
            "select current_database()::text, current_setting('port'), current_user::text",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// The same through libpq itself: psql with exactly this environment.
fn libpq_reached(dsn: &str, env: &[(&str, String)]) -> Result<Reached, String> {
    let out = Command::new("psql")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["-X", "-A", "-t", "-F", "|", "-c"])
        .arg("select current_database(), current_setting('port'), current_user")
        .arg(dsn)
        .output()
        .expect("psql (apt-get install postgresql-client)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let f: Vec<&str> = text.split('|').collect();
    Ok((f[0].into(), f[1].into(), f[2].into()))
}

#[test]
fn service_files_as_libpq_reads_them() {
    let c = pgdr_testkit::Cluster::start();
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let sysconf = d.path().join("etc");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&sysconf).unwrap();
    let section = |name: &str, db: &str| {
        format!(
            "[{name}]\nhost={}\nport={}\nuser=postgres\ndbname={db}\n",
            c.sockdir.display(),
            c.port
        )
    };
    let explicit = d.path().join("services.conf");
    std::fs::write(
        &explicit,
        format!("# ours\n{}", section("main", "template1")),
    )
    .unwrap();
    std::fs::write(home.join(".pg_service.conf"), section("home", "template1")).unwrap();
    std::fs::write(
        sysconf.join("pg_service.conf"),
        format!(
            "{}{}",
            section("home", "postgres"),
            section("system", "postgres")
        ),
    )
    .unwrap();
    let base = vec![
        ("HOME", home.display().to_string()),
        ("PGSYSCONFDIR", sysconf.display().to_string()),
        ("PGPASSFILE", "/dev/null".to_string()),
    ];
    let with = |extra: &[(&'static str, &str)]| -> Env {
        let mut env = base.clone();
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };
    let file = explicit.display().to_string();
    let wrong_port = pgdr_testkit::free_port().to_string();
    let port = c.port.to_string();
    let db = |name: &str| (name.to_string(), port.clone(), "postgres".to_string());
    let cases: Vec<(Option<&str>, Env, Reached)> = vec![
        // service= with PGSERVICEFILE.
        (
            Some("service=main"),
            with(&[("PGSERVICEFILE", &file)]),
            db("template1"),
        ),
        // PGSERVICE alone, no -d.
        (
            None,
            with(&[("PGSERVICE", "main"), ("PGSERVICEFILE", &file)]),
            db("template1"),
        ),
        // The service wins over PG* variables, -d wins over the service.
        (
            Some("service=main"),
            with(&[
                ("PGSERVICEFILE", &file),
                ("PGDATABASE", "postgres"),
                ("PGPORT", &wrong_port),
            ]),
            db("template1"),
        ),
        (
            Some("service=main dbname=postgres"),
            with(&[("PGSERVICEFILE", &file)]),
            db("postgres"),
        ),
        // ~/.pg_service.conf first; the system file only for services it lacks.
        (Some("service=home"), with(&[]), db("template1")),
        (
            Some("postgresql:///?service=system"),
            with(&[]),
            db("postgres"),
        ),
    ];
    for (dsn, env, expected) in &cases {
        let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let mut ours = ConnParams::resolve_with(*dsn, &lookup)
            .and_then(|p| p.connect())
            .unwrap_or_else(|e| panic!("{dsn:?} {env:?}: {e}"));
        assert_eq!(&reached(&mut ours), expected, "{dsn:?} {env:?}");
        let theirs = libpq_reached(dsn.unwrap_or(""), env).unwrap();
        assert_eq!(&theirs, expected, "libpq disagrees: {dsn:?} {env:?}");
    }
    // A service defined nowhere, and a PGSERVICEFILE that is not there: both refuse.
    for (dsn, env, says) in [
        (
            "service=nope",
            with(&[]),
            "definition of service \"nope\" not found",
        ),
        (
            "service=main",
            with(&[("PGSERVICEFILE", "/nonexistent/services.conf")]),
            "service file \"/nonexistent/services.conf\" not found",
        ),
    ] {
        let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let e = ConnParams::resolve_with(Some(dsn), &lookup).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
        let theirs = libpq_reached(dsn, &env).unwrap_err();
        assert!(theirs.contains(says), "libpq: {theirs}");
    }
    // The tools take it the same way.
    let out = pgdr_testkit::tool("repl-lag")
        .args(["-d", "service=main"])
        .env("PGSERVICEFILE", &explicit)
        .run()
        .ok();
    let doc: pgdr_lag::report::PrimaryReport = out.document();
    assert!(doc.server.contains("dbname=template1"), "{}", doc.server);
    let out = pgdr_testkit::tool("repl-lag")
        .env("PGSERVICE", "main")
        .env("PGSERVICEFILE", &explicit)
        .run()
        .ok();
    assert!(out.stdout.contains("dbname=template1"), "{}", out.stdout);
}

#[test]
fn a_missing_password_says_where_it_was_looked_for() {
    let t = tls_cluster();
    let port = t.cluster.port;
    let dsn = format!("host=localhost port={port} user=pwuser dbname=postgres sslmode=require");
    // The library, with the password file of the environment.
    let nowhere = "/nonexistent/pgpass";
    let e = ConnParams::resolve_with(Some(&dsn), &|k| {
        (k == "PGPASSFILE").then(|| nowhere.to_string())
    })
    .unwrap()
    .connect()
    .err()
    .expect("no password anywhere");
    let msg = e.to_string();
    assert!(
        msg.contains("asks for a password")
            && msg.contains("PGPASSWORD is not set")
            && msg.contains("/nonexistent/pgpass does not exist"),
        "{msg}"
    );
    // A password file without a line for this server: it names the line it looked for.
    let other = passfile(t.dir.path(), "otherhost:*:*:*:x", 0o600);
    let file = other.display().to_string();
    let e = ConnParams::resolve_with(Some(&dsn), &|k| (k == "PGPASSFILE").then(|| file.clone()))
        .unwrap()
        .connect()
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains(&format!("has no line for localhost:{port}:postgres:pwuser")),
        "{e}"
    );
    // repl-lag: one line, UNKNOWN, naming the file it was given (PGPASSFILE=/dev/null).
    let out = pgdr_testkit::tool("repl-lag")
        .args(["-d", &dsn])
        .run()
        .expect_error(3, "repl-lag");
    assert!(
        out.stderr.contains("PGPASSWORD is not set") && out.stderr.contains("/dev/null"),
        "{}",
        out.stderr
    );
    // With HOME and no PGPASSFILE: ~/.pgpass.
    let home = tempfile::tempdir().unwrap();
    let out = pgdr_testkit::tool("repl-lag")
        .args(["-d", &dsn])
        .env("HOME", home.path())
        .env("PGPASSFILE", "")
        .run()
        .expect_error(3, "repl-lag");
    let pgpass = home.path().join(".pgpass");
    assert!(
        out.stderr
            .contains(&format!("{} does not exist", pgpass.display())),
        "{}",
        out.stderr
    );
}
