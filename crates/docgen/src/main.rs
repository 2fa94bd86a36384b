//! `pgdr-docgen write DIR` writes one man page per tool; `pgdr-docgen check DIR` exits 1 when
//! a committed page differs from what the code generates (or one is missing or extra).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, dir) = match args.as_slice() {
        [m, d] if m == "write" || m == "check" => (m.as_str(), Path::new(d)),
        _ => {
            eprintln!("pgdr-docgen: usage error: expected 'write DIR' or 'check DIR'");
            return ExitCode::from(2);
        }
    };
    let mut drift = Vec::new();
    let mut expected = Vec::new();
    for t in pgdr_docgen::tools() {
        let page = pgdr_core::man::render(pgdr_docgen::command(&t), t.man);
        let file = dir.join(format!("{}.1", t.name));
        expected.push(format!("{}.1", t.name));
        if mode == "write" {
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&file, page)) {
                eprintln!("pgdr-docgen: cannot write {}: {e}", file.display());
                return ExitCode::from(1);
            }
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(page.as_str()) {
            drift.push(file.display().to_string());
        }
    }
    if mode == "check" {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".1") && !expected.contains(&name) {
                drift.push(format!("{} (no such tool)", e.path().display()));
            }
        }
        if !drift.is_empty() {
            eprintln!(
                "pgdr-docgen: man pages differ from the code: {} (run 'make man' and commit)",
                drift.join(", ")
            );
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
