//! Optional security of the REST listener: HTTP basic authentication (users
//! from a file) and TLS (rustls, certificate and key from PEM files).
//!
//! Users file format: one `user:password` per line (the password is everything
//! after the first `:`, so it may itself contain colons); blank lines and lines
//! starting with `#` are ignored; trailing `\r` is dropped. The file holds
//! plain-text passwords: keep it readable by the registry's user only.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::ApiError;

/// A security file that cannot be used; the message names the file and why.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("cannot read {path}: {source}")]
    Read {
        file: SecurityFile,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid {
        file: SecurityFile,
        path: PathBuf,
        detail: String,
    },
}

/// Which file a [`SecurityError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityFile {
    Users,
    Certificate,
    Key,
}

impl SecurityError {
    pub fn file(&self) -> SecurityFile {
        match self {
            SecurityError::Read { file, .. } | SecurityError::Invalid { file, .. } => *file,
        }
    }
}

/// Users allowed by HTTP basic authentication.
#[derive(Clone)]
pub struct BasicAuth {
    users: Arc<HashMap<String, String>>,
    /// The first user of the file (the agent's own client uses it).
    first: Option<(String, String)>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Reads a users file (see the module documentation for its format).
    pub fn from_file(path: &Path) -> Result<Self, SecurityError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecurityError::Read {
            file: SecurityFile::Users,
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|detail| SecurityError::Invalid {
            file: SecurityFile::Users,
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        let mut first = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, password)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:password", i + 1));
            };
            if user.is_empty() || password.is_empty() {
                return Err(format!(
                    "line {}: the user name and the password must not be empty",
                    i + 1
                ));
            }
            if users
                .insert(user.to_string(), password.to_string())
                .is_some()
            {
                return Err(format!("line {}: user '{user}' appears twice", i + 1));
            }
            first.get_or_insert_with(|| (user.to_string(), password.to_string()));
        }
        if users.is_empty() {
            return Err("no users (expected user:password lines)".into());
        }
        Ok(BasicAuth {
            users: Arc::new(users),
            first,
        })
    }

    /// The first user of the file and its password.
    pub fn first_user(&self) -> Option<(&str, &str)> {
        self.first.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Whether an `Authorization` header value names a known user with its password.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, encoded)) = value.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return false;
        };
        match self.users.get(user) {
            Some(expected) => constant_time_eq(expected.as_bytes(), password.as_bytes()),
            None => {
                // Same work for unknown users.
                let _ = constant_time_eq(password.as_bytes(), password.as_bytes());
                false
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Axum middleware: 401 with Confluent's error shape and `WWW-Authenticate: Basic`
/// unless the request carries a known user's credentials.
pub(crate) async fn require_basic_auth(
    State(auth): State<BasicAuth>,
    req: Request,
    next: Next,
) -> Response {
    if auth.check(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    let mut resp = ApiError::http(StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"schema-registry\""),
    );
    resp
}

/// The listener's TLS identity: certificate chain and private key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub(crate) config: Arc<rustls::ServerConfig>,
    chain: Vec<CertificateDer<'static>>,
    cert_pem: Vec<u8>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The crypto provider of both server and client sides.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsIdentity {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1). Errors name the file at fault.
    pub fn from_pem_files(cert_file: &Path, key_file: &Path) -> Result<Self, SecurityError> {
        let read = |file, path: &Path| {
            std::fs::read(path).map_err(|source| SecurityError::Read {
                file,
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(SecurityFile::Certificate, cert_file)?;
        let key_pem = read(SecurityFile::Key, key_file)?;
        let invalid = |file, detail: String| SecurityError::Invalid {
            file,
            path: match file {
                SecurityFile::Key => key_file.to_path_buf(),
                _ => cert_file.to_path_buf(),
            },
            detail,
        };
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                invalid(
                    SecurityFile::Certificate,
                    format!("not a PEM certificate: {e}"),
                )
            })?;
        if chain.is_empty() {
            return Err(invalid(
                SecurityFile::Certificate,
                "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            invalid(
                SecurityFile::Key,
                format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
            )
        })?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(SecurityFile::Certificate, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key)
            .map_err(|e| {
                invalid(
                    SecurityFile::Key,
                    format!(
                        "the key does not fit the certificate in {}: {e}",
                        cert_file.display()
                    ),
                )
            })?;
        let mut config = config;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsIdentity {
            config: Arc::new(config),
            chain,
            cert_pem,
        })
    }

    /// The certificate file's PEM text (clients may trust it as a root).
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// Whether the leaf certificate is valid for `name` (a DNS name or an IP address).
    pub fn is_valid_for(&self, name: &str) -> bool {
        let Ok(server_name) = ServerName::try_from(name.to_string()) else {
            return false;
        };
        let Ok(parsed) = rustls::server::ParsedCertificate::try_from(&self.chain[0]) else {
            return false;
        };
        rustls::client::verify_server_name(&parsed, &server_name).is_ok()
    }

    /// The host name a local client should use to reach a listener on `ip`
    /// with this certificate: the loopback address (`ip` itself when it is not
    /// unspecified), else `localhost`; `None` when the certificate is valid for
    /// neither.
    pub fn local_host_name(&self, ip: IpAddr) -> Option<String> {
        let ip = if ip.is_unspecified() {
            if ip.is_ipv6() {
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
            } else {
                IpAddr::from([127, 0, 0, 1])
            }
        } else {
            ip
        };
        if self.is_valid_for(&ip.to_string()) {
            return Some(match ip {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            });
        }
        if ip.is_loopback() && self.is_valid_for("localhost") {
            return Some("localhost".into());
        }
        None
    }
}

/// Checks that `pem` holds at least one PEM certificate (e.g. a CA file);
/// returns how many.
pub fn check_pem_certificates(pem: &[u8]) -> Result<usize, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs.len())
}

/// How long a TLS handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pw: &str) -> HeaderValue {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        HeaderValue::from_str(&format!("Basic {enc}")).unwrap()
    }

    #[test]
    fn users_file_parsing_and_checks() {
        let auth = BasicAuth::parse("# comment\n\nalice:s3cr:et\r\nbob:pw\n").expect("valid file");
        assert_eq!(auth.first_user(), Some(("alice", "s3cr:et")));
        assert!(auth.check(Some(&header("alice", "s3cr:et"))));
        assert!(auth.check(Some(&header("bob", "pw"))));
        assert!(!auth.check(Some(&header("bob", "pw2"))));
        assert!(!auth.check(Some(&header("bob", "p"))));
        assert!(!auth.check(Some(&header("carol", "pw"))));
        assert!(!auth.check(None));
        assert!(!auth.check(Some(&HeaderValue::from_static("Bearer abc"))));
        assert!(!auth.check(Some(&HeaderValue::from_static("Basic !!!"))));
        for bad in ["", "# only\n", "nocolon\n", ":pw\n", "u:\n", "u:a\nu:b\n"] {
            assert!(BasicAuth::parse(bad).is_err(), "{bad:?}");
        }
        assert!(!format!("{auth:?}").contains("s3cr"));
    }

    #[test]
    fn tls_identity_loads_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let id = TlsIdentity::from_pem_files(&cert, &key).unwrap();
        assert!(id.is_valid_for("localhost"));
        assert!(!id.is_valid_for("127.0.0.1"));
        assert_eq!(
            id.local_host_name("0.0.0.0".parse().unwrap()).as_deref(),
            Some("localhost")
        );
        assert_eq!(id.local_host_name("10.1.2.3".parse().unwrap()), None);

        let e = TlsIdentity::from_pem_files(&dir.path().join("nope"), &key).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = TlsIdentity::from_pem_files(&key, &key).unwrap_err();
        assert!(e.to_string().contains("key.pem"), "{e}");
        let e = TlsIdentity::from_pem_files(&cert, &cert).unwrap_err();
        assert!(e.to_string().contains("cert.pem"), "{e}");
    }
}
