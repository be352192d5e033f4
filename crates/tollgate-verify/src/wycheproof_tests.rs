//! Project Wycheproof vectors (Apache-2.0, see `tests/fixtures/wycheproof/PROVENANCE.md`),
//! run through the verifier's JWS layer and key parsing. Their payloads are opaque bytes, not
//! claim sets, so they stop short of the claim checks.
//!
//! Deviations from a general-purpose JOSE library, by policy: HMAC (`HS*`) and `none` are never
//! accepted, so Wycheproof's *valid* HMAC vectors must be refused here; ES512 is not supported;
//! a JWK's `alg` pins its key to that algorithm, so RFC 7520's PS384 signatures made with a key
//! published as `"alg":"PS256"` (tc 346, 350) are refused.
//! Known gap: the ROCA-weak modulus (json_web_key tc 7) is not detected.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::Value;
use tollgate_core::ManualClock;

use crate::VerifyConfig;
use crate::algorithm::Algorithm;
use crate::key_source::{KeySet, StaticKeySource};
use crate::public_key::PublicKey;
use crate::verifier::Verifier;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn tests(group: &Value) -> impl Iterator<Item = &Value> {
    group["tests"].as_array().unwrap().iter()
}

/// Algorithms tollgate refuses by policy, whatever a vector expects.
fn refused_by_policy(token: &str) -> bool {
    let Some(header) = token.split('.').next() else {
        return false;
    };
    // Lenient on purpose: some vectors mangle the header's base64 and still say "valid".
    let clean: String = header
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let Ok(bytes) = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        clean.trim_end_matches('='),
    ) else {
        return false;
    };
    let header: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let alg = header["alg"].as_str().unwrap_or("");
    alg.parse::<Algorithm>().is_err()
}

fn verifier_for(keys: Vec<Value>) -> Verifier {
    let config = VerifyConfig::new("wycheproof")
        .audience("wycheproof")
        .algorithms(Algorithm::ALL)
        .clock(Arc::new(ManualClock::at_unix(1_700_000_000)));
    Verifier::new(config, StaticKeySource::new(KeySet::from_jwks(keys))).unwrap()
}

fn key_list(set: &Value) -> Vec<Value> {
    match set.get("keys") {
        Some(Value::Array(keys)) => keys.clone(),
        _ if set.is_object() => vec![set.clone()],
        _ => Vec::new(),
    }
}

async fn run(file: &str, known_gaps: &[u64]) -> (usize, Vec<u64>) {
    let data = fixture(file);
    let mut checked = 0;
    let mut gaps = Vec::new();
    for group in data["testGroups"].as_array().unwrap() {
        // Verifiers get public keys only; symmetric-only groups have none, so they publish
        // their (secret) keys, which must be refused anyway.
        let keys = key_list(group.get("public").unwrap_or(&group["private"]));
        let verifier = verifier_for(keys);
        for test in tests(group) {
            let tc = test["tcId"].as_u64().unwrap();
            let token = test["jws"].as_str().unwrap();
            let result = verifier.verify_signature_only(token).await;
            let expected_ok = match test["result"].as_str().unwrap() {
                "valid" => !refused_by_policy(token),
                "invalid" => false,
                _ => continue,
            };
            if result.is_ok() != expected_ok {
                gaps.push(tc);
                assert!(
                    known_gaps.contains(&tc),
                    "{file} tc {tc} ({}): expected ok={expected_ok}, got {result:?}",
                    test["comment"]
                );
            }
            checked += 1;
        }
    }
    (checked, gaps)
}

#[tokio::test]
async fn json_web_signature_vectors() {
    let (checked, gaps) = run("json_web_signature_test.json", &[346, 350]).await;
    assert_eq!(checked, 401);
    assert_eq!(gaps, [346, 350], "only the JWK-alg pinning deviations");
}

#[tokio::test]
async fn json_web_key_vectors() {
    let (checked, gaps) = run("json_web_key_test.json", &[7]).await;
    assert_eq!(checked, 26);
    assert_eq!(gaps, [7], "only the known ROCA gap");
}

#[test]
fn rsa_pkcs1_sha256_vectors() {
    let data = fixture("rsa_signature_2048_sha256_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in data["testGroups"].as_array().unwrap() {
        let mut jwk = group["keyJwk"].clone();
        jwk["kid"] = Value::from("wycheproof");
        let key = PublicKey::from_jwk(&jwk, &[Algorithm::RS256]).unwrap();
        let verifier = key.verifier(Algorithm::RS256).unwrap();
        for test in tests(group) {
            let msg = hex::decode(test["msg"].as_str().unwrap()).unwrap();
            let sig = hex::decode(test["sig"].as_str().unwrap()).unwrap();
            let ok = verifier.verify_sig(&msg, &sig).is_ok();
            match test["result"].as_str().unwrap() {
                "valid" => {
                    assert!(ok, "tc {}", test["tcId"]);
                    valid += 1;
                }
                "invalid" => {
                    assert!(!ok, "tc {} ({})", test["tcId"], test["comment"]);
                    invalid += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!((valid, invalid), (9, 249));
}
