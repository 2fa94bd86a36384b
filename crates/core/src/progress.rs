//! Progress of long work on stderr (SPEC "Operating it"): bytes or things done of a total,
//! the rate and the time left; for a recovery, the LSN replayed against the target. Shown
//! only when stderr is a terminal; under cron, in a pipe, in CI or under `archive_command`
//! nothing at all is written, and the calls cost a branch.
//!
//! ```no_run
//! # fn tree_size() -> Option<u64> { None }
//! # let files: Vec<(std::path::PathBuf, u64)> = Vec::new();
//! use pgdr_core::progress::Progress;
//! // `tree_size` runs only when the bar is shown (cron pays nothing for the total).
//! let p = Progress::bytes("copying /zpdata01/pg", tree_size);
//! for (file, len) in &files {
//!     // ... copy it ...
//!     p.add(*len);
//! }
//! // Dropping it (or `finish`) clears the line; the document follows on stdout.
//! ```
//!
//! A `Progress` is cheap to clone and can be shared by threads (each adds its part).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgdr_pgformat::Lsn;
use std::io::IsTerminal;
use std::sync::OnceLock;

/// A progress line on stderr, or nothing.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// For [`Progress::replay`]: the LSN the bar's position counts from.
    start: u64,
    target: Option<Lsn>,
}

/// Whether this process shows progress: stderr is a terminal and TERM is not "dumb".
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
    })
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the templates below are valid")
        .progress_chars("=> ")
}

impl Default for Progress {
    /// Nothing shown.
    fn default() -> Progress {
        Progress::hidden()
    }
}

impl Progress {
    /// Nothing shown (for callers that decide themselves, and for tests).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            start: 0,
            target: None,
        }
    }

    fn shown(what: &str, total: Option<u64>, with_total: &str, without: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
            .with_style(style(if total.is_some() { with_total } else { without }))
            .with_prefix(what.to_string());
        Progress {
            bar: Some(bar),
            start: 0,
            target: None,
        }
    }

    /// Bytes done of a total: "what [=====>   ] 1.2 GiB/3.4 GiB 410 MiB/s 5s left".
    /// `total` is called only when the line is shown; `None` shows bytes and rate alone.
    pub fn bytes(what: &str, total: impl FnOnce() -> Option<u64>) -> Progress {
        if !enabled() {
            return Progress::hidden();
        }
        Self::shown(
            what,
            total(),
            "{prefix} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta} left",
            "{prefix} {spinner} {binary_bytes} {binary_bytes_per_sec}",
        )
    }

    /// Things done of a total (`unit`: "files", "segments", "tables"): "what [===>  ] 120/400
    /// segments 35/s 8s left". `total` is called only when the line is shown.
    pub fn count(what: &str, unit: &str, total: impl FnOnce() -> Option<u64>) -> Progress {
        if !enabled() {
            return Progress::hidden();
        }
        let unit = unit.replace(['{', '}'], "");
        Self::shown(
            what,
            total(),
            &format!("{{prefix}} [{{wide_bar}}] {{human_pos}}/{{human_len}} {unit} {{per_sec}} {{eta}} left"),
            &format!("{{prefix}} {{spinner}} {{human_pos}} {unit} {{per_sec}}"),
        )
    }

    /// A recovery replaying WAL from `start` towards `target` ("what [===>  ] 0/3000028 of
    /// 0/5000000 3s left"); without a target (recovery to the end of the archive) the LSN
    /// replayed and the rate. Report each LSN seen with [`Progress::replayed`].
    pub fn replay(what: &str, start: Lsn, target: Option<Lsn>) -> Progress {
        if !enabled() {
            return Progress::hidden();
        }
        let mut p = Self::shown(
            what,
            target.map(|t| t.0.saturating_sub(start.0)),
            "{prefix} [{wide_bar}] {msg} {eta} left",
            "{prefix} {spinner} {msg} {binary_bytes_per_sec}",
        );
        p.start = start.0;
        p.target = target;
        p.replayed(start);
        p
    }

    /// The LSN recovery has replayed up to (see [`Progress::replay`]).
    pub fn replayed(&self, lsn: Lsn) {
        if let Some(b) = &self.bar {
            b.set_position(lsn.0.saturating_sub(self.start));
            b.set_message(match self.target {
                Some(t) => format!("{lsn} of {t}"),
                None => format!("replayed to {lsn}"),
            });
        }
    }

    /// `n` more done.
    pub fn add(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// `done` in all.
    pub fn set(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    /// The total, when it becomes known (or changes) after the start.
    pub fn set_total(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }

    /// Whether the line is shown (to skip work that only feeds it).
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Clears the line (dropping the last clone does too).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_takes_every_call() {
        let p = Progress::hidden();
        p.add(5);
        p.set(7);
        p.set_total(9);
        p.replayed(Lsn(1));
        assert!(!p.is_shown());
        p.finish();
    }

    #[test]
    fn templates_are_valid() {
        for t in [
            "{prefix} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta} left",
            "{prefix} [{wide_bar}] {human_pos}/{human_len} files {per_sec} {eta} left",
            "{prefix} {spinner} {msg} {binary_bytes_per_sec}",
        ] {
            let _ = style(t);
        }
    }
}
