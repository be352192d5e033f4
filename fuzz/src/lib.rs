//! Fixtures and oracles shared by tollgate's fuzz targets (`fuzz_targets/`) and the seed
//! generator (`examples/seeds.rs`).
//!
//! The verifier under fuzz is the real [`Verifier`], built as the tests build one without HTTP:
//! a [`StaticKeySource`] holding a fixed RSA key, a [`ManualClock`] at [`NOW`], issuer [`ISS`]
//! and audience [`AUD`]. The key is the Project Wycheproof JWS vectors' RS256 key (kid
//! `kid-rsa-sign`, from `tollgate_test::wycheproof`): fixed, so a seed token signed once stays
//! valid in every run, and the structured targets sign what the fuzzer writes with it.
//!
//! The oracles here are written from the documented rules (`tollgate_core::request`'s module
//! docs, `Verifier`'s list of checks), over `serde_json::Value` and plain string handling, not
//! by calling the code under test.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    reason = "fuzz fixtures: a fixture that cannot be built is a harness bug"
)]

use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tollgate_core::{AccessIdentity, ManualClock, Rejection};
use tollgate_verify::{KeySet, StaticKeySource, Verifier, VerifyConfig};

pub use tollgate_test::{AUD, CLIENT_ID, ISS, NOW};

/// The `kid` of the fixture signing key.
pub const KID: &str = "kid-rsa-sign";
/// The verifier's default leeway on `nbf` and `iat`, in seconds.
pub const LEEWAY: i64 = 60;
/// The verifier's default longest lifetime (31 days), in seconds.
pub const MAX_LIFETIME: i64 = 31 * 86_400;

struct Fixture {
    pair: KeyPair,
    public_jwk: Value,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let private = tollgate_test::wycheproof::signing_key();
        let der = tollgate_test::wycheproof::pkcs1_private(&private);
        Fixture {
            pair: KeyPair::from_der(&der).unwrap(),
            public_jwk: tollgate_test::wycheproof::public_jwk(&private),
        }
    })
}

/// The fixture key's public JWK (`kid-rsa-sign`, RS256, `use: sig`).
pub fn public_jwk() -> &'static Value {
    &fixture().public_jwk
}

/// The fixture key's modulus and exponent, big-endian, without leading zeros.
pub fn public_components() -> (Vec<u8>, Vec<u8>) {
    let jwk = public_jwk();
    let component = |name: &str| strip_zeros(&b64_decode(jwk[name].as_str().unwrap()).unwrap());
    (component("n"), component("e"))
}

/// Base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict unpadded base64url, as JWS and JWK use it.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// `bytes` without leading zero bytes.
pub fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().skip_while(|b| *b == 0).collect()
}

/// A compact JWS of exactly these header and payload bytes, RS256-signed with the fixture key.
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let pair = &fixture().pair;
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", b64(sig))
}

/// The standard header of fixture tokens.
pub fn header() -> String {
    format!(r#"{{"alg":"RS256","kid":"{KID}","typ":"JWT"}}"#)
}

/// The runtime the targets verify on: one thread, timers enabled, built once.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

/// A verifier for [`ISS`] and [`AUD`] at [`NOW`] over `jwks`.
pub fn verifier_over(jwks: KeySet) -> Verifier {
    let config = VerifyConfig::new(ISS)
        .audience(AUD)
        .clock(Arc::new(ManualClock::at_unix(NOW)));
    Verifier::new(config, StaticKeySource::new(jwks)).unwrap()
}

/// The verifier the token targets share, holding the fixture key alone.
pub fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| verifier_over(KeySet::from_jwks(vec![public_jwk().clone()])))
}

/// `verifier.verify(token)` on the fuzz runtime.
pub fn verify(verifier: &Verifier, token: &str) -> Result<AccessIdentity, Rejection> {
    runtime().block_on(verifier.verify(token))
}

/// Whether two verification outcomes are the same: the same claims, or the same reason.
pub fn same_outcome(
    a: &Result<AccessIdentity, Rejection>,
    b: &Result<AccessIdentity, Rejection>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.claims() == b.claims() && a.kind() == b.kind(),
        (Err(a), Err(b)) => a.kind() == b.kind(),
        _ => false,
    }
}

/// What the documented rules require of a JOSE header the verifier accepted, checked on the
/// header's JSON: an object with `alg` `RS256`, `kid` the fixture's, `typ` absent or `JWT` (any
/// case), and none of `crit`, `b64`, `zip`, `enc`, `p2c`, `epk`.
pub fn assert_acceptable_header(header: &[u8]) {
    let header: Value = serde_json::from_slice(header).expect("accepted header is JSON");
    let header = header.as_object().expect("accepted header is an object");
    assert_eq!(header.get("alg"), Some(&Value::from("RS256")), "{header:?}");
    assert_eq!(header.get("kid"), Some(&Value::from(KID)), "{header:?}");
    match header.get("typ") {
        None | Some(Value::Null) => {}
        Some(Value::String(typ)) => assert!(typ.eq_ignore_ascii_case("JWT"), "{header:?}"),
        Some(other) => panic!("accepted a typ of {other}"),
    }
    for refused in ["crit", "b64", "zip", "enc", "p2c", "epk"] {
        assert!(
            !header.contains_key(refused),
            "accepted a header with {refused}"
        );
    }
}

/// A JSON number as a `NumericDate` (integers as they are, other finite numbers floored).
fn numeric_date(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    n.as_i64().or_else(|| n.as_f64().map(|f| f.floor() as i64))
}

/// What the documented rules require of claims the verifier accepted at [`NOW`], checked on
/// the payload's JSON and against the identity it answered.
pub fn assert_acceptable_claims(payload: &[u8], identity: &AccessIdentity) {
    let claims: Value = serde_json::from_slice(payload).expect("accepted payload is JSON");
    let claims = claims.as_object().expect("accepted payload is an object");
    let exp = claims.get("exp").and_then(numeric_date).expect("exp");
    assert!(NOW < exp, "accepted a token expired at {exp}");
    for name in ["iat", "nbf"] {
        if let Some(value) = claims.get(name) {
            let time = numeric_date(value).unwrap_or_else(|| panic!("accepted {name}: {value}"));
            assert!(time <= NOW + LEEWAY, "accepted {name} {time} in the future");
        }
    }
    let iat = claims.get("iat").and_then(numeric_date);
    let nbf = claims.get("nbf").and_then(numeric_date);
    let start = iat.or(nbf).unwrap_or(NOW);
    assert!(
        exp - start <= MAX_LIFETIME,
        "accepted a lifetime of {}",
        exp - start
    );
    match claims.get("type") {
        None | Some(Value::Null) => {}
        Some(t) => assert_eq!(t, "app", "accepted type {t}"),
    }
    assert_eq!(claims.get("iss"), Some(&Value::from(ISS)));
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == AUD,
        Some(Value::Array(auds)) => {
            auds.iter().all(Value::is_string) && auds.iter().any(|a| a == AUD)
        }
        _ => false,
    };
    assert!(audience_ok, "accepted aud {:?}", claims.get("aud"));
    let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
    if !text("common_name").is_empty() {
        assert!(identity.is_service());
        assert_eq!(identity.client_id(), Some(text("common_name")));
    } else {
        assert!(identity.is_user());
        assert!(!text("email").is_empty() || !text("sub").is_empty());
    }
    assert_eq!(identity.issuer(), ISS);
    assert_eq!(identity.claims().expires_at(), exp);
}

/// Checks a token the verifier accepted against the rules: a compact JWS whose decoded header
/// and payload pass [`assert_acceptable_header`] and [`assert_acceptable_claims`].
pub fn assert_acceptable_token(token: &str, identity: &AccessIdentity) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted a token of {} parts", parts.len());
    let header = b64_decode(parts[0]).expect("accepted header is base64url");
    let payload = b64_decode(parts[1]).expect("accepted payload is base64url");
    assert!(b64_decode(parts[2]).is_some_and(|sig| !sig.is_empty()));
    assert_acceptable_header(&header);
    assert_acceptable_claims(&payload, identity);
}

/// A header map from text: one `name: value` a line (`\n`-separated; one space after the
/// colon dropped). Lines whose name or value `http` refuses are skipped, so every byte string
/// is some header map.
pub fn header_map(text: &[u8]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Key spellings of the single-header JSON, normalised as the docs say they are matched: any
/// case, `_` for `-`.
pub fn normalised_key(key: &str) -> String {
    key.to_ascii_lowercase().replace('_', "-")
}
