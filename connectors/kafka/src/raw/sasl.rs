//! SASL for the raw reader: SaslHandshake v1 then SaslAuthenticate v1 (KIP-152), with
//! PLAIN and SCRAM-SHA-256/512 (RFC 5802, RFC 7677). The SCRAM client is a pure state
//! machine so it can be checked against the RFC's test vector.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::security::Mechanism;

/// Iteration counts above this are refused (a hostile server could stall the client);
/// Kafka brokers accept at most 16,384.
const MAX_ITERATIONS: u32 = 16_384;

fn hmac(m: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match m {
        Mechanism::ScramSha512 => {
            let mut h = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length");
            h.update(data);
            h.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut h = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length");
            h.update(data);
            h.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(m: Mechanism, data: &[u8]) -> Vec<u8> {
    match m {
        Mechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

/// Hi() of RFC 5802: PBKDF2 with HMAC, one block.
fn hi(m: Mechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(m, password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(m, password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

/// The username as a SCRAM `saslname`.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// One SCRAM exchange, client side.
pub struct Scram {
    mechanism: Mechanism,
    password: String,
    nonce: String,
    first_bare: String,
    /// Set once the server's first message is answered: the expected server signature.
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    pub fn new(mechanism: Mechanism, user: &str, password: &str, nonce: &str) -> Self {
        Scram {
            mechanism,
            password: password.to_string(),
            nonce: nonce.to_string(),
            first_bare: format!("n={},r={nonce}", saslname(user)),
            server_signature: None,
        }
    }

    /// With a fresh random nonce.
    pub fn start(mechanism: Mechanism, user: &str, password: &str) -> Self {
        let bytes: [u8; 18] = rand::random();
        Self::new(mechanism, user, password, &B64.encode(bytes))
    }

    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// Answers the server's first message (`r=…,s=…,i=…`).
    pub fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("m", _)) => {
                    return Err("server requires an unsupported SCRAM extension".into())
                }
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!(
                "malformed SCRAM server-first message {server_first:?}"
            ));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("SCRAM server nonce does not extend the client's".into());
        }
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!("SCRAM iteration count {iterations} out of range"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|e| format!("SCRAM salt is not base64: {e}"))?;
        let m = self.mechanism;
        let salted = hi(m, self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(m, &salted, b"Client Key");
        let stored_key = hash(m, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac(m, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(m, &salted, b"Server Key");
        self.server_signature = Some(hmac(m, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server's final message (`v=…`): the server knew the password too.
    pub fn verify(&self, server_final: &str) -> Result<(), String> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(format!("SCRAM authentication failed: {e}"));
        }
        let v = server_final
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.split(',').next().unwrap_or_default()).ok())
            .ok_or_else(|| format!("malformed SCRAM server-final message {server_final:?}"))?;
        match &self.server_signature {
            Some(expected) if *expected == v => Ok(()),
            _ => Err(
                "SCRAM server signature does not match: the broker does not know this password"
                    .into(),
            ),
        }
    }
}

/// PLAIN's single message: authzid (empty), user, password.
pub fn plain(user: &str, password: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(user.len() + password.len() + 2);
    b.push(0);
    b.extend_from_slice(user.as_bytes());
    b.push(0);
    b.extend_from_slice(password.as_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_sha256_vector() {
        let mut s = Scram::new(
            Mechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = s
            .client_final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(s.verify("v=AAAA").is_err());
        assert!(s
            .verify("e=invalid-proof")
            .unwrap_err()
            .contains("invalid-proof"));
    }

    #[test]
    fn hostile_server_messages_are_errors() {
        let cases = [
            "",
            "r=other,s=AAAA,i=4096",
            "r=abc,s=AAAA,i=4096",
            "r=abcdef,s=!!,i=4096",
            "r=abcdef,s=AAAA,i=0",
            "r=abcdef,s=AAAA,i=4294967295",
            "r=abcdef,s=AAAA,i=16385",
            "r=abcdef,s=AAAA",
            "m=ext,r=abcdef,s=AAAA,i=1",
        ];
        for c in cases {
            let mut s = Scram::new(Mechanism::ScramSha512, "u", "p", "abc");
            assert!(s.client_final(c).is_err(), "{c:?}");
        }
    }

    #[test]
    fn names_and_plain() {
        assert_eq!(saslname("a=b,c"), "a=3Db=2Cc");
        assert_eq!(plain("u", "p"), b"\0u\0p");
    }
}
