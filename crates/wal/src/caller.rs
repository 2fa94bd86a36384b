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
        // One read per ancestor: /proc/PID/stat holds the name (comm) and the parent.
        let Some(stat) = read_stat(pid) else {
            return false;
        };
        if comm_of(&stat) == Some("postgres") {
            return true;
        }
        match parse_ppid(&stat) {
            Some(p) => pid = p,
            None => return false,
        }
    }
    false
}

/// `/proc/PID/stat`, read with one system call into a small buffer (it is under 512 bytes
/// but for a process with a very long name, which is then cut: only the first fields matter).
fn read_stat(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The name in `pid (comm) state ppid …`, between the first `(` and the last `)`.
fn comm_of(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// The parent from `/proc/PID/stat`: `pid (comm) state ppid …`.
fn parse_ppid(stat: &str) -> Option<i32> {
    pgdr_core::procstat::field(stat, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        assert_eq!(parse_ppid("123 (sh) S 45 123 123 0 -1"), Some(45));
        assert_eq!(parse_ppid("9 (a) b) (c) R 7 9 9"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
        assert_eq!(comm_of("9 (a) b) (c) R 7 9 9"), Some("a) b) (c"));
        assert_eq!(comm_of("1 (postgres) S 0"), Some("postgres"));
    }

    #[test]
    fn the_test_runner_is_no_server() {
        assert!(!run_by_postgres());
        let me = read_stat(std::process::id() as i32).unwrap();
        assert_eq!(
            parse_ppid(&me),
            Some(rustix::process::getppid().unwrap().as_raw_nonzero().get())
        );
    }
}
