//! wal-archive get --prefetch against real PostgreSQL 15: recovery through restore_command
//! across a timeline switch with a bounded spool, the spool following the switch, and the
//! memory of one push and get of a 1 GiB segment.

mod wal_support;

use pgdr_pgformat::history;
use pgdr_pgformat::wal_name::WalName;
use pgdr_testkit::{short_tempdir, Cluster};
use pgdr_wal::doc::{GetReport, ListReport};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wal_support::{
    archiving_primary, bin, init, make_segments, recovering_cluster, sha, switch_and_wait,
    timeline, wa,
};

const SEG: u64 = 16 << 20;

/// Fills about `mb` MB of WAL.
fn write_wal(c: &Cluster, mb: u32) {
    c.execute(&format!(
        "insert into t select g, repeat('x', 900) from generate_series(1, {}) g",
        mb * 1000
    ));
}

/// The spool's segments (spooled or being written; not the lock, not the checksum files):
/// how many, and their bytes.
fn spool_size(spool: &Path) -> (usize, u64) {
    let mut n = 0;
    let mut bytes = 0;
    for e in fs::read_dir(spool).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != ".lock" && !name.ends_with(".sha256") {
            n += 1;
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    (n, bytes)
}

#[test]
fn recovery_across_a_timeline_switch_with_a_bounded_spool() {
    let dir = short_tempdir("pgdr-wpf");
    let repo = dir.path().join("repo");
    let primary = archiving_primary(&repo, "");
    primary.execute("create table t (id int, note text)");
    let backup = dir.path().join("base");
    pgdr_testkit::run_ok(
        primary
            .cmd("pg_basebackup")
            .arg("-D")
            .arg(&backup)
            .args(["-X", "none", "-c", "fast", "-d"])
            .arg(primary.conninfo()),
    );
    write_wal(&primary, 40);
    // A standby promoted: timeline 2 begins, and archiving goes on there.
    let standby = primary.standby();
    primary.execute("insert into t values (-1, 'streamed')");
    standby.wait_for(
        "select count(*) = 1 from t where id = -1",
        Duration::from_secs(60),
    );
    primary.stop();
    standby.execute("select pg_promote()");
    standby.wait_for("select not pg_is_in_recovery()", Duration::from_secs(60));
    write_wal(&standby, 40);
    standby.execute("insert into t values (-2, 'timeline 2')");
    let last = switch_and_wait(&standby);
    assert!(last.starts_with("00000002"), "{last}");
    let l: ListReport = wa(&repo).arg("list").run().ok().document();
    assert!(timeline(&l, 2).count >= 3, "{l:?}");

    // Recovery from the base backup through restore_command, with --prefetch 3 (and --json,
    // so each get's document lands in the server log).
    let mut restored = recovering_cluster(
        &backup,
        &primary,
        &format!(
            "{} get --json %f %p --prefetch 3 --repo {}",
            bin().display(),
            repo.display()
        ),
    );
    let spool = restored.data.join("pgdr_wal_prefetch");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (spool, stop) = (spool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut most = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                let (n, b) = spool_size(&spool);
                most = (most.0.max(n), most.1.max(b));
                std::thread::sleep(Duration::from_millis(2));
            }
            most
        })
    };
    restored.start_server();
    restored.wait_for("select not pg_is_in_recovery()", Duration::from_secs(300));
    stop.store(true, Ordering::SeqCst);
    let (most, most_bytes) = watcher.join().unwrap();
    assert_eq!(
        restored
            .query_value("select string_agg(note, ',' order by id) from t where id < 0")
            .as_deref(),
        Some("timeline 2,streamed")
    );
    // The spool never held more than --prefetch 3 segments (the one being written included).
    assert!(most <= 3 && most_bytes <= 3 * SEG, "{most} {most_bytes}");
    let gets: Vec<GetReport> = restored
        .log_text()
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"tool\":\"wal-archive\""))
        .map(|l| pgdr_core::doc::parse::<GetReport>(l).unwrap())
        .collect();
    let on2: Vec<&GetReport> = gets
        .iter()
        .filter(|g| g.name.starts_with("00000002") && !g.name.ends_with(".history"))
        .collect();
    assert!(!on2.is_empty(), "{}", restored.log_text());
    eprintln!(
        "segments of timeline 2 restored: {}, from the spool: {}; spool at most {most} files, {most_bytes} bytes",
        on2.len(),
        on2.iter().filter(|g| g.from_prefetch).count()
    );
    drop(restored);

    // The spool's plan at the switch, checked without a race: pg_wal holding timeline 2's
    // history (as recovery towards it keeps it there), the worker started for the segment
    // two before the switch spools the next one on timeline 1, then timeline 2's.
    let text = fs::read_to_string(standby.data.join("pg_wal/00000002.history")).unwrap();
    let switch = history::parse(&text).unwrap()[0].switchpoint.0 / SEG;
    let data = dir.path().join("data");
    let pg_wal = data.join("pg_wal");
    fs::create_dir_all(&pg_wal).unwrap();
    fs::write(pg_wal.join("00000002.history"), &text).unwrap();
    let dest = pg_wal.join("RECOVERYXLOG");
    let from = WalName::segment(1, switch - 2, SEG).to_string();
    let g: GetReport = wa(&repo)
        .args(["get", "--prefetch", "3"])
        .arg(&from)
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!(g.prefetch, 3, "{g:?}");
    let want: Vec<String> = vec![
        WalName::segment(1, switch - 1, SEG).to_string(),
        WalName::segment(2, switch, SEG).to_string(),
        WalName::segment(2, switch + 1, SEG).to_string(),
    ];
    let spool = data.join("pgdr_wal_prefetch");
    let spooled = || -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&spool)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| WalName::parse(n).is_some())
            .collect();
        v.sort();
        v
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while spooled() != want {
        assert!(
            Instant::now() < deadline,
            "spool {:?}, expected {want:?}",
            spooled()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in &want {
        let g: GetReport = wa(&repo)
            .args(["get", "--prefetch", "3"])
            .arg(n)
            .arg(&dest)
            .run()
            .ok()
            .document();
        assert!(g.from_prefetch, "{g:?}");
        assert_eq!(sha(&dest), g.sha256);
        let d: GetReport = wa(&repo)
            .arg("get")
            .arg(n)
            .arg(data.join("direct"))
            .run()
            .ok()
            .document();
        assert_eq!(d.sha256, g.sha256);
        // A spooled copy is never handed out twice.
        assert!(!spooled().contains(n), "{:?}", spooled());
    }
}

/// `n` real segments archived in a new repository, and an empty spool beside it: (the
/// segments' directory, their names, the directory of repository and spool, the repository,
/// the spool).
fn archived_with_a_spool(
    n: usize,
    prefix: &str,
) -> (
    tempfile::TempDir,
    Vec<String>,
    tempfile::TempDir,
    PathBuf,
    PathBuf,
) {
    let (segs, names) = make_segments(n);
    let dir = short_tempdir(prefix);
    let repo = dir.path().join("repo");
    init(&repo, None);
    for n in &names {
        wa(&repo)
            .arg("push")
            .arg(segs.path().join("pg_wal").join(n))
            .run()
            .ok();
    }
    let spool = dir.path().join("spool");
    fs::create_dir(&spool).unwrap();
    (segs, names, dir, repo, spool)
}

/// While a worker holds the spool (here the test holds its lock and plays the worker), a get
/// starts no second worker, and a get for the segment the worker is writing waits for the
/// worker's verified copy instead of restoring the segment a second time (issue 19).
#[test]
fn a_get_waits_for_the_segment_the_worker_is_writing() {
    let (segs, names, dir, repo, spool) = archived_with_a_spool(2, "pgdr-wpw");
    let wal = segs.path().join("pg_wal");
    let dest = dir.path().join("RECOVERYXLOG");
    let get = |name: &str| {
        wa(&repo)
            .args(["get", "--prefetch", "3", "--spool"])
            .arg(&spool)
            .arg(name)
            .arg(&dest)
    };
    let lock = pgdr_core::lock::acquire(&spool.join(".lock"), "the prefetch spool", None).unwrap();
    let g: GetReport = get(&names[0]).run().ok().document();
    assert_eq!((g.prefetch, g.from_prefetch), (0, false), "{g:?}");
    assert_eq!(g.sha256, sha(&wal.join(&names[0])));

    // The worker's temporary copy of the next segment, growing while the get runs, then
    // renamed into place beside its checksum, as the worker does.
    let bytes = fs::read(wal.join(&names[1])).unwrap();
    let temp = spool.join(format!(".{}.pgdr-tmp.1.0", names[1]));
    let mut f = fs::File::create(&temp).unwrap();
    let waiting = std::thread::spawn({
        let cmd = get(&names[1]);
        move || cmd.run()
    });
    for chunk in bytes.chunks(1 << 20) {
        std::io::Write::write_all(&mut f, chunk).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(f);
    let want = sha(&wal.join(&names[1]));
    fs::write(spool.join(format!("{}.sha256", names[1])), &want).unwrap();
    fs::rename(&temp, spool.join(&names[1])).unwrap();
    let g: GetReport = waiting.join().unwrap().ok().document();
    assert!(g.from_prefetch, "{g:?}");
    assert_eq!((g.sha256.as_str(), g.prefetch), (want.as_str(), 0));
    assert_eq!(sha(&dest), want);
    assert!(!spool.join(&names[1]).exists());
    drop(lock);
}

/// A worker killed by SIGKILL leaves its copy of a segment under its temporary name (a get
/// finds and watches it by that name) and its lock file, unlocked: a get for that segment
/// serves the archive's copy, and the worker that get starts removes the leftover before it
/// spools anything.
#[test]
fn a_killed_workers_copy_is_never_served_and_the_next_worker_removes_it() {
    let (segs, names, dir, repo, spool) = archived_with_a_spool(3, "pgdr-wpk");
    let wal = segs.path().join("pg_wal");
    let bytes = fs::read(wal.join(&names[1])).unwrap();
    let left = spool.join(format!(".{}.pgdr-tmp.4194304.0", names[1]));
    fs::write(&left, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(spool.join(".lock"), "").unwrap();
    let dest = dir.path().join("RECOVERYXLOG");
    let g: GetReport = wa(&repo)
        .args(["get", "--prefetch", "1", "--spool"])
        .arg(&spool)
        .arg(&names[1])
        .arg(&dest)
        .run()
        .ok()
        .document();
    assert_eq!((g.from_prefetch, g.prefetch), (false, 1), "{g:?}");
    assert_eq!(g.sha256, sha(&wal.join(&names[1])));
    assert_eq!(sha(&dest), g.sha256);
    // The worker removes its lock file when done.
    let deadline = Instant::now() + Duration::from_secs(60);
    while spool.join(".lock").exists() {
        assert!(Instant::now() < deadline, "the worker never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut held: Vec<String> = fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    assert_eq!(held, [names[2].clone(), format!("{}.sha256", names[2])]);
}

/// Peak RSS in KiB of a command, from GNU time.
fn peak_kib(cmd: &mut Command) -> u64 {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no max RSS in {err}"))
}

fn timed(args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%M"]).arg(bin()).args(args);
    c
}

#[test]
fn push_and_get_of_a_1_gib_segment_stay_under_64_mib() {
    if !Path::new("/usr/bin/time").exists() {
        assert!(!pgdr_testkit::require_all(), "GNU time is missing");
        eprintln!("skipped: /usr/bin/time (GNU time) is missing");
        return;
    }
    // initdb writes the first segment, 1 GiB, with its real long page header.
    let c = Cluster::builder()
        .initdb_arg("--wal-segsize=1024")
        .init_only();
    let name = "000000010000000000000001";
    let seg: PathBuf = c.data.join("pg_wal").join(name);
    assert_eq!(fs::metadata(&seg).unwrap().len(), 1 << 30);
    let dir = short_tempdir("pgdr-wgb");
    let repo = dir.path().join("repo");
    init(&repo, Some(&c.data));
    let r = repo.as_os_str();
    let push = peak_kib(&mut timed(&[
        "push".as_ref(),
        seg.as_os_str(),
        "--repo".as_ref(),
        r,
    ]));
    let dest = dir.path().join("RECOVERYXLOG");
    let get = peak_kib(&mut timed(&[
        "get".as_ref(),
        name.as_ref(),
        dest.as_os_str(),
        "--repo".as_ref(),
        r,
    ]));
    assert_eq!(sha(&dest), sha(&seg));
    eprintln!("1 GiB segment: push peak RSS {push} KiB, get {get} KiB");
    assert!(
        push <= 64 << 10 && get <= 64 << 10,
        "push {push} KiB, get {get} KiB"
    );
}
