//! SHA-256 on a second thread, overlapping the (de)compression of a stored file's body.
//!
//! push and get both hash every original byte and (de)compress it; done one after the other
//! on one core, a 16 MiB segment costs the sum of the two, which was most of a push or get. The
//! caller fills a chunk, (de)compresses or writes it, then hands it to [`ShaPipe::hash`] and
//! goes on with the next chunk while the hasher thread hashes this one. Chunks come back for
//! reuse, so at most [`DEPTH`] + 2 chunks of [`CHUNK`] bytes exist whatever the file's size:
//! memory stays bounded (about 4 MiB).

use crate::stored::CHUNK;
use sha2::{Digest, Sha256};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Chunks waiting for the hasher at most.
const DEPTH: usize = 2;

/// A SHA-256 being computed on another thread (or on this one, if no thread can be started).
pub(crate) enum ShaPipe {
    Thread {
        full: SyncSender<(Vec<u8>, usize)>,
        empty: Receiver<Vec<u8>>,
        made: usize,
        worker: JoinHandle<[u8; 32]>,
    },
    Inline {
        hasher: Sha256,
        spare: Option<Vec<u8>>,
        /// The size of the one chunk it uses.
        len: usize,
    },
}

impl ShaPipe {
    pub(crate) fn new() -> ShaPipe {
        let (full, todo) = mpsc::sync_channel::<(Vec<u8>, usize)>(DEPTH);
        let (done, empty) = mpsc::channel::<Vec<u8>>();
        let worker = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for (buf, n) in todo {
                    hasher.update(&buf[..n]);
                    // The caller may have finished already; then the chunk is simply freed.
                    let _ = done.send(buf);
                }
                hasher.finalize().into()
            });
        match worker {
            Ok(worker) => ShaPipe::Thread {
                full,
                empty,
                made: 0,
                worker,
            },
            Err(_) => ShaPipe::Inline {
                hasher: Sha256::new(),
                spare: None,
                len: CHUNK,
            },
        }
    }

    /// For a body known to hold `size` bytes: below one [`CHUNK`] there is nothing to overlap,
    /// so it is hashed on this thread with one chunk of `size + 1` bytes (one read finds the
    /// end, or that the body is longer): no thread started, no 1 MiB chunk zeroed per small
    /// object (a restore reads hundreds of them).
    pub(crate) fn for_size(size: u64) -> ShaPipe {
        match usize::try_from(size) {
            Ok(n) if n < CHUNK => ShaPipe::Inline {
                hasher: Sha256::new(),
                spare: None,
                len: n + 1,
            },
            _ => ShaPipe::new(),
        }
    }

    /// A chunk of [`CHUNK`] bytes to fill: one the hasher is done with, a new one while fewer
    /// than [`DEPTH`] + 2 exist, else the next one the hasher gives back.
    pub(crate) fn chunk(&mut self) -> Vec<u8> {
        match self {
            ShaPipe::Thread { empty, made, .. } => {
                if let Ok(b) = empty.try_recv() {
                    return b;
                }
                if *made < DEPTH + 2 {
                    *made += 1;
                    return vec![0u8; CHUNK];
                }
                // The hasher only stops early by panicking; a fresh chunk keeps the caller going
                // and finish() reports nothing wrong that hashing inline would not.
                empty.recv().unwrap_or_else(|_| vec![0u8; CHUNK])
            }
            ShaPipe::Inline { spare, len, .. } => spare.take().unwrap_or_else(|| vec![0u8; *len]),
        }
    }

    /// Hashes `buf[..n]` (in order after every chunk handed over before).
    pub(crate) fn hash(&mut self, buf: Vec<u8>, n: usize) {
        match self {
            ShaPipe::Thread { full, .. } => {
                // Fails only if the hasher panicked; finish() passes the panic on.
                let _ = full.send((buf, n));
            }
            ShaPipe::Inline { hasher, spare, .. } => {
                hasher.update(&buf[..n]);
                *spare = Some(buf);
            }
        }
    }

    /// Hashes a small slice given by the caller (the first bytes already read).
    pub(crate) fn hash_slice(&mut self, b: &[u8]) {
        let mut buf = self.chunk();
        let n = b.len().min(buf.len());
        buf[..n].copy_from_slice(&b[..n]);
        self.hash(buf, n);
        if n < b.len() {
            self.hash_slice(&b[n..]);
        }
    }

    /// The digest of everything hashed.
    pub(crate) fn finish(self) -> [u8; 32] {
        match self {
            ShaPipe::Thread { full, worker, .. } => {
                drop(full);
                worker
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
            ShaPipe::Inline { hasher, .. } => hasher.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_digest_as_one_pass() {
        let data: Vec<u8> = (0..(3 * CHUNK + 12345) as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        let mut p = ShaPipe::new();
        p.hash_slice(&data[..100]);
        for part in data[100..].chunks(CHUNK) {
            let mut b = p.chunk();
            b[..part.len()].copy_from_slice(part);
            p.hash(b, part.len());
        }
        let want: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(p.finish(), want);
        let mut i = ShaPipe::Inline {
            hasher: Sha256::new(),
            spare: None,
            len: CHUNK,
        };
        i.hash_slice(&data);
        assert_eq!(i.finish(), want);
        let mut small = ShaPipe::for_size(100);
        small.hash_slice(&data[..150]);
        assert_eq!(
            small.finish(),
            <[u8; 32]>::from(Sha256::digest(&data[..150]))
        );
    }
}
