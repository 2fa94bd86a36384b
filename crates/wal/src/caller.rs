//! Who runs wal-archive: PostgreSQL (archive_command, restore_command) or a person or script.
//! Under the server, push and get print nothing on success (SPEC "Operating it": their
//! stdout is the server log, which would get one JSON line per segment).
//!
//! The test is the process ancestry: some ancestor is a `postgres` process. PostgreSQL runs
//! archive_command and restore_command with system(3), so the parent is `sh -c` or, when the
//! shell execs a simple command, the archiver or startup process itself; a wrapper script
//! adds levels, so every ancestor is looked at, not only the first two. Every process of a
//! running server is named `postgres` (/proc/PID/comm: the postmaster and its forked children
//! keep the executable's name whatever their title says), and nothing a person starts from a
//! terminal, cron or a pipeline descends from one. Neither the environment (the server sets
//! no variable for these commands) nor stdout (a file or pipe either way) would tell.

/// Whether an ancestor of this process is a PostgreSQL server process.
pub fn run_by_postgres() -> bool {
    let mut pid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    // Bounded, in case /proc lies in a loop.
    for _ in 0..64 {
        if pid <= 1 {
            return false;
        }
        if comm(pid).as_deref() == Some("postgres") {
            return true;
        }
        match parent_of(pid) {
            Some(p) => pid = p,
            None => return false,
        }
    }
    false
}

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// The parent from `/proc/PID/stat`: `pid (comm) state ppid …`; the name may hold spaces and
/// parentheses, so the fields are counted after the last `)`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ppid(&stat)
}

fn parse_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        assert_eq!(parse_ppid("123 (sh) S 45 123 123 0 -1"), Some(45));
        assert_eq!(parse_ppid("9 (a) b) (c) R 7 9 9"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn the_test_runner_is_no_server() {
        assert!(!run_by_postgres());
        assert_eq!(
            parent_of(std::process::id() as i32),
            Some(rustix::process::getppid().unwrap().as_raw_nonzero().get())
        );
    }
}
