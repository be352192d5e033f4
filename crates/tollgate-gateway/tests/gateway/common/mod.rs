//! Shared fixtures: identities, a counting echo origin, a front server running the proxy, and
//! a plain client. Everything listens on 127.0.0.1 port 0.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::{TcpListener, TcpStream};
use tollgate_core::{AccessClaims, AccessIdentity};
use tollgate_gateway::Proxy;

/// The token every test identity was "verified" from.
pub const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJ0ZXN0Ijp0cnVlfQ.c2lnbmF0dXJl";

/// A user identity (jane@example.com) carrying [`TOKEN`].
pub fn user() -> AccessIdentity {
    let claims = AccessClaims::user(
        vec!["aud".into()],
        "https://team.example",
        "jane@example.com",
        "7335d417",
        0,
        4_000_000_000,
    );
    AccessIdentity::from_verified(claims, TOKEN).unwrap()
}

/// A service identity carrying [`TOKEN`].
pub fn service() -> AccessIdentity {
    let claims = AccessClaims::service_token(
        "aud",
        "https://team.example",
        "0123456789abcdef0123456789abcdef.access",
        0,
        4_000_000_000,
    );
    AccessIdentity::from_verified(claims, TOKEN).unwrap()
}

/// A listener that counts the connections it accepts.
pub struct CountingListener {
    listener: TcpListener,
    accepts: Arc<AtomicUsize>,
}

impl axum::serve::Listener for CountingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.listener.accept().await {
                self.accepts.fetch_add(1, Ordering::SeqCst);
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An origin on loopback, counting connections and requests.
#[derive(Clone)]
pub struct TestOrigin {
    pub addr: SocketAddr,
    pub accepts: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub version: http::Version,
    pub headers: HeaderMap,
}

impl Seen {
    /// Every value of `name`, as text.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The single value of `name`, if any.
    pub fn one(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} sent {} times: {all:?}", all.len());
        all.into_iter().next()
    }
}

impl TestOrigin {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The last request the origin saw.
    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the origin saw a request")
    }
}

/// Serves `routes` as an origin; every request is recorded before the route runs. The
/// default route (`fallback`) answers `200 ok`.
pub async fn origin_with(routes: Router) -> TestOrigin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let origin = TestOrigin {
        addr,
        accepts: accepts.clone(),
        requests,
        seen,
    };
    let recorder = origin.clone();
    let app = routes
        .fallback(|| async { "ok" })
        .layer(axum::middleware::map_request(move |request: Request| {
            let recorder = recorder.clone();
            async move {
                recorder.requests.fetch_add(1, Ordering::SeqCst);
                recorder.seen.lock().unwrap().push(Seen {
                    method: request.method().to_string(),
                    uri: request.uri().to_string(),
                    version: request.version(),
                    headers: request.headers().clone(),
                });
                request
            }
        }));
    let listener = CountingListener { listener, accepts };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    origin
}

/// An origin answering every request `200 ok`.
pub async fn origin() -> TestOrigin {
    origin_with(Router::new()).await
}

/// The proxy behind a layer that inserts `identity` (what tollgate's layers do), served on
/// loopback with `ConnectInfo`; answers the front's address.
pub async fn front(proxy: Proxy, identity: Option<AccessIdentity>) -> SocketAddr {
    let mut app = Router::new().fallback_service(proxy);
    if let Some(identity) = identity {
        app = app.layer(axum::Extension(identity));
    }
    serve(app).await
}

/// Serves `app` on loopback with `ConnectInfo<SocketAddr>`.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    addr
}

/// A plain HTTP/1.1 client for the front.
pub fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An authenticated request for `uri` (relative to nothing: for `oneshot`).
pub fn request(uri: &str) -> http::request::Builder {
    http::Request::builder().uri(uri)
}

/// `request` with `identity` in its extensions.
pub fn authenticated(
    mut request: http::Request<Body>,
    identity: AccessIdentity,
) -> http::Request<Body> {
    request.extensions_mut().insert(identity);
    request
}

/// A response's status and body text.
pub async fn text<B>(response: http::Response<B>) -> (StatusCode, String)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A response's status and JSON body.
pub async fn json<B>(response: http::Response<B>) -> (StatusCode, serde_json::Value)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (status, body) = text(response).await;
    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    (status, value)
}

/// A port where nothing listens: bound, then released.
pub async fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
