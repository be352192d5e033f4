//! A webhook receiver on 127.0.0.1:0 that records every request, checks its signature with
//! an implementation of its own (the `hmac` and `sha2` crates, not tollgate's aws-lc code),
//! and answers statuses a test scripts (`500` twice, then `200`, …).
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use tollgate_test::webhook::WebhookReceiver;
//!
//! let receiver = WebhookReceiver::start("0123456789abcdef").await;
//! receiver.answer_next(&[503, 503]); // then 200
//! // … point a notifier at receiver.url() …
//! let delivered = receiver.wait_for_delivered(1, Duration::from_secs(10)).await;
//! assert!(delivered[0].signature_ok);
//! # }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::http::{serve, wait_until};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// The body as JSON (`Null` if it is not).
    pub json: Value,
    /// The status the receiver answered.
    pub answered: u16,
    /// Whether `Tollgate-Signature` is a valid `v1=` HMAC-SHA256 of `"<Tollgate-Timestamp>.<body>"`
    /// under the receiver's secret, with a timestamp within 5 minutes of now.
    pub signature_ok: bool,
}

impl Received {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The event's kind (`type` in the body).
    pub fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<u16>,
}

#[derive(Clone)]
struct Shared {
    secret: Arc<Vec<u8>>,
    inner: Arc<Mutex<Inner>>,
}

/// The receiver; it serves until the test ends.
#[derive(Clone)]
pub struct WebhookReceiver {
    url: String,
    shared: Shared,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn signature_ok(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) =
        (text("tollgate-timestamp"), text("tollgate-signature"))
    else {
        return false;
    };
    let Ok(at) = timestamp.parse::<u64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(at) > 300 {
        return false;
    }
    let Some(tag) = signature.strip_prefix("v1=").and_then(hex_decode) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature_ok = signature_ok(&shared.secret, &headers, &body);
    let mut inner = shared.inner.lock().unwrap_or_else(PoisonError::into_inner);
    let answered = inner.script.pop_front().unwrap_or(200);
    inner.received.push(Received {
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
        body,
        answered,
        signature_ok,
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::OK)
}

impl WebhookReceiver {
    /// Starts a receiver checking signatures against `secret`; it answers `POST` on any path
    /// with 200 unless [`answer_next`](Self::answer_next) scripted otherwise.
    pub async fn start(secret: impl AsRef<[u8]>) -> Self {
        let shared = Shared {
            secret: Arc::new(secret.as_ref().to_vec()),
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/{*path}", post(receive))
            .route("/", post(receive))
            .with_state(shared.clone());
        let origin = serve(app).await;
        Self {
            url: format!("{origin}/hooks/tollgate"),
            shared,
        }
    }

    /// Where to post.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next requests with these statuses, in order (then 200 again).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.lock().script.extend(statuses.iter().copied());
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The requests answered with a 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits (up to `within`, else panics) until at least `n` requests were answered with a
    /// 2xx; returns them.
    pub async fn wait_for_delivered(&self, n: usize, within: Duration) -> Vec<Received> {
        let what = format!("{n} webhook deliveries");
        wait_until(within, &what, || async { self.delivered().len() >= n }).await;
        self.delivered()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
