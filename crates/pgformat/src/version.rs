//! `PG_VERSION`: the major version that made a data directory, and the majors pgdr knows.

use std::ops::RangeInclusive;

/// The majors pgdr supports, each tested against a real server of it in `make test`
/// (SPEC "Supported PostgreSQL versions").
pub const SUPPORTED: RangeInclusive<u32> = 13..=18;

/// The majors whose formats pgdr reads: [`SUPPORTED`], and 12 as far as the formats reach.
pub const KNOWN: RangeInclusive<u32> = 12..=18;

/// Reads the text of a `PG_VERSION` file ("15\n"; "9.6" before PostgreSQL 10) as a major
/// version.
///
/// # Errors
/// Text that is not a version, or a major outside [`KNOWN`] (9.6, 11, a 19 beta): its formats
/// would be read with another major's layout, so it is refused rather than guessed at.
pub fn parse_pg_version(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let mut parts = t.split('.');
    let major: u32 = parts
        .next()
        .and_then(|m| m.parse().ok())
        .filter(|_| t.len() <= 8)
        .ok_or_else(|| format!("PG_VERSION says {t:?}, not a PostgreSQL version"))?;
    if !KNOWN.contains(&major) || parts.next().is_some() {
        return Err(format!(
            "PostgreSQL {t} is not supported: pgdr knows the formats of PostgreSQL {} to {}",
            KNOWN.start(),
            KNOWN.end()
        ));
    }
    Ok(major)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_majors_and_refusals() {
        for m in 12..=18 {
            assert_eq!(parse_pg_version(&format!("{m}\n")), Ok(m));
        }
        for t in ["11", "19", "9.6", "10"] {
            let e = parse_pg_version(t).unwrap_err();
            assert!(
                e.contains("not supported") && e.contains("12 to 18"),
                "{t}: {e}"
            );
        }
        assert!(parse_pg_version("")
            .unwrap_err()
            .contains("not a PostgreSQL version"));
        assert!(parse_pg_version("x15").is_err());
    }
}
