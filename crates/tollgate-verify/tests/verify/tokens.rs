//! Token checks, with tokens built byte by byte: the happy paths and the hostile cases.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use serde_json::{Value, json};
use tollgate_core::{IdentityKind, ManualClock, RejectionKind};
use tollgate_test::{AUD, CLIENT_ID, ISS, NOW, b64, keys, service_payload, user_payload};
use tollgate_verify::{Algorithm, KeySet, StaticKeySource, Verifier, VerifyConfig};

fn verifier_with(config: VerifyConfig, jwks: Vec<Value>) -> (Verifier, ManualClock) {
    let clock = ManualClock::at_unix(NOW);
    let config = config.clock(Arc::new(clock.clone()));
    let source = StaticKeySource::new(KeySet::from_jwks(jwks));
    (Verifier::new(config, source).unwrap(), clock)
}

fn verifier() -> (Verifier, ManualClock) {
    let k = keys();
    verifier_with(
        VerifyConfig::new(ISS).audience(AUD),
        vec![k[0].jwk(), k[1].jwk()],
    )
}

async fn reject(verifier: &Verifier, token: &str) -> RejectionKind {
    verifier
        .verify(token)
        .await
        .expect_err("token must be refused")
        .kind()
}

#[tokio::test]
async fn service_and_user_tokens_verify() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let service = verifier.verify(&k.service_token(NOW, 3600)).await.unwrap();
    assert_eq!(service.kind(), IdentityKind::Service);
    assert_eq!(service.client_id(), Some(CLIENT_ID));
    assert_eq!(service.issuer(), ISS);

    let user = k.sign(&k.header(), &user_payload("jane@example.com", NOW, 3600));
    let user = verifier.verify(&user).await.unwrap();
    assert_eq!(user.email(), Some("jane@example.com"));
    assert_eq!(user.claims().country(), Some("NL"));
}

#[tokio::test]
async fn tokens_agree_with_jsonwebtoken() {
    // An independent implementation accepts the fixture tokens, so the fixtures are real JWTs.
    let k = &keys()[0];
    let token = k.service_token(NOW, 3600);
    let claims = tollgate_test::independent::decode(&token, &b64(&k.n), &b64(&k.e), AUD, ISS);
    assert_eq!(claims["common_name"], CLIENT_ID);
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let payload = b64(service_payload(NOW, 3600));
    for header in [
        r#"{"alg":"none","kid":"key-a"}"#,
        r#"{"alg":"None","kid":"key-a"}"#,
        r#"{"alg":"NONE","kid":"key-a"}"#,
    ] {
        let unsigned = format!("{}.{payload}.", b64(header));
        assert_eq!(
            reject(&verifier, &unsigned).await,
            RejectionKind::MalformedToken
        );
        let with_sig = format!("{}.{payload}.{}", b64(header), b64("sig"));
        assert_eq!(
            reject(&verifier, &with_sig).await,
            RejectionKind::DisallowedAlgorithm
        );
    }
    // HMAC keyed with the public key in every form an attacker might guess.
    let jwk_json = k.jwk().to_string();
    for secret in [k.n.clone(), jwk_json.into_bytes()] {
        let input = format!("{}.{payload}", b64(r#"{"alg":"HS256","kid":"key-a"}"#));
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        let forged = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(
            reject(&verifier, &forged).await,
            RejectionKind::DisallowedAlgorithm
        );
    }
}

#[tokio::test]
async fn tampered_and_cross_key_signatures_are_refused() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let token = k.service_token(NOW, 3600);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let other = service_payload(NOW, 999_999);
    parts[1] = b64(other);
    assert_eq!(
        reject(&verifier, &parts.join(".")).await,
        RejectionKind::InvalidSignature
    );
    // Signed by key-b but claiming key-a.
    let forged = keys()[1].sign(&k.header(), &service_payload(NOW, 3600));
    assert_eq!(
        reject(&verifier, &forged).await,
        RejectionKind::InvalidSignature
    );
    // A flipped bit in the signature.
    let mut sig = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        token.rsplit('.').next().unwrap(),
    )
    .unwrap();
    sig[10] ^= 1;
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        reject(&verifier, &format!("{input}.{}", b64(sig))).await,
        RejectionKind::InvalidSignature
    );
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let claims = |iss: &str, aud: Value| {
        json!({"type":"app","aud":aud,"exp":NOW + 60,"iss":iss,"common_name":CLIENT_ID,"iat":NOW,"sub":""})
            .to_string()
    };
    let cases = [
        (
            claims("https://evil.cloudflareaccess.com", json!(AUD)),
            RejectionKind::WrongIssuer,
        ),
        (
            claims(&format!("{ISS}/"), json!(AUD)),
            RejectionKind::WrongIssuer,
        ),
        (
            claims(ISS, json!("other-aud")),
            RejectionKind::WrongAudience,
        ),
        (claims(ISS, json!(["a", "b"])), RejectionKind::WrongAudience),
        (claims(ISS, json!([])), RejectionKind::WrongAudience),
    ];
    for (payload, kind) in cases {
        let token = k.sign(&k.header(), &payload);
        assert_eq!(reject(&verifier, &token).await, kind, "{payload}");
    }
    let many = k.sign(&k.header(), &claims(ISS, json!(["x", AUD])));
    assert!(verifier.verify(&many).await.is_ok());
}

#[tokio::test]
async fn any_configured_audience_is_accepted() {
    let k = keys();
    let (verifier, _) = verifier_with(
        VerifyConfig::new(ISS).audiences(["first", AUD]),
        vec![k[0].jwk()],
    );
    assert!(verifier.verify(&k[0].service_token(NOW, 60)).await.is_ok());
}

#[tokio::test]
async fn times_exp_strict_nbf_and_iat_with_leeway() {
    let (verifier, clock) = verifier();
    let k = &keys()[0];
    let token = k.service_token(NOW - 100, 100); // exp == NOW
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.kind(), RejectionKind::Expired);
    assert_eq!(err.expired_at(), Some(NOW));
    assert_eq!(err.checked_at(), Some(NOW));

    let still_valid = k.service_token(NOW - 100, 101);
    assert!(verifier.verify(&still_valid).await.is_ok());
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        reject(&verifier, &still_valid).await,
        RejectionKind::Expired,
        "a cached token expires too"
    );

    let now = NOW + 1;
    let nbf = |offset: i64| {
        let payload = json!({"aud":[AUD],"email":"a@b.c","sub":"u","iss":ISS,"exp":now + 600,"nbf":now + offset})
            .to_string();
        k.sign(&k.header(), &payload)
    };
    assert!(verifier.verify(&nbf(60)).await.is_ok(), "within the leeway");
    let err = verifier.verify(&nbf(61)).await.unwrap_err();
    assert_eq!(err.kind(), RejectionKind::NotYetValid);
    assert_eq!(err.not_before(), Some(now + 61));

    let future_iat = k.service_token(now + 3600, 7200);
    assert_eq!(
        reject(&verifier, &future_iat).await,
        RejectionKind::NotYetValid
    );

    let no_exp = k.sign(
        &k.header(),
        &json!({"aud":AUD,"iss":ISS,"common_name":CLIENT_ID,"sub":""}).to_string(),
    );
    assert_eq!(
        reject(&verifier, &no_exp).await,
        RejectionKind::MissingClaim
    );
}

#[tokio::test]
async fn leeway_is_configurable() {
    let k = keys();
    let (verifier, _) = verifier_with(
        VerifyConfig::new(ISS).audience(AUD).leeway(Duration::ZERO),
        vec![k[0].jwk()],
    );
    let payload =
        json!({"aud":AUD,"common_name":CLIENT_ID,"iss":ISS,"exp":NOW + 600,"nbf":NOW + 1})
            .to_string();
    let token = k[0].sign(&k[0].header(), &payload);
    assert_eq!(reject(&verifier, &token).await, RejectionKind::NotYetValid);
}

#[tokio::test]
async fn duplicate_claims_and_header_members_are_refused() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let dup_exp = format!(
        r#"{{"aud":"{AUD}","iss":"{ISS}","common_name":"{CLIENT_ID}","exp":{},"exp":{}}}"#,
        NOW - 10,
        NOW + 9999
    );
    assert_eq!(
        reject(&verifier, &k.sign(&k.header(), &dup_exp)).await,
        RejectionKind::MalformedToken
    );
    let dup_aud = format!(
        r#"{{"aud":"x","iss":"{ISS}","common_name":"{CLIENT_ID}","exp":{},"aud":"{AUD}"}}"#,
        NOW + 60
    );
    assert_eq!(
        reject(&verifier, &k.sign(&k.header(), &dup_aud)).await,
        RejectionKind::MalformedToken
    );
    let dup_alg = r#"{"alg":"none","kid":"key-a","alg":"RS256"}"#;
    assert_eq!(
        reject(&verifier, &k.sign(dup_alg, &service_payload(NOW, 60))).await,
        RejectionKind::MalformedToken
    );
    let crit = r#"{"alg":"RS256","kid":"key-a","crit":["b64"],"b64":false}"#;
    assert_eq!(
        reject(&verifier, &k.sign(crit, &service_payload(NOW, 60))).await,
        RejectionKind::UnsupportedHeader
    );
}

#[tokio::test]
async fn malformed_and_oversized_tokens_are_refused() {
    let k = keys();
    let (verifier, _) = verifier_with(
        VerifyConfig::new(ISS).audience(AUD).max_token_bytes(2048),
        vec![k[0].jwk()],
    );
    let token = k[0].service_token(NOW, 60);
    let (header, rest) = token.split_once('.').unwrap();
    let cases = [
        String::new(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{token}.{token}"),
        format!("{header}=.{rest}"),                    // padding
        format!("{token}="),                            // padded signature
        format!("{}.{rest}", header.replace('J', "+")), // standard alphabet
        format!(" {token}"),
        format!("{header}\n.{rest}"),
        format!("e30.{rest}"), // header `{}`: no alg
        format!("{}.{rest}", b64("[1,2]")),
        format!("{}.{rest}", b64(r#"{"alg":"RS256","kid":7}"#)),
    ];
    for case in &cases {
        assert_eq!(
            reject(&verifier, case).await,
            RejectionKind::MalformedToken,
            "{case:?}"
        );
    }
    // Non-canonical trailing bits in the signature: the last char of a 256-byte signature
    // carries 4 padding bits.
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = sig.to_owned();
    let last = sig.pop().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    sig.push(alphabet.as_bytes()[(idx & !0xf) | ((idx + 1) & 0xf)] as char);
    assert_eq!(
        reject(&verifier, &format!("{input}.{sig}")).await,
        RejectionKind::MalformedToken
    );

    let long =
        json!({"aud":AUD,"iss":ISS,"common_name":CLIENT_ID,"exp":NOW + 60,"pad":"x".repeat(2000)});
    let big = k[0].sign(&k[0].header(), &long.to_string());
    assert_eq!(reject(&verifier, &big).await, RejectionKind::TokenTooLarge);
    assert_eq!(verifier.stats().signature_checks, 0, "nothing reached RSA");
}

#[tokio::test]
async fn header_keys_and_urls_are_never_trusted() {
    // An attacker's own key, offered through `jwk`, `jku` and `x5u`, pointing at a server that
    // counts whether anyone asked it.
    let k = keys();
    let (verifier, _) = verifier_with(VerifyConfig::new(ISS).audience(AUD), vec![k[0].jwk()]);
    let attacker = &k[2];
    let lure = tollgate_test::JwksServer::start(vec![attacker.jwk()]).await;
    for kid in ["key-a", "key-c"] {
        let header = json!({"alg":"RS256","kid":kid,"jwk":attacker.jwk(),
                            "jku":lure.certs_url(),"x5u":lure.certs_url()})
        .to_string();
        let token = attacker.sign(&header, &service_payload(NOW, 60));
        let kind = reject(&verifier, &token).await;
        let expected = if kid == "key-a" {
            RejectionKind::InvalidSignature
        } else {
            RejectionKind::UnknownKey
        };
        assert_eq!(kind, expected);
    }
    assert_eq!(lure.hits(), 0, "the verifier never fetched an attacker URL");
    let no_kid = attacker.sign(r#"{"alg":"RS256"}"#, &service_payload(NOW, 60));
    assert_eq!(reject(&verifier, &no_kid).await, RejectionKind::UnknownKey);
}

#[tokio::test]
async fn algorithm_comes_from_configuration_and_key() {
    let k = keys();
    // RS384 is not allowed by default, whatever the header says.
    let (verifier, _) = verifier();
    let rs384 = k[0].sign(
        r#"{"alg":"RS384","kid":"key-a"}"#,
        &service_payload(NOW, 60),
    );
    assert_eq!(
        reject(&verifier, &rs384).await,
        RejectionKind::DisallowedAlgorithm
    );

    // Allowed by configuration, but the JWK says RS256: refused.
    let (verifier, _) = verifier_with(
        VerifyConfig::new(ISS)
            .audience(AUD)
            .algorithms([Algorithm::RS256, Algorithm::PS256]),
        vec![k[0].jwk()],
    );
    let ps256 = k[0].sign(
        r#"{"alg":"PS256","kid":"key-a"}"#,
        &service_payload(NOW, 60),
    );
    assert_eq!(
        reject(&verifier, &ps256).await,
        RejectionKind::DisallowedAlgorithm
    );

    // A configuration that allows only ES256 cannot use an RSA key at all.
    let (verifier, _) = verifier_with(
        VerifyConfig::new(ISS)
            .audience(AUD)
            .algorithms([Algorithm::ES256]),
        vec![k[0].jwk()],
    );
    assert_eq!(
        reject(&verifier, &k[0].service_token(NOW, 60)).await,
        RejectionKind::DisallowedAlgorithm
    );
}

#[tokio::test]
async fn claims_without_identity_are_refused() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let anonymous = json!({"aud":AUD,"iss":ISS,"exp":NOW + 60,"sub":""}).to_string();
    assert_eq!(
        reject(&verifier, &k.sign(&k.header(), &anonymous)).await,
        RejectionKind::MissingClaim
    );
    let not_json = k.sign(&k.header(), "foo");
    assert_eq!(
        reject(&verifier, &not_json).await,
        RejectionKind::MalformedToken
    );
}

#[tokio::test]
async fn verified_cache_hits_skip_rsa() {
    let (verifier, _) = verifier();
    let token = keys()[0].service_token(NOW, 3600);
    for _ in 0..10 {
        verifier.verify(&token).await.unwrap();
    }
    let stats = verifier.stats();
    assert_eq!(stats.signature_checks, 1);
    assert_eq!(stats.cache_hits, 9);
    assert_eq!(stats.cached_tokens, 1);
    // Failures are never cached.
    let k = keys();
    let bad = k[1].sign(&k[0].header(), &service_payload(NOW, 3600));
    for _ in 0..3 {
        assert!(verifier.verify(&bad).await.is_err());
    }
    assert_eq!(verifier.stats().signature_checks, 4);
}

#[tokio::test]
async fn cache_stays_bounded() {
    let k = keys();
    let (verifier, _) = verifier_with(
        VerifyConfig::new(ISS).audience(AUD).cache_capacity(8),
        vec![k[0].jwk()],
    );
    for i in 0..40 {
        verifier
            .verify(&k[0].service_token(NOW, 100 + i))
            .await
            .unwrap();
    }
    assert!(
        verifier.stats().cached_tokens <= 8,
        "{:?}",
        verifier.stats()
    );
}

#[tokio::test]
async fn pem_keys_get_the_spki_kid() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let spki = pair.public_key().as_der().unwrap();
    let spki = spki.as_ref();
    let pem_body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, spki);
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{pem_body}\n-----END PUBLIC KEY-----\n");
    let source = StaticKeySource::from_pem(&pem).unwrap();
    let kid = source.key_set().jwks()[0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
    let expected: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(kid, expected);

    let clock = ManualClock::at_unix(NOW);
    let verifier = Verifier::new(
        VerifyConfig::new(ISS).audience(AUD).clock(Arc::new(clock)),
        source,
    )
    .unwrap();
    let header = format!(r#"{{"alg":"RS256","kid":"{kid}","typ":"JWT"}}"#);
    let input = format!("{}.{}", b64(&header), b64(service_payload(NOW, 60)));
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let token = format!("{input}.{}", b64(sig));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(
        StaticKeySource::from_pem("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----")
            .is_err()
    );
}

/// Signs raw header and payload bytes (for bytes that are not UTF-8).
fn sign_bytes(k: &tollgate_test::keys::TestKey, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = k.sign_raw(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

#[tokio::test]
async fn jose_header_members_that_change_the_meaning_are_refused() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let payload = service_payload(NOW, 60);
    for typ in ["JWT", "jwt", "Jwt"] {
        let header = format!(r#"{{"alg":"RS256","kid":"key-a","typ":"{typ}"}}"#);
        assert!(
            verifier.verify(&k.sign(&header, &payload)).await.is_ok(),
            "{typ}"
        );
    }
    let untyped = r#"{"alg":"RS256","kid":"key-a"}"#;
    assert!(verifier.verify(&k.sign(untyped, &payload)).await.is_ok());
    for typ in [r#""at+jwt""#, r#""JOSE""#, r#""""#] {
        let header = format!(r#"{{"alg":"RS256","kid":"key-a","typ":{typ}}}"#);
        assert_eq!(
            reject(&verifier, &k.sign(&header, &payload)).await,
            RejectionKind::WrongTokenType,
            "{typ}"
        );
    }
    let numeric_typ = r#"{"alg":"RS256","kid":"key-a","typ":1}"#;
    assert_eq!(
        reject(&verifier, &k.sign(numeric_typ, &payload)).await,
        RejectionKind::MalformedToken
    );
    for member in ["crit", "b64", "zip", "enc", "p2c", "epk"] {
        for value in [r#"false"#, "null", r#""DEF""#, "{}"] {
            let header = format!(r#"{{"alg":"RS256","kid":"key-a","{member}":{value}}}"#);
            assert_eq!(
                reject(&verifier, &k.sign(&header, &payload)).await,
                RejectionKind::UnsupportedHeader,
                "{header}"
            );
        }
    }
    // Invalid UTF-8 in a member nobody reads, in the header and in the payload.
    let header = b"{\"alg\":\"RS256\",\"kid\":\"key-a\",\"x\":\"\xff\xfe\"}";
    assert_eq!(
        reject(&verifier, &sign_bytes(k, header, payload.as_bytes())).await,
        RejectionKind::MalformedToken
    );
    let mut bad_payload = payload.trim_end_matches('}').as_bytes().to_vec();
    bad_payload.extend_from_slice(b",\"x\":\"\xc3\x28\"}");
    assert_eq!(
        reject(
            &verifier,
            &sign_bytes(k, k.header().as_bytes(), &bad_payload)
        )
        .await,
        RejectionKind::MalformedToken
    );
}

#[tokio::test]
async fn time_claims_must_be_numbers_and_lifetimes_bounded() {
    let (verifier, _) = verifier();
    let k = &keys()[0];
    let with = |changes: Value| {
        let mut claims: Value = serde_json::from_str(&service_payload(NOW, 60)).unwrap();
        for (key, value) in changes.as_object().unwrap() {
            claims[key] = value.clone();
        }
        k.sign(&k.header(), &claims.to_string())
    };
    for changes in [
        json!({"nbf": null}),
        json!({"iat": null}),
        json!({"exp": null}),
        json!({"iat": "1700000000"}),
        json!({"nbf": true}),
        json!({"exp": [NOW + 60]}),
    ] {
        assert_eq!(
            reject(&verifier, &with(changes.clone())).await,
            RejectionKind::InvalidClaim,
            "{changes}"
        );
    }
    // 31 days is the longest accepted by default; a second more, or year 10000, is refused.
    let month = 31 * 86_400;
    assert!(
        verifier
            .verify(&with(json!({"exp": NOW + month})))
            .await
            .is_ok()
    );
    for exp in [NOW + month + 1, 253_402_300_800] {
        assert_eq!(
            reject(&verifier, &with(json!({"exp": exp}))).await,
            RejectionKind::LifetimeTooLong,
            "{exp}"
        );
    }
    // Without iat the lifetime counts from now.
    let mut claims: Value = serde_json::from_str(&service_payload(NOW, month + 10)).unwrap();
    claims.as_object_mut().unwrap().remove("iat");
    assert_eq!(
        reject(&verifier, &k.sign(&k.header(), &claims.to_string())).await,
        RejectionKind::LifetimeTooLong
    );
    let k = keys();
    let (relaxed, _) = verifier_with(
        VerifyConfig::new(ISS)
            .audience(AUD)
            .max_lifetime(Duration::from_secs(400 * 86_400)),
        vec![k[0].jwk()],
    );
    let year = k[0].service_token(NOW, 365 * 86_400);
    assert!(relaxed.verify(&year).await.is_ok(), "configurable");
}

#[tokio::test]
async fn only_application_tokens_unless_org_tokens_are_accepted() {
    let (verifier, _) = verifier();
    let k = keys();
    let org = {
        let mut claims: Value =
            serde_json::from_str(&user_payload("jane@example.com", NOW, 600)).unwrap();
        claims["type"] = json!("org");
        k[0].sign(&k[0].header(), &claims.to_string())
    };
    assert_eq!(reject(&verifier, &org).await, RejectionKind::WrongTokenType);
    let mut other: Value = serde_json::from_str(&service_payload(NOW, 60)).unwrap();
    other["type"] = json!("ssh");
    let other = k[0].sign(&k[0].header(), &other.to_string());
    assert_eq!(
        reject(&verifier, &other).await,
        RejectionKind::WrongTokenType
    );
    let mut untyped: Value = serde_json::from_str(&service_payload(NOW, 60)).unwrap();
    untyped.as_object_mut().unwrap().remove("type");
    let untyped = k[0].sign(&k[0].header(), &untyped.to_string());
    assert!(
        verifier.verify(&untyped).await.is_ok(),
        "no type claim: accepted"
    );

    let (accepting, _) = verifier_with(
        VerifyConfig::new(ISS).audience(AUD).accept_org_tokens(true),
        vec![k[0].jwk()],
    );
    assert!(accepting.verify(&org).await.is_ok());
    assert_eq!(
        reject(&accepting, &other).await,
        RejectionKind::WrongTokenType
    );
}
