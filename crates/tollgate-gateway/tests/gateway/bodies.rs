//! Bodies stream both ways, bigger than axum's 2 MB extractor limit, and the body limit holds
//! with and without `Content-Length`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::sync::Notify;
use tollgate_gateway::Proxy;
use tower::ServiceExt;

const CHUNK: usize = 64 * 1024;
const BIG: usize = 8 * 1024 * 1024;

/// `chunks` chunks of `CHUNK` bytes, the first sent at once and the rest only once `go` is
/// notified: a proxy that buffered the body before sending it would wait for ever.
fn gated_stream(
    chunks: usize,
    go: Arc<Notify>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold((0, go), move |(sent, go)| async move {
        if sent == chunks {
            return None;
        }
        if sent == 1 {
            go.notified().await;
        }
        Some((Ok(Bytes::from(vec![b'x'; CHUNK])), (sent + 1, go)))
    })
}

/// An origin counting the bytes of `POST /upload` as they arrive (notifying `first` at the
/// first one), and streaming `GET /download` behind `go`.
async fn streaming_origin(first: Arc<Notify>, go: Arc<Notify>) -> TestOrigin {
    let routes = Router::new()
        .route(
            "/upload",
            post(move |body: Body| {
                let first = first.clone();
                async move {
                    let mut stream = body.into_data_stream();
                    let mut total = 0;
                    while let Some(chunk) = stream.next().await {
                        let Ok(chunk) = chunk else {
                            return (StatusCode::BAD_REQUEST, "cut".to_owned());
                        };
                        if total == 0 && !chunk.is_empty() {
                            first.notify_one();
                        }
                        total += chunk.len();
                    }
                    (StatusCode::OK, total.to_string())
                }
            }),
        )
        .route(
            "/download",
            get(move || {
                let go = go.clone();
                async move { Body::from_stream(gated_stream(BIG / CHUNK, go)) }
            }),
        )
        .route(
            "/collect",
            post(|body: Body| async move {
                match body.collect().await {
                    Ok(body) => (StatusCode::OK, body.to_bytes().len().to_string()),
                    Err(_) => (StatusCode::BAD_REQUEST, "cut".to_owned()),
                }
            }),
        );
    origin_with(routes).await
}

#[tokio::test]
async fn an_upload_streams_to_the_origin_before_it_is_complete() {
    let first = Arc::new(Notify::new());
    let origin = streaming_origin(first.clone(), Arc::new(Notify::new())).await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    // The client holds the rest of the body until the origin has the first chunk.
    let body = Body::from_stream(gated_stream(BIG / CHUNK, first));
    let req = request(&format!("http://{front}/upload"))
        .method("POST")
        .body(body)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client().request(req))
        .await
        .expect("the upload was buffered, not streamed")
        .unwrap();
    assert_eq!(text(response).await, (StatusCode::OK, BIG.to_string()));
    assert!(
        origin.last().one("content-length").is_none(),
        "sent chunked"
    );
}

#[tokio::test]
async fn a_download_streams_to_the_client_before_it_is_complete() {
    let go = Arc::new(Notify::new());
    let origin = streaming_origin(Arc::new(Notify::new()), go.clone()).await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    let req = request(&format!("http://{front}/download"))
        .body(Body::empty())
        .unwrap();
    let read = async {
        let response = client().request(req).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.unwrap().into_data() else {
                continue;
            };
            if total == 0 {
                go.notify_one(); // the origin sends the rest only now
            }
            total += data.len();
        }
        total
    };
    let total = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the download was buffered, not streamed");
    assert_eq!(total, BIG);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_connecting() {
    let origin = streaming_origin(Arc::new(Notify::new()), Arc::new(Notify::new())).await;
    let proxy = Proxy::new(&origin.url()).unwrap().with_body_limit(1000);
    let req = request("/collect")
        .method("POST")
        .header("content-length", "1001")
        .body(Body::from(vec![0u8; 1001]))
        .unwrap();
    let (status, body) = json(
        proxy
            .clone()
            .oneshot(authenticated(req, user()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["reason"], "payload_too_large");
    assert_eq!(origin.accepts(), 0);

    let at_limit = request("/collect")
        .method("POST")
        .body(Body::from(vec![0u8; 1000]))
        .unwrap();
    let response = proxy
        .oneshot(authenticated(at_limit, user()))
        .await
        .unwrap();
    assert_eq!(text(response).await, (StatusCode::OK, "1000".to_owned()));
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_off_while_streaming() {
    let origin = streaming_origin(Arc::new(Notify::new()), Arc::new(Notify::new())).await;
    let proxy = Proxy::new(&origin.url())
        .unwrap()
        .with_body_limit(3 * CHUNK as u64);
    let front = front(proxy, Some(user())).await;
    let unlimited = Arc::new(Notify::new());
    unlimited.notify_one();
    let req = request(&format!("http://{front}/collect"))
        .method("POST")
        .body(Body::from_stream(gated_stream(4, unlimited.clone())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client().request(req))
        .await
        .expect("no hang")
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["reason"], "payload_too_large");

    // Exactly the limit, chunked, goes through.
    unlimited.notify_one();
    let req = request(&format!("http://{front}/collect"))
        .method("POST")
        .body(Body::from_stream(gated_stream(3, unlimited)))
        .unwrap();
    let response = client().request(req).await.unwrap();
    assert_eq!(
        text(response).await,
        (StatusCode::OK, (3 * CHUNK).to_string())
    );
}

/// curl's way with large uploads: `Expect: 100-continue`, then the body only after the
/// interim `100 Continue`. The proxy must not wait for a body the client holds back.
#[tokio::test]
async fn an_upload_waiting_for_100_continue_goes_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = streaming_origin(Arc::new(Notify::new()), Arc::new(Notify::new())).await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(front).await.unwrap();
        let head = format!(
            "POST /collect HTTP/1.1\r\nhost: {front}\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        let interim = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
        stream.write_all(b"hello").await.unwrap();
        let mut response = Vec::new();
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            response.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&response);
            if n == 0 || (text.contains("\r\n\r\n") && text.ends_with('5')) {
                return text.into_owned();
            }
        }
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("no deadlock on 100-continue");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("\r\n\r\n5"), "{response}");
}
