//! A JOSE header and a claims payload written by the fuzzer (`HEADER \0 PAYLOAD`, or just the
//! payload under the standard header), signed with the fixture key, so the signature is valid
//! and every check after it is reached. An accepted token's header and claims meet the
//! documented rules (alg, kid, typ, no crit & co.; exp, nbf/iat with leeway, lifetime, type,
//! iss, aud, identity); the same token with its signature altered is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::RejectionKind;
use tollgate_fuzz::{
    assert_acceptable_claims, assert_acceptable_header, header, sign, verifier, verify,
};

fuzz_target!(|data: &[u8]| {
    let standard = header();
    let (header, payload) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (standard.as_bytes(), data),
    };
    let token = sign(header, payload);
    let Ok(identity) = verify(verifier(), &token) else {
        return;
    };
    assert_acceptable_header(header);
    assert_acceptable_claims(payload, &identity);

    // The last signature character carries signature bits: change it and the token is refused.
    let mut forged = token.into_bytes();
    let last = forged.last_mut().expect("a signature");
    *last = if *last == b'A' { b'Q' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ASCII");
    let refused = verify(verifier(), &forged).expect_err("a forged signature is refused");
    assert!(
        matches!(
            refused.kind(),
            RejectionKind::InvalidSignature | RejectionKind::MalformedToken
        ),
        "{refused:?}"
    );
});
