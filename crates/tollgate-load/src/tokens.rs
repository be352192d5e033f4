//! The keys and tokens of the run, and the baselines written by hand: a verifier with a
//! pre-parsed aws-lc-rs key and serde, and a per-request RS256 signer.
//!
//! The RSA key is the Wycheproof JWS vectors' (tests/fixtures/wycheproof, Apache-2.0), the one
//! `cargo bench --bench verify` uses.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_test::claims::{AUD, ISS, user_claims};
use tollgate_test::wycheproof::{pkcs1_private, public_jwk, signing_key};

/// The kid the fixture key is published under.
pub(crate) const KID: &str = "kid-rsa-sign";

/// Now, as a JWT `NumericDate`.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The signing key and what is derived from it.
pub(crate) struct Fixture {
    /// The public JWK, as a certs endpoint publishes it.
    pub(crate) jwk: Value,
    pair: KeyPair,
    /// PKCS#1 `RSAPublicKey` DER.
    public_der: Vec<u8>,
}

impl Fixture {
    pub(crate) fn load() -> Self {
        let private = signing_key();
        let pair = KeyPair::from_der(&pkcs1_private(&private)).expect("the fixture key parses");
        let public_der = signature::KeyPair::public_key(&pair).as_ref().to_vec();
        Self {
            jwk: public_jwk(&private),
            pair,
            public_der,
        }
    }

    /// An RS256 token over these claims.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": KID, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// A user's token as Cloudflare writes one (audience array, nonce, country, a custom
    /// claim), valid for a day; 866 bytes, the size of the token in the measurement.
    pub(crate) fn user_token(&self, nonce: u64) -> String {
        let now = unix_now();
        let mut claims = user_claims(ISS, "alice.example@example.com", now, 24 * 3600);
        claims["identity_nonce"] = json!(format!("{nonce:016x}"));
        claims["custom"] = json!({"groups": ["eng"]});
        self.sign(&claims)
    }

    /// The hand-written verifier for this key.
    pub(crate) fn hand_verifier(&self) -> HandVerifier {
        HandVerifier {
            key: ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public_der)
                .expect("the fixture public key parses"),
        }
    }
}

#[derive(Deserialize)]
struct HandHeader<'a> {
    alg: &'a str,
    kid: &'a str,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The claims the hand-written verifier reads.
#[derive(Deserialize, Debug)]
#[allow(dead_code, reason = "read by whoever would use the identity")]
pub(crate) struct HandClaims {
    #[serde(default)]
    aud: Option<OneOrMany>,
    iss: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    common_name: Option<String>,
}

impl std::fmt::Debug for OneOrMany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("aud")
    }
}

/// What a careful person writes by hand: a pre-parsed aws-lc-rs key, serde into a struct, the
/// `exp`/`nbf`/`iss`/`aud` checks.
pub(crate) struct HandVerifier {
    key: ParsedPublicKey,
}

impl HandVerifier {
    pub(crate) fn verify(&self, token: &str, now: i64) -> Option<Arc<HandClaims>> {
        let (input, sig) = token.rsplit_once('.')?;
        let (header, payload) = input.split_once('.')?;
        let header_bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
        let header: HandHeader<'_> = serde_json::from_slice(&header_bytes).ok()?;
        if header.alg != "RS256" || header.kid != KID {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.key.verify_sig(input.as_bytes(), &sig).ok()?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let claims: HandClaims = serde_json::from_slice(&payload).ok()?;
        let aud_ok = match &claims.aud {
            Some(OneOrMany::One(one)) => one == AUD,
            Some(OneOrMany::Many(many)) => many.iter().any(|a| a == AUD),
            None => false,
        };
        let live = claims.exp > now && claims.nbf.is_none_or(|nbf| nbf <= now);
        (aud_ok && live && claims.iss == ISS).then(|| Arc::new(claims))
    }
}

#[derive(Serialize)]
struct MintClaims<'a> {
    aud: &'a str,
    exp: i64,
    iat: i64,
    iss: &'a str,
    common_name: &'a str,
    sub: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// The per-request signer the exchange is measured against: a pre-parsed RSA key, serde, one
/// RS256 signature, base64.
pub(crate) struct HandSigner {
    pair: KeyPair,
    header: String,
    rng: SystemRandom,
}

impl HandSigner {
    pub(crate) fn from_pkcs8(pkcs8: &[u8], kid: &str) -> Self {
        let header = json!({"alg": "RS256", "kid": kid, "typ": "JWT"}).to_string();
        Self {
            pair: KeyPair::from_pkcs8(pkcs8).expect("the issuer's key parses"),
            header: URL_SAFE_NO_PAD.encode(header),
            rng: SystemRandom::new(),
        }
    }

    pub(crate) fn mint(&self, client_id: &str) -> String {
        let now = unix_now();
        let claims = MintClaims {
            aud: AUD,
            exp: now + 24 * 3600,
            iat: now,
            iss: ISS,
            common_name: client_id,
            sub: "",
            kind: "app",
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let mut token = String::with_capacity(1024);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        if self
            .pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut sig,
            )
            .is_err()
        {
            return String::new();
        }
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut token);
        token
    }
}
