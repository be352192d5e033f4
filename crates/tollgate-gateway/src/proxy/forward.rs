//! What happens to one request: checked and rewritten ([`prepare`]), sent with at most one
//! retry ([`send`]), and its response cleaned or its upgrade tunnelled.

use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, HOST, TE};
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::connect::{CaptureConnection, capture_connection};
use hyper_util::rt::TokioIo;
use tollgate_core::names::{
    CF_ACCESS_AUTHENTICATED_USER_EMAIL, CF_ACCESS_JWT_ASSERTION, strip_header_spellings,
    strip_identity_headers,
};
use tollgate_core::request::{self as access, RefusalContext};
use tollgate_core::{AccessIdentity, Rejection, RejectionKind};

use super::service::{Config, HostHeader};
use crate::body::{IdleTimeoutBody, LimitedBody};
use crate::client::{ConnectedAt, OriginClient};
use crate::headers::{
    CF_CONNECTING_IP, OWNED_REQUEST_HEADERS, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO,
    restore_upgrade, strip_hop_by_hop,
};
use crate::pool::{OriginConns, SendError};

use crate::LOG_TARGET;

/// A request checked and rewritten for the origin.
pub(crate) struct Prepared {
    request: Request<LimitedBody>,
    /// Raised when the body went over the limit while streaming.
    exceeded: Arc<AtomicBool>,
    /// What to send again, for an idempotent request without a body.
    retry: Option<Retry>,
    /// The client's side of an upgrade it asked for.
    upgrade: Option<OnUpgrade>,
}

/// The parts of a bodiless request, to send it a second time.
struct Retry {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Retry {
    fn request(self) -> Request<LimitedBody> {
        let mut request = Request::new(LimitedBody::empty());
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        request
    }
}

/// The token to hand the origin for `identity`: its own, or the single assertion header the
/// layers set (after an exchange, the identity carries none).
fn identity_token(
    identity: &AccessIdentity,
    request: &Request<Body>,
) -> Result<HeaderValue, Rejection> {
    let token = match identity.token_header() {
        // Made once when the token was verified: a reference count, not a copy.
        Some(token) => Some(token.clone()),
        // The layers set the assertion header (client copies stripped) when the identity
        // carries no token, after an exchange say: one non-empty value, or nothing to send.
        None => {
            let mut values = request.headers().get_all(CF_ACCESS_JWT_ASSERTION).iter();
            match (values.next(), values.next()) {
                (Some(value), None) if !value.is_empty() && value.to_str().is_ok() => {
                    Some(value.clone())
                }
                _ => None,
            }
        }
    };
    token.ok_or_else(|| {
        refusal(
            RejectionKind::Misconfigured,
            "the request's AccessIdentity carries no token and no single Cf-Access-Jwt-Assertion was set",
        )
    })
}

fn refusal(kind: RejectionKind, detail: &'static str) -> Rejection {
    let rejection = Rejection::new(kind).with_detail(detail);
    access::log_rejection(&rejection, RefusalContext::default());
    rejection
}

/// Checks that the request was authenticated and fits the body limit, then rewrites it into
/// exactly what Cloudflare's edge hands an origin (see [`Proxy`](super::Proxy)).
pub(crate) fn prepare(config: &Config, mut request: Request<Body>) -> Result<Prepared, Rejection> {
    let identity = request.extensions_mut().remove::<AccessIdentity>();
    let bypassed = request.extensions().get::<access::Bypassed>().is_some();
    let token = match &identity {
        // A bypass policy let it through: the origin gets no identity, as from Cloudflare.
        None if bypassed => None,
        None => {
            return Err(refusal(
                RejectionKind::Misconfigured,
                "the gateway's Proxy needs tollgate's ExchangeLayer or VerifyLayer in front of it: the request carries no AccessIdentity",
            ));
        }
        Some(identity) => Some(identity_token(identity, &request)?),
    };

    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > config.body_limit)
        || request.body().size_hint().lower() > config.body_limit
    {
        return Err(refusal(
            RejectionKind::PayloadTooLarge,
            "Content-Length is over the gateway's body limit",
        ));
    }

    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    // HTTP/2 carries the host as `:authority`, in the URI, and no `Host`.
    let client_host = request.headers().get(HOST).cloned().or_else(|| {
        request
            .uri()
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
    });
    // HTTP/1.1's request line carries the path alone; HTTP/2 the whole URI.
    let uri = if config.http2_only {
        config.origin.uri_for(request.uri())
    } else {
        config.origin.path_for(request.uri()).map(Uri::from)
    };
    let Some(uri) = uri else {
        return Err(refusal(
            RejectionKind::Misconfigured,
            "the request path does not make an origin URI",
        ));
    };

    let headers = request.headers_mut();
    let hop = strip_hop_by_hop(headers);
    strip_header_spellings(headers, &OWNED_REQUEST_HEADERS);
    strip_identity_headers(headers);
    // Checked to be text above; the cookie is rewritten before the header takes the value.
    access::set_token_cookie(headers, token.as_ref().and_then(|t| t.to_str().ok()));
    if let Some(token) = token {
        headers.insert(CF_ACCESS_JWT_ASSERTION, token);
    }
    if let Some(email) = identity.as_ref().and_then(AccessIdentity::email_header) {
        headers.insert(CF_ACCESS_AUTHENTICATED_USER_EMAIL, email.clone());
    }
    if let Some(ip) = peer
        && let Ok(value) = HeaderValue::try_from(ip.to_string())
    {
        headers.insert(CF_CONNECTING_IP, value.clone());
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, config.forwarded_proto.clone());
    if let Some(host) = &client_host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    match (config.host, client_host) {
        (HostHeader::Client, Some(host)) => {
            headers.insert(HOST, host);
        }
        // HTTP/2 names the origin in `:authority` (from the URI).
        (HostHeader::Origin, _) | (HostHeader::Client, None) if config.http2_only => {
            headers.remove(HOST);
        }
        // The client's named none: the origin's, as a client of it would send.
        (HostHeader::Origin, _) | (HostHeader::Client, None) => {
            headers.insert(HOST, config.origin.host().clone());
        }
    }
    if hop.te_trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    // An upgrade is HTTP/1.1's: the connection-specific fields it needs are forbidden in h2.
    let upgrade = match hop.upgrade {
        Some(offer) if request.version() == Version::HTTP_11 && !config.http2_only => {
            restore_upgrade(request.headers_mut(), &offer);
            Some(hyper::upgrade::on(&mut request))
        }
        _ => None,
    };

    let (parts, body) = request.into_parts();
    let version = if config.http2_only {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let retry = (is_idempotent(&parts.method) && body.is_end_stream()).then(|| Retry {
        method: parts.method.clone(),
        uri: uri.clone(),
        version,
        headers: parts.headers.clone(),
    });
    let (body, exceeded) = LimitedBody::new(body, config.body_limit);
    let mut outgoing = Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = uri;
    *outgoing.version_mut() = version;
    *outgoing.headers_mut() = parts.headers;
    // The client's extensions (its identity, its connection) stay here.
    *outgoing.extensions_mut() = Extensions::new();
    Ok(Prepared {
        request: outgoing,
        exceeded,
        retry,
        upgrade,
    })
}

/// RFC 9110 §9.2.2's idempotent methods: safe to send twice.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Where a proxy sends: its origin's HTTP/1.1 connections, or the HTTP/2 client.
pub(crate) enum Upstream {
    Http1(Arc<OriginConns>),
    Http2(OriginClient),
}

/// Why the origin gave no response head.
enum Failure {
    Http1(SendError),
    Http2(hyper_util::client::legacy::Error),
}

impl Failure {
    fn is_connect(&self) -> bool {
        match self {
            Failure::Http1(error) => matches!(error, SendError::Connect(_)),
            Failure::Http2(error) => error.is_connect(),
        }
    }

    fn error(&self) -> &(dyn StdError + 'static) {
        match self {
            Failure::Http1(error) => error.as_error(),
            Failure::Http2(error) => error,
        }
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Http1(error) => error.fmt(f),
            Failure::Http2(error) => error.fmt(f),
        }
    }
}

/// Sends the request (retrying once when a reused connection turns out closed), within the
/// response timeout, and makes the client's response of the origin's.
pub(crate) async fn send(config: Arc<Config>, upstream: Upstream, prepared: Prepared) -> Response {
    let Prepared {
        request,
        exceeded,
        retry,
        upgrade,
    } = prepared;
    let retrying = || {
        tracing::debug!(
            target: LOG_TARGET,
            origin = %config.origin.authority(),
            "a pooled connection was closed by the origin; sending again on a new one"
        );
    };
    match upstream {
        Upstream::Http1(conns) => {
            let attempt = async {
                match conns.send(request).await {
                    Err(failed) => {
                        let error = Failure::Http1(failed.error);
                        match retry {
                            Some(retry) if failed.reused && is_closed_connection(&error) => {
                                retrying();
                                conns
                                    .send(retry.request())
                                    .await
                                    .map_err(|failed| Failure::Http1(failed.error))
                            }
                            _ => Err(error),
                        }
                    }
                    Ok(response) => Ok(response),
                }
            };
            let outcome = tokio::time::timeout(config.response_timeout, attempt).await;
            answer(&config, outcome, &exceeded, upgrade)
        }
        Upstream::Http2(client) => {
            let mut request = request;
            let upstream = client.http2();
            let started = Instant::now();
            let attempt = async {
                let captured = retry.as_ref().map(|_| capture_connection(&mut request));
                match upstream.request(request).await {
                    Ok(response) => Ok(response),
                    Err(error) => {
                        let error = Failure::Http2(error);
                        match (retry, captured) {
                            (Some(retry), Some(captured))
                                if is_closed_connection(&error)
                                    && was_reused(&captured, started) =>
                            {
                                retrying();
                                upstream
                                    .request(retry.request())
                                    .await
                                    .map_err(Failure::Http2)
                            }
                            _ => Err(error),
                        }
                    }
                }
            };
            let outcome = tokio::time::timeout(config.response_timeout, attempt).await;
            answer(&config, outcome, &exceeded, upgrade)
        }
    }
}

/// The client's response for what the origin did: its response, a failure, or nothing in
/// time.
fn answer<B>(
    config: &Config,
    outcome: Result<Result<http::Response<B>, Failure>, tokio::time::error::Elapsed>,
    exceeded: &AtomicBool,
    upgrade: Option<OnUpgrade>,
) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    match outcome {
        Ok(Ok(response)) => respond(config, response, upgrade),
        Ok(Err(error)) => failure(config, &error, exceeded),
        Err(_elapsed) => origin_failure(
            config,
            RejectionKind::OriginTimeout,
            "the origin sent no response headers within the response timeout",
        ),
    }
}

/// The origin's response for the client: hop-by-hop fields removed, the body streamed; a
/// `101` tunnels both connections into each other.
fn respond<B>(
    config: &Config,
    mut response: http::Response<B>,
    upgrade: Option<OnUpgrade>,
) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        let Some(client) = upgrade else {
            return origin_failure(
                config,
                RejectionKind::OriginUnreachable,
                "the origin switched protocols without being asked to",
            );
        };
        let origin = hyper::upgrade::on(&mut response);
        let authority = config.origin.authority().clone();
        tokio::spawn(async move {
            match tokio::join!(client, origin) {
                (Ok(client), Ok(origin)) => {
                    let mut client = TokioIo::new(client);
                    let mut origin = TokioIo::new(origin);
                    if let Err(error) =
                        tokio::io::copy_bidirectional(&mut client, &mut origin).await
                    {
                        tracing::debug!(target: LOG_TARGET, origin = %authority, %error, "upgraded connection ended with an error");
                    }
                }
                _ => {
                    tracing::debug!(target: LOG_TARGET, origin = %authority, "an upgrade failed on one side")
                }
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    let hop = strip_hop_by_hop(&mut parts.headers);
    if switching {
        match hop.upgrade {
            Some(protocols) => restore_upgrade(&mut parts.headers, &protocols),
            None => {
                return origin_failure(
                    config,
                    RejectionKind::OriginUnreachable,
                    "the origin's 101 names no protocol",
                );
            }
        }
        return Response::from_parts(parts, Body::empty());
    }
    match config.body_idle_timeout {
        Some(timeout) => {
            Response::from_parts(parts, Body::new(IdleTimeoutBody::new(body, timeout)))
        }
        None => Response::from_parts(parts, Body::new(body)),
    }
}

/// The client's answer to a request the origin did not answer.
fn failure(config: &Config, error: &Failure, exceeded: &AtomicBool) -> Response {
    if exceeded.load(Ordering::Relaxed) {
        return refusal(
            RejectionKind::PayloadTooLarge,
            "the request body went over the gateway's body limit",
        )
        .into_response();
    }
    tracing::debug!(target: LOG_TARGET, origin = %config.origin.authority(), error = ?error, "origin request failed");
    let (kind, detail) = if error.is_connect() {
        if find_source::<io::Error>(error.error())
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            (
                RejectionKind::OriginTimeout,
                "connecting to the origin timed out",
            )
        } else if find_source::<rustls::Error>(error.error()).is_some() {
            (
                RejectionKind::OriginUnreachable,
                "TLS with the origin failed",
            )
        } else {
            (
                RejectionKind::OriginUnreachable,
                "the origin could not be connected to",
            )
        }
    } else if is_closed_connection(error) {
        (
            RejectionKind::OriginUnreachable,
            "the origin closed the connection before answering",
        )
    } else {
        (
            RejectionKind::OriginUnreachable,
            "the origin's answer could not be read",
        )
    };
    origin_failure(config, kind, detail)
}

fn origin_failure(config: &Config, kind: RejectionKind, detail: &'static str) -> Response {
    tracing::warn!(
        target: LOG_TARGET,
        origin = %config.origin.authority(),
        reason = kind.as_str(),
        detail,
        "origin request failed"
    );
    Rejection::new(kind).with_detail(detail).into_response()
}

/// The first error of type `E` in `error`'s source chain.
fn find_source<'e, E: StdError + 'static>(error: &'e (dyn StdError + 'static)) -> Option<&'e E> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// Whether the origin closed the connection under the request (hyper#2136: the connection was
/// idle in the pool and the origin's keep-alive ended just as the request went out).
fn is_closed_connection(error: &Failure) -> bool {
    if error.is_connect() {
        return false;
    }
    let error = error.error();
    if let Some(hyper) = find_source::<hyper::Error>(error)
        && (hyper.is_incomplete_message() || hyper.is_canceled())
    {
        return true;
    }
    find_source::<io::Error>(error).is_some_and(|e| {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    })
}

/// Whether the request went out on a connection made before it started: a pooled one.
fn was_reused(captured: &CaptureConnection, started: Instant) -> bool {
    let metadata = captured.connection_metadata();
    let Some(connected) = metadata.as_ref() else {
        return false;
    };
    let mut extras = Extensions::new();
    connected.get_extras(&mut extras);
    extras
        .get::<ConnectedAt>()
        .is_some_and(|ConnectedAt(at)| *at < started)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Proxy;
    use http::HeaderName;
    use proptest::prelude::*;
    use tollgate_core::AccessClaims;

    const TOKEN: &str = "eyJ.verified.sig";

    /// The names a hostile client plays with: ours, credentials, forwarding, hop-by-hop, and
    /// ordinary ones that must pass.
    const NAMES: [&str; 22] = [
        "cf-access-jwt-assertion",
        "cf-access-authenticated-user-email",
        "cf-access-client-id",
        "cf-access-client-secret",
        "cf-access-token",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
        "x-real-ip",
        "cf-connecting-ip",
        "true-client-ip",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "proxy-authorization",
        "trailer",
        "cookie",
        "accept",
        "x-custom",
    ];

    /// Values, some naming other headers (for `Connection`), some cookies.
    const VALUES: [&str; 8] = [
        "forged",
        "x-custom",
        "upgrade, accept",
        "CF_Authorization=forged",
        "a=1; CF_Authorization=forged; b=2",
        "trailers",
        "websocket",
        "keep-alive, cf-access-jwt-assertion",
    ];

    fn user(email: &str) -> AccessIdentity {
        let claims = AccessClaims::user(vec!["aud".into()], "https://t", email, "sub", 0, 9);
        AccessIdentity::from_verified(claims, TOKEN).unwrap()
    }

    /// `name` with each `-` turned into `_` where the bits say.
    fn respell(name: &str, bits: u32) -> String {
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if c == '-' && bits >> (i % 32) & 1 == 1 {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    }

    fn headers() -> impl Strategy<Value = Vec<(String, &'static str)>> {
        proptest::collection::vec(
            (0..NAMES.len(), any::<u32>(), 0..VALUES.len())
                .prop_map(|(n, bits, v)| (respell(NAMES[n], bits), VALUES[v])),
            0..16,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the client sends, the origin gets our identity headers once, with our
        /// values, no credential, no forged forwarding or identity header in any spelling, and
        /// no hop-by-hop field but `te: trailers` (and an upgrade put back).
        #[test]
        fn hostile_headers_never_reach_the_origin(sent in headers(), service in any::<bool>()) {
            let proxy = Proxy::new("http://127.0.0.1:9").unwrap();
            let mut request = Request::new(Body::empty());
            for (name, value) in &sent {
                request.headers_mut().append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_static(value),
                );
            }
            let identity = if service {
                let claims = AccessClaims::service_token("aud", "https://t", "c.access", 0, 9);
                AccessIdentity::from_verified(claims, TOKEN).unwrap()
            } else {
                user("jane@example.com")
            };
            request.extensions_mut().insert(identity);
            let prepared = prepare(&proxy.config, request).unwrap();
            let out = prepared.request.headers();

            let all = |name: &str| -> Vec<&str> {
                out.iter()
                    .filter(|(n, _)| n.as_str().replace('_', "-") == name)
                    .map(|(_, v)| v.to_str().unwrap())
                    .collect()
            };
            prop_assert_eq!(all("cf-access-jwt-assertion"), vec![TOKEN]);
            let email: Vec<&str> = if service { vec![] } else { vec!["jane@example.com"] };
            prop_assert_eq!(all("cf-access-authenticated-user-email"), email);
            prop_assert_eq!(all("x-forwarded-proto"), vec!["http"]);
            for gone in ["cf-access-client-id", "cf-access-client-secret", "cf-access-token",
                         "x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip",
                         "cf-connecting-ip", "true-client-ip"] {
                prop_assert!(all(gone).is_empty(), "{} reached the origin: {:?}", gone, out);
            }
            // Hop-by-hop fields by their own names (`keep_alive` is some other header).
            for gone in ["keep-alive", "proxy-connection", "proxy-authorization", "trailer"] {
                prop_assert!(!out.contains_key(gone), "{} reached the origin: {:?}", gone, out);
            }
            let te: Vec<&str> = out.get_all(TE).iter().map(|v| v.to_str().unwrap()).collect();
            prop_assert!(te.is_empty() || te == vec!["trailers"], "te: {:?}", te);
            let cookies = all("cookie");
            prop_assert_eq!(cookies.len(), 1);
            let expected = format!("CF_Authorization={TOKEN}");
            prop_assert!(cookies[0].ends_with(&expected), "cookie: {}", cookies[0]);
            prop_assert_eq!(cookies[0].matches("CF_Authorization").count(), 1);
            // An upgrade is put back only whole.
            let connection: Vec<&str> =
                out.get_all("connection").iter().map(|v| v.to_str().unwrap()).collect();
            let upgrade: Vec<&str> =
                out.get_all("upgrade").iter().map(|v| v.to_str().unwrap()).collect();
            prop_assert!(
                (connection.is_empty() && upgrade.is_empty())
                    || (connection == vec!["upgrade"] && !upgrade.is_empty()),
                "connection {:?}, upgrade {:?}", connection, upgrade
            );
            // No client Host: the origin's, as HTTP/1.1 needs one; and the path alone.
            prop_assert_eq!(out.get_all(HOST).iter().collect::<Vec<_>>(), vec!["127.0.0.1:9"]);
            prop_assert_eq!(prepared.request.uri(), "/");
        }
    }
}
