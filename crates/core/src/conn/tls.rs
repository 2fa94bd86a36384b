//! TLS as libpq does it (src/interfaces/libpq/fe-secure-openssl.c): `prefer`/`allow`/`require`
//! encrypt without checking the certificate (unless `require` finds a root certificate file,
//! which makes it `verify-ca`); `verify-ca` checks the chain; `verify-full` also the host name.
//! Client certificates from `sslcert`/`sslkey` or `~/.postgresql/postgresql.{crt,key}`.
//!
//! OpenSSL is set up only once a server has agreed to TLS, as libpq does: setting it up loads
//! the system's certificate store, 10 to 50 ms a connection, which a server that answers "no
//! TLS" to `prefer` never needs.

use super::ConnParams;
use crate::error::{Error, Result};
use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::Socket;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `~/.postgresql/NAME` unless `key` names another file.
fn file(p: &ConnParams, key: &str, default: &str) -> PathBuf {
    p.get(key).map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .or_else(|| crate::owner::current_user().map(|u| u.home))
            .unwrap_or_default()
            .join(".postgresql")
            .join(default)
    })
}

/// Whether `mode` checks the server's certificate, and against which root certificate file.
fn verification(p: &ConnParams, mode: &str) -> (bool, PathBuf) {
    let root = file(p, "sslrootcert", "root.crt");
    let verify = match mode {
        "verify-ca" | "verify-full" => true,
        "require" => root.is_file(),
        _ => false,
    };
    (verify, root)
}

/// Refuses, before connecting, a verifying mode without its root certificate file.
///
/// # Errors
/// verify-ca or verify-full and no root certificate file, with libpq's words.
pub(super) fn check_root(p: &ConnParams, mode: &str) -> Result<()> {
    let (verify, root) = verification(p, mode);
    if verify && !root.is_file() {
        return Err(Error::failed(format!("cannot connect to {}", p.describe()))
            .because(format!(
                "root certificate file \"{}\" does not exist",
                root.display()
            ))
            .hint("either provide the file (sslrootcert) or change sslmode"));
    }
    Ok(())
}

/// The OpenSSL connector for `p` in `mode`.
fn connector(p: &ConnParams, mode: &str) -> Result<postgres_openssl::MakeTlsConnector> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
    let tls_err = |what: &str, e: &dyn fmt::Display| {
        Error::failed(format!("cannot set up TLS for {}", p.describe()))
            .because(format!("{what}: {e}"))
    };
    let mut b =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| tls_err("OpenSSL", &e))?;
    let (verify, root) = verification(p, mode);
    if verify {
        check_root(p, mode)?;
        b.set_ca_file(&root)
            .map_err(|e| tls_err(&format!("cannot read {}", root.display()), &e))?;
        b.set_verify(SslVerifyMode::PEER);
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }
    let cert = file(p, "sslcert", "postgresql.crt");
    let key = file(p, "sslkey", "postgresql.key");
    if cert.is_file() && key.is_file() {
        b.set_certificate_chain_file(&cert)
            .map_err(|e| tls_err(&format!("cannot read {}", cert.display()), &e))?;
        b.set_private_key_file(&key, SslFiletype::PEM)
            .map_err(|e| tls_err(&format!("cannot read {}", key.display()), &e))?;
    }
    let mut connector = postgres_openssl::MakeTlsConnector::new(b.build());
    let check_host = mode == "verify-full";
    connector.set_callback(move |cfg, _host| {
        cfg.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(connector)
}

/// A [`MakeTlsConnect`] that builds the OpenSSL connector only when the server said yes to
/// TLS.
pub(super) struct LazyTls {
    params: ConnParams,
    mode: String,
}

impl LazyTls {
    pub(super) fn new(params: &ConnParams, mode: &str) -> LazyTls {
        LazyTls {
            params: params.clone(),
            mode: mode.to_string(),
        }
    }
}

impl MakeTlsConnect<Socket> for LazyTls {
    type Stream = postgres_openssl::TlsStream<Socket>;
    type TlsConnect = LazyTlsConnect;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<LazyTlsConnect, BoxError> {
        Ok(LazyTlsConnect {
            params: self.params.clone(),
            mode: self.mode.clone(),
            domain: domain.to_string(),
        })
    }
}

/// One host's TLS handshake, set up when it starts.
pub(super) struct LazyTlsConnect {
    params: ConnParams,
    mode: String,
    domain: String,
}

impl TlsConnect<Socket> for LazyTlsConnect {
    type Stream = postgres_openssl::TlsStream<Socket>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Self::Stream, BoxError>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        let handshake = connector(&self.params, &self.mode)
            .map_err(BoxError::from)
            .and_then(|mut c| {
                MakeTlsConnect::<Socket>::make_tls_connect(&mut c, &self.domain)
                    .map_err(BoxError::from)
            });
        match handshake {
            Ok(tls) => TlsConnect::connect(tls, stream),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}
