//! [`VerifyLayer`]: verify the Access token of every request in a tower/axum stack.
//!
//! The layer looks for the token in `Cf-Access-Jwt-Assertion`, `cf-access-token`, then the
//! `CF_Authorization` cookie (order configurable; the rules for repeated and empty values are
//! [`tollgate_core::request`]'s, shared with the issuer's exchange), verifies it with a
//! [`Verifier`], and:
//!
//! - on success puts the [`AccessIdentity`](tollgate_core::AccessIdentity) in the request's
//!   extensions, removes every client-supplied identity header (`_` spellings too) and sets
//!   `Cf-Access-Jwt-Assertion` to the verified token and, for users,
//!   `Cf-Access-Authenticated-User-Email` to the verified e-mail — as Cloudflare's edge does;
//! - answers **401** (missing or invalid token, with `WWW-Authenticate`), **403** (a predicate
//!   refused the identity) or **503** (no signing keys could be had), with a JSON reason and
//!   never the token.
//!
//! In [`Mode::Optional`] a request without a token passes on without an identity.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tollgate_core::AccessIdentity;
//! use tollgate_verify::{StaticKeySource, Verifier, VerifyConfig, VerifyLayer};
//! use tollgate_verify::authorize::email_domain;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = VerifyConfig::new("https://team.cloudflareaccess.com").audience("aud-tag");
//! let verifier = Verifier::new(config, StaticKeySource::from_jwks_json(br#"{"keys":[]}"#)?)?;
//! let app = Router::new()
//!     .route("/", get(|id: AccessIdentity| async move { id.name().to_owned() }))
//!     .layer(VerifyLayer::new(verifier).with_authorization(email_domain("example.com")));
//!
//! let response = app.oneshot(http::Request::new(axum::body::Body::empty())).await?;
//! assert_eq!(response.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! [`Verifier`]: crate::Verifier

mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use self::future::ResponseFuture;
pub use self::layer::{Mode, VerifyLayer};
pub use self::service::Verify;
pub use tollgate_core::request::TokenLocation;
pub use tollgate_core::{DefaultOnRejection, OnRejection};
