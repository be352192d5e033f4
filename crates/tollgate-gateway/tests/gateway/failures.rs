//! An origin that is down, slow, unreachable in time or talking nonsense: 502/504 in
//! tollgate's JSON shape, fast, never the origin's error text.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tollgate_gateway::{OriginClient, Proxy};
use tower::ServiceExt;

async fn send(proxy: Proxy, path: &str) -> (StatusCode, serde_json::Value, String, Duration) {
    let started = Instant::now();
    let req = authenticated(request(path).body(Body::empty()).unwrap(), user());
    let response = proxy.oneshot(req).await.unwrap();
    let headers = format!("{:?}", response.headers());
    let (status, body) = json(response).await;
    (status, body, headers, started.elapsed())
}

#[tokio::test]
async fn a_dead_origin_is_a_502() {
    let dead = dead_port().await;
    let proxy = Proxy::new(&format!("http://{dead}")).unwrap();
    let (status, body, headers, elapsed) = send(proxy, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["reason"], "origin_unreachable");
    assert_eq!(body["error"], "bad_gateway");
    assert!(headers.contains("application/json"));
    assert!(
        !body.to_string().to_lowercase().contains("refused"),
        "{body}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_slow_origin_is_a_504_at_the_response_timeout() {
    let origin = origin_with(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late"
        }),
    ))
    .await;
    let proxy = Proxy::new(&origin.url())
        .unwrap()
        .with_response_timeout(Duration::from_millis(200));
    let (status, body, _, elapsed) = send(proxy.clone(), "/slow").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["reason"], "origin_timeout");
    assert_eq!(body["error"], "gateway_timeout");
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    // A fast path on the same origin is unaffected.
    let (status, ..) = send(proxy, "/").await;
    assert_eq!(status, StatusCode::OK);
}

/// A listener whose accept queue is full drops new SYNs, so connecting hangs: the connect
/// timeout answers, well before the response timeout.
#[tokio::test]
async fn a_connect_timeout_is_a_504() {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue (never accepted); connections past it hang in SYN_SENT.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
        {
            fillers.push(stream);
        }
    }
    let client = OriginClient::builder()
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let proxy = Proxy::with_client(&format!("http://{addr}"), client)
        .unwrap()
        .with_response_timeout(Duration::from_secs(5));
    let (status, body, _, elapsed) = send(proxy, "/").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["reason"], "origin_timeout");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    drop((listener, fillers));
}

/// An origin speaking something else than HTTP: 502, and none of its words in the answer.
#[tokio::test]
async fn an_invalid_response_is_a_502_without_the_origin_text() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"SECRET-INTERNAL-TRACE db=10.0.0.5 password=hunter2\r\n\r\n")
                .await;
        }
    });
    let proxy = Proxy::new(&format!("http://{addr}")).unwrap();
    let (status, body, headers, _) = send(proxy, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["reason"], "origin_unreachable");
    let everything = format!("{body}{headers}");
    for leaked in ["SECRET", "hunter2", "10.0.0.5", "hyper", "parse"] {
        assert!(!everything.contains(leaked), "{leaked}: {everything}");
    }
}

/// The origin's own errors are responses, passed through as they are.
#[tokio::test]
async fn an_origin_error_response_passes_through() {
    let origin = origin_with(Router::new().route(
        "/broken",
        get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "origin says no") }),
    ))
    .await;
    let proxy = Proxy::new(&origin.url()).unwrap();
    let req = authenticated(request("/broken").body(Body::empty()).unwrap(), user());
    let response = proxy.oneshot(req).await.unwrap();
    assert_eq!(
        text(response).await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "origin says no".to_owned()
        )
    );
}

/// An origin that stalls in the middle of its body: the response is cut off at the body idle
/// timeout instead of holding the client for ever; a body that keeps coming is not.
#[tokio::test]
async fn a_stalled_response_body_is_cut_off() {
    use http_body_util::BodyExt;
    let stalling = |pause: Duration| {
        Body::from_stream(futures_util::stream::unfold(0, move |sent| async move {
            match sent {
                0 | 1 => {
                    if sent == 1 {
                        tokio::time::sleep(pause).await;
                    }
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"chunk ")),
                        sent + 1,
                    ))
                }
                _ => None,
            }
        }))
    };
    let origin = origin_with(
        Router::new()
            .route(
                "/stall",
                get(move || async move { stalling(Duration::from_secs(5)) }),
            )
            .route(
                "/steady",
                get(move || async move { stalling(Duration::from_millis(50)) }),
            ),
    )
    .await;
    let proxy = Proxy::new(&origin.url())
        .unwrap()
        .with_response_body_idle_timeout(Some(Duration::from_millis(300)));
    let started = Instant::now();
    let req = authenticated(request("/stall").body(Body::empty()).unwrap(), user());
    let response = proxy.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"chunk ");
    assert!(
        body.frame().await.unwrap().is_err(),
        "the stalled body fails"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let req = authenticated(request("/steady").body(Body::empty()).unwrap(), user());
    let (status, body) = text(proxy.oneshot(req).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "chunk chunk "));
}
