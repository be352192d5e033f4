//! JWK Set documents: `KeySet::from_jwks_json`, then a verifier over the set (every JWK parsed
//! and judged by the key cache). Never panics; an accepted document is a JSON object whose
//! `keys` array has as many members as the set; the set survives a write and re-read; a
//! token of the fixture key verifies only if the set publishes that key under its kid as a
//! public RSA signing key fit for RS256, and a token signed by another key under the same kid
//! never verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tollgate_fuzz::{
    KID, b64_decode, header, public_components, same_outcome, sign, strip_zeros, verifier_over,
    verify,
};
use tollgate_test::{NOW, keys, service_payload};
use tollgate_verify::KeySet;

fn tokens() -> &'static (String, String) {
    static TOKENS: OnceLock<(String, String)> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let payload = service_payload(NOW, 3600);
        let genuine = sign(header().as_bytes(), payload.as_bytes());
        let impostor = keys()[0].sign(&header(), &payload);
        (genuine, impostor)
    })
}

/// Whether `jwk` publishes the fixture key as the documented rules allow it to be used.
fn publishes_fixture_key(jwk: &Value) -> bool {
    let Some(jwk) = jwk.as_object() else {
        return false;
    };
    let (n, e) = public_components();
    let component = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(b64_decode)
            .map(|bytes| strip_zeros(&bytes))
    };
    let private = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    jwk.get("kid") == Some(&Value::from(KID))
        && jwk.get("kty") == Some(&Value::from("RSA"))
        && component("n") == Some(n)
        && component("e") == Some(e)
        && !private.iter().any(|m| jwk.contains_key(*m))
        && jwk.get("use").is_none_or(|u| u == "sig")
        && jwk.get("alg").is_none_or(|a| a == "RS256")
        && jwk.get("key_ops").is_none_or(|ops| {
            ops.as_array()
                .is_some_and(|ops| ops.iter().any(|o| o == "verify"))
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(set) = KeySet::from_jwks_json(data) else {
        return;
    };
    let document: Value = serde_json::from_slice(data).expect("an accepted JWK Set is JSON");
    let listed = document
        .as_object()
        .and_then(|doc| doc.get("keys"))
        .and_then(Value::as_array)
        .expect("an accepted JWK Set is an object with a keys array");
    assert_eq!(listed.len(), set.len());

    let written = serde_json::to_vec(&json!({ "keys": set.jwks() })).expect("serialize");
    let reread = KeySet::from_jwks_json(&written).expect("a written set reads back");
    assert_eq!(reread.jwks(), set.jwks());

    let (genuine, impostor) = tokens();
    let verifier = verifier_over(set.clone());
    let outcome = verify(&verifier, genuine);
    if outcome.is_ok() {
        assert!(
            set.jwks().iter().any(publishes_fixture_key),
            "accepted a token whose key the set does not publish: {set:?}"
        );
    }
    assert!(
        verify(&verifier, impostor).is_err(),
        "accepted a token signed by another key"
    );
    let again = verify(&verifier_over(reread), genuine);
    assert!(same_outcome(&outcome, &again), "{outcome:?} then {again:?}");
});
