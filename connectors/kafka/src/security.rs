//! Connection security to Kafka: TLS (server verification, optional client certificate)
//! and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). One setting feeds both clients:
//! librdkafka gets it as its properties ([`Security::properties`]); the raw reader uses
//! rustls ([`Security::tls_config`]) and does the SASL exchange itself ([`crate::raw`]).

use std::fmt;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// librdkafka's `security.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "plaintext" => Protocol::Plaintext,
            "ssl" => Protocol::Ssl,
            "sasl_plaintext" => Protocol::SaslPlaintext,
            "sasl_ssl" => Protocol::SaslSsl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// A SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-256" => Mechanism::ScramSha256,
            "SCRAM-SHA-512" => Mechanism::ScramSha512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS material, PEM, read from files when the configuration is loaded. Without a CA,
/// the server is verified against the public web roots. `Debug` shows only which parts
/// are set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub ca_pem: Option<String>,
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_cert", &self.cert_pem.is_some())
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    pub protocol: Protocol,
    pub sasl: Option<Sasl>,
    pub tls: Tls,
}

impl Security {
    /// The librdkafka properties for this setting (user-set properties override them).
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![("security.protocol", self.protocol.name().to_string())];
        if self.protocol.sasl() {
            if let Some(s) = &self.sasl {
                p.push(("sasl.mechanisms", s.mechanism.name().to_string()));
                p.push(("sasl.username", s.username.clone()));
                p.push(("sasl.password", s.password.clone()));
            }
        }
        if self.protocol.tls() {
            if let Some(ca) = &self.tls.ca_pem {
                p.push(("ssl.ca.pem", ca.clone()));
            }
            if let (Some(cert), Some(key)) = (&self.tls.cert_pem, &self.tls.key_pem) {
                p.push(("ssl.certificate.pem", cert.clone()));
                p.push(("ssl.key.pem", key.clone()));
            }
        }
        p
    }

    /// Checks what the protocol needs; the error names the configuration key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.protocol.sasl() && self.sasl.is_none() {
            return Err((
                "sink.kafka.security.sasl",
                format!(
                    "protocol {} needs SASL credentials (mechanism, username, password or password_file)",
                    self.protocol.name()
                ),
            ));
        }
        if self.sasl.is_some() && !self.protocol.sasl() {
            return Err((
                "sink.kafka.security.protocol",
                format!(
                    "{} does not authenticate with SASL, but sasl is set: use sasl_ssl (or sasl_plaintext)",
                    self.protocol.name()
                ),
            ));
        }
        if self.tls.cert_pem.is_some() != self.tls.key_pem.is_some() {
            return Err((
                "sink.kafka.security.tls",
                "cert_file and key_file go together".into(),
            ));
        }
        if self.protocol.tls() {
            self.tls_config()
                .map_err(|e| ("sink.kafka.security.tls", e))?;
        }
        Ok(())
    }

    /// The rustls configuration of the raw reader, when the protocol uses TLS: the
    /// server's chain and name verified, the client certificate presented if set.
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match &self.tls.ca_pem {
            Some(pem) => {
                for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let c = c.map_err(|e| format!("ca_file is not PEM: {e}"))?;
                    roots
                        .add(c)
                        .map_err(|e| format!("ca_file holds an unusable certificate: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("ca_file holds no certificate".into());
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots);
        let config = match (&self.tls.cert_pem, &self.tls.key_pem) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("cert_file is not PEM: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .map_err(|e| format!("key_file holds no usable private key: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("cert_file and key_file do not fit: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_follow_the_protocol() {
        let s = Security {
            protocol: Protocol::SaslSsl,
            sasl: Some(Sasl {
                mechanism: Mechanism::ScramSha512,
                username: "u".into(),
                password: "secret-pw".into(),
            }),
            tls: Tls {
                ca_pem: Some("CA".into()),
                ..Default::default()
            },
        };
        let p = s.properties();
        let get = |k| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(get("ssl.ca.pem"), Some("CA"));
        assert!(!format!("{s:?}").contains("secret-pw"), "{s:?}");
        // Plaintext sends no credentials even if some are set.
        let plain = Security {
            protocol: Protocol::Plaintext,
            ..s
        };
        assert_eq!(plain.properties().len(), 1);
    }

    #[test]
    fn validation_names_what_is_missing() {
        let s = Security {
            protocol: Protocol::SaslPlaintext,
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "sink.kafka.security.sasl");
        let s = Security {
            protocol: Protocol::Ssl,
            tls: Tls {
                ca_pem: Some("not pem".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().0, "sink.kafka.security.tls");
        for (name, p) in [
            ("plaintext", Protocol::Plaintext),
            ("SSL", Protocol::Ssl),
            ("sasl_plaintext", Protocol::SaslPlaintext),
            ("SASL_SSL", Protocol::SaslSsl),
        ] {
            assert_eq!(Protocol::parse(name), Some(p));
        }
        assert_eq!(Protocol::parse("tls"), None);
        assert_eq!(
            Mechanism::parse("scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::parse("GSSAPI"), None);
    }
}
