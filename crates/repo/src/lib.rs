//! pgdr-repo: the repository every pgdr tool that stores or reads backups shares (FORMAT.md).
//! One repository holds one cluster's WAL (and, later, its snapshot images and logical dumps).
//!
//! Layers, each knowing only the ones below it:
//! - [`file`] (store one WAL file, restore one WAL file, with PostgreSQL's checks) and
//!   [`survey`] (the whole repository by timeline): the per-file and per-repository work.
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
pub mod file;
pub mod repo;
mod sha_pipe;
pub mod store;
pub mod stored;
pub mod survey;

pub use repo::Repo;
