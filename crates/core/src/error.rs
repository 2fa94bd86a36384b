//! One error type for every tool: a kind that decides the exit code, and a message in the
//! shape `what went wrong: why (what to do)`.

use std::fmt;

/// What kind of failure, which decides the exit code (SPEC "Conventions" 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The operation failed or was refused; nothing was changed. Exit 1.
    Failed,
    /// A usage error or malformed input. Exit 2.
    Usage,
    /// Another run holds the lock. Exit 75 (EX_TEMPFAIL).
    Locked,
    /// A tool-specific code (repl-lag's 3, wal-archive get's fatal code).
    Code(u8),
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Locked => 75,
            ErrorKind::Code(c) => c,
        }
    }
}

/// A failure with a one-line explanation.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub what: String,
    pub why: Option<String>,
    pub hint: Option<String>,
    /// Print nothing at all (wal-archive get's "not archived" is one quiet line, made by the tool).
    pub quiet: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn new(kind: ErrorKind, what: impl Into<String>) -> Self {
        Error {
            kind,
            what: what.into(),
            why: None,
            hint: None,
            quiet: false,
        }
    }
    /// The operation failed or was refused (exit 1).
    pub fn failed(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, what)
    }
    /// Bad arguments or malformed input (exit 2).
    pub fn usage(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, what)
    }
    /// Another run holds the lock (exit 75).
    pub fn locked(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Locked, what)
    }
    /// A tool-specific exit code.
    pub fn with_code(code: u8, what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Code(code), what)
    }
    /// Why it went wrong.
    pub fn because(mut self, why: impl fmt::Display) -> Self {
        self.why = Some(why.to_string());
        self
    }
    /// What the user can do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always one line: a multi-line cause (a server message with DETAIL) is folded.
        let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "{}", one_line(&self.what))?;
        if let Some(why) = &self.why {
            write!(f, ": {}", one_line(why))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " ({})", one_line(hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Adds "what went wrong" to a lower-level error, keeping it as the "why".
pub trait Context<T> {
    /// The operation failed (exit 1).
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
    /// The input was malformed (exit 2).
    fn usage_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::failed(what()).because(clean_io_message(&e.to_string())))
    }
    fn usage_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::usage(what()).because(clean_io_message(&e.to_string())))
    }
}

/// "No such file or directory (os error 2)" → "No such file or directory".
pub fn clean_io_message(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shape() {
        let e = Error::failed("cannot read /x")
            .because("No such file or directory")
            .hint("check -f");
        assert_eq!(
            e.to_string(),
            "cannot read /x: No such file or directory (check -f)"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::usage("bad").exit_code(), 2);
        assert_eq!(Error::locked("held").exit_code(), 75);
    }

    #[test]
    fn multi_line_causes_are_folded() {
        let e = Error::failed("query failed").because("ERROR: x\nDETAIL: y");
        assert_eq!(e.to_string(), "query failed: ERROR: x DETAIL: y");
    }

    #[test]
    fn io_context_strips_os_error() {
        let r: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(2));
        let e = r.context(|| "cannot open f".into()).unwrap_err();
        assert_eq!(e.to_string(), "cannot open f: No such file or directory");
    }
}
