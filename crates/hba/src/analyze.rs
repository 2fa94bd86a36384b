//! What the rules mean together: PostgreSQL's first-match search (`check_hba`) for a described
//! connection, which rules can never match because an earlier one covers them, and the
//! warnings of `check`.

use crate::addr;
use crate::model::{meaning, Address, ConnType, Field, Meaning, Rule};
use std::collections::HashMap;
use std::net::IpAddr;

/// A connection attempt, as `match` describes it.
#[derive(Debug, Clone)]
pub struct Conn {
    /// `Local`, or the TCP kind: `Host` (plain), `HostSsl` (SSL), `HostGssEnc` (GSS-encrypted).
    pub conn: ConnType,
    pub database: String,
    pub user: String,
    pub address: Option<IpAddr>,
    /// A physical replication connection (walsender without a database).
    pub replication: bool,
    /// Roles the user is known to be a member of; None: unknown.
    pub member_of: Option<Vec<String>>,
}

/// A three-valued answer: some facts (membership, DNS) cannot be known from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Maybe(String),
}

fn any(results: impl IntoIterator<Item = Tri>) -> Tri {
    let mut maybe = None;
    for r in results {
        match r {
            Tri::Yes => return Tri::Yes,
            Tri::Maybe(m) => {
                maybe.get_or_insert(m);
            }
            Tri::No => {}
        }
    }
    maybe.map_or(Tri::No, Tri::Maybe)
}

fn member(c: &Conn, role: &str) -> Tri {
    // is_member_of_role_nosuper: a role is a member of itself; superusers are not implied.
    if c.user == role {
        return Tri::Yes;
    }
    match &c.member_of {
        Some(list) if list.iter().any(|r| r == role) => Tri::Yes,
        Some(_) => Tri::No,
        None => Tri::Maybe(format!("depends on membership of role \"{role}\"")),
    }
}

fn regex_match(rule: &Rule, token: &str, name: &str) -> Tri {
    match rule.regexes.iter().find(|(t, _)| t == token) {
        Some((_, Some(re))) => {
            if re.is_match(name) {
                Tri::Yes
            } else {
                Tri::No
            }
        }
        _ => Tri::Maybe(format!(
            "regular expression \"{}\" is not evaluated here",
            &token[1..]
        )),
    }
}

/// `check_db`.
fn check_db(rule: &Rule, c: &Conn, version: u32) -> Tri {
    any(rule.databases.iter().map(|t| {
        if c.replication {
            return if t.is_keyword("replication") {
                Tri::Yes
            } else {
                Tri::No
            };
        }
        match meaning(t, Field::Database, version) {
            Meaning::Keyword(k) => match k.as_str() {
                "all" => Tri::Yes,
                "sameuser" if c.database == c.user => Tri::Yes,
                "samerole" => member(c, &c.database),
                _ => Tri::No,
            },
            Meaning::Regex(s) => regex_match(rule, &s, &c.database),
            Meaning::Name(n) | Meaning::Member(n) => {
                if n == c.database {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
        }
    }))
}

/// `check_role`.
fn check_role(rule: &Rule, c: &Conn, version: u32) -> Tri {
    any(rule.users.iter().map(|t| match meaning(t, Field::User, version) {
        Meaning::Member(role) => member(c, &role),
        Meaning::Keyword(_) => Tri::Yes,
        Meaning::Regex(s) => regex_match(rule, &s, &c.user),
        Meaning::Name(n) => {
            if n == c.user {
                Tri::Yes
            } else {
                Tri::No
            }
        }
    }))
}

/// Whether `rule` admits connection `c`.
pub fn rule_matches(
    rule: &Rule,
    c: &Conn,
    version: u32,
    interfaces: &[(IpAddr, IpAddr)],
) -> Tri {
    if (rule.conn == ConnType::Local) != (c.conn == ConnType::Local) {
        return Tri::No;
    }
    let mut addr_result = Tri::Yes;
    if rule.conn != ConnType::Local {
        if rule.conn.tcp_kinds() & c.conn.conn_kind() == 0 {
            return Tri::No;
        }
        let Some(client) = c.address else {
            return Tri::Maybe("no client address given".into());
        };
        addr_result = match rule.address.as_ref() {
            Some(Address::All) | None => Tri::Yes,
            Some(Address::Ip { addr, mask }) => {
                if addr::in_range(&client, addr, mask) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Some(Address::Hostname(h)) => Tri::Maybe(format!(
                "depends on DNS: whether {client} resolves to host name \"{h}\" and back"
            )),
            Some(Address::SameHost) => {
                let all_ones = |a: &IpAddr| match a {
                    IpAddr::V4(_) => IpAddr::V4(u32::MAX.into()),
                    IpAddr::V6(_) => IpAddr::V6(u128::MAX.into()),
                };
                if interfaces
                    .iter()
                    .any(|(a, _)| addr::in_range(&client, a, &all_ones(a)))
                {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Some(Address::SameNet) => {
                if interfaces
                    .iter()
                    .any(|(a, m)| addr::in_range(&client, a, m))
                {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
        };
        if addr_result == Tri::No {
            return Tri::No;
        }
    }
    let db = check_db(rule, c, version);
    if db == Tri::No {
        return Tri::No;
    }
    let role = check_role(rule, c, version);
    if role == Tri::No {
        return Tri::No;
    }
    // All three must hold: the first uncertainty is the reason.
    for t in [addr_result, db, role] {
        if let Tri::Maybe(m) = t {
            return Tri::Maybe(m);
        }
    }
    Tri::Yes
}

/// The outcome of the first-match search.
#[derive(Debug, Clone, Default)]
pub struct MatchResult {
    /// The first rule that surely matches.
    pub rule: Option<usize>,
    /// Earlier rules that may match, with why it cannot be told here.
    pub undecided: Vec<(usize, String)>,
}

/// `check_hba`: first match wins; no match is an implicit reject.
pub fn first_match(
    rules: &[Rule],
    c: &Conn,
    version: u32,
    interfaces: &[(IpAddr, IpAddr)],
) -> MatchResult {
    let mut out = MatchResult::default();
    for (i, r) in rules.iter().enumerate() {
        match rule_matches(r, c, version, interfaces) {
            Tri::Yes => {
                out.rule = Some(i);
                break;
            }
            Tri::Maybe(why) => out.undecided.push((i, why)),
            Tri::No => {}
        }
    }
    out
}

fn covers_token(a: &Rule, b_tok: &Meaning, field: Field, version: u32) -> bool {
    let a_toks: Vec<Meaning> = match field {
        Field::Database => a.databases.iter(),
        Field::User => a.users.iter(),
    }
    .map(|t| meaning(t, field, version))
    .collect();
    let replication = matches!(b_tok, Meaning::Keyword(k) if k == "replication");
    if !replication && a_toks.iter().any(|m| matches!(m, Meaning::Keyword(k) if k == "all")) {
        return true;
    }
    if a_toks.contains(b_tok) {
        return true;
    }
    if let Meaning::Name(n) = b_tok {
        return a_toks.iter().any(|m| match m {
            Meaning::Regex(s) => matches!(regex_match(a, s, n), Tri::Yes),
            _ => false,
        });
    }
    false
}

fn covers_address(a: &Option<Address>, b: &Option<Address>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Address::All), Some(_)) => true,
        (Some(Address::Ip { addr: aa, mask: am }), Some(Address::Ip { addr: ba, mask: bm })) => {
            let (aa, w1) = addr::bits(aa);
            let (am, _) = addr::bits(am);
            let (ba, w2) = addr::bits(ba);
            let (bm, _) = addr::bits(bm);
            w1 == w2 && am & !bm == 0 && (aa ^ ba) & am == 0
        }
        (Some(Address::Hostname(ah)), Some(Address::Hostname(bh))) => {
            let (ah, bh) = (ah.to_ascii_lowercase(), bh.to_ascii_lowercase());
            ah == bh || (ah.starts_with('.') && bh.ends_with(&ah))
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether every connection `b` admits is admitted by `a` (so `b` after `a` never matches).
/// Only sure answers: membership, DNS and undecidable regexes never count as covering.
pub fn covers(a: &Rule, b: &Rule, version: u32) -> bool {
    let types = if a.conn == ConnType::Local || b.conn == ConnType::Local {
        a.conn == b.conn
    } else {
        b.conn.tcp_kinds() & !a.conn.tcp_kinds() == 0
    };
    types
        && covers_address(&a.address, &b.address)
        && b.databases
            .iter()
            .all(|t| covers_token(a, &meaning(t, Field::Database, version), Field::Database, version))
        && b.users
            .iter()
            .all(|t| covers_token(a, &meaning(t, Field::User, version), Field::User, version))
}

/// What identifies a rule for `add`/`remove`: type, database and user sets, address.
pub fn identity(r: &Rule, version: u32) -> String {
    let set = |toks: &[crate::lex::Token], f: Field| {
        let mut v: Vec<Meaning> = toks.iter().map(|t| meaning(t, f, version)).collect();
        v.sort();
        v.dedup();
        format!("{v:?}")
    };
    format!(
        "{}|{}|{}|{}",
        r.conn.name(),
        set(&r.databases, Field::Database),
        set(&r.users, Field::User),
        r.address.as_ref().map(Address::key).unwrap_or_default()
    )
}

/// The options in a comparable form: the last value of each name wins, as in the server.
pub fn options_key(r: &Rule) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = Vec::new();
    for (k, v) in &r.options {
        m.retain(|(k2, _)| k2 != k);
        m.push((k.clone(), v.clone()));
    }
    m.sort();
    m
}

/// Identity plus method and options: two rules with equal keys behave the same.
pub fn full_key(r: &Rule, version: u32) -> String {
    format!("{}|{}|{:?}", identity(r, version), r.method, options_key(r))
}

/// For each rule, the first earlier rule that covers it. Indexed by user and by network so a
/// 100,000-line file is not compared pairwise.
pub fn shadowed_by(rules: &[Rule], version: u32) -> Vec<Option<usize>> {
    #[derive(Default)]
    struct Index {
        user_all: Vec<usize>,
        by_user: HashMap<Meaning, Vec<usize>>,
        local: Vec<usize>,
        addr_other: Vec<usize>,
        by_net: HashMap<(u32, u32, u128), Vec<usize>>,
    }
    let mut ix = Index::default();
    let empty: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        // Candidate lists by user.
        let first_user = r.users.first().map(|t| meaning(t, Field::User, version));
        let mut by_user: Vec<&Vec<usize>> = vec![&ix.user_all];
        if let Some(m) = &first_user {
            by_user.push(ix.by_user.get(m).unwrap_or(&empty));
        }
        // Candidate lists by address.
        let mut by_addr: Vec<&Vec<usize>> = Vec::new();
        match &r.address {
            None => by_addr.push(&ix.local),
            Some(Address::Ip { addr: a, mask }) => {
                by_addr.push(&ix.addr_other);
                let (bits, w) = addr::bits(a);
                match addr::prefix_len(mask) {
                    Some(p) => {
                        for q in 0..=p {
                            let m = if q == 0 { 0 } else { (u128::MAX >> (128 - w)) & !((1u128 << (w - q)) - 1) };
                            if let Some(v) = ix.by_net.get(&(w, q, bits & m)) {
                                by_addr.push(v);
                            }
                        }
                    }
                    None => by_addr = by_user.clone(),
                }
            }
            Some(_) => by_addr.push(&ix.addr_other),
        }
        let size = |l: &Vec<&Vec<usize>>| l.iter().map(|v| v.len()).sum::<usize>();
        let lists = if size(&by_addr) < size(&by_user) {
            by_addr
        } else {
            by_user
        };
        let mut cand: Vec<usize> = lists.into_iter().flatten().copied().collect();
        cand.sort_unstable();
        cand.dedup();
        out.push(cand.into_iter().find(|&j| covers(&rules[j], r, version)));

        // Index rule i.
        let users: Vec<Meaning> = r.users.iter().map(|t| meaning(t, Field::User, version)).collect();
        if users.iter().any(|m| matches!(m, Meaning::Keyword(_))) {
            ix.user_all.push(i);
        } else {
            for m in users {
                let v = ix.by_user.entry(m).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
        }
        match &r.address {
            None => ix.local.push(i),
            Some(Address::Ip { addr: a, mask }) => match addr::prefix_len(mask) {
                Some(p) => {
                    let (bits, w) = addr::bits(a);
                    let (m, _) = addr::bits(mask);
                    ix.by_net.entry((w, p, bits & m)).or_default().push(i);
                }
                None => ix.addr_other.push(i),
            },
            Some(_) => ix.addr_other.push(i),
        }
    }
    out
}

/// A `check` finding that does not stop the server from loading the file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub kind: &'static str,
    pub message: String,
}

fn is_loopback_only(a: &Option<Address>) -> bool {
    match a {
        None | Some(Address::SameHost) => true,
        Some(Address::Ip { addr: ip, mask }) => {
            let lo4 = Address::Ip {
                addr: "127.0.0.0".parse().expect("literal"),
                mask: "255.0.0.0".parse().expect("literal"),
            };
            let lo6 = Address::Ip {
                addr: "::1".parse().expect("literal"),
                mask: IpAddr::V6(u128::MAX.into()),
            };
            let me = Some(Address::Ip {
                addr: *ip,
                mask: *mask,
            });
            covers_address(&Some(lo4), &me) || covers_address(&Some(lo6), &me)
        }
        _ => false,
    }
}

fn is_everyone(a: &Option<Address>) -> bool {
    match a {
        Some(Address::All) => true,
        Some(Address::Ip { mask, .. }) => addr::bits(mask).0 == 0,
        _ => false,
    }
}

/// The warnings of `check`, in file order.
pub fn warnings(rules: &[Rule], version: u32) -> Vec<Warning> {
    let mut out = Vec::new();
    let shadow = shadowed_by(rules, version);
    for (i, r) in rules.iter().enumerate() {
        let file = r.file.display().to_string();
        let mut warn = |kind: &'static str, message: String| {
            out.push(Warning {
                file: file.clone(),
                line: r.line,
                kind,
                message,
            })
        };
        if let Some(j) = shadow[i] {
            let e = &rules[j];
            if full_key(e, version) == full_key(r, version) {
                warn(
                    "duplicate",
                    format!("duplicate of the rule at {}:{}", e.file.display(), e.line),
                );
            } else {
                warn(
                    "shadowed",
                    format!(
                        "can never match: the rule at {}:{} comes first and matches every connection this one would",
                        e.file.display(),
                        e.line
                    ),
                );
            }
        }
        let remote = r.conn != ConnType::Local && !is_loopback_only(&r.address);
        let weak = matches!(r.method.as_str(), "trust" | "password" | "md5");
        if remote && r.method == "trust" {
            warn(
                "trust_remote",
                "trust from non-local addresses: anyone who can reach the server logs in without a password".into(),
            );
        }
        if remote && r.method == "password" {
            warn(
                "password_remote",
                format!(
                    "password sends the password in clear text{}",
                    if r.conn == ConnType::HostSsl {
                        " (inside SSL here)"
                    } else {
                        " over the network"
                    }
                ),
            );
        }
        if r.method == "md5" {
            warn(
                "md5",
                "md5 is deprecated (PostgreSQL 18); prefer scram-sha-256".into(),
            );
        }
        if weak && is_everyone(&r.address) {
            warn(
                "open_to_world",
                format!("{} open to every address with a weak method", r.method),
            );
        }
        if let Some(Address::Ip { addr: a, mask }) = &r.address {
            let (b, _) = addr::bits(a);
            let (m, _) = addr::bits(mask);
            if b & !m != 0 && addr::prefix_len(mask).is_some() {
                warn(
                    "host_bits",
                    format!(
                        "address {} has bits set outside its mask {}; the server matches the network {}",
                        addr::to_text(a),
                        addr::to_text(mask),
                        addr::to_text(&masked(a, mask))
                    ),
                );
            }
        }
        if let Some(w) = &r.warning {
            warn("server_warning", w.clone());
        }
    }
    out
}

fn masked(a: &IpAddr, m: &IpAddr) -> IpAddr {
    match (a, m) {
        (IpAddr::V4(a), IpAddr::V4(m)) => IpAddr::V4((u32::from(*a) & u32::from(*m)).into()),
        (IpAddr::V6(a), IpAddr::V6(m)) => IpAddr::V6((u128::from(*a) & u128::from(*m)).into()),
        _ => *a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex;
    use crate::model::{parse_line, Build};
    use std::path::Path;

    struct NoFiles;
    impl lex::Source for NoFiles {
        fn read(&self, _: &Path) -> std::io::Result<String> {
            Err(std::io::ErrorKind::NotFound.into())
        }
        fn read_dir(&self, _: &Path) -> std::io::Result<Vec<(String, bool)>> {
            Err(std::io::ErrorKind::NotFound.into())
        }
    }

    fn rules(text: &str, v: u32) -> Vec<Rule> {
        let t = lex::tokenize(Path::new("/d/pg_hba.conf"), text, v, &NoFiles);
        t.lines
            .iter()
            .map(|l| parse_line(l, v, Build::default(), &|_| true).unwrap())
            .collect()
    }

    fn conn(t: ConnType, db: &str, user: &str, a: Option<&str>) -> Conn {
        Conn {
            conn: t,
            database: db.into(),
            user: user.into(),
            address: a.map(|a| a.parse().unwrap()),
            replication: false,
            member_of: None,
        }
    }

    #[test]
    fn replication_matches_only_the_keyword() {
        let r = rules(
            "host all all 10.0.0.0/8 md5\nhost replication all 10.0.0.0/8 scram-sha-256\n",
            16,
        );
        let mut c = conn(ConnType::Host, "replication", "rep", Some("10.1.1.1"));
        c.replication = true;
        assert_eq!(first_match(&r, &c, 16, &[]).rule, Some(1));
        c.replication = false;
        assert_eq!(first_match(&r, &c, 16, &[]).rule, Some(0));
    }

    #[test]
    fn membership_and_dns_are_undecided() {
        let r = rules(
            "local all +admins trust\nhost all all db.example.com md5\nhost samerole all all md5\nhost all all all reject\n",
            16,
        );
        let c = conn(ConnType::Local, "x", "bob", None);
        let m = first_match(&r, &c, 16, &[]);
        assert_eq!(m.rule, None);
        assert_eq!(m.undecided.len(), 1);
        let mut c = c;
        c.member_of = Some(vec!["admins".into()]);
        assert_eq!(first_match(&r, &c, 16, &[]).rule, Some(0));
        let c = conn(ConnType::HostSsl, "x", "bob", Some("192.0.2.1"));
        let m = first_match(&r, &c, 16, &[]);
        assert_eq!(m.rule, Some(3));
        assert_eq!(m.undecided.iter().map(|u| u.0).collect::<Vec<_>>(), [1, 2]);
        // A role is a member of itself.
        let c = conn(ConnType::Local, "x", "admins", None);
        assert_eq!(first_match(&r, &c, 16, &[]).rule, Some(0));
    }

    #[test]
    fn types_and_addresses() {
        let r = rules(
            "hostssl all all 0.0.0.0/0 scram-sha-256\nhostnossl all all 10.0.0.0/8 md5\nhost all all ::1/128 trust\n",
            15,
        );
        assert_eq!(first_match(&r, &conn(ConnType::Host, "d", "u", Some("10.1.1.1")), 15, &[]).rule, Some(1));
        assert_eq!(first_match(&r, &conn(ConnType::HostSsl, "d", "u", Some("10.1.1.1")), 15, &[]).rule, Some(0));
        assert_eq!(first_match(&r, &conn(ConnType::Host, "d", "u", Some("::1")), 15, &[]).rule, Some(2));
        assert_eq!(first_match(&r, &conn(ConnType::Host, "d", "u", Some("::ffff:10.1.1.1")), 15, &[]).rule, None);
        assert_eq!(first_match(&r, &conn(ConnType::Local, "d", "u", None), 15, &[]).rule, None);
    }

    #[test]
    fn regex_entries() {
        let r = rules("local \"/^db\\d{2,4}$\" all trust\n", 16);
        assert_eq!(first_match(&r, &conn(ConnType::Local, "db123", "u", None), 16, &[]).rule, Some(0));
        assert_eq!(first_match(&r, &conn(ConnType::Local, "db1", "u", None), 16, &[]).rule, None);
        // Before 16 it is a plain name.
        let r = rules("local /^db all trust\n", 15);
        assert_eq!(first_match(&r, &conn(ConnType::Local, "/^db", "u", None), 15, &[]).rule, Some(0));
    }

    #[test]
    fn shadowing_and_duplicates() {
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost app bob 10.0.0.0/8 scram-sha-256\nhost replication all 10.0.0.0/8 md5\nlocal all all peer\nlocal all all peer\nhostssl all all 10.1.0.0/16 md5\nhost all +g 10.0.0.0/8 md5\n",
            16,
        );
        let s = shadowed_by(&r, 16);
        assert_eq!(s, vec![None, Some(0), None, None, Some(3), Some(0), Some(0)]);
        let w = warnings(&r, 16);
        assert!(w.iter().any(|w| w.kind == "duplicate" && w.line == 5));
        assert!(w.iter().any(|w| w.kind == "shadowed" && w.line == 2));
        assert!(w.iter().any(|w| w.kind == "open_to_world" && w.line == 1));
        let r = rules("host all all 10.0.0.0/16 md5\nhost all all 10.0.0.0/8 md5\n", 16);
        assert_eq!(shadowed_by(&r, 16), vec![None, None]);
    }

    #[test]
    fn samehost_uses_interfaces() {
        let r = rules("host all all samehost trust\nhost all all samenet md5\n", 15);
        let ifs = vec![("10.2.3.4".parse().unwrap(), "255.255.0.0".parse().unwrap())];
        assert_eq!(first_match(&r, &conn(ConnType::Host, "d", "u", Some("10.2.3.4")), 15, &ifs).rule, Some(0));
        assert_eq!(first_match(&r, &conn(ConnType::Host, "d", "u", Some("10.2.9.9")), 15, &ifs).rule, Some(1));
        assert_eq!(first_match(&r, &conn(ConnType::Host, "d", "u", Some("10.3.9.9")), 15, &ifs).rule, None);
    }
}
