//! Logical dumps in a repository (FORMAT.md, "Logical dumps"): the files of one pg_dump
//! directory-format dump, each a stored object under `dumps/NAME/files/`, and the dump's
//! manifest `dumps/NAME/manifest`, published last. A dump is listed only once its manifest
//! exists, so an interrupted upload leaves files that no reader takes for a dump (and that
//! snap-prune removes). Every object goes through the repository's store, so it is
//! compressed, checksummed and (when the repository is) encrypted like WAL. What the
//! manifest says is snap-take's business; here it is bytes.

use crate::file::RestoreError;
use crate::object::{self, Put};
use crate::repo::Repo;
use crate::store::Created;
use crate::stored::{Compression, Header, ObjectKind};
use pgdr_core::{Error, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Where dumps live in a repository.
pub const PREFIX: &str = "dumps/";
/// The lock of a repository's dumps, held by a dump being stored and by snap-prune.
pub const LOCK: &str = "dumps.lock";

/// `dumps/NAME/manifest`.
pub fn manifest_key(name: &str) -> String {
    format!("{PREFIX}{name}/manifest")
}

/// `dumps/NAME/files/FILE`.
pub fn file_key(name: &str, file: &str) -> String {
    format!("{PREFIX}{name}/files/{file}")
}

/// The dumps of a repository, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// Names with a manifest, sorted.
    pub published: Vec<String>,
    /// Names with objects but no manifest: what an interrupted upload (or prune) left.
    pub orphans: Vec<Orphan>,
}

/// The objects of a name that has no manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub name: String,
    pub keys: Vec<String>,
    /// The newest object's modification time, seconds since the epoch.
    pub modified: i64,
}

/// Lists `dumps/`.
///
/// # Errors
/// The store cannot be listed.
pub fn survey(repo: &Repo) -> Result<Survey> {
    let listing = repo.store().list(PREFIX)?;
    let mut by_name: BTreeMap<String, (bool, Vec<String>, i64)> = BTreeMap::new();
    for o in listing.objects.iter().chain(listing.leftovers.iter()) {
        let Some(rest) = o.key.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((name, tail)) = rest.split_once('/') else {
            continue;
        };
        let e = by_name.entry(name.to_string()).or_default();
        e.0 |= tail == "manifest";
        e.1.push(o.key.clone());
        e.2 = e.2.max(o.modified);
    }
    let mut s = Survey::default();
    for (name, (published, keys, modified)) in by_name {
        if published {
            s.published.push(name);
        } else {
            s.orphans.push(Orphan {
                name,
                keys,
                modified,
            });
        }
    }
    Ok(s)
}

/// Whether anything at all is stored under `dumps/NAME/` (a dump, or the leftovers of one).
///
/// # Errors
/// The store cannot be listed.
pub fn occupied(repo: &Repo, name: &str) -> Result<bool> {
    let l = repo.store().list(&format!("{PREFIX}{name}/"))?;
    Ok(!l.objects.is_empty() || !l.leftovers.is_empty())
}

/// Stores one file of dump `name`. The name must be fresh: a key that exists already is an
/// error, never reused.
///
/// # Errors
/// As [`object::put`]; the key exists.
pub fn put_file(
    repo: &Repo,
    name: &str,
    file: &str,
    src: &mut dyn Read,
    compression: Compression,
    level: i32,
) -> Result<Put> {
    let key = file_key(name, file);
    let p = object::put(repo, &key, ObjectKind::DumpFile, src, compression, level)?;
    if p.created == Created::Exists {
        return Err(
            Error::failed(format!("cannot store {}", repo.store().locate(&key)))
                .because("an object of that name exists already"),
        );
    }
    Ok(p)
}

/// Publishes the manifest of dump `name`: from now on it is a dump.
///
/// # Errors
/// As [`object::put`]; a manifest exists already.
pub fn put_manifest(
    repo: &Repo,
    name: &str,
    manifest: &[u8],
    compression: Compression,
) -> Result<Put> {
    let key = manifest_key(name);
    let p = object::put(
        repo,
        &key,
        ObjectKind::DumpManifest,
        &mut &manifest[..],
        compression,
        compression.level(None)?,
    )?;
    if p.created == Created::Exists {
        return Err(
            Error::failed(format!("cannot publish {}", repo.store().locate(&key)))
                .because("a dump of that name exists already"),
        );
    }
    Ok(p)
}

/// The manifest of dump `name`, verified; `None` when there is no such dump.
///
/// # Errors
/// It cannot be read, or is damaged.
pub fn read_manifest(repo: &Repo, name: &str) -> Result<Option<Vec<u8>>> {
    let key = manifest_key(name);
    let mut out = Vec::new();
    match object::get(repo, &key, ObjectKind::DumpManifest, &mut out) {
        Ok(_) => Ok(Some(out)),
        Err(RestoreError::Missing) => Ok(None),
        Err(e) => Err(
            Error::failed(format!("cannot read {}", repo.store().locate(&key)))
                .because(object::explain(e)),
        ),
    }
}

/// Reads file `file` of dump `name` into `out`, verified (size, SHA-256, kind, cluster).
///
/// # Errors
/// [`RestoreError`], as [`object::get`].
pub fn get_file(
    repo: &Repo,
    name: &str,
    file: &str,
    out: &mut dyn Write,
) -> std::result::Result<Header, RestoreError> {
    object::get(repo, &file_key(name, file), ObjectKind::DumpFile, out)
}

/// Removes dump `name`: the manifest first (from then on it is no dump), then its files.
/// Returns how many objects were removed.
///
/// # Errors
/// An object cannot be removed (those before it are gone).
pub fn delete(repo: &Repo, name: &str) -> Result<usize> {
    let store = repo.store();
    store.delete(&[manifest_key(name)])?;
    let l = store.list(&format!("{PREFIX}{name}/"))?;
    let keys: Vec<String> = l
        .objects
        .iter()
        .chain(l.leftovers.iter())
        .map(|o| o.key.clone())
        .collect();
    store.delete(&keys)?;
    Ok(keys.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_exists_once_its_manifest_does() {
        let d = tempfile::tempdir().unwrap();
        let repo = crate::repo::bound_for_test(d.path());
        let n = "pgdr-20260321T092837Z";
        assert!(!occupied(&repo, n).unwrap());
        put_file(&repo, n, "toc.dat", &mut &b"toc"[..], Compression::Zstd, 1).unwrap();
        put_file(
            &repo,
            n,
            "3333.dat",
            &mut &b"rows"[..],
            Compression::None,
            0,
        )
        .unwrap();
        assert!(put_file(&repo, n, "toc.dat", &mut &b"x"[..], Compression::Zstd, 1).is_err());
        let s = survey(&repo).unwrap();
        assert!(s.published.is_empty());
        assert_eq!(s.orphans[0].name, n);
        assert_eq!(s.orphans[0].keys.len(), 2);
        assert!(occupied(&repo, n).unwrap());
        assert_eq!(read_manifest(&repo, n).unwrap(), None);
        put_manifest(&repo, n, b"{}", Compression::Zstd).unwrap();
        assert!(put_manifest(&repo, n, b"{}", Compression::Zstd).is_err());
        assert_eq!(survey(&repo).unwrap().published, [n]);
        assert_eq!(read_manifest(&repo, n).unwrap().unwrap(), b"{}");
        let mut out = Vec::new();
        get_file(&repo, n, "3333.dat", &mut out).unwrap();
        assert_eq!(out, b"rows");
        assert_eq!(delete(&repo, n).unwrap(), 3);
        assert_eq!(survey(&repo).unwrap(), Survey::default());
    }
}
