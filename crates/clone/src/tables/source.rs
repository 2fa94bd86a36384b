//! The pg_dump directory pg_restore reads. A plain one (what pg_dump just wrote from a
//! temporary clone) is used as it is. A stored logical snapshot is given to pg_restore as a
//! scratch directory holding toc.dat and, for each data file the restore reads, a named pipe
//! that a feeder thread fills with the file decompressed and verified as pg_restore opens it:
//! no second copy on disk, and decompression runs beside pg_restore. Whatever the feeder
//! finds damaged fails the restore before its transaction commits.

use pgdr_core::{Context, Error, Result};
use pgdr_snap::logical::meta::LogicalSnapshot;
use pgdr_snap::logical::place::Place;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where the archive is.
pub enum Source<'a> {
    /// A logical snapshot in a snapshot directory or a repository.
    Stored(&'a Place, &'a LogicalSnapshot),
    /// A pg_dump directory on disk.
    Plain(&'a Path),
}

/// The directory handed to pg_restore, and the pipes in it to fill ([`Source::feed`]).
pub struct Prepared {
    pub dir: PathBuf,
    _scratch: Option<tempfile::TempDir>,
    pipes: Vec<(PathBuf, String)>,
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

    /// A directory pg_restore can read `files` (and toc.dat) from.
    ///
    /// # Errors
    /// The scratch directory or a pipe cannot be made.
    pub fn prepare(&self, toc: &[u8], files: &[String]) -> Result<Prepared> {
        if let Source::Plain(d) = self {
            return Ok(Prepared {
                dir: d.to_path_buf(),
                _scratch: None,
                pipes: Vec::new(),
            });
        }
        let scratch = tempfile::Builder::new()
            .prefix("pgdr-restore-")
            .tempdir()
            .context(|| "cannot make a scratch directory for pg_restore".into())?;
        let dir = scratch.path().to_path_buf();
        std::fs::write(dir.join("toc.dat"), toc)
            .context(|| format!("cannot write {}", dir.join("toc.dat").display()))?;
        let mut pipes = Vec::new();
        for f in files {
            let p = dir.join(f);
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &p,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .map_err(std::io::Error::from)
            .context(|| format!("cannot make the pipe {}", p.display()))?;
            pipes.push((p, f.clone()));
        }
        Ok(Prepared {
            dir,
            _scratch: Some(scratch),
            pipes,
        })
    }

    /// Fills each pipe of `prepared` as pg_restore opens it (in whatever order), until all
    /// are filled or `stop` is set. Run beside pg_restore, in a thread.
    ///
    /// # Errors
    /// A file is damaged or cannot be read; a pipe cannot be written (pg_restore went away).
    pub fn feed(&self, prepared: &Prepared, stop: &AtomicBool) -> Result<()> {
        use rustix::fs::{OFlags, CWD};
        let Source::Stored(place, snap) = self else {
            return Ok(());
        };
        let mut pipes: Vec<&(PathBuf, String)> = prepared.pipes.iter().collect();
        while !pipes.is_empty() {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let mut opened = None;
            for (i, (p, _)) in pipes.iter().enumerate() {
                match rustix::fs::openat(
                    CWD,
                    p,
                    OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                ) {
                    Ok(fd) => {
                        opened = Some((i, fd));
                        break;
                    }
                    Err(rustix::io::Errno::NXIO) => {} // no reader yet
                    Err(e) => {
                        return Err(std::io::Error::from(e))
                            .context(|| format!("cannot open {}", p.display()))
                    }
                }
            }
            let Some((i, fd)) = opened else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            rustix::fs::fcntl_setfl(&fd, OFlags::empty())
                .map_err(std::io::Error::from)
                .context(|| "cannot set a pipe to blocking".into())?;
            let (_, name) = pipes.remove(i);
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::from(fd));
            place.read_file(snap, name, &mut out)?;
            std::io::Write::flush(&mut out).map_err(|e| {
                Error::failed(format!("cannot give {name} to pg_restore")).because(e)
            })?;
        }
        Ok(())
    }
}
