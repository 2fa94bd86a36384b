//! `match`: the rule PostgreSQL would pick for a described connection (`check_hba`), or none
//! (the connection is rejected), and which earlier rules make the answer uncertain.

use super::{parse_type, Target};
use crate::check_hba::{self, Conn};
use crate::doc::{rule_doc, Connection, Dependency, MatchReport};
use crate::parse_line::ConnType;
use pgdr_core::{Error, Result};

/// A connection as `match` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnSpec {
    /// local, host (TCP without SSL), hostssl or hostgssenc.
    pub conn: String,
    /// The database ("replication" means a physical replication connection).
    pub database: String,
    /// The user.
    pub user: String,
    /// The client's IP address (TCP types).
    pub address: Option<String>,
    /// Roles the user is a member of, when known.
    pub member_of: Option<Vec<String>>,
}

/// The first rule of `t` that surely admits the connection.
///
/// # Errors
/// Usage errors for a type that describes no single connection, a missing or non-IP address;
/// the file's read errors.
pub fn find(t: &Target, spec: &ConnSpec, show_secrets: bool) -> Result<MatchReport> {
    let conn = parse_type(&spec.conn)?;
    if matches!(conn, ConnType::HostNoSsl | ConnType::HostNoGssEnc) {
        return Err(Error::usage(format!(
            "--type {} describes no single connection",
            spec.conn
        ))
        .hint("use host (TCP without SSL), hostssl or hostgssenc"));
    }
    let address = match (&spec.address, conn) {
        (Some(_), ConnType::Local) => {
            return Err(Error::usage("--address makes no sense with --type local"))
        }
        (None, ConnType::Local) => None,
        (None, _) => {
            return Err(
                Error::usage(format!("--type {} needs --address", spec.conn))
                    .hint("give the client's IP address"),
            )
        }
        (Some(a), _) => match crate::addr::numeric_host(a) {
            crate::addr::Numeric::Ip(ip) => Some(ip),
            _ => {
                return Err(Error::usage(format!("invalid client address \"{a}\""))
                    .because("an IP address is needed"))
            }
        },
    };
    let file = t.load_rules()?;
    let c = Conn {
        conn,
        database: spec.database.clone(),
        user: spec.user.clone(),
        address,
        replication: spec.database == "replication",
        member_of: spec.member_of.clone(),
    };
    let ifaces = crate::addr::interfaces();
    let res = check_hba::first_match(&file.rules, &c, t.version, &ifaces);
    let depends_on: Vec<Dependency> = res
        .undecided
        .iter()
        .map(|(i, why)| {
            let r = &file.rules[*i];
            Dependency {
                file: r.file.display().to_string(),
                line: r.line,
                reason: why.clone(),
            }
        })
        .collect();
    Ok(MatchReport {
        file: t.file.display().to_string(),
        connection: Connection {
            conn: conn.name().to_string(),
            database: spec.database.clone(),
            user: spec.user.clone(),
            address: address.map(|a| crate::addr::to_text(&a)),
            replication: c.replication,
        },
        matched: res.rule.map(|i| rule_doc(&file.rules[i], show_secrets)),
        decided: depends_on.is_empty(),
        depends_on,
        file_errors: file.errors.len(),
        note: (!file.errors.is_empty()).then(|| {
            "the server would refuse to load this file; it keeps the rules it had".to_string()
        }),
    })
}
