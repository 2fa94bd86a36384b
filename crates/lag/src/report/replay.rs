//! A standby's replay delay without the idle-primary false alarm.

use pgdr_pgformat::Lsn;

/// One look at a standby's positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positions {
    /// pg_last_wal_receive_lsn(): received and flushed.
    pub receive: Option<Lsn>,
    /// pg_last_wal_replay_lsn(): replayed.
    pub replay: Option<Lsn>,
    /// Seconds since the last replayed commit (pg_last_xact_replay_timestamp()).
    pub last_replay_age: Option<f64>,
}

impl Positions {
    /// Everything received has been replayed.
    pub fn caught_up(&self) -> bool {
        matches!((self.receive, self.replay), (Some(rc), Some(rp)) if rp >= rc)
    }
}

/// The replay delay from a first look and a later one (the same look when it was caught up).
///
/// The age of the last replayed commit grows while the primary is idle, so it is a delay
/// only while received WAL waits to be replayed. Even then a single look can catch the
/// standby between receiving and replaying a record written after a long idle period; so a
/// standby that, at the later look, has replayed everything the first look saw received is
/// keeping up and has no delay.
pub fn replay_delay(first: &Positions, last: &Positions) -> (bool, Option<f64>) {
    let keeping_up = first.caught_up()
        || last.caught_up()
        || matches!((first.receive, last.replay), (Some(rc), Some(rp)) if rp >= rc);
    if keeping_up {
        (true, Some(0.0))
    } else {
        (false, last.last_replay_age.map(|a| a.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    fn pos(rc: Option<&str>, rp: Option<&str>, age: Option<f64>) -> Positions {
        Positions {
            receive: rc.map(lsn),
            replay: rp.map(lsn),
            last_replay_age: age,
        }
    }

    #[test]
    fn idle_primary_is_no_delay() {
        let p = pos(Some("0/3000000"), Some("0/3000000"), Some(3600.0));
        assert_eq!(replay_delay(&p, &p), (true, Some(0.0)));
        // Replay ahead of receive (the receiver restarts at a segment start).
        let p = pos(Some("0/3000000"), Some("0/3000100"), Some(3600.0));
        assert_eq!(replay_delay(&p, &p), (true, Some(0.0)));
    }

    #[test]
    fn stuck_replay_is_a_delay() {
        let a = pos(Some("0/3000100"), Some("0/3000000"), Some(50.0));
        let b = pos(Some("0/3000200"), Some("0/3000000"), Some(50.3));
        assert_eq!(replay_delay(&a, &b), (false, Some(50.3)));
        // Clock skew: the primary's clock ahead of ours.
        let c = pos(Some("0/3000200"), Some("0/3000000"), Some(-2.0));
        assert_eq!(replay_delay(&a, &c), (false, Some(0.0)));
        // Nothing replayed since start-up: unknown, not zero.
        let d = pos(Some("0/3000200"), Some("0/3000000"), None);
        assert_eq!(replay_delay(&a, &d), (false, None));
    }

    #[test]
    fn a_standby_that_keeps_up_is_no_delay() {
        // First look caught it between receive and replay after a long idle period.
        let a = pos(Some("0/3000100"), Some("0/3000000"), Some(3600.0));
        let b = pos(Some("0/3000300"), Some("0/3000100"), Some(3600.0));
        assert_eq!(replay_delay(&a, &b), (true, Some(0.0)));
    }
}
