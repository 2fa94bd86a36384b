//! What a killed run left: a clone whose record still says `creating` although the run that
//! wrote it is gone. SIGINT and SIGTERM roll a run back; SIGKILL (or a crash) cannot be
//! caught, and would leave the clone's storage, its record and, once started, its server
//! (with the raised shared_buffers of recovery) behind. Every run that makes a clone
//! (`--start`, `--into` from a physical snapshot, `--drill`, a bare clone) removes them
//! first, one note each.
//!
//! Why this never touches a live run's clone: snap-clone writes a record in state
//! `creating` only while it holds that name's lock (`NAME.lock`, an flock(2) in the
//! registry, [`Registry::lock`]), and keeps holding it until the record says `ready` or is
//! gone; `--into`'s temporary clone stays `creating`, under the lock, until it is destroyed
//! (or kept with --keep-clone). The kernel drops an flock when its holder dies, so a
//! `creating` record whose lock this run can take (without waiting) belongs to a run that
//! ended without finishing; the record is read again under the lock, and a run starting on
//! that name meanwhile waits for the lock (or exits 75), then finds no record.

use pgdr_core::runner::note;
use pgdr_snap::registry::Registry;

/// Stops and removes every clone of `registry` that a killed run left in state `creating`,
/// noting each on stderr. What cannot be read, locked or removed is left as it was (noted
/// when removing it failed): this is housekeeping before the run's own work, never its
/// failure.
pub fn remove_killed(registry: &Registry) {
    let Ok(records) = registry.list() else {
        return;
    };
    for rec in records.iter().filter(|r| r.state == "creating") {
        let name = &rec.clone;
        // Held by a live run (exit 75 at once): its clone, not a leftover.
        let Ok(_lock) = registry.lock(name, None) else {
            continue;
        };
        let Ok(Some(rec)) = registry.read(name) else {
            continue;
        };
        if rec.state != "creating" {
            continue;
        }
        match crate::destroy::remove(registry, &rec, false) {
            Ok(d) => note(format!(
                "removed clone {name}, left in state creating by a run that was killed{}",
                if d.stopped { " (its server stopped)" } else { "" }
            )),
            Err(e) => note(format!(
                "cannot remove clone {name}, left in state creating by a run that was killed: {e} (snap-clone --destroy {name})"
            )),
        }
    }
}
