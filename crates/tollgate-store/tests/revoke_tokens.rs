//! `revoke_tokens` end to end: an issuer on a real SQLite file serving its protected app on
//! 127.0.0.1:0; another handle on the file (as the CLI, another process, would open) revokes
//! the application's tokens; the issuer's snapshot reload makes its old cookie a 401 `revoked`,
//! while the credentials exchange for a new cookie that works.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tollgate_core::SystemClock;
use tollgate_issue::{AppSettings, Applications, Issuer};
use tollgate_store::{StoreOptions, connect};
use tollgate_test::http::{RequestExt as _, serve, wait_until};
use tollgate_test::issue::{APP, TEAM_DOMAIN, protected_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_cookies_are_refused_over_http_and_credentials_mint_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    let store = Arc::new(connect(&url, StoreOptions::new()).await.unwrap());
    let issuer = Issuer::builder(TEAM_DOMAIN)
        .store(store)
        .poll_interval(Duration::from_millis(250))
        .build()
        .await
        .unwrap();
    issuer.apps().create(APP, AppSettings::new()).await.unwrap();
    let (token, secret) = issuer
        .tokens()
        .create("bot", Default::default())
        .await
        .unwrap();
    let base = serve(protected_app(&issuer, Default::default())).await;
    let client = reqwest::Client::new();

    let exchange = client
        .get(&base)
        .credentials(&token.client_id, secret.expose_secret())
        .reply()
        .await;
    assert_eq!(exchange.code(), 200, "{}", exchange.text);
    let old = exchange.cookie_pair().unwrap().to_owned();
    let ride = |cookie: String| {
        let request = client.get(&base).header("cookie", cookie);
        async move { request.reply().await }
    };
    assert_eq!(ride(old.clone()).await.code(), 200);

    // Another handle on the file revokes, as `tollgate app revoke-tokens` would.
    let other = Arc::new(connect(&url, StoreOptions::new()).await.unwrap());
    let revoked = Applications::new(other, Arc::new(SystemClock))
        .revoke_tokens(APP)
        .await
        .unwrap();
    assert!(revoked.tokens_revoked_before.is_some());
    let took = wait_until(Duration::from_secs(3), "the old cookie is refused", || {
        let reply = ride(old.clone());
        async move { reply.await.code() == 401 }
    })
    .await;
    assert!(
        took < Duration::from_secs(2),
        "honoured within ~1 s, took {took:?}"
    );
    let refused = ride(old.clone()).await;
    assert_eq!(
        refused.refusal(),
        (401, Some("revoked")),
        "{}",
        refused.text
    );

    // The credentials still exchange, at once, and the new cookie works.
    let exchange = client
        .get(&base)
        .credentials(&token.client_id, secret.expose_secret())
        .reply()
        .await;
    assert_eq!(exchange.code(), 200, "{}", exchange.text);
    let fresh = exchange.cookie_pair().unwrap().to_owned();
    assert_ne!(fresh, old);
    let reply = ride(fresh).await;
    assert_eq!(reply.code(), 200, "{}", reply.text);
    assert_eq!(ride(old).await.code(), 401, "the old one stays refused");
}
