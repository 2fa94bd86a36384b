//! PostgreSQL connections made the way libpq makes them: a conninfo string or a URI from `-d`,
//! then the connection service file (`service=`, PGSERVICE), then the PG* environment
//! variables, then libpq's defaults, then the password file (conninfo.rs, service.rs,
//! passfile.rs mirror src/interfaces/libpq/fe-connect.c).
//!
//! Passwords never leave this module in clear: [`ConnParams`]'s `Display` and
//! [`redact_conninfo`] show them as `********`.

mod conninfo;
mod passfile;
mod service;
mod tls;

pub use conninfo::{quote_value, redact_conninfo};
pub use passfile::pgpass_lookup;
pub use service::DEFAULT_SYSCONFDIR;

use crate::error::{Error, Result};
use conninfo::{parse_conninfo, parse_uri};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a password looks like in any output.
pub const MASK: &str = "********";

/// libpq keywords we accept; others are refused as libpq does ("invalid connection option").
const KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "application_name",
    "fallback_application_name",
    "options",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "channel_binding",
    "client_encoding",
    "replication",
    "load_balance_hosts",
    "service",
    "servicefile",
];

/// (environment variable, keyword), as in libpq's PQconninfoOptions.
const ENV_VARS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGOPTIONS", "options"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGCLIENTENCODING", "client_encoding"),
];

/// Debian's libpq looks here when no host is given (upstream's default is /tmp).
pub const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];

/// Resolved connection parameters (libpq keywords → values).
#[derive(Clone, Default)]
pub struct ConnParams {
    params: BTreeMap<String, String>,
    /// Where a password was looked for and not found, for the message when the server asks
    /// for one ([`ConnParams::resolve`] fills it).
    password_search: Option<String>,
}

impl PartialEq for ConnParams {
    fn eq(&self, other: &Self) -> bool {
        self.params == other.params
    }
}

impl Eq for ConnParams {}

impl fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnParams({self})")
    }
}

impl fmt::Display for ConnParams {
    /// A conninfo string with the password masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, v) in &self.params {
            if k == "password" || k == "passfile" {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{k}={}", quote_value(v))?;
        }
        if self.params.contains_key("password") {
            write!(f, " password={MASK}")?;
        }
        Ok(())
    }
}

impl ConnParams {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.params.insert(key.to_string(), value.into());
    }
    pub fn remove(&mut self, key: &str) {
        self.params.remove(key);
    }

    /// The keywords a connection string (conninfo or URI) names, unchecked: what a libpq of
    /// another release would be asked to accept (primary_conninfo, read by the server's
    /// WAL receiver).
    ///
    /// # Errors
    /// Exit 2: a string libpq could not parse.
    pub fn keywords_of(s: &str) -> Result<Vec<String>> {
        let params = if s.starts_with("postgresql://") || s.starts_with("postgres://") {
            parse_uri(s)?
        } else if s.contains('=') {
            parse_conninfo(s)?
        } else {
            BTreeMap::new()
        };
        Ok(params.into_keys().collect())
    }

    /// Parses `-d`: a `postgres://`/`postgresql://` URI, a `key=value` conninfo string, or
    /// (like libpq) a bare database name.
    pub fn parse(s: &str) -> Result<ConnParams> {
        let params = if s.starts_with("postgresql://") || s.starts_with("postgres://") {
            parse_uri(s)?
        } else if s.contains('=') {
            parse_conninfo(s)?
        } else {
            BTreeMap::from([("dbname".to_string(), s.to_string())])
        };
        for k in params.keys() {
            if !KEYWORDS.contains(&k.as_str()) {
                return Err(Error::usage("invalid connection string")
                    .because(format!("invalid connection option \"{k}\"")));
            }
        }
        Ok(ConnParams {
            params,
            password_search: None,
        })
    }

    /// `-d` (if any) completed as libpq completes it: from the service file (`service=` or
    /// PGSERVICE), the PG* environment and libpq's defaults, with the password looked up in
    /// the password file when none was given.
    ///
    /// # Errors
    /// A malformed `-d` or service file, a service defined nowhere (usage errors, exit 2); no
    /// user name to be found.
    pub fn resolve(dsn: Option<&str>) -> Result<ConnParams> {
        Self::resolve_with(dsn, &|k| std::env::var(k).ok())
    }

    /// [`ConnParams::resolve`] with an explicit environment (for tests).
    pub fn resolve_with(
        dsn: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnParams> {
        let mut p = match dsn {
            Some(s) => Self::parse(s)?,
            None => ConnParams::default(),
        };
        let home = || {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or_else(|| crate::owner::current_user().map(|u| u.home))
        };
        // The service's settings are defaults for what -d left out, and win over the PG*
        // environment, as in libpq (conninfo_add_defaults reads the service first).
        let service = p
            .get("service")
            .map(str::to_string)
            .or_else(|| env("PGSERVICE").filter(|s| !s.is_empty()));
        if let Some(name) = &service {
            let places = service::Places {
                explicit: p.get("servicefile").map(PathBuf::from).or_else(|| {
                    env("PGSERVICEFILE")
                        .filter(|f| !f.is_empty())
                        .map(PathBuf::from)
                }),
                home: home(),
                sysconfdir: env("PGSYSCONFDIR")
                    .filter(|d| !d.is_empty())
                    .map_or_else(|| PathBuf::from(DEFAULT_SYSCONFDIR), PathBuf::from),
            };
            for (k, v) in service::lookup(name, &places, KEYWORDS)? {
                p.params.entry(k).or_insert(v);
            }
        }
        for (var, key) in ENV_VARS {
            if !p.params.contains_key(*key) {
                if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                    p.set(key, v);
                }
            }
        }
        if !p.params.contains_key("host") && !p.params.contains_key("hostaddr") {
            let dir = DEFAULT_SOCKET_DIRS
                .iter()
                .find(|d| Path::new(d).is_dir())
                .unwrap_or(&DEFAULT_SOCKET_DIRS[0]);
            p.set("host", *dir);
        }
        if !p.params.contains_key("port") {
            p.set("port", "5432");
        }
        if !p.params.contains_key("user") {
            let name = crate::owner::current_user()
                .map(|u| u.name)
                .ok_or_else(|| {
                    Error::failed("cannot work out the user name")
                        .because("no -d user= and no PGUSER")
                })?;
            p.set("user", name);
        }
        if !p.params.contains_key("dbname") {
            let user = p.params["user"].clone();
            p.set("dbname", user);
        }
        if !p.params.contains_key("password") {
            let file = p
                .get("passfile")
                .map(PathBuf::from)
                .or_else(|| home().map(|h| h.join(".pgpass")));
            let found = match file {
                Some(file) => passfile::search(&file, &p),
                None => passfile::Search::NotFound(
                    "there is no home directory for ~/.pgpass and PGPASSFILE is unset".into(),
                ),
            };
            match found {
                passfile::Search::Found(pw) => p.set("password", pw),
                passfile::Search::NotFound(why) => {
                    let given = match &service {
                        Some(name) => format!("no password= in -d or in service \"{name}\""),
                        None => "no password= in -d".to_string(),
                    };
                    p.password_search = Some(format!("{given}, PGPASSWORD is not set, {why}"));
                }
            }
        }
        Ok(p)
    }

    /// The first host, for matching and messages.
    fn first(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|h| h.split(',').next())
    }

    /// Builds the client configuration.
    pub fn to_config(&self) -> Result<postgres::Config> {
        let mut c = postgres::Config::new();
        let bad = |what: &str, v: &str| {
            Error::usage("invalid connection string")
                .because(format!("invalid {what} value \"{v}\""))
        };
        if let Some(hosts) = self.get("host") {
            for h in hosts.split(',') {
                if h.starts_with('/') {
                    c.host_path(h);
                } else {
                    c.host(h);
                }
            }
        }
        if let Some(addrs) = self.get("hostaddr") {
            for a in addrs.split(',') {
                c.hostaddr(a.parse().map_err(|_| bad("hostaddr", a))?);
            }
        }
        if let Some(ports) = self.get("port") {
            for port in ports.split(',') {
                c.port(port.parse().map_err(|_| bad("port", port))?);
            }
        }
        if let Some(u) = self.get("user") {
            c.user(u);
        }
        if let Some(d) = self.get("dbname") {
            c.dbname(d);
        }
        if let Some(pw) = self.get("password") {
            c.password(pw);
        }
        if let Some(o) = self.get("options") {
            c.options(o);
        }
        let app = self
            .get("application_name")
            .or(self.get("fallback_application_name"))
            .unwrap_or("pgdr");
        c.application_name(app);
        if let Some(t) = self.get("connect_timeout") {
            let secs: i64 = t.trim().parse().map_err(|_| bad("connect_timeout", t))?;
            // libpq: zero or negative means wait forever; 1 is raised to 2.
            if secs > 0 {
                c.connect_timeout(Duration::from_secs(secs.max(2) as u64));
            }
        }
        if let Some(m) = self.get("sslmode") {
            use postgres::config::SslMode;
            c.ssl_mode(match m {
                "disable" => SslMode::Disable,
                "allow" | "prefer" => SslMode::Prefer,
                "require" | "verify-ca" | "verify-full" => SslMode::Require,
                other => return Err(bad("sslmode", other)),
            });
        }
        if let Some(t) = self.get("target_session_attrs") {
            use postgres::config::TargetSessionAttrs;
            c.target_session_attrs(match t {
                "any" => TargetSessionAttrs::Any,
                "read-write" => TargetSessionAttrs::ReadWrite,
                "read-only" => TargetSessionAttrs::ReadOnly,
                other => return Err(bad("target_session_attrs", other)),
            });
        }
        Ok(c)
    }

    /// Connects, with an error that names the server but never the password.
    pub fn connect(&self) -> Result<postgres::Client> {
        let config = self.to_config()?;
        let fail = |e: postgres::Error| {
            let why = redact_text(&error_text(&e), self.get("password"));
            let err = Error::failed(format!("cannot connect to {}", self.describe()));
            match &self.password_search {
                // The client library's own words ("invalid configuration: password missing")
                // say nothing about where a password could have come from.
                Some(looked) if why.ends_with("password missing") => err
                    .because(format!(
                        "the server asks for a password and none was found: {looked}"
                    ))
                    .hint("add a line for this server to the password file, or set PGPASSWORD"),
                _ => err.because(why),
            }
        };
        match self.get("sslmode").unwrap_or("prefer") {
            "disable" => config.connect(postgres::NoTls).map_err(fail),
            // libpq never uses TLS over a Unix socket, whatever sslmode says.
            _ if self.only_sockets() => {
                let mut config = config;
                config.ssl_mode(postgres::config::SslMode::Disable);
                config.connect(postgres::NoTls).map_err(fail)
            }
            mode => {
                tls::check_root(self, mode)?;
                config.connect(tls::LazyTls::new(self, mode)).map_err(fail)
            }
        }
    }

    /// Every host is a Unix socket directory (and no hostaddr says otherwise).
    fn only_sockets(&self) -> bool {
        self.get("hostaddr").is_none()
            && self.get("host").is_some_and(|h| {
                h.split(',')
                    .all(|h| h.starts_with('/') || h.starts_with('@'))
            })
    }

    /// `host=… port=… user=… dbname=…` for messages (no password).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for k in ["host", "hostaddr", "port", "user", "dbname"] {
            if let Some(v) = self.get(k) {
                parts.push(format!("{k}={}", quote_value(v)));
            }
        }
        parts.join(" ")
    }
}

/// Resolves and connects in one step: the usual thing a tool does with `-d`.
pub fn connect(dsn: Option<&str>) -> Result<postgres::Client> {
    ConnParams::resolve(dsn)?.connect()
}

/// A database error's full text: message, DETAIL and HINT on one line.
pub fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" DETAIL: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!(" HINT: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(&format!(": {t}"));
        }
        src = inner.source();
    }
    crate::error::clean_io_message(&s)
}

fn redact_text(s: &str, password: Option<&str>) -> String {
    match password {
        Some(pw) if !pw.is_empty() => s.replace(pw, MASK),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn conninfo_with_quotes() {
        let p =
            ConnParams::parse("host=/tmp port = 5433 user=u password='a b\\'c' dbname=x").unwrap();
        assert_eq!(p.get("host"), Some("/tmp"));
        assert_eq!(p.get("port"), Some("5433"));
        assert_eq!(p.get("password"), Some("a b'c"));
        assert!(!p.to_string().contains("a b"));
        assert!(p.to_string().contains("password=********"));
    }

    #[test]
    fn bad_conninfo() {
        assert_eq!(
            ConnParams::parse("host=x bogus=1").unwrap_err().exit_code(),
            2
        );
        assert!(ConnParams::parse("host").is_ok()); // a bare word is a dbname
        assert!(ConnParams::parse("host=x port").is_err());
        assert!(ConnParams::parse("password='abc").is_err());
    }

    #[test]
    fn uri_forms() {
        let p = ConnParams::parse(
            "postgresql://us%40r:p%3Ass@db.example:5433/my%20db?sslmode=disable&application_name=a",
        )
        .unwrap();
        assert_eq!(p.get("user"), Some("us@r"));
        assert_eq!(p.get("password"), Some("p:ss"));
        assert_eq!(p.get("host"), Some("db.example"));
        assert_eq!(p.get("port"), Some("5433"));
        assert_eq!(p.get("dbname"), Some("my db"));
        assert_eq!(p.get("sslmode"), Some("disable"));
        let p = ConnParams::parse("postgres://[::1]:5444,h2/db").unwrap();
        assert_eq!(p.get("host"), Some("::1,h2"));
        assert_eq!(p.get("port"), Some("5444,"));
        let p = ConnParams::parse("postgresql:///db?host=%2Fvar%2Frun%2Fpostgresql").unwrap();
        assert_eq!(p.get("host"), Some("/var/run/postgresql"));
    }

    #[test]
    fn env_fills_gaps_only() {
        let env = |k: &str| match k {
            "PGPORT" => Some("6000".to_string()),
            "PGUSER" => Some("envuser".to_string()),
            "PGHOST" => Some("/sock".to_string()),
            "PGPASSFILE" => Some("/nonexistent".to_string()),
            _ => None,
        };
        let p = ConnParams::resolve_with(Some("user=me"), &env).unwrap();
        assert_eq!(p.get("user"), Some("me"));
        assert_eq!(p.get("port"), Some("6000"));
        assert_eq!(p.get("host"), Some("/sock"));
        assert_eq!(p.get("dbname"), Some("me"));
        let p = ConnParams::resolve_with(None, &no_env).unwrap();
        assert_eq!(p.get("port"), Some("5432"));
    }

    #[test]
    fn pgpass_rules() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:5432:*:u:wrong\nlocalhost:5433:*:u:sock\\:pw\n*:*:db\\:x:*:any\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = ConnParams::parse("host=/var/run/postgresql port=5433 user=u dbname=d").unwrap();
        assert_eq!(pgpass_lookup(&f, &p).unwrap().as_deref(), Some("sock:pw"));
        let p = ConnParams::parse("host=h port=1 user=z dbname=db:x").unwrap();
        assert_eq!(pgpass_lookup(&f, &p).unwrap().as_deref(), Some("any"));
        let p = ConnParams::parse("host=h port=1 user=z dbname=nope").unwrap();
        assert_eq!(pgpass_lookup(&f, &p).unwrap(), None);
        // World-readable: ignored, as libpq does.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = ConnParams::parse("host=h port=1 user=z dbname=db:x").unwrap();
        assert_eq!(pgpass_lookup(&f, &p).unwrap(), None);
    }

    #[test]
    fn resolve_reads_passfile() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pgpass");
        std::fs::write(&f, "*:*:*:*:secret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = f.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "PGPASSFILE").then(|| path.clone());
        let p = ConnParams::resolve_with(Some("host=h user=u"), &env).unwrap();
        assert_eq!(p.get("password"), Some("secret"));
        assert!(!format!("{p}").contains("secret"));
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn service_settings_between_conninfo_and_environment() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("services.conf");
        std::fs::write(&file, "[main]\nport=6000\ndbname=svc\nhost=/svc\n").unwrap();
        let file = file.display().to_string();
        let env = move |k: &str| match k {
            "PGSERVICEFILE" => Some(file.clone()),
            "PGPORT" => Some("7000".into()),
            "PGDATABASE" => Some("envdb".into()),
            "PGUSER" => Some("envuser".into()),
            "PGPASSFILE" => Some("/nonexistent".into()),
            _ => None,
        };
        let p = ConnParams::resolve_with(Some("service=main dbname=mine"), &env).unwrap();
        assert_eq!(p.get("dbname"), Some("mine"), "-d wins over the service");
        assert_eq!(p.get("port"), Some("6000"), "the service wins over PGPORT");
        assert_eq!(
            p.get("user"),
            Some("envuser"),
            "PG* fills what both left out"
        );
        let with_pgservice = move |k: &str| match k {
            "PGSERVICE" => Some("main".into()),
            other => env(other),
        };
        let p = ConnParams::resolve_with(None, &with_pgservice).unwrap();
        assert_eq!(p.get("host"), Some("/svc"));
        let e = ConnParams::resolve_with(Some("service=nope"), &with_pgservice).unwrap_err();
        assert!(
            e.to_string().contains("definition of service \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn where_a_password_was_looked_for() {
        let env = |k: &str| (k == "PGPASSFILE").then(|| "/nonexistent/pgpass".to_string());
        let p = ConnParams::resolve_with(Some("host=h user=u"), &env).unwrap();
        let looked = p.password_search.as_deref().unwrap();
        assert!(
            looked.contains("PGPASSWORD is not set")
                && looked.contains("/nonexistent/pgpass does not exist"),
            "{looked}"
        );
        let p = ConnParams::resolve_with(Some("host=h user=u password=x"), &env).unwrap();
        assert_eq!(p.password_search, None);
    }

    #[test]
    fn redaction_in_free_text() {
        assert_eq!(
            redact_conninfo("host=p user=r password=s3cret application_name=x"),
            "host=p user=r password=******** application_name=x"
        );
        assert_eq!(
            redact_conninfo("user=r password = 'a b\\'c' port=1"),
            "user=r password = ******** port=1"
        );
        assert_eq!(
            redact_conninfo("postgresql://u:pw@h:5432/db?password=x&sslmode=disable"),
            "postgresql://u:********@h:5432/db?password=********&sslmode=disable"
        );
        assert_eq!(
            redact_conninfo("host=p passwordless=1"),
            "host=p passwordless=1"
        );
    }
}
