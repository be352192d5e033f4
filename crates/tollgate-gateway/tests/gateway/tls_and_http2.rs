//! HTTPS origins (a self-signed one trusted through `add_root_certificate`, refused otherwise)
//! and HTTP/2 to the origin (h2c, and ALPN `h2` over TLS).
#![allow(clippy::unwrap_used)]

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::common::*;
use axum::Router;
use axum::body::Body;
use http::{StatusCode, Version};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tollgate_gateway::{OriginClient, Proxy, RootCerts};
use tower::ServiceExt;

/// Accepts TLS connections; handshakes that fail are skipped.
struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.listener.accept().await else {
                continue;
            };
            if let Ok(stream) = self.acceptor.accept(stream).await {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An HTTPS origin for 127.0.0.1 with a fresh self-signed certificate: its address and the
/// certificate (DER). Answers with the HTTP version it was spoken to in.
async fn https_origin() -> (SocketAddr, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = TlsListener {
        listener,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let app = Router::new().fallback(|request: axum::extract::Request| async move {
        let token = request
            .headers()
            .get("cf-access-jwt-assertion")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        format!("{:?} {token}", request.version())
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, cert_der)
}

async fn get(proxy: Proxy) -> (StatusCode, String) {
    let req = authenticated(request("/").body(Body::empty()).unwrap(), user());
    text(proxy.oneshot(req).await.unwrap()).await
}

#[tokio::test]
async fn an_https_origin_with_a_trusted_certificate() {
    let (addr, cert) = https_origin().await;
    let client = OriginClient::builder()
        .root_certs(RootCerts::None)
        .add_root_certificate(cert)
        .build()
        .unwrap();
    let proxy = Proxy::with_client(&format!("https://{addr}"), client.clone()).unwrap();
    assert_eq!(
        get(proxy).await,
        (StatusCode::OK, format!("HTTP/1.1 {TOKEN}"))
    );

    let h2 = Proxy::with_client(&format!("https://{addr}"), client)
        .unwrap()
        .with_http2_only(true);
    assert_eq!(get(h2).await, (StatusCode::OK, format!("HTTP/2.0 {TOKEN}")));
}

#[tokio::test]
async fn an_https_origin_with_an_untrusted_certificate_is_a_502() {
    let (addr, _cert) = https_origin().await;
    let proxy = Proxy::new(&format!("https://{addr}")).unwrap();
    let (status, body) = get(proxy).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("origin_unreachable"), "{body}");
    assert!(!body.to_lowercase().contains("certificate"), "{body}");
}

#[tokio::test]
async fn an_h2c_origin_is_spoken_to_in_http2() {
    let origin = origin().await;
    let proxy = Proxy::new(&origin.url()).unwrap().with_http2_only(true);
    let req = request("/h2c")
        .header("host", "app.example.com")
        .header("connection", "keep-alive")
        .header("te", "trailers")
        .body(Body::empty())
        .unwrap();
    let response = proxy.oneshot(authenticated(req, user())).await.unwrap();
    assert_eq!(text(response).await, (StatusCode::OK, "ok".to_owned()));
    let seen = origin.last();
    assert_eq!(seen.version, Version::HTTP_2);
    assert_eq!(seen.one("cf-access-jwt-assertion").as_deref(), Some(TOKEN));
    assert_eq!(seen.one("te").as_deref(), Some("trailers"));
    assert_eq!(seen.one("host").as_deref(), Some("app.example.com"));
    assert_eq!(
        seen.one("x-forwarded-host").as_deref(),
        Some("app.example.com")
    );
}

/// Response trailers (gRPC's status, say) stream through from an h2c origin.
#[tokio::test]
async fn response_trailers_pass_through() {
    use http_body_util::BodyExt;
    let origin = origin_with(Router::new().route(
        "/trailers",
        axum::routing::get(|| async {
            let frames = futures_util::stream::iter([
                Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from_static(
                    b"payload",
                ))),
                Ok(http_body::Frame::trailers({
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    trailers
                })),
            ]);
            Body::new(http_body_util::StreamBody::new(frames))
        }),
    ))
    .await;
    let proxy = Proxy::new(&origin.url()).unwrap().with_http2_only(true);
    let req = request("/trailers")
        .header("te", "trailers")
        .body(Body::empty())
        .unwrap();
    let response = proxy.oneshot(authenticated(req, user())).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(&collected.to_bytes()[..], b"payload");
}
