//! The pg_dump archive a restore reads: a logical snapshot's stored files, or a pg_dump
//! directory on disk (what pg_dump just wrote from a temporary clone). pg_restore gets a
//! directory with toc.dat for the definitions; the tables' data files (pg_dump's COPY text,
//! uncompressed: pgdr dumps with --compress=0) are read here, a stored one decompressed and
//! verified against its SHA-256 as it streams into the server.

use pgdr_core::{Context, Error, Result};
use pgdr_snap::logical::meta::LogicalSnapshot;
use pgdr_snap::logical::place::Place;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the archive is.
pub enum Source<'a> {
    /// A logical snapshot in a snapshot directory or a repository.
    Stored(&'a Place, &'a LogicalSnapshot),
    /// A pg_dump directory on disk.
    Plain(&'a Path),
}

/// The directory handed to pg_restore (toc.dat in it).
pub struct Prepared {
    pub dir: PathBuf,
    _scratch: Option<tempfile::TempDir>,
}

impl Source<'_> {
    /// toc.dat's bytes (verified, for a stored snapshot).
    ///
    /// # Errors
    /// It cannot be read, or is damaged.
    pub fn toc(&self) -> Result<Vec<u8>> {
        match self {
            Source::Stored(place, snap) => {
                let mut b = Vec::new();
                place.read_file(snap, "toc.dat", &mut b)?;
                Ok(b)
            }
            Source::Plain(d) => pgdr_snap::logical::place::read_all(&d.join("toc.dat")),
        }
    }

    /// A directory pg_restore can read the definitions from.
    ///
    /// # Errors
    /// The scratch directory cannot be made.
    pub fn prepare(&self, toc: &[u8]) -> Result<Prepared> {
        if let Source::Plain(d) = self {
            return Ok(Prepared {
                dir: d.to_path_buf(),
                _scratch: None,
            });
        }
        let scratch = tempfile::Builder::new()
            .prefix("pgdr-restore-")
            .tempdir()
            .context(|| "cannot make a scratch directory for pg_restore".into())?;
        let dir = scratch.path().to_path_buf();
        std::fs::write(dir.join("toc.dat"), toc)
            .context(|| format!("cannot write {}", dir.join("toc.dat").display()))?;
        Ok(Prepared {
            dir,
            _scratch: Some(scratch),
        })
    }

    /// Writes data file `file` into `out` (verified, for a stored snapshot).
    ///
    /// # Errors
    /// It is missing, damaged or unreadable, or `out` fails.
    pub fn read_data(&self, file: &str, out: &mut dyn Write) -> Result<()> {
        match self {
            Source::Stored(place, snap) => place.read_file(snap, file, out),
            Source::Plain(d) => {
                let p = d.join(file);
                let mut f =
                    std::fs::File::open(&p).context(|| format!("cannot read {}", p.display()))?;
                std::io::copy(&mut f, out)
                    .map(|_| ())
                    .map_err(|e| Error::failed(format!("cannot restore {file}")).because(e))
            }
        }
    }
}

/// The rows of a pg_dump data file on their way into COPY: everything but the end-of-data
/// line `\.` (and the blank lines pg_dump writes after it, dumpTableData_copy in
/// src/bin/pg_dump/pg_dump.c), which is checked to be there: a file cut short fails.
pub struct CopyRows<W: Write> {
    out: W,
    tail: Vec<u8>,
}

/// Bytes held back until the end: `\.` and pg_dump's blank lines after it.
const HOLD: usize = 16;

impl<W: Write> CopyRows<W> {
    pub fn new(out: W) -> Self {
        CopyRows {
            out,
            tail: Vec::with_capacity(2 * HOLD),
        }
    }

    /// Checks the end-of-data line and writes what came before it.
    ///
    /// # Errors
    /// The data does not end with `\.`, or `out` fails.
    pub fn finish(mut self) -> std::io::Result<W> {
        let mut end = self.tail.len();
        while end > 0 && self.tail[end - 1] == b'\n' {
            end -= 1;
        }
        let body = &self.tail[..end];
        let ok = body.ends_with(b"\\.") && (body.len() == 2 || body[body.len() - 3] == b'\n');
        if !ok {
            return Err(std::io::Error::other(
                "the table's data does not end with pg_dump's end-of-data line (a file cut short?)",
            ));
        }
        self.out.write_all(&body[..body.len() - 2])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for CopyRows<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() >= HOLD {
            self.out.write_all(&self.tail)?;
            self.tail.clear();
            let (now, later) = buf.split_at(buf.len() - HOLD);
            self.out.write_all(now)?;
            self.tail.extend_from_slice(later);
        } else {
            self.tail.extend_from_slice(buf);
            if self.tail.len() > HOLD {
                let extra = self.tail.len() - HOLD;
                self.out.write_all(&self.tail[..extra])?;
                self.tail.drain(..extra);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(chunks: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        let mut c = CopyRows::new(Vec::new());
        for ch in chunks {
            c.write_all(ch)?;
        }
        c.finish()
    }

    #[test]
    fn the_end_of_data_line_is_taken_off_and_required() {
        let file = b"1\ta\n2\tb\n\\.\n\n\n";
        for split in 0..file.len() {
            let (a, b) = file.split_at(split);
            assert_eq!(
                through(&[a, b]).unwrap(),
                b"1\ta\n2\tb\n",
                "split at {split}"
            );
        }
        assert_eq!(through(&[b"\\.\n\n\n"]).unwrap(), b"");
        assert!(through(&[b"1\ta\n2\tb\n"]).is_err());
        assert!(through(&[b"1\ta\\.\n"]).is_err());
        let big: Vec<u8> = (0..100_000)
            .flat_map(|i: u32| format!("{i}\tx\n").into_bytes())
            .chain(b"\\.\n\n\n".iter().copied())
            .collect();
        let out = through(&big.chunks(4096).collect::<Vec<_>>()).unwrap();
        assert_eq!(out.len(), big.len() - 5);
    }
}
