//! `parse_hba_line` and `parse_hba_auth_opt`: a tokenized line becomes a [`Rule`] or the error
//! PostgreSQL would report, for the server version given (12 to 18).
//!
//! Build assumptions are those of the Linux packages (Debian/PGDG/RHEL): SSL, GSSAPI, PAM and
//! OpenLDAP are compiled in; BSD auth and SSPI are not.
//!
//! Over 600 lines because `parse_hba_line` and `parse_hba_auth_opt` check in the server's
//! order, per method and per version; split up, that order would be lost. Per-version rules
//! are the `version` comparisons here and the method table in `parse_fields`.

use crate::addr::{self, Numeric};
use crate::lex::{AuthLine, Token};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// The connection type column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnType {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

impl ConnType {
    pub fn parse(s: &str) -> Option<ConnType> {
        Some(match s {
            "local" => ConnType::Local,
            "host" => ConnType::Host,
            "hostssl" => ConnType::HostSsl,
            "hostnossl" => ConnType::HostNoSsl,
            "hostgssenc" => ConnType::HostGssEnc,
            "hostnogssenc" => ConnType::HostNoGssEnc,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            ConnType::Local => "local",
            ConnType::Host => "host",
            ConnType::HostSsl => "hostssl",
            ConnType::HostNoSsl => "hostnossl",
            ConnType::HostGssEnc => "hostgssenc",
            ConnType::HostNoGssEnc => "hostnogssenc",
        }
    }
    /// The kind bit of a connection described by this type: `host` is a plain TCP connection,
    /// `hostssl` an SSL one, `hostgssenc` a GSS-encrypted one.
    pub fn conn_kind(self) -> u8 {
        match self {
            ConnType::Local => 0,
            ConnType::Host | ConnType::HostNoSsl | ConnType::HostNoGssEnc => 1,
            ConnType::HostSsl => 2,
            ConnType::HostGssEnc => 4,
        }
    }
    /// Which TCP connection kinds the type admits, as a bit set of (plain, ssl, gss-encrypted).
    pub fn tcp_kinds(self) -> u8 {
        const PLAIN: u8 = 1;
        const SSL: u8 = 2;
        const GSS: u8 = 4;
        match self {
            ConnType::Local => 0,
            ConnType::Host => PLAIN | SSL | GSS,
            ConnType::HostSsl => SSL,
            ConnType::HostNoSsl => PLAIN | GSS,
            ConnType::HostGssEnc => GSS,
            ConnType::HostNoGssEnc => PLAIN | SSL,
        }
    }
}

/// The address column(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    All,
    SameHost,
    SameNet,
    /// A host name, or a `.suffix`.
    Hostname(String),
    Ip {
        addr: IpAddr,
        mask: IpAddr,
    },
}

impl Address {
    /// (address, netmask) as `pg_hba_file_rules` shows them.
    pub fn view(&self) -> (String, Option<String>) {
        match self {
            Address::All => ("all".into(), None),
            Address::SameHost => ("samehost".into(), None),
            Address::SameNet => ("samenet".into(), None),
            Address::Hostname(h) => (h.clone(), None),
            Address::Ip { addr, mask } => (addr::to_text(addr), Some(addr::to_text(mask))),
        }
    }
    /// A comparable form: networks by their masked bits, host names case-insensitively.
    pub fn key(&self) -> String {
        match self {
            Address::Ip { addr, mask } => {
                let (a, w) = addr::bits(addr);
                let (m, _) = addr::bits(mask);
                format!("ip{w}:{:x}/{:x}", a & m, m)
            }
            Address::Hostname(h) => format!("name:{}", h.to_ascii_lowercase()),
            Address::All => "all".into(),
            Address::SameHost => "samehost".into(),
            Address::SameNet => "samenet".into(),
        }
    }
}

/// A line the server accepts.
#[derive(Debug, Clone)]
pub struct Rule {
    pub file: Arc<Path>,
    pub line: usize,
    /// The record of the top file it comes from (an include directive for included rules).
    pub origin: usize,
    pub conn: ConnType,
    pub databases: Vec<Token>,
    pub users: Vec<Token>,
    pub address: Option<Address>,
    /// As the server names it (`ident` on `local` is `peer`).
    pub method: &'static str,
    /// Options, comment, warning and regular expressions, when the rule has any.
    pub extra: Option<Box<Extra>>,
}

/// What few rules have, boxed: a rule without it (most rules of a large file) is 88 bytes
/// smaller, to store and to move.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// name=value options as written, in order.
    pub options: Vec<(String, String)>,
    pub comment: Option<String>,
    /// Something the server logs but still loads (e.g. an invalid `ldapscheme`).
    pub warning: Option<String>,
    /// Compiled `/regex` entries (16+), by token text.
    pub regexes: Vec<(String, crate::pg_regex::Compiled)>,
}

impl Rule {
    /// name=value options as written, in order.
    pub fn options(&self) -> &[(String, String)] {
        self.extra.as_ref().map_or(&[], |e| &e.options)
    }

    /// The comment after the rule (not empty).
    pub fn comment(&self) -> Option<&str> {
        self.extra.as_ref()?.comment.as_deref()
    }

    /// Something the server logs but still loads (e.g. an invalid `ldapscheme`).
    pub fn warning(&self) -> Option<&str> {
        self.extra.as_ref()?.warning.as_deref()
    }

    /// Compiled `/regex` entries (16+), by token text.
    pub fn regexes(&self) -> &[(String, crate::pg_regex::Compiled)] {
        self.extra.as_ref().map_or(&[], |e| &e.regexes)
    }
}

/// A line the server rejects.
#[derive(Debug, Clone)]
pub struct LineError {
    pub file: Arc<Path>,
    pub line: usize,
    pub origin: usize,
    pub message: String,
}

/// Which field a token is in (what is special differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Database,
    User,
}

pub const DB_KEYWORDS: &[&str] = &["all", "sameuser", "samerole", "samegroup", "replication"];

/// What a token means, for comparing rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Meaning {
    Keyword(String),
    Member(String),
    Regex(String),
    Name(String),
}

/// [`Meaning`], borrowing the token's text (no copy per token of a 100,000-line file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeaningRef<'a> {
    Keyword(&'a str),
    Member(&'a str),
    Regex(&'a str),
    Name(&'a str),
}

impl MeaningRef<'_> {
    pub fn to_owned(self) -> Meaning {
        match self {
            MeaningRef::Keyword(s) => Meaning::Keyword(s.to_string()),
            MeaningRef::Member(s) => Meaning::Member(s.to_string()),
            MeaningRef::Regex(s) => Meaning::Regex(s.to_string()),
            MeaningRef::Name(s) => Meaning::Name(s.to_string()),
        }
    }
}

/// What token `t` in `field` means to the server of `version` (`token_is_keyword`,
/// `token_is_member_check`, regular expressions from 16 on).
pub fn meaning_ref(t: &Token, field: Field, version: u32) -> MeaningRef<'_> {
    let kw = match field {
        // DB_KEYWORDS, as a match: inlined comparisons, no memcmp call each.
        Field::Database => matches!(
            t.s.as_ref(),
            "all" | "sameuser" | "samerole" | "samegroup" | "replication"
        ),
        Field::User => t.s == "all",
    };
    if kw && !t.quoted {
        // samegroup is an alias of samerole.
        MeaningRef::Keyword(if t.s == "samegroup" { "samerole" } else { &t.s })
    } else if field == Field::User && t.is_member_check() {
        MeaningRef::Member(&t.s[1..])
    } else if version >= 16 && t.s.starts_with('/') {
        MeaningRef::Regex(&t.s)
    } else {
        MeaningRef::Name(&t.s)
    }
}

/// [`meaning_ref`], owned.
pub fn meaning(t: &Token, field: Field, version: u32) -> Meaning {
    meaning_ref(t, field, version).to_owned()
}

/// Build-time facts the parser depends on.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    pub ssl: bool,
    pub gss: bool,
    pub pam: bool,
    pub ldap: bool,
    pub bsd: bool,
    pub sspi: bool,
}

impl Default for Build {
    fn default() -> Self {
        Build {
            ssl: true,
            gss: true,
            pam: true,
            ldap: true,
            bsd: false,
            sspi: false,
        }
    }
}

/// `pg_hba_file_rules` style options, to check an option set.
#[derive(Default)]
struct Opts {
    usermap: bool,
    ldapserver: bool,
    ldapprefix: bool,
    ldapsuffix: bool,
    ldapbasedn: bool,
    ldapbinddn: bool,
    ldapbindpasswd: bool,
    ldapsearchattribute: bool,
    ldapsearchfilter: bool,
    radiusservers: Option<usize>,
    radiussecrets: Option<usize>,
    radiusports: usize,
    radiusidentifiers: usize,
    oauth_issuer: bool,
    oauth_scope: bool,
    oauth_skip_usermap: bool,
}

/// Looks up host names for `radiusservers` (the server resolves them when it loads the file).
pub type Resolver<'a> = &'a dyn Fn(&str) -> bool;

/// `parse_hba_line`.
pub fn parse_line(
    l: &AuthLine,
    version: u32,
    build: Build,
    resolve: Resolver,
) -> Result<Rule, LineError> {
    let err = |m: String| LineError {
        file: l.file.clone(),
        line: l.line,
        origin: l.origin,
        message: m,
    };
    if let Some(e) = &l.err {
        return Err(err(e.clone()));
    }
    let mut r = parse_fields(l, version, build, resolve).map_err(err)?;
    r.databases = l.fields[1].clone();
    r.users = l.fields[2].clone();
    Ok(r)
}

/// [`parse_line`] that moves the database and user lists out of the line instead of copying
/// them (the line keeps its other fields, which is all the layout code reads).
pub fn parse_line_taking(
    l: &mut AuthLine,
    version: u32,
    build: Build,
    resolve: Resolver,
) -> Result<Rule, LineError> {
    if let Some(e) = &l.err {
        return Err(LineError {
            file: l.file.clone(),
            line: l.line,
            origin: l.origin,
            message: e.clone(),
        });
    }
    match parse_fields(l, version, build, resolve) {
        Ok(mut r) => {
            r.databases = std::mem::take(&mut l.fields[1]);
            r.users = std::mem::take(&mut l.fields[2]);
            Ok(r)
        }
        Err(m) => Err(LineError {
            file: l.file.clone(),
            line: l.line,
            origin: l.origin,
            message: m,
        }),
    }
}

fn parse_fields(
    l: &AuthLine,
    version: u32,
    build: Build,
    resolve: Resolver,
) -> Result<Rule, String> {
    let mut fields = l.fields.iter();
    let toks = fields.next().ok_or("empty line")?;
    if toks.len() > 1 {
        return Err("multiple values specified for connection type".into());
    }
    let conn = ConnType::parse(&toks[0].s)
        .ok_or_else(|| format!("invalid connection type \"{}\"", toks[0].s))?;
    // hostssl without SSL and hostgssenc without GSSAPI are logged, not rejected; with the
    // assumed build they are fine (ssl = off is reported by the server, not knowable here).
    let _ = build.ssl && build.gss;

    let dbs = fields
        .next()
        .ok_or("end-of-line before database specification")?;
    let mut regexes = Vec::new();
    let mut compile = |t: &Token| -> Result<(), String> {
        if version >= 16 && t.s.starts_with('/') {
            let c = crate::pg_regex::compile(&t.s[1..])
                .map_err(|why| format!("invalid regular expression \"{}\": {why}", &t.s[1..]))?;
            regexes.push((t.s.to_string(), c));
        }
        Ok(())
    };
    for t in dbs {
        compile(t)?;
    }
    let users = fields
        .next()
        .ok_or("end-of-line before role specification")?;
    for t in users {
        compile(t)?;
    }

    let mut address = None;
    if conn != ConnType::Local {
        let toks = fields
            .next()
            .ok_or("end-of-line before IP address specification")?;
        if toks.len() > 1 {
            return Err("multiple values specified for host address".into());
        }
        let t = &toks[0];
        address = Some(if t.is_keyword("all") {
            Address::All
        } else if t.is_keyword("samehost") {
            Address::SameHost
        } else if t.is_keyword("samenet") {
            Address::SameNet
        } else {
            let (host, cidr) = match t.s.find('/') {
                Some(i) => (&t.s[..i], Some(&t.s[i + 1..])),
                None => (t.s.as_ref(), None),
            };
            match addr::numeric_host(host) {
                Numeric::Invalid(why) => {
                    return Err(format!("invalid IP address \"{host}\": {why}"));
                }
                Numeric::NotNumeric => {
                    if cidr.is_some() {
                        return Err(format!(
                            "specifying both host name and CIDR mask is invalid: \"{}\"",
                            t.s
                        ));
                    }
                    Address::Hostname(host.to_string())
                }
                Numeric::Ip(ip) => match cidr {
                    Some(bits) => {
                        let mask = addr::cidr_mask(bits, &ip)
                            .ok_or_else(|| format!("invalid CIDR mask in address \"{}\"", t.s))?;
                        Address::Ip { addr: ip, mask }
                    }
                    None => {
                        let toks = fields
                            .next()
                            .ok_or("end-of-line before netmask specification")?;
                        if toks.len() > 1 {
                            return Err("multiple values specified for netmask".into());
                        }
                        let m = &toks[0].s;
                        let mask = match addr::numeric_host(m) {
                            Numeric::Ip(mask) => mask,
                            Numeric::NotNumeric => {
                                return Err(format!(
                                    "invalid IP mask \"{m}\": {}",
                                    addr::gai_strerror(libc::EAI_NONAME)
                                ))
                            }
                            Numeric::Invalid(why) => {
                                return Err(format!("invalid IP mask \"{m}\": {why}"))
                            }
                        };
                        if addr::bits(&ip).1 != addr::bits(&mask).1 {
                            return Err("IP address and mask do not match".into());
                        }
                        Address::Ip { addr: ip, mask }
                    }
                },
            }
        });
    }

    let toks = fields
        .next()
        .ok_or("end-of-line before authentication method")?;
    if toks.len() > 1 {
        return Err("multiple values specified for authentication type".into());
    }
    let written = toks[0].s.as_ref();
    const METHODS: &[&str] = &[
        "trust",
        "ident",
        "peer",
        "password",
        "reject",
        "md5",
        "scram-sha-256",
        "cert",
        "gss",
        "sspi",
        "pam",
        "bsd",
        "ldap",
        "radius",
        "oauth",
    ];
    let known: &'static str = METHODS
        .iter()
        .find(|m| **m == written)
        .copied()
        .unwrap_or("");
    let supported = match known {
        "trust" | "ident" | "peer" | "password" | "reject" | "md5" | "scram-sha-256" | "cert" => {
            true
        }
        "gss" => build.gss,
        "sspi" => build.sspi,
        "pam" => build.pam,
        "bsd" => build.bsd,
        "ldap" => build.ldap,
        "radius" if version <= 18 => true,
        "oauth" if version >= 18 => true,
        _ => return Err(format!("invalid authentication method \"{written}\"")),
    };
    if !supported {
        return Err(format!(
            "invalid authentication method \"{written}\": not supported by this build"
        ));
    }
    let method = if conn == ConnType::Local && known == "ident" {
        "peer"
    } else {
        known
    };
    if conn == ConnType::Local && method == "gss" {
        return Err("gssapi authentication is not supported on local sockets".into());
    }
    if conn != ConnType::Local && method == "peer" {
        return Err("peer authentication is only supported on local sockets".into());
    }
    if conn != ConnType::HostSsl && method == "cert" {
        return Err("cert authentication is only supported on hostssl connections".into());
    }

    let mut options = Vec::new();
    let mut o = Opts::default();
    let mut warning = None;
    for toks in fields {
        for t in toks {
            let Some(eq) = t.s.find('=') else {
                return Err(format!(
                    "authentication option not in name=value format: {}",
                    t.s
                ));
            };
            let (name, val) = (&t.s[..eq], &t.s[eq + 1..]);
            auth_opt(
                name,
                val,
                conn,
                method,
                version,
                &mut o,
                &mut warning,
                resolve,
            )?;
            options.push((name.to_string(), val.to_string()));
        }
    }

    if method == "ldap" {
        if o.ldapprefix || o.ldapsuffix {
            if o.ldapbasedn
                || o.ldapbinddn
                || o.ldapbindpasswd
                || o.ldapsearchattribute
                || o.ldapsearchfilter
            {
                // 18 reworded the message; the rule is the same.
                return Err(if version >= 18 {
                    "cannot mix options for simple bind and search+bind modes".into()
                } else {
                    "cannot use ldapbasedn, ldapbinddn, ldapbindpasswd, ldapsearchattribute, ldapsearchfilter, or ldapurl together with ldapprefix".into()
                });
            }
        } else if !o.ldapbasedn {
            return Err("authentication method \"ldap\" requires argument \"ldapbasedn\", \"ldapprefix\", or \"ldapsuffix\" to be set".into());
        }
        if version >= 11 && o.ldapsearchattribute && o.ldapsearchfilter {
            return Err("cannot use ldapsearchattribute together with ldapsearchfilter".into());
        }
        let _ = o.ldapserver;
    }
    if method == "radius" {
        // An empty list is NIL, which is what "not set" is in the server.
        let servers = o.radiusservers.filter(|&n| n > 0).ok_or(
            "authentication method \"radius\" requires argument \"radiusservers\" to be set",
        )?;
        let secrets = o.radiussecrets.filter(|&n| n > 0).ok_or(
            "authentication method \"radius\" requires argument \"radiussecrets\" to be set",
        )?;
        if servers == 0 {
            return Err("list of RADIUS servers cannot be empty".into());
        }
        if secrets == 0 {
            return Err("list of RADIUS secrets cannot be empty".into());
        }
        if !(secrets == 1 || secrets == servers) {
            return Err(format!("the number of RADIUS secrets ({secrets}) must be 1 or the same as the number of RADIUS servers ({servers})"));
        }
        let p = o.radiusports;
        if !(p == 0 || p == 1 || p == servers) {
            return Err(format!("the number of RADIUS ports ({p}) must be 1 or the same as the number of RADIUS servers ({servers})"));
        }
        let i = o.radiusidentifiers;
        if !(i == 0 || i == 1 || i == servers) {
            return Err(format!("the number of RADIUS identifiers ({i}) must be 1 or the same as the number of RADIUS servers ({servers})"));
        }
    }
    if method == "oauth" {
        if !o.oauth_scope {
            return Err(
                "authentication method \"oauth\" requires argument \"scope\" to be set".into(),
            );
        }
        if !o.oauth_issuer {
            return Err(
                "authentication method \"oauth\" requires argument \"issuer\" to be set".into(),
            );
        }
        if o.oauth_skip_usermap && o.usermap {
            return Err("map cannot be used in combination with delegate_ident_mapping".into());
        }
    }

    let extra = Extra {
        options,
        comment: l.comment.clone().filter(|c| !c.is_empty()),
        warning,
        regexes,
    };
    let some = !extra.options.is_empty()
        || extra.comment.is_some()
        || extra.warning.is_some()
        || !extra.regexes.is_empty();
    Ok(Rule {
        file: l.file.clone(),
        line: l.line,
        origin: l.origin,
        conn,
        // Filled by the caller (copied or moved).
        databases: Vec::new(),
        users: Vec::new(),
        address,
        method,
        extra: some.then(|| Box::new(extra)),
    })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `SplitGUCList(val, ',')`: None on a syntax error.
pub fn split_guc_list(val: &str) -> Option<Vec<String>> {
    let s: Vec<char> = val.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    if i == s.len() {
        return Some(out);
    }
    loop {
        let mut name = String::new();
        if s[i] == '"' {
            i += 1;
            loop {
                if i >= s.len() {
                    return None;
                }
                if s[i] == '"' {
                    if s.get(i + 1) == Some(&'"') {
                        name.push('"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                name.push(s[i]);
                i += 1;
            }
        } else {
            let start = i;
            while i < s.len() && s[i] != ',' && !is_space(s[i]) {
                name.push(s[i]);
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        out.push(name);
        if i < s.len() && s[i] == ',' {
            i += 1;
            while i < s.len() && is_space(s[i]) {
                i += 1;
            }
        } else if i == s.len() {
            return Some(out);
        } else {
            return None;
        }
    }
}

/// Minimal `ldap_url_parse` (OpenLDAP): the parts PostgreSQL uses. Err is the server message.
fn ldap_url(val: &str, o: &mut Opts) -> Result<(), String> {
    // The server passes OpenLDAP's URL error code to ldap_err2string, hence the odd text.
    let fail = || format!("could not parse LDAP URL \"{val}\": Time limit exceeded");
    let lower = val.to_ascii_lowercase();
    let scheme = ["ldap", "ldaps", "ldapi", "cldap"]
        .into_iter()
        .find(|s| lower.starts_with(&format!("{s}://")))
        .ok_or_else(fail)?;
    let rest = &val[scheme.len() + 3..];
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if let Some(i) = hostport.rfind(':') {
        let port = &hostport[i + 1..];
        if !hostport.ends_with(']')
            && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(fail());
        }
    }
    if let Some(path) = path {
        let mut parts = path.split('?');
        o.ldapbasedn = true;
        let _dn = parts.next();
        if let Some(attrs) = parts.next() {
            if !attrs.is_empty() {
                o.ldapsearchattribute = true;
            }
        }
        if let Some(scope) = parts.next() {
            if !matches!(
                scope.to_ascii_lowercase().as_str(),
                "" | "base"
                    | "one"
                    | "onelevel"
                    | "sub"
                    | "subtree"
                    | "subord"
                    | "subordinate"
                    | "children"
            ) {
                return Err(fail());
            }
        }
        if let Some(filter) = parts.next() {
            if !filter.is_empty() {
                o.ldapsearchfilter = true;
            }
        }
    }
    if scheme != "ldap" && scheme != "ldaps" {
        return Err(format!("unsupported LDAP URL scheme: {scheme}"));
    }
    o.ldapserver = !hostport.is_empty();
    Ok(())
}

/// `parse_hba_auth_opt`.
#[allow(clippy::too_many_arguments)]
fn auth_opt(
    name: &str,
    val: &str,
    conn: ConnType,
    method: &str,
    version: u32,
    o: &mut Opts,
    warning: &mut Option<String>,
    resolve: Resolver,
) -> Result<(), String> {
    let only = |valid: &str| {
        Err(format!(
            "authentication option \"{name}\" is only valid for authentication methods {valid}"
        ))
    };
    let require = |m: &str| if method == m { Ok(()) } else { only(m) };
    match name {
        "map" => {
            let ok = matches!(method, "ident" | "peer" | "gss" | "sspi" | "cert")
                || (version >= 18 && method == "oauth");
            if !ok {
                return only(if version >= 18 {
                    "ident, peer, gssapi, sspi, cert, and oauth"
                } else {
                    "ident, peer, gssapi, sspi, and cert"
                });
            }
            o.usermap = true;
        }
        "clientcert" => {
            if conn != ConnType::HostSsl {
                return Err("clientcert can only be configured for \"hostssl\" rows".into());
            }
            if version >= 14 {
                match val {
                    "verify-full" => {}
                    "verify-ca" if method == "cert" => {
                        return Err("clientcert can only be set to \"verify-full\" when using \"cert\" authentication".into());
                    }
                    "verify-ca" => {}
                    _ => return Err(format!("invalid value for clientcert: \"{val}\"")),
                }
            } else {
                match val {
                    "1" | "verify-ca" | "verify-full" => {}
                    "0" | "no-verify" if method == "cert" => {
                        return Err("clientcert cannot be set to \"no-verify\" when using \"cert\" authentication".into());
                    }
                    "0" | "no-verify" => {}
                    _ => return Err(format!("invalid value for clientcert: \"{val}\"")),
                }
            }
        }
        "clientname" if version >= 14 => {
            if conn != ConnType::HostSsl {
                return Err("clientname can only be configured for \"hostssl\" rows".into());
            }
            if val != "CN" && val != "DN" {
                return Err(format!("invalid value for clientname: \"{val}\""));
            }
        }
        "pamservice" | "pam_use_hostname" => require("pam")?,
        "ldapurl" => {
            require("ldap")?;
            ldap_url(val, o)?;
        }
        "ldaptls" => require("ldap")?,
        "ldapscheme" => {
            require("ldap")?;
            if val != "ldap" && val != "ldaps" {
                // Logged, yet the line loads.
                *warning = Some(format!("invalid ldapscheme value: \"{val}\""));
            }
        }
        "ldapserver" => {
            require("ldap")?;
            o.ldapserver = true;
        }
        "ldapport" => {
            require("ldap")?;
            if atoi(val) == 0 {
                return Err(format!("invalid LDAP port number: \"{val}\""));
            }
        }
        "ldapbinddn" => {
            require("ldap")?;
            o.ldapbinddn = true;
        }
        "ldapbindpasswd" => {
            require("ldap")?;
            o.ldapbindpasswd = true;
        }
        "ldapsearchattribute" => {
            require("ldap")?;
            o.ldapsearchattribute = true;
        }
        "ldapsearchfilter" if version >= 11 => {
            require("ldap")?;
            o.ldapsearchfilter = true;
        }
        "ldapbasedn" => {
            require("ldap")?;
            o.ldapbasedn = true;
        }
        "ldapprefix" => {
            require("ldap")?;
            o.ldapprefix = true;
        }
        "ldapsuffix" => {
            require("ldap")?;
            o.ldapsuffix = true;
        }
        "krb_realm" | "include_realm" => {
            if method != "gss" && method != "sspi" {
                return only("gssapi and sspi");
            }
        }
        "compat_realm" | "upn_username" => {
            if method != "sspi" {
                return only("sspi");
            }
        }
        "radiusservers" if version <= 18 => {
            require("radius")?;
            let list = split_guc_list(val)
                .ok_or_else(|| format!("could not parse RADIUS server list \"{val}\""))?;
            for s in &list {
                if !resolve(s) {
                    return Err(format!("could not translate RADIUS server name \"{s}\" to address: Name or service not known"));
                }
            }
            o.radiusservers = Some(list.len());
        }
        "radiusports" if version <= 18 => {
            require("radius")?;
            let list = split_guc_list(val)
                .ok_or_else(|| format!("invalid RADIUS port number: \"{val}\""))?;
            if list.iter().any(|p| atoi(p) == 0) {
                return Err(format!("invalid RADIUS port number: \"{val}\""));
            }
            o.radiusports = list.len();
        }
        "radiussecrets" if version <= 18 => {
            require("radius")?;
            let list = split_guc_list(val)
                .ok_or_else(|| format!("could not parse RADIUS secret list \"{val}\""))?;
            o.radiussecrets = Some(list.len());
        }
        "radiusidentifiers" if version <= 18 => {
            require("radius")?;
            let list = split_guc_list(val)
                .ok_or_else(|| format!("could not parse RADIUS identifiers list \"{val}\""))?;
            o.radiusidentifiers = list.len();
        }
        "issuer" | "scope" | "validator" | "delegate_ident_mapping" if version >= 18 => {
            require("oauth")?;
            match name {
                "issuer" => o.oauth_issuer = true,
                "scope" => o.oauth_scope = true,
                "delegate_ident_mapping" => o.oauth_skip_usermap = val == "1",
                _ => {}
            }
        }
        _ => {
            return Err(format!(
                "unrecognized authentication option name: \"{name}\""
            ))
        }
    }
    Ok(())
}

/// C `atoi`: leading blanks, a sign, digits; anything else stops it.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches(is_space);
    let (neg, d) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = d.chars().take_while(char::is_ascii_digit).collect();
    let v = digits
        .parse::<i64>()
        .unwrap_or(if digits.is_empty() { 0 } else { i64::MAX });
    if neg {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex;
    use crate::testing::NoFiles;
    use std::path::Path;

    fn parse(line: &str, v: u32) -> Result<Rule, String> {
        let t = lex::tokenize(Path::new("/d/pg_hba.conf"), line, v, &NoFiles);
        parse_line(&t.lines[0], v, Build::default(), &|_| true).map_err(|e| e.message)
    }
    fn e(line: &str) -> String {
        parse(line, 16).unwrap_err()
    }

    #[test]
    fn appendix_a_errors() {
        assert_eq!(
            e("local db1 ,db2 all peer"),
            "invalid authentication method \"all\""
        );
        assert_eq!(
            e("local db1, all peer"),
            "end-of-line before authentication method"
        );
        assert_eq!(
            e("host all all host.example.com/32 md5"),
            "specifying both host name and CIDR mask is invalid: \"host.example.com/32\""
        );
        assert_eq!(
            e("host all all 10.1.2.3 md5"),
            "invalid IP mask \"md5\": Name or service not known"
        );
        assert_eq!(
            e("host all all ::1/128 peer"),
            "peer authentication is only supported on local sockets"
        );
        assert_eq!(
            e("host all all ::1/128 cert"),
            "cert authentication is only supported on hostssl connections"
        );
        assert!(e("hostssl all all ::1/128 cert clientcert=verify-ca").contains("verify-full"));
        assert!(parse("hostssl all all ::1/128 md5 clientcert=1", 13).is_ok());
        assert!(parse("hostssl all all ::1/128 md5 clientcert=1", 14).is_err());
        assert_eq!(
            e("host all all ::1/128 radius radiusservers=a,b radiussecrets=x"),
            "authentication option not in name=value format: b"
        );
        assert_eq!(
            e("host \"unterminated all ::1/128 trust"),
            "end-of-line before role specification"
        );
        assert_eq!(e("include a.conf b"), "invalid connection type \"include\"");
        assert!(e(r"host /^db\d{2,4}$ all ::1/128 trust").starts_with("invalid regular expression"));
        assert_eq!(
            e("host all all 10.0.0.0/33 md5"),
            "invalid CIDR mask in address \"10.0.0.0/33\""
        );
        assert_eq!(
            e("host all all 10.0.0.1 ffff:: md5"),
            "IP address and mask do not match"
        );
        assert_eq!(
            e("local all all bsd"),
            "invalid authentication method \"bsd\": not supported by this build"
        );
        assert_eq!(e("local all all ldap"), "authentication method \"ldap\" requires argument \"ldapbasedn\", \"ldapprefix\", or \"ldapsuffix\" to be set");
        assert_eq!(e("local all all md5 map=x"), "authentication option \"map\" is only valid for authentication methods ident, peer, gssapi, sspi, and cert");
    }

    #[test]
    fn accepted_forms() {
        let r = parse("host all all 10.1.2.3 255.255.255.255 md5", 16).unwrap();
        assert_eq!(
            r.address.unwrap().view(),
            ("10.1.2.3".into(), Some("255.255.255.255".into()))
        );
        let r = parse("host all all 10.1.2.3/8 md5", 16).unwrap();
        assert_eq!(
            r.address.unwrap().view(),
            ("10.1.2.3".into(), Some("255.0.0.0".into()))
        );
        let r = parse("host all all .example.com md5", 16).unwrap();
        assert_eq!(r.address, Some(Address::Hostname(".example.com".into())));
        assert_eq!(parse("local all all ident", 16).unwrap().method, "peer");
        let r = parse(r#"host "/^db\d{2,4}$" all ::1/128 trust"#, 16).unwrap();
        assert_eq!(r.regexes().len(), 1);
        let r = parse(
            "host all all ::1/128 radius radiusservers=\"a,b\" radiussecrets=x",
            16,
        )
        .unwrap();
        assert_eq!(r.options()[0], ("radiusservers".into(), "a,b".into()));
        assert!(
            parse("host all all \"samehost\" md5", 16).unwrap().address
                == Some(Address::Hostname("samehost".into()))
        );
        assert!(parse("hostssl all all all cert clientname=DN map=m", 15).is_ok());
        assert!(parse("local all all ldap ldapurl=\"ldap://h/dc=x?uid?sub\"", 15).is_ok());
    }

    #[test]
    fn guc_lists() {
        assert_eq!(split_guc_list("a, b ,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_guc_list("\"x,y\",z").unwrap(), ["x,y", "z"]);
        assert_eq!(split_guc_list("").unwrap(), Vec::<String>::new());
        assert!(split_guc_list("a,,b").is_none());
        assert!(split_guc_list("a b").is_none());
    }
}
