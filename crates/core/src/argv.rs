//! Keeping passwords out of the process title (SPEC "Conventions" 5).
//!
//! `ps` shows every user the command line. When `-d`/`--dbname` carries a password, the tool
//! re-executes itself at once with the password masked on its command line and the real
//! value handed over in an environment variable, which only the same user (and root) can
//! read; the new process takes the value back and removes the variable before anything
//! else runs, so no child inherits it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// Carries `INDEX=HEXVALUE,...` of the arguments that were masked (hex: an environment value
/// cannot hold every byte an argument can).
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

/// The arguments as the user gave them. On the first run with a visible password this
/// re-executes the tool (and does not return unless that fails, in which case the run goes
/// on with the arguments as they are).
pub fn args_without_visible_passwords() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if let Some(hidden) = std::env::var_os(HIDDEN) {
        // Removed at once so that no child (pg_ctl, psql, postgres) inherits it; the runner
        // calls this before it starts any thread.
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
    let Ok(exe) = std::env::current_exe() else {
        return args;
    };
    let mut masked = args.clone();
    let mut carried = String::new();
    for (i, prefix, v) in &secret {
        masked[*i] = format!("{prefix}{}", crate::conn::redact_conninfo(v)).into();
        if !carried.is_empty() {
            carried.push(',');
        }
        carried.push_str(&format!("{i}={}", hex(v)));
    }
    let mut cmd = std::process::Command::new(exe);
    cmd.arg0(&masked[0]).args(&masked[1..]).env(HIDDEN, carried);
    let _err = cmd.exec();
    args
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
}
