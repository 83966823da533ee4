//! TLS to PostgreSQL, with libpq's `sslmode` semantics, for the SQL connections
//! (tokio-postgres) and the replication connection (our own, [`crate::conn`]):
//!
//! | mode | encrypts | verifies the chain | verifies the host name |
//! |---|---|---|---|
//! | disable | no | | |
//! | prefer (default) | if the server offers it | with a CA file, as verify-ca | |
//! | require | yes, or fail | with a CA file, as verify-ca | |
//! | verify-ca | yes, or fail | yes (CA file) | no |
//! | verify-full | yes, or fail | yes (CA file) | yes |

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::PgError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }

    /// Whether a server without TLS is refused.
    pub fn required(self) -> bool {
        !matches!(self, TlsMode::Disable | TlsMode::Prefer)
    }
}

/// PEM material, read from the configured files.
#[derive(Clone, Default)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// Trusted CA certificate(s).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key, for servers that ask for one.
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("mode", &self.mode)
            .field("ca", &self.ca_pem.is_some())
            .field("client_cert", &self.client_cert_pem.is_some())
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_err(what: &str, e: impl std::fmt::Display) -> PgError {
    PgError::Config(format!("source.postgres.tls: {what}: {e}"))
}

impl TlsSettings {
    /// The rustls client configuration for this mode.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, PgError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err("TLS versions", e))?;
        let roots = match &self.ca_pem {
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(pem) {
                    let c = c.map_err(|e| config_err("ca_file is not PEM", e))?;
                    roots
                        .add(c)
                        .map_err(|e| config_err("ca_file holds an unusable certificate", e))?;
                }
                if roots.is_empty() {
                    return Err(config_err("ca_file", "no certificate in it"));
                }
                Some(Arc::new(roots))
            }
            None if matches!(self.mode, TlsMode::VerifyCa | TlsMode::VerifyFull) => {
                return Err(config_err(
                    "ca_file",
                    "verify-ca and verify-full need the CA certificate that signed the server's (set source.postgres.tls.ca_file)",
                ))
            }
            None => None,
        };
        let chain = match roots {
            None => None,
            Some(roots) => Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| config_err("ca_file", e))?,
            ),
        };
        let verifier = Arc::new(Verifier {
            provider: provider(),
            chain,
            check_name: self.mode == TlsMode::VerifyFull,
        });
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| config_err("cert_file is not PEM", e))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| config_err("key_file holds no usable private key", e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| config_err("cert_file and key_file do not fit", e))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The connector for tokio-postgres (SQL connections).
    pub fn make_connect(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
            (*self.client_config()?).clone(),
        ))
    }

    /// tokio-postgres's view of the mode.
    pub fn ssl_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
            TlsMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }

    /// The name the server's certificate is checked against.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, PgError> {
        ServerName::try_from(host.to_string())
            .map_err(|e| config_err(&format!("host {host:?} is not a valid TLS server name"), e))
    }
}

/// The server certificate check: none (require / prefer without a CA: encrypted, the
/// certificate not checked, as libpq), or the chain against the CA, with the host name
/// only for verify-full. Handshake signatures are always verified.
#[derive(Debug)]
struct Verifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
