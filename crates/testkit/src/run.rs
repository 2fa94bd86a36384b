//! Running a tool binary in a hermetic environment and reading its one JSON document.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Stdio};

/// A tool invocation: environment cleared except PATH, `PG*` scrubbed, no password file, no
/// configuration file (`PGDR_CONFIG=`; a test that wants one sets it); `PGDR_PG_ROOT` set so a
/// tool that needs another major's server binaries finds them ([`crate::majors`]).
#[derive(Debug)]
pub struct ToolCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// Starts building a run of the binary `name` (e.g. "hba-edit") from the build's target dir.
pub fn tool(name: &str) -> ToolCommand {
    let mut cmd = Command::new(crate::bin_dir().join(name));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("PGPASSFILE", "/dev/null")
        .env("PGDR_CONFIG", "")
        .env("LC_ALL", "C")
        .env("PGDR_PG_ROOT", crate::majors::pg_root());
    ToolCommand { cmd, stdin: None }
}

impl ToolCommand {
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, a: I) -> Self {
        self.cmd.args(a);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    pub fn env_remove(mut self, k: &str) -> Self {
        self.cmd.env_remove(k);
        self
    }
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }
    /// The command itself (no input given), for a test that runs it its own way.
    pub fn into_command(self) -> Command {
        self.cmd
    }
    pub fn stdin_json(self, v: &serde_json::Value) -> Self {
        self.stdin(v.to_string())
    }
    /// Runs to completion. Stdin is /dev/null unless given, so a tool that read stdin on its
    /// own would be caught (it would see EOF, not hang).
    pub fn run(mut self) -> ToolOutput {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.cmd));
        if let Some(input) = self.stdin.take() {
            let mut si = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = si.write_all(&input);
            });
        }
        let out = child.wait_with_output().unwrap();
        ToolOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a tool printed and how it exited.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ToolOutput {
    /// Asserts the exit code, showing everything on mismatch.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
    /// Asserts exit 0.
    pub fn ok(self) -> Self {
        self.expect_code(0)
    }
    /// The one JSON document on stdout (asserting there is exactly one, newline-terminated).
    pub fn json(&self) -> serde_json::Value {
        assert!(
            self.stdout.ends_with('\n'),
            "stdout not newline-terminated: {:?}",
            self.stdout
        );
        let mut stream =
            serde_json::Deserializer::from_str(&self.stdout).into_iter::<serde_json::Value>();
        let doc = stream
            .next()
            .unwrap_or_else(|| panic!("no JSON on stdout; stderr: {}", self.stderr))
            .unwrap_or_else(|e| panic!("bad JSON {e}: {}", self.stdout));
        assert!(
            stream.next().is_none(),
            "more than one JSON document: {}",
            self.stdout
        );
        doc
    }
    /// The one JSON document on stdout as the producer's type `T` (a
    /// `pgdr_core::Document`): `"tool"` must be one of `T`'s producers and every other key a
    /// field of `T` (`deny_unknown_fields`), so the test locks the document's keys.
    pub fn document<T: pgdr_core::Document>(&self) -> T {
        let _ = self.json(); // exactly one document, newline-terminated
        pgdr_core::doc::parse::<T>(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not a {} document: {e}\n{}",
                T::PRODUCERS.join("/"),
                self.stdout
            )
        })
    }
    /// Asserts a failure shape: empty stdout and exactly one `TOOL: …` line on stderr.
    pub fn expect_error(self, code: i32, tool: &str) -> Self {
        let s = self.expect_code(code);
        assert!(
            s.stdout.is_empty(),
            "stdout not empty on failure: {}",
            s.stdout
        );
        let lines: Vec<_> = s.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line, got: {}",
            s.stderr
        );
        assert!(lines[0].starts_with(&format!("{tool}: ")), "{}", s.stderr);
        s
    }
}
