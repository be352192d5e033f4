//! A service token's life seen from the protected app: expiry and refresh (cookies stop with
//! their token), deletion by another process honoured within a second, secret rotation with and
//! without a grace period, and expiry warnings.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tollgate::issue::{AppSettings, ServiceTokens, TokenDuration};
use tollgate_test::http::wait_until;
use tollgate_test::issue::Harness;

#[tokio::test]
async fn expired_service_token_and_expired_cookie_with_a_fixed_clock() {
    let h = Harness::start(AppSettings::new().session_duration(Duration::from_secs(1800))).await;
    let tokens = h.issuer.tokens();
    tokens
        .set_duration(&h.token.client_id, "40m".parse().unwrap())
        .await
        .unwrap();
    let client = h.client();
    assert_eq!(h.exchange(&client).await.status, 200);

    // 31 minutes later the application token (30 min) has expired.
    h.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(h.ride(&client).await.refusal(), (401, Some("expired")));
    // The service token (40 min) is still good: a new exchange works.
    assert_eq!(h.exchange(&client).await.status, 200);

    // Past the service token's expiry (its fresh cookie would live until minute 61): the
    // cookie stops too, and so do the credentials.
    h.clock.advance(Duration::from_secs(10 * 60));
    assert_eq!(h.ride(&client).await.refusal(), (401, Some("revoked")));
    assert_eq!(
        h.exchange(&client).await.refusal(),
        (401, Some("invalid_credentials"))
    );

    // Refresh brings it back.
    tokens.refresh(&h.token.client_id).await.unwrap();
    assert_eq!(h.exchange(&client).await.status, 200);
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn deleting_a_token_revokes_it_and_its_cookies_across_processes() {
    // The default 250 ms poll: the bound we promise is "within 1 s".
    let h = Harness::start_with(AppSettings::new(), Duration::from_millis(250)).await;
    let client = h.client();
    assert_eq!(h.exchange(&client).await.status, 200);
    assert_eq!(h.ride(&client).await.status, 200);

    // "Another process": a manager on the same store, not wired to this issuer.
    let elsewhere = ServiceTokens::new(h.store.clone(), Arc::new(h.clock.clone()));
    elsewhere.delete(&h.token.client_id, true).await.unwrap();
    let honoured = wait_until(
        Duration::from_secs(1),
        "not honoured within 1 s",
        || async { h.ride(&client).await.status == 401 },
    )
    .await;
    eprintln!("deletion by another process honoured after {honoured:?}");
    assert_eq!(h.ride(&client).await.refusal(), (401, Some("revoked")));
    assert_eq!(h.exchange(&client).await.status, 401);
    h.verify_seen_independently().await;
}

/// The statuses of one exchange with each of `secrets`.
async fn statuses<const N: usize>(
    h: &Harness,
    client: &reqwest::Client,
    secrets: [&str; N],
) -> [u16; N] {
    let mut statuses = [0; N];
    for (status, secret) in statuses.iter_mut().zip(secrets) {
        *status = h.exchange_with(client, secret).await.code();
    }
    statuses
}

#[tokio::test]
async fn secret_rotation_inside_and_after_the_grace_period() {
    let h = Harness::start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let old = h.secret().to_owned();
    let new = h
        .issuer
        .tokens()
        .rotate_secret(&h.token.client_id, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(
        statuses(&h, &plain, [&old, new.expose_secret()]).await,
        [200, 200],
        "inside the grace period"
    );
    h.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        statuses(&h, &plain, [&old, new.expose_secret()]).await,
        [401, 200],
        "after the grace period"
    );
    // Without grace the previous secret stops at once.
    let newest = h
        .issuer
        .tokens()
        .rotate_secret(&h.token.client_id, None)
        .await
        .unwrap();
    assert_eq!(
        statuses(&h, &plain, [new.expose_secret(), newest.expose_secret()]).await,
        [401, 200],
        "no grace"
    );
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn expiry_warning_reaches_subscribers() {
    let h = Harness::start(AppSettings::new()).await;
    let mut warnings = h.issuer.subscribe_expiry();
    let (soon, _) = h
        .issuer
        .tokens()
        .create("short-lived", "72h".parse::<TokenDuration>().unwrap())
        .await
        .unwrap();
    let warning = tokio::time::timeout(Duration::from_secs(2), warnings.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(warning.client_id, soon.client_id);
    assert_eq!(warning.expires_at, soon.expires_at.unwrap());
}
