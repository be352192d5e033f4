//! The claims parser, `AccessClaims::from_json`, over arbitrary bytes: never panics; what it
//! accepts is a JSON object with `aud` (a string or an array of strings), a numeric `exp` and a
//! string `iss`; it agrees with the serde `Deserialize` impl; accepted claims serialize and
//! parse back to equal claims; building an identity from them never panics and names a user
//! or a service.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_core::{AccessClaims, AccessIdentity};

fuzz_target!(|data: &[u8]| {
    let parsed = AccessClaims::from_json(data);
    let via_serde = serde_json::from_slice::<AccessClaims>(data);
    assert_eq!(
        parsed.as_ref().ok(),
        via_serde.as_ref().ok(),
        "from_json and Deserialize disagree"
    );
    let Ok(claims) = parsed else {
        return;
    };
    let json: Value = serde_json::from_slice(data).expect("accepted claims are JSON");
    let object = json.as_object().expect("accepted claims are an object");
    assert!(object["exp"].is_number());
    assert!(object["iss"].is_string());
    match &object["aud"] {
        Value::String(_) => {}
        Value::Array(auds) => assert!(auds.iter().all(Value::is_string)),
        other => panic!("accepted aud {other}"),
    }
    assert_eq!(claims.issuer(), object["iss"]);

    let text = serde_json::to_vec(&claims).expect("claims serialize");
    let again = AccessClaims::from_json(&text).expect("serialized claims parse");
    assert_eq!(again, claims);
    assert_eq!(serde_json::to_vec(&again).expect("serialize"), text);

    if let Ok(identity) = AccessIdentity::from_claims(claims) {
        assert!(identity.is_user() != identity.is_service());
        assert!(!identity.name().is_empty());
    }
});
