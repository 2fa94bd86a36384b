//! Real copy-on-write filesystems on files: a zfs-fuse (or OpenZFS) pool and a btrfs loop mount.

use crate::{is_root, short_tempdir, Unavailable};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// A ZFS pool on a sparse file, destroyed on drop.
#[derive(Debug)]
pub struct ZfsPool {
    pub name: String,
    pub mountpoint: PathBuf,
    _dir: tempfile::TempDir,
    _machine: MachineZfsLock,
}

/// One test process at a time uses zfs-fuse's single daemon: several processes creating and
/// destroying pools at once have wedged it (every open() hanging). Within a process, tests
/// share the lock (as they always shared the daemon); the file lock is held while any of the
/// process's pools exists.
#[derive(Debug)]
struct MachineZfsLock;

static HOLDERS: std::sync::Mutex<Option<(std::fs::File, usize)>> = std::sync::Mutex::new(None);

impl MachineZfsLock {
    fn take() -> MachineZfsLock {
        let mut h = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        match h.as_mut() {
            Some((_, n)) => *n += 1,
            None => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open("/tmp/pgdr-testkit-zfs.lock")
                    .expect("open /tmp/pgdr-testkit-zfs.lock");
                f.lock().expect("lock /tmp/pgdr-testkit-zfs.lock");
                *h = Some((f, 1));
            }
        }
        MachineZfsLock
    }
}

impl Drop for MachineZfsLock {
    fn drop(&mut self) {
        let mut h = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, n)) = h.as_mut() {
            *n -= 1;
            if *n == 0 {
                *h = None; // closing the file releases the lock
            }
        }
    }
}

impl ZfsPool {
    /// Creates a pool of `size` (e.g. "2G"). Starts the zfs-fuse daemon when the kernel has no
    /// ZFS and none runs. Unavailable only when ZFS cannot exist here (no zpool command, not
    /// root, no /dev/fuse for zfs-fuse): install zfs-fuse with `make deps`.
    pub fn create(size: &str) -> Result<ZfsPool, Unavailable> {
        if !is_root() {
            return Err(Unavailable("ZFS pools need root".into()));
        }
        if !have("zpool") || !have("zfs") {
            return Err(Unavailable(
                "no zpool/zfs command (apt-get install zfs-fuse, or run make deps)".into(),
            ));
        }
        let machine = MachineZfsLock::take();
        ensure_zfs_daemon()?;
        let dir = tempfile::Builder::new()
            .prefix("pgdr-zfs-")
            .tempdir_in("/tmp")
            .map_err(|e| Unavailable(e.to_string()))?;
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("pgdrt{}x{n}", std::process::id());
        let img = dir.path().join("pool.img");
        run(Command::new("truncate").args(["-s", size]).arg(&img)).map_err(Unavailable)?;
        let mountpoint = PathBuf::from(format!("/{name}"));
        // zfs-fuse's daemon can be slow to accept its first request; retry briefly.
        let mut last = String::new();
        for _ in 0..20 {
            match run(Command::new("zpool")
                .args(["create", "-f", "-m"])
                .arg(&mountpoint)
                .arg(&name)
                .arg(&img))
            {
                Ok(_) => {
                    return Ok(ZfsPool {
                        name,
                        mountpoint,
                        _dir: dir,
                        _machine: machine,
                    })
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("zpool create failed although ZFS is available: {last}");
    }

    /// Creates `pool/name` (mounted at `/pool/name`) and returns its mountpoint.
    pub fn create_dataset(&self, name: &str) -> PathBuf {
        let ds = format!("{}/{name}", self.name);
        run(Command::new("zfs").args(["create", "-p", &ds])).unwrap_or_else(|e| panic!("{e}"));
        self.mountpoint.join(name)
    }

    /// The dataset name for a path below the pool's mountpoint.
    pub fn dataset(&self, name: &str) -> String {
        format!("{}/{name}", self.name)
    }
}

impl Drop for ZfsPool {
    fn drop(&mut self) {
        for _ in 0..10 {
            if run(Command::new("zpool").args(["destroy", "-f", &self.name])).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = std::fs::remove_dir(&self.mountpoint);
    }
}

/// Whether the kernel has ZFS (OpenZFS) or a zfs-fuse daemon runs; starts zfs-fuse if not.
fn ensure_zfs_daemon() -> Result<(), Unavailable> {
    if Path::new("/dev/zfs").exists() && !have("zfs-fuse") {
        return Ok(());
    }
    // A daemon answers on its socket: it may run outside this PID namespace, where pgrep
    // cannot see it, and a second one would fail to start.
    let answers = || {
        Command::new("zpool")
            .arg("list")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if answers() {
        return Ok(());
    }
    if !have("zfs-fuse") {
        return Err(Unavailable(
            "no kernel ZFS and no zfs-fuse (apt-get install zfs-fuse)".into(),
        ));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(Unavailable(
            "zfs-fuse needs /dev/fuse, which this machine lacks".into(),
        ));
    }
    // It daemonizes; a second start while one is starting fails harmlessly.
    let _ = Command::new("zfs-fuse").status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if answers() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("zfs-fuse was started but does not answer `zpool list`");
}

/// A btrfs filesystem on a loop-mounted image file, unmounted on drop.
#[derive(Debug)]
pub struct BtrfsMount {
    pub path: PathBuf,
    dir: tempfile::TempDir,
}

impl BtrfsMount {
    /// Creates and mounts a filesystem of `size` (at least "256M").
    pub fn create(size: &str) -> Result<BtrfsMount, Unavailable> {
        if !is_root() {
            return Err(Unavailable("loop mounts need root".into()));
        }
        if !have("mkfs.btrfs") || !have("btrfs") {
            return Err(Unavailable(
                "no mkfs.btrfs (apt-get install btrfs-progs, or run make deps)".into(),
            ));
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err(Unavailable(
                "this machine has no loop devices (/dev/loop-control)".into(),
            ));
        }
        let dir = short_tempdir("pgdr-btrfs-");
        let img = dir.path().join("fs.img");
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        run(Command::new("truncate").args(["-s", size]).arg(&img))
            .unwrap_or_else(|e| panic!("{e}"));
        run(Command::new("mkfs.btrfs").arg("-q").arg(&img)).unwrap_or_else(|e| panic!("{e}"));
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&path))
        .unwrap_or_else(|e| panic!("{e}"));
        Ok(BtrfsMount { path, dir })
    }

    /// Creates a subvolume and returns its path.
    pub fn subvolume(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        run(Command::new("btrfs").args(["subvolume", "create"]).arg(&p))
            .unwrap_or_else(|e| panic!("{e}"));
        p
    }
}

impl Drop for BtrfsMount {
    fn drop(&mut self) {
        if run(Command::new("umount").arg(&self.path)).is_err() {
            let _ = run(Command::new("umount").arg("-l").arg(&self.path));
        }
        let _ = &self.dir;
    }
}
