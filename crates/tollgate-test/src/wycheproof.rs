//! Project Wycheproof data (Apache-2.0; the files, their LICENSE and PROVENANCE.md are in
//! `tests/fixtures/wycheproof/` at the workspace root, where tollgate-verify's own vector tests
//! read them too), and the `rs256` signing key of its JWS vectors (kid `kid-rsa-sign`) as a
//! fixture: tokens signed by an independent implementation (jsonwebtoken) with a key that
//! needs no generation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::keys::der;

/// `json_web_signature_test.json`, parsed.
pub fn json_web_signature_test() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/wycheproof/json_web_signature_test.json"
    ))
    .unwrap()
}

/// `json_web_key_test.json`, parsed.
pub fn json_web_key_test() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/wycheproof/json_web_key_test.json"
    ))
    .unwrap()
}

/// The JWS vectors' RSA signing key (kid `kid-rsa-sign`) as a JWK with its private members.
pub fn signing_key() -> Value {
    json_web_signature_test()["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| &group["private"])
        .find(|key| key["kid"] == "kid-rsa-sign" && key["kty"] == "RSA")
        .unwrap()
        .clone()
}

/// The public JWK of a private RSA JWK, as Cloudflare publishes keys.
pub fn public_jwk(key: &Value) -> Value {
    json!({"kid": key["kid"], "kty": "RSA", "alg": "RS256", "use": "sig",
           "n": key["n"], "e": key["e"]})
}

/// PKCS#1 `RSAPrivateKey` DER of a private JWK.
pub fn pkcs1_private(jwk: &Value) -> Vec<u8> {
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

/// An RS256 JWT over `claims`, signed by jsonwebtoken with the private JWK `key`, header `kid`
/// = `kid-rsa-sign`.
pub fn sign(key: &Value, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("kid-rsa-sign".to_owned());
    let encoding = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1_private(key));
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_signs_what_its_public_half_verifies() {
        let key = signing_key();
        let jwt = sign(&key, &json!({"sub": "x"}));
        let public = public_jwk(&key);
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
            public["n"].as_str().unwrap(),
            public["e"].as_str().unwrap(),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&jwt, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
    }
}
