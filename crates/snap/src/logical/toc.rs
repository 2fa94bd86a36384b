//! The table of contents of a pg_dump archive (`toc.dat` of the directory format), as
//! pg_restore reads it: ReadHead, ReadToc and the directory format's ReadExtraToc in
//! src/bin/pg_dump/pg_backup_archiver.c and pg_backup_directory.c. Integers are a sign byte
//! and `intSize` bytes, least significant first (ReadInt); strings are an integer length
//! (-1 for NULL) and the bytes (ReadStr). Pure: bytes in, entries out.

/// `MAKE_ARCHIVE_VERSION(major, minor, rev)`.
const fn version(major: u32, minor: u32, rev: u32) -> u32 {
    (major * 256 + minor) * 256 + rev
}
const K_VERS_1_10: u32 = version(1, 10, 0);
const K_VERS_1_12: u32 = version(1, 12, 0);
const K_VERS_1_14: u32 = version(1, 14, 0);
const K_VERS_1_15: u32 = version(1, 15, 0);
const K_VERS_1_16: u32 = version(1, 16, 0);

/// One TOC entry (struct _tocEntry, the fields an archive stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dump_id: i32,
    /// Whether it has data (TABLE DATA, BLOBS, …).
    pub had_dumper: bool,
    pub table_oid: String,
    pub oid: String,
    /// The object's name ("child", "child child_pkey" for a constraint, "trg_f()" …).
    pub tag: String,
    /// Its kind: "TABLE", "TABLE DATA", "INDEX", "FK CONSTRAINT", …
    pub desc: String,
    pub section: i32,
    /// The SQL that creates it.
    pub defn: String,
    pub drop_stmt: String,
    pub copy_stmt: String,
    /// Its schema ("" for objects outside schemas).
    pub namespace: String,
    pub tablespace: String,
    pub tableam: String,
    /// pg_class.relkind as a number (archives from pg_dump 17 on), else 0.
    pub relkind: i32,
    pub owner: String,
    /// Dump IDs of the entries it depends on.
    pub deps: Vec<i32>,
    /// The directory format's data file ("3345.dat"), if any.
    pub filename: Option<String>,
}

/// A parsed `toc.dat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toc {
    /// The archive version (K_VERS_*), e.g. 1.16.0 from pg_dump 17 and 18.
    pub version: (u8, u8, u8),
    /// The database dumped.
    pub dbname: String,
    /// The server's version as it reported it ("18.4").
    pub server_version: String,
    /// The pg_dump that wrote it ("18.6").
    pub pg_dump_version: String,
    pub entries: Vec<Entry>,
}

impl Toc {
    /// The entry with this dump ID.
    pub fn by_id(&self, id: i32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.dump_id == id)
    }

    /// Every table (`TABLE` entries), as (schema, name).
    pub fn tables(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|e| e.desc == "TABLE")
            .map(|e| (e.namespace.clone(), e.tag.clone()))
            .collect()
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    int_size: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos += 1;
        Ok(v)
    }
    fn int(&mut self) -> Result<i64, String> {
        let sign = self.byte()?;
        let mut v: i64 = 0;
        for i in 0..self.int_size {
            v |= i64::from(self.byte()?) << (8 * i);
        }
        Ok(if sign != 0 { -v } else { v })
    }
    fn opt_str(&mut self) -> Result<Option<String>, String> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| format!("a string of {len} bytes runs past the end"))?;
        let s = String::from_utf8_lossy(&self.b[self.pos..end]).into_owned();
        self.pos = end;
        Ok(Some(s))
    }
    fn str(&mut self) -> Result<String, String> {
        Ok(self.opt_str()?.unwrap_or_default())
    }
}

/// Parses a directory-format `toc.dat`.
///
/// # Errors
/// Not an archive, a version older than 1.12 (pg_dump 9.x) or newer than this parser knows,
/// or a truncated file; the reason as text.
pub fn parse(b: &[u8]) -> Result<Toc, String> {
    if b.len() < 5 || &b[..5] != b"PGDMP" {
        return Err("not a pg_dump archive (no PGDMP magic)".into());
    }
    let mut r = Reader {
        b,
        pos: 5,
        int_size: 4,
    };
    let (vmaj, vmin, vrev) = (r.byte()?, r.byte()?, r.byte()?);
    let v = version(vmaj.into(), vmin.into(), vrev.into());
    if !(K_VERS_1_12..version(1, 17, 0)).contains(&v) {
        return Err(format!(
            "archive version {vmaj}.{vmin}.{vrev}; this reader knows 1.12 to 1.16"
        ));
    }
    r.int_size = r.byte()?.into();
    if !(1..=8).contains(&r.int_size) {
        return Err(format!("integer size {}", r.int_size));
    }
    let _off_size = r.byte()?;
    let _format = r.byte()?;
    if v >= K_VERS_1_15 {
        let _algorithm = r.byte()?;
    } else {
        let _level = r.int()?;
    }
    for _ in 0..7 {
        r.int()?; // the creation time, struct tm fields
    }
    let dbname = r.str()?;
    let (server_version, pg_dump_version) = if v >= K_VERS_1_10 {
        (r.str()?, r.str()?)
    } else {
        (String::new(), String::new())
    };
    let count = r.int()?;
    if count < 0 {
        return Err(format!("{count} entries"));
    }
    let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let dump_id = r.int()? as i32;
        if dump_id <= 0 {
            return Err(format!("entry ID {dump_id} out of range"));
        }
        let had_dumper = r.int()? != 0;
        let table_oid = r.str()?;
        let oid = r.str()?;
        let tag = r.str()?;
        let desc = r.str()?;
        let section = r.int()? as i32;
        let defn = r.str()?;
        let drop_stmt = r.str()?;
        let copy_stmt = r.str()?;
        let namespace = r.str()?;
        let tablespace = r.str()?;
        let tableam = if v >= K_VERS_1_14 {
            r.str()?
        } else {
            String::new()
        };
        let relkind = if v >= K_VERS_1_16 { r.int()? as i32 } else { 0 };
        let owner = r.str()?;
        let _with_oids = r.str()?;
        let mut deps = Vec::new();
        while let Some(d) = r.opt_str()? {
            deps.push(
                d.trim()
                    .parse()
                    .map_err(|_| format!("bad dependency {d:?} of entry {dump_id}"))?,
            );
        }
        let filename = r.opt_str()?.filter(|f| !f.is_empty());
        entries.push(Entry {
            dump_id,
            had_dumper,
            table_oid,
            oid,
            tag,
            desc,
            section,
            defn,
            drop_stmt,
            copy_stmt,
            namespace,
            tablespace,
            tableam,
            relkind,
            owner,
            deps,
            filename,
        });
    }
    Ok(Toc {
        version: (vmaj, vmin, vrev),
        dbname,
        server_version,
        pg_dump_version,
        entries,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes an archive the way WriteHead/WriteToc do (intSize 4), for tests.
    pub(crate) struct Writer(pub Vec<u8>);

    impl Writer {
        pub(crate) fn new(minor: u8) -> Writer {
            let mut w = Writer(b"PGDMP".to_vec());
            w.0.extend([1, minor, 0, 4, 8, 3]);
            if minor >= 15 {
                w.0.push(0);
            } else {
                w.int(0);
            }
            for _ in 0..7 {
                w.int(1);
            }
            w.str(Some("app"));
            w.str(Some("18.4"));
            w.str(Some("18.6"));
            w
        }
        pub(crate) fn int(&mut self, i: i64) {
            self.0.push(u8::from(i < 0));
            self.0
                .extend_from_slice(&(i.unsigned_abs() as u32).to_le_bytes());
        }
        pub(crate) fn str(&mut self, s: Option<&str>) {
            match s {
                Some(s) => {
                    self.int(s.len() as i64);
                    self.0.extend_from_slice(s.as_bytes());
                }
                None => self.int(-1),
            }
        }
        /// One entry: (id, desc, namespace, tag, defn, deps, filename).
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn entry(
            &mut self,
            minor: u8,
            id: i64,
            desc: &str,
            ns: &str,
            tag: &str,
            defn: &str,
            deps: &[i64],
            file: Option<&str>,
        ) {
            self.int(id);
            self.int(i64::from(file.is_some()));
            self.str(Some("1259"));
            self.str(Some("16384"));
            self.str(Some(tag));
            self.str(Some(desc));
            self.int(2);
            self.str(Some(defn));
            self.str(Some(""));
            self.str(Some(""));
            self.str(Some(ns));
            self.str(Some(""));
            self.str(Some("heap"));
            if minor >= 16 {
                self.int(114);
            }
            self.str(Some("postgres"));
            self.str(Some("false"));
            for d in deps {
                self.str(Some(&d.to_string()));
            }
            self.str(None);
            self.str(file);
        }
    }

    #[test]
    fn entries_of_every_archive_version_are_read() {
        for minor in [14u8, 15, 16] {
            let mut w = Writer::new(minor);
            w.int(2);
            w.entry(
                minor,
                220,
                "TABLE",
                "public",
                "parent",
                "CREATE TABLE public.parent (id integer);",
                &[],
                None,
            );
            w.entry(
                minor,
                3341,
                "TABLE DATA",
                "public",
                "parent",
                "",
                &[220],
                Some("3341.dat"),
            );
            let t = parse(&w.0).unwrap();
            assert_eq!(t.version, (1, minor, 0));
            assert_eq!(
                (t.dbname.as_str(), t.server_version.as_str()),
                ("app", "18.4")
            );
            assert_eq!(t.entries.len(), 2);
            assert_eq!(t.entries[1].deps, [220]);
            assert_eq!(t.entries[1].filename.as_deref(), Some("3341.dat"));
            assert!(t.entries[1].had_dumper);
            assert_eq!(t.entries[0].relkind, if minor >= 16 { 114 } else { 0 });
            assert_eq!(t.tables(), [("public".to_string(), "parent".to_string())]);
            assert!(
                parse(&w.0[..w.0.len() - 3])
                    .unwrap_err()
                    .contains("past the end")
                    || parse(&w.0[..w.0.len() - 3])
                        .unwrap_err()
                        .contains("truncated")
            );
        }
        assert!(parse(b"PGDMQ").is_err());
        let mut old = Writer::new(14);
        old.0[6] = 11;
        assert!(parse(&old.0).unwrap_err().contains("1.11"));
    }
}
