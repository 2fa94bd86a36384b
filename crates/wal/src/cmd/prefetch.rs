//! `get --prefetch N`: while PostgreSQL replays one segment, a background worker (the hidden
//! `prefetch-worker` subcommand) decompresses and verifies the next segments into a spool
//! outside pg_wal; `get` takes a spooled segment when its checksum is the archived one.
//!
//! The next segments are the ones PostgreSQL will ask for: on the timeline it follows, which
//! changes at a switch point. PostgreSQL keeps the history file of the timeline it recovers
//! towards (and of its ancestors) in pg_wal (xlogrecovery.c reads it with readTimeLineHistory,
//! which keeps a restored copy there), and asks for each segment on the newest timeline of that
//! history that had begun by the segment (XLogFileReadAnyTLI); the worker plans the same way.
//!
//! The spool is bounded: at most [`spool_cap`] segments (N, and no more than
//! [`SPOOL_MAX_BYTES`] of them, at least one), the one being written included.

use crate::cmd::get::GetOptions;
use crate::doc::PrefetchReport;
use pgdr_core::fsx::Pending;
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::history;
use pgdr_pgformat::wal_name::{Kind, WalName};
use pgdr_repo::file::{self, read_header};
use pgdr_repo::repo::{key_of, Repo};
use pgdr_repo::stored::{hex, Header};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The most the spool holds, in bytes of segments (1 GiB: 64 segments of 16 MiB, one of 1 GiB).
pub const SPOOL_MAX_BYTES: u64 = 1 << 30;

/// How many segments the spool holds at most for `--prefetch count`: `count`, within
/// [`SPOOL_MAX_BYTES`], and at least one.
pub fn spool_cap(count: usize, seg_size: u64) -> usize {
    let by_bytes = (SPOOL_MAX_BYTES / seg_size.max(1)).max(1);
    count.min(usize::try_from(by_bytes).unwrap_or(usize::MAX))
}

/// What the worker fills.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The spool directory.
    pub spool: PathBuf,
    /// The segment PostgreSQL just got: the worker fetches the ones after it.
    pub after: String,
    /// How many.
    pub count: usize,
    /// PostgreSQL's pg_wal (DEST's directory): the history files of the timeline it follows,
    /// and the segments it already holds.
    pub pg_wal: Option<PathBuf>,
}

/// The spool for a `get`: `--spool`, else `pgdr_wal_prefetch` in the data directory (beside
/// pg_wal) when DEST is recovery's own `pg_wal/RECOVERYXLOG`; pg_rewind and hand calls get no
/// prefetch.
pub fn spool_dir(o: &GetOptions) -> Option<PathBuf> {
    if let Some(s) = &o.spool {
        return Some(s.clone());
    }
    if o.prefetch == 0 || o.dest.file_name()? != "RECOVERYXLOG" {
        return None;
    }
    let dest = std::path::absolute(&o.dest).ok()?;
    Some(dest.parent()?.parent()?.join("pgdr_wal_prefetch"))
}

/// Beside each spooled segment `NAME`, `NAME.sha256` holds the SHA-256 the worker verified it
/// against (written before the segment is renamed into place), so that `get` can trust the
/// copy without hashing it again once the archived header records the same checksum.
fn checksum_file(spool: &Path, name: &str) -> PathBuf {
    spool.join(format!("{name}.sha256"))
}

/// Serves `name` from the spool when the worker left a copy verified against the checksum the
/// archive still records; anything else leaves it to the archive. The rename is not synced,
/// as get's own writes are not (see [`crate::cmd::get`]).
pub fn take_from_spool(repo: &Repo, name: &WalName, spool: &Path, dest: &Path) -> Option<Header> {
    let n = name.to_string();
    let p = spool.join(&n);
    if !p.exists() {
        await_worker(spool, &n);
    }
    let size = fs::metadata(&p).ok()?.len();
    let sum = checksum_file(spool, &n);
    let verified = fs::read_to_string(&sum).ok();
    let h = read_header(repo, &key_of(name)).ok();
    let _ = fs::remove_file(&sum);
    let h = h.filter(|h| h.size == size && verified.as_deref() == Some(hex(&h.sha256).as_str()));
    let Some(h) = h else {
        let _ = fs::remove_file(&p);
        return None;
    };
    let _guard = pgdr_core::signals::critical_section();
    // Another file system: read it from the archive instead.
    fs::rename(&p, dest).ok()?;
    Some(h)
}

/// How long a worker's copy of the segment `get` wants may stop growing before `get` stops
/// waiting for it and restores the segment itself.
const STALL: Duration = Duration::from_secs(2);

/// Whether a worker holds the spool's lock now (it removes the lock file when done).
fn worker_running(spool: &Path) -> bool {
    let Ok(f) = fs::File::open(spool.join(".lock")) else {
        return false;
    };
    matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock))
}

/// When the worker is restoring `name` right now (its temporary copy is in the spool and it
/// holds the lock), waits until it is done instead of decompressing the same segment a
/// second time: until the copy is renamed into place or gone, the worker exits, or the copy
/// stops growing for [`STALL`]. The caller then takes it from the spool or restores it itself.
fn await_worker(spool: &Path, name: &str) {
    let prefix = format!(".{name}.pgdr-tmp.");
    let Some(temp) = fs::read_dir(spool)
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
    else {
        return;
    };
    let (mut size, mut grew) = (None, Instant::now());
    while worker_running(spool) {
        let Ok(m) = fs::metadata(&temp) else {
            return;
        };
        if size != Some(m.len()) {
            (size, grew) = (Some(m.len()), Instant::now());
        } else if grew.elapsed() > STALL {
            return;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Starts the worker in the background; false when it was not started: nothing to fetch, a
/// worker holds the spool already (another would only find the lock taken and exit), or it
/// could not be started.
pub fn spawn(location: &Path, spool: &Path, after: &WalName, count: usize, pg_wal: &Path) -> bool {
    if count == 0 || worker_running(spool) {
        return false;
    }
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--repo")
        .arg(location)
        .arg("prefetch-worker")
        .arg("--spool")
        .arg(spool)
        .arg("--after")
        .arg(after.to_string())
        .arg("--count")
        .arg(count.to_string())
        .arg("--pg-wal")
        .arg(pg_wal);
    detach(&mut cmd).spawn().is_ok()
}

/// Makes `cmd` start in a session of its own (setsid), its output discarded. Its own process
/// group, as session leader: the signal PostgreSQL sends restore_command's group when recovery
/// ends does not reach it. Its own session: with the kernel's autogroup scheduling, the
/// worker's decompression gets a CPU share of its own instead of taking from the startup
/// process's, which replays the WAL (measured: 4.9 s of replay between gets become 10.6 s
/// sharing it, 6.5 s apart; issue 19).
fn detach(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs between fork and exec and only calls setsid, which is
    // async-signal-safe; the child is not a process group leader, so setsid cannot fail.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        })
    }
}

/// The timeline PostgreSQL recovers towards, as far as pg_wal tells: the newest history file
/// there whose ancestry holds `tli`, with its entries (ancestors and their switch points).
fn target_history(pg_wal: &Path, tli: u32) -> Option<(u32, Vec<history::Entry>)> {
    let mut found: Vec<u32> = fs::read_dir(pg_wal)
        .ok()?
        .flatten()
        .filter_map(|e| WalName::parse(&e.file_name().to_string_lossy()))
        .filter(|w| w.kind == Kind::History && w.timeline > tli)
        .map(|w| w.timeline)
        .collect();
    found.sort_unstable();
    found.into_iter().rev().find_map(|t| {
        let text = fs::read_to_string(pg_wal.join(format!("{t:08X}.history"))).ok()?;
        let entries = history::parse(&text).ok()?;
        entries
            .iter()
            .any(|e| e.timeline == tli)
            .then_some((t, entries))
    })
}

/// The `count` segments PostgreSQL asks for after `after`: each on the newest timeline of
/// `target` (a timeline and its history) that had begun by that segment, as
/// XLogFileReadAnyTLI picks them; on `after`'s timeline when there is no target or when
/// `after` itself is not where the target's history would have read it (PostgreSQL follows
/// another timeline then).
pub fn plan(
    after: &WalName,
    target: Option<(u32, Vec<history::Entry>)>,
    seg_size: u64,
    count: usize,
) -> Vec<WalName> {
    // (timeline, first segment), oldest first.
    let begins: Vec<(u32, u64)> = match target {
        Some((t, entries)) => {
            let mut v = Vec::with_capacity(entries.len() + 1);
            let mut begin = 0;
            for e in &entries {
                v.push((e.timeline, begin));
                begin = e.switchpoint.0 / seg_size;
            }
            v.push((t, begin));
            v
        }
        None => Vec::new(),
    };
    let on = |segno: u64| {
        begins
            .iter()
            .rev()
            .find(|(_, b)| *b <= segno)
            .map(|(t, _)| *t)
    };
    let first = after.segno(seg_size) + 1;
    let follows = on(first - 1) == Some(after.timeline);
    (first..first + count as u64)
        .map(|s| {
            let t = if follows {
                on(s).unwrap_or(after.timeline)
            } else {
                after.timeline
            };
            WalName::segment(t, s, seg_size)
        })
        .collect()
}

/// Fills the spool with the segments PostgreSQL asks for after `after` ([`plan`]), each
/// verified then renamed into place, skipping those pg_wal holds already; one worker per
/// spool at a time, [`RESTORES`] segments at once; other spool entries are removed, so the
/// spool never holds more than [`spool_cap`] segments. Stops at the first segment it cannot
/// get (get reports the damage when recovery asks for it).
///
/// # Errors
/// The repository or the spool cannot be used.
pub fn worker(location: &Path, o: &WorkerOptions) -> Result<PrefetchReport> {
    let repo = Repo::open(location)?;
    let after = WalName::parse(&o.after).ok_or_else(|| Error::usage("bad --after"))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&o.spool)
        .context(|| format!("cannot create {}", o.spool.display()))?;
    // Decompressed WAL is as private as the repository.
    let mode = fs::metadata(&o.spool)
        .context(|| format!("cannot open {}", o.spool.display()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(
            Error::failed(format!("refusing spool {}", o.spool.display())).because(format!(
                "it is writable by other users (mode {:04o})",
                mode & 0o7777
            )),
        );
    }
    let _lock = match pgdr_core::lock::acquire(&o.spool.join(".lock"), "the prefetch spool", None) {
        Ok(l) => l,
        Err(_) => return Ok(PrefetchReport { prefetched: 0 }),
    };
    let Some(id) = repo.identity() else {
        return Ok(PrefetchReport { prefetched: 0 });
    };
    let size = id.wal_segment_size;
    let history = o
        .pg_wal
        .as_deref()
        .and_then(|d| target_history(d, after.timeline));
    let wanted = plan(&after, history, size, spool_cap(o.count, size));
    let names: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
    // Bounded: anything not among the planned names goes (a killed worker's temporary file,
    // segments PostgreSQL went past or will not ask for).
    for e in fs::read_dir(&o.spool).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let w = n.strip_suffix(".sha256").unwrap_or(&n);
        if n != ".lock" && !names.iter().any(|x| x == w) {
            let _ = fs::remove_file(e.path());
        }
    }
    // [`RESTORES`] at once, in plan order; after a failure no new one starts.
    let next = AtomicUsize::new(0);
    let (done, failed) = (AtomicU64::new(0), AtomicBool::new(false));
    let fill = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(w) = wanted.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return;
            };
            match spool_one(&repo, o, w) {
                Some(true) => {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Some(false) => {}
                None => failed.store(true, Ordering::Relaxed),
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..RESTORES.min(wanted.len()) {
            s.spawn(fill);
        }
        fill();
    });
    Ok(PrefetchReport {
        prefetched: done.into_inner(),
    })
}

/// How many segments the worker restores at once (as pgBackRest's archive-get with
/// process-max=2): the one PostgreSQL asks for next is no later, the one after it is ready
/// sooner when replay outruns one decompression. Both count against [`spool_cap`].
const RESTORES: usize = 2;

/// Restores `w` verified into the spool: Some(true) when spooled, Some(false) when the spool
/// or pg_wal holds it already, None when it could not be (the worker then stops).
///
/// The copy is written under a name (`.NAME.pgdr-tmp.PID.N`), not unnamed as get's and the
/// repository's files are: a get for NAME finds it by that name and watches it grow
/// ([`await_worker`]). A worker killed by SIGKILL leaves it behind, harmlessly: it is in
/// pgdr's own spool (never pg_wal nor the repository), within the spool's bound; a get meeting
/// it sees that no worker holds the spool's lock and does not wait; and the next worker,
/// holding that lock (so no live worker's copy can be taken for a dead one's, as a PID could
/// be reused or belong to another PID namespace), removes it before it writes anything.
fn spool_one(repo: &Repo, o: &WorkerOptions, w: &WalName) -> Option<bool> {
    let name = w.to_string();
    let target = o.spool.join(&name);
    if target.exists() || o.pg_wal.as_ref().is_some_and(|d| d.join(&name).exists()) {
        return Some(false);
    }
    let (pending, f) = Pending::named_beside(&target).ok()?;
    let reserved = f.try_clone().ok()?;
    let mut bw = io::BufWriter::with_capacity(1 << 20, f);
    let h = file::restore_sized(repo, w, &mut bw, &mut |len| {
        pgdr_core::fsx::reserve(&reserved, len)
    })
    .ok()?;
    let f = bw.into_inner().ok()?;
    // Not synced: a spooled copy lost in a crash is fetched again.
    fs::write(checksum_file(&o.spool, &name), hex(&h.sha256)).ok()?;
    pending.publish(&f).ok()?;
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 16 << 20;

    fn names(v: &[WalName]) -> Vec<String> {
        v.iter().map(|w| w.to_string()).collect()
    }

    fn tl2_at_seg5() -> Option<(u32, Vec<history::Entry>)> {
        let h = history::parse("1\t0/5000100\tno recovery target specified\n").unwrap();
        Some((2, h))
    }

    #[test]
    fn plans_follow_the_switch_point() {
        let after = WalName::parse("000000010000000000000003").unwrap();
        assert_eq!(
            names(&plan(&after, tl2_at_seg5(), SEG, 4)),
            [
                "000000010000000000000004",
                "000000020000000000000005",
                "000000020000000000000006",
                "000000020000000000000007"
            ]
        );
        // Without a newer history, and when PostgreSQL reads another timeline than the
        // history says (it follows timeline 1 past the switch), the name's own timeline.
        assert_eq!(
            names(&plan(&after, None, SEG, 2)),
            ["000000010000000000000004", "000000010000000000000005"]
        );
        let past = WalName::parse("000000010000000000000006").unwrap();
        assert_eq!(
            names(&plan(&past, tl2_at_seg5(), SEG, 1)),
            ["000000010000000000000007"]
        );
        let on2 = WalName::parse("000000020000000000000005").unwrap();
        assert_eq!(
            names(&plan(&on2, tl2_at_seg5(), SEG, 1)),
            ["000000020000000000000006"]
        );
    }

    #[test]
    fn three_timelines_and_1_gib_segments() {
        let h = history::parse("1\t0/5000100\tx\n2\t0/7000000\ty\n").unwrap();
        let after = WalName::parse("000000010000000000000004").unwrap();
        assert_eq!(
            names(&plan(&after, Some((3, h)), SEG, 4)),
            [
                "000000020000000000000005",
                "000000020000000000000006",
                "000000030000000000000007",
                "000000030000000000000008"
            ]
        );
        assert_eq!(spool_cap(8, SEG), 8);
        assert_eq!(spool_cap(100, SEG), 64);
        assert_eq!(spool_cap(8, 1 << 30), 1);
        assert_eq!(spool_cap(0, 1 << 30), 0);
    }

    #[test]
    fn the_worker_runs_in_a_session_of_its_own() {
        // Session and process group from /proc/PID/stat, not getsid(2): where the test's own
        // session leader lives outside its PID namespace (a container's exec), the kernel
        // gives 0 for it, which rustix's Pid cannot hold.
        fn session_and_group(pid: u32) -> (i64, i64) {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let field = |i| pgdr_core::procstat::field(&stat, i).unwrap();
            (field(3), field(2))
        }
        let mut c = std::process::Command::new("sleep");
        c.arg("30");
        let mut child = detach(&mut c).spawn().unwrap();
        let pid = child.id();
        // Before exec, setsid has run: the session and the process group are the child's.
        let (sid, pgid) = session_and_group(pid);
        let (own_sid, _) = session_and_group(std::process::id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_ne!(sid, own_sid);
        assert_eq!(sid, i64::from(pid));
        assert_eq!(pgid, i64::from(pid));
    }

    #[test]
    fn the_target_is_the_newest_history_holding_the_timeline() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("00000002.history"), "1\t0/5000100\tx\n").unwrap();
        // Timeline 3 branched from 2, timeline 4 from 1 elsewhere: 3 is PostgreSQL's target
        // for a name on timeline 2, 4 for one on timeline 1 (the newest holding it).
        fs::write(
            d.path().join("00000003.history"),
            "1\t0/5000100\tx\n2\t0/9000000\ty\n",
        )
        .unwrap();
        fs::write(d.path().join("00000004.history"), "1\t0/3000000\tz\n").unwrap();
        assert_eq!(target_history(d.path(), 2).map(|t| t.0), Some(3));
        assert_eq!(target_history(d.path(), 1).map(|t| t.0), Some(4));
        assert_eq!(target_history(d.path(), 4), None);
    }
}
