//! Running the zfs and btrfs commands: stdout on success, one clear line on failure.

use pgdr_core::{Error, Result};
use std::process::Command;

/// Runs `program args…` in the C locale, returning stdout.
///
/// # Errors
/// The program is not installed or cannot start, or it failed: the first line of its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("the {program} command is not installed")
            } else {
                pgdr_core::error::clean_io_message(&e.to_string())
            };
            Error::failed(format!("cannot run {program}")).because(why)
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string();
    Err(Error::failed(format!("{program} {} failed", args.first().unwrap_or(&""))).because(first))
}

/// Whether `program` is installed (a file of that name on PATH).
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}
