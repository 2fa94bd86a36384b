//! Thresholds → problems → status. Pure. (Past 600 lines only with its tests, which check
//! every verdict without a server.)
//!
//! Byte and time thresholds are independent ("any", not check_postgres's implicit "all"):
//! a standby over either is reported. A figure that is null because the role cannot see it
//! makes the verdict UNKNOWN, never OK.

use crate::report::{
    human_bytes, PrimaryReport, Problem, SenderKind, ServerReport, Slot, StandbyReport, Status,
    WalSender, NOT_VISIBLE,
};

/// The limits given on the command line (None: not checked).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub warn_bytes: Option<u64>,
    pub crit_bytes: Option<u64>,
    pub warn_seconds: Option<f64>,
    pub crit_seconds: Option<f64>,
    pub min_standbys: Option<usize>,
    pub max_archive_failures: Option<i64>,
}

impl Thresholds {
    /// Refuses a warning limit above its critical one.
    pub fn validate(&self) -> Result<(), String> {
        if let (Some(w), Some(c)) = (self.warn_bytes, self.crit_bytes) {
            if w > c {
                return Err(format!("--warn-bytes ({w}) is above --crit-bytes ({c})"));
            }
        }
        if let (Some(w), Some(c)) = (self.warn_seconds, self.crit_seconds) {
            if w > c {
                return Err(format!(
                    "--warn-seconds ({w}) is above --crit-seconds ({c})"
                ));
            }
        }
        Ok(())
    }

    fn bytes(&self, what: &str, v: u64) -> Option<Problem> {
        let (severity, flag, limit) = exceeded(
            v,
            (self.crit_bytes, "--crit-bytes"),
            (self.warn_bytes, "--warn-bytes"),
        )?;
        Some(Problem {
            severity,
            message: format!(
                "{what} is {} ({v} bytes), over {flag} {} ({limit} bytes)",
                human_bytes(v),
                human_bytes(limit)
            ),
        })
    }

    fn seconds(&self, what: &str, v: f64) -> Option<Problem> {
        let (severity, flag, limit) = exceeded(
            v,
            (self.crit_seconds, "--crit-seconds"),
            (self.warn_seconds, "--warn-seconds"),
        )?;
        Some(Problem {
            severity,
            message: format!("{what} is {v:.3} s, over {flag} {limit} s"),
        })
    }
}

/// A time in a message: RFC 3339, UTC, whole seconds.
fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn problem(severity: Status, message: impl Into<String>) -> Problem {
    Problem {
        severity,
        message: message.into(),
    }
}

/// Fills `problems` and `status` of a report (an unreachable server's keeps its own).
pub fn evaluate(report: &mut ServerReport, th: &Thresholds) {
    let worst = |problems: &[Problem]| {
        problems
            .iter()
            .fold(Status::Ok, |acc, p| acc.worst(p.severity))
    };
    match report {
        ServerReport::Primary(p) => {
            let mut problems = Vec::new();
            primary(p, th, &mut problems);
            p.status = worst(&problems);
            p.problems = problems;
        }
        ServerReport::Standby(s) => {
            let mut problems = Vec::new();
            standby(s, th, &mut problems);
            s.status = worst(&problems);
            s.problems = problems;
        }
        ServerReport::Unreachable(_) => {}
    }
}

fn primary(p: &PrimaryReport, th: &Thresholds, out: &mut Vec<Problem>) {
    let user = p.user.as_str();
    senders(&p.standbys, th, user, out);
    if let Some(min) = th.min_standbys {
        let invisible = p.standbys.iter().any(|s| !s.visible);
        match p.standbys_streaming {
            Some(n) if n >= min => {}
            Some(n) if !invisible => out.push(problem(
                Status::Critical,
                format!(
                    "{n} standby(s) streaming, fewer than --min-standbys {min}{}",
                    not_standbys(&p.standbys)
                ),
            )),
            _ => out.push(problem(
                Status::Unknown,
                format!(
                    "cannot count streaming standbys for --min-standbys {min}: the state of {} WAL sender(s) is {NOT_VISIBLE}",
                    p.standbys.iter().filter(|s| !s.visible).count()
                ),
            )),
        }
    }
    slots(&p.slots, th, out);
    let a = &p.archiver;
    if a.archive_mode == "off" {
        if th.max_archive_failures.is_some() {
            out.push(problem(
                Status::Warning,
                "archive_mode is off: no WAL is archived (--max-archive-failures cannot be checked)",
            ));
        }
    } else if a.archive_configured == Some(false) {
        // PostgreSQL then archives nothing and keeps every segment: pg_wal only grows.
        let what = format!(
            "archive_mode is {} but archive_command is empty (and no archive_library is set): no WAL is archived and every segment stays in pg_wal{}",
            a.archive_mode,
            a.pending_segments
                .map_or(String::new(), |n| format!(" ({n} waiting, .ready)"))
        );
        match th.max_archive_failures {
            None => out.push(problem(Status::Warning, what)),
            Some(max) => out.push(problem(
                Status::Critical,
                format!("{what}; --max-archive-failures {max} cannot be met"),
            )),
        }
    } else if a.failing {
        let streak = a.streak_upper_bound();
        let what = format!(
            "WAL archiving is failing: {} failed at {}{} ({} failure(s) since the statistics reset)",
            a.last_failed_wal.as_deref().unwrap_or("?"),
            a.last_failed_time.as_ref().map_or("?".into(), time),
            match &a.last_archived_time {
                Some(t) => format!(", last success at {}", time(t)),
                None => ", no success since the statistics reset".into(),
            },
            a.failed_count.unwrap_or(0)
        );
        match th.max_archive_failures {
            None => out.push(problem(Status::Warning, what)),
            Some(max) if streak > max => out.push(problem(
                Status::Critical,
                format!("{what}, over --max-archive-failures {max}"),
            )),
            Some(_) => {}
        }
    }
}

/// " (not standbys: 1 receivewal, 2 backup)": the WAL senders `--min-standbys` did not count.
fn not_standbys(list: &[WalSender]) -> String {
    let counts: Vec<String> = [
        (
            SenderKind::Receivewal,
            "receivewal (pg_receivewal: never replays)",
        ),
        (SenderKind::Backup, "backup (pg_basebackup)"),
        (SenderKind::Logical, "logical"),
    ]
    .iter()
    .filter_map(|(kind, name)| {
        let n = list.iter().filter(|s| s.kind == *kind).count();
        (n > 0).then(|| format!("{n} {name}"))
    })
    .collect();
    if counts.is_empty() {
        String::new()
    } else {
        format!(
            " (WAL senders that are not standbys: {})",
            counts.join(", ")
        )
    }
}

/// Lags of physical standbys (on a primary, or cascaded from a standby).
fn senders(list: &[WalSender], th: &Thresholds, user: &str, out: &mut Vec<Problem>) {
    let invisible = list.iter().filter(|s| !s.visible).count();
    if invisible > 0 {
        out.push(problem(
            Status::Unknown,
            format!(
                "replication details of {invisible} WAL sender(s) are {NOT_VISIBLE}; role '{user}' cannot judge their lag"
            ),
        ));
    }
    for s in list.iter().filter(|s| s.kind == SenderKind::Physical) {
        let label = s.label();
        match s.state.as_deref() {
            Some("streaming") => {}
            Some(state) => out.push(problem(
                Status::Warning,
                format!("{label} is in state '{state}', not streaming"),
            )),
            None => {}
        }
        if let Some(b) = s.replay_lag_bytes {
            out.extend(th.bytes(&format!("{label} replay lag"), b));
        }
        if let Some(t) = s.max_lag_seconds() {
            out.extend(th.seconds(&format!("{label} replay lag"), t));
        }
    }
}

fn slots(list: &[Slot], th: &Thresholds, out: &mut Vec<Problem>) {
    for s in list {
        let name = &s.slot_name;
        match s.wal_status.as_deref() {
            Some("lost") => out.push(problem(
                Status::Critical,
                format!("slot '{name}' has lost WAL it needed (wal_status lost): its consumer cannot catch up"),
            )),
            Some("unreserved") => out.push(problem(
                Status::Warning,
                format!("slot '{name}' retains more than max_wal_size and max_slot_wal_keep_size allow (wal_status unreserved): WAL will be removed at the next checkpoint"),
            )),
            _ => {}
        }
        if s.wal_status.as_deref() != Some("lost") {
            if let Some(r) = &s.invalidation_reason {
                out.push(problem(
                    Status::Critical,
                    format!("slot '{name}' is invalidated ({r})"),
                ));
            } else if s.conflicting == Some(true) {
                out.push(problem(
                    Status::Critical,
                    format!("slot '{name}' is invalidated (conflicting with recovery)"),
                ));
            }
        }
        // A temporary slot (pg_basebackup's) lives only as long as its session.
        if s.temporary != Some(true) {
            if let Some(b) = s.retained_bytes {
                out.extend(th.bytes(&format!("WAL retained by slot '{name}'"), b));
            }
        }
    }
}

fn standby(s: &StandbyReport, th: &Thresholds, out: &mut Vec<Problem>) {
    let user = s.user.as_str();
    match &s.wal_receiver {
        None => match s.streaming_configured {
            Some(false) => out.push(problem(
                Status::Warning,
                "no WAL receiver and primary_conninfo is empty: this standby replays only from the archive, so a cut feed cannot be seen",
            )),
            _ => out.push(problem(
                Status::Critical,
                "no WAL receiver is running: the stream from the primary is cut",
            )),
        },
        Some(r) if !r.visible => out.push(problem(
            Status::Unknown,
            format!("WAL receiver status is {NOT_VISIBLE}; role '{user}' cannot tell a cut stream"),
        )),
        Some(r) => {
            let status = r.status.as_deref().unwrap_or("?");
            if status != "streaming" {
                out.push(problem(
                    Status::Critical,
                    format!("WAL receiver is '{status}', not streaming: the stream from the primary is cut"),
                ));
            }
            let timeout = s.wal_receiver_timeout_seconds.filter(|&t| t > 0.0);
            match (r.last_msg_receipt_age_seconds, timeout) {
                (Some(age), Some(t)) if age > t => out.push(problem(
                    Status::Critical,
                    format!("no message from the primary for {age:.1} s, over wal_receiver_timeout ({t} s): the stream is stalled"),
                )),
                _ => {}
            }
        }
    }
    if let Some(b) = s.replay_lag_bytes {
        out.extend(th.bytes("replay lag (received, not yet replayed)", b));
    }
    if let Some(d) = s.replay_delay_seconds {
        let delay = s.min_apply_delay_seconds.unwrap_or(0.0);
        let beyond = (d - delay).max(0.0);
        let what = if delay > 0.0 {
            format!("replay delay beyond recovery_min_apply_delay ({delay} s)")
        } else {
            "replay delay".to_string()
        };
        out.extend(th.seconds(&what, beyond));
    }
    if s.replay_paused {
        out.push(problem(
            Status::Warning,
            format!(
                "WAL replay is {} (SELECT pg_wal_replay_resume() resumes it)",
                s.pause_state.as_deref().unwrap_or("paused")
            ),
        ));
    }
    senders(&s.standbys, th, user, out);
    slots(&s.slots, th, out);
}

/// The first threshold (critical, then warning) that `v` is over, with its flag.
fn exceeded<T: PartialOrd + Copy>(
    v: T,
    crit: (Option<T>, &'static str),
    warn: (Option<T>, &'static str),
) -> Option<(Status, &'static str, T)> {
    let over =
        |(limit, flag): (Option<T>, &'static str)| limit.filter(|&l| v > l).map(|l| (flag, l));
    if let Some((flag, l)) = over(crit) {
        Some((Status::Critical, flag, l))
    } else {
        over(warn).map(|(flag, l)| (Status::Warning, flag, l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Archiver, PrimaryRole, SenderContext, StandbyRole, WalReceiver};
    use pgdr_pgformat::Lsn;

    fn sender(state: Option<&str>, replay_lag: Option<u64>, secs: Option<f64>) -> WalSender {
        let mut s = WalSender {
            application_name: Some("s1".into()),
            client_addr: Some("10.0.0.5".into()),
            state: state.map(str::to_string),
            sync_state: Some("async".into()),
            sent_lag_bytes: None,
            write_lag_bytes: None,
            flush_lag_bytes: None,
            replay_lag_bytes: None,
            write_lag_seconds: None,
            flush_lag_seconds: None,
            replay_lag_seconds: secs,
            slot: None,
            kind: SenderKind::Unknown,
            pid: Some(42),
            user: None,
            sent_lsn: None,
            write_lsn: None,
            flush_lsn: None,
            replay_lsn: replay_lag.map(|b| Lsn(0x1000_0000 - b)),
            feedback_age_seconds: None,
            visible: false,
            note: None,
        };
        s.compute(Lsn(0x1000_0000), SenderContext::default());
        s
    }

    fn archiver(mode: &str, failing: bool, failed: i64, archived_time: Option<&str>) -> Archiver {
        let mut a = Archiver {
            last_archived_wal: None,
            last_archived_time: archived_time.map(|t| t.parse().unwrap()),
            failed_count: Some(failed),
            last_failed_wal: failing.then(|| "000000010000000000000003".to_string()),
            last_failed_time: failing.then(|| "2026-01-01T00:00:00Z".parse().unwrap()),
            failing,
            failures_since_last_success: None,
            archived_count: Some(0),
            stats_reset: None,
            pending_segments: None,
            archive_mode: mode.into(),
            archive_configured: Some(true),
        };
        a.compute();
        a
    }

    fn primary_report(standbys: Vec<WalSender>, archiver: Archiver) -> ServerReport {
        let streaming = if standbys.iter().any(|s| !s.visible) {
            None
        } else {
            Some(standbys.iter().filter(|s| s.is_streaming_standby()).count())
        };
        ServerReport::Primary(Box::new(PrimaryReport {
            server: "host=x".into(),
            status: Status::Ok,
            problems: vec![],
            server_version: "15.0".into(),
            checked_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            user: "mon".into(),
            can_read_all_stats: true,
            role: PrimaryRole::Primary,
            server_lsn: Lsn(0x1000_0000),
            standbys_streaming: streaming,
            standbys,
            slots: vec![],
            archiver,
        }))
    }

    fn th() -> Thresholds {
        Thresholds {
            warn_bytes: Some(1 << 20),
            crit_bytes: Some(16 << 20),
            warn_seconds: Some(10.0),
            crit_seconds: Some(60.0),
            min_standbys: Some(1),
            max_archive_failures: None,
        }
    }

    #[test]
    fn healthy_primary_is_ok() {
        let mut r = primary_report(
            vec![sender(Some("streaming"), Some(100), Some(0.002))],
            archiver("on", false, 3, Some("2026-01-01T00:00:00Z")),
        );
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Ok, "{:?}", r.problems());
    }

    #[test]
    fn byte_and_time_limits() {
        let mut r = primary_report(
            vec![sender(Some("streaming"), Some(2 << 20), None)],
            archiver("off", false, 0, None),
        );
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Warning);
        assert!(r.problems()[0].message.contains("--warn-bytes"));
        let mut r = primary_report(
            vec![sender(Some("streaming"), Some(0), Some(61.0))],
            archiver("off", false, 0, None),
        );
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Critical);
        assert!(r.problems()[0].message.contains("--crit-seconds"));
    }

    #[test]
    fn too_few_standbys_is_critical_and_blindness_unknown() {
        let mut r = primary_report(vec![], archiver("off", false, 0, None));
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Critical);
        let mut r = primary_report(
            vec![sender(None, None, None)],
            archiver("off", false, 0, None),
        );
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Unknown, "{:?}", r.problems());
        let v = serde_json::to_value(&r).unwrap();
        assert!(v["standbys"][0]["replay_lag_bytes"].is_null());
        assert_eq!(v["standbys"][0]["note"], NOT_VISIBLE);
    }

    #[test]
    fn archiver_failures() {
        // An old failure followed by successes is no alarm.
        let mut r = primary_report(
            vec![sender(Some("streaming"), Some(0), None)],
            archiver("on", false, 5, Some("2026-01-01T00:00:00Z")),
        );
        let strict = Thresholds {
            max_archive_failures: Some(0),
            ..th()
        };
        evaluate(&mut r, &strict);
        assert_eq!(r.status(), Status::Ok);
        // Failing now.
        let mut r = primary_report(
            vec![sender(Some("streaming"), Some(0), None)],
            archiver("on", true, 4, None),
        );
        evaluate(&mut r, &strict);
        assert_eq!(r.status(), Status::Critical);
        let lenient = Thresholds {
            max_archive_failures: Some(10),
            ..th()
        };
        evaluate(&mut r, &lenient);
        assert_eq!(r.status(), Status::Ok, "{:?}", r.problems());
        evaluate(&mut r, &Thresholds::default());
        assert_eq!(r.status(), Status::Warning);
    }

    #[test]
    fn archiving_nothing_is_a_problem() {
        let mut a = archiver("on", false, 0, None);
        a.archive_configured = Some(false);
        a.pending_segments = Some(3);
        let mut r = primary_report(vec![sender(Some("streaming"), Some(0), None)], a.clone());
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Warning, "{:?}", r.problems());
        assert!(r.problems()[0].message.contains("3 waiting"));
        let strict = Thresholds {
            max_archive_failures: Some(0),
            ..th()
        };
        evaluate(&mut r, &strict);
        assert_eq!(r.status(), Status::Critical);
        // Unknown to this role: no verdict either way.
        a.archive_configured = None;
        let mut r = primary_report(vec![sender(Some("streaming"), Some(0), None)], a);
        evaluate(&mut r, &strict);
        assert_eq!(r.status(), Status::Ok, "{:?}", r.problems());
    }

    fn standby_view(receiver: Option<WalReceiver>) -> StandbyReport {
        StandbyReport {
            server: "s".into(),
            status: Status::Ok,
            problems: vec![],
            server_version: "15.0".into(),
            checked_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            user: "mon".into(),
            can_read_all_stats: true,
            role: StandbyRole::Standby,
            receive_lsn: Some(Lsn(100)),
            replay_lsn: Some(Lsn(100)),
            replay_lag_bytes: Some(0),
            last_replay_time: None,
            replay_delay_seconds: Some(0.0),
            caught_up: true,
            last_replay_age_seconds: Some(7200.0),
            replay_paused: false,
            pause_state: Some("not paused".into()),
            min_apply_delay_seconds: Some(0.0),
            streaming_configured: Some(true),
            wal_receiver_timeout_seconds: Some(60.0),
            wal_receiver: receiver,
            standbys: vec![],
            slots: vec![],
        }
    }

    fn receiver(status: &str, age: f64) -> WalReceiver {
        WalReceiver {
            status: Some(status.into()),
            pid: Some(1),
            sender_host: None,
            sender_port: None,
            slot_name: None,
            flushed_lsn: None,
            written_lsn: None,
            received_tli: None,
            latest_end_lsn: None,
            last_msg_send_time: None,
            last_msg_receipt_time: None,
            last_msg_receipt_age_seconds: Some(age),
            latest_end_time: None,
            visible: true,
            note: None,
        }
    }

    fn standby_report(v: StandbyReport) -> ServerReport {
        ServerReport::Standby(Box::new(v))
    }

    #[test]
    fn idle_standby_is_ok_and_a_cut_stream_is_critical() {
        let mut r = standby_report(standby_view(Some(receiver("streaming", 12.0))));
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Ok, "{:?}", r.problems());
        for v in [
            standby_view(None),
            standby_view(Some(receiver("waiting", 1.0))),
            standby_view(Some(receiver("streaming", 75.0))),
        ] {
            let mut r = standby_report(v);
            evaluate(&mut r, &th());
            assert_eq!(r.status(), Status::Critical, "{:?}", r.problems());
        }
    }

    #[test]
    fn delayed_standby_does_not_page() {
        let mut v = standby_view(Some(receiver("streaming", 1.0)));
        v.min_apply_delay_seconds = Some(3600.0);
        v.replay_delay_seconds = Some(3605.0);
        v.caught_up = false;
        let mut r = standby_report(v);
        evaluate(&mut r, &th());
        assert_eq!(r.status(), Status::Ok, "{:?}", r.problems());
    }

    #[test]
    fn warn_above_crit_is_refused() {
        let t = Thresholds {
            warn_bytes: Some(2),
            crit_bytes: Some(1),
            ..Default::default()
        };
        assert!(t.validate().is_err());
        assert!(th().validate().is_ok());
    }
}
