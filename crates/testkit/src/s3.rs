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
    /// Serving HTTPS with a certificate of a CA made for it ([`S3Server::start_tls`]).
    tls: bool,
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
        S3Server::start_with(false)
    }

    /// Starts a server on HTTPS, its certificate (for IP 127.0.0.1) signed by a CA made for it
    /// with the `openssl` CLI; [`S3Server::ca_pem`] is that CA. [`S3Server::env`] sets no CA:
    /// each test says how the client is to trust it.
    pub fn start_tls() -> Result<S3Server, Unavailable> {
        S3Server::start_with(true)
    }

    /// The PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_with(tls: bool) -> Result<S3Server, Unavailable> {
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
        let mut tls_args = Vec::new();
        if tls {
            make_certificates(dir.path())?;
            tls_args = ["--ssl-cert", "server.pem", "--ssl-key", "server.key"]
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    if i % 2 == 1 {
                        dir.path().join(a).display().to_string()
                    } else {
                        a.to_string()
                    }
                })
                .collect();
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&py)
                .arg(&launcher)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .args(&tls_args)
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
                let up = if tls {
                    TcpStream::connect(("127.0.0.1", port)).is_ok()
                } else {
                    http(port, "GET", "/", "").is_some_and(|(code, _)| code == 200)
                };
                if up {
                    return Ok(S3Server {
                        child,
                        port,
                        dir,
                        tls,
                    });
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

    /// `http://127.0.0.1:PORT` (`https://` for a TLS server).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The AWS variables a client needs for this server (for a plain-HTTP one,
    /// `AWS_ALLOW_HTTP`; for a TLS one no CA: see [`S3Server::start_tls`]).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ];
        if !self.tls {
            env.push(("AWS_ALLOW_HTTP", "true".into()));
        }
        env
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
        if self.tls {
            let st = self
                .aws()
                .args(["s3", "mb", &format!("s3://{name}")])
                .stdout(Stdio::null())
                .status()
                .expect("aws CLI");
            assert!(st.success(), "create bucket {name}");
            return;
        }
        let (code, body) = http(self.port, "PUT", &format!("/{name}"), "")
            .unwrap_or_else(|| panic!("moto on port {} does not answer", self.port));
        assert_eq!(code, 200, "create bucket {name}: {body}");
    }

    /// Stops the server process (SIGSTOP): it keeps accepting connections in the kernel's
    /// backlog and answers nothing, as a hung store does; [`S3Server::resume`] goes on.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill {sig} moto");
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

    /// The AWS CLI (`aws`, on PATH) pointed at this server (trusting a TLS one's CA).
    pub fn aws(&self) -> Command {
        let mut c = Command::new("aws");
        c.arg("--endpoint-url")
            .arg(self.endpoint())
            .envs(self.env())
            .stdin(Stdio::null());
        if self.tls {
            c.env("AWS_CA_BUNDLE", self.ca_pem());
        }
        c
    }

    /// Every key in a bucket under `prefix` (one page: up to 1000; a plain-HTTP server).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        assert!(!self.tls, "keys() reads a plain-HTTP server");
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
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA (`ca.pem`) and a certificate for IP 127.0.0.1 it signed (`server.pem`, `server.key`)
/// in `dir`, made with the `openssl` CLI.
fn make_certificates(dir: &std::path::Path) -> Result<(), Unavailable> {
    std::fs::write(dir.join("san"), "subjectAltName=IP:127.0.0.1\n")
        .map_err(|e| Unavailable(e.to_string()))?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=pgdr test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san",
            "-out",
            "server.pem",
        ],
    ];
    for args in steps {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(Unavailable(format!(
                "openssl {} failed (make deps installs openssl)",
                args.join(" ")
            )));
        }
    }
    Ok(())
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
