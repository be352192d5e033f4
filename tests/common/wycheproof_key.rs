//! The Wycheproof `rs256` signing key (kid `kid-rsa-sign`, from
//! `tests/fixtures/wycheproof/json_web_signature_test.json`, Apache-2.0, see PROVENANCE.md there)
//! as a fixture: tokens signed by an independent implementation (jsonwebtoken) with a key that
//! needs no generation. Shared by `tests/behind_cloudflare.rs` and `benches/verify.rs`.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The key as a JWK with its private members.
pub(crate) fn wycheproof_key() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wycheproof/json_web_signature_test.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    data["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| &group["private"])
        .find(|key| key["kid"] == "kid-rsa-sign" && key["kty"] == "RSA")
        .unwrap()
        .clone()
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
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

/// PKCS#1 `RSAPrivateKey` DER of a private JWK.
pub(crate) fn pkcs1_private(jwk: &Value) -> Vec<u8> {
    let mut body = der(0x02, &[0]);
    for member in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        let mut bytes = URL_SAFE_NO_PAD
            .decode(jwk[member].as_str().unwrap())
            .unwrap();
        if bytes[0] & 0x80 != 0 {
            bytes.insert(0, 0);
        }
        body.extend(der(0x02, &bytes));
    }
    der(0x30, &body)
}

/// An RS256 JWT over `claims`, signed by jsonwebtoken with the key, header `kid` = `kid-rsa-sign`.
pub(crate) fn sign(key: &Value, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("kid-rsa-sign".to_owned());
    let encoding = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1_private(key));
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}
