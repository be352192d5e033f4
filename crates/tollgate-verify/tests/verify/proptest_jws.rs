//! Property tests of the verifier's parsers (compact JWS, JOSE header, claims, JWK Sets), the
//! same ones the `fuzz/` targets drive, here on generated tokens and key sets in every
//! `cargo test`. Tokens are signed byte by byte with tollgate-test's keys; the expected verdict
//! is worked out from the documented rules, not by the verifier.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tollgate_core::{ManualClock, RejectionKind};
use tollgate_test::{AUD, CLIENT_ID, ISS, NOW, keys};
use tollgate_verify::{KeySet, StaticKeySource, Verifier, VerifyConfig};

const LEEWAY: i64 = 60;
const MAX_LIFETIME: i64 = 31 * 86_400;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn verifier(jwks: Vec<Value>) -> Verifier {
    let config = VerifyConfig::new(ISS)
        .audience(AUD)
        .clock(Arc::new(ManualClock::at_unix(NOW)));
    Verifier::new(config, StaticKeySource::new(KeySet::from_jwks(jwks))).unwrap()
}

/// A time claim around `NOW`: absent, an offset in seconds, or a fractional one.
#[derive(Debug, Clone)]
enum Time {
    Absent,
    At(i64),
    Fraction(i64),
}

impl Time {
    fn value(&self) -> Option<Value> {
        match self {
            Time::Absent => None,
            Time::At(offset) => Some(json!(NOW + offset)),
            Time::Fraction(offset) => Some(json!((NOW + offset) as f64 + 0.5)),
        }
    }
    /// The time as the rules read it (fractions floored).
    fn seconds(&self) -> Option<i64> {
        match self {
            Time::Absent => None,
            Time::At(offset) | Time::Fraction(offset) => Some(NOW + offset),
        }
    }
}

fn time() -> impl Strategy<Value = Time> {
    let offsets = prop_oneof![
        -100_000i64..100_000,
        Just(0),
        Just(LEEWAY),
        Just(LEEWAY + 1),
        Just(MAX_LIFETIME),
        Just(MAX_LIFETIME + 1),
    ];
    prop_oneof![
        1 => Just(Time::Absent),
        3 => offsets.clone().prop_map(Time::At),
        1 => offsets.prop_map(Time::Fraction),
    ]
}

#[derive(Debug, Clone)]
struct Claims {
    exp: Time,
    iat: Time,
    nbf: Time,
    iss: &'static str,
    aud: Value,
    token_type: Option<&'static str>,
    common_name: Option<&'static str>,
    email: Option<&'static str>,
    sub: Option<&'static str>,
}

fn claims() -> impl Strategy<Value = Claims> {
    let times = (time(), time(), time());
    let iss = prop_oneof![
        4 => Just(ISS),
        1 => Just("https://team.cloudflareaccess.com/"),
        1 => Just("https://Team.cloudflareaccess.com"),
        1 => Just("https://evil.example.com"),
    ];
    let aud = prop_oneof![
        3 => Just(json!(AUD)),
        3 => Just(json!(["other", AUD])),
        1 => Just(json!(["other"])),
        1 => Just(json!([])),
        1 => Just(json!(AUD.to_uppercase())),
    ];
    let token_type = prop_oneof![Just(None), Just(Some("app")), Just(Some("org"))];
    let name = |value: &'static str| prop_oneof![Just(None), Just(Some("")), Just(Some(value))];
    (
        times,
        iss,
        aud,
        token_type,
        name(CLIENT_ID),
        name("jane@example.com"),
        name("7335d417"),
    )
        .prop_map(
            |((exp, iat, nbf), iss, aud, token_type, common_name, email, sub)| Claims {
                exp,
                iat,
                nbf,
                iss,
                aud,
                token_type,
                common_name,
                email,
                sub,
            },
        )
}

impl Claims {
    fn json(&self) -> String {
        let mut map = Map::new();
        map.insert("aud".into(), self.aud.clone());
        map.insert("iss".into(), json!(self.iss));
        for (name, time) in [("exp", &self.exp), ("iat", &self.iat), ("nbf", &self.nbf)] {
            if let Some(value) = time.value() {
                map.insert(name.into(), value);
            }
        }
        for (name, text) in [
            ("type", self.token_type),
            ("common_name", self.common_name),
            ("email", self.email),
            ("sub", self.sub),
        ] {
            if let Some(text) = text {
                map.insert(name.into(), json!(text));
            }
        }
        Value::Object(map).to_string()
    }

    /// The verdict of the documented rules, checked in the documented order.
    fn expected(&self) -> Result<(), RejectionKind> {
        let Some(exp) = self.exp.seconds() else {
            return Err(RejectionKind::MissingClaim);
        };
        if NOW >= exp {
            return Err(RejectionKind::Expired);
        }
        if [self.nbf.seconds(), self.iat.seconds()]
            .into_iter()
            .flatten()
            .any(|t| t > NOW + LEEWAY)
        {
            return Err(RejectionKind::NotYetValid);
        }
        let start = self.iat.seconds().or(self.nbf.seconds()).unwrap_or(NOW);
        if exp - start > MAX_LIFETIME {
            return Err(RejectionKind::LifetimeTooLong);
        }
        if self.token_type.is_some_and(|t| t != "app") {
            return Err(RejectionKind::WrongTokenType);
        }
        if self.iss != ISS {
            return Err(RejectionKind::WrongIssuer);
        }
        let aud_ok = match &self.aud {
            Value::String(aud) => aud == AUD,
            Value::Array(auds) => auds.iter().any(|a| a == AUD),
            _ => false,
        };
        if !aud_ok {
            return Err(RejectionKind::WrongAudience);
        }
        let named = |v: Option<&str>| v.is_some_and(|v| !v.is_empty());
        if !named(self.common_name) && !named(self.email) && !named(self.sub) {
            return Err(RejectionKind::MissingClaim);
        }
        Ok(())
    }
}

/// A header for key-a: `typ` in any of its accepted spellings or absent, members in either
/// order, and maybe a member the verifier must ignore.
fn header() -> impl Strategy<Value = (String, bool)> {
    let typ = prop_oneof![
        Just(None),
        Just(Some("JWT")),
        Just(Some("jwt")),
        Just(Some("at+jwt")),
    ];
    let extra = prop_oneof![
        Just(None),
        Just(Some(r#""x5t":"abc""#)),
        Just(Some(r#""jku":"https://evil.example/certs""#)),
        Just(Some(r#""crit":["exp"]"#)),
        Just(Some(r#""b64":false"#)),
    ];
    (typ, extra, any::<bool>()).prop_map(|(typ, extra, kid_first)| {
        let mut members = vec![r#""alg":"RS256""#.to_owned(), r#""kid":"key-a""#.to_owned()];
        if kid_first {
            members.reverse();
        }
        if let Some(typ) = typ {
            members.push(format!(r#""typ":"{typ}""#));
        }
        if let Some(extra) = extra {
            members.push(extra.to_owned());
        }
        let acceptable = typ.is_none_or(|t| t.eq_ignore_ascii_case("JWT"))
            && extra.is_none_or(|e| !e.contains("crit") && !e.contains("b64"));
        (format!("{{{}}}", members.join(",")), acceptable)
    })
}

proptest! {
    #![proptest_config(config(96))]

    /// A signed token is accepted exactly when its header and claims meet the rules, and a
    /// refusal names the first rule it breaks; an accepted token's identity is its claims'.
    #[test]
    fn verdict_follows_the_rules((header, header_ok) in header(), claims in claims()) {
        let verifier = verifier(vec![keys()[0].jwk()]);
        let token = keys()[0].sign(&header, &claims.json());
        let result = runtime().block_on(verifier.verify(&token));
        if !header_ok {
            let kind = result.unwrap_err().kind();
            prop_assert!(
                matches!(kind, RejectionKind::WrongTokenType | RejectionKind::UnsupportedHeader),
                "{:?}", kind
            );
            return Ok(());
        }
        match (claims.expected(), result) {
            (Ok(()), Ok(identity)) => {
                prop_assert_eq!(identity.issuer(), ISS);
                prop_assert_eq!(identity.claims().expires_at(), claims.exp.seconds().unwrap());
                if claims.common_name.is_some_and(|c| !c.is_empty()) {
                    prop_assert_eq!(identity.client_id(), Some(CLIENT_ID));
                } else {
                    prop_assert!(identity.is_user());
                }
            }
            (Err(want), Err(got)) => prop_assert_eq!(got.kind(), want, "{}", claims.json()),
            (want, got) => prop_assert!(false, "{}: want {:?}, got {:?}", claims.json(), want, got),
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Changing any one character of a valid token gets it refused.
    #[test]
    fn any_changed_character_is_refused(at in any::<prop::sample::Index>(), to in "[A-Za-z0-9_.=+/-]") {
        let k = &keys()[0];
        let token = k.service_token(NOW, 3600);
        let at = at.index(token.len());
        let to = to.as_bytes()[0];
        prop_assume!(token.as_bytes()[at] != to);
        let mut changed = token.into_bytes();
        changed[at] = to;
        let changed = String::from_utf8(changed).unwrap();
        let verifier = verifier(vec![k.jwk()]);
        prop_assert!(runtime().block_on(verifier.verify(&changed)).is_err(), "{}", changed);
    }

    /// A JWK Set holding key-a among decoys (other keys under other kids, optional members
    /// dropped, unknown members added) verifies key-a's tokens, unless a decoy claims key-a's
    /// kid with a different key; the set reads back the same from its JSON.
    #[test]
    fn key_sets_verify_their_own_keys(
        decoys in prop::collection::vec((1usize..3, prop_oneof![Just("key-a"), Just("key-b"), Just("spare")]), 0..3),
        drop_optional in any::<bool>(),
        unknown in prop::option::of("x-[a-z]{1,5}"),
        position in any::<prop::sample::Index>(),
    ) {
        let k = keys();
        let mut fixture = k[0].jwk();
        if drop_optional {
            fixture.as_object_mut().unwrap().retain(|name, _| ["kid", "kty", "n", "e"].contains(&name.as_str()));
        }
        if let Some(name) = &unknown {
            fixture.as_object_mut().unwrap().entry(name.clone()).or_insert(json!("ignored"));
        }
        let mut jwks: Vec<Value> = decoys
            .iter()
            .map(|(which, kid)| {
                let mut decoy = k[*which].jwk();
                decoy["kid"] = json!(kid);
                decoy
            })
            .collect();
        jwks.insert(position.index(jwks.len() + 1), fixture);
        let document = json!({ "keys": jwks, "public_cert": {"kid": "key-a"} }).to_string();
        let set = KeySet::from_jwks_json(document.as_bytes()).unwrap();
        prop_assert_eq!(set.jwks(), jwks.as_slice());

        let verifier = Verifier::new(
            VerifyConfig::new(ISS).audience(AUD).clock(Arc::new(ManualClock::at_unix(NOW))),
            StaticKeySource::new(set),
        ).unwrap();
        let result = runtime().block_on(verifier.verify(&k[0].service_token(NOW, 3600)));
        if decoys.iter().any(|(_, kid)| *kid == "key-a") {
            // key-a names two keys: neither is used. With no other usable kid (one claimed
            // by two different keys is not), the set has no usable key at all.
            let usable_other = decoys.iter().any(|(which, kid)| {
                *kid != "key-a" && decoys.iter().all(|(w, k)| k != kid || w == which)
            });
            let want = if usable_other { RejectionKind::UnknownKey } else { RejectionKind::KeysUnavailable };
            prop_assert_eq!(result.unwrap_err().kind(), want);
        } else {
            prop_assert!(result.is_ok(), "{:?}", result);
        }
    }
}
