//! Encryption at rest (SPEC "Repositories", Encryption): in a repository initialised with
//! recipients, every object but the settings (`pgdr-wal-archive.json`, `cluster.json`,
//! `FORMAT.md`) and locks is stored as an age file (age-encryption.org/v1, the `age` crate)
//! for those recipients: X25519 (`age1…`) or SSH (`ssh-ed25519 …`, `ssh-rsa …`) public keys.
//! Any stored object decrypts with the standard `age` tool and an identity to the bytes pgdr
//! would have stored unencrypted (FORMAT.md "Stored files": for WAL, a header and the
//! compressed body). Object names and the settings are the only plaintext.
//!
//! [`EncryptedStore`] wraps the repository's store, so every writer and reader of objects
//! (WAL, history files, images, dumps) is encrypted and decrypted without knowing it: a writer
//! stages plaintext in a private temporary file of this host, which is encrypted into the
//! inner store's own staged object when published; a reader gets a decrypting reader, whose
//! every 64 KiB chunk is authenticated (a tampered or truncated object fails to read).
//! Writing needs only the recipients; reading needs an identity (`--identity FILE` or
//! `PGDR_IDENTITY`), refused when group or others can read it.

use crate::store::{Created, Key, Listing, Lock, Object, ObjectInfo, Staged, Store};
use pgdr_core::{Context, Error, Result};
use std::io::{self, BufReader, BufWriter, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The environment variable naming the identity file when `--identity` is not given.
pub const IDENTITY_ENV: &str = "PGDR_IDENTITY";

type Recipient = Box<dyn age::Recipient + Send + Sync>;
type Identity = Box<dyn age::Identity + Send + Sync>;

/// Parses one recipient: `age1…`, or an SSH public key line (`ssh-ed25519 AAAA… [comment]`,
/// `ssh-rsa AAAA… [comment]`).
///
/// # Errors
/// Why it is not one (a usage error).
pub fn parse_recipient(s: &str) -> Result<Recipient> {
    let s = s.trim();
    // A private key given where its public key belongs must not reach a log: name what it is,
    // never its text.
    if s.contains("AGE-SECRET-KEY-") || s.contains("PRIVATE KEY") {
        return Err(Error::usage("invalid recipient: a private key (an identity) was given")
            .because("a recipient is a public key; the private key's text is not printed")
            .hint("give its public key: age-keygen -y FILE for an age identity, the .pub file of an SSH key"));
    }
    // Anything else is shown only by its start, which says what was meant.
    let shown: String = if s.chars().count() > 24 {
        format!("{}…", s.chars().take(24).collect::<String>())
    } else {
        s.to_string()
    };
    let bad = |why: String| {
        Error::usage(format!("invalid recipient {shown:?}"))
            .because(why)
            .hint("give an age public key (age1…, from age-keygen) or an ssh-ed25519/ssh-rsa public key line")
    };
    if s.starts_with("ecdsa-") || s.starts_with("sk-") || s.starts_with("ssh-dss") {
        return Err(bad(
            "an SSH key type age does not support (use ssh-ed25519 or ssh-rsa)".into(),
        ));
    }
    if s.starts_with("age1") {
        return age::x25519::Recipient::from_str(s)
            .map(|r| Box::new(r) as Recipient)
            .map_err(|e| bad(e.to_string()));
    }
    if s.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(s)
            .map(|r| Box::new(r) as Recipient)
            .map_err(|e| bad(format!("{e:?}")));
    }
    Err(bad("not an age1… or ssh- public key".into()))
}

/// The recipients listed in a file (one a line; blank lines and `#` comments ignored), as
/// `age -R` reads them.
///
/// # Errors
/// The file cannot be read, or a line is not a recipient (usage errors).
pub fn read_recipients_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .context(|| format!("cannot read recipients file {}", path.display()))?;
    let mut out = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        parse_recipient(l).map_err(|e| {
            let what = e.hint.clone().unwrap_or_default();
            e.hint(format!("in recipients file {}: {what}", path.display()))
        })?;
        out.push(l.to_string());
    }
    if out.is_empty() {
        return Err(Error::usage(format!(
            "recipients file {} lists no recipient",
            path.display()
        )));
    }
    Ok(out)
}

/// The identities of an identity file, and the X25519 public keys they answer to (none for an
/// SSH key, whose match with a recipient is left to decryption).
pub struct Identities {
    pub identities: Vec<Identity>,
    pub x25519_publics: Vec<String>,
}

/// Loads the identities of a file (age `AGE-SECRET-KEY-1…` lines, or one unencrypted OpenSSH
/// private key), refusing a file that group or others can read.
///
/// # Errors
/// Unreadable, too open, or holding no usable identity (exit 1; `get` makes it fatal).
pub fn load_identities(path: &Path) -> Result<Identities> {
    let shown = path.display();
    let refuse =
        |why: String| Error::failed(format!("refusing identity file {shown}")).because(why);
    let m = std::fs::metadata(path).context(|| format!("cannot read identity file {shown}"))?;
    let mode = m.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "group or others can read it (mode {mode:04o}); it decrypts every stored object"
        ))
        .hint(format!("chmod 600 {shown}")));
    }
    let text =
        std::fs::read_to_string(path).context(|| format!("cannot read identity file {shown}"))?;
    if text.contains("PRIVATE KEY-----") {
        let id = age::ssh::Identity::from_buffer(text.as_bytes(), Some(shown.to_string()))
            .map_err(|e| refuse(format!("not a usable SSH private key: {e}")))?;
        return match id {
            age::ssh::Identity::Unencrypted(_) => Ok(Identities {
                identities: vec![Box::new(id)],
                x25519_publics: Vec::new(),
            }),
            age::ssh::Identity::Encrypted(_) => Err(refuse(
                "the SSH key is protected by a passphrase, which cannot be asked for here".into(),
            )
            .hint("use an age identity (age-keygen) or an SSH key without a passphrase")),
            age::ssh::Identity::Unsupported(_) => Err(refuse(
                "an SSH key type age does not support (use ssh-ed25519 or ssh-rsa)".into(),
            )),
        };
    }
    let mut ids: Vec<Identity> = Vec::new();
    let mut publics = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let id = age::x25519::Identity::from_str(l).map_err(|_| {
            refuse("a line is neither an AGE-SECRET-KEY-1… identity nor a comment".into())
        })?;
        publics.push(id.to_public().to_string());
        ids.push(Box::new(id));
    }
    if ids.is_empty() {
        return Err(refuse("it holds no identity".into()));
    }
    Ok(Identities {
        identities: ids,
        x25519_publics: publics,
    })
}

/// Whether the identities of `ids` can decrypt what is encrypted to `recipients` (`names`,
/// their text): an age key answers to its public key, compared without any cryptography; an
/// SSH key does not say which public key it is, so a small message is encrypted to the
/// recipients and decrypted with it (a non-recipient would otherwise be found only when
/// recovery asks for its first segment).
fn answers_to(ids: &Identities, names: &[String], recipients: &[Recipient]) -> bool {
    if !ids.x25519_publics.is_empty() {
        return ids.x25519_publics.iter().any(|p| names.contains(p));
    }
    let sealed = (|| -> io::Result<Vec<u8>> {
        let enc = age::Encryptor::with_recipients(
            recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(io::Error::other)?;
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out)?;
        io::Write::write_all(&mut w, b"pgdr")?;
        w.finish()?;
        Ok(out)
    })();
    // A message that cannot even be made says nothing about the identity: decryption will.
    let Ok(sealed) = sealed else {
        return true;
    };
    age::Decryptor::new(&sealed[..])
        .and_then(|d| {
            d.decrypt(
                ids.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
        })
        .map_or_else(
            |e| !matches!(e, age::DecryptError::NoMatchingKeys),
            |_| true,
        )
}

/// Whether an object is stored in the clear: the settings and the format page, which say how
/// to read the rest, and the cluster binding (a setting written by the first push).
pub fn is_plaintext(key: &Key) -> bool {
    matches!(key, "pgdr-wal-archive.json" | "cluster.json" | "FORMAT.md")
}

/// A store whose objects are age files for `recipients` (see the module documentation).
pub struct EncryptedStore {
    inner: Box<dyn Store>,
    recipients: Vec<Recipient>,
    /// The identities to decrypt with, or why there are none.
    identities: std::result::Result<Vec<Identity>, String>,
}

impl EncryptedStore {
    /// Wraps `inner`. `recipients` are the repository's (from its settings); `identity` the
    /// file to decrypt with, when given.
    ///
    /// # Errors
    /// A recipient that does not parse (a damaged settings object), an identity file that
    /// cannot be used.
    pub fn new(
        inner: Box<dyn Store>,
        recipients: &[String],
        identity: Option<&Path>,
    ) -> Result<EncryptedStore> {
        let names = recipients;
        let recipients = recipients
            .iter()
            .map(|r| parse_recipient(r))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| {
                Error::failed(format!("cannot open repository {}", inner.location()))
                    .because(format!("its settings name a bad recipient: {e}"))
            })?;
        let identities = match identity {
            Some(p) => {
                let ids = load_identities(p)?;
                if !answers_to(&ids, names, &recipients) {
                    return Err(Error::failed(format!(
                        "cannot decrypt repository {}",
                        inner.location()
                    ))
                    .because(format!(
                        "the identity in {} is not one of the repository's recipients",
                        p.display()
                    ))
                    .hint("pass the identity that matches a recipient of wal-archive init --encrypt-to"));
                }
                Ok(ids.identities)
            }
            None => Err(format!(
                "the repository is encrypted and no identity was given (set {IDENTITY_ENV} to the identity file; wal-archive also takes --identity FILE)"
            )),
        };
        Ok(EncryptedStore {
            inner,
            recipients,
            identities,
        })
    }

    /// Whether objects can be decrypted (an identity was given).
    pub fn can_decrypt(&self) -> bool {
        self.identities.is_ok()
    }

    fn encrypt(&self, plain: &mut std::fs::File, out: &mut std::fs::File) -> io::Result<()> {
        plain.rewind()?;
        let enc = age::Encryptor::with_recipients(
            self.recipients
                .iter()
                .map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(io::Error::other)?;
        let mut w = enc.wrap_output(BufWriter::with_capacity(1 << 20, out))?;
        io::copy(&mut BufReader::with_capacity(1 << 20, plain), &mut w)?;
        io::Write::flush(&mut w.finish()?)
    }
}

impl Store for EncryptedStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn locate(&self, key: &Key) -> String {
        self.inner.locate(key)
    }

    fn read_settings(&self) -> Result<Vec<u8>> {
        self.inner.read_settings()
    }

    fn stage(&self, key: &Key) -> Result<Staged> {
        if is_plaintext(key) {
            return self.inner.stage(key);
        }
        crate::store::stage_in_temp(key)
    }

    fn stages_in_temp(&self, key: &Key) -> bool {
        !is_plaintext(key) || self.inner.stages_in_temp(key)
    }

    fn create_if_absent(&self, mut staged: Staged) -> Result<Created> {
        if is_plaintext(staged.key()) {
            return self.inner.create_if_absent(staged);
        }
        let mut out = self.inner.stage(staged.key())?;
        let target = self.inner.locate(staged.key());
        self.encrypt(staged.file(), out.file())
            .context(|| format!("cannot encrypt {target}"))?;
        drop(staged);
        self.inner.create_if_absent(out)
    }

    fn read_ahead(&self, key: &Key) {
        self.inner.read_ahead(key);
    }

    fn read(&self, key: &Key) -> Result<Option<Object>> {
        if is_plaintext(key) {
            return self.inner.read(key);
        }
        let Some(o) = self.inner.read(key)? else {
            return Ok(None);
        };
        let cannot = || Error::failed(format!("cannot decrypt {}", self.inner.locate(key)));
        let ids = self
            .identities
            .as_ref()
            .map_err(|why| cannot().because(why))?;
        let dec = age::Decryptor::new(BufReader::with_capacity(1 << 16, o.reader))
            .map_err(|e| cannot().because(format!("not an intact age file: {e}")))?;
        let reader = dec
            .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => cannot()
                    .because("the identity given is not one of the repository's recipients")
                    .hint("pass the identity that matches a recipient of wal-archive init --encrypt-to"),
                e => cannot().because(format!("not an intact age file: {e}")),
            })?;
        Ok(Some(Object {
            info: o.info,
            reader: Box::new(reader),
        }))
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>> {
        self.inner.head(key)
    }

    fn make_durable(&self, key: &Key) -> Result<()> {
        self.inner.make_durable(key)
    }

    fn list(&self, prefix: &Key) -> Result<Listing> {
        self.inner.list(prefix)
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        self.inner.delete(keys)
    }

    fn lock(&self, name: &str, what: &str, wait: Option<Duration>) -> Result<Lock> {
        self.inner.lock(name, what, wait)
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn objects_are_age_files_and_read_back_with_the_identity() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("r");
        let key = age::x25519::Identity::generate();
        let recipient = key.to_public().to_string();
        let idf = d.path().join("id");
        std::fs::write(
            &idf,
            format!("# test\n{}\n", key.to_string().expose_secret()),
        )
        .unwrap();
        std::fs::set_permissions(&idf, std::fs::Permissions::from_mode(0o640)).unwrap();
        crate::store::local::LocalStore::create(&root, None).unwrap();
        let inner = || Box::new(crate::store::local::LocalStore::open(&root).unwrap());
        let e = EncryptedStore::new(inner(), std::slice::from_ref(&recipient), Some(&idf))
            .err()
            .unwrap();
        assert!(e.to_string().contains("group or others"), "{e}");
        std::fs::set_permissions(&idf, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = EncryptedStore::new(inner(), std::slice::from_ref(&recipient), Some(&idf)).unwrap();
        let mut st = s.stage("wal/00000001/A").unwrap();
        st.file().write_all(b"secret row 12345").unwrap();
        assert_eq!(s.create_if_absent(st).unwrap(), Created::New);
        let raw = std::fs::read(root.join("wal/00000001/A")).unwrap();
        assert!(raw.starts_with(b"age-encryption.org/v1\n"));
        assert!(!raw.windows(9).any(|w| w == b"row 12345"));
        let mut text = String::new();
        s.read("wal/00000001/A")
            .unwrap()
            .unwrap()
            .reader
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "secret row 12345");
        // Settings stay plaintext.
        let mut st = s.stage("cluster.json").unwrap();
        st.file().write_all(b"{}").unwrap();
        s.create_if_absent(st).unwrap();
        assert_eq!(std::fs::read(root.join("cluster.json")).unwrap(), b"{}");
        // Without an identity, or with another one: a clear refusal.
        let s2 = EncryptedStore::new(inner(), std::slice::from_ref(&recipient), None).unwrap();
        let e = s2.read("wal/00000001/A").err().unwrap();
        assert!(e.to_string().contains("no identity"), "{e}");
        let other = d.path().join("other");
        std::fs::write(
            &other,
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret()
                .as_bytes(),
        )
        .unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = EncryptedStore::new(inner(), &[recipient], Some(&other))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("not one of the repository's recipients"),
            "{e}"
        );
        // A flipped byte in the body fails the read.
        let mut bad = raw.clone();
        let n = bad.len() - 5;
        bad[n] ^= 1;
        std::fs::write(root.join("wal/00000001/A"), &bad).unwrap();
        let mut out = Vec::new();
        assert!(s
            .read("wal/00000001/A")
            .unwrap()
            .unwrap()
            .reader
            .read_to_end(&mut out)
            .is_err());
    }

    /// An SSH private key made by ssh-keygen (mode 600), and its public key line.
    fn ssh_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
        let key = dir.join(name);
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen runs");
        assert!(st.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        (key, public.trim().to_string())
    }

    #[test]
    fn an_ssh_identity_that_is_no_recipient_is_refused_at_open() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("r");
        crate::store::local::LocalStore::create(&root, None).unwrap();
        let inner = || Box::new(crate::store::local::LocalStore::open(&root).unwrap());
        let (mine, my_public) = ssh_key(d.path(), "mine");
        let (other, _) = ssh_key(d.path(), "other");
        let age_recipient = age::x25519::Identity::generate().to_public().to_string();
        let recipients = [age_recipient, my_public];
        let s = EncryptedStore::new(inner(), &recipients, Some(&mine)).unwrap();
        assert!(s.can_decrypt());
        let e = EncryptedStore::new(inner(), &recipients, Some(&other))
            .err()
            .unwrap();
        let shown = e.to_string();
        assert!(
            shown.contains(&format!(
                "the identity in {} is not one of the repository's recipients",
                other.display()
            )),
            "{shown}"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn recipients_parse() {
        let k = age::x25519::Identity::generate().to_public().to_string();
        assert!(parse_recipient(&k).is_ok());
        assert!(parse_recipient("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust").is_ok());
        assert_eq!(parse_recipient("age1nope").err().unwrap().exit_code(), 2);
        assert_eq!(parse_recipient("hello").err().unwrap().exit_code(), 2);
    }

    /// A private key given as a recipient (age-keygen's output, an SSH private key) is refused
    /// without its text in the message, which ends up in logs.
    #[test]
    fn a_private_key_given_as_a_recipient_is_not_printed() {
        let secret = age::x25519::Identity::generate();
        let secret = age::secrecy::ExposeSecret::expose_secret(&secret.to_string()).to_string();
        let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
        for (given, body) in [
            (secret.as_str(), &secret[15..]),
            (ssh, "b3BlbnNzaC1rZXktdjEAAAAABG5v"),
        ] {
            let e = parse_recipient(given).err().expect("refused");
            let line = e.to_string();
            assert_eq!(e.exit_code(), 2);
            assert!(line.contains("a private key"), "{line}");
            assert!(!line.contains(body), "{line}");
        }
        let line = parse_recipient(&format!("xx{secret}"))
            .err()
            .unwrap()
            .to_string();
        assert!(!line.contains(&secret[15..]), "{line}");
        let e = parse_recipient(
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA",
        );
        let line = e.err().unwrap().to_string();
        assert!(line.contains("SSH key type age does not support"), "{line}");
        let line = parse_recipient("a-rather-long-string-that-is-not-a-key-at-all")
            .err()
            .unwrap()
            .to_string();
        assert!(
            line.contains("a-rather-long-string-tha…") && !line.contains("at-all"),
            "{line}"
        );
    }
}
