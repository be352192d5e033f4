//! A gateway in front of a local origin: tollgate's in-process issuer authenticates every
//! request under `/app` with its `ExchangeLayer` (service-token credentials or the
//! `CF_Authorization` cookie), and the `Proxy` hands it to the origin as Cloudflare's edge
//! would. The origin here is a tiny server answering with the identity headers it saw.
//!
//! Run with:
//!
//! ```sh
//! cargo run -p tollgate-gateway --example gateway     # gateway on 127.0.0.1:8080
//! PORT=9000 cargo run -p tollgate-gateway --example gateway
//! ```
//!
//! then paste the printed `curl`: the first request exchanges the credentials, the second
//! rides the cookie; both reach the origin with `Cf-Access-Jwt-Assertion`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use tollgate_gateway::{OriginClient, Proxy};
use tollgate_issue::{AppSettings, ClientSecret, Issuer, MemoryStore, ServiceTokenRecord};

/// The application's name in the issuer.
pub const APP_NAME: &str = "app";

/// The gateway: `/app/*` proxied to `origin` behind the exchange layer, the issuer's public
/// routes (`/cdn-cgi/access/certs`, get-identity) beside it. Nothing else is routed.
pub fn app(
    issuer: &Issuer,
    origin: &str,
    client: OriginClient,
) -> Result<Router, Box<dyn std::error::Error>> {
    let proxy = Proxy::with_client(origin, client)?;
    let protected = Router::new()
        .nest_service("/app", proxy)
        .layer(issuer.exchange_layer(APP_NAME)?);
    Ok(protected.merge(issuer.routes()))
}

/// An issuer on a fresh `MemoryStore`, with the application and one service token.
pub async fn setup(
    team_domain: &str,
) -> Result<(Issuer, ServiceTokenRecord, ClientSecret), Box<dyn std::error::Error>> {
    let issuer = Issuer::builder(team_domain)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await?;
    issuer.apps().create(APP_NAME, AppSettings::new()).await?;
    let (token, secret) = issuer
        .tokens()
        .create("gateway-example", Default::default())
        .await?;
    Ok((issuer, token, secret))
}

/// The demo origin: answers with the identity headers it was handed.
pub fn origin() -> Router {
    Router::new().fallback(|headers: HeaderMap| async move {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let cookie = header("cookie");
        let token = header("cf-access-jwt-assertion");
        format!(
            "origin saw: assertion {} bytes, cookie has token: {}, client secret: {:?}\n",
            token.len(),
            !token.is_empty() && cookie.contains(&format!("CF_Authorization={token}")),
            headers.get("cf-access-client-secret"),
        )
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let origin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin_url = format!("http://{}", origin_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(origin_listener, origin()).await });

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (issuer, token, secret) = setup(&base).await?;
    let gateway = app(&issuer, &origin_url, OriginClient::new()?)?;
    println!("gateway on {base}/app, origin on {origin_url}; try:\n");
    println!(
        "curl -i -c cookies.txt -H 'CF-Access-Client-Id: {}' -H 'CF-Access-Client-Secret: {}' {base}/app/",
        token.client_id,
        secret.expose_secret()
    );
    println!("curl -i -b cookies.txt {base}/app/");
    axum::serve(
        listener,
        gateway.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
