//! Man pages from the same clap definitions as `--help`, with the sections clap cannot know.

/// The date in every page's title line: fixed, so regenerated pages do not drift
/// (`make man-check`), and a real date, so `mandoc -T lint -W warning` accepts it.
pub const MAN_DATE: &str = "2026-01-01";

/// The hand-written parts of a tool's man page.
#[derive(Debug, Clone, Copy)]
pub struct ManExtra {
    /// Exit codes and what each means.
    pub exit_status: &'static [(u8, &'static str)],
    /// The JSON document(s) printed, in plain text.
    pub json_output: &'static str,
    /// (what it does, the command line).
    pub examples: &'static [(&'static str, &'static str)],
    /// Anything else worth a section: (title, text).
    pub extra_sections: &'static [(&'static str, &'static str)],
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let l = line.replace('\\', "\\e");
        // A line starting with . or ' would be read as a roff request.
        if l.starts_with('.') || l.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn section(out: &mut String, title: &str, body: &str) {
    out.push_str(&format!(".SH \"{title}\"\n"));
    out.push_str(&escape(body));
}

/// Renders the whole page: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, subcommands from clap, then
/// JSON OUTPUT, EXIT STATUS, the extra sections, EXAMPLES, and VERSION.
pub fn render(cmd: clap::Command, extra: &ManExtra) -> String {
    let man = clap_mangen::Man::new(cmd.clone())
        .date(MAN_DATE)
        .source(format!("pgdr {}", crate::VERSION));
    let mut buf = Vec::new();
    man.render_title(&mut buf).expect("write to Vec");
    man.render_name_section(&mut buf).expect("write to Vec");
    man.render_synopsis_section(&mut buf).expect("write to Vec");
    man.render_description_section(&mut buf)
        .expect("write to Vec");
    man.render_options_section(&mut buf).expect("write to Vec");
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)
            .expect("write to Vec");
    }
    let mut out = String::from_utf8(buf).expect("clap_mangen writes UTF-8");
    section(&mut out, "JSON OUTPUT", extra.json_output);
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in extra.exit_status {
        out.push_str(&format!(".TP\n.B {code}\n{}", escape(meaning)));
    }
    for (title, body) in extra.extra_sections {
        section(&mut out, title, body);
    }
    out.push_str(".SH EXAMPLES\n");
    for (i, (what, line)) in extra.examples.iter().enumerate() {
        // mandoc warns about a paragraph macro right after .SH.
        let pp = if i == 0 { "" } else { ".PP\n" };
        out.push_str(&format!(
            "{pp}{}.PP\n.RS 4\n.nf\n{}.fi\n.RE\n",
            escape(what),
            escape(line)
        ));
    }
    out
}
