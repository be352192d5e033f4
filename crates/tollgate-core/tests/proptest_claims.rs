//! Property tests of the claims parser (`AccessClaims::from_json`), the one the `fuzz/claims`
//! target drives, on generated payloads in every `cargo test`.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tollgate_core::AccessClaims;
use tollgate_core::claims::ClaimsErrorKind;

/// A JSON value of a few levels, as custom claims hold.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e15f64..1e15).prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const OPTIONAL_STRINGS: [&str; 7] = [
    "type",
    "email",
    "common_name",
    "identity_nonce",
    "sub",
    "country",
    "policy_id",
];

/// A payload: the required claims, some optional ones (strings, or `null` for absent), and
/// custom claims.
fn payload() -> impl Strategy<Value = Map<String, Value>> {
    let aud = prop_oneof![
        "[a-f0-9]{8}".prop_map(Value::from),
        prop::collection::vec("[a-f0-9]{8}", 0..3).prop_map(Value::from),
    ];
    let time = prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-9.0e14f64..9.0e14).prop_map(Value::from)
    ];
    let optional = prop::collection::vec(
        prop::option::of(prop_oneof![
            3 => ".{0,12}".prop_map(Value::from),
            1 => Just(Value::Null),
        ]),
        OPTIONAL_STRINGS.len(),
    );
    let custom = prop::collection::btree_map("x_[a-z]{1,6}", value(), 0..4);
    (
        aud,
        time.clone(),
        prop::option::of(time.clone()),
        prop::option::of(time),
        ".{0,16}",
        optional,
        custom,
    )
        .prop_map(|(aud, exp, iat, nbf, iss, optional, custom)| {
            let mut map = Map::new();
            map.insert("aud".into(), aud);
            map.insert("exp".into(), exp);
            if let Some(iat) = iat {
                map.insert("iat".into(), iat);
            }
            if let Some(nbf) = nbf {
                map.insert("nbf".into(), nbf);
            }
            map.insert("iss".into(), Value::from(iss));
            for (name, value) in OPTIONAL_STRINGS.iter().zip(optional) {
                if let Some(value) = value {
                    map.insert((*name).into(), value);
                }
            }
            map.extend(custom);
            map
        })
}

fn floor_time(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| value.as_f64().unwrap().floor() as i64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated claims parse, read back as written (times floored, `null` strings absent,
    /// custom claims kept), and survive serialize-then-parse unchanged.
    #[test]
    fn claims_parse_and_round_trip(payload in payload()) {
        let text = Value::Object(payload.clone()).to_string();
        let claims = AccessClaims::from_json(text.as_bytes()).unwrap();
        prop_assert_eq!(claims.expires_at(), floor_time(&payload["exp"]));
        prop_assert_eq!(claims.issued_at(), payload.get("iat").map(floor_time));
        prop_assert_eq!(claims.not_before(), payload.get("nbf").map(floor_time));
        prop_assert_eq!(claims.issuer(), payload["iss"].as_str().unwrap());
        prop_assert_eq!(claims.email(), payload.get("email").and_then(Value::as_str));
        prop_assert_eq!(claims.subject(), payload.get("sub").and_then(Value::as_str).unwrap_or(""));
        for (name, value) in payload.iter().filter(|(name, _)| name.starts_with("x_")) {
            prop_assert_eq!(claims.get(name), Some(value.clone()));
        }
        let again = AccessClaims::from_json(&serde_json::to_vec(&claims).unwrap()).unwrap();
        prop_assert_eq!(again, claims);
    }

    /// Any claim written twice (standard or custom, same value or not) is refused as a
    /// duplicate, naming it.
    #[test]
    fn a_claim_twice_is_refused(payload in payload(), pick in any::<prop::sample::Index>(), same in any::<bool>()) {
        let names: Vec<&String> = payload.keys().collect();
        let name = names[pick.index(names.len())].clone();
        let body = Value::Object(payload.clone()).to_string();
        let repeated = if same { payload[&name].clone() } else { json!("other") };
        let text = format!(
            "{},{}:{}}}",
            &body[..body.len() - 1],
            serde_json::to_string(&name).unwrap(),
            repeated
        );
        let err = AccessClaims::from_json(text.as_bytes()).unwrap_err();
        prop_assert_eq!(err.kind(), ClaimsErrorKind::DuplicateClaim);
        prop_assert_eq!(err.claim(), Some(name.as_str()));
    }

    /// A time claim that is not a number (`null`, a string, a boolean) is invalid, never absent.
    #[test]
    fn a_time_that_is_not_a_number_is_invalid(
        payload in payload(),
        claim in prop_oneof![Just("exp"), Just("iat"), Just("nbf")],
        bad in prop_oneof![Just(Value::Null), Just(json!("1700000000")), Just(json!(true)), Just(json!([1]))],
    ) {
        let mut payload = payload;
        payload.insert(claim.into(), bad);
        let err = AccessClaims::from_json(Value::Object(payload).to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(err.kind(), ClaimsErrorKind::InvalidClaim);
        prop_assert_eq!(err.claim(), Some(claim));
    }
}

/// Found by `claims_parse_and_round_trip`: serde_json's default float parser may land one ULP
/// off the nearest `f64`, so a custom claim read back differed from the value written (and a
/// re-serialized payload drifted). tollgate-core enables serde_json's `float_roundtrip`.
#[test]
fn float_claims_read_back_exactly() {
    let written = 200_931_216_581_439.62_f64;
    let text =
        format!(r#"{{"aud":"a","exp":0,"iss":"","x_a":[{written}],"iat":1700000000.9999999}}"#);
    let claims = AccessClaims::from_json(text.as_bytes()).unwrap();
    assert_eq!(claims.get("x_a"), Some(json!([written])));
    let again = AccessClaims::from_json(&serde_json::to_vec(&claims).unwrap()).unwrap();
    assert_eq!(again, claims);
}
