//! Arbitrary bytes as a compact token through the real `Verifier` (fixture key, fixed clock).
//! Never panics; an accepted token is a JWS whose header and claims meet every documented rule;
//! verifying it again (a verified-token cache hit, or a second refusal) answers the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_fuzz::{assert_acceptable_token, same_outcome, verifier, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let first = verify(verifier(), token);
    if let Ok(identity) = &first {
        assert_acceptable_token(token, identity);
    }
    let again = verify(verifier(), token);
    assert!(same_outcome(&first, &again), "{first:?} then {again:?}");
});
