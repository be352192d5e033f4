//! Delivery: signed, once per occurrence (across a restart, across instances), retried,
//! given up, never blocking the caller.

use std::time::{Duration, Instant};

use tollgate_core::notice::{Notice, TokenNotice};
use tollgate_issue::NotificationStore as _;
use tollgate_notify::{EVENT_HEADER, EVENT_ID_HEADER, NotifyErrorKind, event_id};
use tollgate_test::webhook::WebhookReceiver;

use crate::{SECRET, WITHIN, notifier, sqlite};

fn expiring(n: u32) -> Notice {
    Notice::TokenExpiring(TokenNotice {
        token_id: format!("00000000-0000-4000-8000-{n:012}"),
        client_id: format!("{}.access", "a".repeat(32)),
        name: format!("bot-{n}"),
        expires_at: 1_800_000_000 + i64::from(n),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_is_delivered_signed_and_once_across_a_restart() {
    let receiver = WebhookReceiver::start(SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let first = notifier(store.clone(), receiver.url()).start().unwrap();
    let notice = expiring(1);
    assert_eq!(first.notify(&notice).await.unwrap(), 1);
    assert_eq!(
        first.notify(&notice).await.unwrap(),
        0,
        "the same occurrence"
    );
    let got = receiver.wait_for_delivered(1, WITHIN).await;
    let hook = &got[0];
    assert!(
        hook.signature_ok,
        "signature checked by an independent HMAC"
    );
    assert_eq!(hook.kind(), "token.expiring");
    assert_eq!(hook.header(EVENT_HEADER), Some("token.expiring"));
    let id = event_id(&notice.dedupe_key());
    assert_eq!(hook.header(EVENT_ID_HEADER), Some(id.as_str()));
    assert_eq!(hook.json["id"], id.as_str());
    assert_eq!(hook.json["data"]["name"], "bot-1");
    assert_eq!(hook.json["data"]["expires_at"], "2027-01-15T08:00:01Z");
    assert!(hook.json["text"].as_str().unwrap().contains("bot-1"));
    assert_eq!(hook.header("content-type"), Some("application/json"));
    drop(first);
    store.close().await;

    // "Restart": a new process' notifier on the same file sees the same occurrence again.
    let store = sqlite(&dir).await;
    let second = notifier(store.clone(), receiver.url()).start().unwrap();
    assert_eq!(second.notify(&notice).await.unwrap(), 0);
    assert_eq!(
        second.notify(&expiring(2)).await.unwrap(),
        1,
        "a new occurrence"
    );
    receiver.wait_for_delivered(2, WITHIN).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2, "nothing delivered twice");
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_the_same_event_until_accepted() {
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.answer_next(&[503, 500]);
    let dir = tempfile::tempdir().unwrap();
    let notifier = notifier(sqlite(&dir).await, receiver.url())
        .start()
        .unwrap();
    let started = Instant::now();
    notifier.notify(&expiring(3)).await.unwrap();
    receiver.wait_for_delivered(1, WITHIN).await;
    let all = receiver.received();
    assert_eq!(
        all.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [503, 500, 200]
    );
    let ids: Vec<_> = all.iter().map(|r| r.json["id"].clone()).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event, three attempts"
    );
    assert!(
        all.iter().all(|r| r.signature_ok),
        "each attempt signed afresh"
    );
    // Backoff: 50 ms then 100 ms (less jitter) between the attempts.
    assert!(started.elapsed() >= Duration::from_millis(130));
    let stats = notifier.stats();
    assert_eq!((stats.retried, stats.delivered, stats.given_up), (2, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_receiver_is_given_up_after_three_attempts() {
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.answer_next(&[404, 404, 404, 404, 404]);
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let notifier = notifier(store.clone(), receiver.url()).start().unwrap();
    notifier.notify(&expiring(4)).await.unwrap();
    tollgate_test::http::wait_until(WITHIN, "the delivery to be given up", || async {
        notifier.stats().given_up == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_never_blocks_the_caller() {
    // A port nobody listens on.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let notifier = notifier(store.clone(), &dead).start().unwrap();
    let started = Instant::now();
    for n in 0..20 {
        notifier.notify(&expiring(100 + n)).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "enqueueing does not wait on delivery"
    );
    tollgate_test::http::wait_until(WITHIN, "failed attempts", || async {
        notifier.stats().retried >= 20
    })
    .await;
    assert_eq!(
        store.pending_deliveries().await.unwrap(),
        20,
        "kept for retry"
    );
}

#[test]
fn bad_configuration_fails_when_built() {
    let store = std::sync::Arc::new(tollgate_issue::MemoryStore::new());
    let builder = || tollgate_notify::Notifier::builder(store.clone());
    for url in [
        "ftp://example.com/",
        "not a url",
        "https://user:pw@example.com/",
        "http://",
        "mailto:a@b.c",
    ] {
        let err = builder().webhook(url).unwrap_err();
        assert_eq!(err.kind(), NotifyErrorKind::InvalidUrl, "{url}");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
    let err = builder().secret("short").unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::InvalidSecret);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let err = builder()
        .webhook("https://hooks.example.com/")
        .unwrap()
        .start()
        .unwrap_err();
    assert_eq!(
        err.kind(),
        NotifyErrorKind::InvalidSecret,
        "webhooks need a secret"
    );
}

/// Two instances on one store notify the same occurrences at once: each is delivered once.
async fn two_instances_deliver_each_occurrence_once(url_a: String, url_b: String) {
    let receiver = WebhookReceiver::start(SECRET).await;
    let open = |url: String| async move {
        std::sync::Arc::new(
            tollgate_store::connect(&url, tollgate_store::StoreOptions::new())
                .await
                .unwrap(),
        )
    };
    let a = notifier(open(url_a).await, receiver.url()).start().unwrap();
    let b = notifier(open(url_b).await, receiver.url()).start().unwrap();
    let notices: Vec<Notice> = (0..20).map(|n| expiring(200 + n)).collect();
    let (first, second) = tokio::join!(
        async {
            for notice in &notices {
                a.notify(notice).await.unwrap();
            }
        },
        async {
            for notice in notices.iter().rev() {
                b.notify(notice).await.unwrap();
            }
        }
    );
    let ((), ()) = (first, second);
    receiver.wait_for_delivered(20, WITHIN).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 20, "each occurrence delivered by one instance");
    let mut ids: Vec<String> = got.iter().map(|r| r.json["id"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    assert_eq!(a.stats().enqueued + b.stats().enqueued, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_sqlite_file_deliver_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    two_instances_deliver_each_occurrence_once(url.clone(), url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_deliver_once() {
    tollgate_test::postgres::with_database("notify::two_instances_on_postgres", |url| {
        two_instances_deliver_each_occurrence_once(url.clone(), url)
    })
    .await;
}
