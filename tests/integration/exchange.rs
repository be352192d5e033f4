//! The service-token exchange over real HTTP on 127.0.0.1:0, with reqwest (and its cookie
//! store) as the client: the two headers or the application's single header are exchanged for an
//! application token, set as the `CF_Authorization` cookie with Cloudflare's attributes and
//! accepted back as a cookie or in `cf-access-token`; missing or wrong credentials are 401, a
//! policy refusal 403. Every token the protected handler sees is also verified independently
//! with jsonwebtoken against the certs served over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tollgate::issue::{AppSettings, ServiceAuthPolicy};
use tollgate_test::http::{RequestExt as _, single_header_credentials};
use tollgate_test::issue::{APP, Harness};

/// A well-formed client ID that no token of the harness has.
const OTHER_CLIENT_ID: &str = "0123456789abcdef0123456789abcdef.access";

#[tokio::test]
async fn exchange_then_ride_the_cookie() {
    let h = Harness::start(AppSettings::new()).await;
    let client = h.client();

    let first = h.exchange(&client).await;
    let cookie = first.set_cookie().unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.json["name"], h.token.client_id);
    let jwt = first.json["assertion"].as_str().unwrap();
    // Cloudflare's attributes: the issuer is https://team.example.com, so Secure and
    // SameSite=None even though this hop is plain http (the cookie store still sends a Secure
    // cookie to a loopback address).
    assert!(
        cookie.starts_with(&format!("CF_Authorization={jwt}; ")),
        "{cookie}"
    );
    for attribute in [
        "HttpOnly",
        "Path=/",
        "Expires=",
        "SameSite=None",
        "; Secure",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }

    // Second request: no credentials, the cookie alone; nothing new is minted.
    let second = h.ride(&client).await;
    assert!(second.set_cookie().is_none());
    assert_eq!(second.status, 200);
    assert_eq!(second.json["assertion"], jwt);

    let claims = h.verify_seen_independently().await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["common_name"], h.token.client_id);
    let lifetime = claims[0]["exp"].as_i64().unwrap() - claims[0]["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 86_400, "exp - iat = session duration");
}

#[tokio::test]
async fn cf_access_token_header_reuse_and_https_cookie() {
    let h = Harness::start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    // The issuer's scheme (https) decides Secure and SameSite=None, as Cloudflare sends them;
    // a client claiming plain http cannot downgrade the cookie.
    let first = h
        .with_credentials(&plain, h.secret())
        .header("x-forwarded-proto", "http")
        .reply()
        .await;
    let cookie = first.set_cookie().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("SameSite=None"),
        "{cookie}"
    );
    let jwt = first.json["assertion"].as_str().unwrap();

    let reuse = h.with_token(&plain, jwt).await;
    assert_eq!(reuse.status, 200);
    assert_eq!(reuse.json["assertion"], jwt);

    // A tampered token is refused.
    // Change one signature character well inside (the last one may only hold padding bits).
    let mut tampered = jwt.to_owned().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refused = h.with_token(&plain, &tampered).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json["reason"], "invalid_signature");
    assert!(
        !refused.text.contains(&tampered[..40]),
        "a token is never echoed"
    );
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn single_header_mode_in_addition_to_the_two_headers() {
    let h =
        Harness::start(AppSettings::new().read_service_tokens_from_header("Authorization")).await;
    let plain = reqwest::Client::new();
    let json_credentials = single_header_credentials(&h.token.client_id, h.secret());
    let reply = plain
        .get(h.url())
        .header("Authorization", &json_credentials)
        .reply()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["name"], h.token.client_id);
    // The two headers still work.
    assert_eq!(h.exchange(&plain).await.status, 200);
    // A wrong secret in the single header is a 401.
    let wrong = json_credentials.replace(h.secret(), "tgs_wrong");
    let reply = plain
        .get(h.url())
        .header("Authorization", wrong)
        .reply()
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json["reason"], "invalid_credentials");
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn session_duration_zero_sets_no_cookie() {
    let h = Harness::start(AppSettings::new().session_duration(Duration::ZERO)).await;
    let client = h.client();
    let first = h.exchange(&client).await;
    assert!(first.set_cookie().is_none());
    assert_eq!(first.status, 200);
    // Nothing to ride: every request must authenticate.
    let ride = h.ride(&client).await;
    assert_eq!(ride.status, 401);
    assert_eq!(ride.json["reason"], "missing_credentials");
    assert_eq!(h.exchange(&client).await.status, 200);
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn missing_and_wrong_credentials_are_401_and_policy_is_403() {
    let h = Harness::start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let missing = h.ride(&plain).await;
    assert_eq!(
        missing.headers["www-authenticate"],
        r#"Bearer realm="Cloudflare Access""#
    );
    assert_eq!(missing.refusal(), (401, Some("missing_credentials")));

    let wrong_secret = "tgs_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let wrong = h.exchange_with(&plain, wrong_secret).await;
    assert_eq!(wrong.refusal(), (401, Some("invalid_credentials")));
    assert!(!wrong.text.contains(wrong_secret));

    let other_id = plain
        .get(h.url())
        .credentials(OTHER_CLIENT_ID, h.secret())
        .reply()
        .await;
    assert_eq!(other_id.status, 401, "a real secret with another client ID");

    // A policy naming another token: valid credentials, refused with 403.
    let (other, _) = h
        .issuer
        .tokens()
        .create("other", tollgate::issue::TokenDuration::Forever)
        .await
        .unwrap();
    h.issuer
        .apps()
        .update(
            APP,
            AppSettings::new().policy(ServiceAuthPolicy::Tokens(vec![other.client_id])),
        )
        .await
        .unwrap();
    let refused = h.exchange(&plain).await;
    assert_eq!(refused.refusal(), (403, Some("forbidden")));
    assert!(!refused.text.contains(h.secret()));
}
