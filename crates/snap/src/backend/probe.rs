//! Which filesystem a path is on, from the kernel: statfs(2) first, and for a FUSE mount the
//! mount table's type (zfs-fuse mounts are `fuse.zfs`). No zfs or btrfs command is run, so a
//! command that is installed but not working (no zfs-fuse daemon, no kernel module) never
//! decides anything for a data directory that is not on its filesystem.

use std::path::Path;

/// The filesystems snapshots can be taken on without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    Zfs,
    Btrfs,
    /// Anything else (ext4, xfs, tmpfs, …): the copy backend.
    Other,
}

/// statfs f_type values (linux/magic.h; ZFS's from OpenZFS's zfs_vfsops).
const BTRFS_SUPER_MAGIC: u64 = 0x9123_683E;
const ZFS_SUPER_MAGIC: u64 = 0x2FC1_2FC1;
const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;

impl Filesystem {
    /// The filesystem `path` is on (Other when it cannot be told).
    pub fn of(path: &Path) -> Filesystem {
        let Ok(st) = rustix::fs::statfs(path) else {
            return Filesystem::Other;
        };
        #[allow(clippy::unnecessary_cast)] // f_type's type differs between targets
        match st.f_type as u64 {
            BTRFS_SUPER_MAGIC => Filesystem::Btrfs,
            ZFS_SUPER_MAGIC => Filesystem::Zfs,
            FUSE_SUPER_MAGIC => match std::fs::read_to_string("/proc/self/mountinfo") {
                Ok(mi) if mount_type(&mi, path).as_deref() == Some("fuse.zfs") => Filesystem::Zfs,
                _ => Filesystem::Other,
            },
            _ => Filesystem::Other,
        }
    }
}

/// The type of the mount holding `path` (canonical): the entry of /proc/self/mountinfo with
/// the longest mount point that contains it.
pub fn mount_type(mountinfo: &str, path: &Path) -> Option<String> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let mp = super::discover::unescape(f.get(4)?);
            let fstype = f.get(sep + 1)?;
            Path::new(path)
                .starts_with(&mp)
                .then(|| (mp.len(), fstype.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t)
}

/// The device id of a path (btrfs gives each subvolume its own).
pub fn dev_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zfs_fuse_mounts_are_told_apart() {
        let mi = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
43 22 0:40 / /tank rw,relatime - fuse.zfs tank rw,user_id=0
44 43 0:41 / /tank/pg rw,relatime - fuse.zfs tank/pg rw,user_id=0
45 22 0:42 / /tankx rw,relatime - fuse.sshfs h:/ rw
";
        assert_eq!(
            mount_type(mi, Path::new("/tank/pg/data")).unwrap(),
            "fuse.zfs"
        );
        assert_eq!(
            mount_type(mi, Path::new("/tankx/data")).unwrap(),
            "fuse.sshfs"
        );
        assert_eq!(mount_type(mi, Path::new("/var/lib/pg")).unwrap(), "ext4");
        assert_eq!(Filesystem::of(Path::new("/proc")), Filesystem::Other);
    }
}
