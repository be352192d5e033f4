//! [`OriginClient`]: the pooled HTTP client every [`Proxy`](crate::Proxy) sends through.
//!
//! Connections over a rustls connector (aws-lc-rs, like the rest of the workspace): HTTP/1.1
//! ones in tollgate's own pool, each driven by the request using it rather than by a task of
//! its own (the module `pool` says why: a fifth of the gateway's CPU time), HTTP/2 ones in a
//! hyper-util legacy `Client`, which multiplexes. Both configured the way a gateway needs
//! (see the crate docs for why each matters):
//!
//! - **no small idle cap per origin** (a cap below the concurrency churns connections);
//! - **idle connections reaped** in the background (hyper-util's needs `pool_timer`);
//! - **an idle timeout below common keep-alive timeouts** (4 s by default; Node's is 5 s), so
//!   the pool gives a connection up before the origin does (hyper#2136);
//! - a connect timeout (10 s by default);
//! - HTTP/1.1 to origins by default, where upgrades such as WebSocket work; HTTP/2 for a proxy
//!   built [`with_http2_only`](crate::Proxy::with_http2_only) (prior knowledge over `http://`,
//!   ALPN `h2` over `https://`).
//!
//! ```
//! # fn main() -> Result<(), tollgate_gateway::ProxyError> {
//! use std::time::Duration;
//! use tollgate_gateway::{OriginClient, Proxy, RootCerts};
//!
//! let client = OriginClient::builder()
//!     .root_certs(RootCerts::Native)
//!     .connect_timeout(Duration::from_secs(3))
//!     .build()?;
//! // Both proxies share one pool.
//! let api = Proxy::with_client("http://127.0.0.1:3000/api", client.clone())?;
//! let docs = Proxy::with_client("https://docs.internal", client)?;
//! # let _ = (api, docs); Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use tower_service::Service;

use crate::body::LimitedBody;
use crate::error::{ProxyError, ProxyErrorKind};
use crate::origin::Origin;
use crate::pool::{Http1Pool, OriginConns};

/// The hyper-util client a proxy sends HTTP/2 with.
pub(crate) type UpstreamClient = Client<Stamped<HttpsConnector<HttpConnector>>, LimitedBody>;

/// Which built-in root certificates verify HTTPS origins (certificates added with
/// [`OriginClientBuilder::add_root_certificate`] are trusted as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RootCerts {
    /// Mozilla's root program, compiled in (`webpki-roots`): the same everywhere. The default.
    #[default]
    WebPki,
    /// The operating system's store, read once when the client is built.
    Native,
    /// None: only added certificates (a private CA, a test's self-signed origin).
    None,
}

/// A shared, pooled client for origins. Cheap to clone: clones share the pools, so build one
/// and hand it to every [`Proxy`](crate::Proxy) ([`Proxy::with_client`](crate::Proxy::with_client)).
#[derive(Clone)]
pub struct OriginClient {
    inner: Arc<Clients>,
}

struct Clients {
    /// HTTP/1.1 (no ALPN offered over TLS).
    http1: Http1Pool,
    /// HTTP/2 only: prior knowledge over `http://`, ALPN `h2` over `https://`.
    http2: UpstreamClient,
}

impl OriginClient {
    /// A client with the default settings ([`OriginClientBuilder`]'s).
    pub fn new() -> Result<Self, ProxyError> {
        Self::builder().build()
    }

    /// A builder, to change the defaults.
    pub fn builder() -> OriginClientBuilder {
        OriginClientBuilder::default()
    }

    /// The HTTP/2 client.
    pub(crate) fn http2(&self) -> &UpstreamClient {
        &self.inner.http2
    }

    /// The HTTP/1.1 connections to `origin`, shared by every proxy to it on this client.
    pub(crate) fn http1(&self, origin: &Origin) -> Arc<OriginConns> {
        self.inner.http1.origin(origin.target())
    }
}

impl fmt::Debug for OriginClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginClient").finish_non_exhaustive()
    }
}

/// Settings of an [`OriginClient`]; [`build`](Self::build) makes it.
#[derive(Clone)]
#[must_use]
pub struct OriginClientBuilder {
    idle_timeout: Duration,
    max_idle_per_origin: usize,
    connect_timeout: Duration,
    roots: RootCerts,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for OriginClientBuilder {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(4),
            max_idle_per_origin: usize::MAX,
            connect_timeout: Duration::from_secs(10),
            roots: RootCerts::default(),
            extra_roots: Vec::new(),
        }
    }
}

impl fmt::Debug for OriginClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginClientBuilder")
            .field("idle_timeout", &self.idle_timeout)
            .field("max_idle_per_origin", &self.max_idle_per_origin)
            .field("connect_timeout", &self.connect_timeout)
            .field("roots", &self.roots)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl OriginClientBuilder {
    /// How long an idle pooled connection is kept (default 4 s). Keep it below the origin's
    /// keep-alive timeout (Node's default is 5 s, nginx's 75 s), or requests race the origin
    /// closing the connection.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The most idle connections kept per origin (default: no limit). A limit below the
    /// number of concurrent requests makes the pool close and reopen connections under load.
    pub fn pool_max_idle_per_origin(mut self, max: usize) -> Self {
        self.max_idle_per_origin = max;
        self
    }

    /// How long connecting (TCP) to an origin may take (default 10 s); past it the request is
    /// answered 504.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Which built-in root certificates to trust (default [`RootCerts::WebPki`]).
    pub fn root_certs(mut self, roots: RootCerts) -> Self {
        self.roots = roots;
        self
    }

    /// Trusts one more root certificate, DER-encoded: a private CA, or a test's self-signed
    /// origin. Checked when the client is built.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(CertificateDer::from(der.into()));
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`InvalidRootCertificate`](ProxyErrorKind::InvalidRootCertificate) for an added
    /// certificate that does not parse, [`NoRootCertificates`](ProxyErrorKind::NoRootCertificates)
    /// when there is nothing to trust.
    pub fn build(self) -> Result<OriginClient, ProxyError> {
        let mut roots = RootCertStore::empty();
        match self.roots {
            RootCerts::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            RootCerts::Native => {
                // Certificates the store holds but rustls cannot parse are skipped, as
                // browsers do; errors reading the store leave what could be read.
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
            RootCerts::None => {}
        }
        for der in self.extra_roots {
            roots.add(der).map_err(|_| {
                ProxyError::new(
                    ProxyErrorKind::InvalidRootCertificate,
                    "an added root certificate is not a valid DER X.509 certificate",
                )
            })?;
        }
        if roots.is_empty() {
            return Err(ProxyError::new(
                ProxyErrorKind::NoRootCertificates,
                "no root certificates to verify HTTPS origins with",
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| {
                ProxyError::new(
                    ProxyErrorKind::Tls,
                    "the TLS configuration could not be built",
                )
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));

        let http1_connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http.clone());
        let http2_connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http2()
            .wrap_connector(http);

        let http2 = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(self.idle_timeout)
            .pool_max_idle_per_host(self.max_idle_per_origin)
            .http2_only(true)
            .build(Stamped(http2_connector));
        Ok(OriginClient {
            inner: Arc::new(Clients {
                http1: Http1Pool::new(http1_connector, self.idle_timeout, self.max_idle_per_origin),
                http2,
            }),
        })
    }
}

/// When a pooled connection was made, in its [`Connected`] extras: a request that fails on
/// a connection made before it started was sent on a reused one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectedAt(pub(crate) Instant);

/// A connector whose connections carry [`ConnectedAt`].
#[derive(Debug, Clone)]
pub(crate) struct Stamped<C>(C);

impl<C> Service<Uri> for Stamped<C>
where
    C: Service<Uri>,
    C::Future: Send + 'static,
{
    type Response = StampedIo<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(StampedIo {
                io,
                at: Instant::now(),
            })
        })
    }
}

/// A connection stamped with when it was made.
#[derive(Debug)]
pub(crate) struct StampedIo<T> {
    io: T,
    at: Instant,
}

impl<T: Connection> Connection for StampedIo<T> {
    fn connected(&self) -> Connected {
        self.io.connected().extra(ConnectedAt(self.at))
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for StampedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for StampedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_or_missing_roots_are_refused_at_build_time() {
        let error = OriginClient::builder()
            .add_root_certificate(b"not a certificate".to_vec())
            .build()
            .err()
            .map(|e| e.kind());
        assert_eq!(error, Some(ProxyErrorKind::InvalidRootCertificate));
        let error = OriginClient::builder()
            .root_certs(RootCerts::None)
            .build()
            .err()
            .map(|e| e.kind());
        assert_eq!(error, Some(ProxyErrorKind::NoRootCertificates));
        assert!(OriginClient::new().is_ok());
    }
}
