//! Where notices come from: the issuer (expiring and expired tokens, a new signing key) and a
//! verifier whose team domain's certs cannot be fetched.

use std::time::Duration;

use tollgate_issue::{Issuer, TokenDuration};
use tollgate_test::webhook::WebhookReceiver;
use tollgate_test::{Behaviour, JwksServer, keys};
use tollgate_verify::{RemoteKeySource, Verifier, VerifyConfig};

use crate::{SECRET, WITHIN, notifier, sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_notices_reach_the_webhook_once() {
    let receiver = WebhookReceiver::start(SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let issuer = Issuer::builder("team.example.com")
        .store(store.clone())
        .poll_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    // Raised by this issuer before any notifier listens: current_notices() catches it.
    let (soon, _) = issuer
        .tokens()
        .create("nightly", TokenDuration::Seconds(100 * 3600))
        .await
        .unwrap();
    issuer
        .tokens()
        .create("yearly", TokenDuration::default())
        .await
        .unwrap();
    issuer.reload().await.unwrap();
    let first = notifier(store.clone(), receiver.url()).start().unwrap();
    first.watch_issuer(&issuer).await;
    let got = receiver.wait_for_delivered(1, WITHIN).await;
    assert_eq!(got[0].kind(), "token.expiring");
    assert_eq!(got[0].json["data"]["client_id"], soon.client_id.as_str());
    assert_eq!(got[0].json["data"]["token_id"], soon.id.as_str());

    // An emergency rotation: the new key signs after its 1 s lead, and the issuer says so.
    let before = issuer.key_ring_status();
    issuer.rotate_keys_now().await.unwrap();
    let got = receiver.wait_for_delivered(2, WITHIN).await;
    let rotated = got.iter().find(|r| r.kind() == "key.rotated").unwrap();
    assert!(rotated.signature_ok);
    let kids: Vec<String> = issuer.signing_keys().into_iter().map(|k| k.kid).collect();
    assert!(kids.contains(&rotated.json["data"]["kid"].as_str().unwrap().to_owned()));
    assert_ne!(
        rotated.json["data"]["kid"],
        rotated.json["data"]["previous_kid"]
    );
    let _ = before;

    // A second issuer on the same store (another instance) raises the same occurrences; the
    // outbox has them already.
    let other = Issuer::builder("team.example.com")
        .store(sqlite(&dir).await)
        .build()
        .await
        .unwrap();
    let other_notifier = notifier(sqlite(&dir).await, receiver.url())
        .start()
        .unwrap();
    other_notifier.watch_issuer(&other).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(other_notifier.stats().enqueued, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_certs_endpoint_is_reported_once_and_its_recovery_too() {
    let receiver = WebhookReceiver::start(SECRET).await;
    let jwks = JwksServer::start(vec![keys()[0].jwk()]).await;
    let config = VerifyConfig::new(tollgate_test::ISS)
        .audience(tollgate_test::AUD)
        .key_fetch_alert_after(2);
    let verifier = Verifier::new(config, RemoteKeySource::new(&jwks.certs_url()).unwrap()).unwrap();
    let mut notices = verifier.subscribe_notices();
    let dir = tempfile::tempdir().unwrap();
    let watching = notifier(sqlite(&dir).await, receiver.url())
        .start()
        .unwrap();
    watching.watch(verifier.subscribe_notices());

    verifier.refresh().await.unwrap();
    jwks.set_behaviour(Behaviour::Fail(503));
    for _ in 0..4 {
        assert!(verifier.refresh().await.is_err());
    }
    let failing = notices.recv().await.unwrap();
    assert_eq!(failing.kind(), "key_fetch.failing");
    jwks.set_behaviour(Behaviour::Serve);
    verifier.refresh().await.unwrap();
    assert_eq!(notices.recv().await.unwrap().kind(), "key_fetch.recovered");
    assert!(
        notices.try_recv().is_err(),
        "one notice per episode, not per failure"
    );

    let got = receiver.wait_for_delivered(2, WITHIN).await;
    let kinds: Vec<&str> = got.iter().map(|r| r.kind()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"key_fetch.failing") && kinds.contains(&"key_fetch.recovered"));
    let failing = got
        .iter()
        .find(|r| r.kind() == "key_fetch.failing")
        .unwrap();
    assert_eq!(failing.json["data"]["failures"], 2);
    assert_eq!(failing.json["data"]["source"], jwks.certs_url().as_str());
}
