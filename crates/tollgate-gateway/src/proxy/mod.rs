//! [`Proxy`]: hands authenticated requests to an origin, as Cloudflare's edge does.
//!
//! Put it behind tollgate's `ExchangeLayer` or `VerifyLayer`, which authenticate the request
//! and put its [`AccessIdentity`](tollgate_core::AccessIdentity) in the extensions. Then, for
//! each request:
//!
//! 1. **Only authenticated requests go on.** Without an identity the proxy answers 500
//!    (`misconfigured`: a layer is missing) and never connects. The token sent on is the
//!    identity's ([`AccessIdentity::token`](tollgate_core::AccessIdentity::token)), else the one
//!    `Cf-Access-Jwt-Assertion` the layer set; with neither, 500 again.
//! 2. **The origin sees what Cloudflare's would**: `Cf-Access-Jwt-Assertion: <token>`; the
//!    `Cookie` header with every client `CF_Authorization` cookie replaced by
//!    `CF_Authorization=<token>` (other cookies kept); `Cf-Access-Authenticated-User-Email` for
//!    users only; `X-Forwarded-For` (the peer address from axum's
//!    [`ConnectInfo`](axum::extract::ConnectInfo)), `X-Forwarded-Proto` (configured, `http` by
//!    default) and `X-Forwarded-Host` (the client's `Host`, or HTTP/2's `:authority`) set by
//!    the proxy, and `CF-Connecting-IP` (the peer address again) as Cloudflare sets it. Never
//!    service-token credentials, `cf-access-token`, or any client copy of these headers in
//!    any `-`/`_` spelling; client `Forwarded`, `X-Real-IP`, `True-Client-IP`, `CF-Ray`,
//!    `CF-IPCountry`, `CF-Visitor` and `CF-Worker` are dropped.
//! 3. **Hop-by-hop fields** (RFC 9110 §7.6.1: `Connection` and every field it names,
//!    `Keep-Alive`, `Proxy-Connection`, `TE` but `te: trailers`, `Transfer-Encoding`,
//!    `Upgrade`, `Trailer`, `Proxy-Authenticate`, `Proxy-Authorization`) are removed both ways.
//! 4. **Bodies stream both ways**, never buffered. A request body over the limit (100 MB by
//!    default) is answered 413: at once for its `Content-Length`, else when the stream goes
//!    over — the origin's connection is then dropped (an origin that already answered sees a
//!    truncated request and its response is cut off).
//! 5. **Upgrades** (WebSocket): `Connection: upgrade` and `Upgrade` go to the origin; on its
//!    `101` both connections are tunnelled into each other.
//! 6. **Failures** answer in tollgate's JSON shape, naming a category, never the origin's
//!    error: 502 `origin_unreachable` (refused, reset, TLS, invalid response), 504
//!    `origin_timeout` (connecting, or no response headers within the response timeout,
//!    100 s by default, counted from the start of the request, its upload included). A
//!    response body that stalls longer than its idle timeout (100 s by default) is cut off.
//! 7. **`CONNECT`** is answered 405: a gateway forwards requests, it does not open tunnels
//!    (HTTP/2's extended CONNECT, WebSocket over h2, included).
//! 8. **One retry** for idempotent requests without a body (GET, HEAD, OPTIONS, PUT, DELETE,
//!    TRACE) when a pooled connection turns out closed by the origin (hyper#2136); never for
//!    POST or a request with a body.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::body::Body;
//! use http::Request;
//! use tollgate_core::{AccessClaims, AccessIdentity};
//! use tollgate_gateway::Proxy;
//! use tower::ServiceExt;
//!
//! let proxy = Proxy::new("http://127.0.0.1:9")?;
//!
//! // No AccessIdentity: no layer in front authenticated this request. Refused, not sent.
//! let response = proxy.clone().oneshot(Request::new(Body::empty())).await?;
//! assert_eq!(response.status(), 500);
//!
//! // Authenticated, but nothing listens on the origin's port: 502.
//! let claims = AccessClaims::service_token("aud", "https://team.example", "abc.access", 0, 60);
//! let mut request = Request::new(Body::empty());
//! request.extensions_mut().insert(AccessIdentity::from_verified(claims, "eyJ.eyJ.sig")?);
//! let response = proxy.oneshot(request).await?;
//! assert_eq!(response.status(), 502);
//! # Ok(()) }
//! ```

mod forward;
mod future;
mod service;

pub use future::ResponseFuture;
pub use service::{HostHeader, Proxy};
