//! The `repl-lag` command: parses the arguments and renders the reports; the check itself is
//! [`crate::check`].

use crate::check::{check, Checked};
use crate::report::{PrimaryReport, Reports, ServerReport, StandbyReport, Status};
use crate::verdict::Thresholds;
use pgdr_core::conn::ConnParams;
use pgdr_core::man::{DocSection, ManExtra};
use pgdr_core::{Error, ErrorKind, Outcome, OutputArgs, Result};

const TOOL: &str = "repl-lag";

/// Exit code for "cannot tell": bad arguments, a bad conninfo, an unreachable server.
const UNKNOWN: u8 = 3;

/// Seconds a connection attempt may take when neither -d nor PGCONNECT_TIMEOUT says.
const DEFAULT_CONNECT_TIMEOUT: &str = "10";

/// What is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON document; the exit code is the verdict.
    Json,
    /// The text exposition format for node_exporter's textfile collector; exit 0 whenever the
    /// metrics were written (the verdict is the metric pgdr_repl_status).
    Prometheus,
    /// One monitoring-plugin line, STATUS - summary | perfdata; the exit code is the verdict.
    Nagios,
}

#[derive(Debug, clap::Parser)]
#[command(
    name = "repl-lag",
    version,
    about = "Report replication, slot and archiver health; alert on thresholds",
    long_about = "Report replication, slot and archiver health of PostgreSQL servers (13 to 18) and \
alert on thresholds, with monitoring-plugin exit codes.\n\n\
On a primary: every WAL sender (byte lag of the sent, write, flush and replay positions, computed \
exactly from LSNs; write, flush and replay lag in seconds; its slot), every replication slot \
(retained WAL bytes, wal_status and safe_wal_size from 13) and the archiver (failures, whether the \
last attempt failed). On a standby: received and replayed positions, the replay backlog in bytes, \
the last replayed commit, a replay delay that is 0 while everything received is replayed (an idle \
primary is no delay), and the WAL receiver's status and the age of the last message from the \
primary (a cut stream is CRITICAL, not a frozen zero).\n\n\
Thresholds: --warn-bytes/--crit-bytes apply to each physical standby's replay lag (on the primary), \
to the replay backlog (on a standby) and to the WAL retained by each non-temporary slot; \
--warn-seconds/--crit-seconds to each standby's largest time lag (on the primary) and to the replay \
delay beyond recovery_min_apply_delay (on a standby). Byte and time limits are independent: either \
one raises a problem. --min-standbys counts physical standbys in state streaming on a primary: a WAL sender is a standby \
only when it reports a replay position; pg_receivewal (as Barman runs it), pg_basebackup (the backup \
and its WAL stream) and logical consumers are listed with their kind (receivewal, backup, logical) and \
never counted. Without --max-archive-failures a failing archiver is a WARNING; with N it is CRITICAL \
once more than N attempts failed since the last success (PostgreSQL counts failures only since the \
statistics reset, so after an earlier success the count since the reset is used as an upper bound). \
archive_mode on with an empty archive_command (and, from 15, no archive_library) archives nothing \
while every segment stays in pg_wal: a WARNING, CRITICAL with --max-archive-failures.\n\n\
A role without pg_monitor (or pg_read_all_stats) sees NULL replication columns: they are reported \
as null with \"not visible to this role\" and the verdict is UNKNOWN, never a zero lag."
)]
pub struct Args {
    /// A server to check: libpq conninfo, postgres:// URI or service=NAME (PG* variables, pg_service.conf and ~/.pgpass apply as in libpq). Repeat for several servers; each gets its own report
    #[arg(short = 'd', long = "dbname", value_name = "CONNINFO")]
    pub dbname: Vec<String>,

    /// WARNING above this many bytes of lag or retained WAL (units: kB, MB, GB, TB)
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub warn_bytes: Option<u64>,

    /// CRITICAL above this many bytes of lag or retained WAL (units: kB, MB, GB, TB)
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub crit_bytes: Option<u64>,

    /// WARNING above this lag or replay delay (seconds, or with a unit: 90s, 5m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub warn_seconds: Option<u64>,

    /// CRITICAL above this lag or replay delay (seconds, or with a unit: 90s, 5m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub crit_seconds: Option<u64>,

    /// CRITICAL when a primary has fewer physical standbys streaming
    #[arg(long, value_name = "N")]
    pub min_standbys: Option<usize>,

    /// CRITICAL when more archiving attempts than this failed since the last success
    #[arg(long, value_name = "N")]
    pub max_archive_failures: Option<u32>,

    /// json (one document), prometheus (text exposition format for node_exporter's textfile collector; exit 0 once written, the verdict is pgdr_repl_status) or nagios (one plugin line: STATUS - summary | perfdata)
    #[arg(long, value_enum, default_value = "json", hide_possible_values = true)]
    pub format: Format,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn size(s: &str) -> std::result::Result<u64, String> {
    pgdr_core::units::parse_size(s)
}

fn duration(s: &str) -> std::result::Result<u64, String> {
    pgdr_core::units::parse_duration(s)
}

pgdr_core::tool_args!(Args);

fn unknown(e: Error) -> Error {
    e.kind(ErrorKind::Code(UNKNOWN))
}

impl Args {
    fn thresholds(&self) -> Thresholds {
        Thresholds {
            warn_bytes: self.warn_bytes,
            crit_bytes: self.crit_bytes,
            warn_seconds: self.warn_seconds.map(|s| s as f64),
            crit_seconds: self.crit_seconds.map(|s| s as f64),
            min_standbys: self.min_standbys,
            max_archive_failures: self.max_archive_failures.map(i64::from),
        }
    }
}

/// -d resolved as libpq would, with a connect timeout a monitoring check can live with.
fn resolve(dsn: Option<&str>) -> Result<ConnParams> {
    let mut p = ConnParams::resolve(dsn).map_err(unknown)?;
    if p.get("connect_timeout").is_none() {
        p.set("connect_timeout", DEFAULT_CONNECT_TIMEOUT);
    }
    Ok(p)
}

/// The worst status of the checked servers.
fn worst(checked: &[Checked]) -> Status {
    checked
        .iter()
        .fold(Status::Ok, |acc, c| acc.worst(c.report.status()))
}

pub fn run(args: Args) -> Result<Outcome> {
    match args.format {
        // A plugin's output is its stdout: even "cannot tell" is a line there.
        Format::Nagios => Ok(check_and_render(&args).unwrap_or_else(|e| {
            Outcome::text(crate::nagios::unknown(&e.to_string())).with_code(UNKNOWN)
        })),
        Format::Json | Format::Prometheus => check_and_render(&args),
    }
}

fn check_and_render(args: &Args) -> Result<Outcome> {
    let th = args.thresholds();
    th.validate()
        .map_err(|why| Error::with_code(UNKNOWN, "invalid thresholds").because(why))?;
    let dsns: Vec<Option<&str>> = if args.dbname.is_empty() {
        vec![None]
    } else {
        args.dbname.iter().map(|d| Some(d.as_str())).collect()
    };
    // Every -d must parse before any server is asked: a typo is the caller's to fix.
    let targets = dsns.into_iter().map(resolve).collect::<Result<Vec<_>>>()?;
    let checked = check(&targets, &th);
    let code = worst(&checked).exit_code();
    Ok(match args.format {
        // Written means published: `… > f.tmp && mv f.tmp f.prom` must carry bad news too.
        Format::Prometheus => Outcome::text(crate::prom::render(&checked)),
        Format::Nagios => Outcome::text(crate::nagios::render(&checked, &th)).with_code(code),
        Format::Json if checked.len() == 1 => {
            match checked.into_iter().next().expect("one server").report {
                ServerReport::Primary(r) => Outcome::document(&*r)?,
                ServerReport::Standby(r) => Outcome::document(&*r)?,
                // One server that cannot be read: its one line on stderr, nothing on stdout.
                ServerReport::Unreachable(r) => {
                    let why = r.problems.into_iter().map(|p| p.message);
                    return Err(Error::with_code(
                        UNKNOWN,
                        why.collect::<Vec<_>>().join("; "),
                    ));
                }
            }
            .with_code(code)
        }
        Format::Json => Outcome::document(&Reports::of(
            checked.into_iter().map(|c| c.report).collect(),
        ))?
        .with_code(code),
    })
}

pub static MAN: ManExtra = ManExtra {
    exit_status: &[
        (0, "OK: every server checked, no problem. With --format prometheus: the metrics were written, whatever the verdict (it is the metric pgdr_repl_status)."),
        (1, "WARNING: the worst problem is a warning (a limit --warn-* exceeded, a standby not streaming, replay paused, a failing archiver without --max-archive-failures, a slot about to lose WAL)."),
        (2, "CRITICAL: a limit --crit-* exceeded, fewer standbys than --min-standbys, a cut or stalled WAL stream on a standby, a slot that lost WAL, more archive failures than --max-archive-failures."),
        (3, "UNKNOWN: repl-lag cannot tell: bad arguments or connection string (monitoring plugins answer UNKNOWN here, not 2), a server that cannot be reached or refuses the queries, or a role that cannot see the replication columns (grant pg_monitor). With one server that cannot be reached, stdout is empty and stderr has one line."),
    ],
    documents: &[
        DocSection::of::<PrimaryReport>("PrimaryReport: one -d (or none: PG* variables), a primary"),
        DocSection::of::<StandbyReport>("StandbyReport: one -d (or none: PG* variables), a standby"),
        DocSection::of::<Reports>("Several -d"),
    ],
    json_output: "With --format nagios the output is one line instead, STATUS - summary | perfdata: STATUS is OK, WARNING, CRITICAL or UNKNOWN (also when the check cannot run at all), the summary lists the problems worst first (each prefixed with host:port when several -d are given), and the perfdata items are label=value[UOM];warn;crit;0 with the limits given: standbys_streaming (crit N: for --min-standbys N), standby_NAME_replay_lag (B) and standby_NAME_time_lag (s) per physical standby, receivewal_NAME_write_lag and _flush_lag (B), slot_NAME_retained (B), archive_failed (c, since the statistics reset), archive_failures_since_success, archive_pending; on a standby replay_lag (B), replay_delay (s) and receiver_last_message_age (s, crit wal_receiver_timeout). Labels are prefixed with host:port: when several -d are given.
One -d prints that server's report; several print one document with every report. Status is OK, WARNING, CRITICAL or UNKNOWN. \"server\" is the connection as host=... port=... user=... dbname=... (never a password).
Byte figures are exact integers computed from the LSNs; a column the role cannot see is null (with a \"note\"), never 0. Columns a server version lacks are null. Times are RFC 3339 in UTC.
With --format prometheus the output is the text exposition format instead: pgdr_repl_up, pgdr_repl_status (the exit code), pgdr_repl_standby_lag_bytes{stage=sent|write|flush|replay}, pgdr_repl_standby_lag_seconds{stage=write|flush|replay}, pgdr_repl_slot_retained_bytes, pgdr_repl_archiver_failed_total, pgdr_repl_replay_lag_bytes, pgdr_repl_replay_delay_seconds, pgdr_repl_wal_receiver_last_message_age_seconds and more, labelled by server (host:port), standby (application_name, client_addr, slot, kind) and slot (slot_name, slot_type); figures that are not visible are left out, never written as 0. HELP and TYPE lines come before each family.",
    examples: &[
        (
            "Page when the only standby is gone or more than 1 GB behind:",
            "repl-lag -d 'host=primary user=monitor dbname=postgres' --crit-bytes 1GB --min-standbys 1 || page-oncall",
        ),
        (
            "Check a primary and its standby in one run; the worst status is the exit code:",
            "repl-lag -d 'host=primary user=monitor dbname=postgres' -d 'host=standby user=monitor dbname=postgres' --warn-seconds 30s --crit-seconds 5m",
        ),
        (
            "Fail when the archiver has failed at all since it last succeeded:",
            "repl-lag -d 'host=primary user=monitor dbname=postgres' --max-archive-failures 0",
        ),
        (
            "Feed node_exporter's textfile collector from cron (exit 0 whenever written, so a CRITICAL is published too):",
            "repl-lag -d 'host=primary user=monitor dbname=postgres' --format prometheus > /var/lib/node_exporter/repl.prom.tmp && mv /var/lib/node_exporter/repl.prom.tmp /var/lib/node_exporter/repl.prom",
        ),
        (
            "A Nagios or Icinga check (one line with perfdata, the plugin exit codes):",
            "repl-lag -d 'host=primary user=monitor dbname=postgres' --format nagios --warn-bytes 64MB --crit-bytes 1GB --min-standbys 1",
        ),
        (
            "The servers and limits from /etc/pgdr/pgdr.toml ([repl-lag] dbname = [\"service=primary\", \"service=standby\"], crit-bytes = \"1GB\"), from cron:",
            "repl-lag || page-oncall",
        ),
        (
            "What the configuration file, the environment and the flags give, and from where:",
            "repl-lag --warn-bytes 64MB --print-config --pretty",
        ),
        (
            "The connection from pg_service.conf:",
            "PGSERVICE=primary repl-lag --min-standbys 1",
        ),
        (
            "A monitoring role that sees everything repl-lag reads:",
            "psql -c 'CREATE ROLE monitor LOGIN; GRANT pg_monitor TO monitor'",
        ),
    ],
    extra_sections: &[(
        "PITFALLS HANDLED",
        "An idle primary is no delay: on a standby the replay delay is 0 while everything received is replayed; a standby found behind is looked at again for up to 0.3 s, and if replay has reached what was received at the first look it is keeping up.
A cut stream is not a frozen zero: no WAL receiver, a receiver not streaming, or no message from the primary for longer than wal_receiver_timeout is CRITICAL.
Paused replay is a WARNING even when the lag is small. A deliberately delayed standby (recovery_min_apply_delay) is judged on the delay beyond it.
LSNs travel as text and differences are exact 64-bit integers (no float, no pre-9.3 formula).
Only a physical standby counts as a standby: pg_receivewal and other WAL receivers that never replay, pg_basebackup's WAL senders and logical consumers are reported with their kind and never counted by --min-standbys.
archive_mode on with no archive_command (or archive_library) is no silent OK: PostgreSQL counts no failure then, yet keeps every segment.",
    )],
};

/// `main()` of repl-lag. Bad arguments exit 3 (UNKNOWN), as monitoring plugins do: a typo in
/// a check must not page as CRITICAL (2).
pub fn main() -> std::process::ExitCode {
    // Bad arguments are UNKNOWN (3): a monitoring plugin's 2 would page as CRITICAL.
    pgdr_core::runner::main_with_usage_code::<Args>(TOOL, run, UNKNOWN)
}
