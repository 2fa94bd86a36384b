//! Which timeline a recovery from a repository ends on, and whether a copy (a snapshot, an
//! image) lies on its history: what snap-clone chooses from, snap-prune --repo counts and
//! snap-take --list shows.
//!
//! A clone recovers with recovery_target_timeline = latest: PostgreSQL looks for the history
//! files of the snapshot's timeline + 1, + 2, … through restore_command and follows the newest
//! it finds (xlogrecovery.c findNewestTimeLine). After a failover that timeline branched off
//! the snapshot's at a switch point. A snapshot whose copy is consistent only after that point
//! (its checkpoint, a standby's minimum recovery point, a backup's stop, or for an atomic
//! snapshot of a primary the end of its pg_wal, which crash recovery replays first) holds
//! changes of the abandoned timeline the newer one never had: PostgreSQL refuses some of these
//! ("requested timeline is not a child of this server's history") but not a crash image whose
//! checkpoint is before the switch, whose clone would then silently keep the lost changes.

use crate::file::{self, RestoreError};
use crate::repo::Repo;
use pgdr_core::{Error, Result};
use pgdr_pgformat::history::{self, Entry};
use pgdr_pgformat::wal_name::WalName;
use pgdr_pgformat::Lsn;

/// The newest timeline of a repository and its history (the timelines it descends from,
/// each with the LSN where the next one branched off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub timeline: u32,
    pub history: Vec<Entry>,
}

/// The newest timeline recovery from `from` finds in `repo`, as findNewestTimeLine probes
/// (history files of from + 1, from + 2, … until one is missing); None when there is none
/// newer, or when the history cannot be read without an identity (an encrypted repository
/// without PGDR_IDENTITY is refused elsewhere).
///
/// # Errors
/// A history file is damaged or malformed, or the repository cannot be read.
pub fn newest(repo: &Repo, from: u32) -> Result<Option<Newest>> {
    let mut found = None;
    let mut tli = from;
    while tli < u32::MAX {
        let name = WalName::parse(&format!("{:08X}.history", tli + 1)).expect("a history name");
        let mut text = Vec::new();
        match file::restore(repo, &name, &mut text) {
            Ok(_) => {}
            Err(RestoreError::Missing) => break,
            Err(RestoreError::Store(_)) if !repo.content_readable() => return Ok(None),
            Err(RestoreError::Store(e)) => return Err(e),
            Err(RestoreError::Damaged(why)) => {
                return Err(
                    Error::failed(format!("cannot read {name} in {}", repo.location()))
                        .because(why),
                )
            }
            Err(RestoreError::Write(e)) => {
                return Err(Error::failed(format!("cannot read {name}")).because(e.to_string()))
            }
        }
        let entries = history::parse(&String::from_utf8_lossy(&text)).map_err(|e| {
            Error::failed(format!("cannot read {name} in {}", repo.location()))
                .because(format!("malformed: {e}"))
        })?;
        tli += 1;
        found = Some(Newest {
            timeline: tli,
            history: entries,
        });
    }
    Ok(found)
}

/// The timeline after `top` (the newest a recovery finds) when the repository holds WAL of it
/// but not its history file: PostgreSQL finds timelines only by their history files, so a
/// recovery would ignore that WAL and end on `top` (a new primary promoted with archiving
/// off, a clone promoted and made a primary, never archived its history).
///
/// # Errors
/// The repository cannot be listed.
pub fn unfollowable(repo: &Repo, top: u32) -> Result<Option<u32>> {
    let Some(next) = top.checked_add(1) else {
        return Ok(None);
    };
    let listing = repo.store().list(&format!("wal/{next:08X}/"))?;
    Ok(listing
        .objects
        .iter()
        .any(|o| {
            crate::repo::name_of(&o.key)
                .is_some_and(|w| w.kind == pgdr_pgformat::wal_name::Kind::Segment)
        })
        .then_some(next))
}

/// Whether a copy of timeline `timeline` consistent at `consistent` recovers onto `newest`:
/// on it, or on a timeline it descends from, consistent no later than where that one ended.
/// The reason when not.
pub fn fits(newest: &Newest, timeline: u32, consistent: Lsn) -> std::result::Result<(), String> {
    if timeline == newest.timeline {
        return Ok(());
    }
    match newest.history.iter().find(|e| e.timeline == timeline) {
        Some(e) if consistent <= e.switchpoint => Ok(()),
        Some(e) => Err(format!(
            "it is consistent only at {consistent} on timeline {timeline}, after {} where timeline \
             {} branched off (a failover or promotion): recovering it onto timeline {} would \
             keep timeline {timeline}'s changes after the switch",
            e.switchpoint, newest.timeline, newest.timeline
        )),
        None => Err(format!(
            "its timeline {timeline} is not in the history of timeline {}, the newest in the \
             repository",
            newest.timeline
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newest() -> Newest {
        Newest {
            timeline: 3,
            history: history::parse(
                "1\t0/A66CAC8\tno recovery target specified\n2\t0/C000000\tx\n",
            )
            .unwrap(),
        }
    }

    #[test]
    fn a_copy_consistent_after_the_switch_does_not_fit() {
        let n = newest();
        assert!(fits(&n, 3, Lsn(1)).is_ok());
        assert!(fits(&n, 1, "0/7000080".parse().unwrap()).is_ok());
        assert!(fits(&n, 1, "0/A66CAC8".parse().unwrap()).is_ok());
        let e = fits(&n, 1, "0/D1AA0A0".parse().unwrap()).unwrap_err();
        assert!(e.contains("0/A66CAC8") && e.contains("timeline 3"), "{e}");
        assert!(fits(&n, 2, "0/B000000".parse().unwrap()).is_ok());
        assert!(fits(&n, 2, "0/C000001".parse().unwrap()).is_err());
        assert!(fits(&n, 4, Lsn(1))
            .unwrap_err()
            .contains("not in the history"));
    }
}
