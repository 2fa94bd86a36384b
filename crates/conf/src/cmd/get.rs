//! `get`: the effective value of each name, with its file and line (includes followed,
//! postgresql.auto.conf last), or null.

use super::check_name;
use crate::doc::{GetReport, Setting};
use crate::files::Files;
use crate::secrets::Masker;
use pgdr_core::Result;

/// The effective values of `names`.
///
/// # Errors
/// Exit 2: a name that is not a parameter name, invalid UTF-8. Exit 1: unreadable files.
pub fn get(files: &Files, names: &[String], masker: Masker) -> Result<GetReport> {
    for n in names {
        check_name(n)?;
    }
    let l = files.load(None)?;
    // The values are still the files' last word, but a file with a syntax error makes the
    // server apply none of them on reload (and refuse to start): said on stderr, once each,
    // without changing the document scripts read.
    for e in l.errors() {
        let error = e.error.as_deref().unwrap_or("error");
        let what = if error.contains("syntax error") {
            "the server applies no change from the configuration files while one has a syntax error (and does not start)"
        } else {
            "the server does not use this line"
        };
        pgdr_core::runner::note(format!(
            "{}:{}: {error}: {what}; conf-edit show lists every error",
            e.file, e.line
        ));
    }
    let settings = names
        .iter()
        .map(|n| {
            let s = l.effective(n).map(|e| {
                let (value, masked) = masker.show(e.setting.as_deref().unwrap_or(""));
                Setting {
                    value,
                    file: e.file.clone(),
                    line: e.line,
                    masked,
                }
            });
            (n.clone(), s)
        })
        .collect();
    Ok(GetReport { settings })
}
