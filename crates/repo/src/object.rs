//! Any object in the stored-object format (FORMAT.md, "Stored files"), by key: written from a
//! byte stream through the store's staging ([`put`]), read back verified ([`get`]). The WAL
//! files of [`crate::file`] add PostgreSQL's checks around the same format; the pieces and
//! manifests of snapshot images ([`crate::image`]) and the files and manifests of logical dumps
//! ([`crate::dump`]) use it as it is. Whatever the stored-object
//! layer does to a body (compression, and encryption when a repository has it) applies to
//! every object written here, without the callers knowing.

use crate::file::RestoreError;
use crate::repo::Repo;
use crate::store::Created;
use crate::stored::{self, Compression, Damage, Header, ObjectKind, HEADER_LEN};
use pgdr_core::{Context, Error, Result};
use std::io::{Read, Seek, SeekFrom, Write};

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Put {
    /// Published, or the key was taken already (nothing was written then).
    pub created: Created,
    /// The header of the object written (for `Exists`: of the one this call would have made).
    pub header: Header,
    /// Its size as stored (header included).
    pub stored_bytes: u64,
}

fn unbound(repo: &Repo) -> Error {
    Error::failed(format!("cannot write to repository {}", repo.location()))
        .because("it is bound to no database system yet")
}

/// Stores the bytes of `src` under `key` as an object of `kind`: compressed with
/// `compression`/`level`, with the header recording size and SHA-256, published with
/// create-if-absent (a key that exists is left as it is: `Created::Exists`).
///
/// # Errors
/// The repository is bound to no cluster, `src` cannot be read, or the object cannot be
/// staged or published (nothing is published then).
pub fn put(
    repo: &Repo,
    key: &str,
    kind: ObjectKind,
    src: &mut dyn Read,
    compression: Compression,
    level: i32,
) -> Result<Put> {
    let id = repo.identity().ok_or_else(|| unbound(repo))?;
    let store = repo.store();
    let mut staged = store.stage(key)?;
    let temp = staged.path().display().to_string();
    let f = staged.file();
    f.write_all(&[0u8; HEADER_LEN])
        .context(|| format!("cannot write {temp}"))?;
    // No zstd workers: images and dumps already write several objects at once.
    let body = stored::write_body(&[], src, f, compression, level, 0).map_err(|e| match e {
        Ok(read) => Err::<(), _>(read)
            .context(|| format!("cannot read what {key} is made of"))
            .unwrap_err(),
        Err(write) => Err::<(), _>(write)
            .context(|| format!("cannot write {temp}"))
            .unwrap_err(),
    })?;
    let header = Header {
        compression,
        kind,
        size: body.size,
        system_identifier: id.system_identifier,
        sha256: body.sha256,
    };
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.write_all(&header.encode()))
        .context(|| format!("cannot write {temp}"))?;
    let stored_bytes = f
        .metadata()
        .context(|| format!("cannot write {temp}"))?
        .len();
    let created = store.create_if_absent(staged)?;
    Ok(Put {
        created,
        header,
        stored_bytes,
    })
}

/// Reads the object `key` into `out`, verified: header, size, SHA-256, its kind and its
/// cluster (the repository's).
///
/// # Errors
/// [`RestoreError`]: missing, unreadable repository, damaged, of another kind or cluster, or
/// `out` failing. `out` may have received bytes before a failure.
pub fn get(
    repo: &Repo,
    key: &str,
    kind: ObjectKind,
    out: &mut dyn Write,
) -> std::result::Result<Header, RestoreError> {
    let mut o = match repo.store().read(key) {
        Ok(Some(o)) => o,
        Ok(None) => return Err(RestoreError::Missing),
        Err(e) => return Err(RestoreError::Store(e)),
    };
    let h = stored::read_verified(&mut o.reader, out, &mut Vec::new()).map_err(|e| match e {
        Ok(w) => RestoreError::Write(w),
        Err(Damage(why)) => RestoreError::Damaged(why),
    })?;
    if let Some(id) = repo
        .identity()
        .filter(|id| id.system_identifier != h.system_identifier)
    {
        return Err(RestoreError::Damaged(format!(
            "stored for database system {}, the repository is {}",
            h.system_identifier, id.system_identifier
        )));
    }
    if h.kind != kind {
        return Err(RestoreError::Damaged(format!(
            "stored as {}, not {}",
            h.kind.as_str(),
            kind.as_str()
        )));
    }
    Ok(h)
}

/// [`RestoreError`] as one line for a message about `what`.
pub fn explain(e: RestoreError) -> String {
    match e {
        RestoreError::Missing => "it is missing from the repository".into(),
        RestoreError::Store(e) => e.to_string(),
        RestoreError::Damaged(why) => format!("it is damaged: {why}"),
        RestoreError::Write(e) => pgdr_core::error::clean_io_message(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{Identity, InitRequest};

    /// Writes `key` as `kind`, writes it again (kept), reads it back, reads it as `other`
    /// (refused, naming `other_name`) and reads `missing` (missing).
    fn round_trip(key: &str, missing: &str, kind: ObjectKind, other: ObjectKind, other_name: &str) {
        let d = tempfile::tempdir().unwrap();
        let id = Identity {
            system_identifier: 7,
            wal_segment_size: 16 << 20,
        };
        let req = InitRequest {
            identity: Some(id),
            ..Default::default()
        };
        let (repo, _) = Repo::init(&d.path().join("r"), &req).unwrap();
        let body = format!("hello {}", kind.as_str()).repeat(1000).into_bytes();
        let p = put(&repo, key, kind, &mut &body[..], Compression::Zstd, 1).unwrap();
        assert_eq!(p.created, Created::New);
        assert!(p.stored_bytes < body.len() as u64);
        let again = put(&repo, key, kind, &mut &b"other"[..], Compression::Lz4, 0).unwrap();
        assert_eq!(again.created, Created::Exists);
        let mut out = Vec::new();
        let h = get(&repo, key, kind, &mut out).unwrap();
        assert_eq!((out, h.sha256), (body.clone(), p.header.sha256));
        let e = get(&repo, key, other, &mut Vec::new()).unwrap_err();
        assert!(explain(e).contains(&format!("not {other_name}")));
        assert!(matches!(
            get(&repo, missing, kind, &mut Vec::new()),
            Err(RestoreError::Missing)
        ));
    }

    #[test]
    fn objects_round_trip_and_are_checked() {
        round_trip(
            "images/x/y",
            "images/x/z",
            ObjectKind::ImageData,
            ObjectKind::ImageManifest,
            "image manifest",
        );
    }

    #[test]
    fn dump_objects_round_trip_and_are_checked() {
        round_trip(
            "dumps/x/files/toc.dat",
            "dumps/x/files/y",
            ObjectKind::DumpFile,
            ObjectKind::DumpManifest,
            "dump manifest",
        );
    }
}
