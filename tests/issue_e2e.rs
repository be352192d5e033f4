//! End-to-end tests of the in-process issuer over real HTTP on 127.0.0.1:0, with reqwest (and
//! its cookie store) as the client. Every token the protected handler sees is also verified
//! independently with jsonwebtoken against the certs served over HTTP.

#![allow(clippy::unwrap_used)]

#[path = "common/issue.rs"]
mod fixture;

#[path = "../examples/issuer_app.rs"]
#[allow(dead_code, unreachable_pub)]
mod issuer_app;

#[path = "../examples/bot.rs"]
#[allow(dead_code, unreachable_pub)]
mod bot;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use fixture::{APP, body, start, start_with, verify_independently};
use serde_json::Value;
use tollgate::issue::{AppSettings, ServiceAuthPolicy, ServiceTokens, TokenDuration};

#[tokio::test]
async fn exchange_then_ride_the_cookie() {
    let h = start(AppSettings::new()).await;
    let client = h.client();

    let first = h
        .with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    let (status, _, json) = body(first).await;
    assert_eq!(status, 200);
    assert_eq!(json["name"], h.token.client_id);
    let jwt = json["assertion"].as_str().unwrap().to_owned();
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
    let second = client.get(h.url()).send().await.unwrap();
    assert!(second.headers().get("set-cookie").is_none());
    let (status, _, json) = body(second).await;
    assert_eq!(status, 200);
    assert_eq!(json["assertion"], jwt.as_str());

    let claims = h.verify_seen_independently().await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["common_name"], h.token.client_id);
    let lifetime = claims[0]["exp"].as_i64().unwrap() - claims[0]["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 86_400, "exp - iat = session duration");
}

#[tokio::test]
async fn cf_access_token_header_reuse_and_https_cookie() {
    let h = start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    // The issuer's scheme (https) decides Secure and SameSite=None, as Cloudflare sends them;
    // a client claiming plain http cannot downgrade the cookie.
    let first = h
        .with_credentials(&plain, h.secret.expose_secret())
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("SameSite=None"),
        "{cookie}"
    );
    let (_, _, json) = body(first).await;
    let jwt = json["assertion"].as_str().unwrap().to_owned();

    let reuse = plain
        .get(h.url())
        .header("cf-access-token", &jwt)
        .send()
        .await
        .unwrap();
    let (status, _, json) = body(reuse).await;
    assert_eq!(status, 200);
    assert_eq!(json["assertion"], jwt.as_str());

    // A tampered token is refused.
    // Change one signature character well inside (the last one may only hold padding bits).
    let mut tampered = jwt.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, text, json) = body(
        plain
            .get(h.url())
            .header("cf-access-token", &tampered)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(json["reason"], "invalid_signature");
    assert!(!text.contains(&tampered[..40]), "a token is never echoed");
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn single_header_mode_in_addition_to_the_two_headers() {
    let h = start(AppSettings::new().read_service_tokens_from_header("Authorization")).await;
    let plain = reqwest::Client::new();
    let json_credentials = format!(
        r#"{{"cf-access-client-id":"{}","cf-access-client-secret":"{}"}}"#,
        h.token.client_id,
        h.secret.expose_secret()
    );
    let (status, _, json) = body(
        plain
            .get(h.url())
            .header("Authorization", &json_credentials)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["name"], h.token.client_id);
    // The two headers still work.
    let (status, _, _) = body(
        h.with_credentials(&plain, h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    // A wrong secret in the single header is a 401.
    let wrong = json_credentials.replace(h.secret.expose_secret(), "tgs_wrong");
    let (status, _, json) = body(
        plain
            .get(h.url())
            .header("Authorization", wrong)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(json["reason"], "invalid_credentials");
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn session_duration_zero_sets_no_cookie() {
    let h = start(AppSettings::new().session_duration(Duration::ZERO)).await;
    let client = h.client();
    let first = h
        .with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    assert!(first.headers().get("set-cookie").is_none());
    assert_eq!(first.status(), 200);
    // Nothing to ride: every request must authenticate.
    let (status, _, json) = body(client.get(h.url()).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(json["reason"], "missing_credentials");
    let again = h
        .with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn missing_and_wrong_credentials_are_401_and_policy_is_403() {
    let h = start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let missing = plain.get(h.url()).send().await.unwrap();
    assert_eq!(
        missing.headers()["www-authenticate"],
        r#"Bearer realm="Cloudflare Access""#
    );
    let (status, _, json) = body(missing).await;
    assert_eq!(
        (status.as_u16(), json["reason"].as_str()),
        (401, Some("missing_credentials"))
    );

    let wrong_secret = "tgs_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let (status, text, json) = body(
        h.with_credentials(&plain, wrong_secret)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), json["reason"].as_str()),
        (401, Some("invalid_credentials"))
    );
    assert!(!text.contains(wrong_secret));

    let (status, _, _) = body(
        plain
            .get(h.url())
            .header(
                "CF-Access-Client-Id",
                "0123456789abcdef0123456789abcdef.access",
            )
            .header("CF-Access-Client-Secret", h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "a real secret with another client ID");

    // A policy naming another token: valid credentials, refused with 403.
    h.issuer
        .apps()
        .update(
            APP,
            AppSettings::new().policy(ServiceAuthPolicy::Tokens(vec![
                "0123456789abcdef0123456789abcdef.access".into(),
            ])),
        )
        .await
        .unwrap();
    let (status, text, json) = body(
        h.with_credentials(&plain, h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), json["reason"].as_str()),
        (403, Some("forbidden"))
    );
    assert!(!text.contains(h.secret.expose_secret()));
}

#[tokio::test]
async fn expired_service_token_and_expired_cookie_with_a_fixed_clock() {
    let h = start(AppSettings::new().session_duration(Duration::from_secs(1800))).await;
    let tokens = h.issuer.tokens();
    tokens
        .set_duration(&h.token.client_id, "40m".parse().unwrap())
        .await
        .unwrap();
    let client = h.client();
    let first = h
        .with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);

    // 31 minutes later the application token (30 min) has expired.
    h.clock.advance(Duration::from_secs(31 * 60));
    let (status, _, json) = body(client.get(h.url()).send().await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), json["reason"].as_str()),
        (401, Some("expired"))
    );
    // The service token (40 min) is still good: a new exchange works.
    let again = h
        .with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    // Past the service token's expiry (its fresh cookie would live until minute 61): the
    // cookie stops too, and so do the credentials.
    h.clock.advance(Duration::from_secs(10 * 60));
    let (status, _, json) = body(client.get(h.url()).send().await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), json["reason"].as_str()),
        (401, Some("revoked"))
    );
    let (status, _, json) = body(
        h.with_credentials(&client, h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), json["reason"].as_str()),
        (401, Some("invalid_credentials"))
    );

    // Refresh brings it back.
    tokens.refresh(&h.token.client_id).await.unwrap();
    let refreshed = h
        .with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn deleting_a_token_revokes_it_and_its_cookies_across_processes() {
    // The default 250 ms poll: the bound we promise is "within 1 s".
    let h = start_with(AppSettings::new(), Duration::from_millis(250)).await;
    let client = h.client();
    let first = h
        .with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(client.get(h.url()).send().await.unwrap().status(), 200);

    // "Another process": a manager on the same store, not wired to this issuer.
    let elsewhere = ServiceTokens::new(h.store.clone(), Arc::new(h.clock.clone()));
    elsewhere.delete(&h.token.client_id).await.unwrap();
    let deleted_at = Instant::now();
    let honoured = loop {
        let status = client.get(h.url()).send().await.unwrap().status();
        if status == 401 {
            break deleted_at.elapsed();
        }
        assert!(
            deleted_at.elapsed() < Duration::from_secs(1),
            "not honoured within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("deletion by another process honoured after {honoured:?}");
    let (status, _, json) = body(client.get(h.url()).send().await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), json["reason"].as_str()),
        (401, Some("revoked"))
    );
    let (status, _, _) = body(
        h.with_credentials(&client, h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn secret_rotation_inside_and_after_the_grace_period() {
    let h = start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let old = h.secret.expose_secret().to_owned();
    let new = h
        .issuer
        .tokens()
        .rotate_secret(&h.token.client_id, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    for (secret, expected) in [(old.as_str(), 200), (new.expose_secret(), 200)] {
        let status = h
            .with_credentials(&plain, secret)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "inside the grace period");
    }
    h.clock.advance(Duration::from_secs(3601));
    for (secret, expected) in [(old.as_str(), 401), (new.expose_secret(), 200)] {
        let status = h
            .with_credentials(&plain, secret)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "after the grace period");
    }
    // Without grace the previous secret stops at once.
    let newest = h
        .issuer
        .tokens()
        .rotate_secret(&h.token.client_id, None)
        .await
        .unwrap();
    for (secret, expected) in [(new.expose_secret(), 401), (newest.expose_secret(), 200)] {
        let status = h
            .with_credentials(&plain, secret)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "no grace");
    }
    h.verify_seen_independently().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_while_requests_run_fails_none() {
    let h = Arc::new(start(AppSettings::new()).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (h, stop, done, failures) = (h.clone(), stop.clone(), done.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            // Half the workers exchange every time, half ride a cookie (re-exchanging when the
            // cookie's key is retired would be a failure: it must not happen).
            let client = h.client();
            let mut first = true;
            while !stop.load(Ordering::Relaxed) {
                let request = if worker % 2 == 0 || first {
                    h.with_credentials(&client, h.secret.expose_secret())
                } else {
                    client.get(h.url())
                };
                first = false;
                let status = request.send().await.unwrap().status();
                if status != 200 {
                    failures.lock().unwrap().push(status);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let first_kid = h.issuer.signing_keys().last().unwrap().kid.clone();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        h.issuer.rotate_keys_now().await.unwrap();
        // The new key is published at once and signs after the 1 s lead, rounded up to whole
        // seconds (on the fixture's manual clock): let requests run on both sides of that moment.
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.clock.advance(Duration::from_secs(2));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let keys = h.issuer.signing_keys();
    assert_eq!(keys.len(), 4, "three rotations: four keys published");
    assert_ne!(keys.last().unwrap().kid, first_kid);
    assert!(done.load(Ordering::Relaxed) > 20, "requests actually ran");
    assert!(
        failures.lock().unwrap().is_empty(),
        "{:?}",
        failures.lock().unwrap()
    );
    // Tokens signed by every key verify independently against the published certs.
    let claims = h.verify_seen_independently().await;
    let kids: std::collections::HashSet<String> = h
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|jwt| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap())
        .collect();
    assert!(kids.len() >= 2, "tokens from several keys: {kids:?}");
    assert!(!claims.is_empty());
}

#[tokio::test]
async fn service_token_credentials_never_reach_the_handler() {
    let h = start(AppSettings::new().read_service_tokens_from_header("Authorization")).await;
    // A handler that answers the names of the headers it received.
    let app = Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move {
                Json(
                    headers
                        .keys()
                        .map(|name| name.as_str().to_owned())
                        .collect::<Vec<_>>(),
                )
            }),
        )
        .layer(h.issuer.exchange_layer(APP).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let plain = reqwest::Client::new();
    let seen = |response: reqwest::Response| async move {
        let (status, text, json) = body(response).await;
        assert_eq!(status, 200, "{text}");
        let names: Vec<String> = serde_json::from_value(json).unwrap();
        assert!(
            names.iter().any(|n| n == "cf-access-jwt-assertion"),
            "{names:?}"
        );
        names
    };

    // The two headers.
    let names = seen(
        plain
            .get(&url)
            .header("CF-Access-Client-Id", &h.token.client_id)
            .header("CF-Access-Client-Secret", h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    for gone in ["cf-access-client-id", "cf-access-client-secret"] {
        assert!(
            !names.iter().any(|n| n == gone),
            "{gone} forwarded: {names:?}"
        );
    }

    // The application's single header.
    let json_credentials = format!(
        r#"{{"cf-access-client-id":"{}","cf-access-client-secret":"{}"}}"#,
        h.token.client_id,
        h.secret.expose_secret()
    );
    let response = plain
        .get(&url)
        .header("Authorization", &json_credentials)
        .send()
        .await
        .unwrap();
    let jwt = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .and_then(|c| c.strip_prefix("CF_Authorization="))
        .unwrap()
        .to_owned();
    let names = seen(response).await;
    assert!(!names.iter().any(|n| n == "authorization"), "{names:?}");

    // An Authorization header that is not ours (no credentials in it) is left alone.
    let names = seen(
        plain
            .get(&url)
            .header("cf-access-token", &jwt)
            .header("Authorization", "Bearer upstream")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(names.iter().any(|n| n == "authorization"), "{names:?}");
}

#[tokio::test]
async fn revoking_rotation_refuses_old_cookies_and_a_new_exchange_works() {
    let h = start(AppSettings::new()).await;
    let client = h.client();
    let (status, _, _) = body(
        h.with_credentials(&client, h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    // The cookie rides, and is now in the verifier's verified-token cache.
    for _ in 0..2 {
        assert_eq!(client.get(h.url()).send().await.unwrap().status(), 200);
    }
    let old_kid = h.issuer.signing_keys()[0].kid.clone();

    h.issuer.rotate_keys_now_revoking().await.unwrap();
    // At once, with no clock advance: the old key's cookie is refused.
    let (status, _, json) = body(client.get(h.url()).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(json["reason"], "unknown_key");
    let certs: Value = reqwest::get(format!("{}/cdn-cgi/access/certs", h.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = certs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 1);
    assert_ne!(kids[0], old_kid, "the revoked key is no longer published");

    // A new exchange signs with the new key at once, and its cookie rides.
    h.seen.lock().unwrap().clear();
    let (status, _, _) = body(
        h.with_credentials(&client, h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(client.get(h.url()).send().await.unwrap().status(), 200);
    let claims = h.verify_seen_independently().await;
    assert_eq!(claims.len(), 1);
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_handler() {
    let h = start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let spoof = |request: reqwest::RequestBuilder| {
        request
            .header("Cf-Access-Jwt-Assertion", "forged")
            .header("cf_access_jwt_assertion", "forged")
            .header("Cf-Access-Authenticated-User-Email", "forged@example.com")
            .header("cf_access_authenticated_user_email", "forged@example.com")
    };
    let (status, _, _) = body(spoof(plain.get(h.url())).send().await.unwrap()).await;
    assert_eq!(status, 401, "spoofed headers are not credentials");
    let (status, _, json) = body(
        spoof(h.with_credentials(&plain, h.secret.expose_secret()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["forged_seen"], false);
    assert_eq!(json["email_header"], false);
    assert_eq!(json["assertions"], 1);
    assert_ne!(json["assertion"], "forged");
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn certs_and_get_identity_routes() {
    let h = start(AppSettings::new()).await;
    let certs: Value = reqwest::get(format!("{}/cdn-cgi/access/certs", h.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = certs["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = keys[0]["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 64);
    assert_eq!(certs["public_cert"]["kid"], kid);
    assert!(
        certs["public_cert"]["cert"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    assert_eq!(certs["public_certs"][0]["kid"], kid);

    let client = h.client();
    let (status, _, json) = body(
        client
            .get(format!("{}/cdn-cgi/access/get-identity", h.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(json["reason"], "missing_credentials");
    h.with_credentials(&client, h.secret.expose_secret())
        .send()
        .await
        .unwrap();
    let (status, _, json) = body(
        client
            .get(format!("{}/cdn-cgi/access/get-identity", h.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["common_name"], h.token.client_id);
    assert_eq!(json["service_token_id"], h.token.id);
    assert_eq!(json["service_token_status"], true);
    h.verify_seen_independently().await;
}

#[tokio::test]
async fn expiry_warning_reaches_subscribers() {
    let h = start(AppSettings::new()).await;
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

#[tokio::test]
async fn no_secret_or_token_in_logs_or_bodies() {
    let logs = fixture::captured_logs();
    let h = start(AppSettings::new().read_service_tokens_from_header("Authorization")).await;
    let plain = reqwest::Client::new();
    let mut secrets = vec![h.secret.expose_secret().to_owned()];
    let mut bodies = Vec::new();
    let mut jwts = Vec::new();

    // (The protected handler's own body echoes the token on purpose: not collected.)
    let (_, _, json) = body(
        h.with_credentials(&plain, h.secret.expose_secret())
            .send()
            .await
            .unwrap(),
    )
    .await;
    jwts.push(json["assertion"].as_str().unwrap().to_owned());
    let wrong = format!("{}x", h.secret.expose_secret());
    secrets.push(wrong.clone());
    bodies.push(
        body(h.with_credentials(&plain, &wrong).send().await.unwrap())
            .await
            .1,
    );
    let single = format!(
        r#"{{"cf-access-client-id":"{}","cf-access-client-secret":"{}"}}"#,
        h.token.client_id, wrong
    );
    bodies.push(
        body(
            plain
                .get(h.url())
                .header("Authorization", single)
                .send()
                .await
                .unwrap(),
        )
        .await
        .1,
    );
    let rotated = h
        .issuer
        .tokens()
        .rotate_secret(&h.token.client_id, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    secrets.push(rotated.expose_secret().to_owned());
    tracing::info!(secret = ?rotated, "a careless log line with the secret type");
    let status = h
        .with_credentials(&plain, rotated.expose_secret())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let mut tampered = jwts[0].clone();
    tampered.insert(30, 'x');
    bodies.push(
        body(
            plain
                .get(h.url())
                .header("cf-access-token", &tampered)
                .send()
                .await
                .unwrap(),
        )
        .await
        .1,
    );
    jwts.push(tampered);
    h.issuer.tokens().delete(&h.token.client_id).await.unwrap();
    bodies.push(
        body(
            plain
                .get(h.url())
                .header("cf-access-token", &jwts[0])
                .send()
                .await
                .unwrap(),
        )
        .await
        .1,
    );
    h.issuer.flush_last_seen().await;

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("service token created"),
        "logs were captured: {logs}"
    );
    assert!(logs.contains("ClientSecret([redacted])"));
    for secret in &secrets {
        // The random part alone, so a prefix-less echo would be caught too.
        let needle = &secret[4..40];
        assert!(!logs.contains(needle), "a secret leaked into the logs");
        for text in &bodies {
            assert!(
                !text.contains(needle),
                "a secret leaked into a body: {text}"
            );
        }
    }
    for jwt in &jwts {
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token leaked into the logs");
        for text in &bodies {
            assert!(!text.contains(signature), "a token leaked into a body");
        }
    }
}

#[test]
fn the_verify_helper_rejects_a_foreign_token() {
    // The independent check must be able to fail: a token signed by another key is refused.
    let certs = serde_json::json!({"keys": [{"kid": "k", "kty": "RSA", "alg": "RS256", "use": "sig",
        "n": "sXch3Vhj1M0qjvZTyBMGVS2h5C5Bx6CIlzN0h8eGd6ZmxmIZIPRsYxgeJdpG3fBlqj8tkvQhjWTeCxhVDTWmaB6VjnwK6cNzQXcrsiNlyyV58y-vtmjKlw8tj3-N6EOqehDv9Zmhch5CmHvVPf4QsTQIJg5pVbWUIjFgTrH8fpp2Uc3vZbFwHhEoyvUMJmKlbWlE8IyqGYMf9Ckh8eCaC5Kdr4BZwpHJszrXqnw7gvqG8ey27oGNEKgyJsnA2U9M1TQAtWS3tYEeI_q2Iey7fz0E5s-w54VIvGyAcyXb0zYR9ZdLOtN5f-hK0RWlZHkpKqGP1Bt7EckbdPoTRZ8Gaw",
        "e": "AQAB"}]});
    let forged = "eyJraWQiOiJrIiwiYWxnIjoiUlMyNTYiLCJ0eXAiOiJKV1QifQ.eyJhdWQiOiJhIn0.c2ln";
    let result = std::panic::catch_unwind(|| verify_independently(forged, &certs, "a", "i"));
    assert!(result.is_err());
}

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
    // An http issuer (development): no Secure, SameSite=Lax, whatever the client claims.
    let exchange = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("CF-Access-Client-Id", &token.client_id)
        .header("CF-Access-Client-Secret", secret.expose_secret())
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = exchange.headers()["set-cookie"].to_str().unwrap();
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
    let exchange = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("CF-Access-Client-Id", &token.client_id)
        .header("CF-Access-Client-Secret", secret.expose_secret())
        .send()
        .await
        .unwrap();
    let cookie = exchange.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("SameSite=None") && cookie.contains("; Secure"),
        "{cookie}"
    );
    let hello: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
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

#[tokio::test]
async fn scheduled_rotation_publishes_the_next_key_before_it_signs() {
    let h = start(AppSettings::new()).await;
    let plain = reqwest::Client::new();
    let kid_of_new_token = || async {
        let response = h
            .with_credentials(&plain, h.secret.expose_secret())
            .send()
            .await
            .unwrap();
        let (_, _, json) = body(response).await;
        let jwt = json["assertion"].as_str().unwrap().to_owned();
        jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap()
    };
    let certs = || async {
        let certs: Value = reqwest::get(format!("{}/cdn-cgi/access/certs", h.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<String> = certs["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        (
            kids,
            certs["public_cert"]["kid"].as_str().unwrap().to_owned(),
        )
    };
    let wait_for = |keys: usize| {
        let h = &h;
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            while h.issuer.signing_keys().len() != keys {
                assert!(Instant::now() < deadline, "ring never reached {keys} keys");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let day = 86_400;
    let first = kid_of_new_token().await;

    // Day 41: the next key is published, but the first still signs.
    h.clock.advance(Duration::from_secs(41 * day + 1));
    wait_for(2).await;
    let (kids, current) = certs().await;
    assert_eq!(kids.len(), 2);
    assert_eq!(current, first);
    let next = kids.iter().find(|k| **k != first).unwrap().clone();
    assert_eq!(kid_of_new_token().await, first, "published is not signing");

    // Day 42: the next key signs; the first stays published and accepted.
    h.clock.advance(Duration::from_secs(day));
    let deadline = Instant::now() + Duration::from_secs(5);
    while kid_of_new_token().await != next {
        assert!(
            Instant::now() < deadline,
            "the next key never started signing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (kids, current) = certs().await;
    assert_eq!((kids.len(), current.as_str()), (2, next.as_str()));

    // Tokens of both keys verify independently while both are published.
    h.verify_seen_independently().await;

    // Day 49: the first key leaves the ring.
    h.clock.advance(Duration::from_secs(7 * day));
    wait_for(1).await;
    let (kids, _) = certs().await;
    assert_eq!(kids, vec![next]);
}

#[tokio::test]
async fn two_instances_on_one_store_share_keys_tokens_and_last_use() {
    let a = start(AppSettings::new()).await;
    // A second instance on the same store: it must adopt A's keys, not generate its own.
    let b = tollgate::issue::Issuer::builder("team.example.com")
        .store(a.store.clone())
        .clock(Arc::new(a.clock.clone()))
        .poll_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    assert_eq!(a.issuer.signing_keys(), b.signing_keys());
    assert_eq!(b.certs_json(), a.issuer.certs_json());

    // A token created on B is accepted by A's app within a poll.
    let (token, secret) = b
        .tokens()
        .create("from-b", TokenDuration::default())
        .await
        .unwrap();
    let plain = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let status = plain
            .get(a.url())
            .header("CF-Access-Client-Id", &token.client_id)
            .header("CF-Access-Client-Secret", secret.expose_secret())
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not honoured within 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Last use is recorded in memory and written in a batch.
    assert_eq!(
        b.tokens().get(&token.client_id).await.unwrap().last_seen_at,
        None
    );
    a.issuer.flush_last_seen().await;
    let seen = b.tokens().get(&token.client_id).await.unwrap().last_seen_at;
    assert_eq!(seen, Some(tollgate::core::Clock::unix_now(&a.clock)));
    a.verify_seen_independently().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_rotation_on_one_instance_fails_nothing_on_another() {
    let a = start(AppSettings::new()).await;
    let b = tollgate::issue::Issuer::builder("team.example.com")
        .store(a.store.clone())
        .clock(Arc::new(a.clock.clone()))
        .poll_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let app_b = fixture::protected_app(&b, a.seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url_b = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app_b).await });

    // Exchange on one instance, ride the token on the other, both ways, while A rotates.
    let a = Arc::new(a);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (a, stop, url_b) = (a.clone(), stop.clone(), url_b.clone());
        tokio::spawn(async move {
            let plain = reqwest::Client::new();
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for (mint, ride) in [(a.url(), url_b.clone()), (url_b.clone(), a.url())] {
                    let minted = plain
                        .get(&mint)
                        .header("CF-Access-Client-Id", &a.token.client_id)
                        .header("CF-Access-Client-Secret", a.secret.expose_secret())
                        .send()
                        .await
                        .unwrap();
                    let first = minted.status().as_u16();
                    let (_, _, json) = body(minted).await;
                    let jwt = json["assertion"].as_str().unwrap_or_default().to_owned();
                    let second = plain
                        .get(&ride)
                        .header("cf-access-token", jwt)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16();
                    outcomes.push((first, second));
                }
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = a.issuer.signing_keys();
    a.issuer.rotate_keys_now().await.unwrap();
    // B loads the published key within its poll; the key signs once the lead (1 s, rounded up
    // to whole seconds) has passed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.clock.advance(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = hammer.await.unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|o| **o != (200, 200)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    let after = b.signing_keys();
    assert_eq!(after.len(), before.len() + 1);
    // Both instances now sign with the new key.
    let kid = |issuer: &tollgate::issue::Issuer| {
        let certs: Value = serde_json::from_str(&issuer.certs_json()).unwrap();
        certs["public_cert"]["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(kid(&a.issuer), after.last().unwrap().kid);
    assert_eq!(kid(&b), after.last().unwrap().kid);
    a.verify_seen_independently().await;
}
