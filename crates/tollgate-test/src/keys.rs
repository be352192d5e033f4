//! RSA-2048 signing keys generated once per test binary, and compact JWS built from exact
//! header and payload bytes, so tests can write any token an attacker could.

use std::fmt;
use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::claims::service_payload;

/// Base64url without padding, as JWS and JWK use it.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA-2048 signing key with its kid.
pub struct TestKey {
    /// The key ID it is published and referenced under.
    pub kid: String,
    pair: KeyPair,
    /// The modulus, big-endian, without leading zeros.
    pub n: Vec<u8>,
    /// The public exponent, big-endian, without leading zeros.
    pub e: Vec<u8>,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey").field("kid", &self.kid).finish()
    }
}

impl TestKey {
    /// A freshly generated key (slow: prefer [`keys`]).
    pub fn generate(kid: &str) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (n, e) = parse_pkcs1(pair.public_key().as_ref());
        Self {
            kid: kid.to_owned(),
            pair,
            n,
            e,
        }
    }

    /// The public JWK, as Cloudflare publishes it.
    pub fn jwk(&self) -> Value {
        json!({"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
               "n": b64(&self.n), "e": b64(&self.e)})
    }

    /// RS256 signature of `input`.
    pub fn sign_raw(&self, input: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut sig)
            .unwrap();
        sig
    }

    /// A compact JWS of exactly these header and payload bytes.
    pub fn sign(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.sign_raw(input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// The standard header for this key.
    pub fn header(&self) -> String {
        format!(r#"{{"alg":"RS256","kid":"{}","typ":"JWT"}}"#, self.kid)
    }

    /// A service token as Cloudflare writes it, issued at `iat`, valid for `ttl` seconds.
    pub fn service_token(&self, iat: i64, ttl: i64) -> String {
        self.sign(&self.header(), &service_payload(iat, ttl))
    }
}

/// Three keys (kids `key-a`, `key-b`, `key-c`), generated once per test binary.
pub fn keys() -> &'static [TestKey; 3] {
    static KEYS: OnceLock<[TestKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            TestKey::generate("key-a"),
            TestKey::generate("key-b"),
            TestKey::generate("key-c"),
        ]
    })
}

/// One DER element with `tag`: its content and what follows it.
fn der_read(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag);
    let (len, start) = if input[1] < 0x80 {
        (usize::from(input[1]), 2)
    } else {
        let count = usize::from(input[1] & 0x7f);
        let len = input[2..2 + count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    (&input[start..start + len], &input[start + len..])
}

/// One DER element with `tag` around `content`.
pub(crate) fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        let len = content.len().to_be_bytes();
        let skip = len.iter().position(|b| *b != 0).unwrap();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// `(n, e)` of a PKCS#1 `RSAPublicKey`.
fn parse_pkcs1(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (seq, _) = der_read(der, 0x30);
    let (n, rest) = der_read(seq, 0x02);
    let (e, _) = der_read(rest, 0x02);
    let strip = |b: &[u8]| {
        b.iter()
            .copied()
            .skip_while(|x| *x == 0)
            .collect::<Vec<u8>>()
    };
    (strip(n), strip(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_round_trip() {
        for len in [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1_0000] {
            let content = vec![0xab; len];
            let encoded = der(0x04, &content);
            assert_eq!(der_read(&encoded, 0x04), (content.as_slice(), &[][..]));
        }
    }
}
