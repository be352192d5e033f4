//! The key cache against a real JWKS server on loopback: rotation, floods of unknown kids,
//! outages, slow and oversized answers, Cache-Control, bad JWKs, and the background refresh.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_core::{Clock as _, ManualClock, RejectionKind, SystemClock};
use tollgate_test::{AUD, Behaviour, ISS, JwksServer, NOW, b64, keys, service_payload};
use tollgate_verify::{FetchErrorKind, KeySource, RemoteKeySource, Verifier, VerifyConfig};

fn remote_verifier(server: &JwksServer, clock: &ManualClock) -> Verifier {
    remote_verifier_with(server, clock, |c| c)
}

fn remote_verifier_with(
    server: &JwksServer,
    clock: &ManualClock,
    tweak: impl FnOnce(VerifyConfig) -> VerifyConfig,
) -> Verifier {
    let config = VerifyConfig::new(ISS)
        .audience(AUD)
        .clock(Arc::new(clock.clone()));
    Verifier::new(
        tweak(config),
        RemoteKeySource::new(&server.certs_url()).unwrap(),
    )
    .unwrap()
}

/// A verifier on the system clock whose keys `server` says are stale at once
/// (`max-age=0`), so only `min_refresh_interval` (200 ms) paces the background refresh.
fn refreshing_verifier(server: &JwksServer) -> Verifier {
    server.set_cache_control("max-age=0");
    Verifier::new(
        VerifyConfig::new(ISS)
            .audience(AUD)
            .min_refresh_interval(Duration::from_millis(200)),
        RemoteKeySource::new(&server.certs_url()).unwrap(),
    )
    .unwrap()
}

/// A kid nobody publishes, signed by key-c.
fn bogus_token(i: usize) -> String {
    let header = format!(r#"{{"alg":"RS256","kid":"bogus-{i}"}}"#);
    keys()[2].sign(&header, &service_payload(NOW, 60))
}

#[tokio::test]
async fn key_rotated_in_after_startup_verifies() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk()]).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    verifier.verify(&k[0].service_token(NOW, 60)).await.unwrap();
    assert_eq!(server.hits(), 1);

    // The issuer publishes key-b and starts signing with it; no cooldown has passed yet since
    // the first fetch, so advance past it as a real deployment would have.
    server.set_keys(vec![k[0].jwk(), k[1].jwk()]);
    clock.advance(Duration::from_secs(11));
    let identity = verifier.verify(&k[1].service_token(NOW, 60)).await.unwrap();
    assert_eq!(identity.client_id(), Some(tollgate_test::CLIENT_ID));
    assert_eq!(server.hits(), 2, "one refetch for the new kid");
    // Both keys now verify without any fetch.
    verifier
        .verify(&k[0].service_token(NOW + 1, 60))
        .await
        .unwrap();
    verifier
        .verify(&k[1].service_token(NOW + 1, 60))
        .await
        .unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn flood_of_unknown_kids_costs_a_handful_of_fetches() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk()]).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);

    // 100 concurrent requests with unknown kids, before any key was ever loaded.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&bogus_token(i)).await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), RejectionKind::UnknownKey);
    }
    // 100 more, one after the other.
    for i in 100..200 {
        let err = verifier.verify(&bogus_token(i)).await.unwrap_err();
        assert_eq!(err.kind(), RejectionKind::UnknownKey);
    }
    assert!(
        server.hits() <= 2,
        "200 bogus kids cost {} fetches",
        server.hits()
    );
    // The real key still works, with no extra fetch.
    let before = server.hits();
    verifier.verify(&k[0].service_token(NOW, 60)).await.unwrap();
    assert_eq!(server.hits(), before);

    // After the cooldown, one more fetch is allowed, and only one.
    clock.advance(Duration::from_secs(11));
    for i in 200..300 {
        assert!(verifier.verify(&bogus_token(i)).await.is_err());
    }
    assert_eq!(server.hits(), before + 1);
}

#[tokio::test]
async fn endpoint_down_known_keys_still_verify() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk()]).await;
    server.set_cache_control("max-age=300");
    let clock = ManualClock::at_unix(NOW);
    let verifier =
        remote_verifier_with(&server, &clock, |c| c.max_stale(Duration::from_secs(3600)));
    verifier.verify(&k[0].service_token(NOW, 60)).await.unwrap();

    server.set_behaviour(Behaviour::Fail(503));
    let err = verifier.refresh().await.unwrap_err();
    assert_eq!(err.kind(), FetchErrorKind::Status(503));

    // Past max-age, inside max_stale: the last good key still verifies (a fresh token, so
    // the verified-token cache does not answer for it).
    clock.advance(Duration::from_secs(1000));
    let now = NOW + 1000;
    verifier.verify(&k[0].service_token(now, 60)).await.unwrap();
    // Unknown kids are refused, not 503.
    let err = verifier.verify(&bogus_token(1)).await.unwrap_err();
    assert_eq!(err.kind(), RejectionKind::UnknownKey);

    // Past max-age + max_stale: keys are no longer trusted.
    clock.advance(Duration::from_secs(3000));
    let now = now + 3000;
    let err = verifier
        .verify(&k[0].service_token(now, 60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RejectionKind::KeysUnavailable);
    assert_eq!(err.status(), 503);

    // The endpoint recovers: after the cooldown, keys come back.
    server.set_behaviour(Behaviour::Serve);
    clock.advance(Duration::from_secs(11));
    verifier
        .verify(&k[0].service_token(now + 11, 60))
        .await
        .unwrap();
}

#[tokio::test]
async fn endpoint_down_from_the_start_answers_503_quickly() {
    let server = JwksServer::start(vec![]).await;
    server.set_behaviour(Behaviour::Fail(500));
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    for _ in 0..20 {
        let err = verifier
            .verify(&keys()[0].service_token(NOW, 60))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RejectionKind::KeysUnavailable);
    }
    assert_eq!(
        server.hits(),
        1,
        "the cooldown holds while the endpoint is down"
    );
}

#[tokio::test]
async fn slow_endpoint_does_not_hang_requests() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk()]).await;
    server.set_behaviour(Behaviour::Slow(Duration::from_secs(5)));
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier_with(&server, &clock, |c| {
        c.fetch_timeout(Duration::from_millis(200))
    });
    let started = Instant::now();
    let err = verifier
        .verify(&k[0].service_token(NOW, 60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RejectionKind::KeysUnavailable);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The source's own total timeout.
    let source = RemoteKeySource::new(&server.certs_url())
        .unwrap()
        .with_timeouts(Duration::from_millis(200), Duration::from_millis(300))
        .unwrap();
    let started = Instant::now();
    let err = source.fetch().await.unwrap_err();
    assert_eq!(err.kind(), FetchErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn oversized_and_invalid_answers_are_refused() {
    let server = JwksServer::start(vec![]).await;
    server.set_behaviour(Behaviour::Huge(300 * 1024));
    let source = RemoteKeySource::new(&server.certs_url()).unwrap();
    assert_eq!(
        source.fetch().await.unwrap_err().kind(),
        FetchErrorKind::TooLarge
    );
    let small = source.clone().with_max_bytes(1024);
    server.set_behaviour(Behaviour::Huge(2000));
    assert_eq!(
        small.fetch().await.unwrap_err().kind(),
        FetchErrorKind::TooLarge
    );

    // Nothing listening.
    let closed = RemoteKeySource::new("http://127.0.0.1:9/cdn-cgi/access/certs").unwrap();
    assert_eq!(
        closed.fetch().await.unwrap_err().kind(),
        FetchErrorKind::Connect
    );
}

#[tokio::test]
async fn cache_control_drives_the_refresh() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk()]).await;
    server.set_cache_control("public, max-age=120");
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    let token = k[0].service_token(NOW, 3600);
    verifier.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 1);

    clock.advance(Duration::from_secs(100));
    verifier.verify(&token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.hits(), 1, "still fresh");

    clock.advance(Duration::from_secs(30));
    // Stale: answered from the cache at once, with a refresh started in the background.
    verifier.verify(&token).await.unwrap();
    wait_for(|| server.hits() == 2).await;
    verifier.verify(&token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.hits(), 2, "fresh again");
}

#[tokio::test]
async fn background_refresh_runs_and_stops_with_the_verifier() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk()]).await;
    let verifier = refreshing_verifier(&server);
    let now = SystemClock.unix_now();
    verifier.verify(&k[0].service_token(now, 60)).await.unwrap();
    // Rotation picked up by the schedule alone, with no request asking for it.
    server.set_keys(vec![k[1].jwk()]);
    wait_for(|| server.hits() >= 3).await;
    let stats = verifier.stats();
    assert!(stats.key_fetches >= 3, "{stats:?}");
    drop(verifier);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_drop = server.hits();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        server.hits() <= after_drop + 1,
        "the refresher stopped with the verifier"
    );
}

#[tokio::test]
async fn key_leaving_the_set_evicts_its_cached_tokens() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk(), k[1].jwk()]).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    let token_a = k[0].service_token(NOW, 3600);
    let token_b = k[1].service_token(NOW, 3600);
    verifier.verify(&token_a).await.unwrap();
    verifier.verify(&token_b).await.unwrap();

    server.set_keys(vec![k[1].jwk()]);
    verifier.refresh().await.unwrap();
    let checks = verifier.stats().signature_checks;
    let err = verifier.verify(&token_a).await.unwrap_err();
    assert_eq!(err.kind(), RejectionKind::UnknownKey);
    verifier.verify(&token_b).await.unwrap();
    assert_eq!(
        verifier.stats().signature_checks,
        checks,
        "token b is still a cache hit: its key survived the refresh unchanged"
    );
}

#[tokio::test]
async fn bad_jwks_are_skipped_one_by_one() {
    let k = keys();
    let wycheproof = tollgate_test::wycheproof::json_web_key_test();
    // tc 8: a 1024-bit RSA key (kid RS256_1024); tc 9: public exponent 1 (kid RS256_2048).
    let weak: Vec<Value> = wycheproof["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| {
            g["tests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| matches!(t["tcId"].as_u64(), Some(8 | 9)))
        })
        .flat_map(|g| g["public"]["keys"].as_array().unwrap().clone())
        .collect();
    assert_eq!(weak.len(), 2);
    let mut jwks = vec![
        json!({"kid":"sym","kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}),
        json!({"kid":"enc","kty":"RSA","use":"enc","n":b64(&k[1].n),"e":b64(&k[1].e)}),
        json!({"kid":"ops","kty":"RSA","key_ops":["encrypt"],"n":b64(&k[1].n),"e":b64(&k[1].e)}),
        json!({"kid":"ec","kty":"EC","crv":"P-256","x":b64([1u8; 32]),"y":b64([2u8; 32])}),
        json!({"kid":"small","kty":"RSA","n":b64([0xc5u8; 128]),"e":"AQAB"}),
        json!({"kty":"RSA","n":b64(&k[1].n),"e":b64(&k[1].e)}),
        json!("not an object"),
        json!({"kid":"private","kty":"RSA","n":b64(&k[1].n),"e":b64(&k[1].e),"d":"AQAB"}),
    ];
    jwks.extend(weak);
    jwks.push(k[0].jwk());
    let server = JwksServer::start(jwks).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    verifier.verify(&k[0].service_token(NOW, 60)).await.unwrap();
    for kid in [
        "sym",
        "enc",
        "ops",
        "ec",
        "small",
        "private",
        "RS256_1024",
        "RS256_2048",
    ] {
        let header = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
        let token = k[1].sign(&header, &service_payload(NOW, 60));
        let err = verifier.verify(&token).await.unwrap_err();
        assert_eq!(err.kind(), RejectionKind::UnknownKey, "{kid}");
    }
}

#[tokio::test]
async fn duplicate_kids_are_never_resolved_silently() {
    let k = keys();
    let mut impostor = k[1].jwk();
    impostor["kid"] = json!("key-a");
    let server = JwksServer::start(vec![k[0].jwk(), impostor, k[2].jwk(), k[2].jwk()]).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    for signer in [&k[0], &k[1]] {
        let token = signer.sign(&k[0].header(), &service_payload(NOW, 60));
        let err = verifier.verify(&token).await.unwrap_err();
        assert_eq!(err.kind(), RejectionKind::UnknownKey);
    }
    // An exact duplicate is harmless.
    verifier.verify(&k[2].service_token(NOW, 60)).await.unwrap();
}

#[tokio::test]
async fn set_with_no_usable_key_keeps_the_last_good_one() {
    let k = keys();
    let server = JwksServer::start(vec![k[0].jwk()]).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    verifier.verify(&k[0].service_token(NOW, 60)).await.unwrap();
    server.set_keys(vec![json!({"kid":"sym","kty":"oct","k":"AAAA"})]);
    let err = verifier.refresh().await.unwrap_err();
    assert_eq!(err.kind(), FetchErrorKind::NoUsableKeys);
    verifier
        .verify(&k[0].service_token(NOW + 1, 60))
        .await
        .unwrap();
}

async fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met in 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An in-process source, like tollgate's issuer: no HTTP, so no cooldown.
#[derive(Debug)]
struct LocalSource {
    keys: std::sync::Mutex<Vec<Value>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl tollgate_verify::KeySource for LocalSource {
    fn fetch(
        &self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<tollgate_verify::KeySet, tollgate_verify::FetchError>,
                > + Send
                + '_,
        >,
    > {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let keys = self.keys.lock().unwrap().clone();
        Box::pin(async move { Ok(tollgate_verify::KeySet::from_jwks(keys)) })
    }

    fn is_local(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn local_sources_pick_up_new_keys_without_cooldown() {
    let k = keys();
    let source = Arc::new(LocalSource {
        keys: std::sync::Mutex::new(vec![k[0].jwk()]),
        calls: std::sync::atomic::AtomicUsize::new(0),
    });
    let clock = ManualClock::at_unix(NOW);
    let verifier = Verifier::new(
        VerifyConfig::new(ISS).audience(AUD).clock(Arc::new(clock)),
        source.clone(),
    )
    .unwrap();
    verifier.verify(&k[0].service_token(NOW, 60)).await.unwrap();
    // Rotated in-process: the very next token with the new kid verifies, no clock advance.
    source.keys.lock().unwrap().push(k[1].jwk());
    verifier.verify(&k[1].service_token(NOW, 60)).await.unwrap();
    assert_eq!(source.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Unknown kids still cost one in-process fetch each, one at a time.
    for i in 0..10 {
        assert!(verifier.verify(&bogus_token(i)).await.is_err());
    }
    assert_eq!(source.calls.load(std::sync::atomic::Ordering::SeqCst), 12);
}

#[test]
fn a_fetch_cut_short_by_a_dying_runtime_does_not_wedge_the_cache() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let k = keys();
    let server = server_rt.block_on(JwksServer::start(vec![k[0].jwk()]));
    server.set_behaviour(Behaviour::Slow(Duration::from_secs(2)));
    let clock = ManualClock::at_unix(NOW);
    let verifier = remote_verifier(&server, &clock);
    let token = k[0].service_token(NOW, 600);

    // A first runtime starts the fetch, then goes away while it is in flight.
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let attempt = first.block_on(async {
        tokio::time::timeout(Duration::from_millis(100), verifier.verify(&token)).await
    });
    assert!(attempt.is_err(), "still fetching");
    drop(first);

    // Another runtime carries on: the dead flight is forgotten and a new fetch succeeds.
    server.set_behaviour(Behaviour::Serve);
    clock.advance(Duration::from_secs(11));
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let verified = second.block_on(async {
        for _ in 0..3 {
            if verifier.verify(&token).await.is_ok() {
                return true;
            }
        }
        false
    });
    assert!(verified);
}

#[test]
fn background_refresh_restarts_on_a_new_runtime() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let k = keys();
    let server = server_rt.block_on(JwksServer::start(vec![k[0].jwk()]));
    let verifier = refreshing_verifier(&server);
    let now = SystemClock.unix_now();
    let token = k[0].service_token(now, 600);
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(async { verifier.verify(&token).await.unwrap() });
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        verifier.verify(&token).await.unwrap();
        // No more requests: only the background task can fetch now.
        let before = server.hits();
        wait_for(|| server.hits() >= before + 2).await;
    });
}

#[test]
fn a_key_set_document_must_be_utf8_even_in_members_nobody_reads() {
    // Found by the `jwks` fuzz target: serde_json skips an ignored member's bytes unchecked.
    let mut doc = br#"{"keys":[],"public_cert":{"kid":"x","cert":""#.to_vec();
    doc.extend_from_slice(&[0xff, 0xfe]);
    doc.extend_from_slice(br#""}}"#);
    let err = tollgate_verify::KeySet::from_jwks_json(&doc).expect_err("invalid UTF-8");
    assert_eq!(err.kind(), FetchErrorKind::InvalidKeySet);
    assert!(
        tollgate_verify::KeySet::from_jwks_json(br#"{"keys":[],"public_cert":{"cert":"ok"}}"#)
            .is_ok()
    );
}
