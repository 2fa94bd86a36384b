//! The runner: `main()` of every tool is one call to [`main`].

use crate::error::{Error, Result};
use crate::signals;
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

/// Flags every tool has.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Indent the JSON output.
    #[arg(long, global = true)]
    pub pretty: bool,
}

/// A tool's parsed arguments: clap derive plus access to the shared output flags.
pub trait ToolArgs: clap::Parser {
    fn output_args(&self) -> &OutputArgs;
}

/// For a tool's `Args` (a clap derive with an `output: OutputArgs` field): implements
/// [`ToolArgs`] and defines `pub fn command() -> clap::Command`, the definition the man-page
/// generator and the tests read.
#[macro_export]
macro_rules! tool_args {
    ($args:ty) => {
        impl $crate::ToolArgs for $args {
            fn output_args(&self) -> &$crate::OutputArgs {
                &self.output
            }
        }

        /// The clap definition of this tool (the man page is generated from it).
        pub fn command() -> clap::Command {
            <$args as clap::CommandFactory>::command()
        }
    };
}

/// What a successful (or reporting) run produces.
#[derive(Debug, Clone)]
pub struct Outcome {
    body: Body,
    /// The exit code with the document (a `check` that found errors prints its report and exits 1).
    pub code: u8,
}

#[derive(Debug, Clone)]
enum Body {
    Json(Map<String, Value>),
    /// Non-JSON output asked for explicitly (repl-lag --format prometheus).
    Text(String),
    /// A JSON object already serialized compactly (large documents skip the `Value` tree).
    Raw(String),
    /// A document serialized only when printed, straight to stdout (see
    /// [`Outcome::document_streamed`]).
    Streamed(Streamed),
}

/// Serializes a document (compact JSON) into a writer.
type WriteDoc = dyn Fn(&mut dyn Write) -> serde_json::Result<()> + Send + Sync;

/// A document to serialize when it is printed.
#[derive(Clone)]
struct Streamed(Arc<WriteDoc>);

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streamed(..)")
    }
}

impl Streamed {
    /// The document serialized in memory (for --pretty and [`render`]).
    fn to_string(&self) -> Result<String> {
        let mut buf = Vec::new();
        (self.0)(&mut buf)
            .map_err(|e| Error::failed("internal error: cannot serialize output").because(e))?;
        // serde_json writes valid UTF-8.
        String::from_utf8(buf)
            .map_err(|e| Error::failed("internal error: cannot serialize output").because(e))
    }
}

impl Outcome {
    /// A JSON document; `doc` must serialize to an object.
    pub fn json(doc: impl serde::Serialize) -> Result<Outcome> {
        match serde_json::to_value(doc) {
            Ok(Value::Object(map)) => Ok(Outcome {
                body: Body::Json(map),
                code: 0,
            }),
            Ok(_) => Err(Error::failed("internal error").because("output is not a JSON object")),
            Err(e) => Err(Error::failed("internal error: cannot serialize output").because(e)),
        }
    }
    /// Like [`Outcome::json`] for large documents: serialized once, straight from the
    /// structs, without building a `serde_json::Value` tree. `doc` must not have the keys
    /// `tool` or `version`.
    pub fn json_serialized(doc: impl serde::Serialize) -> Result<Outcome> {
        let mut buf = Vec::new();
        serde_json::to_writer(&mut buf, &doc)
            .map_err(|e| Error::failed("internal error: cannot serialize output").because(e))?;
        // serde_json writes valid UTF-8.
        let s = String::from_utf8(buf)
            .map_err(|e| Error::failed("internal error: cannot serialize output").because(e))?;
        if !(s.starts_with('{') && s.ends_with('}')) {
            return Err(Error::failed("internal error").because("output is not a JSON object"));
        }
        Ok(Outcome {
            body: Body::Raw(s),
            code: 0,
        })
    }
    /// A typed document (see [`crate::doc`]): serialized once, straight from the type.
    pub fn document<T: crate::Document>(doc: &T) -> Result<Outcome> {
        Self::json_serialized(doc)
    }
    /// [`Outcome::document`] for a large document: serialized only when printed, straight
    /// to stdout through a small buffer, so that the output (20 MB for a 100,000-rule list)
    /// is never held in memory, written by [`crate::Document::write_json`]. The bytes printed
    /// are those of [`Outcome::document`].
    pub fn document_streamed<T: crate::Document + Send + Sync + 'static>(doc: T) -> Outcome {
        Outcome {
            body: Body::Streamed(Streamed(Arc::new(move |w: &mut dyn Write| {
                // serde_json writes a few bytes at a time: buffered here, they are copies
                // into a buffer, not calls through `dyn Write`.
                let mut buf = std::io::BufWriter::with_capacity(64 * 1024, w);
                doc.write_json(&mut buf)?;
                buf.flush().map_err(serde_json::Error::io)
            }))),
            code: 0,
        }
    }
    pub fn text(text: String) -> Outcome {
        Outcome {
            body: Body::Text(text),
            code: 0,
        }
    }
    pub fn with_code(mut self, code: u8) -> Outcome {
        self.code = code;
        self
    }
    /// The JSON body, for tests and for tools that call each other as libraries.
    pub fn doc(&self) -> Option<&Map<String, Value>> {
        match &self.body {
            Body::Json(m) => Some(m),
            Body::Text(_) | Body::Raw(_) | Body::Streamed(_) => None,
        }
    }
}

/// `{"tool":…,"version":…` and the comma before the document's own keys (for a compact
/// document with at least one key; see [`render`]).
fn envelope(tool: &str) -> String {
    format!(
        "{{\"tool\":{},\"version\":{},",
        Value::String(tool.into()),
        Value::String(crate::VERSION.into())
    )
}

/// Renders the document with `"tool"` and `"version"` first.
pub fn render(tool: &str, outcome: &Outcome, pretty: bool) -> String {
    match &outcome.body {
        Body::Text(t) => t.clone(),
        Body::Streamed(s) => render(
            tool,
            &Outcome {
                body: Body::Raw(s.to_string().expect("a document serializes")),
                code: outcome.code,
            },
            pretty,
        ),
        Body::Raw(raw) if !pretty => {
            let rest = &raw[1..];
            let mut s = String::with_capacity(raw.len() + tool.len() + 40);
            s.push_str(&envelope(tool));
            if rest == "}" {
                s.pop();
            }
            s.push_str(rest);
            s.push('\n');
            s
        }
        Body::Raw(raw) => {
            let map = match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            render(
                tool,
                &Outcome {
                    body: Body::Json(map),
                    code: outcome.code,
                },
                pretty,
            )
        }
        Body::Json(map) => {
            let mut full = Map::new();
            full.insert("tool".into(), Value::String(tool.into()));
            full.insert("version".into(), Value::String(crate::VERSION.into()));
            for (k, v) in map {
                if k != "tool" && k != "version" {
                    full.insert(k.clone(), v.clone());
                }
            }
            let v = Value::Object(full);
            let mut s = if pretty {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            }
            .expect("a serde_json::Value always serializes");
            s.push('\n');
            s
        }
    }
}

/// The running tool's name, for [`note`] (set by [`main_with`]).
static TOOL_NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Prints one note on stderr, `TOOL: note: message`: something the user should know that is
/// not an error (the run goes on; the document on stdout is unchanged).
pub fn note(message: impl std::fmt::Display) {
    let tool = TOOL_NAME.get().copied().unwrap_or("pgdr");
    let _ = writeln!(std::io::stderr(), "{tool}: note: {message}");
}

/// Prints one problem line on stderr: `TOOL: message`.
pub fn report_error(tool: &str, err: &Error) {
    if !err.quiet {
        // A closed stderr is not worth dying over.
        let _ = writeln!(std::io::stderr(), "{tool}: {err}");
    }
}

/// A pgdr tool as the runner, the man pages and the completions see it (pgdr-docgen holds
/// the list).
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    /// The clap definition (`tool_args!`'s `command`).
    pub command: fn() -> clap::Command,
    /// Its man page's examples (`ManExtra::examples`), also `--help`'s.
    pub examples: &'static [(&'static str, &'static str)],
}

static TOOLS: OnceLock<&'static [Tool]> = OnceLock::new();

/// Makes every tool known to this process (called first in each binary's `main`): the
/// configuration file's `[global]` keys and section names are checked against all of them,
/// and the running tool's `--help` gets its examples.
pub fn register(tools: &'static [Tool]) {
    let _ = TOOLS.set(tools);
}

/// The tools [`register`] made known.
pub fn registered() -> Option<&'static [Tool]> {
    TOOLS.get().copied()
}

/// The command a user sees: the definition, `--print-config`, and the examples of its man
/// page attached to the tool and to each subcommand they run.
pub fn tool_command(cmd: clap::Command, examples: &[(&str, &str)]) -> clap::Command {
    crate::examples::attach(cmd.arg(crate::config::print_config_arg()), examples)
}

/// How a tool's runner reports problems found before the tool runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The exit code of a usage error (2; repl-lag: 3, UNKNOWN, as monitoring plugins do).
    pub usage_code: u8,
    /// The exit code of an unusable configuration file or a usage error, given the
    /// subcommands of the run, when it is not `usage_code` (wal-archive get: above 125, so
    /// that recovery stops instead of ending early: PostgreSQL reads any lower status of a
    /// restore_command as "not archived").
    pub config_failure_code: fn(&[String]) -> Option<u8>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            usage_code: 2,
            config_failure_code: |_| None,
        }
    }
}

/// The whole of a tool's `main()`.
pub fn main<A: ToolArgs>(tool: &'static str, run: fn(A) -> Result<Outcome>) -> ExitCode {
    main_with(tool, run, Settings::default())
}

/// [`main`] for a tool whose usage errors exit with another code (repl-lag: 3, UNKNOWN, as
/// monitoring plugins do).
pub fn main_with_usage_code<A: ToolArgs>(
    tool: &'static str,
    run: fn(A) -> Result<Outcome>,
    usage_code: u8,
) -> ExitCode {
    main_with(
        tool,
        run,
        Settings {
            usage_code,
            ..Settings::default()
        },
    )
}

/// [`main`] with [`Settings`]: arguments from the command line, the environment and the
/// configuration file (see [`crate::config`]), `--print-config`, then the tool.
pub fn main_with<A: ToolArgs>(
    tool: &'static str,
    run: fn(A) -> Result<Outcome>,
    settings: Settings,
) -> ExitCode {
    let argv = crate::argv::args_without_visible_passwords();
    let _ = TOOL_NAME.set(tool);
    signals::install(tool);
    let args = match parse_args::<A>(tool, &argv, settings) {
        Ok(a) => a,
        Err(code) => return ExitCode::from(code),
    };
    let pretty = args.output_args().pretty;
    match run(args) {
        Ok(outcome) => {
            match &outcome.body {
                // A large compact document goes out as it is, after its envelope, not copied.
                Body::Raw(raw) if !pretty && raw != "{}" => {
                    write_stdout_parts(&[envelope(tool).as_bytes(), &raw.as_bytes()[1..], b"\n"])
                }
                Body::Streamed(s) if !pretty => {
                    if let Err(e) = write_streamed(tool, s) {
                        report_error(tool, &e);
                        return ExitCode::from(e.exit_code());
                    }
                }
                _ => write_stdout(render(tool, &outcome, pretty).as_bytes()),
            }
            ExitCode::from(outcome.code)
        }
        Err(err) => {
            report_error(tool, &err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// The tool's arguments, or the exit code once help, version or `--print-config` was printed
/// or a problem reported.
fn parse_args<A: ToolArgs>(
    tool: &'static str,
    argv: &[OsString],
    settings: Settings,
) -> std::result::Result<A, u8> {
    let tools = registered();
    let examples = tools
        .and_then(|ts| ts.iter().find(|t| t.name == tool))
        .map_or(&[][..], |t| t.examples);
    let cmd = tool_command(<A as clap::CommandFactory>::command(), examples);
    let applied = match crate::config::prepare(cmd.clone(), argv, tools) {
        Ok(a) => a,
        Err(e) => {
            let path = crate::config::subcommand_path(&cmd, argv);
            let code = (settings.config_failure_code)(&path).unwrap_or(settings.usage_code);
            report_error(tool, &e.kind(crate::ErrorKind::Code(code)));
            return Err(code);
        }
    };
    if crate::config::wants_print(argv) {
        let doc = crate::config::print(&applied, argv);
        let pretty = doc.settings.get("pretty").is_some_and(|s| s.value == true);
        return match Outcome::document(&doc) {
            Ok(o) => {
                write_stdout(render(tool, &o, pretty).as_bytes());
                Err(0)
            }
            Err(e) => {
                report_error(tool, &e);
                Err(1)
            }
        };
    }
    let usage_code = (settings.config_failure_code)(&crate::config::subcommand_path(&cmd, argv))
        .unwrap_or(settings.usage_code);
    let matches = match applied.parse(argv, false) {
        Ok((m, _)) => m,
        Err(e) => return Err(clap_exit(tool, e, usage_code)),
    };
    <A as clap::FromArgMatches>::from_arg_matches(&matches)
        .map_err(|e| clap_exit(tool, e, usage_code))
}

/// Writes the document in one go; a closed pipe ends the run quietly (the work is done by now).
fn write_stdout(bytes: &[u8]) {
    write_stdout_parts(&[bytes]);
}

/// [`write_stdout`] for a document in several pieces.
fn write_stdout_parts(parts: &[&[u8]]) {
    let mut out = std::io::stdout().lock();
    let _ = parts
        .iter()
        .try_for_each(|p| out.write_all(p))
        .and_then(|_| out.flush());
}

/// Writes a streamed document to stdout, after its envelope; a closed pipe ends the run
/// quietly, as in [`write_stdout`].
///
/// # Errors
/// The document is not a JSON object or fails to serialize (an internal error).
fn write_streamed(tool: &str, s: &Streamed) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::failed("internal error: cannot serialize output").because(e.to_string())
    };
    let mut w = Enveloped {
        out: std::io::stdout().lock(),
        envelope: envelope(tool),
        seen: Seen::Nothing,
    };
    match (s.0)(&mut w) {
        Ok(()) => {}
        Err(e) if !e.is_io() => return Err(fail(&e)),
        Err(e) if w.seen == Seen::Nothing => return Err(fail(&e)),
        Err(_) => return Ok(()),
    }
    let _ = w.write_all(b"\n").and_then(|_| w.flush());
    Ok(())
}

/// How far into the document [`Enveloped`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Nothing,
    /// The object's `{`.
    Brace,
    /// What follows it.
    Rest,
}

/// Writes a compact JSON object with `"tool"` and `"version"` first: its `{` is replaced by
/// the [`envelope`] (without the comma when the object is empty), as [`render`] does.
struct Enveloped<W: Write> {
    out: W,
    envelope: String,
    seen: Seen,
}

impl<W: Write> Write for Enveloped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(&first) = buf.first() else {
            return Ok(0);
        };
        match self.seen {
            Seen::Nothing if first == b'{' => {
                self.seen = Seen::Brace;
                Ok(1)
            }
            Seen::Nothing => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "output is not a JSON object",
            )),
            Seen::Brace => {
                let env = if first == b'}' {
                    self.envelope.trim_end_matches(',')
                } else {
                    &self.envelope
                };
                self.out.write_all(env.as_bytes())?;
                self.seen = Seen::Rest;
                self.out.write(buf)
            }
            Seen::Rest => self.out.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Help and version go to stdout with exit 0; every other parse error is one line, exit
/// `usage_code` (2 for all tools but repl-lag).
fn clap_exit(tool: &str, e: clap::Error, usage_code: u8) -> u8 {
    use clap::error::ErrorKind as K;
    match e.kind() {
        K::DisplayHelp | K::DisplayVersion => {
            write_stdout(e.render().to_string().as_bytes());
            0
        }
        _ => {
            let rendered = e.render().to_string();
            let first = if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
                "a subcommand or argument is required".to_string()
            } else {
                clap_message(&rendered)
            };
            report_error(
                tool,
                &Error::usage("usage error")
                    .because(first)
                    .hint(format!("see '{tool} --help'")),
            );
            usage_code
        }
    }
}

/// The message of a rendered clap error on one line: "error: X:" followed by indented
/// items ("  --pgdata <DIR>") becomes "X: --pgdata <DIR>"; tips and usage are dropped.
fn clap_message(rendered: &str) -> String {
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let Some(head) = lines.next() else {
        return "invalid arguments".into();
    };
    let mut msg = head.trim().trim_start_matches("error: ").to_string();
    if msg.ends_with(':') {
        let items: Vec<&str> = lines
            .take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with("tip:"))
            .map(str::trim)
            .collect();
        msg.push(' ');
        msg.push_str(&items.join(", "));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clap_errors_become_one_line() {
        let r = "error: the following required arguments were not provided:\n  --pgdata <DIR>\n  --name <N>\n\nUsage: snap-take --pgdata <DIR>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            clap_message(r),
            "the following required arguments were not provided: --pgdata <DIR>, --name <N>"
        );
        let r = "error: unexpected argument '--x' found\n\n  tip: to pass '--x' as a value, use '-- --x'\n\nUsage: t\n";
        assert_eq!(clap_message(r), "unexpected argument '--x' found");
    }

    #[test]
    fn tool_and_version_come_first() {
        let o = Outcome::json(json!({"a": 1, "tool": "x"})).unwrap();
        let s = render("hba-edit", &o, false);
        assert!(s.starts_with(r#"{"tool":"hba-edit","version":""#), "{s}");
        assert!(s.ends_with("\"a\":1}\n"));
        let p = render("hba-edit", &o, true);
        assert!(p.contains("\n  \"a\": 1"));
    }

    #[test]
    fn serialized_documents_render_alike() {
        let doc = json!({"a": [1, 2], "b": {"c": null}});
        let fast = Outcome::json_serialized(&doc).unwrap();
        let slow = Outcome::json(&doc).unwrap();
        for pretty in [false, true] {
            assert_eq!(render("t", &fast, pretty), render("t", &slow, pretty));
        }
        // What main writes in pieces is what render makes.
        let Body::Raw(raw) = &fast.body else {
            panic!("not raw")
        };
        assert_eq!(
            format!("{}{}\n", envelope("t"), &raw[1..]),
            render("t", &fast, false)
        );
        let empty = Outcome::json_serialized(json!({})).unwrap();
        assert_eq!(
            render("t", &empty, false),
            render("t", &Outcome::json(json!({})).unwrap(), false)
        );
        assert!(Outcome::json_serialized(json!([1])).is_err());
    }

    #[test]
    fn streamed_documents_print_what_render_makes() {
        #[derive(serde::Serialize)]
        struct D {
            a: Vec<u32>,
            b: Option<String>,
        }
        #[derive(serde::Serialize)]
        struct E {}
        let doc = json!({"a": [1, 2], "b": null});
        let expected = render("t", &Outcome::json(&doc).unwrap(), false);
        let streamed = |o: Outcome| {
            let Body::Streamed(s) = &o.body else {
                panic!("not streamed")
            };
            let mut w = Enveloped {
                out: Vec::new(),
                envelope: envelope("t"),
                seen: Seen::Nothing,
            };
            (s.0)(&mut w).unwrap();
            w.out.push(b'\n');
            String::from_utf8(w.out).unwrap()
        };
        let o = || Outcome {
            body: Body::Streamed(Streamed(Arc::new(|w: &mut dyn Write| {
                serde_json::to_writer(
                    w,
                    &D {
                        a: vec![1, 2],
                        b: None,
                    },
                )
            }))),
            code: 0,
        };
        assert_eq!(streamed(o()), expected);
        for pretty in [false, true] {
            assert_eq!(
                render("t", &o(), pretty),
                render("t", &Outcome::json(&doc).unwrap(), pretty)
            );
        }
        let empty = Outcome {
            body: Body::Streamed(Streamed(Arc::new(|w: &mut dyn Write| {
                serde_json::to_writer(w, &E {})
            }))),
            code: 0,
        };
        assert_eq!(
            streamed(empty),
            render("t", &Outcome::json(json!({})).unwrap(), false)
        );
        let mut w = Enveloped {
            out: Vec::new(),
            envelope: envelope("t"),
            seen: Seen::Nothing,
        };
        assert!(serde_json::to_writer(&mut w, &[1]).is_err());
        assert!(w.out.is_empty());
    }

    #[test]
    fn non_object_is_refused() {
        assert!(Outcome::json(json!([1])).is_err());
    }
}
