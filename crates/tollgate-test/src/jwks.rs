//! A real certs endpoint on 127.0.0.1:0 that serves, rotates, fails, stalls and counts its hits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::http::{CERTS_PATH, serve_task};

/// What the JWKS server does on the next request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Serve the current keys.
    Serve,
    /// Answer this status, no body.
    Fail(u16),
    /// Wait this long, then serve.
    Slow(Duration),
    /// Answer a JSON document of about this many bytes (no keys).
    Huge(usize),
}

#[derive(Debug)]
struct ServerState {
    jwks: Mutex<Value>,
    behaviour: Mutex<Behaviour>,
    cache_control: Mutex<Option<String>>,
    hits: AtomicUsize,
}

/// A real certs endpoint on 127.0.0.1:0; stops when dropped.
#[derive(Debug)]
pub struct JwksServer {
    /// `http://127.0.0.1:port`: a team domain whose certs URL this server answers.
    pub origin: String,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Starts serving `{"keys": keys}`.
    pub async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(ServerState {
            jwks: Mutex::new(json!({ "keys": keys })),
            behaviour: Mutex::new(Behaviour::Serve),
            cache_control: Mutex::new(None),
            hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(CERTS_PATH, get(certs))
            .with_state(state.clone());
        let (origin, task) = serve_task(app).await;
        Self {
            origin,
            state,
            task,
        }
    }

    /// The full certs URL.
    pub fn certs_url(&self) -> String {
        format!("{}{CERTS_PATH}", self.origin)
    }

    /// Serves `{"keys": keys}` from now on.
    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    /// What to do on the next requests.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// A `Cache-Control` header on every answer from now on.
    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = Some(value.to_owned());
    }

    /// How many requests arrived so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn certs(State(state): State<Arc<ServerState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = state.behaviour.lock().unwrap().clone();
    match behaviour {
        Behaviour::Serve => {}
        Behaviour::Fail(status) => return StatusCode::from_u16(status).unwrap().into_response(),
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::Huge(bytes) => {
            let padding = "x".repeat(bytes);
            return axum::Json(json!({"keys": [], "padding": padding})).into_response();
        }
    }
    let body = state.jwks.lock().unwrap().to_string();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(cc) = state.cache_control.lock().unwrap().as_deref() {
        headers.insert("cache-control", HeaderValue::from_str(cc).unwrap());
    }
    (headers, body).into_response()
}
