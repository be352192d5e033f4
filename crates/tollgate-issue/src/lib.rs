//! # tollgate-issue
//!
//! Cloudflare Access's service-token flow, in-process: an axum/tower app checks
//! `CF-Access-Client-Id` / `CF-Access-Client-Secret` itself, mints an application token with
//! Cloudflare's exact header and claims, sets `CF_Authorization`, and serves its signing keys on
//! `/cdn-cgi/access/certs` — so bots, origins and verifiers written for Cloudflare work against
//! it unchanged.
//!
//! ## Quickstart
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Extension, Router, routing::get};
//! use tollgate_core::AccessIdentity;
//! use tollgate_issue::{AppSettings, Issuer, MemoryStore, TokenDuration};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::builder("team.example.com")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()
//!     .await?;
//! issuer.apps().create("api", AppSettings::new()).await?;
//! let (token, secret) = issuer.tokens().create("ci-bot", TokenDuration::default()).await?;
//! println!("client id {}, secret {} (shown once)", token.client_id, secret.expose_secret());
//!
//! let app = Router::new()
//!     .route("/", get(|Extension(who): Extension<AccessIdentity>| async move {
//!         format!("hello, {}", who.name())
//!     }))
//!     .layer(issuer.exchange_layer("api")?)
//!     .merge(issuer.routes()); // certs + get-identity, outside the layer
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! ## The parts
//!
//! - [`tokens`]: [`ServiceTokens`] — create (secret shown once, in the checksummed
//!   [`secret`] format, stored as SHA-256), list, refresh, change duration, rotate with a grace
//!   period, delete, `expiring(within)`; usable with no server (the CLI does).
//! - [`apps`]: [`Applications`] — AUD tag, session duration, single-header credentials,
//!   cookie settings, service-auth policy.
//! - [`keys`]: the RSA-2048 signing-key ring, rotated every 42 days with the next key published
//!   a day before it signs and the previous one accepted 7 more days; compare-and-swap in the
//!   store so two instances never both rotate.
//! - [`issuer`]: [`Issuer`] — ties stores, clock and team domain together; keeps an in-memory
//!   snapshot reloaded when the store's revision changes (other processes' changes apply within
//!   one poll, 250 ms by default); signs on the blocking pool; [`IssuerKeySource`] lets
//!   tollgate-verify check its tokens with no HTTP.
//! - [`exchange`]: [`ExchangeLayer`], the middleware.
//! - [`store`]: the storage traits; [`MemoryStore`] implements them here, `tollgate-store`
//!   in SQLite and PostgreSQL.
//!
//! ## Costs (2-core box, loopback, server on one core)
//!
//! An exchange is dominated by one RSA-2048 signature (≈0.5 ms): ≈2,200 exchanges/s. A request
//! riding its cookie costs a verified-token cache hit plus a snapshot lookup (revocation,
//! expiry, policy): ≈30,000 req/s in quiet runs. `benches/exchange.rs` measures both.

pub mod apps;
pub mod duration;
pub mod error;
pub mod exchange;
pub mod issuer;
pub mod keys;
pub mod memory;
mod routes;
pub mod secret;
pub mod store;
pub mod tokens;

pub use apps::{AppSettings, Applications};
pub use error::{ManageError, ManageErrorKind};
pub use exchange::ExchangeLayer;
pub use issuer::{Issuer, IssuerBuilder, IssuerKeySource};
pub use keys::{KeyInfo, RotationPolicy, SigningKeys};
pub use memory::MemoryStore;
pub use secret::ClientSecret;
pub use duration::{DEFAULT_TOKEN_DURATION, DurationError, format_duration, parse_duration};
pub use store::{
    AppStore, ApplicationRecord, KeyStore, Revision, ServiceAuthPolicy, ServiceTokenRecord,
    SigningKeyRecord, StoreError, StoreFuture, TokenDuration, TokenStore,
};
pub use tokens::{ExpiryWarning, ServiceTokens};
