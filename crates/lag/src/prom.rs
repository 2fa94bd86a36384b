//! The Prometheus text exposition format (version 0.0.4), for node_exporter's textfile
//! collector. Units are in the metric names; a figure the role cannot see is left out,
//! never written as 0.

use crate::check::Checked;
use crate::report::{ServerReport, Slot, WalSender};
use std::collections::BTreeMap;

type Labels = Vec<(&'static str, String)>;

struct Family {
    help: &'static str,
    kind: &'static str,
    samples: Vec<(Labels, String)>,
}

/// Families in the order they were first declared, samples grouped under them (the format
/// requires every sample of a family to follow its HELP and TYPE lines).
#[derive(Default)]
struct Exposition {
    order: Vec<&'static str>,
    families: BTreeMap<&'static str, Family>,
}

impl Exposition {
    fn add(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: Labels,
        value: impl ToString,
    ) {
        let f = self.families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            samples: Vec::new(),
        });
        if f.samples.is_empty() && !self.order.contains(&name) {
            self.order.push(name);
        }
        f.samples.push((labels, value.to_string()));
    }
    fn gauge(&mut self, name: &'static str, help: &'static str, labels: Labels, v: impl ToString) {
        self.add(name, "gauge", help, labels, v);
    }
    fn opt<T: ToString>(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        v: Option<T>,
    ) {
        if let Some(v) = v {
            // Cumulative counts are counters by the naming convention.
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            self.add(name, kind, help, labels, v);
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let f = &self.families[name];
            out.push_str(&format!("# HELP {name} {}\n", escape_help(f.help)));
            out.push_str(&format!("# TYPE {name} {}\n", f.kind));
            for (labels, value) in &f.samples {
                out.push_str(name);
                if !labels.is_empty() {
                    let l: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                        .collect();
                    out.push_str(&format!("{{{}}}", l.join(",")));
                }
                out.push(' ');
                out.push_str(value);
                out.push('\n');
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn flag(b: bool) -> u8 {
    u8::from(b)
}

/// Unix seconds, with the microseconds PostgreSQL keeps.
fn epoch(t: &chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

fn sender_metrics(e: &mut Exposition, server: &str, list: &[WalSender]) {
    for s in list {
        let labels = || -> Labels {
            vec![
                ("server", server.to_string()),
                (
                    "application_name",
                    s.application_name.clone().unwrap_or_default(),
                ),
                ("client_addr", s.client_addr.clone().unwrap_or_default()),
                ("slot", s.slot.clone().unwrap_or_default()),
                ("kind", format!("{:?}", s.kind).to_lowercase()),
            ]
        };
        let with_stage = |stage: &str| {
            let mut l = labels();
            l.push(("stage", stage.to_string()));
            l
        };
        if s.visible {
            e.gauge(
                "pgdr_repl_standby_streaming",
                "Whether the WAL sender is in state streaming (1) or not (0).",
                labels(),
                flag(s.state.as_deref() == Some("streaming")),
            );
        }
        for (stage, v) in [
            ("sent", s.sent_lag_bytes),
            ("write", s.write_lag_bytes),
            ("flush", s.flush_lag_bytes),
            ("replay", s.replay_lag_bytes),
        ] {
            e.opt(
                "pgdr_repl_standby_lag_bytes",
                "WAL bytes between the server's current position and the standby's sent/write/flush/replay position.",
                with_stage(stage),
                v,
            );
        }
        for (stage, v) in [
            ("write", s.write_lag_seconds),
            ("flush", s.flush_lag_seconds),
            ("replay", s.replay_lag_seconds),
        ] {
            e.opt(
                "pgdr_repl_standby_lag_seconds",
                "Time recent WAL took to be written/flushed/replayed by the standby (absent when idle and caught up).",
                with_stage(stage),
                v,
            );
        }
        e.opt(
            "pgdr_repl_standby_feedback_age_seconds",
            "Seconds since the standby's last reply (PostgreSQL 12+).",
            labels(),
            s.feedback_age_seconds,
        );
    }
}

fn slot_metrics(e: &mut Exposition, server: &str, list: &[Slot]) {
    for s in list {
        let labels = || -> Labels {
            vec![
                ("server", server.to_string()),
                ("slot_name", s.slot_name.clone()),
                ("slot_type", s.slot_type.clone().unwrap_or_default()),
            ]
        };
        e.opt(
            "pgdr_repl_slot_active",
            "Whether a consumer is connected to the replication slot.",
            labels(),
            s.active.map(flag),
        );
        e.opt(
            "pgdr_repl_slot_retained_bytes",
            "WAL bytes kept from removal by the replication slot (current position minus restart_lsn).",
            labels(),
            s.retained_bytes,
        );
        e.opt(
            "pgdr_repl_slot_safe_wal_size_bytes",
            "WAL bytes that can still be written before the slot is in danger of losing WAL (PostgreSQL 13+).",
            labels(),
            s.safe_wal_size,
        );
        if let Some(st) = &s.wal_status {
            let mut l = labels();
            l.push(("wal_status", st.clone()));
            e.gauge(
                "pgdr_repl_slot_wal_status",
                "The slot's wal_status as a label, value 1 (PostgreSQL 13+).",
                l,
                1,
            );
        }
    }
}

/// The exposition of every report.
pub fn render(checked: &[Checked]) -> String {
    let mut e = Exposition::default();
    for c in checked {
        let server = c.instance.as_str();
        let r = &c.report;
        let sl = || -> Labels { vec![("server", server.to_string())] };
        e.gauge(
            "pgdr_repl_up",
            "Whether repl-lag could read the server (1) or not (0).",
            sl(),
            flag(!matches!(r, ServerReport::Unreachable(_))),
        );
        e.gauge(
            "pgdr_repl_status",
            "The verdict as a monitoring-plugin code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            sl(),
            r.status().exit_code(),
        );
        e.gauge(
            "pgdr_repl_problems",
            "Number of problems found.",
            sl(),
            r.problems().len(),
        );
        match r {
            ServerReport::Unreachable(_) => {}
            ServerReport::Primary(p) => {
                e.gauge(
                    "pgdr_repl_in_recovery",
                    "Whether the server is a standby (1) or a primary (0).",
                    sl(),
                    0,
                );
                e.gauge(
                    "pgdr_repl_wal_position_bytes",
                    "The server's current WAL position (pg_current_wal_lsn) in bytes.",
                    sl(),
                    p.server_lsn.0,
                );
                e.opt(
                    "pgdr_repl_standbys_streaming",
                    "Physical standbys in state streaming.",
                    sl(),
                    p.standbys_streaming,
                );
                sender_metrics(&mut e, server, &p.standbys);
                slot_metrics(&mut e, server, &p.slots);
                let a = &p.archiver;
                e.opt(
                    "pgdr_repl_archiver_archived_total",
                    "WAL files archived since the statistics reset.",
                    sl(),
                    a.archived_count,
                );
                e.opt(
                    "pgdr_repl_archiver_failed_total",
                    "Failed attempts to archive WAL files since the statistics reset.",
                    sl(),
                    a.failed_count,
                );
                e.gauge(
                    "pgdr_repl_archiver_failing",
                    "Whether the archiver's last attempt failed (1) or not (0).",
                    sl(),
                    flag(a.failing),
                );
                e.opt(
                    "pgdr_repl_archiver_last_archived_timestamp_seconds",
                    "Unix time of the last successful archiving.",
                    sl(),
                    a.last_archived_time.as_ref().map(epoch),
                );
                e.opt(
                    "pgdr_repl_archiver_last_failed_timestamp_seconds",
                    "Unix time of the last failed archiving attempt.",
                    sl(),
                    a.last_failed_time.as_ref().map(epoch),
                );
                e.opt(
                    "pgdr_repl_archiver_pending_segments",
                    "WAL segments waiting to be archived (.ready files; PostgreSQL 12+, pg_monitor).",
                    sl(),
                    a.pending_segments,
                );
            }
            ServerReport::Standby(s) => {
                e.gauge(
                    "pgdr_repl_in_recovery",
                    "Whether the server is a standby (1) or a primary (0).",
                    sl(),
                    1,
                );
                e.opt(
                    "pgdr_repl_receive_position_bytes",
                    "WAL position received and flushed by the standby, in bytes.",
                    sl(),
                    s.receive_lsn.map(|l| l.0),
                );
                e.opt(
                    "pgdr_repl_replay_position_bytes",
                    "WAL position replayed by the standby, in bytes.",
                    sl(),
                    s.replay_lsn.map(|l| l.0),
                );
                e.opt(
                    "pgdr_repl_replay_lag_bytes",
                    "WAL bytes received by the standby but not yet replayed.",
                    sl(),
                    s.replay_lag_bytes,
                );
                e.opt(
                    "pgdr_repl_replay_delay_seconds",
                    "How far behind the primary replay is (0 when everything received is replayed).",
                    sl(),
                    s.replay_delay_seconds,
                );
                e.opt(
                    "pgdr_repl_last_replay_timestamp_seconds",
                    "Unix time (primary's clock) of the last transaction replayed.",
                    sl(),
                    s.last_replay_time.as_ref().map(epoch),
                );
                e.gauge(
                    "pgdr_repl_replay_paused",
                    "Whether WAL replay is paused (1) or not (0).",
                    sl(),
                    flag(s.replay_paused),
                );
                let visible = s.wal_receiver.as_ref().is_none_or(|r| r.visible);
                if visible {
                    e.gauge(
                        "pgdr_repl_wal_receiver_streaming",
                        "Whether the WAL receiver is streaming from the primary (1) or not (0).",
                        sl(),
                        flag(
                            s.wal_receiver
                                .as_ref()
                                .is_some_and(|r| r.status.as_deref() == Some("streaming")),
                        ),
                    );
                }
                e.opt(
                    "pgdr_repl_wal_receiver_last_message_age_seconds",
                    "Seconds since the standby last received a message from the primary.",
                    sl(),
                    s.wal_receiver
                        .as_ref()
                        .and_then(|r| r.last_msg_receipt_age_seconds),
                );
                sender_metrics(&mut e, server, &s.standbys);
                slot_metrics(&mut e, server, &s.slots);
            }
        }
    }
    e.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_of_server_timestamps() {
        let at = |s: &str| crate::collect::server_time(s).ok().map(|t| epoch(&t));
        assert_eq!(at("1970-01-01T00:00:00.000000+00:00"), Some(0.0));
        assert_eq!(
            at("2026-03-21T09:28:37.500000+00:00"),
            Some(1_774_085_317.5)
        );
        assert_eq!(at("2000-02-29T00:00:00+00:00"), Some(951_782_400.0));
        assert_eq!(at("2026-03-21 09:28:37"), None);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut e = Exposition::default();
        e.gauge("x_bytes", "h", vec![("l", "q\"".into())], 1);
        e.gauge("y_seconds", "h", vec![], 2.5);
        e.gauge("x_bytes", "h", vec![("l", "z".into())], 3);
        assert_eq!(
            e.render(),
            "# HELP x_bytes h\n# TYPE x_bytes gauge\nx_bytes{l=\"q\\\"\"} 1\nx_bytes{l=\"z\"} 3\n\
             # HELP y_seconds h\n# TYPE y_seconds gauge\ny_seconds 2.5\n"
        );
    }
}
