//! `show`: every effective setting with its source, every row as `pg_file_settings` has it,
//! and every error. Unknown names are errors when the server binary tells which names exist.

use crate::binary::Binary;
use crate::doc::{Entry, FileError, Setting, ShowReport};
use crate::files::Files;
use crate::load;
use crate::secrets::Masker;
use pgdr_core::Result;

/// The whole tree of `files`, with the names of the server binary of `pg_version` (else the
/// version beside the files, else the newest installed) when there is one.
///
/// # Errors
/// Exit 2: invalid UTF-8. Exit 1: an unreadable top file.
pub fn show(files: &Files, pg_version: Option<u32>, masker: Masker) -> Result<ShowReport> {
    let catalog = Binary::find(pg_version, &files.version_dirs())
        .and_then(|b| b.catalog())
        .ok();
    let l = files.load(catalog.as_ref().map(|c| c as &dyn load::Names))?;
    let mut settings = std::collections::BTreeMap::new();
    for e in &l.entries {
        if let (Some(n), None) = (&e.name, &e.error) {
            let (value, masked) = masker.show(e.setting.as_deref().unwrap_or(""));
            settings.insert(
                n.to_ascii_lowercase(),
                Setting {
                    value,
                    file: e.file.clone(),
                    line: e.line,
                    masked,
                },
            );
        }
    }
    let entries = l
        .entries
        .iter()
        .map(|e| {
            let shown = e.setting.as_deref().map(|s| masker.show(s));
            Entry {
                seqno: e.seqno,
                name: e.name.clone(),
                masked: shown.as_ref().is_some_and(|s| s.1),
                setting: shown.map(|s| s.0),
                file: e.file.clone(),
                line: e.line,
                applied: e.applied,
                error: e.error.clone(),
            }
        })
        .collect();
    let errors = l
        .errors()
        .map(|e| FileError {
            file: Some(e.file.clone()),
            line: Some(e.line),
            name: e.name.clone(),
            error: e.error.clone().unwrap_or_default(),
        })
        .collect();
    Ok(ShowReport {
        settings,
        entries,
        errors,
        files: l.files.keys().cloned().collect(),
    })
}
