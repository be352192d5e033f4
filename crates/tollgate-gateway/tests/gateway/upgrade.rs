//! WebSocket through the proxy: the upgrade reaches the origin, the 101 comes back, and both
//! connections are tunnelled.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::*;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;
use tollgate_gateway::Proxy;

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(format!("echo: {}", text.as_str()).into()),
            Message::Binary(bytes) => Message::Binary(bytes),
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn websocket_origin() -> TestOrigin {
    origin_with(Router::new().route(
        "/ws",
        get(|upgrade: WebSocketUpgrade| async move { upgrade.on_upgrade(echo) }),
    ))
    .await
}

#[tokio::test]
async fn a_websocket_is_tunnelled_to_the_origin() {
    let origin = websocket_origin().await;
    let front = front(Proxy::new(&origin.url()).unwrap(), Some(user())).await;
    let (mut socket, response) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(format!("ws://{front}/ws")),
    )
    .await
    .expect("the handshake finished")
    .unwrap();
    assert_eq!(response.status(), 101);
    assert!(response.headers().contains_key("sec-websocket-accept"));

    socket
        .send(tungstenite::Message::text("hello"))
        .await
        .unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo: hello");
    let big = vec![7u8; 256 * 1024];
    socket
        .send(tungstenite::Message::binary(big.clone()))
        .await
        .unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.into_data().as_ref(), &big[..]);
    socket.close(None).await.unwrap();

    let seen = origin.last();
    assert_eq!(seen.one("upgrade").as_deref(), Some("websocket"));
    assert_eq!(seen.one("connection").as_deref(), Some("upgrade"));
    assert_eq!(seen.one("cf-access-jwt-assertion").as_deref(), Some(TOKEN));
    assert!(seen.one("sec-websocket-key").is_some());
}

#[tokio::test]
async fn an_unauthenticated_websocket_is_refused() {
    let origin = websocket_origin().await;
    let front = front(Proxy::new(&origin.url()).unwrap(), None).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{front}/ws")).await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 500),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(origin.accepts(), 0);
}
