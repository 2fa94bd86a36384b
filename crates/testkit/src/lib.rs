//! Real parts for pgdr's tests: throwaway PostgreSQL clusters ([`Cluster`]), zfs-fuse pools on a
//! file ([`ZfsPool`]), btrfs loop mounts ([`BtrfsMount`]), a real S3-compatible server
//! ([`S3Server`], moto), and a runner for the tool binaries ([`tool`]).
//! [`Cluster::with_major`] starts a server of any supported major ([`majors`]). Everything is
//! removed on drop, also after a panic.
//!
//! When a facility cannot exist on the machine (no /dev/fuse, not root for a loop mount) the
//! constructors return [`Unavailable`], and [`skip_unless!`] prints a loud SKIPPED line.

mod cluster;
mod fs;
mod kill;
pub mod majors;
mod prometheus;
mod run;
pub mod s3;

pub use cluster::{connect_at, Cluster, ClusterBuilder};
pub use fs::{BtrfsMount, ZfsPool};
pub use kill::{kill_9_when, opened_in};
pub use majors::MAJORS;
pub use prometheus::prometheus_client_samples;
pub use run::{tool, ToolCommand, ToolOutput};
pub use s3::S3Server;

use std::path::{Path, PathBuf};

/// A facility that cannot exist on this machine, and why.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Unwraps a `Result<T, Unavailable>`, or prints a loud SKIPPED line and returns from the test.
/// Under `PGDR_REQUIRE_ALL=1` (what `make test`, and so CI, sets) a missing facility fails the
/// test instead: cargo hides a skipped test's output, so a quiet pass would hide it.
#[macro_export]
macro_rules! skip_unless {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(u) => {
                if $crate::require_all() {
                    panic!(
                        "{}: {} (PGDR_REQUIRE_ALL=1: every facility must be here)",
                        module_path!(),
                        u
                    );
                }
                eprintln!("\n*** SKIPPED {}: {} ***\n", module_path!(), u);
                return;
            }
        }
    };
}

/// Whether `PGDR_REQUIRE_ALL=1`: then a test never skips for a missing facility.
pub fn require_all() -> bool {
    std::env::var_os("PGDR_REQUIRE_ALL").is_some_and(|v| v == "1")
}

/// Whether the tests run as root (then servers run as the `postgres` OS user).
pub fn is_root() -> bool {
    pgdr_core::owner::is_root()
}

/// The OS user that owns clusters: `postgres` when root, else ourselves.
pub fn pg_user() -> pgdr_core::owner::User {
    if is_root() {
        let uid = lookup_uid("postgres").expect(
            "running as root but there is no 'postgres' OS user: install the PostgreSQL server package (make deps)",
        );
        pgdr_core::owner::user_by_uid(uid).expect("postgres user")
    } else {
        pgdr_core::owner::current_user().expect("current user")
    }
}

fn lookup_uid(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
}

/// A temporary directory with a short path (Unix socket paths are limited to ~100 bytes),
/// owned by the cluster user, removed on drop.
pub fn short_tempdir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create temp dir in /tmp");
    chown_to_pg_user(d.path());
    d
}

/// Gives `path` (not recursively) to the cluster user when root.
pub fn chown_to_pg_user(path: &Path) {
    if is_root() {
        let u = pg_user();
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid)).expect("chown");
    }
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; a tiny race remains, handled by retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// The directory holding the built tool binaries (`target/debug`), from the test executable.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PGDR_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    if deps.ends_with("deps") {
        deps.parent().expect("target dir").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// Writes a new age identity to `path` with `age-keygen` (Debian package age; make deps) and
/// returns its recipient (`age1…`), from the file's "# public key:" line.
pub fn age_keygen(path: &std::path::Path) -> String {
    run_ok(std::process::Command::new("age-keygen").arg("-o").arg(path));
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .expect("age-keygen writes the public key")
}

/// Runs a command, panicking with its output when it fails.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}
