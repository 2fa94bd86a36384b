//! A repository in an S3 bucket (or an S3-compatible store: MinIO, Ceph RGW, OSS), through the
//! `object_store` crate of the Apache Arrow project: `s3://BUCKET[/PREFIX]`, keys below the
//! prefix. Credentials, region and endpoint come from the standard AWS variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `AWS_CA_BUNDLE`) or the instance/container credential
//! chain; never from the location, never printed.
//!
//! Never overwriting: every object is published with a conditional create (`If-None-Match: *`),
//! decided by the server. A small object is one conditional PUT. A large one (more than
//! [`PART_SIZE`]) is sent in parallel parts to a temporary key beside the final one (a
//! `.NAME.pgdr-tmp.PID.N` leftover if killed), then published with a conditional
//! CompleteMultipartUpload that copies it server-side in one part (`object_store`'s
//! copy-if-not-exists "multipart" mode): `object_store`'s own multipart upload completes
//! unconditionally, so it is never used for a final name. The temporary key is then deleted.
//!
//! Requests are retried with exponential backoff (network errors, 5xx, throttling) for up to
//! [`RETRY_SECONDS`]; a store silent for [`SILENCE_SECONDS`] fails the request as timed out.
//! Then the error is one line naming the location.

use super::{not_initialised, Created, Key, Listing, Lock, Object, ObjectInfo, Staged, Store};
use futures::stream::{BoxStream, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, GetResult, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, WriteMultipart,
};
use pgdr_core::holder::Holder;
use pgdr_core::{Context, Error, Result};
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// How often a held lock object is rewritten, so a long upload is never taken for dead.
pub const HEARTBEAT: Duration = Duration::from_secs(60);
/// A lock object not rewritten for this long was left by a run that died.
pub const STALE: Duration = Duration::from_secs(600);
/// Objects larger than this are sent in parts of this size (S3's minimum part is 5 MiB);
/// at most `parallel` parts are in memory at once.
pub const PART_SIZE: usize = 8 << 20;
/// How long one request is retried (network errors, 5xx, throttling) before it fails.
pub const RETRY_SECONDS: u64 = 30;
/// How long a request waits for the store's next bytes (its answer, or more of a body) before
/// it fails as timed out (and is retried within [`RETRY_SECONDS`]). Without it a store that
/// accepts connections but stops answering held `get` and `push` for the whole request
/// timeout, 300 s, under restore_command and archive_command alike, with nothing in
/// pg_stat_archiver. S3 answers in milliseconds and keeps a long CompleteMultipartUpload or
/// copy alive with whitespace, so silence this long is a store that stopped.
pub const SILENCE_SECONDS: u64 = 30;
/// A lock object of an older pgdr (no heartbeat) not rewritten for this long was left by a
/// run that died: it is taken over.
const STALE_UNREFRESHED: Duration = Duration::from_secs(3600);
const SETTINGS: &str = "pgdr-wal-archive.json";

/// An `s3://` location, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX]`; `None` when `s` is not an `s3://` URL.
    ///
    /// # Errors
    /// A usage error for an `s3://` URL without a bucket or with an empty segment.
    pub fn parse(s: &str) -> Option<Result<S3Location>> {
        let rest = s.strip_prefix("s3://")?;
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bad = |why: &str| {
            Some(Err(Error::usage(format!("invalid repository {s}"))
                .because(why.to_string())
                .hint("write s3://BUCKET or s3://BUCKET/PREFIX")))
        };
        if bucket.is_empty() {
            return bad("no bucket");
        }
        if prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !prefix.is_empty()
        {
            return bad("the prefix has an empty, '.' or '..' segment");
        }
        Some(Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }))
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix.trim_end_matches('/') {
            "" => write!(f, "s3://{}", self.bucket),
            p => write!(f, "s3://{}/{p}", self.bucket),
        }
    }
}

/// A repository in S3.
pub struct S3Store {
    loc: S3Location,
    s3: Arc<AmazonS3>,
    rt: Arc<Runtime>,
    /// Concurrent part uploads of one object.
    parallel: usize,
    /// Set once a request found the bucket (then a 404 can only mean a missing object).
    bucket_seen: std::sync::atomic::AtomicBool,
    /// Reads started by [`Store::read_ahead`], by key; the first [`Store::read`] of the key
    /// takes its answer.
    ahead: Mutex<HashMap<String, JoinHandle<object_store::Result<GetResult>>>>,
    /// How often a held lock object is rewritten ([`HEARTBEAT`]; shorter in tests).
    heartbeat: Duration,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("loc", &self.loc).finish()
    }
}

/// One line from an object-store error (its Display may span lines).
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line from an object-store error and, when its own text does not say it, the innermost
/// cause ("error sending request" alone hides a refused connection or an untrusted
/// certificate).
fn with_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let text = one_line(e);
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    let cause = one_line(root);
    if cause.is_empty() || text.contains(&cause) {
        text
    } else {
        format!("{text}: {cause}")
    }
}

/// Whether every request of a store built from `b` is plain HTTP: the endpoint is `http://`
/// and the credentials are given (no token service over HTTPS is asked for them). Then the
/// system's root certificates (hundreds of files read and parsed, tens of milliseconds per
/// process) are not loaded: no connection is verified with them, and should one turn to TLS
/// after all, no certificate is trusted.
fn plain_http_only(b: &AmazonS3Builder) -> bool {
    let endpoint = b
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| b.get_config_value(&AmazonS3ConfigKey::Endpoint));
    endpoint.is_some_and(|e| {
        e.get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    }) && b
        .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
        .is_some()
        && b.get_config_value(&AmazonS3ConfigKey::SecretAccessKey)
            .is_some()
}

/// The certificates of `AWS_CA_BUNDLE`, when it is set: then they are the only ones trusted,
/// as the AWS CLI and SDKs trust that bundle instead of the system's (a private CA for MinIO
/// or Ceph), and the system's store (hundreds of files read and parsed in every process,
/// several milliseconds a `get` or `push`) is not loaded.
///
/// # Errors
/// The file cannot be read or holds no PEM certificate: one line naming it.
fn ca_bundle(loc: &S3Location) -> Result<Option<Vec<object_store::Certificate>>> {
    let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let path = std::path::PathBuf::from(path);
    let refuse = |why: String| {
        Error::failed(format!("cannot use repository {loc}"))
            .because(format!("AWS_CA_BUNDLE={}: {why}", path.display()))
            .hint("point AWS_CA_BUNDLE at a PEM file of CA certificates, or unset it to trust the system's")
    };
    let pem = std::fs::read(&path)
        .map_err(|e| refuse(pgdr_core::error::clean_io_message(&e.to_string())))?;
    match object_store::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(Some(certs)),
        Ok(_) => Err(refuse("no PEM certificate in it".into())),
        Err(e) => Err(refuse(one_line(&e))),
    }
}

/// Refuses an endpoint that is not an absolute URI. object_store accepts it when the store is
/// built and panics when it signs the first request (InvalidUri), which would end `get` with
/// Rust's panic status 101: below 126, so PostgreSQL would take it for "not archived" and end
/// recovery early instead of stopping.
///
/// A scheme other than http and https, and http without `AWS_ALLOW_HTTP`, are refused here
/// too: object_store's own refusal ("HTTP error: builder error", after "retries") names
/// neither.
fn check_endpoint(b: &AmazonS3Builder, loc: &S3Location, allow_http: bool) -> Result<()> {
    let refuse = |why: String, hint: &str| {
        Err(Error::failed(format!("cannot use repository {loc}"))
            .because(why)
            .hint(hint))
    };
    for key in [AmazonS3ConfigKey::S3Endpoint, AmazonS3ConfigKey::Endpoint] {
        let Some(e) = b.get_config_value(&key) else {
            continue;
        };
        let uri = e
            .parse::<http::Uri>()
            .ok()
            .filter(|u| u.scheme().is_some() && u.authority().is_some());
        let Some(uri) = uri else {
            return refuse(
                format!("the endpoint {e:?} is not a URL"),
                "set AWS_ENDPOINT_URL to scheme://host[:port], e.g. https://s3.example.com",
            );
        };
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if allow_http => {}
            Some("http") => {
                return refuse(
                    format!("the endpoint {e:?} is plain HTTP"),
                    "use https://, or set AWS_ALLOW_HTTP=true to allow plain HTTP",
                )
            }
            _ => return refuse(
                format!("the endpoint {e:?} is neither http:// nor https://"),
                "set AWS_ENDPOINT_URL to https://host[:port] (or http:// with AWS_ALLOW_HTTP=true)",
            ),
        }
    }
    Ok(())
}

impl S3Store {
    /// The store at `loc`, configured from the environment. Nothing is sent yet.
    ///
    /// # Errors
    /// A configuration the AWS variables make invalid (a bad endpoint URL, say).
    pub fn open(loc: S3Location, parallel: usize) -> Result<S3Store> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 8,
            retry_timeout: Duration::from_secs(RETRY_SECONDS),
        };
        let builder = AmazonS3Builder::from_env();
        let allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1");
        check_endpoint(&builder, &loc, allow_http)?;
        let mut client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(300))
            .with_read_timeout(Duration::from_secs(SILENCE_SECONDS))
            .with_allow_http(allow_http);
        match ca_bundle(&loc)? {
            Some(certs) => {
                client = client.with_no_system_certificates(true);
                for c in certs {
                    client = client.with_root_certificate(c);
                }
            }
            None => client = client.with_no_system_certificates(plain_http_only(&builder)),
        }
        let s3 = builder
            .with_bucket_name(&loc.bucket)
            .with_config(AmazonS3ConfigKey::CopyIfNotExists, "multipart")
            .with_retry(retry)
            .with_client_options(client)
            .build()
            .map_err(|e| {
                Error::failed(format!("cannot use repository {loc}"))
                    .because(one_line(&e))
                    .hint("check AWS_ENDPOINT_URL, AWS_REGION and AWS_ALLOW_HTTP")
            })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context(|| format!("cannot use repository {loc}"))?;
        Ok(S3Store {
            loc,
            s3: Arc::new(s3),
            rt: Arc::new(rt),
            parallel: parallel.max(1),
            bucket_seen: std::sync::atomic::AtomicBool::new(false),
            ahead: Mutex::new(HashMap::new()),
            heartbeat: HEARTBEAT,
        })
    }

    fn path(&self, key: &Key) -> ObjPath {
        ObjPath::from(format!("{}{key}", self.loc.prefix))
    }

    fn key_of(&self, p: &ObjPath) -> String {
        p.as_ref()
            .strip_prefix(&self.loc.prefix)
            .unwrap_or(p.as_ref())
            .to_string()
    }

    /// The error for a failed request on `what`, worded for the user.
    fn fail(&self, what: String, e: object_store::Error) -> Error {
        let text = with_cause(&e);
        let err = Error::failed(what);
        match e {
            object_store::Error::Unauthenticated { .. } => err
                .because(text)
                .hint("check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or the instance role)"),
            object_store::Error::PermissionDenied { .. } => err.because(text).hint(
                "check the credentials and that they may read, write and list this bucket",
            ),
            // object_store falls back to an EC2 instance role: the metadata service's token
            // request failing means no credentials came from anywhere.
            _ if text.contains("/latest/api/token") || text.contains("/latest/meta-data/") => err
                .because(format!("no credentials were given, and no instance role gave any ({text})"))
                .hint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or run where an instance role provides them"),
            _ if text.contains("NoSuchBucket") => err
                .because(format!("bucket {} does not exist", self.loc.bucket))
                .hint(format!(
                    "check --repo, AWS_ENDPOINT_URL and AWS_REGION, or create the bucket (aws s3 mb s3://{})",
                    self.loc.bucket
                )),
            _ if text.contains("InvalidAccessKeyId") || text.contains("SignatureDoesNotMatch") => {
                err.because(text).hint(
                    "check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)",
                )
            }
            _ if text.contains("certificate") => err
                .because(format!("the store's TLS certificate is not trusted ({text})"))
                .hint("set AWS_CA_BUNDLE to the PEM file of the CA that signed it, or add that CA to the system's store"),
            _ => err.because(text).hint(
                "check AWS_ENDPOINT_URL and that the store is reachable; requests were retried",
            ),
        }
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Up to `max` keys under `prefix` (for messages about what a location holds).
    fn some_keys(&self, prefix: &Key, max: usize) -> Result<Vec<String>> {
        let p = self.path(prefix);
        let list_prefix = (!p.as_ref().is_empty()).then_some(&p);
        let keys = self.block(async {
            let mut s = self.s3.list(list_prefix);
            let mut keys = Vec::new();
            while let Some(m) = s.next().await {
                keys.push(m?.location);
                if keys.len() >= max {
                    break;
                }
            }
            Ok::<_, object_store::Error>(keys)
        });
        keys.map(|k| k.iter().map(|p| self.key_of(p)).collect())
            .map_err(|e| self.fail(format!("cannot list {}", self.loc), e))
    }

    /// Makes the location ready to become a repository (`init`): the bucket must exist; the
    /// prefix must be empty (but for a format page) or a repository already.
    ///
    /// # Errors
    /// Unreachable, wrong credentials, a missing bucket, a prefix holding something else.
    pub fn create(loc: S3Location, parallel: usize) -> Result<S3Store> {
        let store = Self::open(loc, parallel)?;
        if store.head(SETTINGS)?.is_none() {
            let mut other: Vec<String> = store
                .some_keys("", 4)?
                .into_iter()
                .filter(|k| k != "FORMAT.md")
                .collect();
            if !other.is_empty() {
                other.truncate(3);
                return Err(
                    Error::failed(format!("cannot create repository {}", store.loc))
                        .because(format!(
                            "the prefix is not empty (it holds {}) and is not a repository",
                            other.join(", ")
                        ))
                        .hint("give --repo a new or empty prefix"),
                );
            }
        }
        Ok(store)
    }

    fn info_of(&self, m: &object_store::ObjectMeta) -> ObjectInfo {
        ObjectInfo {
            key: self.key_of(&m.location),
            size: m.size,
            modified: m.last_modified.timestamp(),
        }
    }

    /// One conditional PUT of a small object.
    /// A lock object's text, or None when there is none (or it is not text).
    fn lock_text(&self, name: &str) -> Result<Option<String>> {
        let Some(mut o) = self.read(name)? else {
            return Ok(None);
        };
        let mut text = String::new();
        Ok(o.reader.read_to_string(&mut text).ok().map(|_| text))
    }

    async fn put_create(&self, path: &ObjPath, payload: PutPayload) -> object_store::Result<bool> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.s3.put_opts(path, payload, opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A large object: parts in parallel to a temporary key, then a conditional server-side
    /// publication under the final name, then the temporary key deleted.
    async fn put_large(&self, path: &ObjPath, file: &mut std::fs::File) -> Result<bool> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let key = path.as_ref();
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        let tmp_key = format!(
            "{}{}.{name}.pgdr-tmp.{}.{}",
            dir,
            if dir.is_empty() { "" } else { "/" },
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = ObjPath::from(tmp_key);
        let what = || format!("cannot write {}", self.locate(&self.key_of(path)));
        let upload = self
            .s3
            .put_multipart(&tmp)
            .await
            .map_err(|e| self.fail(what(), e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; 1 << 20];
        let sent: Result<()> = async {
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).context(what),
                };
                w.wait_for_capacity(self.parallel)
                    .await
                    .map_err(|e| self.fail(what(), e))?;
                w.write(&buf[..n]);
            }
            Ok(())
        }
        .await;
        if let Err(e) = sent {
            let _ = w.abort().await;
            return Err(e);
        }
        w.finish().await.map_err(|e| self.fail(what(), e))?;
        let published = match self.s3.copy_if_not_exists(&tmp, path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.fail(what(), e)),
        };
        // Only tidying: a leftover is listed as such and pruned after a day.
        let _ = self.s3.delete(&tmp).await;
        published
    }
}

/// An object being read: the body's chunks as they arrive.
struct BodyReader {
    stream: BoxStream<'static, object_store::Result<bytes::Bytes>>,
    rt: Arc<Runtime>,
    chunk: bytes::Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(io::Error::other(one_line(&e))),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// Held while `prune` (or another exclusive run) works: the lock object, rewritten every
/// [`HEARTBEAT`] while held (a long upload is never taken for dead) and deleted on drop,
/// both only while the object is still this holder's (one taken over is left alone).
pub struct ObjectLock {
    s3: Arc<AmazonS3>,
    rt: Arc<Runtime>,
    path: ObjPath,
    line: Arc<String>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    beat: Option<std::thread::JoinHandle<()>>,
}

/// Whether the object at `path` holds exactly `line` (this holder's lock).
async fn holds(s3: &AmazonS3, path: &ObjPath, line: &str) -> bool {
    match s3.get(path).await {
        Ok(g) => g.bytes().await.is_ok_and(|b| b == line.as_bytes()),
        Err(_) => false,
    }
}

impl ObjectLock {
    fn hold(
        s3: Arc<AmazonS3>,
        rt: Arc<Runtime>,
        path: ObjPath,
        line: String,
        period: Duration,
    ) -> ObjectLock {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let line = Arc::new(line);
        let (s3b, rtb, pathb, lineb) = (s3.clone(), rt.clone(), path.clone(), line.clone());
        let beat = std::thread::Builder::new()
            .name("lock-heartbeat".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError::Timeout;
                while let Err(Timeout) = stopped.recv_timeout(period) {
                    rtb.block_on(async {
                        if holds(&s3b, &pathb, &lineb).await {
                            let bytes = lineb.as_bytes().to_vec();
                            let _ = s3b.put(&pathb, PutPayload::from(bytes)).await;
                        }
                    });
                }
            })
            .ok();
        ObjectLock {
            s3,
            rt,
            path,
            line,
            stop: Some(stop),
            beat,
        }
    }
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
        self.rt.block_on(async {
            if holds(&self.s3, &self.path, &self.line).await {
                let _ = self.s3.delete(&self.path).await;
            }
        });
    }
}

impl Store for S3Store {
    fn location(&self) -> String {
        self.loc.to_string()
    }

    fn locate(&self, key: &Key) -> String {
        format!("s3://{}/{}{key}", self.loc.bucket, self.loc.prefix)
    }

    fn read_settings(&self) -> Result<Vec<u8>> {
        let loc = self.location();
        match self.read(SETTINGS)? {
            Some(mut o) => {
                let mut b = Vec::new();
                o.reader
                    .read_to_end(&mut b)
                    .context(|| format!("cannot read {}", self.locate(SETTINGS)))?;
                Ok(b)
            }
            None => {
                let keys = self.some_keys("", 3)?;
                Err(not_initialised(
                    &loc,
                    if keys.is_empty() {
                        format!("nothing is stored there (a mistyped bucket or prefix?) and it has no {SETTINGS}")
                    } else {
                        format!("it holds {} but no {SETTINGS}", keys.join(", "))
                    },
                ))
            }
        }
    }

    fn stage(&self, key: &Key) -> Result<Staged> {
        super::stage_in_temp(key)
    }

    fn stages_in_temp(&self, _key: &Key) -> bool {
        true
    }

    fn create_if_absent(&self, staged: Staged) -> Result<Created> {
        let path = self.path(&staged.key);
        let what = || format!("cannot write {}", self.locate(&staged.key));
        let Staged { mut file, .. } = staged;
        let size = file.metadata().context(what)?.len();
        use std::io::Seek;
        // A 409 from S3 means a concurrent conditional write of the key was in flight: once
        // it settled, the name is either taken (Exists) or free again (try once more).
        for _ in 0..3 {
            file.rewind().context(what)?;
            let created = if size as usize <= PART_SIZE {
                let mut body = Vec::with_capacity(size as usize);
                file.read_to_end(&mut body).context(what)?;
                self.block(self.put_create(&path, PutPayload::from(body)))
                    .map_err(|e| self.fail(what(), e))?
            } else {
                self.block(self.put_large(&path, &mut file))?
            };
            if created {
                return Ok(Created::New);
            }
            if self.head(&self.key_of(&path))?.is_some() {
                return Ok(Created::Exists);
            }
        }
        Err(Error::failed(what()).because("the store kept reporting a conflicting write"))
    }

    fn read_ahead(&self, key: &Key) {
        let (s3, path) = (self.s3.clone(), self.path(key));
        let task = self.rt.spawn(async move { s3.get(&path).await });
        self.ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), task);
    }

    fn read(&self, key: &Key) -> Result<Option<Object>> {
        let path = self.path(key);
        let ahead = self
            .ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        let got = match ahead.map(|task| self.block(task)) {
            Some(Ok(got)) => got,
            // The task died (it cannot be cancelled while the store lives): ask again.
            Some(Err(_)) | None => self.block(self.s3.get(&path)),
        };
        match got {
            Ok(r) => {
                self.bucket_seen
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let info = self.info_of(&r.meta);
                Ok(Some(Object {
                    info,
                    reader: Box::new(BodyReader {
                        stream: r.into_stream(),
                        rt: self.rt.clone(),
                        chunk: bytes::Bytes::new(),
                    }),
                }))
            }
            Err(object_store::Error::NotFound { source, .. })
                if !one_line(&source).contains("NoSuchBucket") =>
            {
                self.bucket_seen
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(self.fail(format!("cannot read {}", self.locate(key)), e)),
        }
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>> {
        match self.block(self.s3.head(&self.path(key))) {
            Ok(m) => Ok(Some(self.info_of(&m))),
            // HEAD has no body: a missing bucket also answers 404, so unless a request found
            // the bucket already, a listing tells them apart.
            Err(object_store::Error::NotFound { .. }) => {
                if !self.bucket_seen.load(std::sync::atomic::Ordering::Relaxed) {
                    self.some_keys("", 1)?;
                }
                Ok(None)
            }
            Err(e) => Err(self.fail(format!("cannot read {}", self.locate(key)), e)),
        }
    }

    fn make_durable(&self, _key: &Key) -> Result<()> {
        // The store acknowledged the write: it is durable there.
        Ok(())
    }

    fn list(&self, prefix: &Key) -> Result<Listing> {
        let p = self.path(prefix);
        let metas = self.block(async {
            let mut s = self.s3.list(Some(&p));
            let mut v = Vec::new();
            while let Some(m) = s.next().await {
                v.push(m?);
            }
            Ok::<_, object_store::Error>(v)
        });
        let metas =
            metas.map_err(|e| self.fail(format!("cannot list {}", self.locate(prefix)), e))?;
        let mut out = Listing::default();
        for m in &metas {
            let info = self.info_of(m);
            let name = info.key.rsplit('/').next().unwrap_or("");
            if super::local::is_temp_name(name) {
                out.leftovers.push(info);
            } else {
                out.objects.push(info);
            }
        }
        out.objects.sort_by(|a, b| a.key.cmp(&b.key));
        out.leftovers.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        let parallel = self.parallel.max(4);
        let results: Vec<(String, object_store::Result<()>)> = self.block(async {
            futures::stream::iter(keys.iter().cloned())
                .map(|k| async move {
                    let r = self.s3.delete(&self.path(&k)).await;
                    (k, r)
                })
                .buffer_unordered(parallel)
                .collect()
                .await
        });
        for (k, r) in results {
            match r {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail(format!("cannot remove {}", self.locate(&k)), e)),
            }
        }
        Ok(())
    }

    fn lock(&self, name: &str, what: &str, wait: Option<Duration>) -> Result<Lock> {
        let path = self.path(name);
        let deadline = wait.map(|w| Instant::now() + w);
        let me = Holder::me();
        let line = me.to_line();
        loop {
            let created = self
                .block(self.put_create(&path, PutPayload::from(line.clone().into_bytes())))
                .map_err(|e| self.fail(format!("cannot lock {}", self.locate(name)), e))?;
            if created {
                return Ok(Lock::Object(ObjectLock::hold(
                    self.s3.clone(),
                    self.rt.clone(),
                    path,
                    line,
                    self.heartbeat,
                )));
            }
            let held = self.lock_text(name)?;
            let holder = held
                .as_deref()
                .and_then(|t| serde_json::from_str::<Holder>(t.trim()).ok());
            if let (Some(text), Some(h)) = (&held, self.head(name)?) {
                let age = chrono::Utc::now().timestamp() - h.modified;
                // A holder that keeps its process fields also rewrites its object while it
                // works; one written by an older pgdr does not, and keeps the old hour.
                let stale = match holder.as_ref().and_then(|h| h.start) {
                    Some(_) => STALE,
                    None => STALE_UNREFRESHED,
                };
                let why = if holder.as_ref().is_some_and(|h| h.gone(&me)) {
                    Some("its process is gone from this host".to_string())
                } else if age > stale.as_secs() as i64 {
                    Some(format!(
                        "it was not rewritten for {age} s, more than the {} s after which a holder is taken for dead",
                        stale.as_secs()
                    ))
                } else {
                    None
                };
                if let Some(why) = why {
                    // Its run is gone: take it over. Only the object judged is removed.
                    if self.lock_text(name)?.as_ref() == Some(text) {
                        self.delete(&[name.to_string()])?;
                        let whose = holder.as_ref().map_or(String::new(), |h| {
                            format!(" of pid {} on {} (since {})", h.pid, h.host, h.since)
                        });
                        pgdr_core::runner::note(format!(
                            "took over the lock {}{whose}: {why}",
                            self.locate(name)
                        ));
                    }
                    continue;
                }
            }
            if deadline.is_some_and(|d| Instant::now() < d) {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let waited = match wait {
                Some(w) => format!(" after waiting {}s", w.as_secs_f64()),
                None => String::new(),
            };
            let by = holder.map_or(String::new(), |h| h.shown());
            return Err(Error::locked(format!("{what} is locked"))
                .because(format!(
                    "another run holds {}{by}{waited}",
                    self.locate(name)
                ))
                .hint(format!(
                    "{}; a holder that died on another host is taken over after {} minutes without a heartbeat",
                    pgdr_core::lock::wait_hint(wait),
                    STALE.as_secs() / 60
                )));
        }
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = S3Location::parse("s3://b/pg/main/").unwrap().unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", "pg/main/"));
        assert_eq!(l.to_string(), "s3://b/pg/main");
        let l = S3Location::parse("s3://b").unwrap().unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", ""));
        assert!(S3Location::parse("/srv/wal").is_none());
        assert_eq!(
            S3Location::parse("s3:///x")
                .unwrap()
                .unwrap_err()
                .exit_code(),
            2
        );
        assert!(S3Location::parse("s3://b/a//c").unwrap().is_err());
    }

    /// On moto: a held lock is rewritten every heartbeat; once another run's object replaced
    /// it (a takeover), the old holder neither rewrites nor, on drop, deletes it.
    #[test]
    fn a_held_lock_beats_and_one_taken_over_is_left_alone() {
        let server = pgdr_testkit::skip_unless!(pgdr_testkit::s3::S3Server::start());
        server.create_bucket("locks");
        // This crate's only test that opens an S3 store: its variables are no other's.
        for (k, v) in server.env() {
            std::env::set_var(k, v);
        }
        let loc = S3Location::parse("s3://locks/r").unwrap().unwrap();
        let mut store = S3Store::open(loc, 1).unwrap();
        store.heartbeat = Duration::from_millis(400);
        let modified = |s: &S3Store| s.head("prune.lock").unwrap().expect("the lock").modified;
        let lock = store.lock("prune.lock", "repository", None).unwrap();
        let mine = store.lock_text("prune.lock").unwrap().expect("the lock");
        let first = modified(&store);
        std::thread::sleep(Duration::from_millis(2500));
        assert!(modified(&store) > first, "rewritten while held");
        assert_eq!(store.lock_text("prune.lock").unwrap().as_ref(), Some(&mine));
        server.put_object("locks", "r/prune.lock", b"taken over\n");
        std::thread::sleep(Duration::from_millis(1500));
        drop(lock);
        assert_eq!(
            server.object("locks", "r/prune.lock").as_deref(),
            Some(&b"taken over\n"[..])
        );
    }
}
