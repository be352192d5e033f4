//! Public keys, parsed once from JWKs (or PEM) into aws-lc-rs keys ready to verify.
//!
//! Every JWK is judged on its own: one unsupported or unsafe key is skipped with a reason and
//! the rest of the set still loads. Refused outright: private key material, `use` other than
//! `sig`, `key_ops` without `verify`, symmetric keys, RSA moduli under 2048 (or over 8192)
//! bits, RSA exponents that are even, 1, or wider than 32 bits, and any `alg` outside the
//! verifier's allow-list.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::signature::ParsedPublicKey;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::algorithm::{Algorithm, KeyFamily};

/// A verification key: its `kid`, and one parsed aws-lc-rs key per allowed algorithm.
pub(crate) struct PublicKey {
    kid: String,
    verifiers: Vec<(Algorithm, ParsedPublicKey)>,
    fingerprint: [u8; 32],
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algs: Vec<&str> = self.verifiers.iter().map(|(a, _)| a.as_str()).collect();
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("algorithms", &algs)
            .finish()
    }
}

impl PublicKey {
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// A digest of the key material and its allowed algorithms: equal fingerprints mean the
    /// same key.
    pub(crate) fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// The parsed key for `alg`, if this key may be used with it.
    pub(crate) fn verifier(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, key)| key)
    }

    /// Parses one JWK, or says why it is skipped.
    pub(crate) fn from_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<Self, &'static str> {
        let Value::Object(jwk) = jwk else {
            return Err("JWK is not a JSON object");
        };
        let kid = match jwk.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => kid.clone(),
            Some(_) => return Err("JWK `kid` is not a short non-empty string"),
            None => return Err("JWK has no `kid`"),
        };
        const PRIVATE: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];
        if PRIVATE.iter().any(|m| jwk.contains_key(*m)) || jwk.contains_key("k") {
            return Err("JWK carries private or symmetric key material");
        }
        match jwk.get("use") {
            None => {}
            Some(Value::String(u)) if u == "sig" => {}
            Some(_) => return Err("JWK `use` is not `sig`"),
        }
        match jwk.get("key_ops") {
            None => {}
            Some(Value::Array(ops)) if ops.iter().any(|op| op == "verify") => {}
            Some(_) => return Err("JWK `key_ops` does not include `verify`"),
        }
        let jwk_alg = match jwk.get("alg") {
            None => None,
            Some(Value::String(name)) => match name.parse::<Algorithm>() {
                Ok(alg) => Some(alg),
                Err(_) => return Err("JWK `alg` is not a supported signature algorithm"),
            },
            Some(_) => return Err("JWK `alg` is not a string"),
        };
        let (family, der) = match string(jwk, "kty")? {
            "RSA" => {
                let n = b64(jwk, "n")?;
                let e = b64(jwk, "e")?;
                (KeyFamily::Rsa, rsa_public_key_der(&n, &e)?)
            }
            "EC" => {
                let (family, len) = match string(jwk, "crv")? {
                    "P-256" => (KeyFamily::P256, 32),
                    "P-384" => (KeyFamily::P384, 48),
                    _ => return Err("EC JWK curve is not P-256 or P-384"),
                };
                let x = b64(jwk, "x")?;
                let y = b64(jwk, "y")?;
                if x.len() != len || y.len() != len {
                    return Err("EC JWK coordinates have the wrong length");
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (family, point)
            }
            "OKP" => {
                if string(jwk, "crv")? != "Ed25519" {
                    return Err("OKP JWK curve is not Ed25519");
                }
                let x = b64(jwk, "x")?;
                if x.len() != 32 {
                    return Err("Ed25519 JWK key has the wrong length");
                }
                (KeyFamily::Ed25519, x)
            }
            "oct" => return Err("symmetric (`oct`) keys are never accepted"),
            _ => return Err("unsupported JWK key type"),
        };
        let candidates: Vec<Algorithm> = allowed
            .iter()
            .copied()
            .filter(|alg| alg.family() == family && jwk_alg.is_none_or(|j| j == *alg))
            .collect();
        if candidates.is_empty() {
            return Err(if jwk_alg.is_some() {
                "JWK `alg` is not on the allow-list or does not fit the key"
            } else {
                "no allowed algorithm fits this key type"
            });
        }
        let mut verifiers = Vec::with_capacity(candidates.len());
        for alg in candidates {
            let parsed = ParsedPublicKey::new(alg.verification(), &der)
                .map_err(|_| "key rejected by the crypto library")?;
            verifiers.push((alg, parsed));
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(kid.as_bytes());
        ctx.update(&[0]);
        ctx.update(&der);
        for (alg, _) in &verifiers {
            ctx.update(alg.as_str().as_bytes());
        }
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(ctx.finish().as_ref());
        Ok(Self {
            kid,
            verifiers,
            fingerprint,
        })
    }
}

fn string<'a>(jwk: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, &'static str> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err("JWK lacks a required string member"),
    }
}

fn b64(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD
        .decode(string(jwk, name)?)
        .map_err(|_| "JWK member is not unpadded base64url")
}

/// Validates an RSA public key's `n` and `e` and encodes it as a PKCS#1 `RSAPublicKey`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, &'static str> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    let bits = n
        .first()
        .map_or(0, |first| n.len() * 8 - first.leading_zeros() as usize);
    if bits < 2048 {
        return Err("RSA modulus is shorter than 2048 bits");
    }
    if bits > 8192 {
        return Err("RSA modulus is longer than 8192 bits");
    }
    if e.len() > 4 {
        return Err("RSA exponent is wider than 32 bits");
    }
    let exponent = e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    if exponent < 3 || exponent % 2 == 0 {
        return Err("RSA exponent is not an odd number of at least 3");
    }
    let mut body = der_integer(n);
    body.extend(der_integer(e));
    Ok(der_tlv(0x30, &body))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn der_integer(unsigned: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(unsigned.len() + 1);
    if unsigned.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(unsigned);
    der_tlv(0x02, &content)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A minimal DER reader: the content of the next element, which must have `tag`.
fn der_read(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&got, rest) = input.split_first()?;
    if got != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// `n` and `e` of a PKCS#1 `RSAPublicKey`.
fn parse_pkcs1(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (seq, rest) = der_read(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (n, seq) = der_read(seq, 0x02)?;
    let (e, seq) = der_read(seq, 0x02)?;
    seq.is_empty().then_some((n, e))
}

/// The PKCS#1 `RSAPublicKey` inside an RSA `SubjectPublicKeyInfo`.
fn parse_rsa_spki(der: &[u8]) -> Option<&[u8]> {
    let (spki, rest) = der_read(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (alg_id, spki) = der_read(spki, 0x30)?;
    let (oid, _params) = der_read(alg_id, 0x06)?;
    if oid != RSA_ENCRYPTION_OID {
        return None;
    }
    let (bits, rest) = der_read(spki, 0x03)?;
    if !rest.is_empty() {
        return None;
    }
    let (&unused, pkcs1) = bits.split_first()?;
    (unused == 0).then_some(pkcs1)
}

fn spki_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg_id = der_tlv(0x06, RSA_ENCRYPTION_OID);
    alg_id.extend([0x05, 0x00]);
    let mut body = der_tlv(0x30, &alg_id);
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

/// Converts PEM RSA public keys (`PUBLIC KEY` or `RSA PUBLIC KEY` blocks) to JWKs whose `kid`
/// is the lowercase hex SHA-256 of the key's DER `SubjectPublicKeyInfo` — the `kid` tollgate's
/// issuer and Cloudflare use.
pub(crate) fn pem_to_jwks(pem: &str) -> Result<Vec<Value>, &'static str> {
    let mut keys = Vec::new();
    let mut lines = pem.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            match lines.next() {
                Some(l) if l == end => break,
                Some(l) => body.push_str(l),
                None => return Err("PEM block is not terminated"),
            }
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| "PEM body is not base64")?;
        let (spki, pkcs1) = match label {
            "PUBLIC KEY" => {
                let pkcs1 = parse_rsa_spki(&der).ok_or("PEM key is not an RSA public key")?;
                (der.clone(), pkcs1.to_vec())
            }
            "RSA PUBLIC KEY" => (spki_from_pkcs1(&der), der.clone()),
            _ => return Err("PEM block is not a public key"),
        };
        let (n, e) = parse_pkcs1(&pkcs1).ok_or("malformed RSA public key")?;
        let kid = hex::encode(digest::digest(&digest::SHA256, &spki));
        keys.push(json!({
            "kid": kid,
            "kty": "RSA",
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(strip_leading_zeros(n)),
            "e": URL_SAFE_NO_PAD.encode(strip_leading_zeros(e)),
        }));
    }
    if keys.is_empty() {
        return Err("no PEM public key found");
    }
    Ok(keys)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rsa_jwk(bits: usize, e: &[u8]) -> Value {
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0xc5;
        json!({"kid":"k","kty":"RSA","n":URL_SAFE_NO_PAD.encode(n),"e":URL_SAFE_NO_PAD.encode(e)})
    }

    #[test]
    fn rsa_size_and_exponent_rules() {
        let rs = [Algorithm::RS256];
        assert_eq!(
            PublicKey::from_jwk(&rsa_jwk(1024, &[1, 0, 1]), &rs).unwrap_err(),
            "RSA modulus is shorter than 2048 bits"
        );
        assert_eq!(
            PublicKey::from_jwk(&rsa_jwk(2048, &[1]), &rs).unwrap_err(),
            "RSA exponent is not an odd number of at least 3"
        );
        assert_eq!(
            PublicKey::from_jwk(&rsa_jwk(2048, &[1, 0, 0]), &rs).unwrap_err(),
            "RSA exponent is not an odd number of at least 3"
        );
    }

    #[test]
    fn refuses_private_symmetric_and_encryption_keys() {
        let rs = [Algorithm::RS256];
        let mut private = rsa_jwk(2048, &[1, 0, 1]);
        private["d"] = json!("AQAB");
        assert!(PublicKey::from_jwk(&private, &rs).is_err());
        let mut enc = rsa_jwk(2048, &[1, 0, 1]);
        enc["use"] = json!("enc");
        assert_eq!(
            PublicKey::from_jwk(&enc, &rs).unwrap_err(),
            "JWK `use` is not `sig`"
        );
        let oct = json!({"kid":"k","kty":"oct","k":"c2VjcmV0"});
        assert!(PublicKey::from_jwk(&oct, &rs).is_err());
    }

    #[test]
    fn der_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let tlv = der_tlv(0x04, &content);
            let (got, rest) = der_read(&tlv, 0x04).expect("reads back");
            assert_eq!(got.len(), len);
            assert!(rest.is_empty());
        }
    }
}
