//! `check`: the lines the server would reject the file for, and the warnings (rules that can
//! never match, weak methods open beyond this host, …).

use crate::doc::{CheckReport, LineErrorDoc};
use crate::file::HbaRules;

/// The report on `file`; `ok` is false when the server would refuse to load it.
pub fn check(file: &HbaRules) -> CheckReport<'_> {
    let mut errors = super::list::errors(file);
    if file.errors.is_empty() && file.rules.is_empty() {
        errors.push(LineErrorDoc {
            file: file.path.display().to_string(),
            line: None,
            message: format!(
                "configuration file \"{}\" contains no entries",
                file.path.display()
            ),
        });
    }
    CheckReport {
        file: file.path.display().to_string(),
        pg_version: file.version,
        ok: errors.is_empty(),
        rules: file.rules.len(),
        errors,
        warnings: crate::warnings::warnings(&file.rules, file.version),
    }
}
