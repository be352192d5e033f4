//! The loaded signing-key ring: RSA-2048 keys parsed once, signing, and the certs document.
//!
//! - Keys are generated with aws-lc-rs (≈80 ms in release, off the async workers) and held
//!   parsed, so signing a token costs one RSA private-key operation and nothing else.
//! - `kid` is the lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo.
//! - The certs document has exactly Cloudflare's shape:
//!   `{"keys":[{"kid","kty","alg","use","e","n"}…],"public_cert":{"kid","cert"},"public_certs":[{"kid","cert"}…]}`
//!   where `cert` is a PEM self-signed X.509 certificate of the key and `public_cert` is the
//!   key currently signing.
//!
//! When keys are added and retired is [`signing_keys`](crate::signing_keys)' business.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use tollgate_core::AccessClaims;

use crate::error::ManageError;
use crate::records::SigningKeyRecord;

const DAY: i64 = 86_400;

/// A published JWK, in Cloudflare's field order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Jwk {
    kid: String,
    kty: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    e: String,
    n: String,
}

#[derive(Debug, Clone, Serialize)]
struct PublicCert<'a> {
    kid: &'a str,
    cert: &'a str,
}

/// The certs document (`GET /cdn-cgi/access/certs`), in Cloudflare's shape.
#[derive(Debug, Serialize)]
pub(crate) struct CertsDocument<'a> {
    keys: Vec<&'a Jwk>,
    public_cert: Option<PublicCert<'a>>,
    public_certs: Vec<PublicCert<'a>>,
}

/// A ring key, parsed once: the key pair, its JWK and its certificate.
pub(crate) struct LoadedKey {
    pub(crate) record: SigningKeyRecord,
    pair: KeyPair,
    pub(crate) jwk: Jwk,
    pub(crate) jwk_value: serde_json::Value,
    cert_pem: String,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.record.kid)
            .field("activates_at", &self.record.activates_at)
            .field("expires_at", &self.record.expires_at)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    fn load(record: SigningKeyRecord) -> Result<Self, ManageError> {
        let pair = KeyPair::from_pkcs8(&record.private_key_pkcs8)
            .map_err(|e| ManageError::crypto("stored signing key is not an RSA PKCS#8 key", e))?;
        let public = pair.public_key();
        let kid = kid_of(&pair)?;
        if kid != record.kid {
            return Err(ManageError::crypto(
                "stored signing key does not match its kid",
                format!("stored kid {}", record.kid),
            ));
        }
        let jwk = Jwk {
            kid: kid.clone(),
            kty: "RSA",
            alg: "RS256",
            use_: "sig",
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        };
        let jwk_value = serde_json::to_value(&jwk)
            .map_err(|e| ManageError::crypto("could not encode a JWK", e))?;
        let cert_pem = self_signed_cert(&record)?;
        Ok(Self {
            record,
            pair,
            jwk,
            jwk_value,
            cert_pem,
        })
    }

    /// The key's `kid`.
    pub(crate) fn kid(&self) -> &str {
        &self.record.kid
    }

    fn published_at(&self, now: i64) -> bool {
        self.record.created_at <= now && self.record.expires_at.is_none_or(|exp| exp > now)
    }

    /// Signs `claims` as a compact JWS with header `{"kid","alg":"RS256","typ":"JWT"}`. An RSA
    /// private-key operation (≈0.7 ms): call it off the async workers.
    pub(crate) fn sign(&self, claims: &AccessClaims) -> Result<String, ManageError> {
        let header = format!(
            r#"{{"kid":"{}","alg":"RS256","typ":"JWT"}}"#,
            self.record.kid
        );
        let payload = serde_json::to_vec(claims)
            .map_err(|e| ManageError::crypto("could not encode claims", e))?;
        let mut jwt = String::with_capacity(1024);
        URL_SAFE_NO_PAD.encode_string(header.as_bytes(), &mut jwt);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                jwt.as_bytes(),
                &mut signature,
            )
            .map_err(|e| ManageError::crypto("RSA signing failed", e))?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }
}

/// The loaded ring: every key parsed, sorted by activation time.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRing {
    pub(crate) generation: u64,
    pub(crate) keys: Vec<Arc<LoadedKey>>,
}

impl KeyRing {
    /// Parses `records`, reusing already-parsed keys of `previous` with the same kid.
    pub(crate) fn load(
        generation: u64,
        records: Vec<SigningKeyRecord>,
        previous: &KeyRing,
    ) -> Result<Self, ManageError> {
        let known: HashMap<&str, &Arc<LoadedKey>> =
            previous.keys.iter().map(|k| (k.kid(), k)).collect();
        let mut keys = Vec::with_capacity(records.len());
        for record in records {
            match known.get(record.kid.as_str()) {
                Some(key) if key.record == record => keys.push(Arc::clone(key)),
                _ => keys.push(Arc::new(LoadedKey::load(record)?)),
            }
        }
        keys.sort_by_key(|k| k.record.activates_at);
        Ok(Self { generation, keys })
    }

    /// The key that signs at `now`: the latest activated one still published.
    pub(crate) fn signing_key(&self, now: i64) -> Option<&Arc<LoadedKey>> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.record.activates_at <= now && k.published_at(now))
    }

    /// Keys published (and accepted) at `now`.
    pub(crate) fn published(&self, now: i64) -> impl Iterator<Item = &Arc<LoadedKey>> {
        self.keys.iter().filter(move |k| k.published_at(now))
    }

    /// The certs document at `now`.
    pub(crate) fn certs(&self, now: i64) -> CertsDocument<'_> {
        let published: Vec<_> = self.published(now).collect();
        CertsDocument {
            keys: published.iter().map(|k| &k.jwk).collect(),
            public_cert: self.signing_key(now).map(|k| PublicCert {
                kid: k.kid(),
                cert: &k.cert_pem,
            }),
            public_certs: published
                .iter()
                .map(|k| PublicCert {
                    kid: k.kid(),
                    cert: &k.cert_pem,
                })
                .collect(),
        }
    }

    /// The first time after `now` at which the published set or the signing key changes.
    pub(crate) fn next_change_after(&self, now: i64) -> i64 {
        self.keys
            .iter()
            .flat_map(|k| {
                [
                    Some(k.record.created_at),
                    Some(k.record.activates_at),
                    k.record.expires_at,
                ]
            })
            .flatten()
            .filter(|&t| t > now)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Ring records, for tests and status output.
    pub(crate) fn records(&self) -> impl Iterator<Item = &SigningKeyRecord> {
        self.keys.iter().map(|k| &k.record)
    }
}

/// Generates a new RSA-2048 signing key record (blocking: ≈80 ms release, more in debug).
pub(crate) fn generate_key(now: i64, activates_at: i64) -> Result<SigningKeyRecord, ManageError> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|e| ManageError::crypto("RSA key generation failed", e))?;
    let pkcs8: Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|e| ManageError::crypto("could not encode the key as PKCS#8", e))?;
    Ok(SigningKeyRecord {
        kid: kid_of(&pair)?,
        private_key_pkcs8: pkcs8.as_ref().to_vec(),
        created_at: now,
        activates_at,
        retires_at: None,
        expires_at: None,
    })
}

fn kid_of(pair: &KeyPair) -> Result<String, ManageError> {
    let spki: PublicKeyX509Der<'static> = pair
        .public_key()
        .as_der()
        .map_err(|e| ManageError::crypto("could not encode the public key", e))?;
    Ok(hex::encode(digest(&SHA256, spki.as_ref())))
}

fn self_signed_cert(record: &SigningKeyRecord) -> Result<String, ManageError> {
    let key = rcgen::KeyPair::try_from(record.private_key_pkcs8.as_slice())
        .map_err(|e| ManageError::crypto("could not load the key for its certificate", e))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| ManageError::crypto("bad certificate parameters", e))?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, "tollgate access signing key");
    params.distinguished_name = name;
    let (y, m, d) = civil_date(record.created_at.saturating_sub(DAY));
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_date(record.created_at.saturating_add(366 * DAY));
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let cert = params
        .self_signed(&key)
        .map_err(|e| ManageError::crypto("could not sign the key's certificate", e))?;
    Ok(cert.pem())
}

/// (year, month, day) of a unix time, UTC, with the year kept where X.509 validity can say it.
fn civil_date(unix: i64) -> (i32, u8, u8) {
    let (year, month, day) = tollgate_core::clock::utc_date(unix);
    let year = i32::try_from(year.clamp(1950, 9999)).unwrap_or(9999);
    (year, month, day)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::OnceLock;

    /// Two pre-generated key records, shared by tests so each test does not pay for keygen.
    pub(crate) fn test_keys() -> &'static [SigningKeyRecord; 2] {
        static KEYS: OnceLock<[SigningKeyRecord; 2]> = OnceLock::new();
        KEYS.get_or_init(|| [generate_key(0, 0).unwrap(), generate_key(0, 0).unwrap()])
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(1_700_000_000), (2023, 11, 14));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
    }

    #[test]
    fn kid_jwk_and_certificate() {
        let record = test_keys()[0].clone();
        let loaded = LoadedKey::load(record.clone()).unwrap();
        assert_eq!(loaded.kid().len(), 64);
        assert_eq!(loaded.jwk.e, "AQAB");
        let n = URL_SAFE_NO_PAD.decode(&loaded.jwk.n).unwrap();
        assert_eq!(n.len(), 256, "RSA-2048 modulus");
        assert!(loaded.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let mut tampered = record;
        tampered.kid = "0".repeat(64);
        assert!(LoadedKey::load(tampered).is_err());
    }

    #[test]
    fn signatures_verify_with_jsonwebtoken() {
        let loaded = LoadedKey::load(test_keys()[0].clone()).unwrap();
        let claims = AccessClaims::service_token("aud", "https://team.example", "c.access", 1, 2);
        let jwt = loaded.sign(&claims).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.kid.as_deref(), Some(loaded.kid()));
        let key =
            jsonwebtoken::DecodingKey::from_rsa_components(&loaded.jwk.n, &loaded.jwk.e).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&["aud"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation).unwrap();
        assert_eq!(data.claims["common_name"], "c.access");
        assert_eq!(data.claims["sub"], "");
    }
}
