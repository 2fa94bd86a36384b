//! `show`: every effective setting with its source, every row as `pg_file_settings` has it,
//! and every error. Unknown names are errors when the server binary tells which names exist;
//! values it refuses are errors when it can be run (`postgres -C`, as `conf-edit check` does).

use crate::binary::{self, Binary};
use crate::doc::{Entry, FileError, Setting, ShowReport};
use crate::files::Files;
use crate::load;
use crate::secrets::Masker;
use pgdr_core::Result;
use std::path::Path;

/// The whole tree of `files`, with the names of the server binary of `pg_version` (else the
/// version beside the files, else the newest installed) when there is one.
///
/// # Errors
/// Exit 2: invalid UTF-8. Exit 1: an unreadable top file.
pub fn show(files: &Files, pg_version: Option<u32>, masker: Masker) -> Result<ShowReport> {
    let binary = Binary::find(pg_version, &files.version_dirs()).ok();
    let catalog = binary.as_ref().and_then(|b| b.catalog().ok());
    let mut l = files.load(catalog.as_ref().map(|c| c as &dyn load::Names))?;
    if let Some(b) = &binary {
        refuse_bad_values(&mut l, b, files);
    }
    let mut settings = std::collections::BTreeMap::new();
    for e in &l.entries {
        // An earlier duplicate stays ignored when the later value is refused, as in the server.
        if let (Some(n), None, false) = (&e.name, &e.error, e.ignore) {
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

/// Marks the applied rows whose value the server binary refuses the way `pg_file_settings`
/// does: not applied, "setting could not be applied" (ProcessConfigFileInternal, when
/// set_config_option fails). The other rows keep their state, as there; at its next start the
/// server would refuse to start at all ("configuration file … contains errors"). Without a
/// binary that can be run, values are left unchecked (`conf-edit check` says why).
fn refuse_bad_values(l: &mut load::Loaded, b: &Binary, files: &Files) {
    let Ok(user) = binary::run_as(files.pgdata.as_deref(), Some(Path::new(&files.target))) else {
        return;
    };
    let settings: Vec<(String, String)> = l
        .entries
        .iter()
        .filter(|e| e.applied)
        .filter_map(|e| Some((e.name.clone()?, e.setting.clone()?)))
        .collect();
    if settings.is_empty() {
        return;
    }
    let Ok(verdict) = b.check(&settings, &user) else {
        return;
    };
    for (name, msg) in &verdict.problems {
        // Unknown names were the catalog's to judge; a name it knew is not refused here.
        if msg.starts_with("unrecognized configuration parameter") {
            continue;
        }
        for e in l.entries.iter_mut().filter(|e| e.applied) {
            if e.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
            {
                e.applied = false;
                e.error = Some("setting could not be applied".into());
            }
        }
    }
}
