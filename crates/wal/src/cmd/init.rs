//! `wal-archive init`: creates a repository (format page, settings, and the cluster when one
//! is named), or confirms the one there (SPEC "Repositories").

use crate::doc::InitReport;
use pgdr_core::{Context, Error, Result};
use pgdr_repo::repo::{Identity, InitRequest, Repo};
use pgdr_repo::stored::Compression;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// push's default compression (none given: zstd).
    pub compression: Option<Compression>,
    /// push's default zstd level.
    pub level: Option<i32>,
    /// Bind to this data directory's cluster (read from its pg_control).
    pub pgdata: Option<PathBuf>,
    /// Bind to this server's cluster (a conninfo).
    pub dbname: Option<String>,
    /// Encrypt every object to these recipients (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`).
    pub encrypt_to: Vec<String>,
    /// Files listing more recipients, one a line (`age -R` files).
    pub encrypt_to_file: Vec<PathBuf>,
}

/// The cluster of a data directory, from `global/pg_control` (src/include/catalog/pg_control.h).
///
/// # Errors
/// Not a data directory, unreadable, or a pg_control that cannot be trusted.
pub fn identity_of_pgdata(pgdata: &Path) -> Result<Identity> {
    let path = pgdata.join("global/pg_control");
    let bytes = std::fs::read(&path).context(|| {
        format!(
            "cannot read the cluster of {}: {} is not readable",
            pgdata.display(),
            path.display()
        )
    })?;
    let c = pgdr_pgformat::control::parse(&bytes)
        .map_err(|why| Error::failed(format!("cannot read {}", path.display())).because(why))?;
    Ok(Identity {
        system_identifier: c.system_identifier,
        wal_segment_size: c.wal_segment_size as u64,
    })
}

/// The cluster a server runs, asked with `pg_control_system()` and `pg_control_init()`.
///
/// # Errors
/// Cannot connect, or the query fails.
pub fn identity_of_server(dsn: &str) -> Result<Identity> {
    let mut client = pgdr_core::conn::connect(Some(dsn))?;
    let sql = "SELECT system_identifier::text, (SELECT bytes_per_wal_segment FROM pg_control_init())::text FROM pg_control_system()";
    let rows = client.simple_query(sql).map_err(|e| {
        Error::failed("cannot read the server's system identifier")
            .because(pgdr_core::conn::error_text(&e))
    })?;
    let row = rows
        .into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .ok_or_else(|| {
            Error::failed("cannot read the server's system identifier").because("no row")
        })?;
    let field = |i: usize| row.get(i).and_then(|v| v.parse::<u64>().ok());
    match (field(0), field(1)) {
        (Some(system_identifier), Some(wal_segment_size)) => Ok(Identity {
            system_identifier,
            wal_segment_size,
        }),
        _ => Err(Error::failed("cannot read the server's system identifier")
            .because("pg_control_system() gave no usable value")),
    }
}

/// Creates (or confirms) the repository at `location`.
///
/// # Errors
/// Bad options (exit 2), a cluster that cannot be read, a location that cannot become a
/// repository, an existing repository with other settings (exit 1).
pub fn init(location: &Path, o: &InitOptions) -> Result<InitReport> {
    if let Some(l) = o.level {
        o.compression.unwrap_or(Compression::Zstd).level(Some(l))?;
    }
    let mut encrypt_to = Vec::new();
    for r in &o.encrypt_to {
        pgdr_repo::crypt::parse_recipient(r)?;
        encrypt_to.push(r.trim().to_string());
    }
    for f in &o.encrypt_to_file {
        encrypt_to.extend(pgdr_repo::crypt::read_recipients_file(f)?);
    }
    encrypt_to.dedup();
    let identity = match (&o.pgdata, &o.dbname) {
        (Some(p), _) => Some(identity_of_pgdata(p)?),
        (None, Some(d)) => Some(identity_of_server(d)?),
        (None, None) => None,
    };
    // As root, a new repository belongs to the data directory's owner: the user whose
    // archive_command will write into it.
    let owner = o
        .pgdata
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| (m.uid(), m.gid()));
    let (repo, created) = Repo::init(
        location,
        &InitRequest {
            compression: o.compression,
            compression_level: o.level,
            identity,
            owner,
            encrypt_to,
        },
    )?;
    let s = repo.settings();
    let id = repo.identity();
    Ok(InitReport {
        repo: repo.location(),
        created,
        format_version: s.version,
        compression: repo.compression(),
        compression_level: s.compression_level,
        system_identifier: id.map(|i| i.system_identifier.to_string()),
        wal_segment_size: id.map(|i| i.wal_segment_size),
        owner: (repo.store().kind() == "local")
            .then(|| std::fs::metadata(location).ok())
            .flatten()
            .map(|m| {
                pgdr_core::owner::user_by_uid(m.uid())
                    .map(|u| u.name)
                    .unwrap_or_else(|| m.uid().to_string())
            }),
        kind: repo.store().kind().to_string(),
        encrypt_to: s.encrypt_to.clone().unwrap_or_default(),
    })
}
