//! `--print-config`: each effective setting of the run and where it came from, one document.

use super::apply::{configurable, secret, Applied};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches};
use std::collections::BTreeMap;
use std::ffi::OsString;

/// What `--print-config` prints: the settings the run would use, and where each came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrintedConfig {
    /// The configuration file read ($PGDR_CONFIG, else /etc/pgdr/pgdr.toml), or null when
    /// there is none.
    #[serde(deserialize_with = "crate::doc::required")]
    pub config_file: Option<String>,
    /// The command the settings are for: the tool, then the subcommands given (["wal-archive",
    /// "push"]).
    pub command: Vec<String>,
    /// Every long option of that command (the tool's and its subcommands'), by name.
    pub settings: BTreeMap<String, Setting>,
}

impl crate::Document for PrintedConfig {
    const PRODUCERS: &'static [&'static str] = crate::TOOLS;
}

/// One option's effective value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The value: a string; a list of strings for an option that takes several; true or
    /// false for a switch; a number for a counted flag; null when unset. A password (in a
    /// conninfo, or an option named for a secret) shows as ********.
    pub value: serde_json::Value,
    /// Where the value came from: the command line, an environment variable, the
    /// configuration file, the tool's built-in default, or nowhere.
    pub source: Source,
    /// For "env": the variable's name.
    #[serde(deserialize_with = "crate::doc::required")]
    pub env: Option<String>,
    /// For "file": FILE:LINE [SECTION] of the key.
    #[serde(deserialize_with = "crate::doc::required")]
    pub file: Option<String>,
}

/// Where a value came from, in the order they win: flag, env, file, default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
    Unset,
}

/// The document for `argv` (`--print-config` anywhere before `--`).
pub fn print(applied: &Applied, argv: &[OsString]) -> PrintedConfig {
    // Relaxed parsing ignores errors; without matches nothing is shown.
    let (m, in_effect) = applied.parse(argv, true).unwrap_or_default();
    let levels = applied.levels();
    let mut settings = BTreeMap::new();
    for (level, c) in levels.iter().enumerate() {
        let Some(lm) = applied.matches_at(&m, level) else {
            continue;
        };
        for arg in c
            .get_arguments()
            .filter(|a| configurable(a) && !a.is_hide_set())
        {
            let id = arg.get_id().as_str();
            let long = arg.get_long().unwrap_or(id);
            let from_file = applied
                .supplied
                .iter()
                .enumerate()
                .find(|(k, s)| s.level == level && s.id == id && in_effect.contains(k))
                .map(|(_, s)| s);
            let source = match lm.value_source(id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env,
                Some(ValueSource::DefaultValue) if from_file.is_some() => Source::File,
                Some(ValueSource::DefaultValue) => Source::Default,
                _ => Source::Unset,
            };
            let value = match source {
                Source::Unset => serde_json::Value::Null,
                _ => value_of(lm, id, arg.get_action(), secret(long)),
            };
            settings.insert(
                long.to_string(),
                Setting {
                    value,
                    source,
                    env: (source == Source::Env)
                        .then(|| arg.get_env().map(|e| e.to_string_lossy().into_owned()))
                        .flatten(),
                    file: match (source, from_file, &applied.file) {
                        (Source::File, Some(s), Some(f)) => {
                            Some(format!("{}:{} {}", f.display(), s.line, s.section))
                        }
                        _ => None,
                    },
                },
            );
        }
    }
    PrintedConfig {
        config_file: applied.file.as_ref().map(|p| p.display().to_string()),
        command: levels.iter().map(|c| c.get_name().to_string()).collect(),
        settings,
    }
}

fn value_of(m: &ArgMatches, id: &str, action: &ArgAction, secret: bool) -> serde_json::Value {
    use serde_json::Value as J;
    match action {
        ArgAction::SetTrue | ArgAction::SetFalse => J::Bool(
            m.try_get_one::<bool>(id)
                .ok()
                .flatten()
                .copied()
                .unwrap_or(false),
        ),
        ArgAction::Count => J::from(m.try_get_one::<u8>(id).ok().flatten().copied().unwrap_or(0)),
        _ => {
            let Some(raw) = m.get_raw(id) else {
                return J::Null;
            };
            let words: Vec<J> = raw
                .map(|w| {
                    let w = w.to_string_lossy();
                    J::String(if secret {
                        crate::conn::MASK.to_string()
                    } else {
                        crate::conn::redact_conninfo(&w)
                    })
                })
                .collect();
            if matches!(action, ArgAction::Append) || words.len() > 1 {
                J::Array(words)
            } else {
                words.into_iter().next().unwrap_or(J::Null)
            }
        }
    }
}
