//! The tokens tollgate mints pass Cloudflare's own origin examples unchanged: the
//! `CF_Authorization` cookie the `ExchangeLayer` sets verifies in the Python example (PyJWT),
//! and the `Cf-Access-Jwt-Assertion` it forwards in the Go example (go-oidc), each fetching
//! the keys from tollgate's `/cdn-cgi/access/certs` — across a key rotation too, where go-oidc
//! must find the new kid by refetching.
//!
//! Skipped loudly (`SKIPPED: … run scripts/test-deps.sh`) where the origins are not installed.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tollgate::issue::AppSettings;
use tollgate_test::http::{CERTS_PATH, RequestExt as _};
use tollgate_test::independent::kid;
use tollgate_test::issue::{APP, Harness, ISSUER_URL};
use tollgate_test::origins::{REQUEST_TIMEOUT, SeedOrigin};
use tollgate_test::{Reply, skipped};

/// A fresh exchange: the token of the cookie set, and the assertion the app was handed.
async fn exchange(h: &Harness) -> (String, String) {
    let reply = h.exchange(&reqwest::Client::new()).await;
    assert_eq!(reply.code(), 200, "{}", reply.text);
    let cookie = reply.cookie_token().unwrap().to_owned();
    let assertion = reply.json["assertion"].as_str().unwrap().to_owned();
    (cookie, assertion)
}

async fn get(origin: &SeedOrigin, header: (&str, &str)) -> Reply {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
        .get(format!("{}/", origin.url()))
        .header(header.0, header.1)
        .reply()
        .await
}

#[tokio::test]
async fn tollgate_tokens_pass_cloudflares_python_and_go_examples_across_a_key_rotation() {
    let h = Harness::start(AppSettings::new()).await;
    let aud = h.issuer.app(APP).unwrap().aud;
    let certs = format!("{}{CERTS_PATH}", h.base);
    let python = SeedOrigin::python_cookie(&certs, ISSUER_URL, &aud);
    let go = SeedOrigin::go_oidc(&certs, ISSUER_URL, &aud);
    if python.is_none() && go.is_none() {
        return;
    }

    let (cookie, assertion) = exchange(&h).await;
    assert_eq!(cookie, assertion, "the cookie's token is the one forwarded");
    let check = |cookie: String, assertion: String| {
        let (python, go) = (&python, &go);
        let client_id = h.token.client_id.clone();
        async move {
            if let Some(python) = python {
                let seen = get(python, ("cookie", &format!("CF_Authorization={cookie}"))).await;
                assert_eq!(
                    seen.code(),
                    200,
                    "PyJWT refused tollgate's cookie: {}",
                    seen.text
                );
                assert_eq!(seen.json["common_name"], client_id.as_str());
            }
            if let Some(go) = go {
                let seen = get(go, ("Cf-Access-Jwt-Assertion", &assertion)).await;
                assert_eq!(
                    seen.code(),
                    200,
                    "go-oidc refused tollgate's assertion: {}",
                    seen.text
                );
                assert_eq!(seen.json["common_name"], client_id.as_str());
            }
        }
    };
    check(cookie.clone(), assertion).await;

    // A rotation: the new key signs after its lead (advanced on the manual clock); real time
    // catches up with the manual clock before the next exchange, since PyJWT refuses an `iat`
    // in the future.
    h.issuer.rotate_keys_now().await.unwrap();
    h.clock.advance(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (rotated, rotated_assertion) = exchange(&h).await;
    if kid(&rotated) == kid(&cookie) {
        skipped("the rotated key did not sign yet; the rotation half did not run");
        return;
    }
    // The Python example fetches the keys on every request; a go-oidc started now fetches
    // them on its first.
    let fresh_go = go
        .as_ref()
        .and_then(|_| SeedOrigin::go_oidc(&certs, ISSUER_URL, &aud));
    let check_fresh = |cookie: String, assertion: String| {
        let (python, go) = (&python, &fresh_go);
        async move {
            if let Some(python) = python {
                let seen = get(python, ("cookie", &format!("CF_Authorization={cookie}"))).await;
                assert_eq!(seen.code(), 200, "PyJWT after the rotation: {}", seen.text);
            }
            if let Some(go) = go {
                let seen = get(go, ("Cf-Access-Jwt-Assertion", &assertion)).await;
                assert_eq!(
                    seen.code(),
                    200,
                    "a fresh go-oidc after the rotation: {}",
                    seen.text
                );
            }
        }
    };
    check_fresh(rotated.clone(), rotated_assertion.clone()).await;

    // KNOWN GAP, pinned so that it is seen: go-oidc v2.1.0 (Debian's, the version of
    // Cloudflare's example) refetches the certs for an unknown kid only once its cached copy has
    // expired, and tollgate's certs say `max-age=300`; `rotate_keys_now` lets the new key sign
    // about two seconds after publishing it. So a go-oidc origin that fetched the keys in the
    // last five minutes refuses the new key's tokens until its copy expires. (Scheduled
    // rotations publish the next key a day ahead and are not affected.) When a manual rotation
    // waits out the certs' max-age, or the max-age shrinks, this assertion flips: make it 200.
    if let Some(go) = &go {
        let seen = get(go, ("Cf-Access-Jwt-Assertion", &rotated_assertion)).await;
        assert_eq!(
            seen.code(),
            403,
            "go-oidc with the keys cached before the rotation now accepts the new key: the gap \
             is closed, turn this into a 200 check"
        );
        assert!(seen.text.contains("failed to verify"), "{}", seen.text);
    }
}
