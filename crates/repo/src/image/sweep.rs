//! Removing images and the pieces no remaining image references. The caller holds the images
//! lock ([`super::LOCK`]), so no upload is deciding meanwhile to reference a piece. Every
//! remaining manifest is read, whatever filter a policy used: a manifest that cannot be read
//! stops the sweep before anything is removed (its pieces would look unreferenced).

use super::manifest::{self, Manifest};
use super::{digest_of, manifest_key, DATA_PREFIX, PREFIX};
use crate::repo::Repo;
use pgdr_core::{Error, Result};
use std::collections::HashSet;

/// Temporary files of writes that never finished are removed once this old (seconds): a
/// writer that does not hold the images lock (a copy into the repository) may still be
/// writing a younger one.
pub const LEFTOVER_AGE: i64 = 24 * 3600;

/// What a sweep removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Pieces no remaining image references.
    pub objects_removed: u64,
    pub stored_bytes_removed: u64,
    /// Pieces that stay.
    pub objects_kept: u64,
    /// Temporary files of killed uploads.
    pub leftovers_removed: u64,
}

/// Removes the manifests of `doomed` (images by name), then every piece that no other image
/// references, and leftovers older than [`LEFTOVER_AGE`]. With `dry_run`, removes nothing
/// and says what would go. `now` is the time in seconds since the epoch.
///
/// # Errors
/// A remaining manifest cannot be read (nothing is removed then), or the store refuses a
/// removal (the manifests removed before it stay removed; their pieces are swept next time).
pub fn sweep(repo: &Repo, doomed: &[String], dry_run: bool, now: i64) -> Result<Swept> {
    let gone: HashSet<&str> = doomed.iter().map(String::as_str).collect();
    let mut referenced: HashSet<String> = HashSet::new();
    for name in manifest::names(repo)? {
        if gone.contains(name.as_str()) {
            continue;
        }
        let m: Manifest = manifest::read(repo, &name)?.ok_or_else(|| {
            Error::failed(format!("cannot sweep the images of {}", repo.location()))
                .because(format!("image {name} vanished while the images were read"))
        })?;
        for e in m.files {
            referenced.extend(e.pieces);
        }
    }
    let store = repo.store();
    let listing = store.list(DATA_PREFIX)?;
    let mut out = Swept::default();
    let mut doomed_objects = Vec::new();
    for o in &listing.objects {
        match digest_of(&o.key) {
            Some(d) if !referenced.contains(d) => {
                out.objects_removed += 1;
                out.stored_bytes_removed += o.size;
                doomed_objects.push(o.key.clone());
            }
            // Referenced, or not a piece in its place: never removed.
            _ => out.objects_kept += 1,
        }
    }
    let mut leftovers: Vec<String> = store
        .list(PREFIX)?
        .leftovers
        .into_iter()
        .filter(|l| now - l.modified >= LEFTOVER_AGE)
        .map(|l| l.key)
        .collect();
    out.leftovers_removed = leftovers.len() as u64;
    if dry_run {
        return Ok(out);
    }
    // Manifests first: an image is gone before any of its pieces is.
    let manifests: Vec<String> = doomed.iter().map(|n| manifest_key(n)).collect();
    store.delete(&manifests)?;
    doomed_objects.append(&mut leftovers);
    store.delete(&doomed_objects)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::manifest::EntryKind;
    use super::super::upload::{upload, Request, SourceEntry};
    use super::*;

    fn entry(path: &str, source: &std::path::Path) -> SourceEntry {
        SourceEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o600,
            size: std::fs::metadata(source).unwrap().len(),
            target: None,
            source: source.into(),
            stamp: None,
        }
    }

    /// Two images share a piece; pruning one removes only its own pieces; a restore of the
    /// other still verifies; a tampered piece fails it.
    #[test]
    fn shared_pieces_survive_their_first_image() {
        let d = tempfile::tempdir().unwrap();
        let repo = crate::repo::bound_for_test(d.path());
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let big: Vec<u8> = (0..(super::super::PIECE as usize + 100))
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(src.join("big"), &big).unwrap();
        std::fs::write(src.join("a"), b"first").unwrap();
        let take = |name: &str| Request {
            name: name.into(),
            created: chrono::Utc::now(),
            snapshot: serde_json::json!({"n": name}),
            owner: "postgres".into(),
            entries: vec![entry("big", &src.join("big")), entry("a", &src.join("a"))],
            parallel: 3,
            wait_lock: None,
            source: None,
            read_all: false,
        };
        let same = |m: &Manifest| {
            (m.snapshot["n"] == m.image)
                .then_some(())
                .ok_or("other".to_string())
        };
        let one = upload(&repo, &take("one"), &same).unwrap();
        assert_eq!((one.objects_sent, one.objects_reused), (3, 0));
        std::fs::write(src.join("a"), b"second").unwrap();
        let two = upload(&repo, &take("two"), &same).unwrap();
        assert_eq!((two.objects_sent, two.objects_reused), (1, 2));
        let again = upload(&repo, &take("two"), &same).unwrap();
        assert!(again.already_stored);
        let dry = sweep(&repo, &["one".into()], true, 0).unwrap();
        assert_eq!((dry.objects_removed, dry.objects_kept), (1, 3));
        assert_eq!(manifest::names(&repo).unwrap().len(), 2);
        sweep(&repo, &["one".into()], false, 0).unwrap();
        assert_eq!(manifest::names(&repo).unwrap(), vec!["two".to_string()]);
        let m = manifest::read(&repo, "two").unwrap().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let r = super::super::restore::restore(&repo, &m, &out, 2, None).unwrap();
        assert_eq!((r.files, r.objects_read), (2, 3));
        assert_eq!(std::fs::read(out.join("big")).unwrap(), big);
        assert_eq!(std::fs::read(out.join("a")).unwrap(), b"second");
        // A piece swapped for another's bytes is refused.
        let key = super::super::data_key(&{
            use sha2::Digest;
            sha2::Sha256::digest(b"second").into()
        });
        let path = repo.store().locate(&key);
        let big_key = repo.store().locate(&super::super::data_key(&{
            use sha2::Digest;
            sha2::Sha256::digest(&big[..super::super::PIECE as usize]).into()
        }));
        std::fs::copy(&big_key, &path).unwrap();
        let out2 = d.path().join("out2");
        std::fs::create_dir(&out2).unwrap();
        let e = super::super::restore::restore(&repo, &m, &out2, 2, None).unwrap_err();
        assert!(e.to_string().contains("cannot restore a"), "{e}");
    }
}
