//! The service-token exchange, as Cloudflare's edge does it, in front of your service.
//!
//! For each request, [`ExchangeLayer`] (built by [`Issuer::exchange_layer`](crate::Issuer::exchange_layer)):
//!
//! 1. removes any client-supplied `Cf-Access-Jwt-Assertion` / `Cf-Access-Authenticated-User-Email`
//!    (in every `-`/`_` spelling);
//! 2. with `CF-Access-Client-Id` + `CF-Access-Client-Secret` (or, if the application enables it,
//!    both as JSON in one header): checks them against the issuer's snapshot (a lookup and a
//!    constant-time hash comparison), applies the application's policy, mints an application
//!    token with Cloudflare's exact claims, and answers with
//!    `Set-Cookie: CF_Authorization=…; Expires=…; Path=/; SameSite=None; Secure; HttpOnly`
//!    (no cookie when the session duration is zero);
//! 3. with the `CF_Authorization` cookie or a `cf-access-token` header: verifies the token
//!    in-process (tollgate-verify's [`Verifier`](tollgate_verify::Verifier) over the issuer's
//!    [`KeySource`](tollgate_verify::KeySource), no HTTP), then checks that its service token
//!    still exists, is unexpired and is allowed;
//! 4. passes the request on with `Cf-Access-Jwt-Assertion: <token>` and the
//!    [`AccessIdentity`](tollgate_core::AccessIdentity) in its extensions — or answers 401
//!    (missing, wrong, expired, revoked) / 403 (policy) with a JSON reason that never echoes a
//!    secret or a token.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use axum::{Extension, Router, body::Body, routing::get};
//! use http::Request;
//! use tollgate_core::AccessIdentity;
//! use tollgate_issue::{AppSettings, Issuer, MemoryStore};
//! use tower::ServiceExt;
//!
//! let issuer = Issuer::builder("team.example.com").store(Arc::new(MemoryStore::new())).build().await?;
//! issuer.apps().create("api", AppSettings::new()).await?;
//! let (token, secret) = issuer.tokens().create("bot", Default::default()).await?;
//!
//! let app = Router::new()
//!     .route("/", get(|Extension(who): Extension<AccessIdentity>| async move { who.name().to_owned() }))
//!     .layer(issuer.exchange_layer("api")?);
//!
//! let anonymous = app.clone().oneshot(Request::new(Body::empty())).await?;
//! assert_eq!(anonymous.status(), 401);
//!
//! let bot = Request::builder()
//!     .header("CF-Access-Client-Id", &token.client_id)
//!     .header("CF-Access-Client-Secret", secret.expose_secret())
//!     .body(Body::empty())?;
//! let response = app.oneshot(bot).await?;
//! assert_eq!(response.status(), 200);
//! assert!(response.headers()["set-cookie"].to_str()?.starts_with("CF_Authorization="));
//! # Ok(()) }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::ExchangeLayer;
pub use service::Exchange;
