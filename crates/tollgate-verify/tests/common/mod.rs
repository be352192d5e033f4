//! Shared fixtures: RSA keys generated once per test binary, tokens built byte by byte, a real
//! JWKS server on 127.0.0.1:0 that serves, rotates, fails, stalls and counts its hits, and a
//! log capture.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The issuer of test tokens.
pub const ISS: &str = "https://team.cloudflareaccess.com";
/// The AUD tag of test tokens.
pub const AUD: &str = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
/// A service token's client ID.
pub const CLIENT_ID: &str = "5a1b4f0cbd6df4b22b11c8ffb5d4b4a9.access";
/// "Now" for tests that fix the clock.
pub const NOW: i64 = 1_700_000_000;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA-2048 signing key.
pub struct TestKey {
    pub kid: String,
    pair: KeyPair,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl TestKey {
    fn generate(kid: &str) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let (n, e) = parse_pkcs1(pair.public_key().as_ref());
        Self {
            kid: kid.to_owned(),
            pair,
            n,
            e,
        }
    }

    /// The public JWK, as Cloudflare publishes it.
    pub fn jwk(&self) -> Value {
        json!({"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
               "n": b64(&self.n), "e": b64(&self.e)})
    }

    /// RS256 signature of `input`.
    pub fn sign_raw(&self, input: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut sig)
            .unwrap();
        sig
    }

    /// A compact JWS of exactly these header and payload bytes.
    pub fn sign(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.sign_raw(input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// The standard header for this key.
    pub fn header(&self) -> String {
        format!(r#"{{"alg":"RS256","kid":"{}","typ":"JWT"}}"#, self.kid)
    }

    /// A service token as Cloudflare writes it, issued at `iat`, valid for `ttl` seconds.
    pub fn service_token(&self, iat: i64, ttl: i64) -> String {
        self.sign(&self.header(), &service_payload(iat, ttl))
    }
}

pub fn service_payload(iat: i64, ttl: i64) -> String {
    json!({"type":"app","aud":AUD,"exp":iat + ttl,"iss":ISS,"common_name":CLIENT_ID,"iat":iat,"sub":""})
        .to_string()
}

pub fn user_payload(email: &str, iat: i64, ttl: i64) -> String {
    json!({"aud":[AUD],"email":email,"exp":iat + ttl,"iat":iat,"nbf":iat,"iss":ISS,"type":"app",
           "identity_nonce":"6ei69kawdKzMIAPF","sub":"7335d417-61da-459d-899c-0a01c76a2f94","country":"NL"})
        .to_string()
}

/// Three keys, generated once per test binary.
pub fn keys() -> &'static [TestKey; 3] {
    static KEYS: OnceLock<[TestKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            TestKey::generate("key-a"),
            TestKey::generate("key-b"),
            TestKey::generate("key-c"),
        ]
    })
}

fn der_read(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag);
    let (len, start) = if input[1] < 0x80 {
        (usize::from(input[1]), 2)
    } else {
        let count = usize::from(input[1] & 0x7f);
        let len = input[2..2 + count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    (&input[start..start + len], &input[start + len..])
}

fn parse_pkcs1(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (seq, _) = der_read(der, 0x30);
    let (n, rest) = der_read(seq, 0x02);
    let (e, _) = der_read(rest, 0x02);
    let strip = |b: &[u8]| {
        b.iter()
            .copied()
            .skip_while(|x| *x == 0)
            .collect::<Vec<u8>>()
    };
    (strip(n), strip(e))
}

/// What the JWKS server does on the next request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    Serve,
    Fail(u16),
    Slow(Duration),
    Huge(usize),
}

struct ServerState {
    jwks: Mutex<Value>,
    behaviour: Mutex<Behaviour>,
    cache_control: Mutex<Option<String>>,
    hits: AtomicUsize,
}

/// A real certs endpoint on 127.0.0.1:0.
pub struct JwksServer {
    pub origin: String,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(ServerState {
            jwks: Mutex::new(json!({ "keys": keys })),
            behaviour: Mutex::new(Behaviour::Serve),
            cache_control: Mutex::new(None),
            hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/cdn-cgi/access/certs", get(certs))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            origin,
            state,
            task,
        }
    }

    pub fn certs_url(&self) -> String {
        format!("{}/cdn-cgi/access/certs", self.origin)
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = Some(value.to_owned());
    }

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

/// Everything written by `tracing` while the guard lives (this thread only).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (capture, guard)
    }

    /// Captures everything, process-wide. For a test binary of its own: per-thread capture
    /// races with tracing's callsite cache when other tests run in parallel.
    pub fn start_global() -> Self {
        let capture = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
