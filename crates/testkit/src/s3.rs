//! A real S3-compatible server for tests: moto's `moto_server` (PyPI `moto[server]`, installed
//! by `make deps`) on 127.0.0.1 and a free port, started through `moto_launcher.py` (object
//! requests served one at a time, as real S3 decides conditional creates atomically; injected
//! 503 answers on demand). Data lives in the server's memory; the server is killed on drop.

use crate::{free_port, Unavailable};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The credentials the tests give (moto accepts any).
pub const ACCESS_KEY: &str = "pgdr-test-key";
pub const SECRET_KEY: &str = "pgdr-test-secret";

/// A running moto server.
pub struct S3Server {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn python_with_moto() -> Option<String> {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(py)
            .args(["-c", "import moto.server, werkzeug"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py.to_string());
        }
    }
    None
}

impl S3Server {
    /// Starts a server; `Unavailable` when moto is not installed.
    pub fn start() -> Result<S3Server, Unavailable> {
        let py = python_with_moto().ok_or_else(|| {
            Unavailable(
                "moto's S3 server is not installed (make deps: pip install 'moto[server]')".into(),
            )
        })?;
        let dir = tempfile::Builder::new()
            .prefix("pgdr-moto")
            .tempdir()
            .map_err(|e| Unavailable(format!("temp dir: {e}")))?;
        let launcher = dir.path().join("moto_launcher.py");
        std::fs::write(&launcher, include_str!("moto_launcher.py"))
            .map_err(|e| Unavailable(format!("write launcher: {e}")))?;
        let faults = dir.path().join("faults");
        std::fs::write(&faults, "0").map_err(|e| Unavailable(e.to_string()))?;
        let log = std::fs::File::create(dir.path().join("log"))
            .map_err(|e| Unavailable(e.to_string()))?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&py)
                .arg(&launcher)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("PGDR_MOTO_FAULTS", &faults)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| Unavailable(e.to_string()))?)
                .stderr(log.try_clone().map_err(|e| Unavailable(e.to_string()))?)
                .spawn()
                .map_err(|e| Unavailable(format!("cannot start {py}: {e}")))?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(st)) = child.try_wait() {
                    last = format!("moto exited ({st})");
                    break;
                }
                if http(port, "GET", "/", "").is_some_and(|(code, _)| code == 200) {
                    return Ok(S3Server { child, port, dir });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = "moto did not answer within 30 s".into();
            }
        }
        panic!(
            "cannot start moto_server: {last}\n{}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The AWS variables a client needs for this server (a plain-HTTP endpoint).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The same, as `K=V K=V` for a shell command line (an archive_command).
    pub fn env_prefix(&self) -> String {
        self.env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        let (code, body) = http(self.port, "PUT", &format!("/{name}"), "")
            .unwrap_or_else(|| panic!("moto on port {} does not answer", self.port));
        assert_eq!(code, 200, "create bucket {name}: {body}");
    }

    /// The next `n` requests are answered 503 SlowDown.
    pub fn fail_next(&self, n: u32) {
        std::fs::write(self.dir.path().join("faults"), n.to_string()).expect("faults file");
    }

    /// The raw bytes of an object (what is stored, before any decryption), read with the AWS
    /// CLI (moto answers only signed object requests).
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self.dir.path().join(format!("get.{}", std::process::id()));
        let st = self
            .aws()
            .args(["s3api", "get-object", "--bucket", bucket, "--key", key])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("aws CLI");
        let bytes = st
            .success()
            .then(|| std::fs::read(&out).expect("read object"));
        let _ = std::fs::remove_file(&out);
        bytes
    }

    /// Replaces an object's bytes (a test tampering with the store behind pgdr's back).
    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let body = self.dir.path().join(format!("put.{}", std::process::id()));
        std::fs::write(&body, bytes).expect("write body");
        let st = self
            .aws()
            .args([
                "s3api",
                "put-object",
                "--bucket",
                bucket,
                "--key",
                key,
                "--body",
            ])
            .arg(&body)
            .stdout(Stdio::null())
            .status()
            .expect("aws CLI");
        let _ = std::fs::remove_file(&body);
        assert!(st.success(), "put {bucket}/{key}");
    }

    /// The AWS CLI (`aws`, on PATH) pointed at this server.
    pub fn aws(&self) -> Command {
        let mut c = Command::new("aws");
        c.arg("--endpoint-url")
            .arg(self.endpoint())
            .envs(self.env())
            .stdin(Stdio::null());
        c
    }

    /// Every key in a bucket under `prefix` (one page: up to 1000).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (_, body) = http(
            self.port,
            "GET",
            &format!("/{bucket}?list-type=2&prefix={prefix}"),
            "",
        )
        .expect("moto answers");
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Where the server keeps its files (the launcher, the log).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request (moto serves unsigned bucket requests), the whole answer read.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let body = body.as_bytes();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        rest = dechunk(&rest);
    }
    Some((code, String::from_utf8_lossy(&rest).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}
