//! [`Proxy`]: the service that hands authenticated requests to the origin.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::uri::Scheme;
use http::{HeaderValue, Method, Request, StatusCode};
use tower_service::Service;

use super::forward;
use super::future::ResponseFuture;
use crate::client::OriginClient;
use crate::error::ProxyError;
use crate::origin::Origin;
use crate::pool::OriginConns;

/// Which `Host` the origin is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HostHeader {
    /// The client's, as Cloudflare forwards it (HTTP/2's `:authority` when the client sent no
    /// `Host`). The default.
    #[default]
    Client,
    /// The origin's own authority, for origins that route on `Host` (virtual hosts, most
    /// hosted platforms). The client's still reaches the origin as `X-Forwarded-Host`.
    Origin,
}

/// A reverse proxy to one origin, as a tower [`Service`]: hands authenticated requests to it
/// as Cloudflare's edge does.
///
/// Put it behind tollgate's `ExchangeLayer` or `VerifyLayer`, which authenticate the request
/// and put its [`AccessIdentity`](tollgate_core::AccessIdentity) in the extensions. Then, for
/// each request:
///
/// 1. **Only authenticated requests go on.** Without an identity the proxy answers 500
///    (`misconfigured`: a layer is missing) and never connects. The token sent on is the
///    identity's ([`AccessIdentity::token`](tollgate_core::AccessIdentity::token)), else the one
///    `Cf-Access-Jwt-Assertion` the layer set; with neither, 500 again.
/// 2. **The origin sees what Cloudflare's would**: `Cf-Access-Jwt-Assertion: <token>`; the
///    `Cookie` header with every client `CF_Authorization` cookie replaced by
///    `CF_Authorization=<token>` (other cookies kept); `Cf-Access-Authenticated-User-Email` for
///    users only; `X-Forwarded-For` (the peer address from axum's
///    [`ConnectInfo`](axum::extract::ConnectInfo)), `X-Forwarded-Proto` (configured, `http` by
///    default) and `X-Forwarded-Host` (the client's `Host`, or HTTP/2's `:authority`) set by
///    the proxy, and `CF-Connecting-IP` (the peer address again) as Cloudflare sets it. Never
///    service-token credentials, `cf-access-token`, or any client copy of these headers in
///    any `-`/`_` spelling; client `Forwarded`, `X-Real-IP`, `True-Client-IP`, `CF-Ray`,
///    `CF-IPCountry`, `CF-Visitor` and `CF-Worker` are dropped.
/// 3. **Hop-by-hop fields** (RFC 9110 §7.6.1: `Connection` and every field it names,
///    `Keep-Alive`, `Proxy-Connection`, `TE` but `te: trailers`, `Transfer-Encoding`,
///    `Upgrade`, `Trailer`, `Proxy-Authenticate`, `Proxy-Authorization`) are removed both ways.
/// 4. **Bodies stream both ways**, never buffered. A request body over the limit (100 MB by
///    default) is answered 413: at once for its `Content-Length`, else when the stream goes
///    over — the origin's connection is then dropped (an origin that already answered sees a
///    truncated request and its response is cut off).
/// 5. **Upgrades** (WebSocket): `Connection: upgrade` and `Upgrade` go to the origin; on its
///    `101` both connections are tunnelled into each other.
/// 6. **Failures** answer in tollgate's JSON shape, naming a category, never the origin's
///    error: 502 `origin_unreachable` (refused, reset, TLS, invalid response), 504
///    `origin_timeout` (connecting, or no response headers within the response timeout,
///    100 s by default, counted from the start of the request, its upload included). A
///    response body that stalls longer than its idle timeout (100 s by default) is cut off.
/// 7. **`CONNECT`** is answered 405: a gateway forwards requests, it does not open tunnels
///    (HTTP/2's extended CONNECT, WebSocket over h2, included).
/// 8. **One retry** for idempotent requests without a body (GET, HEAD, OPTIONS, PUT, DELETE,
///    TRACE) when a pooled connection turns out closed by the origin (hyper#2136); never for
///    POST or a request with a body.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::body::Body;
/// use http::Request;
/// use tollgate_core::{AccessClaims, AccessIdentity};
/// use tollgate_gateway::Proxy;
/// use tower::ServiceExt;
///
/// let proxy = Proxy::new("http://127.0.0.1:9")?;
///
/// // No AccessIdentity: no layer in front authenticated this request. Refused, not sent.
/// let response = proxy.clone().oneshot(Request::new(Body::empty())).await?;
/// assert_eq!(response.status(), 500);
///
/// // Authenticated, but nothing listens on the origin's port: 502.
/// let claims = AccessClaims::service_token("aud", "https://team.example", "abc.access", 0, 60);
/// let mut request = Request::new(Body::empty());
/// request.extensions_mut().insert(AccessIdentity::from_verified(claims, "eyJ.eyJ.sig")?);
/// let response = proxy.oneshot(request).await?;
/// assert_eq!(response.status(), 502);
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Proxy {
    pub(crate) config: Arc<Config>,
    pub(crate) client: OriginClient,
    /// The client's HTTP/1.1 connections to this origin.
    pub(crate) conns: Arc<OriginConns>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) origin: Origin,
    pub(crate) response_timeout: Duration,
    pub(crate) body_idle_timeout: Option<Duration>,
    pub(crate) body_limit: u64,
    pub(crate) host: HostHeader,
    pub(crate) forwarded_proto: HeaderValue,
    pub(crate) http2_only: bool,
}

/// Cloudflare's: how long the origin may take to send its response headers.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(100);
/// Cloudflare's free-plan request body limit.
const DEFAULT_BODY_LIMIT: u64 = 100 * 1024 * 1024;

impl Proxy {
    /// A proxy to `origin` (`http://` or `https://`, an optional port and path prefix), with a
    /// client of its own ([`OriginClient::new`]). Proxies to several origins should share one
    /// client: [`with_client`](Self::with_client).
    ///
    /// # Errors
    ///
    /// A [`ProxyError`] for an origin that is not such a URL, or that carries user
    /// information, a query or a fragment.
    pub fn new(origin: &str) -> Result<Self, ProxyError> {
        let origin = Origin::parse(origin)?;
        Ok(Self::build(origin, OriginClient::new()?))
    }

    /// A proxy to `origin` sending through `client` (and its pools).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_client(origin: &str, client: OriginClient) -> Result<Self, ProxyError> {
        Ok(Self::build(Origin::parse(origin)?, client))
    }

    fn build(origin: Origin, client: OriginClient) -> Self {
        let conns = client.http1(&origin);
        Self {
            config: Arc::new(Config {
                origin,
                response_timeout: DEFAULT_RESPONSE_TIMEOUT,
                body_idle_timeout: Some(DEFAULT_RESPONSE_TIMEOUT),
                body_limit: DEFAULT_BODY_LIMIT,
                host: HostHeader::default(),
                forwarded_proto: HeaderValue::from_static("http"),
                http2_only: false,
            }),
            client,
            conns,
        }
    }

    fn config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// How long the origin may take to send its response headers (default 100 s, as
    /// Cloudflare's), counted from the start of the request: connecting, the upload and a
    /// retry included, so a request never waits longer. Past it the client gets 504. The
    /// response body then streams for as long as it takes.
    pub fn with_response_timeout(self, timeout: Duration) -> Self {
        self.config(|c| c.response_timeout = timeout)
    }

    /// How long the origin's response body may stall between two frames (default 100 s, as
    /// Cloudflare's read timeout); past it the response is cut off, the client's connection
    /// closed. `None` lets a response idle for ever (long-polling without heartbeats).
    /// Upgraded connections (WebSocket) are not affected.
    pub fn with_response_body_idle_timeout(self, timeout: Option<Duration>) -> Self {
        self.config(|c| c.body_idle_timeout = timeout)
    }

    /// The largest request body forwarded, in bytes (default 100 MB, as Cloudflare's). A
    /// larger `Content-Length` is answered 413 before the origin is asked; a body without one
    /// is counted while it streams and the request cut off, answered 413, when it goes over.
    pub fn with_body_limit(self, bytes: u64) -> Self {
        self.config(|c| c.body_limit = bytes)
    }

    /// Which `Host` the origin sees (default [`HostHeader::Client`]).
    pub fn with_host(self, host: HostHeader) -> Self {
        self.config(|c| c.host = host)
    }

    /// The scheme sent as `X-Forwarded-Proto` (default `http`): set `https` when TLS ends in
    /// front of this server.
    pub fn with_forwarded_proto(self, scheme: Scheme) -> Self {
        let value =
            HeaderValue::from_str(scheme.as_str()).unwrap_or(HeaderValue::from_static("http"));
        self.config(|c| c.forwarded_proto = value)
    }

    /// Speaks HTTP/2 to the origin: with prior knowledge (h2c) over `http://`, ALPN `h2` only
    /// over `https://` (default off: HTTP/1.1, as Cloudflare speaks to origins unless told
    /// otherwise). HTTP/1.1 upgrades such as WebSocket cannot cross an HTTP/2 connection: they
    /// reach such an origin as plain requests. `:authority` names the origin (it is where the
    /// connection goes); with [`HostHeader::Client`] the client's host travels as a `Host`
    /// header beside it, which servers that prefer `:authority` do not read.
    pub fn with_http2_only(self, http2_only: bool) -> Self {
        self.config(|c| c.http2_only = http2_only)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("origin", &self.config.origin.authority())
            .field("response_timeout", &self.config.response_timeout)
            .field("body_idle_timeout", &self.config.body_idle_timeout)
            .field("body_limit", &self.config.body_limit)
            .field("host", &self.config.host)
            .field("http2_only", &self.config.http2_only)
            .finish_non_exhaustive()
    }
}

impl Service<Request<Body>> for Proxy {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The client is always ready; connections are made per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if request.method() == Method::CONNECT {
            // A tunnel to wherever the client names (or HTTP/2's extended CONNECT): not a
            // request for the origin.
            return ResponseFuture::refused(StatusCode::METHOD_NOT_ALLOWED.into_response());
        }
        match forward::prepare(&self.config, request) {
            Ok(prepared) => {
                let config = self.config.clone();
                let upstream = if config.http2_only {
                    forward::Upstream::Http2(self.client.clone())
                } else {
                    forward::Upstream::Http1(self.conns.clone())
                };
                ResponseFuture::forwarding(forward::send(config, upstream, prepared))
            }
            Err(rejection) => ResponseFuture::refused(rejection.into_response()),
        }
    }
}
