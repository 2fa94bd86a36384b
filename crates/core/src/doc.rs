//! The JSON documents tools print and read: one serde type per document, defined once in the
//! producer's crate, printed by [`crate::Outcome::doc`] and read back from stdin by
//! [`read_stdin`] when the user passes `-`.
//!
//! A document on stdin is the producer's type or nothing: its `"tool"` must be one of the
//! type's producers, and every other key must be a field of the type (`deny_unknown_fields`
//! on every document type), so a renamed field breaks the build, not a pipeline at 3 a.m.
//! Every failure is a usage error (exit 2) naming the field.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Read;

/// A document a tool prints (and, for some, another tool reads with `-`).
///
/// Implementations are serde structs with `#[serde(deny_unknown_fields)]` and a
/// [`schemars::JsonSchema`] derive: the man page's JSON OUTPUT section is rendered from the
/// schema (field doc comments become its text), so the page cannot drift from the output.
pub trait Document: Serialize + DeserializeOwned + schemars::JsonSchema {
    /// The tools whose output this is (`"tool"` of the document), e.g. `["snap-prune"]`.
    const PRODUCERS: &'static [&'static str];

    /// Whether the producer ran as a dry run: a reader that acts on the document must then be
    /// a dry run too (SPEC "Pipelines are safe end to end").
    fn dry_run(&self) -> bool {
        false
    }

    /// Writes the document as compact JSON: `serde_json::to_writer`, unless the document has
    /// a faster writer of its own (hba-edit's 100,000-rule list), which must write exactly
    /// the same bytes. [`crate::Outcome::document_streamed`] prints through it.
    ///
    /// # Errors
    /// As `serde_json::to_writer`: the writer's I/O errors, a value that does not serialize.
    fn write_json(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(w, self)
    }
}

/// Reads one document of type `T` from stdin (compact or `--pretty`).
///
/// # Errors
/// Usage errors (exit 2): empty, truncated or malformed input, a document of another tool, a
/// missing, unknown or mistyped field (named with its path, e.g. `oldest_kept.wal_start`).
pub fn read_stdin<T: Document>() -> Result<T> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| Error::usage("cannot read JSON from stdin").because(e))?;
    parse::<T>(&buf)
}

/// The parsing half of [`read_stdin`].
///
/// # Errors
/// As [`read_stdin`].
pub fn parse<T: Document>(text: &str) -> Result<T> {
    let expected = producers::<T>();
    let hint = format!("pipe in the output of {expected}");
    let map = parse_object(text, &hint)?;
    let (map, _tool) = strip_envelope(map, T::PRODUCERS, &expected, &hint)?;
    from_map(map, &expected, &hint)
}

/// Parses `text` into a document that may be any of several types, chosen by its `"tool"`:
/// returns the object without `tool`/`version`, and the producing tool's name.
///
/// # Errors
/// As [`read_stdin`]; `accepted` lists the tools whose documents are welcome.
pub fn parse_any(text: &str, accepted: &[&str]) -> Result<(Map<String, Value>, String)> {
    let expected = join_names(accepted);
    let hint = format!("pipe in the output of {expected}");
    let map = parse_object(text, &hint)?;
    strip_envelope(map, accepted, &expected, &hint)
}

/// Reads stdin for [`parse_any`].
///
/// # Errors
/// As [`parse_any`].
pub fn read_stdin_any(accepted: &[&str]) -> Result<(Map<String, Value>, String)> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| Error::usage("cannot read JSON from stdin").because(e))?;
    parse_any(&buf, accepted)
}

/// Deserialises an object (without its envelope) into `T`, naming the failing field.
///
/// # Errors
/// A usage error naming the field's path.
pub fn from_map<T: DeserializeOwned>(
    map: Map<String, Value>,
    expected: &str,
    hint: &str,
) -> Result<T> {
    let v = Value::Object(map);
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let why = if path == "." || path.is_empty() {
            inner
        } else {
            format!("at {path}: {inner}")
        };
        Error::usage(format!("the document on stdin is not {expected} document"))
            .because(why)
            .hint(hint.to_string())
    })
}

/// For an `Option` field that must be present even when `null` (serde otherwise reads a
/// missing `Option` as `None`, so a truncated document would pass):
/// `#[serde(deserialize_with = "pgdr_core::doc::required")]`.
///
/// # Errors
/// The deserializer's.
pub fn required<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d)
}

fn producers<T: Document>() -> String {
    join_names(T::PRODUCERS)
}

fn join_names(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n}'s")).collect();
    match quoted.as_slice() {
        [] => "a pgdr tool's".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn parse_object(text: &str, hint: &str) -> Result<Map<String, Value>> {
    if text.trim().is_empty() {
        return Err(Error::usage("no JSON on stdin")
            .because("the input was empty")
            .hint(format!("{hint}, or drop the '-' argument")));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::usage("malformed JSON on stdin")
            .because("expected one JSON object")
            .hint(hint.to_string())),
        Err(e) => Err(Error::usage("malformed JSON on stdin").because(e)),
    }
}

fn strip_envelope(
    mut map: Map<String, Value>,
    accepted: &[&str],
    expected: &str,
    hint: &str,
) -> Result<(Map<String, Value>, String)> {
    let tool = match map.remove("tool") {
        Some(Value::String(t)) => t,
        Some(_) | None => {
            return Err(Error::usage("the document on stdin is not a pgdr document")
                .because("it has no \"tool\" field")
                .hint(hint.to_string()))
        }
    };
    if !accepted.contains(&tool.as_str()) {
        return Err(Error::usage(format!(
            "the document on stdin comes from {tool}, not {expected}"
        ))
        .hint(hint.to_string()));
    }
    map.remove("version");
    Ok((map, tool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        wal_start: String,
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Pruned {
        dry_run: bool,
        #[serde(deserialize_with = "required")]
        oldest_kept: Option<Inner>,
    }

    impl Document for Pruned {
        const PRODUCERS: &'static [&'static str] = &["snap-prune"];
        fn dry_run(&self) -> bool {
            self.dry_run
        }
    }

    #[test]
    fn the_producers_document_parses() {
        let d: Pruned = parse(
            r#"{"tool":"snap-prune","version":"0.1.0","dry_run":true,"oldest_kept":{"wal_start":"x"}}"#,
        )
        .unwrap();
        assert!(d.dry_run());
        assert_eq!(d.oldest_kept.unwrap().wal_start, "x");
    }

    #[test]
    fn wrong_foreign_and_broken_documents_are_usage_errors_naming_the_field() {
        let e = parse::<Pruned>(r#"{"tool":"snap-take","dry_run":false,"oldest_kept":null}"#)
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("comes from snap-take"), "{e}");
        let e = parse::<Pruned>(r#"{"tool":"snap-prune","dry_run":false}"#).unwrap_err();
        assert!(e.to_string().contains("oldest_kept"), "{e}");
        let e = parse::<Pruned>(
            r#"{"tool":"snap-prune","dry_run":false,"oldest_kept":{"wal_start":"x","extra":1}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("oldest_kept"), "{e}");
        assert!(e.to_string().contains("extra"), "{e}");
        let e = parse::<Pruned>(r#"{"dry_run":false,"oldest_kept":null}"#).unwrap_err();
        assert!(e.to_string().contains("no \"tool\""), "{e}");
        assert_eq!(parse::<Pruned>(" \n").unwrap_err().exit_code(), 2);
        assert_eq!(parse::<Pruned>("{\"a\":").unwrap_err().exit_code(), 2);
        assert_eq!(parse::<Pruned>("[1]").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn any_of_several_producers() {
        let (m, tool) = parse_any(r#"{"tool":"b","version":"1","x":1}"#, &["a", "b"]).unwrap();
        assert_eq!(tool, "b");
        assert_eq!(m.len(), 1);
        let e = parse_any(r#"{"tool":"c"}"#, &["a", "b"]).unwrap_err();
        assert!(e.to_string().contains("not a's or b's"), "{e}");
    }
}
