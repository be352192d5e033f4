//! # tollgate-verify
//!
//! Verify Cloudflare Access JWTs — minted by Cloudflare's edge or by tollgate's own issuer — in
//! tower and axum services.
//!
//! - [`Verifier`]: checks a token against a [`VerifyConfig`] (issuer, AUD tags, algorithm
//!   allow-list, leeway) with keys from a [`KeySource`], caching keys and verified tokens;
//! - [`KeySource`]s: `RemoteKeySource` (a certs endpoint over HTTPS; feature `remote`), [`StaticKeySource`]
//!   (JWKS or PEM), or your own (tollgate's in-process issuer is one);
//! - [`VerifyLayer`]: the tower middleware, with [`authorize`] predicates answering 403.
//!
//! ## Quickstart
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tollgate_core::AccessIdentity;
//! use tollgate_verify::{Verifier, VerifyLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::for_team_domain("https://team.cloudflareaccess.com", "<AUD tag>")?;
//! let app: Router = Router::new()
//!     .route("/", get(|who: AccessIdentity| async move {
//!         format!("hello, {}", who.name())
//!     }))
//!     .layer(VerifyLayer::new(verifier));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! ## Costs
//!
//! A verified-token cache hit is a SHA-256 of the token and a lock-free lookup; a miss is one
//! RS256 check with a pre-parsed aws-lc-rs key plus the claim checks. Measured with
//! `cargo bench -p tollgate --bench verify` (release) on the shared 2-core development box
//! under load (load average ≈ 5; 712-byte token; medians): cache hit 1.1 µs, cache miss 39 µs,
//! `jsonwebtoken::decode` 52 µs — a hit is about 45× cheaper than a decode, a miss about 1.3×.
//! Absolute figures on an idle machine are lower (DESIGN.md: 27 µs per decode); the ratios are
//! what the bench is for.
//!
//! ## Features
//!
//! | feature  | default | what it adds |
//! |----------|---------|--------------|
//! | `remote` | yes     | `RemoteKeySource` and [`Verifier::for_team_domain`]: keys from a certs endpoint over HTTPS (reqwest, rustls) |
//!
//! Without `remote` (an app verifying tokens of its own in-process issuer, or keys from a
//! file) no HTTP client is compiled.
//!
//! ## Runtime
//!
//! Verification needs a tokio runtime with timers (key fetches are bounded by timeouts and a
//! background task refreshes keys); building a [`Verifier`] needs none.

mod algorithm;
pub mod authorize;
mod config;
mod error;
mod key_cache;
mod key_source;
pub mod layer;
mod macros;
mod public_key;
#[cfg(feature = "remote")]
mod remote;
mod token_cache;
mod verifier;
#[cfg(test)]
mod wycheproof_tests;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use config::{
    DEFAULT_KEY_FETCH_ALERT_AFTER, DEFAULT_MAX_LIFETIME, IdentityCheck, VerifyConfig,
};
pub use error::{ConfigError, ConfigErrorKind, FetchError, FetchErrorKind};
pub use key_source::{BoxFuture, KeySet, KeySource, StaticKeySource};
pub use layer::VerifyLayer;
#[cfg(feature = "remote")]
pub use remote::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TOTAL_TIMEOUT, RemoteKeySource,
};
pub use verifier::{Attempt, Verifier, VerifyStats};
