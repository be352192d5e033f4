//! Shared fixtures for the issuer's end-to-end tests: an issuer on a [`MemoryStore`] with a
//! manual clock, an app protected by its `ExchangeLayer` served on 127.0.0.1:0, and an
//! independent check of every token the app's handler saw (jsonwebtoken against the certs
//! fetched over HTTP).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tollgate::core::{AccessIdentity, ManualClock};
use tollgate::issue::{
    AppSettings, ClientSecret, Issuer, MemoryStore, ServiceTokenRecord, TokenDuration,
};

/// The name of the protected application in every fixture.
pub const APP: &str = "api";

/// A running issuer + protected app.
pub struct Harness {
    pub issuer: Issuer,
    pub clock: ManualClock,
    pub store: Arc<MemoryStore>,
    pub base: String,
    pub token: ServiceTokenRecord,
    pub secret: ClientSecret,
    /// Every `Cf-Access-Jwt-Assertion` the protected handler received.
    pub seen: Arc<Mutex<Vec<String>>>,
}

/// Every log line of this test binary, at TRACE level: a global subscriber writing into a
/// buffer, installed before the first harness starts (a thread-local one would miss events from
/// server tasks on other threads, and interest caching across tests makes it flaky).
pub fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(Captured(buffer.clone()))
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Starts a harness whose application has `settings`, polling the store every `poll`.
pub async fn start_with(settings: AppSettings, poll: Duration) -> Harness {
    captured_logs();
    let clock = ManualClock::new(SystemTime::now());
    let store = Arc::new(MemoryStore::new());
    let issuer = Issuer::builder("team.example.com")
        .store(store.clone())
        .clock(Arc::new(clock.clone()))
        .poll_interval(poll)
        .build()
        .await
        .unwrap();
    issuer.apps().create(APP, settings).await.unwrap();
    let (token, secret) = issuer
        .tokens()
        .create("ci-bot", TokenDuration::default())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = protected_app(&issuer, seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness {
        issuer,
        clock,
        store,
        base,
        token,
        secret,
        seen,
    }
}

/// [`start_with`] with a 50 ms poll.
pub async fn start(settings: AppSettings) -> Harness {
    start_with(settings, Duration::from_millis(50)).await
}

/// The protected router: `/` echoes what the handler sees.
pub fn protected_app(issuer: &Issuer, seen: Arc<Mutex<Vec<String>>>) -> Router {
    let echo = move |Extension(who): Extension<AccessIdentity>, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let assertion = headers
                .get("cf-access-jwt-assertion")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(jwt) = &assertion {
                seen.lock().unwrap().push(jwt.clone());
            }
            let forged = headers
                .iter()
                .any(|(_, v)| v.as_bytes().windows(6).any(|w| w == b"forged"));
            Json(json!({
                "name": who.name(),
                "assertion": assertion,
                "assertions": headers.get_all("cf-access-jwt-assertion").iter().count(),
                "email_header": headers.contains_key("cf-access-authenticated-user-email")
                    || headers.contains_key("cf_access_authenticated_user_email"),
                "forged_seen": forged,
            }))
        }
    };
    Router::new()
        .route("/", get(echo))
        .layer(issuer.exchange_layer(APP).unwrap())
        .merge(issuer.routes())
}

impl Harness {
    pub fn url(&self) -> String {
        format!("{}/", self.base)
    }

    /// A client with a cookie store, like a bot.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap()
    }

    /// A request carrying the service-token headers.
    pub fn with_credentials(
        &self,
        client: &reqwest::Client,
        secret: &str,
    ) -> reqwest::RequestBuilder {
        client
            .get(self.url())
            .header("CF-Access-Client-Id", &self.token.client_id)
            .header("CF-Access-Client-Secret", secret)
    }

    /// Verifies every token the handler saw, independently of tollgate, against the certs
    /// served over HTTP now. Returns their claims.
    pub async fn verify_seen_independently(&self) -> Vec<Value> {
        let seen = self.seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "the handler saw no token");
        let certs: Value = reqwest::get(format!("{}/cdn-cgi/access/certs", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let aud = self.issuer.app(APP).unwrap().aud;
        let unique: HashSet<String> = seen.into_iter().collect();
        unique
            .iter()
            .map(|jwt| verify_independently(jwt, &certs, &aud, "https://team.example.com"))
            .collect()
    }
}

/// Checks a token with jsonwebtoken directly against a certs document (JWK `n`/`e`), and its
/// header and claims against Cloudflare's exact shape. Returns the claims.
pub fn verify_independently(jwt: &str, certs: &Value, aud: &str, iss: &str) -> Value {
    // Header: exactly {"kid","alg":"RS256","typ":"JWT"} in Cloudflare's order.
    let header_b64 = jwt.split('.').next().unwrap();
    let header_json = String::from_utf8(URL_SAFE_NO_PAD.decode(header_b64).unwrap()).unwrap();
    let header: Value = serde_json::from_str(&header_json).unwrap();
    let kid = header["kid"].as_str().unwrap();
    assert_eq!(
        header_json,
        format!(r#"{{"kid":"{kid}","alg":"RS256","typ":"JWT"}}"#)
    );
    let jwk = certs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not published"));
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["alg"].as_str(),
            jwk["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[iss]);
    // The fixture's clock may run ahead of the system clock: check exp by hand below.
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("independent verification failed: {e}"));
    let claims = data.claims;
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["aud", "common_name", "exp", "iat", "iss", "sub", "type"]
    );
    assert_eq!(claims["type"], "app");
    assert_eq!(
        claims["aud"], aud,
        "aud is a plain string for service tokens"
    );
    assert_eq!(claims["sub"], "");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    claims
}

/// Reads a JSON body, keeping its text too.
pub async fn body(response: reqwest::Response) -> (reqwest::StatusCode, String, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, text, json)
}
