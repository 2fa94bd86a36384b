//! Which files a command reads and changes: `-f`, else `$PGDATA/postgresql.conf` (or, with
//! `--auto`, `postgresql.auto.conf`), with postgresql.auto.conf read after postgresql.conf,
//! from the data directory (`-D`, a `data_directory` setting, or the file's directory).

use crate::load::{self, Loaded};
use pgdr_core::{Error, Result};
use std::path::{Path, PathBuf};

/// The files involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The file the command reads or changes.
    pub target: String,
    /// postgresql.conf (the top of the tree), when not --auto.
    pub conf: Option<String>,
    /// postgresql.auto.conf, read after conf.
    pub auto: Option<String>,
    /// The data directory, when known.
    pub pgdata: Option<PathBuf>,
}

fn absolute(p: &Path) -> String {
    let s = p.to_string_lossy();
    if s.starts_with('/') {
        load::canonicalize(&s)
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        load::canonicalize(&format!("{}/{s}", cwd.display()))
    }
}

impl Files {
    /// From `-f`, `-D` (or $PGDATA) and `--auto`.
    ///
    /// # Errors
    /// Neither a file nor a data directory (exit 2).
    pub fn resolve(file: Option<&Path>, pgdata: Option<&Path>, auto: bool) -> Result<Files> {
        let pgdata = pgdata
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| PathBuf::from(absolute(p)));
        let need = || {
            Error::usage("no file to work on")
                .because("neither -f nor -D is given and PGDATA is not set")
                .hint("pass -f FILE or -D DATADIR")
        };
        if auto {
            let target = match (file, &pgdata) {
                (Some(f), _) => absolute(f),
                (None, Some(d)) => format!("{}/postgresql.auto.conf", d.display()),
                (None, None) => return Err(need()),
            };
            return Ok(Files {
                target: target.clone(),
                conf: None,
                auto: Some(target),
                pgdata,
            });
        }
        let conf = match (file, &pgdata) {
            (Some(f), _) => absolute(f),
            (None, Some(d)) => format!("{}/postgresql.conf", d.display()),
            (None, None) => return Err(need()),
        };
        let auto_dir = match &pgdata {
            Some(d) => d.display().to_string(),
            None => data_directory_of(&conf).unwrap_or_else(|| {
                Path::new(&conf)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| ".".into())
            }),
        };
        Ok(Files {
            target: conf.clone(),
            conf: Some(conf),
            auto: Some(format!("{auto_dir}/postgresql.auto.conf")),
            pgdata,
        })
    }

    /// Loads the tree: conf then auto (or auto alone with --auto; a missing auto file is
    /// empty).
    ///
    /// # Errors
    /// As [`load::load`].
    pub fn load(&self, names: Option<&dyn load::Names>) -> Result<Loaded> {
        match &self.conf {
            Some(c) => load::load(c, self.auto.as_deref(), names),
            None => {
                if !Path::new(&self.target).exists() {
                    return Ok(Loaded {
                        ok: true,
                        ..Loaded::default()
                    });
                }
                load::load(&self.target, None, names)
            }
        }
    }

    /// Directories where PG_VERSION may say which server reads these files: the data
    /// directory, then the target's directory.
    pub fn version_dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.pgdata.iter().cloned().collect();
        if let Some(a) = &self.auto {
            if let Some(d) = Path::new(a).parent() {
                v.push(d.to_path_buf());
            }
        }
        if let Some(d) = Path::new(&self.target).parent() {
            v.push(d.to_path_buf());
        }
        v
    }
}

/// A `data_directory` setting in the file (Debian keeps postgresql.conf in /etc).
fn data_directory_of(conf: &str) -> Option<String> {
    let l = load::load(conf, None, None).ok()?;
    let e = l.effective("data_directory")?;
    let v = e.setting.clone()?;
    Some(if v.starts_with('/') {
        load::canonicalize(&v)
    } else {
        load::absolute_location(&v, conf)
    })
}
