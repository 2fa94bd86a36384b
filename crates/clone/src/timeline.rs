//! Which timeline a clone recovers onto, and whether a snapshot lies on its history: the
//! rule and the probe live in [`pgdr_repo::timeline`], shared with snap-prune and the lists.

pub use pgdr_repo::timeline::{fits, newest, Newest};
use pgdr_snap::meta::SnapshotMeta;

/// [`fits`] for a snapshot, by its metadata.
pub fn snapshot_fits(newest: &Newest, m: &SnapshotMeta) -> std::result::Result<(), String> {
    fits(newest, m.timeline, m.consistent_lsn())
}
