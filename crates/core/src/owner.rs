//! Running things as the data directory's owner: PostgreSQL refuses to run as root.

use crate::error::{clean_io_message, Error, Result};
use std::ffi::CStr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An OS user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: PathBuf,
}

/// The user with this uid, from the password database.
pub fn user_by_uid(uid: u32) -> Option<User> {
    lookup(|pwd, buf, result| {
        // SAFETY: buffers are valid for the sizes given; getpwuid_r writes only into them.
        unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr().cast(), buf.len(), result) }
    })
}

/// The user with this name, from the password database.
pub fn user_by_name(name: &str) -> Option<User> {
    let c = std::ffi::CString::new(name).ok()?;
    lookup(|pwd, buf, result| {
        // SAFETY: `c` is NUL-terminated; buffers are valid for the sizes given.
        unsafe { libc::getpwnam_r(c.as_ptr(), pwd, buf.as_mut_ptr().cast(), buf.len(), result) }
    })
}

/// One password-database lookup through `call` (getpwuid_r or getpwnam_r).
fn lookup(
    call: impl FnOnce(&mut libc::passwd, &mut [u8], &mut *mut libc::passwd) -> libc::c_int,
) -> Option<User> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = call(&mut pwd, &mut buf, &mut result);
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name and pw_dir point to NUL-terminated strings inside `buf`.
    let (name, home) = unsafe {
        (
            CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned(),
        )
    };
    Some(User {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        name,
        home: PathBuf::from(home),
    })
}

/// The user this process runs as (effective uid).
pub fn current_user() -> Option<User> {
    // SAFETY: geteuid cannot fail.
    user_by_uid(unsafe { libc::geteuid() })
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The owner of `path` (a data directory), with a clear refusal when that is root.
pub fn data_dir_owner(path: &Path) -> Result<User> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::failed(format!("cannot inspect {}", path.display()))
            .because(clean_io_message(&e.to_string()))
    })?;
    if meta.uid() == 0 {
        return Err(
            Error::failed(format!("{} is owned by root", path.display()))
                .because("PostgreSQL refuses to run as root")
                .hint("chown the data directory to the postgres OS user"),
        );
    }
    Ok(user_by_uid(meta.uid()).unwrap_or(User {
        uid: meta.uid(),
        gid: meta.gid(),
        name: meta.uid().to_string(),
        home: PathBuf::from("/"),
    }))
}

/// A command that runs as `user` when we are root (and as ourselves otherwise), with that
/// user's HOME, USER and LOGNAME, from a directory the user can enter.
pub fn command_as(user: &User, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    if is_root() && user.uid != 0 {
        // std drops the supplementary groups (setgroups(0)) before setuid when root.
        cmd.uid(user.uid).gid(user.gid);
        cmd.env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .current_dir("/");
    }
    cmd
}

/// Changes the owner of `path` and everything below it (as root), without following symlinks.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    fn walk(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
        let meta = std::fs::symlink_metadata(p)?;
        if meta.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    walk(path, uid, gid).map_err(|e| {
        Error::failed(format!("cannot change the owner of {}", path.display()))
            .because(clean_io_message(&e.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_user_is_known() {
        let u = current_user().unwrap();
        assert!(!u.name.is_empty());
        assert_eq!(user_by_name(&u.name), Some(u));
        assert_eq!(user_by_name("no such user here"), None);
    }

    #[test]
    fn root_owned_data_dir_is_refused_and_others_are_their_owners() {
        // /proc/1 belongs to root on every Linux system, whoever runs the test.
        let e = data_dir_owner(Path::new("/proc/1")).unwrap_err();
        assert!(e.to_string().contains("refuses to run as root"), "{e}");
        assert_eq!(e.exit_code(), 1);
        let d = tempfile::tempdir().unwrap();
        if is_root() {
            // As root, a directory given to another user is that user's.
            std::os::unix::fs::chown(d.path(), Some(65534), Some(65534)).unwrap();
            assert_eq!(data_dir_owner(d.path()).unwrap().uid, 65534);
        } else {
            let me = current_user().unwrap();
            let owner = data_dir_owner(d.path()).unwrap();
            assert_eq!((owner.uid, owner.name), (me.uid, me.name));
        }
        assert!(data_dir_owner(&d.path().join("missing")).is_err());
    }
}
