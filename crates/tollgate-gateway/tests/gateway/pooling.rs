//! Connections to the origin are pooled (no churn), and a pooled connection the origin closed
//! under a request (hyper#2136) costs an idempotent request one retry, never a POST.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::body::Body;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_gateway::{OriginClient, Proxy};
use tower::ServiceExt;

#[tokio::test]
async fn sequential_requests_share_one_origin_connection() {
    let origin = origin().await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    let client = client();
    for i in 0..200 {
        let req = request(&format!("http://{front}/n/{i}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = text(client.request(req).await.unwrap()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }
    assert_eq!(origin.requests(), 200);
    assert!(
        origin.accepts() <= 2,
        "{} connections for 200 requests",
        origin.accepts()
    );
}

#[tokio::test]
async fn concurrent_requests_open_no_more_connections_than_the_concurrency() {
    let origin = origin().await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    let client = client();
    for _round in 0..10 {
        let batch = (0..16).map(|_| {
            let client = client.clone();
            let req = request(&format!("http://{front}/"))
                .body(Body::empty())
                .unwrap();
            async move { text(client.request(req).await.unwrap()).await.0 }
        });
        for status in futures_util::future::join_all(batch).await {
            assert_eq!(status, StatusCode::OK);
        }
    }
    assert_eq!(origin.requests(), 160);
    assert!(
        origin.accepts() <= 16 + 2,
        "{} connections for 16 concurrent clients",
        origin.accepts()
    );
}

/// An origin that answers the first request on each connection and, on the next one, reads
/// it and closes the connection without answering: a keep-alive timeout that struck just as
/// the request arrived.
struct ClosingOrigin {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    answered: Arc<Mutex<Vec<String>>>,
    dropped: Arc<AtomicUsize>,
    /// Connections the proxy closed (EOF read).
    closed: Arc<AtomicUsize>,
}

/// How many requests a [`raw_origin`] answers on each connection before it closes it.
#[derive(Clone, Copy)]
enum Answers {
    None,
    First,
    All,
}

/// A [`ClosingOrigin`] answering `answers` requests per connection.
async fn raw_origin(answers: Answers) -> ClosingOrigin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = ClosingOrigin {
        addr: listener.local_addr().unwrap(),
        accepts: Arc::new(AtomicUsize::new(0)),
        answered: Arc::new(Mutex::new(Vec::new())),
        dropped: Arc::new(AtomicUsize::new(0)),
        closed: Arc::new(AtomicUsize::new(0)),
    };
    let (accepts, answered, dropped, closed) = (
        origin.accepts.clone(),
        origin.answered.clone(),
        origin.dropped.clone(),
        origin.closed.clone(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let connection = accepts.fetch_add(1, Ordering::SeqCst) + 1;
            let counters = (answered.clone(), dropped.clone(), closed.clone());
            tokio::spawn(serve_connection(stream, connection, answers, counters));
        }
    });
    origin
}

async fn closing_origin() -> ClosingOrigin {
    raw_origin(Answers::First).await
}

type Counters = (Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>, Arc<AtomicUsize>);

async fn serve_connection(
    mut stream: TcpStream,
    connection: usize,
    answers: Answers,
    (answered, dropped, closed): Counters,
) {
    for request_on_connection in 1.. {
        let Some(method) = read_request(&mut stream).await else {
            closed.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let answer = match answers {
            Answers::None => false,
            Answers::First => request_on_connection == 1,
            Answers::All => true,
        };
        if !answer {
            dropped.fetch_add(1, Ordering::SeqCst);
            return; // closed (FIN) without an answer
        }
        answered
            .lock()
            .unwrap()
            .push(format!("{method} on connection {connection}"));
        let body = format!("connection {connection}");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request (headers, then a `Content-Length` body) and answers its method.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    head.split(' ').next().map(str::to_owned)
}

async fn call(proxy: &Proxy, method: &str, body: &'static str) -> (StatusCode, String) {
    let req = request("/").method(method).body(Body::from(body)).unwrap();
    let response = proxy
        .clone()
        .oneshot(authenticated(req, user()))
        .await
        .unwrap();
    text(response).await
}

/// Sends `method` requests until one went out on a pooled connection the origin closed (it
/// counts a dropped request), pausing between them so the last connection is back in the
/// pool (under load that can take a while: then a request opens a new connection, which the
/// origin answers, and the loop goes on). Answers the statuses.
async fn until_one_is_dropped(
    proxy: &Proxy,
    origin: &ClosingOrigin,
    method: &str,
    body: &'static str,
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    while origin.dropped.load(Ordering::SeqCst) == 0 {
        assert!(
            statuses.len() < 20,
            "no request hit a pooled connection: {statuses:?}"
        );
        statuses.push(call(proxy, method, body).await.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    statuses
}

#[tokio::test]
async fn a_get_on_a_connection_the_origin_closed_is_retried_once_on_a_new_one() {
    let origin = closing_origin().await;
    let proxy = Proxy::new(&format!("http://{}", origin.addr)).unwrap();
    let statuses = until_one_is_dropped(&proxy, &origin, "GET", "").await;
    assert!(statuses.len() >= 2);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(origin.dropped.load(Ordering::SeqCst), 1);
    let answered = origin.answered.lock().unwrap().clone();
    assert_eq!(
        answered.len(),
        statuses.len(),
        "each GET answered once: {answered:?}"
    );
    assert_eq!(
        origin.accepts.load(Ordering::SeqCst),
        statuses.len(),
        "the retry took one new connection"
    );
}

#[tokio::test]
async fn a_post_on_a_connection_the_origin_closed_is_not_retried() {
    let origin = closing_origin().await;
    let proxy = Proxy::new(&format!("http://{}", origin.addr)).unwrap();
    let statuses = until_one_is_dropped(&proxy, &origin, "POST", "one").await;
    let (last, earlier) = statuses.split_last().unwrap();
    assert_eq!(*last, StatusCode::BAD_GATEWAY);
    assert!(earlier.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert_eq!(origin.answered.lock().unwrap().len(), earlier.len());
    assert_eq!(
        origin.accepts.load(Ordering::SeqCst),
        earlier.len(),
        "no second attempt"
    );

    // A PUT (idempotent) with a body is not retried either.
    let origin = closing_origin().await;
    let proxy = Proxy::new(&format!("http://{}", origin.addr)).unwrap();
    let statuses = until_one_is_dropped(&proxy, &origin, "PUT", "body").await;
    let (last, earlier) = statuses.split_last().unwrap();
    assert_eq!(*last, StatusCode::BAD_GATEWAY);
    assert_eq!(origin.accepts.load(Ordering::SeqCst), earlier.len());
}

/// A fresh connection closed under the request is the origin failing, not a pool race: no
/// retry, even for a GET.
#[tokio::test]
async fn a_get_on_a_fresh_connection_the_origin_closed_is_not_retried() {
    let origin = raw_origin(Answers::None).await;
    let proxy = Proxy::new(&format!("http://{}", origin.addr)).unwrap();
    let (status, body) = call(&proxy, "GET", "").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(origin.dropped.load(Ordering::SeqCst), 1);
    assert_eq!(origin.accepts.load(Ordering::SeqCst), 1);
}

/// An idle connection is given up before the origin's keep-alive ends, by the pool's timer
/// in the background (without `pool_timer` hyper-util never reaps idle connections).
#[tokio::test]
async fn idle_connections_are_closed_after_the_pool_idle_timeout() {
    let origin = raw_origin(Answers::All).await;
    let client = OriginClient::builder()
        .pool_idle_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let proxy = Proxy::with_client(&format!("http://{}", origin.addr), client).unwrap();
    assert_eq!(call(&proxy, "GET", "").await.0, StatusCode::OK);
    assert_eq!(call(&proxy, "GET", "").await.0, StatusCode::OK);
    assert_eq!(
        origin.accepts.load(Ordering::SeqCst),
        1,
        "reused while fresh"
    );
    assert_eq!(origin.closed.load(Ordering::SeqCst), 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while origin.closed.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle connection was never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call(&proxy, "GET", "").await.0, StatusCode::OK);
    assert_eq!(origin.accepts.load(Ordering::SeqCst), 2);
}

/// Responses whose body is over before anyone reads it (`HEAD`, `204`, `304`) give their
/// connection back as surely as a read body does.
#[tokio::test]
async fn bodiless_responses_keep_their_connection() {
    use axum::routing::get;
    let origin = origin_with(
        axum::Router::new()
            .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
            .route("/same", get(|| async { StatusCode::NOT_MODIFIED })),
    )
    .await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    for (method, path, status) in [
        ("HEAD", "/", StatusCode::OK),
        ("GET", "/empty", StatusCode::NO_CONTENT),
        ("GET", "/same", StatusCode::NOT_MODIFIED),
    ]
    .into_iter()
    .cycle()
    .take(30)
    {
        let req = request(path).method(method).body(Body::empty()).unwrap();
        let response = proxy
            .clone()
            .oneshot(authenticated(req, user()))
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        drop(response); // never read: the body was over with the head
    }
    assert_eq!(origin.requests(), 30);
    assert_eq!(
        origin.accepts(),
        1,
        "one connection for 30 bodiless answers"
    );
}

/// A response body the client stops reading halfway cannot leave its connection to the next
/// request (the rest of it would be read as that request's answer): the connection is closed,
/// and the next request gets a new one and its own answer.
#[tokio::test]
async fn a_body_dropped_halfway_closes_its_connection() {
    use axum::routing::get;
    let big = "x".repeat(256 * 1024);
    let origin = origin_with(axum::Router::new().route(
        "/big",
        get(move || {
            let big = big.clone();
            async move { big }
        }),
    ))
    .await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let req = request("/big").body(Body::empty()).unwrap();
    let response = proxy
        .clone()
        .oneshot(authenticated(req, user()))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = http_body_util::BodyExt::frame(&mut body)
        .await
        .unwrap()
        .unwrap();
    assert!(first.data_ref().is_some_and(|data| !data.is_empty()));
    drop(body);
    for _ in 0..3 {
        let (status, text) = call(&proxy, "GET", "").await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"));
    }
    assert_eq!(origin.accepts(), 2, "the cut connection was not reused");
}

/// Proxies built on one client share its connections to an origin, and keep no more idle
/// ones than `pool_max_idle_per_origin`.
#[tokio::test]
async fn proxies_on_one_client_share_connections_up_to_the_idle_cap() {
    let origin = origin().await;
    let client = OriginClient::builder()
        .pool_max_idle_per_origin(2)
        .build()
        .unwrap();
    let first = Proxy::with_client(&origin.url(), client.clone()).unwrap();
    let second = Proxy::with_client(&format!("{}/other", origin.url()), client).unwrap();
    assert_eq!(call(&first, "GET", "").await.0, StatusCode::OK);
    assert_eq!(call(&second, "GET", "").await.0, StatusCode::OK);
    assert_eq!(
        origin.accepts(),
        1,
        "the second proxy reused the first's connection"
    );

    // Eight at once open eight connections; two stay, so the next eight open six more.
    let batch = || {
        futures_util::future::join_all((0..8).map(|i| {
            let proxy = if i % 2 == 0 { &first } else { &second };
            call(proxy, "GET", "")
        }))
    };
    let statuses = batch().await;
    assert!(
        statuses.iter().all(|(s, _)| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let after_first = origin.accepts();
    assert!(
        after_first >= 2,
        "{after_first} connections for 8 concurrent requests"
    );
    let statuses = batch().await;
    assert!(
        statuses.iter().all(|(s, _)| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let opened = origin.accepts() - after_first;
    assert!(
        opened >= 8 - 2 - 1,
        "{opened} new connections: more than two idle ones were kept"
    );
}
