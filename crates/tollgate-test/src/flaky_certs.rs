//! A certs endpoint on a fixed loopback port that can be switched, at any moment, between
//! serving its keys, failing with a status, and not listening at all (connection refused), then
//! back again on the same port: what a key endpoint going down for hours looks like to a
//! verifier.
//!
//! Every answer carries `Connection: close`, so no pooled client connection outlives a switch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http::CERTS_PATH;

/// What the endpoint does from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers its keys.
    Serve,
    /// Answers this status with no keys.
    Fail(u16),
    /// Nothing listens on the port: connections are refused.
    Refuse,
}

#[derive(Debug)]
struct Shared {
    jwks: Mutex<Value>,
    fail: Mutex<Option<u16>>,
    cache_control: String,
    hits: AtomicUsize,
}

/// The switchable certs endpoint; stops when dropped.
#[derive(Debug)]
pub struct FlakyCerts {
    /// `http://127.0.0.1:port`, the same whatever the mode.
    pub origin: String,
    port: u16,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl FlakyCerts {
    /// Starts serving `{"keys": keys}` with `Cache-Control: max-age=<max_age_secs>`.
    pub async fn start(keys: Vec<Value>, max_age_secs: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            jwks: Mutex::new(json!({ "keys": keys })),
            fail: Mutex::new(None),
            cache_control: format!("max-age={max_age_secs}"),
            hits: AtomicUsize::new(0),
        });
        let mut server = Self {
            origin: format!("http://127.0.0.1:{port}"),
            port,
            shared,
            task: None,
        };
        server.listen(listener);
        server
    }

    /// The full certs URL.
    pub fn certs_url(&self) -> String {
        format!("{}{CERTS_PATH}", self.origin)
    }

    /// Serves `{"keys": keys}` from now on (while in [`Mode::Serve`]).
    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.shared.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    /// Requests answered so far (refused connections are not counted: nothing saw them).
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Switches to `mode`. [`Mode::Refuse`] closes the listening socket; leaving it listens
    /// again on the same port.
    pub async fn set_mode(&mut self, mode: Mode) {
        *self.shared.fail.lock().unwrap() = match mode {
            Mode::Fail(status) => Some(status),
            _ => None,
        };
        match (mode, self.task.is_some()) {
            (Mode::Refuse, true) => {
                let task = self.task.take().unwrap();
                task.abort();
                let _ = task.await;
            }
            (Mode::Serve | Mode::Fail(_), false) => {
                let listener = rebind(self.port).await;
                self.listen(listener);
            }
            _ => {}
        }
    }

    fn listen(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route(CERTS_PATH, get(certs))
            .with_state(self.shared.clone());
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }
}

impl Drop for FlakyCerts {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds `127.0.0.1:port` again; a moment's retry covers the old socket's teardown.
async fn rebind(port: u16) -> TcpListener {
    let mut last_error = None;
    for _ in 0..50 {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return listener,
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot listen on 127.0.0.1:{port} again: {last_error:?}");
}

async fn certs(State(shared): State<Arc<Shared>>) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let close = [(header::CONNECTION, HeaderValue::from_static("close"))];
    if let Some(status) = *shared.fail.lock().unwrap() {
        return (StatusCode::from_u16(status).unwrap(), close).into_response();
    }
    let body = shared.jwks.lock().unwrap().to_string();
    (
        close,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_str(&shared.cache_control).unwrap(),
            ),
        ],
        body,
    )
        .into_response()
}
