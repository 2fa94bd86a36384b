//! `pgdr-docgen write DIR` writes one man page per tool; `pgdr-docgen check DIR` exits 1 when
//! a committed page differs from what the code generates (or one is missing or extra).
//! `pgdr-docgen completions SHAREDIR` writes the bash, zsh and fish completions under a
//! `share` directory; `pgdr-docgen units DIR BINDIR` writes the example systemd units for
//! tools installed in BINDIR.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.as_slice() {
        [m, d] if m == "write" || m == "check" => man(m == "write", Path::new(d)),
        [m, d] if m == "completions" => write_all(
            Path::new(d),
            pgdr_docgen::completions()
                .into_iter()
                .map(|(p, t)| (p, t, 0o644)),
        ),
        [m, d, bindir] if m == "units" => write_all(
            Path::new(d),
            pgdr_docgen::units(bindir)
                .into_iter()
                .map(|(p, t)| (p.to_string(), t, 0o644)),
        ),
        _ => Err((
            2,
            "usage error: expected 'write DIR', 'check DIR', 'completions SHAREDIR' or 'units DIR BINDIR'"
                .to_string(),
        )),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("pgdr-docgen: {msg}");
            ExitCode::from(code)
        }
    }
}

/// Writes each (path under `dir`, contents, mode).
fn write_all(
    dir: &Path,
    files: impl Iterator<Item = (String, String, u32)>,
) -> Result<(), (u8, String)> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, text, mode) in files {
        let file = dir.join(rel);
        let r = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&file, text))
            .and_then(|_| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)));
        r.map_err(|e| (1, format!("cannot write {}: {e}", file.display())))?;
    }
    Ok(())
}

fn man(write: bool, dir: &Path) -> Result<(), (u8, String)> {
    let mut drift = Vec::new();
    let mut expected = Vec::new();
    for t in pgdr_docgen::TOOLS {
        let page = pgdr_core::man::render(pgdr_docgen::command(t), t.man);
        let name = format!("{}.1", t.name);
        if write {
            write_all(dir, std::iter::once((name.clone(), page, 0o644)))?;
        } else if std::fs::read_to_string(dir.join(&name)).ok().as_deref() != Some(page.as_str()) {
            drift.push(dir.join(&name).display().to_string());
        }
        expected.push(name);
    }
    if !write {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".1") && !expected.contains(&name) {
                drift.push(format!("{} (no such tool)", e.path().display()));
            }
        }
        if !drift.is_empty() {
            return Err((
                1,
                format!(
                    "man pages differ from the code: {} (run 'make man' and commit)",
                    drift.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
