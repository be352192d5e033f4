//! The `issuer_app` and `bot` examples together over real HTTP: the bot exchanges once and
//! rides the cookie; the cookie's attributes follow the issuer's scheme unless the application
//! says otherwise.

#![allow(clippy::unwrap_used)]

#[path = "../../examples/issuer_app.rs"]
#[allow(dead_code, unreachable_pub)]
mod issuer_app;

#[path = "../../examples/bot.rs"]
#[allow(dead_code, unreachable_pub)]
mod bot;

use tollgate::issue::AppSettings;
use tollgate_test::http::RequestExt as _;

#[tokio::test]
async fn examples_issuer_app_and_bot_ride_the_cookie() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (issuer, token, secret) = issuer_app::setup(&base).await.unwrap();
    let app = issuer_app::app(&issuer).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = bot::client().unwrap();
    let url = format!("{base}/");
    let report = bot::run(&client, &url, &token.client_id, secret.expose_secret(), 5)
        .await
        .unwrap();
    assert_eq!(report.statuses, vec![reqwest::StatusCode::OK; 5]);
    assert_eq!(report.exchanges, 1, "one exchange, then the cookie");
    let exchange = || {
        reqwest::Client::new()
            .get(&url)
            .credentials(&token.client_id, secret.expose_secret())
    };
    // An http issuer (development): no Secure, SameSite=Lax, whatever the client claims.
    let claimed_https = exchange()
        .header("x-forwarded-proto", "https")
        .reply()
        .await;
    let cookie = claimed_https.set_cookie().unwrap();
    assert!(
        cookie.contains("SameSite=Lax") && !cookie.contains("Secure"),
        "{cookie}"
    );
    // An explicit application setting wins over the scheme.
    issuer
        .apps()
        .update(
            issuer_app::APP_NAME,
            AppSettings::new().cookie_secure(Some(true)),
        )
        .await
        .unwrap();
    let secure = exchange().reply().await;
    let cookie = secure.set_cookie().unwrap();
    assert!(
        cookie.contains("SameSite=None") && cookie.contains("; Secure"),
        "{cookie}"
    );
    let hello = client.get(&url).reply().await.json;
    assert_eq!(hello["hello"], token.client_id);
    assert_eq!(hello["kind"], "service");

    // A wrong secret: the bot keeps getting 401 and never a cookie.
    let report = bot::run(
        &bot::client().unwrap(),
        &url,
        &token.client_id,
        "tgs_wrong",
        2,
    )
    .await
    .unwrap();
    assert_eq!(report.statuses, vec![reqwest::StatusCode::UNAUTHORIZED; 2]);
    assert_eq!(report.exchanges, 0);
}
