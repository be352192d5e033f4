//! Loopback HTTP: serving a router on 127.0.0.1:0, and the client side of tests (credential
//! headers, replies read whole, cookies, polling until something happens).

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

/// The header carrying a service token's client ID.
pub const CLIENT_ID_HEADER: &str = "CF-Access-Client-Id";
/// The header carrying a service token's client secret.
pub const CLIENT_SECRET_HEADER: &str = "CF-Access-Client-Secret";
/// The header carrying an application token (Cloudflare's `cf-access-token`).
pub const ACCESS_TOKEN_HEADER: &str = "cf-access-token";
/// The path of the certs (JWKS) document.
pub const CERTS_PATH: &str = "/cdn-cgi/access/certs";

/// Serves `app` on 127.0.0.1:0 in a background task; returns its origin (`http://127.0.0.1:port`,
/// no trailing slash) and the task.
pub async fn serve_task(app: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, task)
}

/// Serves `app` on 127.0.0.1:0 for the rest of the test; returns its origin
/// (`http://127.0.0.1:port`, no trailing slash).
pub async fn serve(app: Router) -> String {
    serve_task(app).await.0
}

/// A response read whole: status, headers, body text, and the body as JSON (`Null` when it is
/// not JSON).
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub text: String,
    /// The body as JSON, `Null` if it is not JSON.
    pub json: Value,
}

impl Reply {
    /// Reads `response` whole.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    /// The status as a number.
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    /// The `reason` of a JSON refusal.
    pub fn reason(&self) -> Option<&str> {
        self.json["reason"].as_str()
    }

    /// `(status, reason)`, for asserting a refusal in one line.
    pub fn refusal(&self) -> (u16, Option<&str>) {
        (self.code(), self.reason())
    }

    /// The one `Set-Cookie` header, if any.
    pub fn set_cookie(&self) -> Option<&str> {
        self.headers
            .get("set-cookie")
            .map(|value| value.to_str().unwrap())
    }

    /// The `name=value` pair of the `Set-Cookie` header, without its attributes.
    pub fn cookie_pair(&self) -> Option<&str> {
        self.set_cookie()
            .map(|cookie| cookie.split(';').next().unwrap())
    }

    /// The application token in a `CF_Authorization` cookie set by this response.
    pub fn cookie_token(&self) -> Option<&str> {
        self.cookie_pair()
            .and_then(|pair| pair.strip_prefix("CF_Authorization="))
    }
}

/// Sending requests the way tests do.
pub trait RequestExt: Sized {
    /// Adds a service token's two credential headers.
    fn credentials(self, client_id: &str, secret: &str) -> Self;
    /// Adds an application token in the `cf-access-token` header.
    fn access_token(self, jwt: &str) -> Self;
    /// Sends the request and reads the response whole.
    fn reply(self) -> impl Future<Output = Reply> + Send;
    /// Sends the request; returns only the status (the body is not read).
    fn send_status(self) -> impl Future<Output = StatusCode> + Send;
}

impl RequestExt for RequestBuilder {
    fn credentials(self, client_id: &str, secret: &str) -> Self {
        self.header(CLIENT_ID_HEADER, client_id)
            .header(CLIENT_SECRET_HEADER, secret)
    }

    fn access_token(self, jwt: &str) -> Self {
        self.header(ACCESS_TOKEN_HEADER, jwt)
    }

    async fn reply(self) -> Reply {
        Reply::read(self.send().await.unwrap()).await
    }

    async fn send_status(self) -> StatusCode {
        self.send().await.unwrap().status()
    }
}

/// Both credentials as the JSON one header holds in Cloudflare's single-header mode.
pub fn single_header_credentials(client_id: &str, secret: &str) -> String {
    format!(r#"{{"cf-access-client-id":"{client_id}","cf-access-client-secret":"{secret}"}}"#)
}

/// A client with a cookie store, like a bot or a browser.
#[cfg(feature = "cookies")]
pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The certs document served at `origin`.
pub async fn certs(origin: &str) -> Value {
    reqwest::get(format!("{origin}{CERTS_PATH}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The kids a certs document publishes, in order.
pub fn published_kids(certs: &Value) -> Vec<String> {
    certs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The kid of the key a certs document names as signing (`public_cert`).
pub fn signing_kid(certs: &Value) -> String {
    certs["public_cert"]["kid"].as_str().unwrap().to_owned()
}

/// Calls `check` every 20 ms until it answers `true`; panics with `what` if that takes longer
/// than `within`. Returns how long it took.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what} (waited {within:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until GET `url` answers `status`; panics after `within`. Returns how long it took.
pub async fn wait_for_status(
    client: &reqwest::Client,
    url: &str,
    status: u16,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = client.get(url).send_status().await.as_u16();
        if got == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still {got} after {within:?}, wanted {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Exchanges credentials on `exchange_at`, then rides the cookie it set on `reuse_at` (sent by
/// hand, so the two may be different hosts); returns the two statuses (0 for the second when no
/// cookie was set).
pub async fn exchange_then_reuse(
    exchange_at: &str,
    reuse_at: &str,
    client_id: &str,
    secret: &str,
) -> (u16, u16) {
    let client = reqwest::Client::new();
    let exchange = client
        .get(exchange_at)
        .credentials(client_id, secret)
        .reply()
        .await;
    let Some(pair) = exchange.cookie_pair() else {
        return (exchange.code(), 0);
    };
    let second = client
        .get(reuse_at)
        .header("cookie", pair)
        .send_status()
        .await;
    (exchange.code(), second.as_u16())
}
