//! Timeline history files (`TTTTTTTT.history`, src/backend/access/transam/timeline.c): one line
//! per ancestor timeline, `parentTLI <tab> switchpoint <tab> reason`, `#` comments allowed.

use crate::Lsn;

/// One ancestor: timeline `timeline` ended at `switchpoint`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub timeline: u32,
    pub switchpoint: Lsn,
    pub reason: String,
}

/// Parses a history file the way readTimeLineHistory does (strictly increasing timelines).
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut parts = l.splitn(3, |c: char| c.is_ascii_whitespace());
        let bad = |why: &str| format!("line {}: {why}", i + 1);
        let tli: u32 = parts
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("expected a numeric timeline ID"))?;
        let lsn: Lsn = parts
            .next()
            .map(str::trim)
            .ok_or_else(|| bad("missing switch point"))?
            .parse()
            .map_err(|e: String| bad(&e))?;
        if let Some(prev) = out.last() {
            if tli <= prev.timeline {
                return Err(bad("timeline IDs must be in increasing sequence"));
            }
        }
        out.push(Entry {
            timeline: tli,
            switchpoint: lsn,
            reason: parts.next().unwrap_or("").trim().to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_output() {
        let t =
            "1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tat restore point \"x\"\n";
        let h = parse(t).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].timeline, 1);
        assert_eq!(h[0].switchpoint.to_string(), "0/3000158");
        assert_eq!(h[1].reason, "at restore point \"x\"");
        assert!(parse("# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("x\t0/1\n").is_err());
        assert!(parse("1\tzz\n").is_err());
        assert!(parse("2\t0/1\tr\n1\t0/2\tr\n").is_err());
    }
}
