//! Recovery targets: parsing, the settings they become, and which snapshots can serve them.
//!
//! PostgreSQL refuses to stop recovery before the copy is consistent (`FATAL: requested
//! recovery stop point is before consistent recovery point`, xlogrecovery.c), and leaves the
//! server down. So a target is only accepted for a snapshot whose consistent point lies at or
//! before it: for a time, the moment the snapshot had completed (every commit in its WAL is
//! older); for an LSN, the snapshot's checkpoint, its standby minimum recovery point and its
//! backup's stop LSN.

use chrono::{DateTime, SecondsFormat, Utc};
use pgdr_pgformat::Lsn;
use pgdr_snap::SnapshotMeta;

/// Where recovery stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Time(DateTime<Utc>),
    Lsn(Lsn),
    /// As soon as the copy is consistent: the snapshot's own moment.
    Immediate,
    /// The end of the WAL the archive (and the snapshot's pg_wal) holds: "everything we
    /// have". PostgreSQL has no such target: no target is set, and the clone either runs in
    /// standby mode until it waits for WAL the archive does not have, then is paused there,
    /// or ends recovery at the end of WAL (promote).
    Latest,
}

/// Every recovery target parameter: PostgreSQL allows at most one to be set, so the ones not
/// used are written as '' (which also overrides any left in postgresql.conf).
pub const TARGET_PARAMS: &[&str] = &[
    "recovery_target",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
];

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Time(_) => "time",
            Target::Lsn(_) => "lsn",
            Target::Immediate => "immediate",
            Target::Latest => "latest",
        }
    }

    /// The parameter and value this target is written as (None for [`Target::Latest`]: no
    /// target parameter at all).
    pub fn setting(&self) -> Option<(&'static str, String)> {
        Some(match self {
            // UTC with an explicit offset: PostgreSQL would read a bare time in the server's
            // zone, and rejects zone abbreviations here.
            Target::Time(t) => (
                "recovery_target_time",
                t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string(),
            ),
            Target::Lsn(l) => ("recovery_target_lsn", l.to_string()),
            Target::Immediate => ("recovery_target", "immediate".into()),
            Target::Latest => return None,
        })
    }

    /// The target as reported in JSON (RFC 3339 for a time).
    pub fn display(&self) -> String {
        match self {
            Target::Time(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            Target::Lsn(l) => l.to_string(),
            Target::Immediate => "immediate".into(),
            Target::Latest => "latest".into(),
        }
    }

    /// The postgresql.auto.conf changes: every other target cleared, then this one set.
    /// The order matters: PostgreSQL's assign hooks apply the file in order and fail
    /// ("multiple recovery targets specified") when a '' comes after a set target.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let set = self.setting();
        let mut v: Vec<(&'static str, String)> = TARGET_PARAMS
            .iter()
            .filter(|p| set.as_ref().is_none_or(|(name, _)| *p != name))
            .map(|p| (*p, String::new()))
            .collect();
        v.extend(set);
        v
    }
}

/// A time with an explicit offset: RFC 3339 (`2026-03-21T09:28:37Z`,
/// `2026-03-21T11:28:37.5+02:00`), a space instead of `T`, or PostgreSQL's `+00` / `+0200`
/// offsets. A time without an offset is refused: it would mean different moments on hosts in
/// different zones.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    let mut norm = t.to_string();
    if norm.len() > 10 && norm.as_bytes()[10] == b' ' {
        norm.replace_range(10..11, "T");
    }
    let norm = norm.replace(' ', "");
    if let Ok(d) = DateTime::parse_from_rfc3339(&norm) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_str(&norm, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Ok(d.with_timezone(&Utc));
    }
    let has_offset =
        norm.len() > 19 && (norm.ends_with(['Z', 'z']) || norm[19..].contains(['+', '-']));
    if chrono::NaiveDateTime::parse_from_str(&norm, "%Y-%m-%dT%H:%M:%S%.f").is_ok() && !has_offset {
        return Err(format!(
            "{t:?} has no time zone offset (add Z or +HH:MM, e.g. {t}Z)"
        ));
    }
    Err(format!(
        "{t:?} is not a time like 2026-03-21T09:28:37Z or '2026-03-21 11:28:37+02'"
    ))
}

/// Whether the snapshot can serve the target; the reason when not.
pub fn check(meta: &SnapshotMeta, target: &Target) -> Result<(), String> {
    match target {
        Target::Immediate | Target::Latest => Ok(()),
        Target::Time(t) => {
            let c = meta.consistent_at;
            if *t < c {
                Err(format!(
                    "the recovery target {} is before {}'s consistent point {}: PostgreSQL \
                     would stop before the copy is consistent (requested recovery stop point \
                     is before consistent recovery point)",
                    target.display(),
                    meta.snapshot,
                    c.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                ))
            } else {
                Ok(())
            }
        }
        Target::Lsn(l) => {
            let m = meta.consistent_lsn();
            if *l < m {
                Err(format!(
                    "the recovery target {l} is before {}'s consistent point {m}: PostgreSQL \
                     would stop before the copy is consistent (requested recovery stop point \
                     is before consistent recovery point)",
                    meta.snapshot
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// The snapshots that can serve the target, best (newest) first.
pub fn serving<'a>(snaps: &'a [SnapshotMeta], target: &Target) -> Vec<&'a SnapshotMeta> {
    let mut v: Vec<&SnapshotMeta> = snaps.iter().filter(|m| check(m, target).is_ok()).collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.consistent_at));
    v
}

/// `--before T`: the newest snapshot whose consistent point lies at or before T.
pub fn choose_before(snaps: &[SnapshotMeta], t: DateTime<Utc>) -> Option<&SnapshotMeta> {
    snaps
        .iter()
        .filter(|m| m.consistent_at <= t)
        .max_by_key(|m| m.consistent_at)
}

/// "a, b, c" of up to `n` snapshot names (with "and N more").
pub fn name_list(v: &[&SnapshotMeta], n: usize) -> String {
    let mut s = v
        .iter()
        .take(n)
        .map(|m| m.snapshot.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if v.len() > n {
        s.push_str(&format!(" and {} more", v.len() - n));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn meta(name: &str, created: DateTime<Utc>, done: DateTime<Utc>) -> SnapshotMeta {
        SnapshotMeta {
            snapshot: name.into(),
            created,
            label: None,
            pgdata: "/d".into(),
            backend: "copy".into(),
            location: "/s".into(),
            pgdata_rel: String::new(),
            members: vec![],
            tablespaces: vec![],
            pg_version: 15,
            system_identifier: "1".into(),
            timeline: 1,
            checkpoint_lsn: "0/3000060".parse().unwrap(),
            redo_lsn: "0/3000028".parse().unwrap(),
            checkpoint_time: created,
            wal_start: "000000010000000000000003".into(),
            wal_segment_size: 16 << 20,
            method: "atomic".into(),
            min_recovery_point: Some("0/3500000".parse().unwrap()),
            wal_end: None,
            backup: None,
            tool_version: "0".into(),
            consistent_at: done,
            removed_leftovers: vec![],
        }
    }

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 21, 9, 0, s).unwrap()
    }

    #[test]
    fn times_need_an_offset() {
        let want = Utc.with_ymd_and_hms(2026, 3, 21, 9, 28, 37).unwrap();
        for s in [
            "2026-03-21T09:28:37Z",
            "2026-03-21 09:28:37Z",
            "2026-03-21 09:28:37+00",
            "2026-03-21 11:28:37+02:00",
            "2026-03-21T11:28:37+0200",
            "2026-03-21 04:28:37-05",
            " 2026-03-21T09:28:37z ",
        ] {
            assert_eq!(parse_time(s), Ok(want), "{s}");
        }
        let frac = parse_time("2026-03-21T09:28:37.250Z").unwrap();
        assert_eq!(frac.timestamp_subsec_millis(), 250);
        assert!(parse_time("2026-03-21 09:28:37")
            .unwrap_err()
            .contains("no time zone offset"));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-03-21 09:28:37 CET").is_err());
    }

    #[test]
    fn settings_set_one_target_and_clear_the_rest() {
        let t = Target::Time(Utc.with_ymd_and_hms(2026, 3, 21, 9, 28, 37).unwrap());
        let s = t.settings();
        assert_eq!(s.len(), 5);
        assert_eq!(s[4].0, "recovery_target_time");
        assert!(s.contains(&(
            "recovery_target_time",
            "2026-03-21 09:28:37.000000+00".into()
        )));
        assert!(s.contains(&("recovery_target", String::new())));
        let i = Target::Immediate.settings();
        assert!(i.contains(&("recovery_target", "immediate".into())));
        assert!(i.contains(&("recovery_target_time", String::new())));
        let l = Target::Lsn("16/B374D848".parse().unwrap());
        assert_eq!(
            l.setting(),
            Some(("recovery_target_lsn", "16/B374D848".into()))
        );
        // latest: no target at all, every target parameter cleared.
        let latest = Target::Latest.settings();
        assert_eq!(latest.len(), 5);
        assert!(latest.iter().all(|(_, v)| v.is_empty()));
    }

    #[test]
    fn consistent_point_decides() {
        let a = meta("pgdr-a", at(0), at(1));
        let b = meta("pgdr-b", at(10), at(12));
        let c = meta("pgdr-c", at(20), at(22));
        let snaps = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(choose_before(&snaps, at(11)).unwrap().snapshot, "pgdr-a");
        assert_eq!(choose_before(&snaps, at(12)).unwrap().snapshot, "pgdr-b");
        assert_eq!(choose_before(&snaps, at(21)).unwrap().snapshot, "pgdr-b");
        assert_eq!(choose_before(&snaps, at(22)).unwrap().snapshot, "pgdr-c");
        assert!(choose_before(&snaps, at(0)).is_none());
        let e = check(&b, &Target::Time(at(11))).unwrap_err();
        assert!(e.contains("before pgdr-b's consistent point"), "{e}");
        assert!(check(&b, &Target::Immediate).is_ok());
        let serve = serving(&snaps, &Target::Time(at(15)));
        assert_eq!(name_list(&serve, 5), "pgdr-b, pgdr-a");
        assert_eq!(name_list(&serve, 1), "pgdr-b and 1 more");
        // LSN: the standby's minimum recovery point is the bound.
        assert!(check(&a, &Target::Lsn("0/3400000".parse().unwrap())).is_err());
        assert!(check(&a, &Target::Lsn("0/3500000".parse().unwrap())).is_ok());
    }
}
