//! Snapshot images in a repository (FORMAT.md, "Images"): a file-level copy of a snapshot,
//! every file cut into pieces of [`PIECE`] bytes, each piece one stored object keyed by the
//! SHA-256 of its bytes (so a piece an earlier image holds is referenced, never sent again),
//! and one manifest per image (every file's path, kind, mode, size and pieces, and the
//! snapshot's metadata), published last.
//!
//! - [`manifest`]: the manifest and the listing of images;
//! - [`upload`]: storing a tree of files as an image, in parallel;
//! - [`restore`]: an image back into a new directory, in parallel, every piece verified;
//! - [`sweep`]: removing the pieces no image references.
//!
//! Every object is written and read through [`crate::object`] (the stored-object format and
//! the [`crate::store::Store`] interface): nothing here knows whether the repository is a
//! local directory or an object store, or whether its objects are encrypted. Nothing here
//! knows snapshots' storage backends either: the snapshot's metadata is carried as JSON.

pub mod manifest;
pub mod restore;
pub mod sweep;
pub mod upload;

use crate::stored::hex;

/// Every image object's key starts with this.
pub const PREFIX: &str = "images/";
/// Pieces: `images/data/XX/SHA256` (XX = the first two hex digits).
pub const DATA_PREFIX: &str = "images/data/";
/// Manifests: `images/manifests/NAME`.
pub const MANIFEST_PREFIX: &str = "images/manifests/";
/// The lock an upload and a prune of images hold (beside `prune.lock`), so a prune never
/// removes a piece an upload in progress has decided to reference.
pub const LOCK: &str = "images.lock";
/// The size of a piece: files are cut into pieces of this many bytes (the last one shorter).
/// 8 MiB: a 1 GiB relation segment is 128 objects, each small enough to hold in memory per
/// worker (bounding memory by `--parallel`), large enough that a store's per-object cost
/// does not dominate.
pub const PIECE: u64 = 8 << 20;

/// The key of the piece whose bytes have this SHA-256.
pub fn data_key(sha256: &[u8; 32]) -> String {
    let h = hex(sha256);
    format!("{DATA_PREFIX}{}/{h}", &h[..2])
}

/// The SHA-256 (hex) a piece's key names, when `key` is one in its place.
pub fn digest_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(DATA_PREFIX)?;
    let (dir, h) = rest.split_once('/')?;
    let ok = h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && dir == &h[..2];
    ok.then_some(h)
}

/// The key of an image's manifest.
pub fn manifest_key(name: &str) -> String {
    format!("{MANIFEST_PREFIX}{name}")
}

/// The image a manifest key names, when it is one.
pub fn name_of(key: &str) -> Option<&str> {
    key.strip_prefix(MANIFEST_PREFIX)
        .filter(|n| valid_name(n).is_ok())
}

/// An image name is one key component: 1 to 200 of letters, digits, '.', '_', '-', not
/// starting with '.' or '-' (snapshot names are).
///
/// # Errors
/// Why the name cannot be one.
pub fn valid_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid image name {name:?}: use letters, digits, '.', '_' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let sha = [0xab; 32];
        let k = data_key(&sha);
        assert_eq!(k, format!("images/data/ab/{}", "ab".repeat(32)));
        assert_eq!(digest_of(&k), Some("ab".repeat(32).as_str()));
        assert_eq!(digest_of("images/data/ac/".to_string().as_str()), None);
        assert_eq!(
            digest_of(&format!("images/data/ac/{}", "ab".repeat(32))),
            None
        );
        assert_eq!(
            name_of(&manifest_key("pgdr-20260321T092837Z")),
            Some("pgdr-20260321T092837Z")
        );
        assert_eq!(name_of("images/manifests/.x.pgdr-tmp.1.2"), None);
        assert!(valid_name("a/b").is_err());
        assert!(valid_name("").is_err());
    }
}
