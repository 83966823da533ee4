//! Test certificates: a CA, a server certificate for given names and a client
//! certificate, all signed by it (rcgen).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    /// A CA and a server certificate it signed for `names` (plus a client certificate).
    pub fn new(names: &[&str]) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "sluice test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let signed = |names: Vec<String>, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (cert_pem, key_pem) = signed(names.iter().map(|n| n.to_string()).collect(), "server");
        let (client_cert_pem, client_key_pem) = signed(vec!["sluice".into()], "sluice");
        Pki {
            ca_pem: ca_cert.pem(),
            cert_pem,
            key_pem,
            client_cert_pem,
            client_key_pem,
        }
    }
}
