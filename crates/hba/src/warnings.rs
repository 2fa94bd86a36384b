//! The findings of `check` that do not stop the server from loading the file: rules that
//! can never match, duplicates, weak or clear-text methods open beyond this host, addresses
//! with host bits, and what the server logs but loads.

use crate::addr;
use crate::doc::{Warning, WarningKind};
use crate::parse_line::{Address, ConnType, Rule};
use crate::shadow::{full_key, shadowed_by, Shadow};
use std::borrow::Cow;
use std::net::IpAddr;

/// "can never match: …" for a rule shadowed by `s` (`what`: "this one", "the new rule").
pub fn shadow_message(rules: &[Rule], s: &Shadow, what: &str) -> String {
    let at = |j: &usize| format!("{}:{}", rules[*j].file.display(), rules[*j].line);
    match s {
        Shadow::By(j) => format!(
            "can never match: the rule at {} comes first and matches every connection {what} would",
            at(j)
        ),
        Shadow::Together(v) => {
            let names: Vec<String> = v.iter().map(at).collect();
            format!(
                "can never match: the rules at {} come first and together match every connection {what} would",
                names.join(", ")
            )
        }
    }
}

fn is_loopback_only(a: &Option<Address>) -> bool {
    match a {
        None | Some(Address::SameHost) => true,
        Some(Address::Ip { addr: ip, mask }) => {
            let (a, w) = addr::bits(ip);
            let (m, _) = addr::bits(mask);
            // 127.0.0.0/8 or ::1/128 covers it.
            let lo4 = w == 32 && m >> 24 == 0xff && a >> 24 == 127;
            let lo6 = w == 128 && m == u128::MAX && a == 1;
            lo4 || lo6
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

/// For a server before 16, the rule's first database or user written as a regular expression
/// (`/^app[0-9]+$`): PostgreSQL 13 to 15 read it as a literal name, which matches only a
/// database or role of exactly that name (hba.c took regular expressions there from 16 on).
pub fn regex_before_16(r: &Rule, version: u32) -> Option<String> {
    use crate::parse_line::{meaning_ref, Field, MeaningRef};
    if version >= 16 {
        return None;
    }
    let (field, t) = [(Field::Database, &r.databases), (Field::User, &r.users)]
        .into_iter()
        .flat_map(|(f, ts)| ts.iter().map(move |t| (f, t)))
        .find(|(f, t)| matches!(meaning_ref(t, *f, 16), MeaningRef::Regex(_)))?;
    let what = match field {
        Field::Database => "database",
        Field::User => "role",
    };
    Some(format!(
        "{} is a regular expression from PostgreSQL 16 on; this server ({version}) reads it as the literal name of a {what}, which matches only a {what} named exactly that",
        t.s
    ))
}

/// The warnings of `check`, in file order.
pub fn warnings<'a>(rules: &'a [Rule], version: u32) -> Vec<Warning<'a>> {
    // About one a rule in a large generated file: reserved once (the untouched tail costs
    // nothing), not regrown and copied.
    let mut out = Vec::with_capacity(rules.len());
    let shadow = shadowed_by(rules, version);
    for (i, r) in rules.iter().enumerate() {
        let mut warn = |kind: WarningKind, message: Cow<'a, str>| {
            out.push(Warning {
                file: r.file.to_string_lossy(),
                line: r.line,
                kind,
                message,
            })
        };
        match &shadow[i] {
            Some(Shadow::By(j)) if full_key(&rules[*j], version) == full_key(r, version) => {
                let e = &rules[*j];
                warn(
                    WarningKind::Duplicate,
                    format!("duplicate of the rule at {}:{}", e.file.display(), e.line).into(),
                );
            }
            Some(s) => warn(
                WarningKind::Shadowed,
                shadow_message(rules, s, "this one").into(),
            ),
            None => {}
        }
        let remote = r.conn != ConnType::Local && !is_loopback_only(&r.address);
        let weak = matches!(r.method, "trust" | "password" | "md5");
        if remote && r.method == "trust" {
            warn(
                WarningKind::TrustRemote,
                "trust from non-local addresses: anyone who can reach the server logs in without a password".into(),
            );
        }
        if remote && r.method == "password" {
            warn(
                WarningKind::PasswordRemote,
                if r.conn == ConnType::HostSsl {
                    "password sends the password in clear text (inside SSL here)".into()
                } else {
                    "password sends the password in clear text over the network".into()
                },
            );
        }
        if r.method == "md5" {
            warn(
                WarningKind::Md5,
                "md5 is deprecated (PostgreSQL 18); prefer scram-sha-256".into(),
            );
        }
        if weak && is_everyone(&r.address) {
            warn(
                WarningKind::OpenToWorld,
                format!("{} open to every address with a weak method", r.method).into(),
            );
        }
        if let Some(Address::Ip { addr: a, mask }) = &r.address {
            let (b, _) = addr::bits(a);
            let (m, _) = addr::bits(mask);
            if b & !m != 0 && addr::prefix_len(mask).is_some() {
                warn(
                    WarningKind::HostBits,
                    format!(
                        "address {} has bits set outside its mask {}; the server matches the network {}",
                        addr::to_text(a),
                        addr::to_text(mask),
                        addr::to_text(&masked(a, mask))
                    )
                    .into(),
                );
            }
        }
        if let Some(w) = regex_before_16(r, version) {
            warn(WarningKind::RegexBefore16, w.into());
        }
        if let Some(w) = r.warning() {
            warn(WarningKind::ServerWarning, Cow::Borrowed(w));
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
    use crate::testing::rules;

    #[test]
    fn shadowed_duplicate_and_open() {
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost app bob 10.0.0.0/8 scram-sha-256\nhost replication all 10.0.0.0/8 md5\nlocal all all peer\nlocal all all peer\nhostssl all all 10.1.0.0/16 md5\nhost all +g 10.0.0.0/8 md5\n",
            16,
        );
        let w = warnings(&r, 16);
        assert!(w
            .iter()
            .any(|w| w.kind == WarningKind::Duplicate && w.line == 5));
        assert!(w
            .iter()
            .any(|w| w.kind == WarningKind::Shadowed && w.line == 2));
        assert!(w
            .iter()
            .any(|w| w.kind == WarningKind::OpenToWorld && w.line == 1));
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\nhost all all samenet trust\n",
            16,
        );
        let w = warnings(&r, 16);
        let s = w.iter().find(|w| w.kind == WarningKind::Shadowed).unwrap();
        assert_eq!(s.line, 3);
        assert!(
            s.message
                .contains("the rules at /d/pg_hba.conf:1, /d/pg_hba.conf:2 come first"),
            "{}",
            s.message
        );
    }
}
