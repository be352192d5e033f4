//! `tollgate-load memory`: distinct valid tokens through one verifier, resident memory and cost
//! per token with the verified-token cache off and at capacity. The tokens are ES256 (signing
//! a million RS256 tokens would take this machine a quarter of an hour); what a cache entry
//! holds does not depend on the algorithm.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tollgate::verify::{Algorithm, Attempt, KeySet, StaticKeySource, Verifier, VerifyConfig};
use tollgate_test::claims::{AUD, ISS};

use crate::cpu::resident_bytes;
use crate::tokens::unix_now;

struct Es256 {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    header: String,
    now: i64,
}

impl Es256 {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("parse the P-256 key");
        let header = json!({"alg": "ES256", "kid": "p256", "typ": "JWT"}).to_string();
        Self {
            pair,
            rng,
            header: URL_SAFE_NO_PAD.encode(header),
            now: unix_now(),
        }
    }

    fn jwk(&self) -> serde_json::Value {
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "p256", "use": "sig",
               "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
    }

    /// A distinct service token: the `common_name` carries `n`.
    fn token(&self, n: usize) -> String {
        let claims = json!({"type": "app", "aud": AUD, "iss": ISS, "iat": self.now,
                            "exp": self.now + 3600, "sub": "",
                            "common_name": format!("{n:032x}.access")});
        let mut token = self.header.clone();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
        let sig = self
            .pair
            .sign(&self.rng, token.as_bytes())
            .expect("ES256 signing");
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
        token
    }
}

fn verifier(key: &Es256, capacity: usize) -> Verifier {
    let source = StaticKeySource::new(KeySet::from_jwks(vec![key.jwk()]));
    let config = VerifyConfig::new(ISS)
        .audience(AUD)
        .algorithms([Algorithm::ES256])
        .cache_capacity(capacity);
    Verifier::new(config, source).expect("a valid configuration")
}

fn verify(verifier: &Verifier, token: &str) {
    match verifier.try_verify(token) {
        Attempt::Done(Ok(_)) => {}
        Attempt::Done(Err(rejection)) => panic!("a valid token was refused: {rejection}"),
        Attempt::NeedsKeyFetch => panic!("the static keys were not loaded"),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub(crate) fn run(tokens: usize, capacity: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();
    let key = Es256::new();

    // Cost per token: the same distinct tokens with the cache off and with it at capacity.
    let sample: Vec<String> = (0..capacity * 3).map(|n| key.token(n)).collect();
    let off = verifier(&key, 0);
    let full = verifier(&key, capacity);
    runtime.block_on(async {
        off.refresh().await.expect("static keys");
        full.refresh().await.expect("static keys");
    });
    for token in &sample[..capacity] {
        verify(&full, token);
    }
    let mut per_token = [Duration::MAX; 2];
    for _ in 0..3 {
        for (slot, verifier) in [&off, &full].into_iter().enumerate() {
            let started = Instant::now();
            for token in &sample[capacity..] {
                verify(verifier, token);
            }
            let each = started.elapsed() / (sample.len() - capacity) as u32;
            per_token[slot] = per_token[slot].min(each);
        }
    }
    println!(
        "per distinct token (best of 3 passes over {} tokens): cache off {:.2} µs, cache at capacity {capacity} {:.2} µs ({:.3}×)",
        sample.len() - capacity,
        per_token[0].as_secs_f64() * 1e6,
        per_token[1].as_secs_f64() * 1e6,
        per_token[1].as_secs_f64() / per_token[0].as_secs_f64()
    );
    drop((sample, off, full));

    // Memory: a fresh verifier, `tokens` distinct tokens made and verified one at a time.
    let verifier = verifier(&key, capacity);
    runtime.block_on(verifier.refresh()).expect("static keys");
    let start = resident_bytes();
    println!("\n| tokens verified | resident MiB | Δ since start | cached entries |");
    println!("|---:|---:|---:|---:|");
    println!("| 0 | {:.1} | 0 | 0 |", mib(start));
    let mut checkpoints: Vec<usize> = vec![capacity, 2 * capacity];
    checkpoints.extend((1..=10).map(|k| k * tokens / 10));
    checkpoints.retain(|c| *c <= tokens && *c > 0);
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let started = Instant::now();
    let mut next = checkpoints.iter().peekable();
    for n in 0..tokens {
        verify(&verifier, &key.token(n));
        if next.peek().is_some_and(|c| **c == n + 1) {
            next.next();
            let now = resident_bytes();
            println!(
                "| {} | {:.1} | {:+.1} | {} |",
                n + 1,
                mib(now),
                mib(now) - mib(start),
                verifier.stats().cached_tokens
            );
        }
    }
    println!(
        "\n{tokens} tokens signed and verified in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
