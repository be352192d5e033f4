//! The issuer's end-to-end harness: an [`Issuer`] on a [`MemoryStore`] with a manual clock, an
//! app protected by its `ExchangeLayer` served on 127.0.0.1:0, and an independent check of every
//! token the app's handler saw (jsonwebtoken against the certs fetched over HTTP).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tollgate_core::{AccessIdentity, ManualClock};
use tollgate_issue::{
    AppSettings, ClientSecret, Issuer, MemoryStore, ServiceTokenRecord, TokenDuration,
};

use crate::http::{Reply, RequestExt as _, cookie_client, serve};
use crate::independent::verify_independently;

/// The name of the protected application in every harness.
pub const APP: &str = "api";
/// The team domain of every harness's issuer.
pub const TEAM_DOMAIN: &str = "team.example.com";
/// The `iss` of every token the harness's issuer mints.
pub const ISSUER_URL: &str = "https://team.example.com";

/// Every `Cf-Access-Jwt-Assertion` a protected handler received.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// A running issuer + protected app, with one service token (`ci-bot`).
#[derive(Debug)]
pub struct Harness {
    /// The issuer.
    pub issuer: Issuer,
    /// Its clock: advance it to expire tokens and rotate keys.
    pub clock: ManualClock,
    /// Its store (share it to make another instance).
    pub store: Arc<MemoryStore>,
    /// The protected app's origin, `http://127.0.0.1:port`.
    pub base: String,
    /// The service token created at start.
    pub token: ServiceTokenRecord,
    /// Its secret.
    pub secret: ClientSecret,
    /// Every `Cf-Access-Jwt-Assertion` the protected handler received.
    pub seen: Seen,
}

impl Harness {
    /// Starts a harness whose application has `settings`, polling the store every `poll`.
    pub async fn start_with(settings: AppSettings, poll: Duration) -> Self {
        let clock = ManualClock::new(SystemTime::now());
        let store = Arc::new(MemoryStore::new());
        let issuer = Issuer::builder(TEAM_DOMAIN)
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
        let seen = Seen::default();
        let base = serve(protected_app(&issuer, seen.clone())).await;
        Self {
            issuer,
            clock,
            store,
            base,
            token,
            secret,
            seen,
        }
    }

    /// [`Harness::start_with`] with a 50 ms poll.
    pub async fn start(settings: AppSettings) -> Self {
        Self::start_with(settings, Duration::from_millis(50)).await
    }

    /// Another instance on the same store and clock, polling every 50 ms.
    pub async fn second_instance(&self) -> Issuer {
        Issuer::builder(TEAM_DOMAIN)
            .store(self.store.clone())
            .clock(Arc::new(self.clock.clone()))
            .poll_interval(Duration::from_millis(50))
            .build()
            .await
            .unwrap()
    }

    /// Serves [`protected_app`] of `issuer` (recording into this harness's `seen`); returns its
    /// URL, with the trailing slash.
    pub async fn serve_instance(&self, issuer: &Issuer) -> String {
        format!("{}/", serve(protected_app(issuer, self.seen.clone())).await)
    }

    /// The protected URL, `http://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("{}/", self.base)
    }

    /// A URL on the app's origin.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The service token's current secret.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// A client with a cookie store, like a bot.
    pub fn client(&self) -> reqwest::Client {
        cookie_client()
    }

    /// A request to the protected URL carrying the service token's client ID and `secret`.
    pub fn with_credentials(
        &self,
        client: &reqwest::Client,
        secret: &str,
    ) -> reqwest::RequestBuilder {
        client
            .get(self.url())
            .credentials(&self.token.client_id, secret)
    }

    /// An exchange with the service token's own credentials.
    pub async fn exchange(&self, client: &reqwest::Client) -> Reply {
        self.exchange_with(client, self.secret()).await
    }

    /// An exchange with the service token's client ID and `secret`.
    pub async fn exchange_with(&self, client: &reqwest::Client, secret: &str) -> Reply {
        self.with_credentials(client, secret).reply().await
    }

    /// The protected URL with nothing added (a cookie client sends its cookie).
    pub async fn ride(&self, client: &reqwest::Client) -> Reply {
        client.get(self.url()).reply().await
    }

    /// The protected URL with `jwt` in the `cf-access-token` header.
    pub async fn with_token(&self, client: &reqwest::Client, jwt: &str) -> Reply {
        client.get(self.url()).access_token(jwt).reply().await
    }

    /// The certs document the app serves now.
    pub async fn certs(&self) -> Value {
        crate::http::certs(&self.base).await
    }

    /// Verifies every token the handler saw, independently of tollgate, against the certs
    /// served over HTTP now. Returns their claims.
    pub async fn verify_seen_independently(&self) -> Vec<Value> {
        let seen = self.seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "the handler saw no token");
        let certs = self.certs().await;
        let aud = self.issuer.app(APP).unwrap().aud;
        let unique: HashSet<String> = seen.into_iter().collect();
        unique
            .iter()
            .map(|jwt| verify_independently(jwt, &certs, &aud, ISSUER_URL))
            .collect()
    }
}

/// The protected router with the issuer's routes: `/` answers what the handler sees (the
/// identity's name, the assertion and how many there were, whether an email header or anything
/// `forged` reached it) and records the assertion in `seen`.
pub fn protected_app(issuer: &Issuer, seen: Seen) -> Router {
    let echo = move |who: AccessIdentity, headers: HeaderMap| {
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
