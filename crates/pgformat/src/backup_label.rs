//! The backup label `pg_backup_stop` returns (xlogbackup.c `build_backup_content`).

use crate::Lsn;

/// The fields of a backup label a restore needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupLabel {
    pub start_lsn: Lsn,
    /// The WAL file of the start location: the oldest file a restore from it needs.
    pub start_wal: String,
    pub checkpoint_lsn: Lsn,
    pub timeline: Option<u32>,
    /// "primary" or "standby" (PostgreSQL 13 writes "master", read as "primary").
    pub backup_from: Option<String>,
    pub label: Option<String>,
}

/// Parses the label text. Unknown lines are ignored (newer servers add some).
pub fn parse(text: &str) -> Result<BackupLabel, String> {
    let mut start = None;
    let mut ckpt = None;
    let mut tli = None;
    let mut from = None;
    let mut label = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        match key {
            "START WAL LOCATION" => {
                // 0/2000028 (file 000000010000000000000002)
                let (lsn, rest) = value
                    .split_once(' ')
                    .ok_or("malformed START WAL LOCATION")?;
                let file = rest
                    .trim()
                    .strip_prefix("(file ")
                    .and_then(|f| f.strip_suffix(')'))
                    .ok_or("malformed START WAL LOCATION")?;
                if file.len() != 24 || !file.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("malformed WAL file name {file:?} in backup label"));
                }
                start = Some((lsn.parse::<Lsn>()?, file.to_string()));
            }
            "CHECKPOINT LOCATION" => ckpt = Some(value.trim().parse::<Lsn>()?),
            "START TIMELINE" => tli = value.trim().parse().ok(),
            // 13's xlog.c writes "master"; 14 renamed it.
            "BACKUP FROM" => {
                from = Some(match value.trim() {
                    "master" => "primary".to_string(),
                    v => v.to_string(),
                })
            }
            "LABEL" => label = Some(value.to_string()),
            _ => {}
        }
    }
    let (start_lsn, start_wal) = start.ok_or("no START WAL LOCATION line in backup label")?;
    Ok(BackupLabel {
        start_lsn,
        start_wal,
        checkpoint_lsn: ckpt.ok_or("no CHECKPOINT LOCATION line in backup label")?,
        timeline: tli,
        backup_from: from,
        label,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_a_pg15_label() {
        let t = "START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n\
                 CHECKPOINT LOCATION: 0/6000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\n\
                 START TIME: 2026-03-21 17:28:37 CST\nLABEL: pgdr-20260321T092837Z\n\
                 START TIMELINE: 1\n";
        let l = super::parse(t).unwrap();
        assert_eq!(l.start_wal, "000000010000000000000006");
        assert_eq!(l.start_lsn.to_string(), "0/6000028");
        assert_eq!(l.checkpoint_lsn.to_string(), "0/6000060");
        assert_eq!(l.backup_from.as_deref(), Some("standby"));
        assert_eq!(l.timeline, Some(1));
        assert!(super::parse("LABEL: x\n").is_err());
        let pg13 = t.replace("BACKUP FROM: standby", "BACKUP FROM: master");
        assert_eq!(
            super::parse(&pg13).unwrap().backup_from.as_deref(),
            Some("primary")
        );
        assert!(super::parse("START WAL LOCATION: 0/1 (file zz)\n").is_err());
    }
}
