//! Replay settings: what a clone's recovery runs with, by default, so that a point-in-time
//! clone replays fast, while its configuration keeps the snapshot's own settings.
//!
//! Replay is one process reading a page for every record it applies. Once shared_buffers is
//! full, every page it reads evicts a dirty one, which is written out first; where writes are
//! slow (zfs-fuse, loop-mounted copy-on-write filesystems) that write dominates, and buffers
//! large enough for the pages the WAL touches made replay 3–5× faster (pgbench scale 64,
//! zfs-fuse, 1–2 GB). From PostgreSQL 15 the startup process also reads ahead in the WAL and
//! prefetches the blocks it will need (xlogprefetcher.c), bounded by maintenance_io_concurrency
//! I/Os in flight and wal_decode_buffer_size of decoded WAL.
//!
//! The settings are given to the server on its command line (`postgres -c name=value`) for the
//! start that recovers, never written into postgresql.conf or postgresql.auto.conf, and
//! postmaster.opts (what `pg_ctl restart` starts the server with again) is rewritten without
//! them: any later start of the clone has the snapshot's settings.

use pgdr_core::owner::User;
use pgdr_core::{Context, Error, Result};
use std::path::Path;

/// The most shared_buffers a clone's recovery gets on its own (2 GiB): the last round's
/// measurements gained 3–5× with 1–2 GB at pgbench scale 64 (about 1 GB of data); beyond the
/// pages the WAL touches more buffers add nothing but memory.
pub const SHARED_BUFFERS_CAP: u64 = 2 << 30;

/// A clone's recovery takes at most 1/MEMORY_SHARE of the memory available when it starts.
/// Clones started one after another each see what the earlier ones left, so N of them hold
/// at most 1 - (7/8)^N of it (4 clones: 41%, 8: 66%) and never all of it. Clones started at
/// the same moment (CI's parallel tests) see the same figure, but the buffers are only backed
/// by memory as replay touches them, and a test's clone replays a few megabytes.
pub const MEMORY_SHARE: u64 = 8;

/// maintenance_io_concurrency during recovery (PostgreSQL 15+): the prefetcher's bound on
/// blocks being read ahead of replay. The default (10; 16 from 18) is sized for one disk; 64
/// keeps a device queue (or zfs-fuse's worker threads) busy while replay applies records one
/// by one, and costs nothing but the kernel's readahead.
pub const MAINTENANCE_IO_CONCURRENCY: u32 = 64;

/// wal_decode_buffer_size during recovery (PostgreSQL 15+): how far ahead of replay the WAL
/// is decoded to find blocks to prefetch. The default 512kB holds fewer records with
/// references than [`MAINTENANCE_IO_CONCURRENCY`] asks for once full-page images fill it;
/// 4MB lets the I/O bound decide, and is memory of the startup process only.
pub const WAL_DECODE_BUFFER_SIZE: &str = "4MB";

/// How the clone's recovery is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The snapshot's settings throughout (`--replay-settings off`).
    Off,
    /// Replay settings while recovering; a clone snap-clone promoted with a larger
    /// shared_buffers is restarted with the snapshot's own.
    Recovery,
    /// Replay settings for as long as the server runs: a clone destroyed right after its
    /// promotion (the drill), where a restart would only cost a checkpoint.
    Kept,
}

/// `--replay-settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Replay settings for the clone's recovery (the default).
    On,
    /// The snapshot's own settings during recovery too.
    Off,
}

impl From<Switch> for Policy {
    fn from(s: Switch) -> Policy {
        match s {
            Switch::On => Policy::Recovery,
            Switch::Off => Policy::Off,
        }
    }
}

/// shared_buffers for recovery, in bytes: the snapshot's own (`own`), raised to
/// min([`SHARED_BUFFERS_CAP`], `available` / [`MEMORY_SHARE`]), never lowered (pure).
pub fn recovery_shared_buffers(own: u64, available: Option<u64>) -> u64 {
    let share = available.map_or(0, |a| (a / MEMORY_SHARE).min(SHARED_BUFFERS_CAP));
    own.max(share)
}

/// The replay settings for a server of `pg_version` (its PG_VERSION), in order (pure).
/// `own_shared_buffers` is the snapshot's shared_buffers in bytes, None when --shared-buffers
/// sets it (the user's choice stays); shared_buffers is only given when it is raised.
/// PostgreSQL 13 and 14 replay without prefetching (maintenance_io_concurrency exists there
/// but replay does not use it), and a server refuses to start on a name it does not know:
/// the prefetch settings are only given from 15.
pub fn settings(
    pg_version: u32,
    own_shared_buffers: Option<u64>,
    available: Option<u64>,
) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if let Some(own) = own_shared_buffers {
        let sb = recovery_shared_buffers(own, available);
        // In kB, PostgreSQL's unit that every size is a whole number of.
        if sb / 1024 > own / 1024 {
            v.push(("shared_buffers".to_string(), format!("{}kB", sb / 1024)));
        }
    }
    if pg_version >= 15 {
        v.push(("recovery_prefetch".into(), "on".into()));
        v.push((
            "maintenance_io_concurrency".into(),
            MAINTENANCE_IO_CONCURRENCY.to_string(),
        ));
        v.push((
            "wal_decode_buffer_size".into(),
            WAL_DECODE_BUFFER_SIZE.into(),
        ));
    }
    v
}

/// MemAvailable of /proc/meminfo (`meminfo`), in bytes, lowered to what a memory cgroup
/// limit leaves (`limit` - `usage`, in bytes) when there is one below it (pure).
pub fn available_from(meminfo: &str, limit: Option<u64>, usage: Option<u64>) -> Option<u64> {
    let avail = meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemAvailable:")?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })?;
    Some(match limit {
        Some(l) if l < avail => avail.min(l.saturating_sub(usage.unwrap_or(0))),
        _ => avail,
    })
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The memory this host, or the memory cgroup snap-clone runs in (a container's: cgroup v2's
/// memory.max and memory.current, v1's memory.limit_in_bytes and memory.usage_in_bytes at
/// the mount's root, which is the container's own cgroup), can still give, in bytes; None
/// when /proc/meminfo does not say.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let (limit, usage) = match read_u64("/sys/fs/cgroup/memory.max") {
        Some(l) => (Some(l), read_u64("/sys/fs/cgroup/memory.current")),
        None => (
            read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
            read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        ),
    };
    available_from(&meminfo, limit, usage)
}

/// The snapshot's own shared_buffers in bytes: what `postgres -C shared_buffers` (its
/// configuration files, or the major's default) says, in blocks of pg_control's block size.
///
/// # Errors
/// postgres cannot run as `owner` or refuses the configuration; pg_control is unreadable.
pub fn own_shared_buffers(bindir: &Path, owner: &User, pgdata: &Path) -> Result<u64> {
    let postgres = bindir.join("postgres");
    let out = pgdr_core::owner::command_as(owner, &postgres)
        .arg("-D")
        .arg(pgdata)
        .args(["-C", "shared_buffers"])
        .output()
        .context(|| format!("cannot run {}", postgres.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks: u64 = match (out.status.success(), text.trim().parse()) {
        (true, Ok(b)) => b,
        _ => {
            return Err(
                Error::failed("cannot read the clone's shared_buffers").because(
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .next()
                        .unwrap_or("postgres -C shared_buffers failed")
                        .to_string(),
                ),
            )
        }
    };
    let control = pgdata.join("global/pg_control");
    let bytes = std::fs::read(&control).context(|| format!("cannot read {}", control.display()))?;
    let cd = pgdr_pgformat::control::parse(&bytes)
        .map_err(|e| Error::failed(format!("cannot read {}", control.display())).because(e))?;
    Ok(blocks * u64::from(cd.block_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;
    const MB: u64 = 1 << 20;

    #[test]
    fn shared_buffers_is_a_capped_share_never_lowered() {
        // 24 GB available: the cap.
        assert_eq!(recovery_shared_buffers(128 * MB, Some(24 * GB)), 2 * GB);
        // 4 GB available: an eighth.
        assert_eq!(recovery_shared_buffers(128 * MB, Some(4 * GB)), 512 * MB);
        // The snapshot's own is larger: kept.
        assert_eq!(recovery_shared_buffers(8 * GB, Some(24 * GB)), 8 * GB);
        assert_eq!(recovery_shared_buffers(128 * MB, Some(512 * MB)), 128 * MB);
        assert_eq!(recovery_shared_buffers(128 * MB, None), 128 * MB);
    }

    #[test]
    fn settings_by_major() {
        let names = |v: Vec<(String, String)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        let s = settings(15, Some(16 * MB), Some(24 * GB));
        assert_eq!(
            s[0],
            ("shared_buffers".to_string(), "2097152kB".to_string())
        );
        assert_eq!(
            names(s),
            [
                "shared_buffers",
                "recovery_prefetch",
                "maintenance_io_concurrency",
                "wal_decode_buffer_size"
            ]
        );
        // 13 and 14 have no recovery prefetching: only the buffers.
        assert_eq!(
            names(settings(14, Some(16 * MB), Some(24 * GB))),
            ["shared_buffers"]
        );
        assert!(settings(13, Some(4 * GB), Some(8 * GB)).is_empty());
        // --shared-buffers decides the buffers.
        assert_eq!(
            names(settings(16, None, Some(24 * GB))),
            [
                "recovery_prefetch",
                "maintenance_io_concurrency",
                "wal_decode_buffer_size"
            ]
        );
    }

    #[test]
    fn available_memory_from_meminfo_and_cgroup() {
        let mi = "MemTotal:       24684096 kB\nMemAvailable:   22975784 kB\n";
        assert_eq!(available_from(mi, None, None), Some(22975784 * 1024));
        // No limit (v1 reports a huge one): meminfo.
        assert_eq!(
            available_from(mi, Some(9223372036854771712), Some(13 * GB)),
            Some(22975784 * 1024)
        );
        // A container's limit: what it leaves.
        assert_eq!(available_from(mi, Some(4 * GB), Some(GB)), Some(3 * GB));
        assert_eq!(available_from(mi, Some(4 * GB), Some(5 * GB)), Some(0));
        assert_eq!(available_from("MemTotal: 1 kB\n", None, None), None);
    }
}
