//! The exchange reports one authentication event per exchange attempt and per refused token,
//! over real sockets: who (client ID, token name), where (application, source address, request
//! id), the result and the precise cause — never a secret or a token.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use tollgate::AccessIdentity;
use tollgate::core::ManualClock;
use tollgate::core::RejectionKind;
use tollgate::core::events::{AuthEvent, EventKind, EventSink, Events};
use tollgate::issue::{AppSettings, Issuer, MemoryStore, TokenDuration};

#[derive(Default)]
struct Collect(Mutex<Vec<AuthEvent>>);

impl EventSink for Collect {
    fn record(&self, event: &AuthEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Collect {
    fn take(&self) -> Vec<AuthEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[tokio::test]
async fn every_attempt_is_reported_with_its_cause_and_never_a_secret() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let sink = Arc::new(Collect::default());
    let issuer = Issuer::builder("team.example.com")
        .store(Arc::new(MemoryStore::new()))
        .clock(Arc::new(clock.clone()))
        .events(Events::none().with(sink.clone()))
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
        .create("deploy-bot", Default::default())
        .await
        .unwrap();
    let (short, short_secret) = issuer
        .tokens()
        .create("short-lived", TokenDuration::Seconds(3600))
        .await
        .unwrap();
    let router = Router::new()
        .route(
            "/",
            get(|who: AccessIdentity| async move { who.name().to_owned() }),
        )
        .layer(issuer.exchange_layer("api").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    let url = format!("http://{addr}/");
    let http = reqwest::Client::new();
    let exchange = |id: &str, secret: &str, request_id: &str| {
        http.get(&url)
            .header("CF-Access-Client-Id", id)
            .header("CF-Access-Client-Secret", secret)
            .header("x-request-id", request_id)
            .send()
    };

    // A good exchange, whose cookie then rides without an event.
    let good = exchange(&bot.client_id, secret.expose_secret(), "req-1")
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let cookie = good
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let ride = http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ride.status(), 200);
    let events = sink.take();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.kind, EventKind::Exchange);
    assert!(event.allowed);
    assert_eq!(event.reason, None);
    assert_eq!(event.app.as_deref(), Some("api"));
    assert_eq!(event.client_id.as_deref(), Some(bot.client_id.as_str()));
    assert_eq!(event.token_name.as_deref(), Some("deploy-bot"));
    assert_eq!(event.token_id.as_deref(), Some(bot.id.as_str()));
    assert_eq!(event.location.as_deref(), Some("cf-access-client-id"));
    assert_eq!(event.source_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(event.request_id.as_deref(), Some("req-1"));
    assert_eq!(event.at_ms, 1_700_000_000_000);

    // A wrong secret and an unknown client ID look alike to the client, not to the operator.
    let wrong = exchange(&bot.client_id, "not-the-secret", "req-2")
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let unknown_id = format!("{}.access", "0".repeat(32));
    let unknown = exchange(&unknown_id, secret.expose_secret(), "req-3")
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    // Expired.
    clock.advance(std::time::Duration::from_secs(7200));
    let expired = exchange(&short.client_id, short_secret.expose_secret(), "req-4")
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    // A deleted token's cookie.
    issuer.tokens().delete(&bot.client_id, true).await.unwrap();
    let revoked = http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401);
    // Nothing at all.
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let events = sink.take();
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.allowed,
                e.reason,
                e.detail.as_deref(),
                e.token_name.as_deref(),
                e.request_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                EventKind::Exchange,
                false,
                Some(RejectionKind::InvalidCredentials),
                Some("wrong secret"),
                Some("deploy-bot"),
                Some("req-2"),
            ),
            (
                EventKind::Exchange,
                false,
                Some(RejectionKind::InvalidCredentials),
                Some("unknown client ID"),
                None,
                Some("req-3"),
            ),
            (
                EventKind::Exchange,
                false,
                Some(RejectionKind::InvalidCredentials),
                Some("service token expired"),
                Some("short-lived"),
                Some("req-4"),
            ),
            (
                EventKind::Token,
                false,
                Some(RejectionKind::Revoked),
                Some("service token deleted or expired"),
                None,
                None,
            ),
            (
                EventKind::Token,
                false,
                Some(RejectionKind::MissingCredentials),
                None,
                None,
                None,
            ),
        ]
    );
    assert_eq!(events[1].client_id.as_deref(), Some(unknown_id.as_str()));
    assert_eq!(events[3].client_id.as_deref(), Some(bot.client_id.as_str()));
    assert_eq!(events[3].location.as_deref(), Some("cookie"));
    let printed = format!("{events:?}");
    assert!(!printed.contains(secret.expose_secret()));
    assert!(!printed.contains(short_secret.expose_secret()));
    assert!(!printed.contains(cookie.trim_start_matches("CF_Authorization=")));
}
