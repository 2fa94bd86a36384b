//! The monitoring-plugin output Nagios, Icinga and their kin read (the Monitoring Plugins
//! Development Guidelines, "Plugin Output"), as check_postgres prints it: one line
//! `STATUS - summary | perfdata`, and the exit code 0/1/2/3. Pure.
//!
//! Perfdata items are `label=value[UOM];warn;crit;min;max`, separated by spaces: byte figures
//! in `B`, durations in `s`, counts without a unit, the archiver's failure counter in `c`.
//! Labels keep to `[A-Za-z0-9_.:/@-]` so that they need no quotes (several parsers, pynag's
//! among them, mishandle quoted labels). The thresholds given on the command line are the
//! warn and crit fields; a figure the role cannot see is left out, never written as 0.

use crate::check::Checked;
use crate::report::{human_bytes, SenderKind, ServerReport, Slot, Status, WalSender};
use crate::verdict::Thresholds;

/// The plugin line of every checked server.
pub fn render(checked: &[Checked], th: &Thresholds) -> String {
    let status = checked
        .iter()
        .fold(Status::Ok, |acc, c| acc.worst(c.report.status()));
    let several = checked.len() > 1;
    let mut summary = Vec::new();
    let mut perf = Perf::default();
    for c in checked {
        let prefix = if several {
            format!("{}:", label(&c.instance))
        } else {
            String::new()
        };
        let said = summarize(&c.report);
        summary.push((
            c.report.status().rank(),
            if several {
                format!("{}: {said}", c.instance)
            } else {
                said
            },
        ));
        perf.prefix = prefix;
        perf.server(&c.report, th);
    }
    // Worst first across the servers too (stable: -d order among equals); the perfdata
    // keeps -d order.
    summary.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
    let summary: Vec<String> = summary.into_iter().map(|(_, s)| s).collect();
    line(status, &summary.join("; "), &perf.items)
}

/// The line of a check that could not run at all (bad thresholds, a bad -d).
pub fn unknown(why: &str) -> String {
    line(Status::Unknown, why, &[])
}

fn line(status: Status, summary: &str, perf: &[String]) -> String {
    // "|" starts the perfdata and a newline the long output: neither may be in the summary.
    let summary: String = summary
        .chars()
        .map(|c| match c {
            '|' => '/',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    if perf.is_empty() {
        format!("{} - {summary}\n", status.as_str())
    } else {
        format!("{} - {summary} | {}\n", status.as_str(), perf.join(" "))
    }
}

/// What one server's part of the summary says: its problems, worst first, or what is fine.
fn summarize(r: &ServerReport) -> String {
    let mut problems: Vec<_> = r.problems().iter().collect();
    if !problems.is_empty() {
        problems.sort_by_key(|p| std::cmp::Reverse(p.severity.rank()));
        return problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
    }
    match r {
        ServerReport::Primary(p) => {
            let mut s = format!(
                "primary, {} standby(s) streaming",
                p.standbys_streaming.unwrap_or(0)
            );
            if let Some(b) = p
                .standbys
                .iter()
                .filter(|w| w.kind == SenderKind::Physical)
                .filter_map(|w| w.replay_lag_bytes)
                .max()
            {
                s.push_str(&format!(", largest replay lag {}", human_bytes(b)));
            }
            s
        }
        ServerReport::Standby(s) => format!(
            "standby, replay lag {}, replay delay {} s",
            s.replay_lag_bytes.map_or("unknown".into(), human_bytes),
            s.replay_delay_seconds.map_or("unknown".into(), number)
        ),
        ServerReport::Unreachable(_) => "not read".into(),
    }
}

/// A number as perfdata writes it: integers bare, fractions to the microsecond.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A label part from a name the server gave (application_name, slot name, socket path).
fn label(s: &str) -> String {
    let l: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.:/@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if l.is_empty() {
        "_".into()
    } else {
        l
    }
}

#[derive(Default)]
struct Perf {
    /// The server's label prefix (several -d), empty for one.
    prefix: String,
    items: Vec<String>,
}

impl Perf {
    fn item(&mut self, name: &str, value: String, uom: &str, warn: String, crit: String) {
        self.items.push(format!(
            "{}{name}={value}{uom};{warn};{crit};0",
            self.prefix
        ));
    }
    fn bytes(&mut self, name: &str, v: Option<u64>, th: Option<&Thresholds>) {
        if let Some(v) = v {
            let limit = |l: Option<u64>| l.map_or(String::new(), |l| l.to_string());
            let (w, c) = th.map_or((None, None), |t| (t.warn_bytes, t.crit_bytes));
            self.item(name, v.to_string(), "B", limit(w), limit(c));
        }
    }
    fn seconds(&mut self, name: &str, v: Option<f64>, th: Option<&Thresholds>) {
        if let Some(v) = v {
            let limit = |l: Option<f64>| l.map_or(String::new(), number);
            let (w, c) = th.map_or((None, None), |t| (t.warn_seconds, t.crit_seconds));
            self.item(name, number(v), "s", limit(w), limit(c));
        }
    }

    fn server(&mut self, r: &ServerReport, th: &Thresholds) {
        match r {
            ServerReport::Unreachable(_) => {}
            ServerReport::Primary(p) => {
                if let Some(n) = p.standbys_streaming {
                    // "N:" is the plugin range "alert below N".
                    let crit = th.min_standbys.map_or(String::new(), |m| format!("{m}:"));
                    self.item("standbys_streaming", n.to_string(), "", String::new(), crit);
                }
                self.senders(&p.standbys, th);
                self.slots(&p.slots, th);
                let a = &p.archiver;
                if let Some(n) = a.failed_count {
                    self.item(
                        "archive_failed",
                        n.to_string(),
                        "c",
                        String::new(),
                        String::new(),
                    );
                }
                if let Some(n) = a.failures_since_last_success {
                    let crit = th
                        .max_archive_failures
                        .map_or(String::new(), |m| m.to_string());
                    self.item(
                        "archive_failures_since_success",
                        n.to_string(),
                        "",
                        String::new(),
                        crit,
                    );
                }
                if let Some(n) = a.pending_segments {
                    self.item(
                        "archive_pending",
                        n.to_string(),
                        "",
                        String::new(),
                        String::new(),
                    );
                }
            }
            ServerReport::Standby(s) => {
                self.bytes("replay_lag", s.replay_lag_bytes, Some(th));
                self.seconds("replay_delay", s.replay_delay_seconds, Some(th));
                if let Some(age) = s
                    .wal_receiver
                    .as_ref()
                    .and_then(|w| w.last_msg_receipt_age_seconds)
                {
                    let crit = s.wal_receiver_timeout_seconds.map_or(String::new(), number);
                    self.item(
                        "receiver_last_message_age",
                        number(age),
                        "s",
                        String::new(),
                        crit,
                    );
                }
                self.senders(&s.standbys, th);
                self.slots(&s.slots, th);
            }
        }
    }

    /// Bytes and seconds per standby; what a pg_receivewal has not written or flushed.
    fn senders(&mut self, list: &[WalSender], th: &Thresholds) {
        let name_of = |w: &WalSender| label(w.application_name.as_deref().unwrap_or("?"));
        for w in list {
            let mut name = name_of(w);
            // Standbys share a name easily (the default is "walreceiver").
            if list.iter().filter(|o| name_of(o) == name).count() > 1 {
                let at = w
                    .client_addr
                    .clone()
                    .or(w.pid.map(|p| p.to_string()))
                    .unwrap_or_default();
                name = format!("{name}@{}", label(&at));
            }
            match w.kind {
                SenderKind::Physical => {
                    let p = format!("standby_{name}");
                    self.bytes(&format!("{p}_replay_lag"), w.replay_lag_bytes, Some(th));
                    self.seconds(&format!("{p}_time_lag"), w.max_lag_seconds(), Some(th));
                }
                SenderKind::Receivewal => {
                    let p = format!("receivewal_{name}");
                    self.bytes(&format!("{p}_write_lag"), w.write_lag_bytes, None);
                    self.bytes(&format!("{p}_flush_lag"), w.flush_lag_bytes, None);
                }
                SenderKind::Logical | SenderKind::Backup | SenderKind::Unknown => {}
            }
        }
    }

    /// WAL retained per slot (the byte limits apply to all but temporary slots).
    fn slots(&mut self, list: &[Slot], th: &Thresholds) {
        for s in list {
            let limits = (s.temporary != Some(true)).then_some(th);
            self.bytes(
                &format!("slot_{}_retained", label(&s.slot_name)),
                s.retained_bytes,
                limits,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_labels() {
        assert_eq!(number(61.0), "61");
        assert_eq!(number(0.0015), "0.0015");
        assert_eq!(number(0.1234567), "0.123457");
        assert_eq!(label("my standby|1='x'"), "my_standby_1__x_");
        assert_eq!(label(""), "_");
    }

    #[test]
    fn one_line_and_no_pipe_in_the_summary() {
        assert_eq!(
            line(Status::Critical, "a|b\nc", &["x=1B;;;0".into()]),
            "CRITICAL - a/b c | x=1B;;;0\n"
        );
        assert_eq!(unknown("cannot connect"), "UNKNOWN - cannot connect\n");
    }
}
