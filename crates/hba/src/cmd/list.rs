//! `list`: every rule the server would load (included files too) and every line it rejects.

use crate::doc::{HbaList, LineErrorDoc, Rules};
use crate::file::HbaRules;

/// The list of `file`, borrowing from it (a 100,000-line file is not copied); secrets
/// masked unless `show_secrets`.
pub fn list(file: &HbaRules, show_secrets: bool) -> HbaList<'_> {
    HbaList {
        file: file.path.to_string_lossy(),
        pg_version: file.version,
        rules: Rules::Parsed(&file.rules, show_secrets),
        errors: errors(file),
    }
}

/// The lines the server rejects, as documents.
pub fn errors(file: &HbaRules) -> Vec<LineErrorDoc> {
    file.errors
        .iter()
        .map(|e| LineErrorDoc {
            file: e.file.display().to_string(),
            line: Some(e.line),
            message: e.message.clone(),
        })
        .collect()
}
