//! What the server knows about each parameter (type, unit, range, enum values, context), from
//! a running server's `pg_settings` or offline from `postgres --describe-config`, and value
//! checks that follow guc.c (`parse_bool`, `parse_int`, `parse_real`, `convert_to_base_unit`).

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Param {
    pub name: String,
    pub context: String,
    pub vartype: String,
    /// pg_settings.unit (`kB`, `8kB`, `ms`, …); unknown offline.
    pub unit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Empty when unknown (offline).
    pub enumvals: Vec<String>,
    /// The server's current value (pg_settings.setting), with a connection.
    pub setting: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub params: HashMap<String, Param>,
    /// Where the catalog came from.
    pub source: String,
}

impl crate::load::Names for Catalog {
    fn known(&self, name: &str) -> bool {
        self.params.contains_key(&name.to_ascii_lowercase())
    }
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.params.get(&name.to_ascii_lowercase())
    }

    /// Parses `postgres --describe-config` output (tab-separated: name, context, group,
    /// vartype, reset value, min, max, descriptions).
    pub fn from_describe_config(text: &str) -> Catalog {
        let mut params = HashMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 7 {
                continue;
            }
            params.insert(
                f[0].to_ascii_lowercase(),
                Param {
                    name: f[0].into(),
                    context: f[1].into(),
                    vartype: f[3].to_ascii_lowercase(),
                    unit: None,
                    min: f[5].parse().ok(),
                    max: f[6].parse().ok(),
                    enumvals: vec![],
                    setting: None,
                },
            );
        }
        // Hidden from --describe-config (GUC_NO_SHOW_ALL / internal) but known to the server.
        for (n, context) in HIDDEN {
            params.entry(n.to_string()).or_insert(Param {
                name: n.to_string(),
                context: context.to_string(),
                // Unknown type: the value is left to the server check.
                vartype: String::new(),
                ..Param::default()
            });
        }
        Catalog {
            params,
            source: "postgres --describe-config".into(),
        }
    }
}

/// Parameters `--describe-config` leaves out (developer options, `GUC_NO_SHOW_ALL`,
/// `GUC_NOT_IN_SAMPLE`) that a file may still name; `internal` ones cannot be set at all.
const HIDDEN: &[(&str, &str)] = &[
    ("allow_in_place_tablespaces", "superuser"),
    ("allow_system_table_mods", "superuser"),
    ("application_name", "user"),
    ("backtrace_functions", "superuser"),
    ("debug_discard_caches", "superuser"),
    ("force_parallel_mode", "user"),
    ("debug_parallel_query", "user"),
    ("ignore_checksum_failure", "superuser"),
    ("ignore_invalid_pages", "postmaster"),
    ("ignore_system_indexes", "backend"),
    ("jit_debugging_support", "superuser-backend"),
    ("jit_dump_bitcode", "superuser"),
    ("jit_expressions", "user"),
    ("jit_profiling_support", "superuser-backend"),
    ("jit_tuple_deforming", "user"),
    ("post_auth_delay", "backend"),
    ("pre_auth_delay", "sighup"),
    ("remove_temp_files_after_crash", "sighup"),
    ("restrict_nonsystem_relation_kind", "user"),
    ("trace_notify", "user"),
    ("trace_recovery_messages", "sighup"),
    ("trace_sort", "user"),
    ("transaction_deferrable", "user"),
    ("transaction_isolation", "user"),
    ("transaction_read_only", "user"),
    ("wal_consistency_checking", "superuser"),
    ("zero_damaged_pages", "superuser"),
    ("is_superuser", "internal"),
    ("session_authorization", "user"),
    ("role", "user"),
    ("seed", "user"),
    ("config_file", "postmaster"),
    ("sort_mem", "user"),
    ("vacuum_mem", "user"),
    ("block_size", "internal"),
    ("data_checksums", "internal"),
    ("data_directory_mode", "internal"),
    ("debug_assertions", "internal"),
    ("in_hot_standby", "internal"),
    ("integer_datetimes", "internal"),
    ("lc_collate", "internal"),
    ("lc_ctype", "internal"),
    ("max_function_args", "internal"),
    ("max_identifier_length", "internal"),
    ("max_index_keys", "internal"),
    ("segment_size", "internal"),
    ("server_encoding", "internal"),
    ("server_version", "internal"),
    ("server_version_num", "internal"),
    ("shared_memory_size", "internal"),
    ("shared_memory_size_in_huge_pages", "internal"),
    ("ssl_library", "internal"),
    ("wal_block_size", "internal"),
    ("wal_segment_size", "internal"),
];

/// `parse_bool`: on/off/true/false/yes/no/1/0 or an unambiguous prefix, any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    let l = v.to_ascii_lowercase();
    let prefix_of = |w: &str, min: usize| l.len() >= min && w.starts_with(l.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || l == "1" || prefix_of("on", 2) {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || l == "0" || prefix_of("off", 2) {
        Some(false)
    } else {
        None
    }
}

const MEMORY: &[(&str, f64)] = &[
    ("B", 1.0),
    ("kB", 1024.0),
    ("MB", 1048576.0),
    ("GB", 1073741824.0),
    ("TB", 1099511627776.0),
];
const TIME: &[(&str, f64)] = &[
    ("us", 0.001),
    ("ms", 1.0),
    ("s", 1000.0),
    ("min", 60000.0),
    ("h", 3600000.0),
    ("d", 86400000.0),
];

/// The size of a pg_settings unit (`8kB`, `16MB`, `ms`, `min`) and its family.
fn base_unit(unit: &str) -> Option<(f64, &'static [(&'static str, f64)])> {
    let digits: String = unit.chars().take_while(|c| c.is_ascii_digit()).collect();
    let mult: f64 = if digits.is_empty() {
        1.0
    } else {
        digits.parse().ok()?
    };
    let rest = &unit[digits.len()..];
    for table in [MEMORY, TIME] {
        if let Some((_, f)) = table.iter().find(|(u, _)| *u == rest) {
            return Some((mult * f, table));
        }
    }
    None
}

/// C `strtol(s, &end, 0)` / `strtod` prefix: the number and the rest.
fn leading_number(v: &str) -> Option<(f64, &str)> {
    let s = v.trim_start();
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let neg = b.first() == Some(&b'-');
    // Hex and octal integers, like strtol base 0.
    if b.len() > i + 2 && b[i] == b'0' && (b[i + 1] | 0x20) == b'x' && b[i + 2].is_ascii_hexdigit()
    {
        let start = i + 2;
        let mut j = start;
        while j < b.len() && b[j].is_ascii_hexdigit() {
            j += 1;
        }
        let n = i64::from_str_radix(&s[start..j], 16).ok()? as f64;
        return Some((if neg { -n } else { n }, &s[j..]));
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_end = i;
    let is_float = matches!(b.get(i), Some(b'.' | b'e' | b'E'));
    if !is_float {
        if int_end == int_start {
            return None;
        }
        let digits = &s[int_start..int_end];
        let n = if digits.len() > 1 && digits.starts_with('0') {
            i64::from_str_radix(digits, 8)
                .ok()
                .map(|x| x as f64)
                .unwrap_or(f64::NAN)
        } else {
            digits.parse::<f64>().ok()?
        };
        if n.is_nan() {
            // "08": strtol stops at the 8.
            let oct: String = digits
                .chars()
                .take_while(|c| ('0'..='7').contains(c))
                .collect();
            let n = i64::from_str_radix(&oct, 8).unwrap_or(0) as f64;
            return Some((if neg { -n } else { n }, &s[int_start + oct.len()..]));
        }
        return Some((if neg { -n } else { n }, &s[int_end..]));
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == int_start || (i == int_start + 1 && b[int_start] == b'.') {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let n: f64 = s[..i].parse().ok()?;
    Some((n, &s[i..]))
}

/// `value` in the parameter's base unit (pg_settings.unit), when it parses.
pub fn to_base_units(p: &Param, value: &str) -> Option<f64> {
    let (n, rest) = leading_number(value)?;
    let unit = rest.trim();
    if unit.is_empty() {
        return Some(n);
    }
    let (base, table) = base_unit(p.unit.as_deref()?)?;
    let (_, f) = table.iter().find(|(u, _)| *u == unit)?;
    let v = n * f / base;
    Some(if p.vartype == "integer" { v.round() } else { v })
}

/// Checks `value` for `p`; returns the problem, if any.
pub fn check_value(p: &Param, value: &str) -> Option<String> {
    match p.vartype.as_str() {
        "bool" | "boolean" if parse_bool(value).is_none() => {
            return Some(format!("parameter \"{}\" requires a Boolean value", p.name));
        }
        "enum" => {
            // Hidden aliases guc_tables.c accepts but pg_settings does not list: boolean
            // spellings where "on"/"off" are values, and wal_level's old names.
            let has = |v: &str| p.enumvals.iter().any(|e| e == v);
            let alias = (has("on") && has("off") && parse_bool(value).is_some())
                || (p.name == "wal_level"
                    && ["archive", "hot_standby"].contains(&value.to_ascii_lowercase().as_str()));
            if !p.enumvals.is_empty()
                && !alias
                && !p.enumvals.iter().any(|e| e.eq_ignore_ascii_case(value))
            {
                return Some(format!(
                    "invalid value for parameter \"{}\": \"{value}\" (available values: {})",
                    p.name,
                    p.enumvals.join(", ")
                ));
            }
        }
        "integer" | "real" => {
            let invalid = || {
                Some(format!(
                    "invalid value for parameter \"{}\": \"{value}\"",
                    p.name
                ))
            };
            let Some((n, rest)) = leading_number(value) else {
                return invalid();
            };
            let unit = rest.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
            let mut v = n;
            if !unit.is_empty() {
                match p.unit.as_deref().and_then(base_unit) {
                    Some((base, table)) => match table.iter().find(|(u, _)| *u == unit) {
                        Some((_, f)) => v = n * f / base,
                        None => {
                            return Some(format!(
                            "invalid value for parameter \"{}\": \"{value}\" (valid units are {})",
                            p.name,
                            table
                                .iter()
                                .map(|(u, _)| format!("\"{u}\""))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                        }
                    },
                    None if p.unit.is_none() && p.min.is_some() && p.setting.is_none() => {
                        // Offline: the unit family is unknown; any unit name is accepted here
                        // and the range is not checked.
                        let known = MEMORY.iter().chain(TIME).any(|(u, _)| *u == unit);
                        return (!known).then(|| {
                            format!("invalid value for parameter \"{}\": \"{value}\" (not a unit: \"{unit}\")", p.name)
                        });
                    }
                    None => return invalid(),
                }
            }
            if p.vartype == "integer" {
                v = v.round();
            }
            if let (Some(min), Some(max)) = (p.min, p.max) {
                if v < min || v > max {
                    return Some(format!(
                        "{value} is outside the valid range for parameter \"{}\" ({min} .. {max})",
                        p.name
                    ));
                }
            }
        }
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(name: &str, unit: Option<&str>, min: f64, max: f64) -> Param {
        Param {
            name: name.into(),
            vartype: "integer".into(),
            unit: unit.map(Into::into),
            min: Some(min),
            max: Some(max),
            setting: Some("1".into()),
            ..Param::default()
        }
    }

    #[test]
    fn values() {
        assert_eq!(parse_bool("of"), Some(false));
        assert_eq!(parse_bool("o"), None);
        assert_eq!(parse_bool("Y"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
        let wm = int("work_mem", Some("kB"), 64.0, 2147483647.0);
        assert!(check_value(&wm, "64MB").is_none());
        assert!(check_value(&wm, "1.5GB").is_none());
        assert!(check_value(&wm, "128 MB").is_none());
        assert!(check_value(&wm, "1mb").is_some());
        assert!(check_value(&wm, "10").is_some());
        assert!(check_value(&wm, "abc").is_some());
        let sb = int("shared_buffers", Some("8kB"), 16.0, 1073741823.0);
        assert!(check_value(&sb, "128kB").is_none());
        assert!(check_value(&sb, "64kB").is_some());
        let perm = int("unix_socket_permissions", None, 0.0, 511.0);
        assert!(check_value(&perm, "0777").is_none());
        assert!(check_value(&perm, "0x1F").is_none());
        assert!(check_value(&perm, "1000").is_some());
        assert!(check_value(&perm, "7s").is_some());
        let e = Param {
            name: "wal_level".into(),
            vartype: "enum".into(),
            enumvals: vec!["minimal".into(), "replica".into(), "logical".into()],
            ..Param::default()
        };
        assert!(check_value(&e, "LOGICAL").is_none());
        assert!(check_value(&e, "archive").is_none());
        assert!(check_value(&e, "bogus").is_some());
    }
}
