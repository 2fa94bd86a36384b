//! Keeping passwords out of the process title (SPEC "Conventions" 5).
//!
//! `ps` shows every user the command line, which Linux reads from the process's own argument
//! memory (`/proc/PID/cmdline`). When `-d`/`--dbname` carries a password, the tool first
//! copies its arguments and then overwrites that memory in place with the password masked,
//! as PostgreSQL's own processes rewrite their title (src/backend/utils/misc/ps_status.c):
//! no second process, and the password is visible only for the instant between exec and
//! the first instruction of `main`.
//!
//! The argument memory is found as Rust's standard library finds it on glibc: glibc calls the
//! functions of `.init_array` with `main`'s argc and argv. Where the C library does not
//! (another libc), the tool re-executes itself instead, with the password masked on its
//! command line and the real value handed over in an environment variable that only the same
//! user (and root) can read and that is removed before anything else runs.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// Carries `INDEX=HEXVALUE,...` of the arguments that were masked (hex: an environment value
/// cannot hold every byte an argument can), for the re-executed process.
const HIDDEN: &str = "PGDR_HIDDEN_ARGS";

/// The positions of `-d`/`--dbname` values in `args`, with the value itself.
fn dsn_values(args: &[OsString]) -> Vec<(usize, String, String)> {
    // (index, prefix kept on the argument, value)
    let mut out = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let Some(a) = args[i].to_str() else {
            i += 1;
            continue;
        };
        if a == "--" {
            break;
        }
        if a == "-d" || a == "--dbname" {
            if let Some(v) = args.get(i + 1).and_then(|v| v.to_str()) {
                out.push((i + 1, String::new(), v.to_string()));
            }
            i += 2;
            continue;
        }
        for prefix in ["--dbname=", "-d"] {
            if let Some(v) = a.strip_prefix(prefix) {
                let looks_like_a_flag = prefix == "-d" && v.starts_with('-');
                if !v.is_empty() && !looks_like_a_flag {
                    out.push((i, prefix.to_string(), v.to_string()));
                }
                break;
            }
        }
        i += 1;
    }
    out
}

/// The arguments as the user gave them, with every password in `-d` masked in the process
/// title. Called first thing in `main` (before any thread starts). Where the title cannot be
/// rewritten in place, this re-executes the tool (and does not return unless that fails, in
/// which case the run goes on with the arguments as they are).
pub fn args_without_visible_passwords() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if let Some(hidden) = std::env::var_os(HIDDEN) {
        // Removed at once so that no child (pg_ctl, psql, postgres) inherits it.
        std::env::remove_var(HIDDEN);
        let text = hidden.to_string_lossy().into_owned();
        for item in text.split(',') {
            let Some((idx, hex)) = item.split_once('=') else {
                continue;
            };
            let Some(val) = unhex(hex) else {
                continue;
            };
            if let Ok(i) = idx.parse::<usize>() {
                if let Some((_, prefix, _)) = dsn_values(&args).into_iter().find(|(j, ..)| *j == i)
                {
                    args[i] = format!("{prefix}{val}").into();
                }
            }
        }
        return args;
    }
    let secret: Vec<_> = dsn_values(&args)
        .into_iter()
        .filter(|(_, _, v)| crate::conn::redact_conninfo(v) != *v)
        .collect();
    if secret.is_empty() {
        return args;
    }
    let masked: Vec<(usize, String)> = secret
        .iter()
        .map(|(i, prefix, v)| (*i, format!("{prefix}{}", crate::conn::redact_conninfo(v))))
        .collect();
    // `args` was copied above: the arguments stay as given for the run.
    if masked
        .iter()
        .all(|(i, m)| title::overwrite(*i, &args[*i], m.as_bytes()))
    {
        return args;
    }
    let Ok(exe) = std::env::current_exe() else {
        return args;
    };
    let mut shown = args.clone();
    let mut carried = String::new();
    for ((i, _, v), (_, m)) in secret.iter().zip(&masked) {
        shown[*i] = m.into();
        if !carried.is_empty() {
            carried.push(',');
        }
        carried.push_str(&format!("{i}={}", hex(v)));
    }
    let mut cmd = std::process::Command::new(exe);
    cmd.arg0(&shown[0]).args(&shown[1..]).env(HIDDEN, carried);
    let _err = cmd.exec();
    args
}

/// The process's own argument memory, rewritten in place.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod title {
    use std::ffi::{c_char, c_int, CStr, OsString};
    use std::os::unix::ffi::OsStrExt;
    use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};

    static ARGC: AtomicIsize = AtomicIsize::new(0);
    static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());

    /// glibc calls this with `main`'s arguments before `main` (std relies on the same).
    #[used]
    #[link_section = ".init_array"]
    static CAPTURE: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture;

    extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, _envp: *mut *mut c_char) {
        ARGC.store(argc as isize, Ordering::Relaxed);
        ARGV.store(argv, Ordering::Relaxed);
    }

    /// Overwrites argument `i`, which must still read `expected`, with `text`: cut to the
    /// argument's length, the rest filled with NULs (`ps` shows them as spaces). False when
    /// the argument memory is not known or does not hold `expected`.
    pub(super) fn overwrite(i: usize, expected: &OsString, text: &[u8]) -> bool {
        let argv = ARGV.load(Ordering::Relaxed);
        if argv.is_null() || i as isize >= ARGC.load(Ordering::Relaxed) {
            return false;
        }
        // SAFETY: glibc passed argv with argc valid entries, each a NUL-terminated string in
        // writable memory that lives as long as the process; `i < argc`. The caller runs
        // before any other thread exists, so nothing reads the string while it changes, and
        // the writes stay within the string's own bytes (its terminating NUL is kept).
        unsafe {
            let p = *argv.add(i);
            if p.is_null() {
                return false;
            }
            let len = CStr::from_ptr(p).to_bytes().len();
            if CStr::from_ptr(p).to_bytes() != expected.as_bytes() {
                return false;
            }
            let n = text.len().min(len);
            std::ptr::copy_nonoverlapping(text.as_ptr(), p.cast::<u8>(), n);
            std::ptr::write_bytes(p.cast::<u8>().add(n), 0, len - n);
        }
        true
    }
}

/// Without glibc's `.init_array` arguments the title cannot be found: re-execute instead.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod title {
    pub(super) fn overwrite(_: usize, _: &std::ffi::OsString, _: &[u8]) -> bool {
        false
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(h: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..h.len())
        .step_by(2)
        .map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn finds_every_dbname_form() {
        let a = os(&[
            "t",
            "-d",
            "host=a password=x",
            "--dbname=b",
            "-dc",
            "--pretty",
            "--dbname",
            "e",
        ]);
        let v: Vec<_> = dsn_values(&a).into_iter().collect();
        assert_eq!(
            v,
            vec![
                (2, "".into(), "host=a password=x".into()),
                (3, "--dbname=".into(), "b".into()),
                (4, "-d".into(), "c".into()),
                (7, "".into(), "e".into()),
            ]
        );
        assert!(dsn_values(&os(&["t", "--", "-d", "x"])).is_empty());
        assert_eq!(
            unhex(&hex("pässword='a b'")).as_deref(),
            Some("pässword='a b'")
        );
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn the_title_is_only_rewritten_where_it_says_what_we_expect() {
        // The test binary's own argument 0 is its path: a wrong expectation changes nothing.
        let arg0 = std::env::args_os().next().unwrap();
        assert!(!title::overwrite(0, &OsString::from("not-this"), b"x"));
        assert_eq!(std::env::args_os().next().unwrap(), arg0);
        assert!(!title::overwrite(usize::MAX >> 1, &arg0, b"x"));
    }
}
