//! Who holds a lock, and whether that run is provably gone: the one line a holder writes into
//! its lock (a local lock file, crate::lock; an S3 repository's lock object).
//!
//! A run killed by SIGKILL leaves what it wrote. The line names its holder: the host, the
//! boot (/proc/sys/kernel/random/boot_id), the PID namespace and the process with its start
//! time (field 22 of /proc/PID/stat). A run on the same host, boot and namespace that finds no
//! process of that PID started at that time knows the holder is gone; a reused PID is not
//! taken for the holder.

use serde::{Deserialize, Serialize};

/// A lock's holder (one JSON line). Lines written before the process fields were kept have
/// only pid, host and since: their holder is never taken for gone by them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since: String,
    #[serde(default)]
    pub boot_id: Option<String>,
    #[serde(default)]
    pub pid_ns: Option<String>,
    /// The process's start time, in clock ticks after boot (/proc/PID/stat field 22).
    #[serde(default)]
    pub start: Option<u64>,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Field 22 (starttime) of /proc/PID/stat: None when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    crate::procstat::field(&stat, 19)
}

impl Holder {
    /// This process.
    pub fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            host: read_trim("/proc/sys/kernel/hostname").unwrap_or_default(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.display().to_string()),
            start: start_time(pid),
        }
    }

    /// Whether this holder's process is provably gone, as seen by `me`: same host, boot and
    /// PID namespace, and no process of its PID started at its start time.
    pub fn gone(&self, me: &Holder) -> bool {
        self.here(me) && self.start.is_some() && start_time(self.pid) != self.start
    }

    /// Whether this holder's process is provably running, as seen by `me`: same host, boot
    /// and PID namespace, and a process of its PID started at its start time.
    pub fn alive(&self, me: &Holder) -> bool {
        self.here(me) && self.start.is_some() && start_time(self.pid) == self.start
    }

    fn here(&self, me: &Holder) -> bool {
        self.host == me.host
            && self.boot_id.is_some()
            && self.boot_id == me.boot_id
            && self.pid_ns.is_some()
            && self.pid_ns == me.pid_ns
    }

    /// The holder a lock's text names: its first whole line (one that ends in a newline, so a
    /// line still being written is never read).
    pub fn of_text(text: &str) -> Option<Holder> {
        let (line, _) = text.split_once('\n')?;
        serde_json::from_str(line).ok()
    }

    /// " (pid N on HOST, since T)", for the message of a lock found held.
    pub fn shown(&self) -> String {
        format!(" (pid {} on {}, since {})", self.pid, self.host, self.since)
    }

    /// The line a holder writes: JSON, newline-terminated.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a holder serializes");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_holder_of_this_host_boot_and_namespace_without_its_process_is_gone() {
        let me = Holder::me();
        assert!(me.start.is_some() && me.boot_id.is_some() && me.pid_ns.is_some());
        assert!(!me.gone(&me) && me.alive(&me), "this process is alive");
        // A child that exited: its PID has no process of its start time any more.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        let dead = Holder {
            pid,
            start: start.or(Some(1)),
            ..me.clone()
        };
        assert!(dead.gone(&me) && !dead.alive(&me));
        // The same PID started at another time (reused): gone.
        let reused = Holder {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert!(reused.gone(&me));
        // Elsewhere, or an old object without the process fields: never provably gone.
        for other in [
            Holder {
                host: "elsewhere".into(),
                ..dead.clone()
            },
            Holder {
                boot_id: Some("other boot".into()),
                ..dead.clone()
            },
            Holder {
                pid_ns: Some("pid:[1]".into()),
                ..dead.clone()
            },
            Holder {
                boot_id: None,
                pid_ns: None,
                start: None,
                ..dead.clone()
            },
        ] {
            assert!(!other.gone(&me) && !other.alive(&me), "{other:?}");
        }
        let line = dead.to_line();
        assert_eq!(serde_json::from_str::<Holder>(&line).unwrap(), dead);
        let old: Holder =
            serde_json::from_str(r#"{"pid": 1, "host": "h", "since": "2026-01-01T00:00:00Z"}"#)
                .unwrap();
        assert_eq!(old.start, None);
    }
}
