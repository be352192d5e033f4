//! # tollgate
//!
//! Cloudflare Access for axum and tower services.
//!
//! - **Verify** Access JWTs, whoever minted them — the real Cloudflare edge or tollgate's own
//!   issuer — with [`verify::VerifyLayer`] and the [`AccessIdentity`] extractor.
//! - **Issue** them in-process: service tokens, a rotating signing-key ring, and the
//!   `ExchangeLayer` that turns `CF-Access-Client-Id`/`CF-Access-Client-Secret` into a
//!   `CF_Authorization` cookie exactly as Cloudflare's edge does (feature `issue`).
//! - **Proxy** to any origin behind them, handing it what Cloudflare hands an origin (feature
//!   `gateway`; `tollgate serve` routes applications to their origins by domain and path).
//!
//! ## Features
//!
//! | feature    | default | what it adds |
//! |------------|---------|--------------|
//! | `verify`   | yes     | [`verify`]: key cache, verifier, layer, extractor; keys from a team domain over HTTPS |
//! | `issue`    | no      | `issue`: service tokens, key ring, exchange layer, certs routes (and `verify` without its HTTP client) |
//! | `sqlite`   | no      | `store`: SQLite stores (embedded default) |
//! | `postgres` | no      | `store`: PostgreSQL stores (shared by several instances) |
//! | `gateway`  | no      | `gateway`: the reverse proxy that puts any origin behind the exchange (with `issue`) |
//! | `metrics`  | no      | `metrics`: Prometheus metrics, `/metrics`, `/healthz`, `/readyz` (with `issue`) |
//! | `notify`   | no      | `notify`: signed webhook notifications (expiring tokens, key rotations) through the store's outbox (with `issue`) |
//! | `admin`    | no      | `admin`: the admin API, wire-compatible with Cloudflare's v4 Access API (with `issue`) |

pub use tollgate_core as core;
pub use tollgate_core::{AccessClaims, AccessIdentity, Rejection, RejectionKind};

#[cfg(any(feature = "verify", feature = "issue"))]
pub use tollgate_verify as verify;

#[cfg(feature = "issue")]
pub use tollgate_issue as issue;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use tollgate_store as store;

#[cfg(feature = "gateway")]
pub use tollgate_gateway as gateway;

#[cfg(feature = "metrics")]
pub use tollgate_metrics as metrics;

#[cfg(feature = "notify")]
pub use tollgate_notify as notify;

#[cfg(feature = "admin")]
pub use tollgate_admin as admin;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(all(doctest, feature = "issue"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
