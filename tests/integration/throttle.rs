//! Failed exchanges are throttled per (address, client ID) and per address, over real sockets
//! from two loopback addresses: an attacker hammering a bot's client ID from one address never
//! locks out the bot at another.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tollgate::AccessIdentity;
use tollgate::core::ManualClock;
use tollgate::issue::{AppSettings, Issuer, MemoryStore, Throttle};

struct Setup {
    url: String,
    clock: ManualClock,
    bot: (String, String),
    other: (String, String),
}

async fn setup(throttle: Throttle) -> Setup {
    let clock = ManualClock::at_unix(1_700_000_000);
    let issuer = Issuer::builder("team.example.com")
        .store(Arc::new(MemoryStore::new()))
        .clock(Arc::new(clock.clone()))
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
        .create("bot", Default::default())
        .await
        .unwrap();
    let (other, other_secret) = issuer
        .tokens()
        .create("other", Default::default())
        .await
        .unwrap();
    let router = Router::new()
        .route(
            "/",
            get(|who: AccessIdentity| async move { who.name().to_owned() }),
        )
        .layer(
            issuer
                .exchange_layer("api")
                .unwrap()
                .with_throttle(throttle),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    Setup {
        url: format!("http://{addr}/"),
        clock,
        bot: (bot.client_id, secret.expose_secret().to_owned()),
        other: (other.client_id, other_secret.expose_secret().to_owned()),
    }
}

/// A client whose connections come from `source` (any 127.0.0.0/8 address is loopback).
fn from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Status, reason and `Retry-After` of one exchange attempt.
async fn attempt(client: &reqwest::Client, url: &str, id: &str, secret: &str) -> (u16, String) {
    let response = client
        .get(url)
        .header("CF-Access-Client-Id", id)
        .header("CF-Access-Client-Secret", secret)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| format!(" retry-after={}", v.to_str().unwrap()))
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| json["reason"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, format!("{reason}{retry}"))
}

#[tokio::test]
async fn one_pair_is_throttled_and_nobody_else() {
    let s = setup(Throttle::default()).await;
    let attacker = from("127.0.0.1");
    let (bot_id, bot_secret) = (&s.bot.0, &s.bot.1);
    for _ in 0..30 {
        let (status, reason) = attempt(&attacker, &s.url, bot_id, "tgs_wrong").await;
        assert_eq!((status, reason.as_str()), (401, "invalid_credentials"));
    }
    // The 31st failure's source is throttled, before any secret is checked: the right secret
    // from the same address and client ID waits too.
    assert_eq!(
        attempt(&attacker, &s.url, bot_id, "tgs_wrong").await,
        (429, "too_many_failures retry-after=60".into())
    );
    assert_eq!(attempt(&attacker, &s.url, bot_id, bot_secret).await.0, 429);
    // The bot itself, from its own address, is never locked out.
    assert_eq!(
        attempt(&from("127.0.0.2"), &s.url, bot_id, bot_secret)
            .await
            .0,
        200
    );
    // Another client from the attacker's address is not throttled either.
    let (other_id, other_secret) = (&s.other.0, &s.other.1);
    assert_eq!(
        attempt(&attacker, &s.url, other_id, other_secret).await.0,
        200
    );
    // The window ends: the pair may try again.
    s.clock.advance(Duration::from_secs(30));
    let (status, reason) = attempt(&attacker, &s.url, bot_id, bot_secret).await;
    assert_eq!(
        (status, reason.as_str()),
        (429, "too_many_failures retry-after=30")
    );
    s.clock.advance(Duration::from_secs(30));
    assert_eq!(attempt(&attacker, &s.url, bot_id, bot_secret).await.0, 200);
}

#[tokio::test]
async fn an_address_failing_across_client_ids_is_throttled_whole() {
    let s = setup(Throttle::default().per_client(0).per_address(20)).await;
    let attacker = from("127.0.0.3");
    for i in 0..20 {
        let id = format!("{i:032x}.access");
        assert_eq!(attempt(&attacker, &s.url, &id, "tgs_wrong").await.0, 401);
    }
    // Ambiguous or garbled credentials count too, and so does the address's next client.
    let (other_id, other_secret) = (&s.other.0, &s.other.1);
    assert_eq!(
        attempt(&attacker, &s.url, other_id, other_secret).await.0,
        429
    );
    assert_eq!(
        attempt(&from("127.0.0.4"), &s.url, other_id, other_secret)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn garbled_credentials_count_against_the_address() {
    let s = setup(Throttle::default().per_address(3)).await;
    let attacker = from("127.0.0.5");
    let client = &attacker;
    for _ in 0..3 {
        let response = client
            .get(&s.url)
            .header("CF-Access-Client-Id", &s.bot.0)
            .header("CF-Access-Client-Id", &s.other.0)
            .header("CF-Access-Client-Secret", &s.bot.1)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "ambiguous");
    }
    assert_eq!(attempt(client, &s.url, &s.bot.0, &s.bot.1).await.0, 429);
}

#[tokio::test]
async fn disabled_means_never() {
    let s = setup(Throttle::disabled()).await;
    let client = from("127.0.0.6");
    for _ in 0..40 {
        assert_eq!(attempt(&client, &s.url, &s.bot.0, "tgs_wrong").await.0, 401);
    }
    assert_eq!(attempt(&client, &s.url, &s.bot.0, &s.bot.1).await.0, 200);
}
