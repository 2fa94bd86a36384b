//! PostgreSQL's first-match search (`check_hba` in src/backend/libpq/hba.c) for a described
//! connection: the first rule whose type, database, user and address admit it wins, and no
//! match is an implicit reject. What cannot be known from the file (role membership, DNS, a
//! regular expression only PostgreSQL's engine evaluates) makes an answer undecided.

use crate::addr;
use crate::parse_line::{meaning, Address, ConnType, Field, Meaning, Rule};
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

pub(crate) fn regex_match(rule: &Rule, token: &str, name: &str) -> Tri {
    match rule.regexes().iter().find(|(t, _)| t == token) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rules;

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
