//! Which snapshots a policy keeps: restic's `forget` rules plus a PITR window. Pure.
//!
//! Snapshots are ordered newest first (by time to the millisecond, then by name, so equal
//! times and clocks that went backwards still give one order). Then:
//!
//! - the newest snapshot is always kept;
//! - `last N`: the N newest;
//! - `hourly/daily/weekly/monthly/yearly N`: walking newest to oldest, a snapshot is kept when
//!   its calendar period (in the given zone; ISO weeks) differs from that of the previous one
//!   kept for this rule, until N periods are used: the newest snapshot of each of the last N
//!   periods that have snapshots (periods without snapshots do not count). If fewer than N
//!   periods exist, the oldest snapshot is kept too ("oldest daily"), as restic does;
//! - `within D`: every snapshot at most D older than the newest snapshot;
//! - `pitr_window D`: every snapshot at most D older than the newest one, and the newest
//!   snapshot older than that (it serves the window's first moments).
//!
//! Durations are anchored on the newest snapshot, never on the wall clock, so a snap-take
//! that stopped running never lets snap-prune age the history away.
//!
//! Snapshots dated after `now` (a clock that had jumped ahead when they were taken) are kept,
//! as zrepl keeps them, but never anchor anything: the rules above see only the snapshots that
//! are not in the future, anchored on the newest of those, as restic's `forget` does
//! (`findLatestTimestamp`). Otherwise one snapshot dated 2042 would make every real one look
//! years old. Only when every snapshot is in the future do the rules apply to them as they are.

use chrono::{Datelike, NaiveDateTime, TimeZone, Timelike};

/// The keep rules; all `None` is an empty policy (refused by the CLI).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    /// Seconds.
    pub within: Option<u64>,
    /// Seconds.
    pub pitr_window: Option<u64>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// A snapshot as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    /// Seconds since the epoch (UTC).
    pub time: i64,
    /// Milliseconds past `time`: orders snapshots taken within one second (names cannot:
    /// `pgdr-…T110345Z` sorts after `pgdr-…T110345.652Z` though it was taken first).
    pub subsec_millis: u32,
}

/// The verdict for one snapshot: kept when `reasons` is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub name: String,
    pub time: i64,
    pub reasons: Vec<String>,
}

impl Verdict {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Local calendar time of an instant: UTC, the machine's zone, or any other zone (tests use a
/// synthetic one with DST).
pub trait Calendar {
    fn local(&self, t: i64) -> NaiveDateTime;
}

impl<Tz: TimeZone> Calendar for Tz {
    fn local(&self, t: i64) -> NaiveDateTime {
        let utc = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        utc.with_timezone(self).naive_local()
    }
}

#[derive(Clone, Copy)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    fn name(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }
    fn bucket(self, t: NaiveDateTime) -> (i32, u32, u32, u32) {
        match self {
            Period::Hour => (t.year(), t.month(), t.day(), t.hour() + 1),
            Period::Day => (t.year(), t.month(), t.day(), 0),
            Period::Week => {
                let w = t.iso_week();
                (w.year(), w.week(), 0, 0)
            }
            Period::Month => (t.year(), t.month(), 0, 0),
            Period::Year => (t.year(), 0, 0, 0),
        }
    }
}

/// The reason a snapshot dated after `now` is kept.
pub const FUTURE: &str = "dated in the future";

/// Applies `policy` to `items` at the time `now` (seconds since the epoch); returns one
/// verdict per item, newest first.
pub fn apply(items: &[Item], policy: &Policy, cal: &dyn Calendar, now: i64) -> Vec<Verdict> {
    let mut order: Vec<&Item> = items.iter().collect();
    order.sort_by(|a, b| {
        (b.time, b.subsec_millis)
            .cmp(&(a.time, a.subsec_millis))
            .then_with(|| b.name.cmp(&a.name))
    });
    let verdict = |i: &&Item| Verdict {
        name: i.name.clone(),
        time: i.time,
        reasons: Vec::new(),
    };
    let (future, real): (Vec<&Item>, Vec<&Item>) = order.iter().partition(|i| i.time > now);
    if real.is_empty() {
        return apply_real(order.iter().map(verdict).collect(), policy, cal);
    }
    let mut out: Vec<Verdict> = future
        .iter()
        .map(|i| Verdict {
            reasons: vec![FUTURE.into()],
            ..verdict(i)
        })
        .collect();
    out.extend(apply_real(real.iter().map(verdict).collect(), policy, cal));
    out
}

/// The rules over verdicts sorted newest first, anchored on the first.
fn apply_real(mut out: Vec<Verdict>, policy: &Policy, cal: &dyn Calendar) -> Vec<Verdict> {
    let Some(newest) = out.first().map(|v| v.time) else {
        return out;
    };
    out[0].reasons.push("newest".into());
    if let Some(n) = policy.last {
        for v in out.iter_mut().take(n as usize) {
            v.reasons.push("last snapshot".into());
        }
    }
    let rules = [
        (Period::Hour, policy.hourly),
        (Period::Day, policy.daily),
        (Period::Week, policy.weekly),
        (Period::Month, policy.monthly),
        (Period::Year, policy.yearly),
    ];
    for (period, count) in rules {
        let Some(mut budget) = count else { continue };
        let mut last_bucket = None;
        for v in out.iter_mut() {
            if budget == 0 {
                break;
            }
            let b = period.bucket(cal.local(v.time));
            if last_bucket != Some(b) {
                v.reasons.push(format!("{} snapshot", period.name()));
                last_bucket = Some(b);
                budget -= 1;
            }
        }
        // Budget left: the oldest snapshot stands for the periods not yet seen.
        if budget > 0 {
            if let Some(v) = out.last_mut() {
                let r = format!("{} snapshot", period.name());
                if !v.reasons.contains(&r) {
                    v.reasons.push(format!("oldest {r}"));
                }
            }
        }
    }
    if let Some(d) = policy.within {
        let edge = newest.saturating_sub(d as i64);
        for v in out.iter_mut().filter(|v| v.time >= edge) {
            v.reasons.push(format!("within {}", human_duration(d)));
        }
    }
    if let Some(d) = policy.pitr_window {
        let edge = newest.saturating_sub(d as i64);
        let mut before_done = false;
        for v in out.iter_mut() {
            if v.time >= edge {
                v.reasons
                    .push(format!("in the {} PITR window", human_duration(d)));
            } else if !before_done {
                v.reasons
                    .push(format!("base of the {} PITR window", human_duration(d)));
                before_done = true;
            }
        }
    }
    out
}

/// `7d`, `36h`, `90m`, `45s`: the largest unit that divides exactly.
pub fn human_duration(secs: u64) -> String {
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    fn items(times: &[i64]) -> Vec<Item> {
        times
            .iter()
            .enumerate()
            .map(|(i, &t)| Item {
                name: format!("s{i:04}"),
                time: t,
                subsec_millis: 0,
            })
            .collect()
    }
    fn kept(v: &[Verdict]) -> Vec<String> {
        v.iter()
            .filter(|v| v.keep())
            .map(|v| v.name.clone())
            .collect()
    }

    /// A zone with DST: UTC+1, and UTC+2 from the last Sunday-ish of March to October
    /// (fixed instants per year, enough to put repeated and skipped local hours in tests).
    struct DstZone;
    impl Calendar for DstZone {
        fn local(&self, t: i64) -> NaiveDateTime {
            let y = Utc.timestamp_opt(t, 0).unwrap().year();
            let start = Utc.with_ymd_and_hms(y, 3, 29, 1, 0, 0).unwrap().timestamp();
            let end = Utc
                .with_ymd_and_hms(y, 10, 25, 1, 0, 0)
                .unwrap()
                .timestamp();
            let off = if (start..end).contains(&t) {
                7200
            } else {
                3600
            };
            FixedOffset::east_opt(off).unwrap().local(t)
        }
    }

    /// A small deterministic generator (xorshift), so no new dependency is needed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn opt(&mut self, max: u32) -> Option<u32> {
            (self.below(3) > 0).then(|| self.below(max as u64 + 1) as u32)
        }
    }

    /// Snapshot times with the awkward parts: regular runs, long gaps, equal timestamps,
    /// a clock that jumps backwards, and series across DST changes.
    fn gen_times(r: &mut Rng) -> Vec<i64> {
        let base = 1_770_000_000 + r.below(3 * 365 * 86_400) as i64;
        let steps = [60, 900, 3600, 86_400, 7 * 86_400];
        let n = 1 + r.below(120) as usize;
        let mut t = base;
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(t);
            match r.below(10) {
                0 => {}                                // same second
                1 => t -= r.below(7200) as i64,        // clock went back
                2 => t += r.below(40 * 86_400) as i64, // outage
                _ => t += steps[r.below(steps.len() as u64) as usize] + r.below(30) as i64,
            }
        }
        out
    }

    fn gen_policy(r: &mut Rng) -> Policy {
        let mut p = Policy {
            last: r.opt(5),
            hourly: r.opt(30),
            daily: r.opt(10),
            weekly: r.opt(6),
            monthly: r.opt(4),
            yearly: r.opt(2),
            within: (r.below(3) == 0).then(|| r.below(30 * 86_400)),
            pitr_window: (r.below(2) == 0).then(|| r.below(30 * 86_400)),
        };
        if p.is_empty() {
            p.daily = Some(3);
        }
        p
    }

    /// The tests' clock: after every generated time, so nothing is in the future.
    const NOW: i64 = 4_000_000_000;

    fn check_properties(times: &[i64], p: &Policy, cal: &dyn Calendar, case: usize) {
        let its = items(times);
        let v = apply(&its, p, cal, NOW);
        let ctx = || format!("case {case}: policy {p:?} times {times:?}");
        assert_eq!(v.len(), its.len(), "{}", ctx());
        // Newest first, and the newest kept.
        for w in v.windows(2) {
            assert!(w[0].time >= w[1].time, "{}", ctx());
        }
        assert!(v[0].keep(), "newest destroyed: {}", ctx());
        let newest = v[0].time;
        // keep-last.
        if let Some(n) = p.last {
            assert!(v.iter().take(n as usize).all(Verdict::keep), "{}", ctx());
        }
        // keep-within and the PITR window, anchored on the newest snapshot.
        for (d, _) in [(p.within, 0), (p.pitr_window, 1)] {
            if let Some(d) = d {
                for x in &v {
                    if x.time >= newest - d as i64 {
                        assert!(x.keep(), "{} in window destroyed: {}", x.name, ctx());
                    }
                }
            }
        }
        // Every moment of the PITR window has a kept snapshot at or before it (when the
        // input had one): the newest kept snapshot before the window edge exists.
        if let Some(d) = p.pitr_window {
            let edge = newest - d as i64;
            let any_before = v.iter().any(|x| x.time < edge);
            let kept_before = v.iter().any(|x| x.time < edge && x.keep());
            assert_eq!(any_before, kept_before, "no base for the window: {}", ctx());
            if let Some(first_before) = v.iter().find(|x| x.time < edge) {
                assert!(first_before.keep(), "{}", ctx());
            }
        }
        // Bucket rules: at most N periods (+ the oldest), one snapshot per period, and it is
        // the newest snapshot of its period.
        let rules = [
            (Period::Hour, p.hourly),
            (Period::Day, p.daily),
            (Period::Week, p.weekly),
            (Period::Month, p.monthly),
            (Period::Year, p.yearly),
        ];
        for (period, n) in rules {
            let Some(n) = n else { continue };
            let tag = format!("{} snapshot", period.name());
            let by_rule: Vec<&Verdict> = v.iter().filter(|x| x.reasons.contains(&tag)).collect();
            assert!(by_rule.len() <= n as usize, "{}", ctx());
            let mut buckets: Vec<_> = by_rule
                .iter()
                .map(|x| period.bucket(cal.local(x.time)))
                .collect();
            let before = buckets.len();
            buckets.sort();
            buckets.dedup();
            assert_eq!(before, buckets.len(), "two kept in one period: {}", ctx());
            for x in &by_rule {
                let b = period.bucket(cal.local(x.time));
                let first = v
                    .iter()
                    .find(|y| period.bucket(cal.local(y.time)) == b)
                    .unwrap();
                assert_eq!(
                    first.name,
                    x.name,
                    "not the newest of its period: {}",
                    ctx()
                );
            }
            let distinct = {
                let mut all: Vec<_> = v.iter().map(|x| period.bucket(cal.local(x.time))).collect();
                all.sort();
                all.dedup();
                all.len()
            };
            assert_eq!(by_rule.len(), distinct.min(n as usize), "{}", ctx());
        }
        // The same snapshots in another order give the same verdicts.
        let mut shuffled = its.clone();
        shuffled.reverse();
        assert_eq!(
            apply(&shuffled, p, cal, NOW),
            v,
            "order-dependent: {}",
            ctx()
        );
        // Idempotent: pruning what was kept keeps all of it.
        let survivors: Vec<Item> = v
            .iter()
            .filter(|x| x.keep())
            .map(|x| Item {
                name: x.name.clone(),
                time: x.time,
                subsec_millis: 0,
            })
            .collect();
        let again = apply(&survivors, p, cal, NOW);
        assert!(
            again.iter().all(Verdict::keep),
            "second run destroys more: {}",
            ctx()
        );
    }

    #[test]
    fn property_generated_cases() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..600 {
            let times = gen_times(&mut r);
            let p = gen_policy(&mut r);
            if case % 2 == 0 {
                check_properties(&times, &p, &Utc, case);
            } else {
                check_properties(&times, &p, &DstZone, case);
            }
        }
    }

    #[test]
    fn hourly_daily_on_a_regular_series() {
        // Every 15 minutes for 3 days, from 2026-03-01T00:00Z.
        let start = Utc
            .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let times: Vec<i64> = (0..(3 * 96)).map(|i| start + i * 900).collect();
        let p = Policy {
            hourly: Some(24),
            daily: Some(7),
            ..Policy::default()
        };
        let v = apply(&items(&times), &p, &Utc, NOW);
        // 24 hourly (the last of each hour: :45) + dailies of the 2 earlier days (23:45,
        // already counted for day 3 by the newest) + the oldest as "oldest daily".
        let k = kept(&v);
        assert_eq!(k.len(), 24 + 2 + 1, "{k:?}");
        assert!(v
            .last()
            .unwrap()
            .reasons
            .contains(&"oldest daily snapshot".to_string()));
    }

    #[test]
    fn snapshots_of_one_second_go_by_their_milliseconds_not_their_names() {
        // snap-take names the first of a second `…45Z` and the later ones `…45.652Z`.
        let at = |name: &str, ms| Item {
            name: name.into(),
            time: NOW - 10,
            subsec_millis: ms,
        };
        let items = [
            at("pgdr-20261130T110345Z", 235),
            at("pgdr-20261130T110345.652Z", 652),
            at("pgdr-20261130T110345.965Z", 965),
        ];
        let p = Policy {
            last: Some(1),
            ..Policy::default()
        };
        let v = apply(&items, &p, &Utc, NOW);
        assert_eq!(kept(&v), ["pgdr-20261130T110345.965Z"]);
    }

    #[test]
    fn pitr_window_keeps_the_base() {
        let h = 3600;
        let times = [0, 10 * h, 20 * h, 30 * h, 40 * h];
        let p = Policy {
            pitr_window: Some(15 * h as u64),
            ..Policy::default()
        };
        let v = apply(&items(&times), &p, &Utc, NOW);
        // Window [25h, 40h]: 40h and 30h in it, 20h is its base, 10h and 0 go.
        assert_eq!(kept(&v), ["s0004", "s0003", "s0002"]);
        assert!(v[2].reasons[0].starts_with("base of the 15h PITR window"));
    }

    #[test]
    fn dst_repeated_hour_is_two_utc_hours_but_one_local_hour_bucket() {
        // In DstZone the local hour 02:00–03:00 on 2026-10-25 happens twice.
        let t0 = Utc
            .with_ymd_and_hms(2026, 10, 25, 0, 30, 0)
            .unwrap()
            .timestamp();
        let t1 = t0 + 3600;
        assert_eq!(DstZone.local(t0).hour(), DstZone.local(t1).hour());
        let p = Policy {
            hourly: Some(5),
            ..Policy::default()
        };
        let v = apply(&items(&[t0, t1]), &p, &DstZone, NOW);
        assert_eq!(v[0].reasons, ["newest", "hourly snapshot"]);
        assert_eq!(v[1].reasons, ["oldest hourly snapshot"]);
    }

    #[test]
    fn a_future_snapshot_is_kept_and_anchors_nothing() {
        // Snapshots at now-5d, -4d, -1d, now, and one dated 2042 (a clock that jumped).
        let d = 86_400;
        let now = Utc
            .with_ymd_and_hms(2026, 3, 21, 9, 0, 0)
            .unwrap()
            .timestamp();
        let future = Utc
            .with_ymd_and_hms(2042, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let its = items(&[now - 5 * d, now - 4 * d, now - d, now, future]);
        let within = Policy {
            within: Some(2 * d as u64),
            ..Policy::default()
        };
        let v = apply(&its, &within, &Utc, now);
        assert_eq!(v[0].reasons, [FUTURE]);
        assert_eq!(kept(&v), ["s0004", "s0003", "s0002"]);
        assert_eq!(v[1].reasons, ["newest", "within 2d"]);
        let pitr = Policy {
            pitr_window: Some(7 * d as u64),
            ..Policy::default()
        };
        let v = apply(&its, &pitr, &Utc, now);
        assert!(v.iter().all(Verdict::keep), "{v:?}");
        let daily = Policy {
            daily: Some(2),
            ..Policy::default()
        };
        let v = apply(&its, &daily, &Utc, now);
        assert_eq!(kept(&v), ["s0004", "s0003", "s0002"]);
        // Only future snapshots: the rules apply to them as they are.
        let v = apply(&items(&[future, future + d]), &within, &Utc, now);
        assert_eq!(v[0].reasons, ["newest", "within 2d"]);
    }

    #[test]
    fn durations_print_in_their_unit() {
        assert_eq!(human_duration(604_800), "1w");
        assert_eq!(human_duration(7 * 86_400 + 3600), "169h");
        assert_eq!(human_duration(90), "90s");
    }
}
