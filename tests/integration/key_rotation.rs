//! Signing-key rotation under load: rotations while requests run fail none, a revoking rotation
//! refuses old cookies at once, and the schedule publishes the next key before it signs and
//! retires the old one after.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tollgate::issue::AppSettings;
use tollgate_test::http::{RequestExt as _, published_kids, signing_kid, wait_until};
use tollgate_test::independent::kid;
use tollgate_test::issue::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_while_requests_run_fails_none() {
    let h = Arc::new(Harness::start(AppSettings::new()).await);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (h, stop, done, failures) = (h.clone(), stop.clone(), done.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            // Half the workers exchange every time, half ride a cookie (re-exchanging when the
            // cookie's key is retired would be a failure: it must not happen).
            let client = h.client();
            let mut first = true;
            while !stop.load(Ordering::Relaxed) {
                let request = if worker % 2 == 0 || first {
                    h.with_credentials(&client, h.secret())
                } else {
                    client.get(h.url())
                };
                first = false;
                let status = request.send_status().await;
                if status != 200 {
                    failures.lock().unwrap().push(status);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let first_kid = h.issuer.signing_keys().last().unwrap().kid.clone();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        h.issuer.rotate_keys_now().await.unwrap();
        // The new key is published at once and signs after the 1 s lead, rounded up to whole
        // seconds (on the fixture's manual clock): let requests run on both sides of that moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.clock.advance(Duration::from_secs(2));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let keys = h.issuer.signing_keys();
    assert_eq!(keys.len(), 4, "three rotations: four keys published");
    assert_ne!(keys.last().unwrap().kid, first_kid);
    assert!(done.load(Ordering::Relaxed) > 20, "requests actually ran");
    assert!(
        failures.lock().unwrap().is_empty(),
        "{:?}",
        failures.lock().unwrap()
    );
    // Tokens signed by every key verify independently against the published certs.
    let claims = h.verify_seen_independently().await;
    let kids: HashSet<String> = h.seen.lock().unwrap().iter().map(|jwt| kid(jwt)).collect();
    assert!(kids.len() >= 2, "tokens from several keys: {kids:?}");
    assert!(!claims.is_empty());
}

#[tokio::test]
async fn revoking_rotation_refuses_old_cookies_and_a_new_exchange_works() {
    let h = Harness::start(AppSettings::new()).await;
    let client = h.client();
    assert_eq!(h.exchange(&client).await.status, 200);
    // The cookie rides, and is now in the verifier's verified-token cache.
    for _ in 0..2 {
        assert_eq!(h.ride(&client).await.status, 200);
    }
    let old_kid = h.issuer.signing_keys()[0].kid.clone();

    h.issuer.rotate_keys_now_revoking().await.unwrap();
    // At once, with no clock advance: the old key's cookie is refused.
    let refused = h.ride(&client).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json["reason"], "unknown_key");
    let kids = published_kids(&h.certs().await);
    assert_eq!(kids.len(), 1);
    assert_ne!(kids[0], old_kid, "the revoked key is no longer published");

    // A new exchange signs with the new key at once, and its cookie rides.
    h.seen.lock().unwrap().clear();
    assert_eq!(h.exchange(&client).await.status, 200);
    assert_eq!(h.ride(&client).await.status, 200);
    let claims = h.verify_seen_independently().await;
    assert_eq!(claims.len(), 1);
}

#[tokio::test]
async fn scheduled_rotation_publishes_the_next_key_before_it_signs() {
    let h = Harness::start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let kid_of_new_token =
        || async { kid(h.exchange(&plain).await.json["assertion"].as_str().unwrap()) };
    let certs = || async {
        let certs = h.certs().await;
        (published_kids(&certs), signing_kid(&certs))
    };
    let wait_for = |keys: usize| {
        let h = &h;
        async move {
            let what = format!("ring never reached {keys} keys");
            wait_until(Duration::from_secs(5), &what, || async {
                h.issuer.signing_keys().len() == keys
            })
            .await;
        }
    };
    let day = 86_400;
    let first = kid_of_new_token().await;

    // Day 41: the next key is published, but the first still signs.
    h.clock.advance(Duration::from_secs(41 * day + 1));
    wait_for(2).await;
    let (kids, current) = certs().await;
    assert_eq!(kids.len(), 2);
    assert_eq!(current, first);
    let next = kids.iter().find(|k| **k != first).unwrap().clone();
    assert_eq!(kid_of_new_token().await, first, "published is not signing");

    // Day 42: the next key signs; the first stays published and accepted.
    h.clock.advance(Duration::from_secs(day));
    wait_until(
        Duration::from_secs(5),
        "the next key never started signing",
        || async { kid_of_new_token().await == next },
    )
    .await;
    let (kids, current) = certs().await;
    assert_eq!((kids.len(), current.as_str()), (2, next.as_str()));

    // Tokens of both keys verify independently while both are published.
    h.verify_seen_independently().await;

    // Day 49: the first key leaves the ring.
    h.clock.advance(Duration::from_secs(7 * day));
    wait_for(1).await;
    let (kids, _) = certs().await;
    assert_eq!(kids, vec![next]);
}
