//! Parts of documents that describe what a repository holds, shared by the tools that print
//! them (wal-archive's push, get, list and verify; snap-take --list and wal-archive info
//! later). Sizes: `bytes` are original bytes, `stored_bytes` as stored.

use crate::stored::Compression;
use pgdr_pgformat::wal_name::Kind;
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};

/// The kind of an archived file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A WAL segment.
    Segment,
    /// The last, partly filled segment of a timeline, archived at promotion.
    Partial,
    /// A backup history file (`….backup`).
    Backup,
    /// A timeline history file (`TTTTTTTT.history`).
    History,
}

impl From<Kind> for FileKind {
    fn from(k: Kind) -> FileKind {
        match k {
            Kind::Segment => FileKind::Segment,
            Kind::Partial => FileKind::Partial,
            Kind::Backup => FileKind::Backup,
            Kind::History => FileKind::History,
        }
    }
}

/// One archived file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredFile {
    /// Its name, as PostgreSQL names it.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Its timeline.
    pub timeline: u32,
    /// True when the name was already archived with identical content (nothing was written;
    /// the archived copy was read back and synced before saying so).
    pub already_archived: bool,
    /// Original size in bytes.
    pub bytes: u64,
    /// Size in the repository in bytes (compressed, with the 68-byte header).
    pub stored_bytes: u64,
    /// How it is stored.
    pub compression: Compression,
    /// SHA-256 of the original bytes, lower-case hex.
    pub sha256: String,
}

/// A run of missing segments inside a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    /// The first missing segment.
    pub first: String,
    /// The last missing segment.
    pub last: String,
    /// How many are missing.
    pub count: u64,
}

/// What the repository holds of one timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// The timeline ID.
    pub timeline: u32,
    /// The timeline it branched off (from its history file); null for timeline 1 or
    /// without one.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub parent: Option<u32>,
    /// Where it branched off its parent.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub switchpoint: Option<Lsn>,
    /// Its history file's name, when archived.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub history: Option<String>,
    /// The first archived segment.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub first: Option<String>,
    /// The last archived segment.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last: Option<String>,
    /// Archived segments.
    pub count: u64,
    /// Original bytes of its segments, .partial and .backup files.
    pub bytes: u64,
    /// Their size in the repository.
    pub stored_bytes: u64,
    /// Missing segments between first and last.
    pub gaps: Vec<Gap>,
    /// Its .partial files.
    pub partial: Vec<String>,
    /// Its .backup files.
    pub backup: Vec<String>,
}

/// A file or timeline with something wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// The file, when the problem is one file's.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub name: Option<String>,
    /// The timeline, when known.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub timeline: Option<u32>,
    /// What is wrong.
    pub problem: String,
}
