//! # tollgate-gateway
//!
//! Cloudflare Access in front of any HTTP origin: tollgate's layers authenticate a request,
//! and [`Proxy`] hands it to the origin the way Cloudflare's edge does — with the application
//! token as `Cf-Access-Jwt-Assertion` and the `CF_Authorization` cookie, never credentials,
//! never an unauthenticated request.
//!
//! - [`Proxy`]: a tower [`Service`](tower_service::Service) for one origin (`http://` or
//!   `https://`, with an optional path prefix), with its limits and timeouts; its docs say
//!   exactly what the origin sees.
//! - [`OriginClient`]: the pooled client that proxies share, configured against the
//!   known traps (idle connections never reaped without a pool timer, churn under a per-host
//!   idle cap, the keep-alive race of hyper#2136).
//! - [`SENSITIVE_HEADERS`]: the headers to hide from request logs.
//!
//! ## Quickstart
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::SocketAddr;
//! use axum::Router;
//! use tollgate_gateway::{OriginClient, Proxy};
//!
//! let client = OriginClient::new()?;
//! let proxy = Proxy::with_client("http://127.0.0.1:3000", client)?;
//! let app = Router::new().fallback_service(proxy);
//! // .layer(issuer.exchange_layer("app")?) — or verify.layer(), in front of the proxy:
//! // without one, every request is refused with 500.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! Serve with `into_make_service_with_connect_info::<SocketAddr>()` so `X-Forwarded-For`
//! carries the client's address.
//!
//! ## Logs
//!
//! Requests the proxy refuses (no identity, a body over the limit) are logged like every
//! tollgate refusal, on `tollgate::rejection`; origin failures are a `WARN` on [`LOG_TARGET`]
//! with the origin's authority and the category (`origin_unreachable`, `origin_timeout`) and
//! a short static detail, the underlying error at `DEBUG`. Never a header, a token or a body.
//! For request logs, mark [`SENSITIVE_HEADERS`] sensitive.

mod body;
mod client;
mod error;
mod headers;
mod origin;
mod pool;
mod proxy;

pub use client::{OriginClient, OriginClientBuilder, RootCerts};
pub use error::{ProxyError, ProxyErrorKind};
pub use headers::SENSITIVE_HEADERS;
pub use proxy::{HostHeader, Proxy, ResponseFuture};

/// The `tracing` target of the gateway's own events: origin failures and upgrades.
pub const LOG_TARGET: &str = "tollgate::gateway";
