//! The seed-origin harness against a real certs endpoint: each of Cloudflare's two origin
//! examples lets a valid Access token in through the one place it reads it from, and refuses
//! everything else — a missing token, the token in the other place, the wrong audience,
//! issuer, signing key or lifetime. If an origin accepted a bad token these tests fail: the
//! gateway tests that use these origins mean something only if they really verify.
//!
//! Skipped loudly (`SKIPPED: … run scripts/test-deps.sh`) where the origins are not installed.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tollgate_test::claims::{AUD, service_claims, user_claims};
use tollgate_test::origins::{Counts, REQUEST_TIMEOUT, SeedKind, SeedOrigin};
use tollgate_test::{JwksServer, Reply, TestKey, keys};

const EMAIL: &str = "alice@example.com";
const USER_SUB: &str = "7335d417-61da-459d-899c-0a01c76a2f94";
const ASSERTION: &str = "Cf-Access-Jwt-Assertion";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn sign(key: &TestKey, claims: &Value) -> String {
    key.sign(&key.header(), &claims.to_string())
}

/// A certs endpoint publishing `key-a` only; the issuer is its origin, as a team domain's is.
struct Team {
    jwks: JwksServer,
}

impl Team {
    async fn start() -> Self {
        Self {
            jwks: JwksServer::start(vec![keys()[0].jwk()]).await,
        }
    }

    fn issuer(&self) -> &str {
        &self.jwks.origin
    }

    /// A user's token as Cloudflare writes it (`aud` an array, `type: "app"`), by `key-a`.
    fn user_token(&self) -> String {
        sign(
            &keys()[0],
            &user_claims(self.issuer(), EMAIL, now() - 5, 600),
        )
    }

    /// A service token as Cloudflare writes it (`common_name`, empty `sub`), by `key-a`.
    fn service_token(&self) -> String {
        sign(&keys()[0], &service_claims(self.issuer(), now() - 5, 600))
    }

    /// Tokens every origin must refuse, with what is wrong with each.
    fn bad_tokens(&self) -> Vec<(&'static str, String)> {
        let good = user_claims(self.issuer(), EMAIL, now() - 5, 600);
        let with = |field: &str, value: Value| {
            let mut claims = good.clone();
            claims[field] = value;
            claims
        };
        let other_key = &keys()[1]; // not published
        // A valid signature over the good claims, with other claims put in their place.
        let signed = sign(&keys()[0], &good);
        let parts: Vec<&str> = signed.split('.').collect();
        let altered = with("email", json!("mallory@example.com"));
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            tollgate_test::b64(altered.to_string()),
            parts[2]
        );
        vec![
            (
                "wrong audience",
                sign(&keys()[0], &with("aud", json!(["another-application"]))),
            ),
            (
                "wrong issuer",
                sign(
                    &keys()[0],
                    &with("iss", json!("https://evil.cloudflareaccess.com")),
                ),
            ),
            (
                "expired",
                sign(&keys()[0], &with("exp", json!(now() - 120))),
            ),
            ("signed by an unpublished key", sign(other_key, &good)),
            (
                "an unpublished key under a published kid",
                other_key.sign(&keys()[0].header(), &good.to_string()),
            ),
            ("payload altered after signing", forged),
            (
                "alg none",
                format!(
                    "{}.{}.",
                    tollgate_test::b64(r#"{"alg":"none","typ":"JWT"}"#),
                    tollgate_test::b64(good.to_string())
                ),
            ),
            ("not a JWT", String::from("not-a-jwt")),
        ]
    }
}

async fn get(origin: &SeedOrigin, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let mut request = client.get(format!("{}{path}", origin.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::read(request.send().await.unwrap()).await
}

fn cookie(token: &str) -> String {
    format!("CF_Authorization={token}")
}

fn header_names(reply: &Reply) -> Vec<&str> {
    reply.json["header_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_python_origin_lets_in_a_valid_cookie_and_nothing_else() {
    let team = Team::start().await;
    let Some(origin) = SeedOrigin::python_cookie(&team.jwks.certs_url(), team.issuer(), AUD) else {
        return;
    };
    assert_eq!(origin.kind(), SeedKind::PythonCookie);
    let token = team.user_token();

    let ok = get(&origin, "/some/path?x=1", &[("cookie", &cookie(&token))]).await;
    assert_eq!(ok.code(), 200, "{}", ok.text);
    assert_eq!(ok.json["sub"], USER_SUB);
    assert_eq!(ok.json["email"], EMAIL);
    assert_eq!(ok.json["common_name"], Value::Null);
    assert_eq!(ok.json["path"], "/some/path?x=1");
    assert_eq!(ok.json["method"], "GET");
    assert_eq!(ok.json["assertion_present"], false);
    assert_eq!(ok.json["assertion_matches_cookie"], false);
    assert!(header_names(&ok).contains(&"cookie"), "{}", ok.json);
    assert!(
        team.jwks.hits() >= 1,
        "the origin fetched our certs document"
    );

    // The cookie among others, with the same token in the header too.
    let both = get(
        &origin,
        "/",
        &[
            (
                "cookie",
                &format!("theme=dark; {}; lang=en", cookie(&token)),
            ),
            (ASSERTION, &token),
        ],
    )
    .await;
    assert_eq!(both.code(), 200, "{}", both.text);
    assert_eq!(both.json["assertion_present"], true);
    assert_eq!(both.json["assertion_matches_cookie"], true);
    let names = header_names(&both);
    assert!(names.contains(&"cf-access-jwt-assertion"), "{names:?}");

    let service = get(&origin, "/", &[("cookie", &cookie(&team.service_token()))]).await;
    assert_eq!(service.code(), 200, "{}", service.text);
    assert_eq!(service.json["common_name"], tollgate_test::CLIENT_ID);
    assert_eq!(service.json["sub"], "");

    assert_eq!(get(&origin, "/", &[]).await.code(), 403, "no cookie");
    assert_eq!(
        get(&origin, "/", &[(ASSERTION, &token)]).await.code(),
        403,
        "the Python example reads the cookie only"
    );
    assert_eq!(
        get(&origin, "/", &[("cookie", "CF_Authorization=")])
            .await
            .code(),
        403,
        "an empty cookie"
    );
    for (what, bad) in team.bad_tokens() {
        let reply = get(&origin, "/", &[("cookie", &cookie(&bad))]).await;
        assert_eq!(reply.code(), 403, "{what}: {}", reply.text);
    }

    let bad = u64::try_from(team.bad_tokens().len()).unwrap();
    assert_eq!(
        origin.counts().await,
        Counts {
            requests: 3 + 3 + bad,
            verified: 3
        }
    );
}

#[tokio::test]
async fn the_go_origin_lets_in_a_valid_assertion_header_and_nothing_else() {
    let team = Team::start().await;
    let Some(origin) = SeedOrigin::go_oidc(&team.jwks.certs_url(), team.issuer(), AUD) else {
        return;
    };
    assert_eq!(origin.kind(), SeedKind::GoOidc);
    let token = team.user_token();

    let ok = get(&origin, "/some/path?x=1", &[(ASSERTION, &token)]).await;
    assert_eq!(ok.code(), 200, "{}", ok.text);
    assert_eq!(ok.json["sub"], USER_SUB);
    assert_eq!(ok.json["email"], EMAIL);
    assert_eq!(ok.json["common_name"], Value::Null);
    assert_eq!(ok.json["path"], "/some/path?x=1");
    assert_eq!(ok.json["assertion_present"], true);
    assert_eq!(ok.json["assertion_matches_cookie"], false);
    let names = header_names(&ok);
    assert!(names.contains(&"cf-access-jwt-assertion"), "{names:?}");
    assert!(names.contains(&"host"), "{names:?}");
    assert!(
        team.jwks.hits() >= 1,
        "the origin fetched our certs document"
    );

    let both = get(
        &origin,
        "/",
        &[(ASSERTION, &token), ("cookie", &cookie(&token))],
    )
    .await;
    assert_eq!(both.code(), 200, "{}", both.text);
    assert_eq!(both.json["assertion_matches_cookie"], true);

    let service = get(&origin, "/", &[(ASSERTION, &team.service_token())]).await;
    assert_eq!(service.code(), 200, "{}", service.text);
    assert_eq!(service.json["common_name"], tollgate_test::CLIENT_ID);

    assert_eq!(get(&origin, "/", &[]).await.code(), 403, "no header");
    assert_eq!(
        get(&origin, "/", &[("cookie", &cookie(&token))])
            .await
            .code(),
        403,
        "the Go example reads the header only"
    );
    for (what, bad) in team.bad_tokens() {
        let reply = get(&origin, "/", &[(ASSERTION, &bad)]).await;
        assert_eq!(reply.code(), 403, "{what}: {}", reply.text);
    }

    let bad = u64::try_from(team.bad_tokens().len()).unwrap();
    assert_eq!(
        origin.counts().await,
        Counts {
            requests: 3 + 2 + bad,
            verified: 3
        }
    );
}

#[tokio::test]
async fn a_dropped_origin_is_killed_and_reaped() {
    let team = Team::start().await;
    let origins = [
        SeedOrigin::python_cookie(&team.jwks.certs_url(), team.issuer(), AUD),
        SeedOrigin::go_oidc(&team.jwks.certs_url(), team.issuer(), AUD),
    ];
    for mut origin in origins.into_iter().flatten() {
        assert!(origin.is_running());
        let (pid, addr) = (origin.id(), origin.addr);
        drop(origin);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is gone, not a zombie"
        );
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "nothing listens on {addr} any more"
        );
    }
}
