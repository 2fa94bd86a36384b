//! The `hba-edit` command line: arguments parsed into the operations' plain arguments
//! (crate::cmd), documents rendered. Nothing else happens here.

use crate::cmd::{add, apply, check, list, matching, remove, ChangeOptions, Selector, Target};
use crate::doc::{AddReport, ApplyReport, CheckReport, HbaList, MatchReport, RemoveReport};
use crate::file::HbaRules;
use pgdr_core::cli::{ChangeArgs, ReloadArgs, Stdin};
use pgdr_core::man::DocSection;
use pgdr_core::{Outcome, OutputArgs, Result};
use std::path::PathBuf;

const ABOUT: &str = "Read, query, check and change pg_hba.conf exactly as PostgreSQL reads it";

const LONG_ABOUT: &str = "Read, query, check and change pg_hba.conf exactly as PostgreSQL reads it.

The file is read with PostgreSQL's own rules (src/backend/libpq/hba.c) for the server version \
in use (12 to 18; from --pg-version, else PG_VERSION beside the file, else 15): backslash \
continuation, quoting, keywords only when unquoted, comma lists, +group, @file, /regex (16+), \
IPv4/IPv6 CIDR or address plus netmask, host names, name=value options with the server's \
per-method checks, and include, include_if_exists, include_dir (16+).

Edits change only the lines they must: every other byte of the file is kept, new lines are \
aligned like their neighbours, and the file is replaced atomically. Nothing is ever re-sorted.";

#[derive(Debug, clap::Parser)]
#[command(
    name = "hba-edit",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT
)]
pub struct Args {
    /// The pg_hba.conf to read or change (default: DIR/pg_hba.conf of -D).
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// The data directory whose pg_hba.conf is meant when -f is not given.
    #[arg(
        short = 'D',
        long = "pgdata",
        value_name = "DIR",
        env = "PGDATA",
        global = true
    )]
    pub pgdata: Option<PathBuf>,
    /// PostgreSQL major version whose rules apply (12-18; default: PG_VERSION beside the
    /// file, else 15).
    #[arg(long, value_name = "MAJOR", global = true)]
    pub pg_version: Option<u32>,
    /// Print secret option values (ldapbindpasswd, radiussecrets) instead of ********.
    #[arg(long, global = true)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub cmd: Cmd,
}

pgdr_core::tool_args!(Args);

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Print every rule (included files too) and every line the server would reject.
    #[command()]
    List,
    /// Add a rule (idempotent); by default just before the first rule that would shadow it,
    /// else after the last rule.
    #[command()]
    Add(AddArgs),
    /// Remove the rules with this type, database, user and address (or the line --line).
    #[command()]
    Remove(RemoveArgs),
    /// Name the rule PostgreSQL would pick for a connection, or null (rejected).
    #[command()]
    Match(MatchArgs),
    /// Report the errors the server would reject the file for (exit 1) and warnings.
    #[command()]
    Check,
    /// Make the file's rules equal to those of a list document read from stdin.
    #[command()]
    Apply(ApplyArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SelectorArgs {
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
    pub sel: SelectorArgs,
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
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub reload: ReloadArgs,
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
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub reload: ReloadArgs,
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

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// "-": read hba-edit list's document from standard input.
    #[arg(value_name = "-", value_parser = pgdr_core::cli::stdin_marker)]
    pub input: Stdin,
    /// Allow a document that would remove every rule of the file (an empty pg_hba.conf
    /// rejects every connection).
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub reload: ReloadArgs,
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "Success (also when an edit changed nothing)."),
        (1, "The operation failed or was refused and nothing was changed: the file is missing or unreadable, an edit conflicts with an existing rule (see --replace), the file has lines the server rejects, check found errors, apply would write a masked secret or remove every rule (see --allow-empty), or under --reload the connection failed (nothing written) or the server rejected the new file (the previous file was put back and reloaded)."),
        (2, "Usage error or malformed input: bad arguments, a rule the server would reject, malformed JSON or a document that is not hba-edit list's, a file that is not UTF-8."),
    ],
    documents: &[
        DocSection::of::<HbaList<'static>>("list (read back by apply -)"),
        DocSection::of::<AddReport>("add"),
        DocSection::of::<RemoveReport>("remove"),
        DocSection::of::<ApplyReport>("apply"),
        DocSection::of::<MatchReport>("match"),
        DocSection::of::<CheckReport<'static>>("check"),
    ],
    json_output: "Addresses and netmasks are shown as pg_hba_file_rules shows them. Secret option values (ldapbindpasswd, radiussecrets) show as ******** unless --show-secrets, and the rule names them in \"masked\"; apply refuses such a document.",
    examples: &[
        ("List the rules of the cluster in $PGDATA:", "hba-edit list"),
        ("Allow a standby to replicate, in the right place, and reload:", "hba-edit add --type host --database replication --user replicator --address 10.0.0.5 --method scram-sha-256 --reload -d 'user=postgres dbname=postgres'"),
        ("See what an edit would do:", "hba-edit add --type host --database all --user app --address 10.1.0.0/16 --method scram-sha-256 --dry-run"),
        ("Which rule decides a connection:", "hba-edit match --type host --database app --user bob --address 10.1.2.3"),
        ("Copy the rules of one cluster to another:", "hba-edit -f old/pg_hba.conf list | hba-edit -f new/pg_hba.conf apply -"),
        ("Remove a rule, previewing first:", "hba-edit remove --type host --database all --user app --address 10.1.0.0/16 --dry-run"),
        ("Remove the rule on line 12:", "hba-edit remove --line 12"),
        ("Which rule decides, for a member of a group:", "hba-edit match --type local --database postgres --user carol --member-of admins"),
        ("Would the server accept this file? (from cron or CI):", "hba-edit -f /etc/postgresql/15/main/pg_hba.conf check || echo refused"),
        ("Shut a user out, before every other rule:", "hba-edit add --type local --database all --user blocked --method reject --first --reload"),
        ("Copy rules whose secrets are masked in list:", "hba-edit -f a/pg_hba.conf list --show-secrets | hba-edit -f b/pg_hba.conf apply - --dry-run"),
    ],
    extra_sections: &[(
        "NOTES",
        "The build is assumed to have SSL, GSSAPI, PAM and LDAP, as Linux packages do. A hostssl line on a server with ssl = off loads, but the server reports that it cannot match; check cannot know the ssl setting. match treats --database replication as a physical replication connection. A rule can never match when earlier rules, alone or together, match every connection it would: 0.0.0.0/0 and ::/0 together cover all, samenet, samehost and host names; samenet covers samehost; role membership, DNS and regular expressions cover only themselves. add places a new rule before the first such rule that it does not itself cover, and warns when no place helps.",
    )],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("hba-edit", run)
}

fn change_options(c: &ChangeArgs, r: &ReloadArgs, show_secrets: bool) -> ChangeOptions {
    ChangeOptions {
        dry_run: c.dry_run,
        backup: c.backup,
        reload: r.reload.then(|| r.dbname.clone()),
        show_secrets,
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    let target = Target::resolve(
        args.file.as_deref(),
        args.pgdata.as_deref(),
        args.pg_version,
    )?;
    let show = args.show_secrets;
    match args.cmd {
        Cmd::List => {
            // Never freed: the process ends once the document is printed, and freeing a
            // 100,000-rule file would be wasted time.
            let file: &'static HbaRules = Box::leak(Box::new(target.load_rules()?));
            Ok(Outcome::document_streamed(list::list(file, show)))
        }
        Cmd::Check => {
            let file: &'static HbaRules = Box::leak(Box::new(target.load_rules()?));
            let report = check::check(file);
            let code = if report.ok { 0 } else { 1 };
            Ok(Outcome::document_streamed(report).with_code(code))
        }
        Cmd::Match(m) => {
            let spec = matching::ConnSpec {
                conn: m.conn,
                database: m.database,
                user: m.user,
                address: m.address,
                member_of: m.member_of,
            };
            Outcome::document(&matching::find(&target, &spec, show)?)
        }
        Cmd::Add(a) => {
            let placement = match (a.first, a.before, a.after) {
                (true, _, _) => add::Placement::First,
                (_, Some(l), _) => add::Placement::Before(l),
                (_, _, Some(l)) => add::Placement::After(l),
                _ => add::Placement::Auto,
            };
            let spec = add::AddSpec {
                rule: selector(a.sel),
                method: a.method,
                options: a.options,
                comment: a.comment,
                placement,
                replace: a.replace,
            };
            let opts = change_options(&a.change, &a.reload, show);
            Outcome::document(&add::add(&target, &spec, &opts)?)
        }
        Cmd::Remove(r) => {
            let spec = match r.line {
                Some(l) => remove::RemoveSpec::Line(l),
                None => remove::RemoveSpec::Rules(Selector {
                    conn: r.conn.unwrap_or_default(),
                    database: r.database,
                    user: r.user,
                    address: r.address,
                }),
            };
            let opts = change_options(&r.change, &r.reload, show);
            Outcome::document(&remove::remove(&target, &spec, &opts)?)
        }
        Cmd::Apply(a) => {
            let input: HbaList<'static> = pgdr_core::doc::read_stdin()?;
            let opts = change_options(&a.change, &a.reload, show);
            Outcome::document(&apply::apply(&target, &input, a.allow_empty, &opts)?)
        }
    }
}

fn selector(s: SelectorArgs) -> Selector {
    Selector {
        conn: s.conn,
        database: s.database,
        user: s.user,
        address: s.address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn only_changing_subcommands_offer_reload_and_backup() {
        let cmd = Args::command();
        for (sub, expected) in [
            ("add", true),
            ("remove", true),
            ("apply", true),
            ("match", false),
            ("list", false),
            ("check", false),
        ] {
            let s = cmd.find_subcommand(sub).unwrap();
            for flag in ["reload", "backup", "dry-run"] {
                let has = s
                    .get_arguments()
                    .any(|a| a.get_long() == Some(flag) && !a.is_global_set());
                assert_eq!(has, expected, "{sub} --{flag}");
            }
        }
    }
}
