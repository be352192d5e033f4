//! Checks tokens with jsonwebtoken, an implementation independent of tollgate.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Decodes and verifies an RS256 `jwt` with jsonwebtoken against the RSA key `n`/`e`
/// (base64url), for audience `aud` and issuer `iss`. `exp` is not checked: fixtures' clocks may
/// run ahead of the system clock. Returns the claims.
pub fn decode(jwt: &str, n: &str, e: &str, aud: &str, iss: &str) -> Value {
    let key = jsonwebtoken::DecodingKey::from_rsa_components(n, e).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[iss]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("independent verification failed: {e}"))
        .claims
}

/// The `kid` of a JWT's header, read by jsonwebtoken.
pub fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

/// Checks a service token minted by tollgate's issuer with jsonwebtoken directly against a
/// certs document (JWK `n`/`e`), and its header and claims against Cloudflare's exact shape.
/// Returns the claims.
pub fn verify_independently(jwt: &str, certs: &Value, aud: &str, iss: &str) -> Value {
    // Header: exactly {"kid","alg":"RS256","typ":"JWT"} in Cloudflare's order.
    let header_b64 = jwt.split('.').next().unwrap();
    let header_json = String::from_utf8(URL_SAFE_NO_PAD.decode(header_b64).unwrap()).unwrap();
    let header: Value = serde_json::from_str(&header_json).unwrap();
    let kid = header["kid"].as_str().unwrap();
    assert_eq!(
        header_json,
        format!(r#"{{"kid":"{kid}","alg":"RS256","typ":"JWT"}}"#)
    );
    let jwk = certs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not published"));
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["alg"].as_str(),
            jwk["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    let claims = decode(
        jwt,
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
        aud,
        iss,
    );
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["aud", "common_name", "exp", "iat", "iss", "sub", "type"]
    );
    assert_eq!(claims["type"], "app");
    assert_eq!(
        claims["aud"], aud,
        "aud is a plain string for service tokens"
    );
    assert_eq!(claims["sub"], "");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verify_helper_rejects_a_foreign_token() {
        // The independent check must be able to fail: a token signed by another key is refused.
        let certs = serde_json::json!({"keys": [{"kid": "k", "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": "sXch3Vhj1M0qjvZTyBMGVS2h5C5Bx6CIlzN0h8eGd6ZmxmIZIPRsYxgeJdpG3fBlqj8tkvQhjWTeCxhVDTWmaB6VjnwK6cNzQXcrsiNlyyV58y-vtmjKlw8tj3-N6EOqehDv9Zmhch5CmHvVPf4QsTQIJg5pVbWUIjFgTrH8fpp2Uc3vZbFwHhEoyvUMJmKlbWlE8IyqGYMf9Ckh8eCaC5Kdr4BZwpHJszrXqnw7gvqG8ey27oGNEKgyJsnA2U9M1TQAtWS3tYEeI_q2Iey7fz0E5s-w54VIvGyAcyXb0zYR9ZdLOtN5f-hK0RWlZHkpKqGP1Bt7EckbdPoTRZ8Gaw",
            "e": "AQAB"}]});
        let forged = "eyJraWQiOiJrIiwiYWxnIjoiUlMyNTYiLCJ0eXAiOiJKV1QifQ.eyJhdWQiOiJhIn0.c2ln";
        let result = std::panic::catch_unwind(|| verify_independently(forged, &certs, "a", "i"));
        assert!(result.is_err());
    }
}
