//! pgdr-repo: the repository every pgdr tool that stores or reads backups shares (FORMAT.md).
//! One repository holds one cluster's WAL, its snapshot images and its logical dumps.
//!
//! Layers, each knowing only the ones below it:
//! - [`file`] (store one WAL file, restore one WAL file, with PostgreSQL's checks) and
//!   [`survey`] (the whole repository by timeline): the per-file and per-repository work.
//! - [`timeline`]: the newest timeline a recovery follows, and which copies lie on its history.
//! - [`image`]: snapshot images (pieces keyed by SHA-256, a manifest published last), stored,
//!   restored and swept through [`object`] (any object by key, in the stored-object format).
//! - [`dump`]: logical dumps (pg_dump's files, a manifest published last), stored and read
//!   through [`object`] too.
//! - [`repo`]: settings, the cluster a repository is bound to, where each object lives.
//! - [`store`]: the bytes, as object operations (a local directory; S3 and S3-compatible
//!   stores behind the same interface).
//! - [`crypt`]: encryption at rest, a store around the store: every object written through
//!   [`Repo::store`] is encrypted for the repository's recipients, read back decrypted.
//! - [`stored`]: the stored-object format, pure.
//! - [`doc`]: the parts of documents that describe what a repository holds.
//!
//! PostgreSQL's formats come from `pgdr-pgformat`. This crate knows nothing of command lines,
//! of snapshots' storage backends, or of the tools' documents beyond [`doc`].

pub mod crypt;
pub mod doc;
pub mod dump;
pub mod file;
pub mod image;
pub mod object;
pub mod repo;
mod sha_pipe;
pub mod store;
pub mod stored;
pub mod survey;
pub mod timeline;

pub use repo::Repo;
