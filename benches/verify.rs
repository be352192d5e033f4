//! Verify cost: a verified-token cache hit, a miss (full RS256 with a pre-parsed aws-lc-rs key
//! and tollgate's claim checks), and `jsonwebtoken::decode` as the baseline — in one run.
//!
//! Run with: `cargo bench --bench verify` (add `-- --quick` for a shorter run).
//!
//! The signing key is the Wycheproof RS256 key from tests/fixtures/wycheproof (Apache-2.0).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use tollgate::verify::{Attempt, KeySet, StaticKeySource, Verifier, VerifyConfig};

use tollgate_test::claims::{AUD, ISS, service_claims};
use tollgate_test::wycheproof::{public_jwk, sign, signing_key};

/// Verifies on the fast path, which must not wait (the keys are loaded).
fn verify_now(verifier: &Verifier, token: &str) -> tollgate::AccessIdentity {
    match verifier.try_verify(token) {
        Attempt::Done(result) => result.unwrap(),
        Attempt::NeedsKeyFetch => panic!("verification waited on a fetch"),
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _context = runtime.enter();

    let key = signing_key();
    let jwk = public_jwk(&key);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = service_claims(ISS, now, 24 * 3600);
    let token = sign(&key, &claims);

    let verifier = |capacity: usize| {
        let source = StaticKeySource::new(KeySet::from_jwks(vec![jwk.clone()]));
        let verifier = Verifier::new(
            VerifyConfig::new(ISS)
                .audience(AUD)
                .cache_capacity(capacity),
            source,
        )
        .unwrap();
        runtime.block_on(verifier.refresh()).unwrap();
        verifier
    };
    let cached = verifier(10_000);
    let uncached = verifier(0);
    verify_now(&cached, &token);

    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISS]);

    let mut group = c.benchmark_group("verify");
    group.bench_function("tollgate cache hit", |b| {
        b.iter(|| verify_now(&cached, std::hint::black_box(&token)))
    });
    group.bench_function("tollgate cache miss (RS256)", |b| {
        b.iter(|| verify_now(&uncached, std::hint::black_box(&token)))
    });
    group.bench_function("jsonwebtoken::decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Value>(std::hint::black_box(&token), &decoding, &validation)
                .unwrap()
        })
    });
    group.finish();
    assert_eq!(uncached.stats().cache_hits, 0);
    println!("token length: {} bytes", token.len());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
