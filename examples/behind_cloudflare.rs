//! An origin meant to sit behind Cloudflare Access: every request must carry a valid Access
//! JWT (the `Cf-Access-Jwt-Assertion` header Cloudflare adds, a `cf-access-token` header or the
//! `CF_Authorization` cookie). Every path answers the caller's identity as JSON (200), or the
//! rejection as JSON (401 missing/invalid token, 403 refused, 503 keys unavailable).
//!
//! Run with:
//!
//! ```sh
//! TEAM_DOMAIN=https://<team>.cloudflareaccess.com POLICY_AUD=<application AUD tag> \
//!     cargo run --example behind_cloudflare
//! ```
//!
//! Environment (the names Cloudflare's own Python example uses):
//! - `TEAM_DOMAIN`: the team domain; keys come from `$TEAM_DOMAIN/cdn-cgi/access/certs`;
//! - `POLICY_AUD`: the application's AUD tag;
//! - `ADDR`: where to listen (default `127.0.0.1:3000`; port 0 picks a free one).
//!
//! It prints `listening on http://<addr>` once ready. `RUST_LOG=debug` shows each decision.

use std::error::Error;

use axum::{Json, Router};
use tollgate::AccessIdentity;
use tollgate::verify::{Verifier, VerifyLayer};

/// The application: any path, any method, answers the verified identity.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .fallback(whoami)
        .layer(VerifyLayer::new(verifier))
}

async fn whoami(identity: AccessIdentity) -> Json<AccessIdentity> {
    Json(identity)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let team_domain = std::env::var("TEAM_DOMAIN")
        .map_err(|_| "set TEAM_DOMAIN, e.g. https://<team>.cloudflareaccess.com")?;
    let aud =
        std::env::var("POLICY_AUD").map_err(|_| "set POLICY_AUD to the application's AUD tag")?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    let verifier = Verifier::for_team_domain(&team_domain, aud)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(verifier))
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
