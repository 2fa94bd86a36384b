//! The documents hba-edit prints, one serde type each. `list`'s [`HbaList`] is also what
//! `hba-edit apply -` reads back, so a pipeline between two hosts is typed end to end.
//!
//! Strings are `Cow`s: `list` of a 100,000-line file borrows them from the parsed rules
//! instead of copying each one (`HbaList<'a>`); documents read from stdin own theirs.
//!
//! Over 600 lines: one type per document, a doc comment per field (the man page's JSON
//! OUTPUT text), and the hand-written serde of the two types a 100,000-rule list streams.

use crate::layout::{self, NewRule};
use crate::lex::{self, Token};
use crate::parse_line::Rule;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Options whose values are passwords: printed as ******** unless --show-secrets.
pub const SECRET_OPTIONS: &[&str] = &["ldapbindpasswd", "radiussecrets"];

/// list: every rule PostgreSQL would load from the file (included files too) and every line
/// it would reject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HbaList<'a> {
    /// The file listed (absolute).
    pub file: Cow<'a, str>,
    /// The PostgreSQL major version whose rules were applied.
    pub pg_version: u32,
    /// The rules, in the order the server searches them.
    pub rules: Rules<'a>,
    /// The lines the server rejects (a file with any of these is not loaded at all).
    pub errors: Vec<LineErrorDoc>,
}

impl pgdr_core::Document for HbaList<'_> {
    const PRODUCERS: &'static [&'static str] = &["hba-edit"];

    /// The rules of a parsed file are written by hand ([`crate::json`]): serde_json's
    /// bytes, several times faster for a 100,000-rule list.
    fn write_json(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()> {
        match &self.rules {
            Rules::Parsed(rules, show) => crate::json::write_list(self, rules, *show, w),
            Rules::Read(_) => serde_json::to_writer(w, self),
        }
    }
}

/// The rules of a list: printed straight from the parsed file (a 100,000-rule list is never
/// held twice in memory), owned when read back from stdin.
#[derive(Clone)]
pub enum Rules<'a> {
    /// The parsed rules of a file, and whether secrets are shown.
    Parsed(&'a [Rule], bool),
    /// Rules read from a document.
    Read(Vec<RuleDoc<'static>>),
}

impl<'a> Rules<'a> {
    /// How many rules.
    pub fn len(&self) -> usize {
        match self {
            Rules::Parsed(r, _) => r.len(),
            Rules::Read(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rules as documents, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = RuleDoc<'_>> + '_> {
        match self {
            Rules::Parsed(r, show) => Box::new(r.iter().map(|r| RuleDoc::of(r, *show))),
            Rules::Read(v) => Box::new(v.iter().map(RuleDoc::borrowed)),
        }
    }

    /// The rules as owned documents.
    pub fn to_vec(&self) -> Vec<RuleDoc<'static>> {
        self.iter().map(RuleDoc::into_owned).collect()
    }
}

impl Serialize for Rules<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Rules<'_> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Rules::Read(Vec::deserialize(d)?))
    }
}

impl schemars::JsonSchema for Rules<'_> {
    fn schema_name() -> Cow<'static, str> {
        <Vec<RuleDoc<'static>> as schemars::JsonSchema>::schema_name()
    }
    fn inline_schema() -> bool {
        <Vec<RuleDoc<'static>> as schemars::JsonSchema>::inline_schema()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<RuleDoc<'static>> as schemars::JsonSchema>::json_schema(g)
    }
}

impl std::fmt::Debug for Rules<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Rules<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

/// One rule, as list prints it and apply - reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc<'a> {
    /// The file the rule is written in.
    pub file: Cow<'a, str>,
    /// Its first line in that file (what pg_hba_file_rules calls line_number).
    pub line: usize,
    /// Connection type: local, host, hostssl, hostnossl, hostgssenc or hostnogssenc.
    #[serde(rename = "type")]
    pub conn: Cow<'a, str>,
    /// Database entries. A name whose quotes change its meaning (a quoted keyword such as
    /// "all", +name, @name) keeps them: "\"all\"" is a database named all.
    pub database: Vec<Cow<'a, str>>,
    /// User entries, quoted the same way; +role means members of role.
    pub user: Vec<Cow<'a, str>>,
    /// The address as pg_hba_file_rules shows it (all, samehost, samenet, a host name or
    /// an IP address); null for local.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub address: Option<Cow<'a, str>>,
    /// The netmask of an IP address; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub netmask: Option<Cow<'a, str>>,
    /// Authentication method as the server names it (ident on local is peer).
    pub method: Cow<'a, str>,
    /// name=value options in the order written (a repeated name keeps its last value).
    pub options: Options<'a>,
    /// The comment after the rule on its line, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub comment: Option<Cow<'a, str>>,
    /// Options whose value is shown as ******** (ldapbindpasswd, radiussecrets) because the
    /// producer ran without --show-secrets. apply refuses a rule with a masked option.
    pub masked: Vec<Cow<'a, str>>,
}

/// name=value options: a JSON object whose keys keep the order they are written in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl Serialize for Options<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Options<'_> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<(Cow<'static, str>, Cow<'static, str>)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of option names and string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push((Cow::Owned(k), Cow::Owned(v)));
                }
                Ok(out)
            }
        }
        Ok(Options(d.deserialize_map(V)?))
    }
}

impl schemars::JsonSchema for Options<'_> {
    fn schema_name() -> Cow<'static, str> {
        "Options".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <std::collections::BTreeMap<String, String> as schemars::JsonSchema>::json_schema(g)
    }
}

/// A line the server rejects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineErrorDoc {
    /// The file the line is in.
    pub file: String,
    /// Its first line; null for a fault of the whole file (it contains no entries).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub line: Option<usize>,
    /// The server's message, as pg_hba_file_rules gives it.
    pub message: String,
}

impl<'a> RuleDoc<'a> {
    /// The rule as printed, borrowing from it; secrets masked unless show_secrets.
    pub fn of(r: &'a Rule, show_secrets: bool) -> RuleDoc<'a> {
        let (address, netmask) = match &r.address {
            Some(a) => {
                let (x, m) = a.view();
                (Some(Cow::Owned(x)), m.map(Cow::Owned))
            }
            None => (None, None),
        };
        let (options, masked) = shown_options(r, show_secrets);
        RuleDoc {
            file: r.file.to_string_lossy(),
            line: r.line,
            conn: Cow::Borrowed(r.conn.name()),
            database: r.databases.iter().map(token_json).collect(),
            user: r.users.iter().map(token_json).collect(),
            address,
            netmask,
            method: Cow::Borrowed(r.method),
            options,
            comment: r.comment().map(Cow::Borrowed),
            masked,
        }
    }

    /// A copy borrowing from this one.
    pub fn borrowed(&self) -> RuleDoc<'_> {
        fn b(c: &str) -> Cow<'_, str> {
            Cow::Borrowed(c)
        }
        RuleDoc {
            file: b(&self.file),
            line: self.line,
            conn: b(&self.conn),
            database: self.database.iter().map(|c| b(c)).collect(),
            user: self.user.iter().map(|c| b(c)).collect(),
            address: self.address.as_deref().map(b),
            netmask: self.netmask.as_deref().map(b),
            method: b(&self.method),
            options: Options(self.options.0.iter().map(|(k, v)| (b(k), b(v))).collect()),
            comment: self.comment.as_deref().map(b),
            masked: self.masked.iter().map(|c| b(c)).collect(),
        }
    }

    /// An owned copy, for documents that outlive the parsed file.
    pub fn into_owned(self) -> RuleDoc<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        RuleDoc {
            file: own(self.file),
            line: self.line,
            conn: own(self.conn),
            database: self.database.into_iter().map(own).collect(),
            user: self.user.into_iter().map(own).collect(),
            address: self.address.map(own),
            netmask: self.netmask.map(own),
            method: own(self.method),
            options: Options(
                self.options
                    .0
                    .into_iter()
                    .map(|(k, v)| (own(k), own(v)))
                    .collect(),
            ),
            comment: self.comment.map(own),
            masked: self.masked.into_iter().map(own).collect(),
        }
    }

    /// The rule to write for this document entry (not yet checked by the parser).
    ///
    /// # Errors
    /// A netmask that is not an IP address.
    pub fn to_new_rule(&self) -> Result<NewRule, String> {
        let address = match &self.address {
            Some(a) => layout::address_columns(a, self.netmask.as_deref())?,
            None => vec![],
        };
        Ok(NewRule {
            conn: self.conn.to_string(),
            databases: self.database.iter().map(|s| token_from_json(s)).collect(),
            users: self.user.iter().map(|s| token_from_json(s)).collect(),
            address,
            method: self.method.to_string(),
            options: self
                .options
                .0
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            comment: self
                .comment
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        })
    }
}

/// A rule's options as printed, and the names of those masked: a repeated option keeps its
/// first place and its last value (the server keeps the last assignment); secrets show as
/// ******** unless `show_secrets`.
pub fn shown_options(r: &Rule, show_secrets: bool) -> (Options<'_>, Vec<Cow<'_, str>>) {
    let mut options: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(r.options().len());
    for (k, v) in r.options() {
        match options.iter_mut().find(|(k2, _)| k2 == k) {
            Some(p) => p.1 = Cow::Borrowed(v),
            None => options.push((Cow::Borrowed(k), Cow::Borrowed(v))),
        }
    }
    let mut masked = Vec::new();
    if !show_secrets {
        for (k, v) in &mut options {
            if SECRET_OPTIONS.contains(&k.as_ref()) {
                *v = Cow::Borrowed(pgdr_core::conn::MASK);
                masked.push(k.clone());
            }
        }
    }
    (Options(options), masked)
}

/// A rule as printed, owned (for reports).
pub fn rule_doc(r: &Rule, show_secrets: bool) -> RuleDoc<'static> {
    RuleDoc::of(r, show_secrets).into_owned()
}

/// A token in JSON: its name, with quotes only where quoting changes the meaning.
pub fn token_json(t: &Token) -> Cow<'_, str> {
    if t.quoted && layout::quote_matters(t) {
        Cow::Owned(layout::quote(&t.s))
    } else {
        Cow::Borrowed(&t.s)
    }
}

/// The reverse of [token_json].
pub fn token_from_json(s: &str) -> Token {
    if s.starts_with('"') {
        if let Some(t) = lex::tokens_of(s).into_iter().next() {
            return t;
        }
    }
    Token::new(s.to_string(), false)
}

/// check: the errors the server would refuse the file for and the warnings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReport<'a> {
    /// The file checked.
    pub file: String,
    /// The PostgreSQL major version whose rules were applied.
    pub pg_version: u32,
    /// No errors: the server would load the file (exit 0; else exit 1).
    pub ok: bool,
    /// How many rules the server would load.
    pub rules: usize,
    /// Lines the server rejects, and a file with no entries at all.
    pub errors: Vec<LineErrorDoc>,
    /// Findings that do not stop the server from loading the file, in file order.
    pub warnings: Vec<Warning<'a>>,
}

impl pgdr_core::Document for CheckReport<'_> {
    const PRODUCERS: &'static [&'static str] = &["hba-edit"];

    /// Written by hand ([`crate::json`]): serde_json's bytes, faster for a warning a line.
    fn write_json(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()> {
        crate::json::write_check(self, w)
    }
}

/// A check finding. Its strings borrow from the parsed rules where they can (a file may have
/// a warning on every line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning<'a> {
    /// The file of the rule.
    pub file: Cow<'a, str>,
    /// The rule's first line.
    pub line: usize,
    /// What kind of finding.
    pub kind: WarningKind,
    /// What is wrong, naming the other rules involved.
    pub message: Cow<'a, str>,
}

/// The kinds of check warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The rule can never match: earlier rules, alone or together, match every connection
    /// it would.
    Shadowed,
    /// An earlier rule is identical.
    Duplicate,
    /// trust from addresses beyond this host.
    TrustRemote,
    /// password (clear text) from addresses beyond this host.
    PasswordRemote,
    /// md5, deprecated in PostgreSQL 18.
    Md5,
    /// A weak method for every address.
    OpenToWorld,
    /// An address with bits set outside its mask.
    HostBits,
    /// Something the server logs but still loads.
    ServerWarning,
    /// A database or user written as a regular expression (`/…`) for a server before 16,
    /// which reads it as a literal name.
    #[serde(rename = "regex_before_16")]
    RegexBefore16,
}

/// What add, remove and apply did with --reload: the server loaded the new file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadReport {
    /// pg_reload_conf() ran after the server accepted every line of the new file.
    pub done: bool,
    /// Lines the server loads but reports (e.g. hostssl with ssl = off).
    pub server_warnings: Vec<ServerWarning>,
}

/// A line the server loads with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerWarning {
    /// The line (pg_hba_file_rules.line_number).
    pub line: usize,
    /// The server's message.
    pub message: String,
}

/// Whether add added, replaced or found the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AddAction {
    /// A new line was written.
    Added,
    /// The rule with the same type, database, user and address was replaced in place
    /// (--replace).
    Replaced,
    /// An identical rule exists: nothing changed.
    Unchanged,
}

/// add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddReport {
    /// The file changed.
    pub file: String,
    /// Whether the file changed (or, with --dry-run, would).
    pub changed: bool,
    /// What was done.
    pub action: AddAction,
    /// The line the rule is on (after the change).
    pub line: usize,
    /// Where a new rule went and why ("after the last rule", "before FILE:LINE, …");
    /// null when nothing was added.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub position: Option<String>,
    /// The rule as the server reads it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub rule: Option<RuleDoc<'static>>,
    /// The rule it replaced (--replace); null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub replaced: Option<RuleDoc<'static>>,
    /// Problems with the new rule, e.g. earlier rules that leave it nothing to match.
    pub warnings: Vec<String>,
    /// Nothing was written (--dry-run).
    pub dry_run: bool,
    /// The unified diff of the change, with --dry-run; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub diff: Option<String>,
    /// The previous file, kept with --backup; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub backup: Option<String>,
    /// The server's verdict with --reload; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reload: Option<ReloadReport>,
}

impl pgdr_core::Document for AddReport {
    const PRODUCERS: &'static [&'static str] = &["hba-edit"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// A line removed with remove --line that is not a rule (a rejected line or a directive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLine {
    /// The file.
    pub file: String,
    /// Its first line.
    pub line: usize,
    /// Its text (continuation lines joined).
    pub text: String,
}

/// remove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveReport {
    /// The file changed.
    pub file: String,
    /// Whether the file changed (or, with --dry-run, would).
    pub changed: bool,
    /// The rules removed.
    pub removed: Vec<RuleDoc<'static>>,
    /// Lines removed with --line that are not rules.
    pub removed_lines: Vec<RawLine>,
    /// Matching rules in included files, left alone (edit those files with -f).
    pub not_removed: Vec<RuleDoc<'static>>,
    /// Nothing was written (--dry-run).
    pub dry_run: bool,
    /// The unified diff of the change, with --dry-run; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub diff: Option<String>,
    /// The previous file, kept with --backup; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub backup: Option<String>,
    /// The server's verdict with --reload; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reload: Option<ReloadReport>,
}

impl pgdr_core::Document for RemoveReport {
    const PRODUCERS: &'static [&'static str] = &["hba-edit"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// apply -.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyReport {
    /// The file changed.
    pub file: String,
    /// Whether the file changed (or, with --dry-run, would).
    pub changed: bool,
    /// Rules added.
    pub added: usize,
    /// Rules removed.
    pub removed: usize,
    /// Rules replaced in place (same type, database, user and address).
    pub replaced: usize,
    /// Rules kept as they were, with their comments.
    pub kept: usize,
    /// Nothing was written (--dry-run).
    pub dry_run: bool,
    /// The unified diff of the change, with --dry-run; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub diff: Option<String>,
    /// The previous file, kept with --backup; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub backup: Option<String>,
    /// The server's verdict with --reload; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reload: Option<ReloadReport>,
}

impl pgdr_core::Document for ApplyReport {
    const PRODUCERS: &'static [&'static str] = &["hba-edit"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// match: the rule the server would pick for a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchReport {
    /// The file searched.
    pub file: String,
    /// The connection described.
    pub connection: Connection,
    /// The first rule that surely matches; null: no pg_hba.conf entry, the server rejects
    /// the connection.
    #[serde(rename = "match", deserialize_with = "pgdr_core::doc::required")]
    pub matched: Option<RuleDoc<'static>>,
    /// Whether the answer is certain: false when an earlier rule depends on what cannot be
    /// known here (listed in depends_on).
    pub decided: bool,
    /// Earlier rules that may match, depending on role membership (+group, samerole; see
    /// --member-of), DNS (host names) or a regular expression not evaluated here.
    pub depends_on: Vec<Dependency>,
    /// How many lines the server would reject: with any, it does not load this file and
    /// keeps the rules it had.
    pub file_errors: usize,
    /// A note about file_errors; null when there are none.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub note: Option<String>,
}

impl pgdr_core::Document for MatchReport {
    const PRODUCERS: &'static [&'static str] = &["hba-edit"];
}

/// The connection match describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// local, host (TCP without SSL), hostssl or hostgssenc.
    #[serde(rename = "type")]
    pub conn: String,
    /// The database.
    pub database: String,
    /// The user.
    pub user: String,
    /// The client's address as the server prints it; null for local.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub address: Option<String>,
    /// A physical replication connection (--database replication).
    pub replication: bool,
}

/// An earlier rule whose match cannot be decided here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// Its file.
    pub file: String,
    /// Its line.
    pub line: usize,
    /// What it depends on.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (s, q) in [
            ("all", true),
            ("all", false),
            ("my db", false),
            ("+admins", true),
            ("+my role", false),
            ("a\"b", false),
            ("x,y", true),
            ("", true),
        ] {
            let t = Token::new(s, q);
            let text = layout::render_token(&t);
            let back = lex::tokens_of(&text);
            assert_eq!(back.len(), 1, "{text}");
            assert_eq!(back[0].s, s, "{text}");
            if layout::quote_matters(&t) || s == "all" {
                assert_eq!(back[0].quoted, q, "{text}");
            }
            let j = token_from_json(&token_json(&t));
            assert_eq!(j.s, s);
        }
    }

    #[test]
    fn options_keep_their_order_both_ways() {
        let o = Options(vec![("z".into(), "1".into()), ("a".into(), "2".into())]);
        let s = serde_json::to_string(&o).unwrap();
        assert_eq!(s, r#"{"z":"1","a":"2"}"#);
        let back: Options = serde_json::from_str(&s).unwrap();
        assert_eq!(back, o);
    }
}
