//! What the rules mean together: PostgreSQL's first-match search (`check_hba`) for a described
//! connection, which rules can never match because an earlier one covers them, and the
//! warnings of `check`.

use crate::addr;
use crate::parse_line::{meaning, Address, ConnType, Field, Meaning, Rule};
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
    any(rule
        .users
        .iter()
        .map(|t| match meaning(t, Field::User, version) {
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
pub fn rule_matches(rule: &Rule, c: &Conn, version: u32, interfaces: &[(IpAddr, IpAddr)]) -> Tri {
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

/// The meanings of a rule's database and user entries, computed once.
pub struct Sem {
    pub dbs: Vec<Meaning>,
    pub users: Vec<Meaning>,
}

impl Sem {
    pub fn of(r: &Rule, version: u32) -> Sem {
        Sem {
            dbs: r
                .databases
                .iter()
                .map(|t| meaning(t, Field::Database, version))
                .collect(),
            users: r
                .users
                .iter()
                .map(|t| meaning(t, Field::User, version))
                .collect(),
        }
    }
}

fn is_all(m: &Meaning) -> bool {
    matches!(m, Meaning::Keyword(k) if k == "all")
}

fn covers_token(a: &Rule, a_toks: &[Meaning], b_tok: &Meaning) -> bool {
    let replication = matches!(b_tok, Meaning::Keyword(k) if k == "replication");
    if !replication && a_toks.iter().any(is_all) {
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
    covers_sem(a, &Sem::of(a, version), b, &Sem::of(b, version))
}

fn covers_sem(a: &Rule, asem: &Sem, b: &Rule, bsem: &Sem) -> bool {
    let types = if a.conn == ConnType::Local || b.conn == ConnType::Local {
        a.conn == b.conn
    } else {
        b.conn.tcp_kinds() & !a.conn.tcp_kinds() == 0
    };
    types
        && covers_address(&a.address, &b.address)
        && bsem.dbs.iter().all(|t| covers_token(a, &asem.dbs, t))
        && bsem.users.iter().all(|t| covers_token(a, &asem.users, t))
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

/// Earlier rules of one (type, database key, user key) bucket, by address.
#[derive(Default)]
struct Bucket {
    /// Non-network addresses (all, names, samehost, samenet), odd masks, local rules.
    other: Vec<usize>,
    /// Prefix lengths present among its networks, per width.
    lens: Vec<(u32, u32)>,
}

/// Lists of rule indexes kept as chains in one arena (most lists hold one rule).
#[derive(Default)]
struct Chains {
    /// key → (first link, last link)
    heads: HashMap<(usize, u32, u32, u128), (usize, usize)>,
    /// (rule, next link or usize::MAX)
    links: Vec<(usize, usize)>,
}

impl Chains {
    fn push(&mut self, key: (usize, u32, u32, u128), rule: usize) {
        let n = self.links.len();
        self.links.push((rule, usize::MAX));
        match self.heads.get_mut(&key) {
            Some((_, tail)) => {
                self.links[*tail].1 = n;
                *tail = n;
            }
            None => {
                self.heads.insert(key, (n, n));
            }
        }
    }
    fn iter(&self, key: &(usize, u32, u32, u128)) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.heads.get(key).map_or(usize::MAX, |h| h.0);
        std::iter::from_fn(move || {
            if at == usize::MAX {
                return None;
            }
            let (rule, next) = self.links[at];
            at = next;
            Some(rule)
        })
    }
}

fn mask_of(w: u32, q: u32) -> u128 {
    if q == 0 {
        0
    } else {
        (u128::MAX >> (128 - w)) & !((1u128 << (w - q)) - 1)
    }
}

/// For each rule, the first earlier rule that covers it. Earlier rules are indexed by type,
/// database, user and network, so a 100,000-line file is not compared pairwise.
pub fn shadowed_by(rules: &[Rule], version: u32) -> Vec<Option<usize>> {
    let all = Meaning::Keyword("all".into());
    let sems: Vec<Sem> = rules.iter().map(|r| Sem::of(r, version)).collect();
    // Keyed by hashes of the entries: a collision only adds a candidate, which is checked.
    let mut bucket_ids: HashMap<(ConnType, u64, u64), usize> = HashMap::new();
    let mut buckets: Vec<Bucket> = Vec::new();
    let mut nets = Chains::default();
    let h = |m: &Meaning| {
        use std::hash::{Hash, Hasher};
        let mut s = std::collections::hash_map::DefaultHasher::new();
        m.hash(&mut s);
        s.finish()
    };
    let all_h = h(&all);
    // Rules with too many entries to index by every (database, user) pair.
    let mut wide: Vec<usize> = Vec::new();
    const TYPES: [ConnType; 6] = [
        ConnType::Local,
        ConnType::Host,
        ConnType::HostSsl,
        ConnType::HostNoSsl,
        ConnType::HostGssEnc,
        ConnType::HostNoGssEnc,
    ];
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let sem = &sems[i];
        let types: Vec<ConnType> = TYPES
            .iter()
            .copied()
            .filter(|t| {
                if r.conn == ConnType::Local || *t == ConnType::Local {
                    *t == r.conn
                } else {
                    r.conn.tcp_kinds() & !t.tcp_kinds() == 0
                }
            })
            .collect();
        let d0 = sem.dbs.first().map_or(all_h, h);
        let u0 = sem.users.first().map_or(all_h, h);
        let dks: &[u64] = if d0 == all_h { &[d0] } else { &[all_h, d0] };
        let uks: &[u64] = if u0 == all_h { &[u0] } else { &[all_h, u0] };
        let mut best: Option<usize> = None;
        let consider = |list: &mut dyn Iterator<Item = usize>, best: &mut Option<usize>| {
            // Lists are in file order: the first cover in each is that list's answer.
            for j in list {
                if best.is_some_and(|b| j >= b) {
                    break;
                }
                if covers_sem(&rules[j], &sems[j], r, sem) {
                    *best = Some(j);
                    break;
                }
            }
        };
        consider(&mut wide.iter().copied(), &mut best);
        for t in &types {
            for dk in dks {
                for uk in uks {
                    let Some(&bid) = bucket_ids.get(&(*t, *dk, *uk)) else {
                        continue;
                    };
                    let b = &buckets[bid];
                    consider(&mut b.other.iter().copied(), &mut best);
                    if let Some(Address::Ip { addr: a, mask }) = &r.address {
                        let (bits, w) = addr::bits(a);
                        let (m, _) = addr::bits(mask);
                        for &(lw, q) in &b.lens {
                            // A shorter (or equal) prefix the rule's own mask includes.
                            if lw == w && mask_of(w, q) & !m == 0 {
                                let key = (bid, w, q, bits & mask_of(w, q));
                                consider(&mut nets.iter(&key), &mut best);
                            }
                        }
                    }
                }
            }
        }
        out.push(best);

        // Index rule i under each (database, user) pair it has.
        let dkeys: Vec<&Meaning> = if sem.dbs.iter().any(is_all) {
            let mut v = vec![&all];
            v.extend(sem.dbs.iter().filter(|m| !is_all(m)));
            v
        } else {
            sem.dbs.iter().collect()
        };
        let ukeys: Vec<&Meaning> = if sem.users.iter().any(is_all) {
            vec![&all]
        } else {
            sem.users.iter().collect()
        };
        if dkeys.len() * ukeys.len() > 16 {
            wide.push(i);
            continue;
        }
        for dk in &dkeys {
            for uk in &ukeys {
                let bid = *bucket_ids.entry((r.conn, h(dk), h(uk))).or_insert_with(|| {
                    buckets.push(Bucket::default());
                    buckets.len() - 1
                });
                let b = &mut buckets[bid];
                match &r.address {
                    Some(Address::Ip { addr: a, mask }) => match addr::prefix_len(mask) {
                        Some(p) => {
                            let (bits, w) = addr::bits(a);
                            let (m, _) = addr::bits(mask);
                            nets.push((bid, w, p, bits & m), i);
                            if !b.lens.contains(&(w, p)) {
                                b.lens.push((w, p));
                            }
                        }
                        None => b.other.push(i),
                    },
                    _ => b.other.push(i),
                }
            }
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
        let mut warn = |kind: &'static str, message: String| {
            out.push(Warning {
                file: r.file.display().to_string(),
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
        let weak = matches!(r.method, "trust" | "password" | "md5");
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
    use crate::parse_line::{parse_line, Build};
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
        assert_eq!(
            first_match(
                &r,
                &conn(ConnType::Host, "d", "u", Some("10.1.1.1")),
                15,
                &[]
            )
            .rule,
            Some(1)
        );
        assert_eq!(
            first_match(
                &r,
                &conn(ConnType::HostSsl, "d", "u", Some("10.1.1.1")),
                15,
                &[]
            )
            .rule,
            Some(0)
        );
        assert_eq!(
            first_match(&r, &conn(ConnType::Host, "d", "u", Some("::1")), 15, &[]).rule,
            Some(2)
        );
        assert_eq!(
            first_match(
                &r,
                &conn(ConnType::Host, "d", "u", Some("::ffff:10.1.1.1")),
                15,
                &[]
            )
            .rule,
            None
        );
        assert_eq!(
            first_match(&r, &conn(ConnType::Local, "d", "u", None), 15, &[]).rule,
            None
        );
    }

    #[test]
    fn regex_entries() {
        let r = rules("local \"/^db\\d{2,4}$\" all trust\n", 16);
        assert_eq!(
            first_match(&r, &conn(ConnType::Local, "db123", "u", None), 16, &[]).rule,
            Some(0)
        );
        assert_eq!(
            first_match(&r, &conn(ConnType::Local, "db1", "u", None), 16, &[]).rule,
            None
        );
        // Before 16 it is a plain name.
        let r = rules("local /^db all trust\n", 15);
        assert_eq!(
            first_match(&r, &conn(ConnType::Local, "/^db", "u", None), 15, &[]).rule,
            Some(0)
        );
    }

    #[test]
    fn shadowing_and_duplicates() {
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost app bob 10.0.0.0/8 scram-sha-256\nhost replication all 10.0.0.0/8 md5\nlocal all all peer\nlocal all all peer\nhostssl all all 10.1.0.0/16 md5\nhost all +g 10.0.0.0/8 md5\n",
            16,
        );
        let s = shadowed_by(&r, 16);
        assert_eq!(
            s,
            vec![None, Some(0), None, None, Some(3), Some(0), Some(0)]
        );
        let w = warnings(&r, 16);
        assert!(w.iter().any(|w| w.kind == "duplicate" && w.line == 5));
        assert!(w.iter().any(|w| w.kind == "shadowed" && w.line == 2));
        assert!(w.iter().any(|w| w.kind == "open_to_world" && w.line == 1));
        let r = rules(
            "host all all 10.0.0.0/16 md5\nhost all all 10.0.0.0/8 md5\n",
            16,
        );
        assert_eq!(shadowed_by(&r, 16), vec![None, None]);
    }

    #[test]
    fn samehost_uses_interfaces() {
        let r = rules(
            "host all all samehost trust\nhost all all samenet md5\n",
            15,
        );
        let ifs = vec![("10.2.3.4".parse().unwrap(), "255.255.0.0".parse().unwrap())];
        assert_eq!(
            first_match(
                &r,
                &conn(ConnType::Host, "d", "u", Some("10.2.3.4")),
                15,
                &ifs
            )
            .rule,
            Some(0)
        );
        assert_eq!(
            first_match(
                &r,
                &conn(ConnType::Host, "d", "u", Some("10.2.9.9")),
                15,
                &ifs
            )
            .rule,
            Some(1)
        );
        assert_eq!(
            first_match(
                &r,
                &conn(ConnType::Host, "d", "u", Some("10.3.9.9")),
                15,
                &ifs
            )
            .rule,
            None
        );
    }
}
