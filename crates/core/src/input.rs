//! JSON read from stdin, only when the user passed `-`.

use crate::error::{Error, Result};
use std::io::Read;

/// Reads one JSON document from stdin (compact or `--pretty`). Empty, truncated or malformed
/// input is a usage error (exit 2): a cut-off document never parses, so it is never acted on.
pub fn read_stdin_json() -> Result<serde_json::Value> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| Error::usage("cannot read JSON from stdin").because(e))?;
    parse_json(&buf)
}

/// The parsing half of [`read_stdin_json`], for tests.
pub fn parse_json(text: &str) -> Result<serde_json::Value> {
    if text.trim().is_empty() {
        return Err(Error::usage("no JSON on stdin")
            .because("the input was empty")
            .hint("pipe in the output of another pgdr tool, or drop the '-' argument"));
    }
    serde_json::from_str(text).map_err(|e| Error::usage("malformed JSON on stdin").because(e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_and_truncated_are_usage_errors() {
        assert_eq!(super::parse_json(" \n").unwrap_err().exit_code(), 2);
        assert_eq!(super::parse_json("{\"a\":").unwrap_err().exit_code(), 2);
        assert_eq!(super::parse_json("{\"a\":1}\n").unwrap()["a"], 1);
    }
}
