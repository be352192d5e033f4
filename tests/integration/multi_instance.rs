//! Several issuer instances on one store: they share keys, tokens and last-use times, and an
//! emergency rotation on one fails no request on another.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tollgate::issue::{AppSettings, Issuer, TokenDuration};
use tollgate_test::http::{RequestExt as _, signing_kid, wait_until};
use tollgate_test::issue::Harness;

#[tokio::test]
async fn two_instances_on_one_store_share_keys_tokens_and_last_use() {
    let a = Harness::start(AppSettings::new()).await;
    // A second instance on the same store: it must adopt A's keys, not generate its own.
    let b = a.second_instance().await;
    assert_eq!(a.issuer.signing_keys(), b.signing_keys());
    assert_eq!(b.certs_json(), a.issuer.certs_json());

    // A token created on B is accepted by A's app within a poll.
    let (token, secret) = b
        .tokens()
        .create("from-b", TokenDuration::default())
        .await
        .unwrap();
    let plain = reqwest::Client::new();
    wait_until(
        Duration::from_secs(1),
        "not honoured within 1 s",
        || async {
            let request = plain
                .get(a.url())
                .credentials(&token.client_id, secret.expose_secret());
            request.send_status().await == 200
        },
    )
    .await;
    // Last use is recorded in memory and written in a batch.
    assert_eq!(
        b.tokens().get(&token.client_id).await.unwrap().last_seen_at,
        None
    );
    a.issuer.flush_last_seen().await;
    let seen = b.tokens().get(&token.client_id).await.unwrap().last_seen_at;
    assert_eq!(seen, Some(tollgate::core::Clock::unix_now(&a.clock)));
    a.verify_seen_independently().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_rotation_on_one_instance_fails_nothing_on_another() {
    let a = Harness::start(AppSettings::new()).await;
    let b = a.second_instance().await;
    let url_b = a.serve_instance(&b).await;

    // Exchange on one instance, ride the token on the other, both ways, while A rotates.
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (a, stop, url_b) = (a.clone(), stop.clone(), url_b.clone());
        tokio::spawn(async move {
            let plain = reqwest::Client::new();
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for (mint, ride) in [(a.url(), url_b.clone()), (url_b.clone(), a.url())] {
                    let minted = plain
                        .get(&mint)
                        .credentials(&a.token.client_id, a.secret())
                        .reply()
                        .await;
                    let jwt = minted.json["assertion"].as_str().unwrap_or_default();
                    let second = plain.get(&ride).access_token(jwt).send_status().await;
                    outcomes.push((minted.code(), second.as_u16()));
                }
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = a.issuer.signing_keys();
    a.issuer.rotate_keys_now().await.unwrap();
    // B loads the published key within its poll; the key signs once the lead (1 s, rounded up
    // to whole seconds) has passed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.clock.advance(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = hammer.await.unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|o| **o != (200, 200)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    let after = b.signing_keys();
    assert_eq!(after.len(), before.len() + 1);
    // Both instances now sign with the new key.
    let kid = |issuer: &Issuer| signing_kid(&serde_json::from_str(&issuer.certs_json()).unwrap());
    assert_eq!(kid(&a.issuer), after.last().unwrap().kid);
    assert_eq!(kid(&b), after.last().unwrap().kid);
    a.verify_seen_independently().await;
}
