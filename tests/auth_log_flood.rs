//! A flood of 10,000 refused exchanges over real sockets against an `ExchangeLayer` whose
//! issuer reports to an `AuthLog` on a deliberately slow store: the request path never waits
//! for the log, the queue never holds more than its capacity, every event is either written
//! (an aggregated row counting for its `count`) or counted as dropped and reported in the log
//! itself — and the good exchanges in the middle of it still succeed.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tollgate::AccessIdentity;
use tollgate::core::events::{AuthEvent, EventSink, Events};
use tollgate::issue::{
    AppSettings, AuthLog, AuthLogStore, DROPPED_ACTION, Issuer, LogQuery, LoggedEvent, MemoryStore,
    StoreFuture, Throttle,
};

/// A memory log whose every batch takes 100 ms to write: far slower than the flood.
struct SlowLog(MemoryStore);

impl AuthLogStore for SlowLog {
    fn append_events<'a>(&'a self, events: &'a [AuthEvent]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.0.append_events(events).await
        })
    }
    fn select_events<'a>(&'a self, query: &'a LogQuery) -> StoreFuture<'a, Vec<LoggedEvent>> {
        self.0.select_events(query)
    }
    fn latest_token_names<'a>(
        &'a self,
        client_ids: &'a [String],
    ) -> StoreFuture<'a, HashMap<String, (Option<String>, String)>> {
        self.0.latest_token_names(client_ids)
    }
    fn prune_events(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        self.0.prune_events(before_ms)
    }
}

/// Counts what the issuer emits, beside the log.
#[derive(Default)]
struct Count(AtomicU64);

impl EventSink for Count {
    fn record(&self, _: &AuthEvent) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

const BAD: usize = 10_000;
const GOOD_EVERY: usize = 100;
const CAPACITY: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_keeps_the_log_bounded_and_good_exchanges_working() {
    let log_store = Arc::new(SlowLog(MemoryStore::new()));
    let log = AuthLog::builder(log_store.clone())
        .capacity(CAPACITY)
        .batch_size(64)
        .start();
    let emitted = Arc::new(Count::default());
    let issuer = Issuer::builder("team.example.com")
        .store(Arc::new(MemoryStore::new()))
        .events(
            Events::none()
                .with(emitted.clone())
                .with(Arc::new(log.clone())),
        )
        .build()
        .await
        .unwrap();
    issuer
        .apps()
        .create("api", AppSettings::new())
        .await
        .unwrap();
    let (bot, secret) = issuer
        .tokens()
        .create("flood-survivor", Default::default())
        .await
        .unwrap();
    let layer = issuer
        .exchange_layer("api")
        .unwrap()
        // No throttle: every bad exchange reaches the check (and the log).
        .with_throttle(Throttle::default().per_client(0).per_address(0));
    let router = Router::new()
        .route(
            "/",
            get(|who: AccessIdentity| async move { who.name().to_owned() }),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    let url = format!("http://{addr}/");

    let next = Arc::new(AtomicUsize::new(0));
    let good_ok = Arc::new(AtomicUsize::new(0));
    let most_queued = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (url, next, good_ok, most_queued, log) = (
                url.clone(),
                next.clone(),
                good_ok.clone(),
                most_queued.clone(),
                log.clone(),
            );
            let (client_id, secret) = (bot.client_id.clone(), secret.expose_secret().to_owned());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= BAD {
                        return;
                    }
                    let status = http
                        .get(&url)
                        .header("CF-Access-Client-Id", &client_id)
                        .header("CF-Access-Client-Secret", "not-the-secret")
                        .send()
                        .await
                        .unwrap()
                        .status();
                    assert_eq!(status, 401);
                    most_queued.fetch_max(log.queued(), Ordering::Relaxed);
                    if n % GOOD_EVERY == 0 {
                        let good = http
                            .get(&url)
                            .header("CF-Access-Client-Id", &client_id)
                            .header("CF-Access-Client-Secret", &secret)
                            .send()
                            .await
                            .unwrap();
                        if good.status() == 200 {
                            good_ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let flood = started.elapsed();
    assert_eq!(
        good_ok.load(Ordering::Relaxed),
        BAD / GOOD_EVERY,
        "every good exchange succeeded"
    );
    assert!(most_queued.load(Ordering::Relaxed) <= CAPACITY);

    log.flush().await;
    let emitted = emitted.0.load(Ordering::Relaxed);
    assert_eq!(emitted, (BAD + BAD / GOOD_EVERY) as u64);
    let (written, dropped) = (log.written(), log.dropped());
    eprintln!(
        "flood: {emitted} events in {flood:?}; {written} written, {dropped} dropped, \
         most queued {}",
        most_queued.load(Ordering::Relaxed)
    );
    assert!(dropped > 0, "a 100 ms-per-batch store cannot keep up");
    assert_eq!(written + dropped, emitted, "every event written or counted");

    // What the log holds adds up: rows stand for their counts; the reports of drops for the
    // dropped.
    let rows = log_store
        .query_events(&LogQuery::new().limit(u32::MAX))
        .await
        .unwrap();
    let (reports, events): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|e| e.event.action.as_deref() == Some(DROPPED_ACTION));
    let counted =
        |rows: &[&LoggedEvent]| -> u64 { rows.iter().map(|e| u64::from(e.event.count)).sum() };
    assert_eq!(counted(&events), written);
    assert_eq!(counted(&reports), dropped);
    assert!(
        events.len() < BAD / 10,
        "identical refusals fold: {} rows",
        events.len()
    );
    log.close().await;
}
