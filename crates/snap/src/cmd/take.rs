//! snap-take's operation: a snapshot of a data directory, atomic (crash-consistent) or in
//! backup mode held in one session, with its metadata stored beside it.

use crate::backend::{Backend, BackendKind};
use crate::datadir::{self, Layout};
use crate::meta::{self, BackupInfo, SnapshotMeta};
use chrono::{DateTime, SubsecRound, Utc};
use pgdr_core::{Error, Result};
use pgdr_pgformat::control::{self, ControlData};
use pgdr_pgformat::Lsn;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What snap-take was asked for.
#[derive(Debug, Clone)]
pub struct TakeRequest {
    /// The data directory.
    pub pgdata: PathBuf,
    /// The backend, or None to detect it.
    pub backend: Option<BackendKind>,
    /// The snapshot store, or None for the default.
    pub snapshot_dir: Option<PathBuf>,
    pub options: TakeOptions,
    /// How long to wait for another run's lock.
    pub wait_lock: Option<Duration>,
}

/// Takes a snapshot of `req.pgdata` under the lock of its snapshots.
///
/// # Errors
/// Not a data directory, the storage cannot be used, the lock is held (exit 75), or taking
/// the snapshot failed (nothing is left behind).
pub fn run(req: &TakeRequest) -> Result<SnapshotMeta> {
    if let Some(l) = &req.options.label {
        meta::check_label_arg("--label", l)?;
    }
    let pgdata = datadir::check_data_dir(&req.pgdata)?;
    let backend = Backend::detect(&pgdata, req.backend, req.snapshot_dir.as_deref())?;
    let _lock = backend.lock(req.wait_lock)?;
    // Under the lock no other run of this store is taking a snapshot, so what an unfinished
    // one leaves is a killed run's (see backend::leftovers): removed before this snapshot
    // needs the space.
    let removed = crate::backend::leftovers::remove(&backend, false)?;
    let mut meta = take(&backend, &req.options)?;
    meta.removed_leftovers = removed;
    Ok(meta)
}

/// What to take.
#[derive(Debug, Clone, Default)]
pub struct TakeOptions {
    pub label: Option<String>,
    /// A conninfo: backup mode (`pg_backup_start`/`pg_backup_stop`) around the snapshot.
    pub dsn: Option<String>,
    /// The time to name the snapshot by (now when None).
    pub at: Option<DateTime<Utc>>,
}

/// Reads and checks a pg_control file, retrying a read torn by a concurrent write.
pub fn read_control(path: &Path) -> Result<ControlData> {
    let mut last = String::new();
    for _ in 0..5 {
        let bytes = pgdr_core::fsx::read_bytes(path)?;
        match control::parse(&bytes) {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(Error::failed(format!("cannot use {}", path.display())).because(last))
}

fn same_checkpoint(a: &ControlData, b: &ControlData) -> bool {
    a.system_identifier == b.system_identifier
        && a.checkpoint_lsn == b.checkpoint_lsn
        && a.redo_lsn == b.redo_lsn
        && a.timeline == b.timeline
}

/// A backup-mode session: started before the snapshot, stopped after, on one connection.
struct BackupSession {
    client: postgres::Client,
    new_names: bool,
}

impl BackupSession {
    fn start(dsn: &str, label: &str, control: &ControlData) -> Result<BackupSession> {
        let mut client = pgdr_core::conn::connect(Some(dsn))?;
        let q = |c: &mut postgres::Client, sql: &str| -> Result<postgres::Row> {
            c.query_one(sql, &[]).map_err(|e| {
                Error::failed("backup mode failed").because(pgdr_core::conn::error_text(&e))
            })
        };
        let num: i32 = q(
            &mut client,
            "SELECT current_setting('server_version_num')::int",
        )?
        .get(0);
        if num < 120000 {
            return Err(Error::failed("backup mode failed").because(format!(
                "the server runs PostgreSQL {}; 12 or later is needed",
                num / 10000
            )));
        }
        // The server must be the one whose data directory we snapshot.
        if let Ok(row) = client.query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        ) {
            let sysid: String = row.get(0);
            if sysid != control.system_identifier.to_string() {
                return Err(Error::failed("refusing backup mode")
                    .because(format!(
                        "the server at -d has system identifier {sysid}, the data directory {}",
                        control.system_identifier
                    ))
                    .hint("point -d at the server that runs on --pgdata"));
            }
        }
        let new_names = num >= 150000;
        let sql = if new_names {
            "SELECT pg_backup_start($1, true)::text"
        } else {
            "SELECT pg_start_backup($1, true, false)::text"
        };
        client.query_one(sql, &[&label]).map_err(|e| {
            Error::failed("cannot start backup mode").because(pgdr_core::conn::error_text(&e))
        })?;
        Ok(BackupSession { client, new_names })
    }

    /// (stop lsn, backup_label, tablespace_map).
    fn stop(mut self) -> Result<(Lsn, String, Option<String>)> {
        // wait_for_archive => false: the snapshot holds what it needs or the archive will; a
        // cron job must not hang on a broken archive_command.
        let sql = if self.new_names {
            "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)"
        } else {
            "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)"
        };
        let row = self.client.query_one(sql, &[]).map_err(|e| {
            Error::failed("cannot stop backup mode").because(pgdr_core::conn::error_text(&e))
        })?;
        let lsn: String = row.get(0);
        let label: String = row.get(1);
        let map: Option<String> = row.get(2);
        let lsn = lsn
            .parse::<Lsn>()
            .map_err(|e| Error::failed("cannot stop backup mode").because(e))?;
        Ok((lsn, label, map.filter(|m| !m.is_empty())))
    }
}

/// Takes a snapshot of the backend's data directory and stores its metadata. On any failure
/// after the snapshot exists, the snapshot is destroyed: nothing half-made stays behind.
pub fn take(backend: &Backend, opts: &TakeOptions) -> Result<SnapshotMeta> {
    let pgdata = backend.pgdata().to_path_buf();
    let layout = Layout::of(&pgdata)?;
    let tablespaces = backend.check_layout(&layout)?;
    let pg_version = datadir::pg_version(&pgdata)?;
    let live_control = pgdata.join("global/pg_control");
    let before = read_control(&live_control)?;
    let copy_backend = matches!(backend, Backend::Copy(_));
    if copy_backend && opts.dsn.is_none() && datadir::postmaster_pid(&pgdata).is_some() {
        return Err(Error::failed(format!(
            "cannot copy {} while its server runs",
            pgdata.display()
        ))
        .because("a directory copy is not one instant, so it would not be consistent")
        .hint("pass -d CONNINFO for backup mode, stop the server, or use zfs or btrfs"));
    }
    backend.ensure_store()?;
    let (created, name) = free_name(backend, opts)?;
    let session = match &opts.dsn {
        Some(dsn) => Some(BackupSession::start(dsn, &name, &before)?),
        None => None,
    };
    // SIGINT/SIGTERM must not leave a snapshot without metadata or a partial copy: from
    // here the signal only sets a flag; a copy polls it, and the snapshot is rolled back.
    pgdr_core::signals::set_cooperative(true);
    let created_at = match backend {
        Backend::Copy(c) if session.is_some() => c.create(&name, true),
        _ => backend.create(&name),
    };
    let location = match created_at {
        Ok(l) => l,
        Err(e) => {
            pgdr_core::signals::set_cooperative(false);
            return Err(e);
        }
    };
    let finish = || -> Result<SnapshotMeta> {
        let backup = match session {
            Some(s) => {
                let (stop_lsn, label_text, map) = s.stop()?;
                let label = pgdr_pgformat::backup_label::parse(&label_text)
                    .map_err(|e| Error::failed("cannot read the backup label").because(e))?;
                Some((stop_lsn, label_text, map, label))
            }
            None => None,
        };
        if let (Backend::Copy(c), Some((_, _, _, l))) = (backend, &backup) {
            c.finish_wal(&name, &l.start_wal)?;
        }
        let ctl_bytes = match backend.read_in_snapshot(&name, "global/pg_control")? {
            Some(b) => Some(b),
            None => {
                let after = read_control(&live_control)?;
                if same_checkpoint(&before, &after) {
                    None // unchanged across the snapshot, so it is the snapshot's
                } else {
                    Some(backend.read_via_clone(&name, "global/pg_control")?)
                }
            }
        };
        let ctl = match ctl_bytes {
            Some(b) => control::parse(&b).map_err(|e| {
                Error::failed("the snapshot's pg_control cannot be used").because(e)
            })?,
            None => before.clone(),
        };
        let mut wal_start = ctl.redo_wal_file();
        // An atomic snapshot of a primary is consistent only at the end of its pg_wal. Read
        // from the live pg_wal now, which holds all of the snapshot's and a little more; best
        // effort (a checkpoint may have recycled the redo segment meanwhile): without it
        // snap-clone reads the clone's own pg_wal before starting it.
        let crash_image =
            backup.is_none() && ctl.min_recovery_point.0 == 0 && ctl.state != "shut down";
        let wal_end = crash_image
            .then(|| {
                crate::wal_end::wal_end(
                    &layout.pg_wal,
                    ctl.redo_lsn,
                    ctl.timeline,
                    ctl.wal_segment_size as u64,
                )
                .ok()
                .flatten()
            })
            .flatten();
        let backup = backup.map(|(stop_lsn, label_text, map, label)| {
            // The label's start is never after the snapshot's own redo point.
            wal_start = label.start_wal.clone();
            BackupInfo {
                backup_label: label_text,
                tablespace_map: map,
                start_lsn: label.start_lsn,
                stop_lsn,
                from_standby: label.backup_from.as_deref() == Some("standby"),
            }
        });
        let members = match backend {
            Backend::Zfs(z) => z.members.clone(),
            _ => Vec::new(),
        };
        let m = SnapshotMeta {
            snapshot: name.clone(),
            created,
            label: opts.label.clone(),
            pgdata: pgdata.clone(),
            backend: backend.kind().name().to_string(),
            location: location.clone(),
            pgdata_rel: backend.pgdata_rel(),
            members,
            tablespaces,
            pg_version,
            system_identifier: ctl.system_identifier.to_string(),
            timeline: ctl.timeline,
            checkpoint_lsn: ctl.checkpoint_lsn,
            redo_lsn: ctl.redo_lsn,
            checkpoint_time: DateTime::from_timestamp(ctl.checkpoint_time, 0).unwrap_or_default(),
            wal_start,
            wal_segment_size: ctl.wal_segment_size as u64,
            method: if backup.is_some() { "backup" } else { "atomic" }.into(),
            min_recovery_point: (ctl.min_recovery_point.0 != 0).then_some(ctl.min_recovery_point),
            wal_end,
            backup,
            tool_version: pgdr_core::VERSION.into(),
            consistent_at: Utc::now(),
            removed_leftovers: Vec::new(),
        };
        backend.set_meta(&m)?;
        // btrfs and copy: the name appears only now, with its sidecar; until here a kill
        // leaves `.NAME.partial`, which the next run removes (backend::leftovers).
        backend.publish(&name)?;
        Ok(m)
    };
    let r = finish();
    pgdr_core::signals::set_cooperative(false);
    match r {
        Ok(m) if !pgdr_core::signals::interrupted() => Ok(m),
        Ok(_) => {
            rollback(backend, &name);
            Err(Error::failed("interrupted")
                .because("the snapshot was removed again; nothing changed"))
        }
        Err(e) => {
            rollback(backend, &name);
            Err(e)
        }
    }
}

/// The time and name of a new snapshot: whole seconds, as most names are; when another
/// snapshot has that second already, milliseconds (a millisecond later than asked for when
/// needed, so two snapshots of one instant still get two names and an order).
fn free_name(backend: &Backend, opts: &TakeOptions) -> Result<(DateTime<Utc>, String)> {
    let label = opts.label.as_deref();
    let at = opts.at.unwrap_or_else(Utc::now).trunc_subsecs(3);
    let whole = meta::snapshot_name(at, label, false);
    if !backend.exists(&whole)? {
        return Ok((at, whole));
    }
    let mut t = at;
    for _ in 0..1000 {
        t += chrono::Duration::milliseconds(1);
        let name = meta::snapshot_name(t, label, true);
        if !backend.exists(&name)? {
            return Ok((t, name));
        }
    }
    Err(Error::failed(format!(
        "cannot name a snapshot of {}",
        backend.pgdata().display()
    ))
    .because(format!(
        "{whole} and the thousand names after it exist already"
    )))
}

/// Removes a snapshot whose metadata could not be completed.
fn rollback(backend: &Backend, name: &str) {
    let recursive = matches!(backend, Backend::Zfs(z) if z.members.len() > 1);
    let _ = backend.remove_snapshot(name, recursive);
}
