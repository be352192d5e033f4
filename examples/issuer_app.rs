//! An app that runs Cloudflare Access's service-token flow itself: an in-process issuer on a
//! `MemoryStore` protects a router with its `ExchangeLayer` and serves the certs and
//! get-identity routes. At start it creates a service token and prints a ready-to-paste curl.
//!
//! Run with:
//!
//! ```sh
//! cargo run --example issuer_app --features issue            # listens on 127.0.0.1:3000
//! PORT=8080 cargo run --example issuer_app --features issue
//! ```
//!
//! then paste the printed `curl` (it exchanges the token's credentials for a `CF_Authorization`
//! cookie), or run `examples/bot.rs` against it.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use tollgate::AccessIdentity;
use tollgate::issue::{
    AppSettings, ClientSecret, Issuer, ManageError, MemoryStore, ServiceTokenRecord, TokenDuration,
};

/// The application's name in the issuer.
pub const APP_NAME: &str = "hello";

/// The protected router (with the exchange layer) merged with the issuer's public routes.
pub fn app(issuer: &Issuer) -> Result<Router, ManageError> {
    let protected = Router::new()
        .route("/", get(hello))
        .layer(issuer.exchange_layer(APP_NAME)?);
    Ok(protected.merge(issuer.routes()))
}

async fn hello(who: AccessIdentity) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "hello": who.name(), "kind": who.kind().as_str() }))
}

/// An issuer on a fresh `MemoryStore` with the application and one service token.
pub async fn setup(
    team_domain: &str,
) -> Result<(Issuer, ServiceTokenRecord, ClientSecret), ManageError> {
    let issuer = Issuer::builder(team_domain)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await?;
    issuer.apps().create(APP_NAME, AppSettings::new()).await?;
    let (token, secret) = issuer
        .tokens()
        .create("example-bot", TokenDuration::default())
        .await?;
    Ok((issuer, token, secret))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (issuer, token, secret) = setup(&base).await?;
    // Shown once, on purpose: this is the operator's only chance to copy the secret.
    println!("service token {} created; try:\n", token.name);
    println!(
        "curl -i -c cookies.txt -H 'CF-Access-Client-Id: {}' -H 'CF-Access-Client-Secret: {}' {base}/",
        token.client_id,
        secret.expose_secret()
    );
    println!("curl -i -b cookies.txt {base}/            # rides the cookie");
    println!("curl {base}/cdn-cgi/access/certs          # the published keys\n");
    axum::serve(listener, app(&issuer)?).await?;
    Ok(())
}
