//! The check itself, callable without clap: read each server, judge it against the
//! thresholds.

use crate::collect::{instance, read_server};
use crate::report::{ServerReport, UnreachableReport};
use crate::verdict::{evaluate, Thresholds};
use pgdr_core::conn::ConnParams;

/// One server, checked.
#[derive(Debug)]
pub struct Checked {
    /// `host:port` of its first host: the `server` label of the metrics.
    pub instance: String,
    /// Its report with the verdict; an unreachable server's says why.
    pub report: ServerReport,
}

/// Reads and judges one server. A server that cannot be read (no connection, a query
/// refused) is an UNKNOWN report, never an error: the others are still checked.
pub fn check_one(target: &ConnParams, th: &Thresholds) -> Checked {
    let instance = instance(target);
    match read_server(target) {
        Ok(mut report) => {
            evaluate(&mut report, th);
            Checked { instance, report }
        }
        Err(e) => Checked {
            instance,
            report: ServerReport::Unreachable(UnreachableReport::new(
                target.describe(),
                e.to_string(),
            )),
        },
    }
}

/// [`check_one`] for every target, at the same time (a check of a primary and its standby
/// waits for the slower, not for both), reported in the order given.
pub fn check(targets: &[ConnParams], th: &Thresholds) -> Vec<Checked> {
    match targets {
        [one] => vec![check_one(one, th)],
        _ => std::thread::scope(|s| {
            let running: Vec<_> = targets
                .iter()
                .map(|t| s.spawn(move || check_one(t, th)))
                .collect();
            running
                .into_iter()
                .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        }),
    }
}
