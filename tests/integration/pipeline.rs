//! One request pipeline: the same hostile request, over real HTTP, through each of the three
//! places that read Access tokens — `VerifyLayer`, the issuer's `ExchangeLayer` and the
//! `/cdn-cgi/access/get-identity` route — gets the same answer from each; credentials are never
//! ambiguous and never reach the inner service. And one team domain:
//! an issuer and a remote verifier built from differently-cased spellings of it agree.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::Value;
use tollgate::AccessIdentity;
use tollgate::issue::{
    AppSettings, ApplicationRecord, ClientSecret, Issuer, MemoryStore, ServiceTokenRecord,
};
use tollgate::verify::layer::TokenLocation;
use tollgate::verify::{Verifier, VerifyLayer};

/// What the protected handler answers: the identity, and any e-mail header it was handed.
async fn echo(who: AccessIdentity, headers: HeaderMap) -> String {
    let email = headers
        .get("cf-access-authenticated-user-email")
        .map_or("none", |v| v.to_str().unwrap_or("?"));
    format!("{} {email}", who.name())
}

/// Exchanges the bot's credentials at `url` and answers the minted token from the cookie.
async fn exchange_at(client: &reqwest::Client, url: &str, client_id: &str, secret: &str) -> String {
    let response = client
        .get(url)
        .header("CF-Access-Client-Id", client_id)
        .header("CF-Access-Client-Secret", secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let token = cookie.split(';').next().unwrap();
    token.trim_start_matches("CF_Authorization=").to_owned()
}

/// An issuer on a fresh memory store for `team_domain`, its application `api` with
/// `settings`, and a service token named `bot`.
async fn issuer_with(
    team_domain: &str,
    settings: AppSettings,
) -> (Issuer, ApplicationRecord, ServiceTokenRecord, ClientSecret) {
    let issuer = Issuer::builder(team_domain)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap();
    let app = issuer.apps().create("api", settings).await.unwrap();
    let (bot, secret) = issuer
        .tokens()
        .create("bot", Default::default())
        .await
        .unwrap();
    (issuer, app, bot, secret)
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

struct Stacks {
    /// `/` behind `VerifyLayer` (in-process keys), `/` behind `ExchangeLayer`, get-identity.
    urls: [(&'static str, String); 3],
    token: String,
    client: reqwest::Client,
}

async fn stacks() -> Stacks {
    let (issuer, app, bot, secret) = issuer_with("team.example.com", AppSettings::new()).await;

    let verify = Router::new()
        .route("/", get(echo))
        .layer(VerifyLayer::new(issuer.verifier(&app.aud).unwrap()));
    let exchange = Router::new()
        .route("/", get(echo))
        .layer(issuer.exchange_layer("api").unwrap());
    let verify = serve(verify).await;
    let exchange = serve(exchange).await;
    let identity = format!(
        "{}/cdn-cgi/access/get-identity",
        serve(issuer.routes()).await
    );

    let client = reqwest::Client::new();
    let token = exchange_at(&client, &exchange, &bot.client_id, secret.expose_secret()).await;
    Stacks {
        urls: [
            ("verify", verify),
            ("exchange", exchange),
            ("get-identity", identity),
        ],
        token,
        client,
    }
}

/// The status and, for refusals, the machine-readable reason.
async fn outcome(client: &reqwest::Client, url: &str, headers: &[(&str, String)]) -> String {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, value); // appends: repeated names become repeated lines
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    match serde_json::from_str::<Value>(&body) {
        Ok(json) if status != 200 => format!("{status} {}", json["reason"].as_str().unwrap_or("")),
        _ => status.to_string(),
    }
}

/// What a case is, the headers it sends (in order, repeats kept), the outcome expected of all.
type Case = (&'static str, Vec<(&'static str, String)>, &'static str);

#[tokio::test]
async fn the_same_hostile_request_gets_the_same_answer_everywhere() {
    let stacks = stacks().await;
    let token = stacks.token.clone();
    let cookie = |value: &str| format!("CF_Authorization={value}");
    // One signature character changed, well inside the last segment (strict base64 stays valid).
    let mut tampered = token.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases: Vec<Case> = vec![
        (
            "the token alone",
            vec![("cf-access-token", token.clone())],
            "200",
        ),
        (
            "two cf-access-token lines, one garbage",
            vec![
                ("cf-access-token", token.clone()),
                ("cf-access-token", "garbage".into()),
            ],
            "401 ambiguous_credentials",
        ),
        (
            "two identical cf-access-token lines",
            vec![
                ("cf-access-token", token.clone()),
                ("cf-access-token", token.clone()),
            ],
            "200",
        ),
        (
            "the same token as header and cookie",
            vec![
                ("cf-access-token", token.clone()),
                ("cookie", cookie(&token)),
            ],
            "200",
        ),
        (
            "two different CF_Authorization cookies",
            vec![("cookie", format!("{}; {}", cookie(&token), cookie("other")))],
            "401 ambiguous_credentials",
        ),
        (
            "two Cookie lines with different tokens",
            vec![("cookie", cookie("other")), ("cookie", cookie(&token))],
            "401 ambiguous_credentials",
        ),
        (
            "an empty cf-access-token and a good cookie",
            vec![
                ("cf-access-token", String::new()),
                ("cookie", cookie(&token)),
            ],
            "200",
        ),
        (
            "an empty CF_Authorization before the real one",
            vec![(
                "cookie",
                format!("CF_Authorization=; theme=dark; {}", cookie(&token)),
            )],
            "200",
        ),
        (
            "the cookie on a second Cookie line",
            vec![("cookie", "theme=dark".into()), ("cookie", cookie(&token))],
            "200",
        ),
        (
            "a quoted cookie value",
            vec![("cookie", cookie(&format!("\"{token}\"")))],
            "200",
        ),
        (
            "a good header before a garbage cookie",
            vec![
                ("cf-access-token", token.clone()),
                ("cookie", cookie("garbage")),
            ],
            "401 ambiguous_credentials",
        ),
        (
            "a garbage header before a good cookie",
            vec![
                ("cf-access-token", "garbage".into()),
                ("cookie", cookie(&token)),
            ],
            "401 ambiguous_credentials",
        ),
        (
            "a tampered signature",
            vec![("cf-access-token", tampered)],
            "401 invalid_signature",
        ),
        (
            "a signature with a byte too many",
            vec![("cf-access-token", format!("{token}x"))],
            "401 malformed_token",
        ),
        (
            "nothing but a forged e-mail",
            vec![(
                "cf-access-authenticated-user-email",
                "admin@example.com".into(),
            )],
            "401 missing_credentials",
        ),
    ];
    for (what, headers, expected) in &cases {
        for (stack, url) in &stacks.urls {
            let got = outcome(&stacks.client, url, headers).await;
            assert_eq!(&got, expected, "{what}, through {stack}");
        }
    }
}

#[tokio::test]
async fn forged_identity_headers_never_reach_the_inner_service() {
    let stacks = stacks().await;
    for (stack, url) in &stacks.urls[..2] {
        let body = stacks
            .client
            .get(url)
            .header("cf-access-token", &stacks.token)
            .header("Cf-Access-Authenticated-User-Email", "admin@example.com")
            .header("cf_access_authenticated_user_email", "root@example.com")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.ends_with(" none"), "{stack}: {body}");
    }
}

/// Before `TeamDomain`, the issuer kept the case it was given (`iss` = `http://LOCALHOST:…`) and
/// the verifier lowercased it, so every token was refused as `wrong_issuer`.
#[tokio::test]
async fn an_issuer_and_a_remote_verifier_agree_on_any_spelling_of_the_team_domain() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spelling = format!("http://LocalHost:{port}/");
    let (issuer, app, bot, secret) = issuer_with(&spelling, AppSettings::new()).await;
    let router = Router::new()
        .route("/", get(echo))
        .layer(issuer.exchange_layer("api").unwrap())
        .merge(issuer.routes());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let url = format!("http://127.0.0.1:{port}/");
    let token = exchange_at(
        &reqwest::Client::new(),
        &url,
        &bot.client_id,
        secret.expose_secret(),
    )
    .await;
    let token = token.as_str();

    for spelling in [
        format!("http://localhost:{port}"),
        format!("http://LOCALHOST:{port}/"),
        format!("HTTP://Localhost:{port}"),
    ] {
        // Keys over real HTTP from the issuer's certs endpoint.
        let verifier = Verifier::for_team_domain(&spelling, app.aud.clone()).unwrap();
        let identity = verifier
            .verify(token)
            .await
            .unwrap_or_else(|r| panic!("{spelling}: {r}"));
        assert_eq!(identity.client_id(), Some(bot.client_id.as_str()));
        assert_eq!(identity.issuer(), issuer.issuer_url());
    }
}

/// What the inner service of a single-header application saw: the token it was handed as the
/// assertion and as the cookie, and whether any credential header reached it.
async fn inner_view(headers: HeaderMap) -> String {
    let credential = [
        "cf-access-client-id",
        "cf-access-client-secret",
        "authorization",
    ]
    .iter()
    .any(|name| headers.contains_key(*name));
    let assertion = headers
        .get("cf-access-jwt-assertion")
        .map_or("", |v| v.to_str().unwrap_or("?"));
    let cookie = headers
        .get("cookie")
        .map_or("", |v| v.to_str().unwrap_or("?"));
    serde_json::json!({"credential": credential, "assertion": assertion, "cookie": cookie})
        .to_string()
}

#[tokio::test]
async fn credentials_are_never_ambiguous_and_never_forwarded() {
    let settings = AppSettings::new().read_service_tokens_from_header("Authorization");
    let (issuer, _, bot, secret) = issuer_with("team.example.com", settings).await;
    let (other, other_secret) = issuer
        .tokens()
        .create("other", Default::default())
        .await
        .unwrap();
    let url = serve(
        Router::new()
            .route("/", get(inner_view))
            .layer(issuer.exchange_layer("api").unwrap()),
    )
    .await;
    let client = reqwest::Client::new();
    let json = |id: &str, secret: &str| {
        serde_json::json!({"cf-access-client-id": id, "cf-access-client-secret": secret})
            .to_string()
    };
    let pair = |id: &str, secret: &str| {
        vec![
            ("cf-access-client-id", id.to_owned()),
            ("cf-access-client-secret", secret.to_owned()),
        ]
    };
    let secret = secret.expose_secret();
    let other_secret = other_secret.expose_secret();

    let refused: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("two client IDs", {
            let mut h = pair(&bot.client_id, secret);
            h.push(("cf-access-client-id", other.client_id.clone()));
            h
        }),
        ("two secrets", {
            let mut h = pair(&bot.client_id, secret);
            h.push(("cf-access-client-secret", "tgs_wrong".into()));
            h
        }),
        ("the pair and the single header name different clients", {
            let mut h = pair(&bot.client_id, secret);
            h.push(("authorization", json(&other.client_id, other_secret)));
            h
        }),
        ("the same client with two secrets", {
            let mut h = pair(&bot.client_id, secret);
            h.push(("authorization", json(&bot.client_id, "tgs_wrong")));
            h
        }),
        (
            "two different single headers",
            vec![
                ("authorization", json(&bot.client_id, secret)),
                ("authorization", json(&other.client_id, other_secret)),
            ],
        ),
    ];
    for (what, headers) in &refused {
        assert_eq!(
            outcome(&client, &url, headers).await,
            "401 ambiguous_credentials",
            "{what}"
        );
    }
    let too_big = format!(
        r#"{{"cf-access-client-id":"{}","cf-access-client-secret":"{secret}","pad":"{}"}}"#,
        bot.client_id,
        "x".repeat(4096)
    );
    assert_eq!(
        outcome(&client, &url, &[("authorization", too_big)]).await,
        "401 invalid_credentials"
    );

    // Accepted once: the same client in both places, and credentials beside a stale cookie. The
    // inner service sees the freshly minted token only, as the assertion and as the cookie, and
    // no credential header.
    let mut both = pair(&bot.client_id, secret);
    both.push(("authorization", json(&bot.client_id, secret)));
    both.push(("cookie", "theme=dark; CF_Authorization=stale".into()));
    both.push(("cf-access-token", "stale".into()));
    let mut request = client.get(&url);
    for (name, value) in &both {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let minted = response.headers()["set-cookie"].to_str().unwrap();
    let minted = minted
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("CF_Authorization=")
        .to_owned();
    let seen: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(seen["credential"], false, "{seen}");
    assert_eq!(seen["assertion"], minted.as_str());
    assert_eq!(
        seen["cookie"],
        format!("theme=dark; CF_Authorization={minted}")
    );
}

/// What a token-reading inner service saw of the token locations.
async fn token_view(headers: HeaderMap) -> String {
    let token = headers
        .get("cf-access-token")
        .map_or("", |v| v.to_str().unwrap_or("?"));
    let cookie = headers
        .get("cookie")
        .map_or("", |v| v.to_str().unwrap_or("?"));
    format!("token={token} cookie={cookie}")
}

#[tokio::test]
async fn a_verifier_reading_one_location_ignores_and_strips_the_others() {
    let (issuer, app, bot, secret) = issuer_with("team.example.com", AppSettings::new()).await;
    let exchange = serve(
        Router::new()
            .route("/", get(echo))
            .layer(issuer.exchange_layer("api").unwrap()),
    )
    .await;
    let client = reqwest::Client::new();
    let token = exchange_at(&client, &exchange, &bot.client_id, secret.expose_secret()).await;
    // Behind Cloudflare: only the assertion header the edge sets is read.
    let layer = VerifyLayer::new(issuer.verifier(&app.aud).unwrap())
        .with_token_order([TokenLocation::JwtAssertionHeader])
        .unwrap();
    let url = serve(Router::new().route("/", get(token_view)).layer(layer)).await;
    let response = client
        .get(&url)
        .header("cf-access-jwt-assertion", &token)
        .header("cf-access-token", "garbage")
        .header("cookie", "theme=dark; CF_Authorization=garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "token= cookie=theme=dark");
}
