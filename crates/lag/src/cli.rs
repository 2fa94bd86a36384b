//! The `repl-lag` command.

use crate::check::{evaluate, Thresholds};
use crate::collect::read_server;
use crate::model::{Problem, Report, Status};
use pgdr_core::conn::ConnParams;
use pgdr_core::man::ManExtra;
use pgdr_core::{Error, ErrorKind, Outcome, OutputArgs, Result};
use serde_json::json;

const TOOL: &str = "repl-lag";

/// Exit code for "cannot tell": bad arguments, a bad conninfo, an unreachable server.
const UNKNOWN: u8 = 3;

/// Seconds a connection attempt may take when neither -d nor PGCONNECT_TIMEOUT says.
const DEFAULT_CONNECT_TIMEOUT: &str = "10";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Prometheus,
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
one raises a problem. --min-standbys counts physical standbys in state streaming on a primary. \
Without --max-archive-failures a failing archiver is a WARNING; with N it is CRITICAL once more than \
N attempts failed since the last success (PostgreSQL counts failures only since the statistics \
reset, so after an earlier success the count since the reset is used as an upper bound).\n\n\
A role without pg_monitor (or pg_read_all_stats) sees NULL replication columns: they are reported \
as null with \"not visible to this role\" and the verdict is UNKNOWN, never a zero lag.",
    after_help = "Examples:\n  \
repl-lag -d 'host=primary user=monitor' --crit-bytes 1GB --min-standbys 1 || page-oncall\n  \
repl-lag -d 'host=primary user=monitor' -d 'host=standby user=monitor' --warn-seconds 30s --crit-seconds 5m\n  \
repl-lag -d postgres://monitor@primary/postgres --format prometheus > /var/lib/node_exporter/repl.prom.tmp"
)]
pub struct Args {
    /// A server to check: libpq conninfo or postgres:// URI (PG* variables and ~/.pgpass apply). Repeat for several servers; each gets its own report
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

    /// json (one document) or prometheus (text exposition format for node_exporter's textfile collector)
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

pub fn run(args: Args) -> Result<Outcome> {
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
    let single = targets.len() == 1;
    let mut reports = Vec::new();
    for t in &targets {
        let mut report = match read_server(t) {
            Ok(r) => r,
            Err(e) if single => return Err(unknown(e)),
            Err(e) => Report::unknown(t.describe(), crate::collect::instance(t), e.to_string()),
        };
        evaluate(&mut report, &th);
        reports.push(report);
    }
    let worst = reports
        .iter()
        .fold(Status::Ok, |acc, r| acc.worst(r.status));
    let outcome = match args.format {
        Format::Prometheus => Outcome::text(crate::prom::render(&reports)),
        Format::Json if single => Outcome::json(&reports[0])?,
        Format::Json => {
            let problems: Vec<Problem> = reports
                .iter()
                .flat_map(|r| {
                    r.problems.iter().map(|p| Problem {
                        severity: p.severity,
                        message: format!("{}: {}", r.server, p.message),
                    })
                })
                .collect();
            Outcome::json(json!({"status": worst, "problems": problems, "reports": reports}))?
        }
    };
    Ok(outcome.with_code(worst.exit_code()))
}

pub static MAN: ManExtra = ManExtra {
    exit_status: &[
        (0, "OK: every server checked, no problem."),
        (1, "WARNING: the worst problem is a warning (a limit --warn-* exceeded, a standby not streaming, replay paused, a failing archiver without --max-archive-failures, a slot about to lose WAL)."),
        (2, "CRITICAL: a limit --crit-* exceeded, fewer standbys than --min-standbys, a cut or stalled WAL stream on a standby, a slot that lost WAL, more archive failures than --max-archive-failures."),
        (3, "UNKNOWN: repl-lag cannot tell: bad arguments or connection string (monitoring plugins answer UNKNOWN here, not 2), a server that cannot be reached or refuses the queries, or a role that cannot see the replication columns (grant pg_monitor). With one server that cannot be reached, stdout is empty and stderr has one line."),
    ],
    documents: &[],
    json_output: "With one server (one -d, or none: PG* variables), the document is that server's report:
{\"tool\", \"version\", \"server\", \"status\", \"problems\": [{\"severity\", \"message\"}], \"server_version\", \"checked_at\", \"user\", \"can_read_all_stats\", \"role\", ...}.
With several -d it is {\"tool\", \"version\", \"status\", \"problems\", \"reports\": [report, ...]}: \"status\" is the worst of the reports (OK < WARNING < UNKNOWN < CRITICAL), \"problems\" all their problems prefixed with the server, and a server that cannot be reached is a report with status UNKNOWN and no \"role\".
\"server\" is the connection as host=... port=... user=... dbname=... (never a password). Status is OK, WARNING, CRITICAL or UNKNOWN.
A primary (\"role\": \"primary\") adds \"server_lsn\" (pg_current_wal_lsn), \"standbys_streaming\", \"standbys\": [{\"application_name\", \"client_addr\", \"state\", \"sync_state\", \"sent_lag_bytes\", \"write_lag_bytes\", \"flush_lag_bytes\", \"replay_lag_bytes\", \"write_lag_seconds\", \"flush_lag_seconds\", \"replay_lag_seconds\", \"slot\", \"kind\" (physical, logical, backup, unknown), \"pid\", \"user\", \"sent_lsn\", \"write_lsn\", \"flush_lsn\", \"replay_lsn\", \"feedback_age_seconds\", \"visible\", \"note\"}], \"slots\": [{\"slot_name\", \"active\", \"retained_bytes\", \"slot_type\", \"database\", \"temporary\", \"restart_lsn\", \"confirmed_flush_lsn\", \"consumer_lag_bytes\", \"wal_status\", \"safe_wal_size\", \"conflicting\", \"inactive_since\", \"invalidation_reason\"}] and \"archiver\": {\"last_archived_wal\", \"last_archived_time\", \"failed_count\", \"last_failed_wal\", \"last_failed_time\", \"failing\", \"failures_since_last_success\", \"archived_count\", \"stats_reset\", \"pending_segments\", \"archive_mode\"}.
A standby (\"role\": \"standby\") adds \"receive_lsn\", \"replay_lsn\", \"replay_lag_bytes\" (received, not replayed), \"last_replay_time\", \"replay_delay_seconds\", \"caught_up\", \"last_replay_age_seconds\", \"replay_paused\", \"pause_state\", \"min_apply_delay_seconds\", \"streaming_configured\", \"wal_receiver_timeout_seconds\", \"wal_receiver\": {\"status\", \"pid\", \"sender_host\", \"sender_port\", \"slot_name\", \"flushed_lsn\", \"written_lsn\", \"received_tli\", \"latest_end_lsn\", \"last_msg_send_time\", \"last_msg_receipt_time\", \"last_msg_receipt_age_seconds\", \"latest_end_time\", \"visible\", \"note\"} (null when no receiver runs), and \"standbys\" and \"slots\" as on a primary (cascading).
Byte figures are exact integers computed from the LSNs; a column the role cannot see is null (with a \"note\"), never 0. Columns a server version lacks are null.
With --format prometheus the output is the text exposition format instead: pgdr_repl_up, pgdr_repl_status (the exit code), pgdr_repl_standby_lag_bytes{stage=sent|write|flush|replay}, pgdr_repl_standby_lag_seconds{stage=write|flush|replay}, pgdr_repl_slot_retained_bytes, pgdr_repl_archiver_failed_total, pgdr_repl_replay_lag_bytes, pgdr_repl_replay_delay_seconds, pgdr_repl_wal_receiver_last_message_age_seconds and more, labelled by server (host:port), standby (application_name, client_addr, slot, kind) and slot (slot_name, slot_type); figures that are not visible are left out, never written as 0. HELP and TYPE lines come before each family.",
    examples: &[
        (
            "Page when the only standby is gone or more than 1 GB behind:",
            "repl-lag -d 'host=primary user=monitor' --crit-bytes 1GB --min-standbys 1 || page-oncall",
        ),
        (
            "Check a primary and its standby in one run; the worst status is the exit code:",
            "repl-lag -d 'host=primary user=monitor' -d 'host=standby user=monitor' --warn-seconds 30s --crit-seconds 5m",
        ),
        (
            "Fail when the archiver has failed at all since it last succeeded:",
            "repl-lag -d 'host=primary user=monitor' --max-archive-failures 0",
        ),
        (
            "Feed node_exporter's textfile collector from cron:",
            "repl-lag -d 'host=primary user=monitor' --format prometheus > /var/lib/node_exporter/repl.prom.$$ ; mv /var/lib/node_exporter/repl.prom.$$ /var/lib/node_exporter/repl.prom",
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
pg_basebackup and pg_rewind WAL senders and logical consumers are not counted as standbys.",
    )],
};

/// `main()` of repl-lag. Bad arguments exit 3 (UNKNOWN), as monitoring plugins do: a typo in
/// a check must not page as CRITICAL (2).
pub fn main() -> std::process::ExitCode {
    // Bad arguments are UNKNOWN (3): a monitoring plugin's 2 would page as CRITICAL.
    pgdr_core::runner::main_with_usage_code::<Args>(TOOL, run, UNKNOWN)
}
