//! The claims of Cloudflare-shaped test tokens.

use serde_json::json;

/// The issuer of test tokens.
pub const ISS: &str = "https://team.cloudflareaccess.com";
/// The AUD tag of test tokens.
pub const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
/// A service token's client ID.
pub const CLIENT_ID: &str = "5a1b4f0cbd6df4b22b11c8ffb5d4b4a9.access";
/// "Now" for tests that fix the clock.
pub const NOW: i64 = 1_700_000_000;

/// A service token's payload as Cloudflare writes it: issued by [`ISS`] for [`AUD`] at `iat`,
/// valid for `ttl` seconds.
pub fn service_payload(iat: i64, ttl: i64) -> String {
    service_claims(ISS, iat, ttl).to_string()
}

/// [`service_payload`] as JSON, with another issuer.
pub fn service_claims(iss: &str, iat: i64, ttl: i64) -> serde_json::Value {
    json!({"type":"app","aud":AUD,"exp":iat + ttl,"iss":iss,"common_name":CLIENT_ID,"iat":iat,"sub":""})
}

/// A user's token payload as Cloudflare writes it (the audience is an array), issued by
/// [`ISS`].
pub fn user_payload(email: &str, iat: i64, ttl: i64) -> String {
    user_claims(ISS, email, iat, ttl).to_string()
}

/// [`user_payload`] as JSON, with another issuer.
pub fn user_claims(iss: &str, email: &str, iat: i64, ttl: i64) -> serde_json::Value {
    json!({"aud":[AUD],"email":email,"exp":iat + ttl,"iat":iat,"nbf":iat,"iss":iss,"type":"app",
           "identity_nonce":"6ei69kawdKzMIAPF","sub":"7335d417-61da-459d-899c-0a01c76a2f94","country":"NL"})
}
