//! pgdr-docgen: the one list of pgdr's tools (name, clap definition, man-page extras), and
//! what is generated from it: the man pages (`pgdr-docgen write|check DIR`), the shell
//! completions (`pgdr-docgen completions SHAREDIR`), and the example systemd units
//! (`pgdr-docgen units DIR BINDIR`, from crates/docgen/systemd). Each binary in `bin/`
//! registers the list ([`register`]) and calls into its domain crate; the tests of every tool
//! (tests/cli_common.rs) walk this list too.

/// A tool: its name, its clap definition and the hand-written parts of its man page.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    pub command: fn() -> clap::Command,
    pub man: &'static pgdr_core::man::ManExtra,
}

/// The list, written once: each tool's name and the module holding its `command` and `MAN`.
macro_rules! tools {
    ($($name:literal => $($module:ident)::+),* $(,)?) => {
        /// Every tool this build contains.
        pub static TOOLS: &[Tool] = &[$(Tool {
            name: $name,
            command: $($module)::+::command,
            man: &$($module)::+::MAN,
        }),*];

        /// What a tool's runner needs of every tool (the man pages' other parts stay out of
        /// the binaries).
        static REGISTRY: &[pgdr_core::runner::Tool] = &[$(pgdr_core::runner::Tool {
            name: $name,
            command: $($module)::+::command,
            examples: $($module)::+::MAN.examples,
        }),*];
    };
}

tools! {
    "hba-edit" => pgdr_hba::cli,
    "conf-edit" => pgdr_conf::cli,
    "wal-archive" => pgdr_wal::cli,
    "snap-take" => pgdr_snap::cli_take,
    "snap-prune" => pgdr_snap::cli_prune,
    "snap-clone" => pgdr_clone::cli,
    "repl-lag" => pgdr_lag::cli,
}

/// Every tool this build contains.
pub fn tools() -> Vec<Tool> {
    TOOLS.to_vec()
}

/// Makes every tool known to the runner of this process (first thing in each binary).
pub fn register() {
    pgdr_core::runner::register(REGISTRY);
}

/// The tool's command as users see it (`--help`, man page, completions): its definition with
/// `--print-config` and its examples.
pub fn command(t: &Tool) -> clap::Command {
    pgdr_core::runner::tool_command((t.command)(), t.man.examples)
}

/// Where each shell looks for completions, under a `share` directory, and the file name.
pub const COMPLETIONS: &[(clap_complete::Shell, &str, &str)] = &[
    (
        clap_complete::Shell::Bash,
        "bash-completion/completions",
        "{}",
    ),
    (clap_complete::Shell::Zsh, "zsh/site-functions", "_{}"),
    (
        clap_complete::Shell::Fish,
        "fish/vendor_completions.d",
        "{}.fish",
    ),
];

/// The completion script of `t` for `shell`, from the same definition as `--help`.
pub fn completion(t: &Tool, shell: clap_complete::Shell) -> String {
    let mut cmd = command(t);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, t.name, &mut out);
    String::from_utf8(out).expect("clap_complete writes UTF-8")
}

/// Every completion file: (path under a `share` directory, contents).
pub fn completions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in TOOLS {
        for (shell, dir, name) in COMPLETIONS {
            out.push((
                format!("{dir}/{}", name.replace("{}", t.name)),
                completion(t, *shell),
            ));
        }
    }
    out
}

/// The example systemd units (crates/docgen/systemd), with `@BINDIR@` still in them.
pub const UNITS: &[(&str, &str)] = &[
    (
        "pgdr-snap.service",
        include_str!("../systemd/pgdr-snap.service"),
    ),
    (
        "pgdr-snap.timer",
        include_str!("../systemd/pgdr-snap.timer"),
    ),
    (
        "pgdr-copy.service",
        include_str!("../systemd/pgdr-copy.service"),
    ),
    (
        "pgdr-copy.timer",
        include_str!("../systemd/pgdr-copy.timer"),
    ),
    (
        "pgdr-lag.service",
        include_str!("../systemd/pgdr-lag.service"),
    ),
    ("pgdr-lag.timer", include_str!("../systemd/pgdr-lag.timer")),
];

/// Every unit with the tools' directory filled in: (file name, contents).
pub fn units(bindir: &str) -> Vec<(&'static str, String)> {
    UNITS
        .iter()
        .map(|(name, text)| (*name, text.replace("@BINDIR@", bindir)))
        .collect()
}
