//! One request pipeline: the same hostile request, over real HTTP, through each of the three
//! places that read Access tokens — `VerifyLayer`, the issuer's `ExchangeLayer` and the
//! `/cdn-cgi/access/get-identity` route — gets the same answer from each. And one team domain:
//! an issuer and a remote verifier built from differently-cased spellings of it agree.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::Value;
use tollgate::AccessIdentity;
use tollgate::issue::{AppSettings, Issuer, MemoryStore};
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
    let issuer = Issuer::builder("team.example.com")
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap();
    let app = issuer
        .apps()
        .create("api", AppSettings::new())
        .await
        .unwrap();
    let (bot, secret) = issuer
        .tokens()
        .create("bot", Default::default())
        .await
        .unwrap();

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
            "401 malformed_token",
        ),
        (
            "two identical cf-access-token lines",
            vec![
                ("cf-access-token", token.clone()),
                ("cf-access-token", token.clone()),
            ],
            "401 malformed_token",
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
            "200",
        ),
        (
            "a garbage header before a good cookie",
            vec![
                ("cf-access-token", "garbage".into()),
                ("cookie", cookie(&token)),
            ],
            "401 malformed_token",
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
    let issuer = Issuer::builder(format!("http://LocalHost:{port}/"))
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap();
    assert_eq!(issuer.issuer_url(), format!("http://localhost:{port}"));
    let app = issuer
        .apps()
        .create("api", AppSettings::new())
        .await
        .unwrap();
    let (bot, secret) = issuer
        .tokens()
        .create("bot", Default::default())
        .await
        .unwrap();
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
