//! The `hba-edit` command.

use crate::analyze::{self, Conn};
use crate::edit::{self, Doc, Layout, NewRule};
use crate::lex::{self, Kind};
use crate::parse_line::{ConnType, Rule};
use pgdr_core::fsx::{self, WriteOptions};
use pgdr_core::{Error, Outcome, OutputArgs, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const ABOUT: &str = "Read, query, check and change pg_hba.conf exactly as PostgreSQL reads it";

const LONG_ABOUT: &str = "Read, query, check and change pg_hba.conf exactly as PostgreSQL reads it.

The file is read with PostgreSQL's own rules (src/backend/libpq/hba.c) for the server version \
in use (12 to 17; from --pg-version, else PG_VERSION beside the file, else 15): backslash \
continuation, quoting, keywords only when unquoted, comma lists, +group, @file, /regex (16+), \
IPv4/IPv6 CIDR or address plus netmask, host names, name=value options with the server's \
per-method checks, and include, include_if_exists, include_dir (16+).

Edits change only the lines they must: every other byte of the file is kept, new lines are \
aligned like their neighbours, and the file is replaced atomically. Nothing is ever re-sorted.";

const AFTER_HELP: &str = "Examples:
  hba-edit -f /etc/postgresql/15/main/pg_hba.conf list
  hba-edit add --type host --database replication --user replicator --address 10.0.0.0/24 --method scram-sha-256
  hba-edit add --type host --database all --user app --address 10.1.0.0/16 --method scram-sha-256 --dry-run
  hba-edit match --type host --database app --user bob --address 10.1.2.3
  hba-edit check || echo 'the server would refuse this file'
  hba-edit -f old/pg_hba.conf list | hba-edit -f new/pg_hba.conf apply -
  hba-edit add ... --reload -d 'host=/var/run/postgresql user=postgres'";

#[derive(Debug, clap::Parser)]
#[command(
    name = "hba-edit",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP
)]
pub struct Args {
    /// The pg_hba.conf to read or change (default: $PGDATA/pg_hba.conf).
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// PostgreSQL major version whose rules apply (12-17; default: PG_VERSION beside the
    /// file, else 15).
    #[arg(long, value_name = "MAJOR", global = true)]
    pub pg_version: Option<u32>,
    /// Change nothing; print the change as a unified diff in "diff".
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Keep the previous file beside the new one (NAME.pgdr-TIME.bak).
    #[arg(long, global = true)]
    pub backup: bool,
    /// After a change, check the new file with the server's pg_hba_file_rules and reload it;
    /// if the server reports an error, put the previous file back and exit 1. Needs -d.
    #[arg(long, global = true, requires = "dbname")]
    pub reload: bool,
    /// Connection for --reload: a libpq conninfo string or postgres:// URI (PG* variables
    /// and the password file apply).
    #[arg(short = 'd', long = "dbname", value_name = "CONNINFO", global = true)]
    pub dbname: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub cmd: Cmd,
}

pgdr_core::tool_args!(Args);

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Print every rule (included files too) and every line the server would reject.
    List,
    /// Add a rule (idempotent); by default just before the first rule that would shadow it,
    /// else after the last rule.
    Add(AddArgs),
    /// Remove the rules with this type, database, user and address (or the line --line).
    Remove(RemoveArgs),
    /// Name the rule PostgreSQL would pick for a connection, or null (rejected).
    Match(MatchArgs),
    /// Report the errors the server would reject the file for (exit 1) and warnings.
    Check,
    /// Make the file's rules equal to {"rules": [...]} read from stdin (list's shape).
    Apply {
        /// "-": read the rules from standard input.
        #[arg(value_name = "-")]
        input: String,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Selector {
    /// Connection type: local, host, hostssl, hostnossl, hostgssenc, hostnogssenc.
    #[arg(long = "type", value_name = "TYPE")]
    pub conn: String,
    /// Database(s), as in the file: a comma list, "quoted" for literal keywords.
    #[arg(long, value_name = "DB", required = true)]
    pub database: Vec<String>,
    /// User(s), as in the file: a comma list, +group, "quoted" for literal names.
    #[arg(long, value_name = "USER", required = true)]
    pub user: Vec<String>,
    /// Address for non-local types: CIDR (a bare IP means /32 or /128), "ADDR MASK", a host
    /// name, .domain, all, samehost, samenet.
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub sel: Selector,
    /// Authentication method (trust, reject, scram-sha-256, md5, password, peer, ident, gss,
    /// pam, ldap, radius, cert).
    #[arg(long, value_name = "METHOD")]
    pub method: String,
    /// An option NAME=VALUE (repeat for more).
    #[arg(long = "option", value_name = "NAME=VALUE")]
    pub options: Vec<String>,
    /// A comment written after the rule.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Put the rule before every other rule.
    #[arg(long, conflicts_with_all = ["before", "after"])]
    pub first: bool,
    /// Put the rule just before the rule on this line.
    #[arg(long, value_name = "LINE", conflicts_with = "after")]
    pub before: Option<usize>,
    /// Put the rule just after the rule on this line.
    #[arg(long, value_name = "LINE")]
    pub after: Option<usize>,
    /// Replace, in place, a rule with the same type, database, user and address but another
    /// method or options.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// Connection type of the rules to remove.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "line")]
    pub conn: Option<String>,
    /// Database(s) of the rules to remove.
    #[arg(long, value_name = "DB", required_unless_present = "line")]
    pub database: Vec<String>,
    /// User(s) of the rules to remove.
    #[arg(long, value_name = "USER", required_unless_present = "line")]
    pub user: Vec<String>,
    /// Address of the rules to remove (non-local types).
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
    /// Remove the rule, directive or erroneous line starting on this line instead.
    #[arg(long, value_name = "LINE", conflicts_with_all = ["conn", "database", "user", "address"])]
    pub line: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct MatchArgs {
    /// local (Unix socket), host (TCP without SSL), hostssl (TCP with SSL), hostgssenc
    /// (GSSAPI-encrypted TCP).
    #[arg(long = "type", value_name = "TYPE")]
    pub conn: String,
    /// The database connected to; "replication" means a physical replication connection.
    #[arg(long, value_name = "DB")]
    pub database: String,
    /// The user name.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// The client's IP address (required for TCP types).
    #[arg(long, value_name = "IP")]
    pub address: Option<String>,
    /// Roles the user is a member of (comma list), to decide +group and samerole entries.
    #[arg(long, value_name = "ROLE,...", value_delimiter = ',')]
    pub member_of: Option<Vec<String>>,
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "Success (also when an edit changed nothing)."),
        (1, "The operation failed or was refused and nothing was changed: the file is missing or unreadable, an edit conflicts with an existing rule (see --replace), the file has lines the server rejects, check found errors, or the server rejected the new file under --reload (the previous file was put back)."),
        (2, "Usage error or malformed input: bad arguments, a rule the server would reject, malformed JSON, a file that is not UTF-8."),
    ],
    documents: &[],
    json_output: "list: {\"file\", \"pg_version\", \"rules\": [{\"file\", \"line\", \"type\", \"database\": [...], \"user\": [...], \"address\", \"netmask\", \"method\", \"options\": {...}, \"comment\"}], \"errors\": [{\"file\", \"line\", \"message\"}]}. Address and netmask are shown as pg_hba_file_rules shows them; a name whose quotes change its meaning (a quoted keyword, +name or @name) keeps its quotes.

add: {\"file\", \"changed\", \"action\" (added, replaced, unchanged), \"line\", \"position\", \"rule\", \"warnings\"}.
remove: {\"file\", \"changed\", \"removed\": [rule...]}.
apply: {\"file\", \"changed\", \"added\", \"removed\", \"replaced\", \"kept\"}.
With --dry-run every change also has \"dry_run\": true and \"diff\" (unified diff); with --backup, \"backup\" (the path); with --reload, \"reload\": {\"done\", \"server_warnings\"}.

match: {\"file\", \"connection\", \"match\": rule or null (no pg_hba.conf entry: rejected), \"decided\", \"depends_on\": [{\"file\", \"line\", \"reason\"}]}. When earlier rules depend on role membership (+group, samerole, unless --member-of is given), DNS (host names) or a regular expression not evaluated here, they are listed in depends_on and decided is false.

check: {\"file\", \"pg_version\", \"ok\", \"rules\", \"errors\": [...], \"warnings\": [{\"file\", \"line\", \"kind\", \"message\"}]}; kinds: shadowed, duplicate, trust_remote, password_remote, md5, open_to_world, host_bits, server_warning.",
    examples: &[
        ("List the rules of the cluster in $PGDATA:", "hba-edit list"),
        ("Allow a standby to replicate, in the right place, and reload:", "hba-edit add --type host --database replication --user replicator --address 10.0.0.5 --method scram-sha-256 --reload -d 'user=postgres'"),
        ("See what an edit would do:", "hba-edit add --type host --database all --user app --address 10.1.0.0/16 --method scram-sha-256 --dry-run"),
        ("Which rule decides a connection:", "hba-edit match --type host --database app --user bob --address 10.1.2.3"),
        ("Copy the rules of one cluster to another:", "hba-edit -f old/pg_hba.conf list | hba-edit -f new/pg_hba.conf apply -"),
    ],
    extra_sections: &[(
        "NOTES",
        "The build is assumed to have SSL, GSSAPI, PAM and LDAP, as Linux packages do. A hostssl line on a server with ssl = off loads, but the server reports that it cannot match; check cannot know the ssl setting. match treats --database replication as a physical replication connection.",
    )],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("hba-edit", run)
}

/// The file, absolute, and the server version whose rules apply.
fn target(args: &Args) -> Result<(PathBuf, u32)> {
    let file = match &args.file {
        Some(f) => f.clone(),
        None => match std::env::var_os("PGDATA") {
            Some(d) if !d.is_empty() => PathBuf::from(d).join("pg_hba.conf"),
            _ => {
                return Err(Error::usage("no pg_hba.conf given")
                    .because("neither -f nor PGDATA is set")
                    .hint("pass -f FILE"))
            }
        },
    };
    let file = std::path::absolute(&file)
        .map_err(|e| Error::usage(format!("bad path {}", file.display())).because(e))?;
    let version = match args.pg_version {
        Some(v) => v,
        None => {
            let pv = file.parent().map(|d| d.join("PG_VERSION"));
            match pv.and_then(|p| std::fs::read_to_string(p).ok()) {
                Some(s) => {
                    let s = s.trim();
                    s.split('.')
                        .next()
                        .and_then(|m| m.parse().ok())
                        .ok_or_else(|| {
                            Error::usage("cannot tell the PostgreSQL version")
                                .because(format!("PG_VERSION beside the file says {s:?}"))
                                .hint("pass --pg-version")
                        })?
                }
                None => 15,
            }
        }
    };
    if !(12..=18).contains(&version) {
        return Err(
            Error::usage(format!("unsupported PostgreSQL version {version}"))
                .because("hba-edit knows the rules of PostgreSQL 12 to 17 (and 18)")
                .hint("pass --pg-version"),
        );
    }
    Ok((file, version))
}

fn load(file: &Path, version: u32) -> Result<Doc> {
    let text = fsx::read_text(file)?;
    Ok(Doc::parse(
        file,
        text,
        version,
        &lex::Disk,
        &crate::addr::resolves,
    ))
}

fn errors_json(doc: &Doc) -> Vec<Value> {
    doc.errors
        .iter()
        .map(
            |e| json!({"file": e.file.display().to_string(), "line": e.line, "message": e.message}),
        )
        .collect()
}

pub fn run(args: Args) -> Result<Outcome> {
    let (file, version) = target(&args)?;
    match &args.cmd {
        Cmd::List => {
            let doc = load(&file, version)?;
            #[derive(serde::Serialize)]
            struct List<'a> {
                file: String,
                pg_version: u32,
                rules: Vec<edit::RuleOut<'a>>,
                errors: Vec<Value>,
            }
            let out = Outcome::json_serialized(List {
                file: file.display().to_string(),
                pg_version: version,
                rules: doc.rules.iter().map(edit::RuleOut).collect(),
                errors: errors_json(&doc),
            });
            // The process ends next: freeing a 100,000-rule document is wasted time.
            std::mem::forget(doc);
            out
        }
        Cmd::Check => check(&file, version),
        Cmd::Match(m) => do_match(&file, version, m),
        Cmd::Add(a) => add(&args, &file, version, a),
        Cmd::Remove(r) => remove(&args, &file, version, r),
        Cmd::Apply { input } => {
            if input != "-" {
                return Err(Error::usage("apply reads its rules from standard input")
                    .because(format!("got {input:?}"))
                    .hint("use 'apply -'"));
            }
            apply(&args, &file, version)
        }
    }
}

fn check(file: &Path, version: u32) -> Result<Outcome> {
    let doc = load(file, version)?;
    let mut errors = errors_json(&doc);
    if doc.errors.is_empty() && doc.rules.is_empty() {
        errors.push(json!({
            "file": file.display().to_string(),
            "line": null,
            "message": format!("configuration file \"{}\" contains no entries", file.display()),
        }));
    }
    let warnings = analyze::warnings(&doc.rules, version);
    let rules = doc.rules.len();
    // The process ends next: freeing a 100,000-rule document is wasted time.
    std::mem::forget(doc);
    let ok = errors.is_empty();
    #[derive(serde::Serialize)]
    struct Check {
        file: String,
        pg_version: u32,
        ok: bool,
        rules: usize,
        errors: Vec<Value>,
        warnings: Vec<analyze::Warning>,
    }
    Ok(Outcome::json_serialized(Check {
        file: file.display().to_string(),
        pg_version: version,
        ok,
        rules,
        errors,
        warnings,
    })?
    .with_code(if ok { 0 } else { 1 }))
}

fn parse_type(s: &str) -> Result<ConnType> {
    ConnType::parse(s).ok_or_else(|| {
        Error::usage(format!("invalid connection type \"{s}\""))
            .hint("use local, host, hostssl, hostnossl, hostgssenc or hostnogssenc")
    })
}

fn do_match(file: &Path, version: u32, m: &MatchArgs) -> Result<Outcome> {
    let conn = parse_type(&m.conn)?;
    if matches!(conn, ConnType::HostNoSsl | ConnType::HostNoGssEnc) {
        return Err(
            Error::usage(format!("--type {} describes no single connection", m.conn))
                .hint("use host (TCP without SSL), hostssl or hostgssenc"),
        );
    }
    let address = match (&m.address, conn) {
        (Some(_), ConnType::Local) => {
            return Err(Error::usage("--address makes no sense with --type local"))
        }
        (None, ConnType::Local) => None,
        (None, _) => {
            return Err(Error::usage(format!("--type {} needs --address", m.conn))
                .hint("give the client's IP address"))
        }
        (Some(a), _) => match crate::addr::numeric_host(a) {
            crate::addr::Numeric::Ip(ip) => Some(ip),
            _ => {
                return Err(Error::usage(format!("invalid client address \"{a}\""))
                    .because("an IP address is needed"))
            }
        },
    };
    let doc = load(file, version)?;
    let c = Conn {
        conn,
        database: m.database.clone(),
        user: m.user.clone(),
        address,
        replication: m.database == "replication",
        member_of: m.member_of.clone(),
    };
    let ifaces = crate::addr::interfaces();
    let res = analyze::first_match(&doc.rules, &c, version, &ifaces);
    let depends: Vec<Value> = res
        .undecided
        .iter()
        .map(|(i, why)| {
            let r = &doc.rules[*i];
            json!({"file": r.file.display().to_string(), "line": r.line, "reason": why})
        })
        .collect();
    let mut out = json!({
        "file": file.display().to_string(),
        "connection": {
            "type": conn.name(),
            "database": m.database,
            "user": m.user,
            "address": address.map(|a| crate::addr::to_text(&a)),
            "replication": c.replication,
        },
        "match": res.rule.map(|i| edit::rule_json(&doc.rules[i])),
        "decided": depends.is_empty(),
        "depends_on": depends,
    });
    if !doc.errors.is_empty() {
        out["file_errors"] = json!(doc.errors.len());
        out["note"] = json!("the server would refuse to load this file; it keeps the rules it had");
    }
    Outcome::json(out)
}

fn tokens(values: &[String]) -> Vec<lex::Token> {
    values.iter().flat_map(|v| lex::tokens_of(v)).collect()
}

fn new_rule(
    sel: &Selector,
    method: &str,
    options: &[String],
    comment: Option<String>,
) -> Result<NewRule> {
    let conn = parse_type(&sel.conn)?;
    let address = match (&sel.address, conn) {
        (Some(_), ConnType::Local) => {
            return Err(Error::usage("--address makes no sense with --type local"))
        }
        (None, ConnType::Local) => vec![],
        (None, _) => {
            return Err(Error::usage(format!("--type {} needs --address", sel.conn))
                .hint("e.g. --address 10.0.0.0/24, --address all"))
        }
        (Some(a), _) => edit::address_columns(a, None).map_err(Error::usage)?,
    };
    let mut opts = Vec::new();
    for o in options {
        let (k, v) = o.split_once('=').ok_or_else(|| {
            Error::usage(format!("invalid --option {o:?}")).hint("use --option NAME=VALUE")
        })?;
        opts.push((k.to_string(), v.to_string()));
    }
    Ok(NewRule {
        conn: conn.name().to_string(),
        databases: tokens(&sel.database),
        users: tokens(&sel.user),
        address,
        method: method.to_string(),
        options: opts,
        comment,
    })
}

fn validate(nr: &NewRule, version: u32, file: &Path) -> Result<Rule> {
    nr.validate(version, file)
        .map_err(|why| Error::usage("PostgreSQL would reject this rule").because(why))
}

fn refuse_errors(doc: &Doc) -> Result<()> {
    if let Some(e) = doc.errors.first() {
        return Err(Error::failed(format!(
            "{} has lines PostgreSQL rejects",
            doc.path.display()
        ))
        .because(format!("{}:{}: {}", e.file.display(), e.line, e.message))
        .hint("see 'hba-edit check'; 'hba-edit remove --line N' removes a line"));
    }
    Ok(())
}

fn line_ending(text: &str, end: usize) -> &str {
    let before = &text[..end];
    if before.ends_with("\r\n") {
        "\r\n"
    } else if before.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

fn line_number_at(text: &str, at: usize) -> usize {
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn add(args: &Args, file: &Path, version: u32, a: &AddArgs) -> Result<Outcome> {
    let mut nr = new_rule(&a.sel, &a.method, &a.options, a.comment.clone())?;
    let rule = validate(&nr, version, file)?;
    let doc = load(file, version)?;
    refuse_errors(&doc)?;
    let id = analyze::identity(&rule, version);
    let full = analyze::full_key(&rule, version);
    if let Some(old) = doc
        .rules
        .iter()
        .find(|r| analyze::identity(r, version) == id)
    {
        if analyze::full_key(old, version) == full {
            return Outcome::json(json!({
                "file": file.display().to_string(),
                "changed": false,
                "action": "unchanged",
                "line": old.line,
                "rule": edit::rule_json(old),
            }));
        }
        if !a.replace {
            return Err(Error::failed(format!(
                "a rule for the same type, database, user and address exists at {}:{} with method {}",
                old.file.display(),
                old.line,
                old.method
            ))
            .hint("use --replace to change it in place, or remove it first"));
        }
        if !doc.is_own(old) {
            return Err(Error::failed(format!(
                "the rule to replace is in the included file {}",
                old.file.display()
            ))
            .hint(format!("edit it with -f {}", old.file.display())));
        }
        let rec = &doc.tok.records[old.origin];
        if nr.comment.is_none() {
            nr.comment = old.comment.clone();
        }
        let layout = own_layout(&doc, old);
        let line = nr.render(&layout);
        let new_text = format!(
            "{}{}{}{}",
            &doc.text[..rec.start],
            line,
            line_ending(&doc.text, rec.end),
            &doc.text[rec.end..]
        );
        let mut out = json!({
            "file": file.display().to_string(),
            "changed": true,
            "action": "replaced",
            "line": rec.line,
            "replaced": edit::rule_json(old),
        });
        let newdoc = reparse(&doc, &new_text);
        if let Some(r) = newdoc
            .rules
            .iter()
            .find(|r| r.line == rec.line && doc.is_own(r))
        {
            out["rule"] = edit::rule_json(r);
        }
        return commit(args, &doc, new_text, out);
    }
    // Where it goes.
    let own_records: Vec<usize> = (0..doc.tok.records.len())
        .filter(|&i| doc.tok.kinds[i] != Kind::Empty)
        .collect();
    let (at, position) = if a.first {
        match own_records.first() {
            Some(&i) => (doc.offset_before(i), "first".to_string()),
            None => (doc.text.len(), "first (the file has no rules)".to_string()),
        }
    } else if let Some(l) = a.before {
        let i = record_for(&doc, l, "--before")?;
        (doc.offset_before(i), format!("before line {l}"))
    } else if let Some(l) = a.after {
        let i = record_for(&doc, l, "--after")?;
        (doc.tok.records[i].end, format!("after line {l}"))
    } else {
        match doc.rules.iter().find(|r| analyze::covers(r, &rule, version)) {
            Some(r) => (
                doc.offset_before(r.origin),
                format!(
                    "before {}:{}, which matches every connection the new rule would and would shadow it",
                    r.file.display(),
                    r.line
                ),
            ),
            None => (doc.offset_end(), "after the last rule".to_string()),
        }
    };
    let line = nr.render(&doc.layout_near(at));
    let new_text = doc.insert(&doc.text, at, &line);
    let at_line = line_number_at(
        &new_text,
        at + usize::from(at > 0 && !doc.text[..at].ends_with('\n')),
    );
    let newdoc = reparse(&doc, &new_text);
    let mut warnings = Vec::new();
    if let Some(idx) = newdoc
        .rules
        .iter()
        .position(|r| r.line == at_line && newdoc.is_own(r))
    {
        let shadow = analyze::shadowed_by(&newdoc.rules, version);
        if let Some(j) = shadow[idx] {
            let s = &newdoc.rules[j];
            warnings.push(format!(
                "the new rule can never match: the rule at {}:{} comes first and matches every connection it would",
                s.file.display(),
                s.line
            ));
        }
    }
    let out = json!({
        "file": file.display().to_string(),
        "changed": true,
        "action": "added",
        "line": at_line,
        "position": position,
        "rule": newdoc.rules.iter().find(|r| r.line == at_line && newdoc.is_own(r)).map(edit::rule_json),
        "warnings": warnings,
    });
    commit(args, &doc, new_text, out)
}

fn own_layout(doc: &Doc, r: &Rule) -> Layout {
    let rec = &doc.tok.records[r.origin];
    if rec.nlines == 1 {
        if let Some(l) = doc
            .tok
            .lines
            .iter()
            .find(|l| l.origin == r.origin && *l.file == *doc.path)
        {
            return Layout::of(l, r, &rec.text);
        }
    }
    doc.layout_near(rec.start)
}

fn record_for(doc: &Doc, line: usize, flag: &str) -> Result<usize> {
    doc.record_at_line(line).ok_or_else(|| {
        Error::usage(format!(
            "{flag} {line}: no rule starts on line {line} of {}",
            doc.path.display()
        ))
        .hint("see the line numbers in 'hba-edit list'")
    })
}

fn reparse(doc: &Doc, text: &str) -> Doc {
    Doc::parse(
        &doc.path,
        text.to_string(),
        doc.version,
        &lex::Disk,
        &crate::addr::resolves,
    )
}

/// Byte range of a record, with the comment lines directly above it when they belong to it
/// alone (nothing but a blank line, a comment or the end of the file follows the record).
fn removal_range(doc: &Doc, rec: usize) -> (usize, usize) {
    let r = &doc.tok.records[rec];
    let standalone = doc.tok.kinds.get(rec + 1).is_none_or(|k| *k == Kind::Empty);
    let start = if standalone {
        doc.offset_before(rec)
    } else {
        r.start
    };
    (start, r.end)
}

fn remove(args: &Args, file: &Path, version: u32, ra: &RemoveArgs) -> Result<Outcome> {
    let doc = load(file, version)?;
    let mut ranges = Vec::new();
    let mut removed = Vec::new();
    let mut skipped = Vec::new();
    if let Some(l) = ra.line {
        let i = record_for(&doc, l, "--line")?;
        ranges.push(removal_range(&doc, i));
        let rule = doc.rules.iter().find(|r| r.origin == i && doc.is_own(r));
        removed.push(match rule {
            Some(r) => edit::rule_json(r),
            None => json!({"file": file.display().to_string(), "line": l, "text": doc.tok.records[i].text}),
        });
    } else {
        let sel = Selector {
            conn: ra.conn.clone().unwrap_or_default(),
            database: ra.database.clone(),
            user: ra.user.clone(),
            address: ra.address.clone(),
        };
        // Any valid method will do: only the identity is compared.
        let probe = validate(&new_rule(&sel, "reject", &[], None)?, version, file)?;
        let id = analyze::identity(&probe, version);
        for r in doc
            .rules
            .iter()
            .filter(|r| analyze::identity(r, version) == id)
        {
            if doc.is_own(r) {
                ranges.push(removal_range(&doc, r.origin));
                removed.push(edit::rule_json(r));
            } else {
                skipped.push(edit::rule_json(r));
            }
        }
    }
    if ranges.is_empty() {
        return Outcome::json(json!({
            "file": file.display().to_string(),
            "changed": false,
            "removed": [],
            "not_removed": skipped,
        }));
    }
    ranges.sort();
    ranges.dedup();
    let mut new_text = String::with_capacity(doc.text.len());
    let mut pos = 0;
    for (s, e) in ranges {
        let s = s.max(pos);
        new_text.push_str(&doc.text[pos..s]);
        pos = e.max(pos);
    }
    new_text.push_str(&doc.text[pos..]);
    let mut out = json!({
        "file": file.display().to_string(),
        "changed": true,
        "removed": removed,
    });
    if !skipped.is_empty() {
        out["not_removed"] = json!(skipped);
        out["note"] = json!("rules in included files are left alone; edit those files with -f");
    }
    commit(args, &doc, new_text, out)
}

fn apply(args: &Args, file: &Path, version: u32) -> Result<Outcome> {
    let input = pgdr_core::input::read_stdin_json()?;
    let list = input
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::usage("malformed input").because("expected {\"rules\": [...]}"))?;
    let mut wanted = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let nr = edit::rule_from_json(v)
            .map_err(|why| Error::usage(format!("rules[{i}] is malformed")).because(why))?;
        let r = nr.validate(version, file).map_err(|why| {
            Error::usage(format!("rules[{i}]: PostgreSQL would reject this rule")).because(why)
        })?;
        wanted.push((nr, r));
    }
    let doc = load(file, version)?;
    refuse_errors(&doc)?;
    let own: Vec<&Rule> = doc.rules.iter().filter(|r| doc.is_own(r)).collect();
    let old_keys: Vec<String> = own.iter().map(|r| analyze::full_key(r, version)).collect();
    let new_keys: Vec<String> = wanted
        .iter()
        .map(|(_, r)| analyze::full_key(r, version))
        .collect();
    // (start, end, order, text): insertions sort before a removal at the same offset.
    let mut edits: Vec<(usize, usize, usize, String)> = Vec::new();
    let (mut added, mut removed, mut replaced, mut kept) = (0, 0, 0, 0);
    let mut seq = 0;
    let insert_at = |doc: &Doc, at: usize, nr: &NewRule, edits: &mut Vec<_>, seq: &mut usize| {
        let line = nr.render(&doc.layout_near(at));
        *seq += 1;
        edits.push((at, at, *seq, line));
    };
    let point = |old_index: usize| -> usize {
        if old_index > 0 {
            doc.tok.records[own[old_index - 1].origin].end
        } else if let Some(first) = own.first() {
            doc.offset_before(first.origin)
        } else {
            doc.offset_end()
        }
    };
    use similar::DiffOp;
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old_keys, &new_keys) {
        match op {
            DiffOp::Equal { len, .. } => kept += len,
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for r in &own[old_index..old_index + old_len] {
                    let (s, e) = removal_range(&doc, r.origin);
                    edits.push((s, e, usize::MAX, String::new()));
                    removed += 1;
                }
            }
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => {
                let at = point(old_index);
                for (nr, _) in &wanted[new_index..new_index + new_len] {
                    insert_at(&doc, at, nr, &mut edits, &mut seq);
                    added += 1;
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let olds = &own[old_index..old_index + old_len];
                let news = &wanted[new_index..new_index + new_len];
                let same_identity = old_len == new_len
                    && olds.iter().zip(news).all(|(o, (_, n))| {
                        analyze::identity(o, version) == analyze::identity(n, version)
                    });
                if same_identity {
                    for (o, (nr, _)) in olds.iter().zip(news) {
                        let rec = &doc.tok.records[o.origin];
                        let mut nr = nr.clone();
                        if nr.comment.is_none() {
                            nr.comment = o.comment.clone();
                        }
                        let line = format!(
                            "{}{}",
                            nr.render(&own_layout(&doc, o)),
                            line_ending(&doc.text, rec.end)
                        );
                        edits.push((rec.start, rec.end, usize::MAX, line));
                        replaced += 1;
                    }
                } else {
                    // In the place of the first replaced line, below its comments.
                    let at = doc.tok.records[olds[0].origin].start;
                    for (nr, _) in news {
                        insert_at(&doc, at, nr, &mut edits, &mut seq);
                        added += 1;
                    }
                    for r in olds {
                        let (s, e) = removal_range(&doc, r.origin);
                        edits.push((s, e, usize::MAX, String::new()));
                        removed += 1;
                    }
                }
            }
        }
    }
    edits.sort_by_key(|e| (e.0, e.2));
    let eol = if doc.text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut new_text = String::with_capacity(doc.text.len());
    let mut pos = 0;
    for (s, e, _, text) in edits {
        let s = s.max(pos);
        new_text.push_str(&doc.text[pos..s]);
        if s == e {
            if !new_text.is_empty() && !new_text.ends_with('\n') {
                new_text.push_str(eol);
            }
            new_text.push_str(&text);
            new_text.push_str(eol);
        } else {
            new_text.push_str(&text);
        }
        pos = e.max(pos);
    }
    new_text.push_str(&doc.text[pos..]);
    let out = json!({
        "file": file.display().to_string(),
        "changed": new_text != doc.text,
        "added": added,
        "removed": removed,
        "replaced": replaced,
        "kept": kept,
    });
    if new_text == doc.text {
        return Outcome::json(out);
    }
    commit(args, &doc, new_text, out)
}

/// Writes the new text (or, with --dry-run, shows it), then --reload.
fn commit(args: &Args, doc: &Doc, new_text: String, mut out: Value) -> Result<Outcome> {
    let path = &doc.path;
    let obj = out.as_object_mut().expect("an object");
    if args.dry_run {
        obj.insert("dry_run".into(), json!(true));
        obj.insert(
            "diff".into(),
            json!(pgdr_core::diff::unified(
                &doc.text,
                &new_text,
                &path.display().to_string()
            )),
        );
        return Outcome::json(out);
    }
    let mut client = None;
    if args.reload {
        let mut c = pgdr_core::conn::connect(args.dbname.as_deref())?;
        check_hba_file(&mut c, path)?;
        client = Some(c);
    }
    let report = fsx::write_atomic(
        path,
        new_text.as_bytes(),
        &WriteOptions {
            backup: args.backup,
            new_mode: None,
        },
    )?;
    if let Some(b) = report.backup {
        obj.insert("backup".into(), json!(b.display().to_string()));
    }
    if let Some(mut c) = client {
        let warnings = reload(&mut c, path, &doc.text)?;
        obj.insert(
            "reload".into(),
            json!({"done": true, "server_warnings": warnings}),
        );
    }
    Outcome::json(out)
}

fn sql_err(what: &str) -> impl Fn(postgres::Error) -> Error + '_ {
    move |e| Error::failed(what.to_string()).because(pgdr_core::conn::error_text(&e))
}

/// Refuses a server that reads another file than the one edited.
fn check_hba_file(c: &mut postgres::Client, path: &Path) -> Result<()> {
    let row = c
        .query_one("SELECT current_setting('hba_file')", &[])
        .map_err(sql_err("cannot ask the server for hba_file"))?;
    let server: String = row.get(0);
    let same = match (std::fs::canonicalize(&server), std::fs::canonicalize(path)) {
        (Ok(a), Ok(b)) => a == b,
        _ => Path::new(&server) == path,
    };
    if !same {
        return Err(
            Error::failed("--reload: the server reads another pg_hba.conf")
                .because(format!("its hba_file is {server}, not {}", path.display()))
                .hint("pass -f with the server's file"),
        );
    }
    Ok(())
}

/// Checks the written file with the server and reloads; on a rejected line puts `old` back.
fn reload(c: &mut postgres::Client, path: &Path, old: &str) -> Result<Vec<Value>> {
    let rows = c.query(
        "SELECT line_number, type IS NULL AS failed, error FROM pg_hba_file_rules WHERE error IS NOT NULL OR type IS NULL ORDER BY line_number",
        &[],
    );
    let restore = |c: &mut postgres::Client, why: String| -> Error {
        let put_back = fsx::write_atomic(path, old.as_bytes(), &WriteOptions::default());
        let _ = c.simple_query("SELECT pg_reload_conf()");
        let e = Error::failed("the server rejects the new pg_hba.conf").because(why);
        match put_back {
            Ok(_) => e.hint("the previous file was put back and reloaded"),
            Err(pe) => e.hint(format!("putting the previous file back failed too: {pe}")),
        }
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return Err(restore(c, pgdr_core::conn::error_text(&e))),
    };
    let mut warnings = Vec::new();
    for r in &rows {
        let line: i32 = r.get(0);
        let failed: bool = r.get(1);
        let msg: Option<String> = r.get(2);
        let msg = msg.unwrap_or_else(|| "invalid line".into());
        if failed {
            return Err(restore(c, format!("line {line}: {msg}")));
        }
        warnings.push(json!({"line": line, "message": msg}));
    }
    c.simple_query("SELECT pg_reload_conf()")
        .map_err(sql_err("the file was written but pg_reload_conf() failed"))?;
    Ok(warnings)
}
