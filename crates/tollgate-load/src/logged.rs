//! The cost of the authentication log: the same exchange layer on the same SQLite store, once
//! without events and once reporting to an [`AuthLog`] writing to that store, on the three paths
//! an operator cares about — a cookie ride (which reports nothing when it passes), a fresh
//! exchange (one event each) and a wrong secret (one refusal each, folded by the writer).

use std::sync::Arc;

use tollgate::core::events::Events;
use tollgate::issue::{AppSettings, AuthLog, Issuer, Throttle, TokenDuration};
use tollgate::store::{Store, StoreOptions};

use crate::client;
use crate::variants::{Variant, first_cookie, serve};

/// One SQLite file per issuer, in a directory kept for the whole run.
async fn store() -> Store {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    // The run ends with the process; the file goes with the directory then.
    std::mem::forget(dir);
    Store::connect(&url, StoreOptions::default())
        .await
        .expect("a SQLite store")
}

/// Starts one issuer (with or without the log) and its exchange layer; answers the address and
/// the three request kinds: credentials, a wrong secret, the cookie.
async fn exchange(logged: bool) -> (std::net::SocketAddr, Vec<u8>, Vec<u8>, Vec<u8>) {
    let store = store().await;
    let mut builder = Issuer::builder("team.example.com").store(Arc::new(store.clone()));
    if logged {
        let log = AuthLog::builder(Arc::new(store.clone())).start();
        builder = builder.events(Events::none().with(Arc::new(log)));
    }
    let issuer = builder.build().await.expect("an issuer on SQLite");
    issuer
        .apps()
        .create("bench", AppSettings::new())
        .await
        .expect("create the app");
    let (token, secret) = issuer
        .tokens()
        .create("bench-bot", TokenDuration::default())
        .await
        .expect("create the token");
    // The wrong secrets would be throttled after 30 a minute: the throttle is not measured here.
    let layer = issuer
        .exchange_layer("bench")
        .expect("the app")
        .with_throttle(Throttle::disabled());
    let addr = serve(
        axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .layer(layer),
    )
    .await;
    let credentials = client::get(&[
        ("CF-Access-Client-Id", token.client_id.as_str()),
        ("CF-Access-Client-Secret", secret.expose_secret()),
    ]);
    let wrong = client::get(&[
        ("CF-Access-Client-Id", token.client_id.as_str()),
        (
            "CF-Access-Client-Secret",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ]);
    let cookie = first_cookie(addr, &credentials).await;
    let ride = client::get(&[("Cookie", cookie.as_str())]);
    std::mem::forget(issuer);
    (addr, credentials, wrong, ride)
}

/// The six variants: each path without the log, then with it (compared with the former).
pub(crate) async fn start() -> Vec<Variant> {
    let (plain, plain_exchange, plain_wrong, plain_ride) = exchange(false).await;
    let (logged, logged_exchange, logged_wrong, logged_ride) = exchange(true).await;
    let variant = |name, baseline, addr, request: Vec<u8>, expected| Variant {
        name,
        baseline,
        addr,
        requests: vec![request],
        expected,
    };
    vec![
        variant("SQLite, no log: cookie reuse", None, plain, plain_ride, 200),
        variant(
            "SQLite + auth log: cookie reuse",
            Some("SQLite, no log: cookie reuse"),
            logged,
            logged_ride,
            200,
        ),
        variant("SQLite, no log: exchange", None, plain, plain_exchange, 200),
        variant(
            "SQLite + auth log: exchange",
            Some("SQLite, no log: exchange"),
            logged,
            logged_exchange,
            200,
        ),
        variant(
            "SQLite, no log: wrong secret",
            None,
            plain,
            plain_wrong,
            401,
        ),
        variant(
            "SQLite + auth log: wrong secret",
            Some("SQLite, no log: wrong secret"),
            logged,
            logged_wrong,
            401,
        ),
    ]
}
