//! [`ProxyError`]: a gateway that cannot be built.

use std::fmt;

/// The category of a [`ProxyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyErrorKind {
    /// The origin is not an absolute `http://` or `https://` URL with a host (unparsable, no
    /// host, or another scheme).
    InvalidOrigin,
    /// The origin URL carries user information (`user:password@`): credentials belong in
    /// configuration the origin checks, not in the URL a gateway logs.
    OriginUserinfo,
    /// The origin URL carries a query (`?…`): requests keep their own query, and there is no
    /// sound way to merge two.
    OriginQuery,
    /// The origin URL carries a fragment (`#…`), which is never sent over HTTP.
    OriginFragment,
    /// A root certificate added with
    /// [`add_root_certificate`](crate::OriginClientBuilder::add_root_certificate) is not a
    /// valid DER X.509 certificate.
    InvalidRootCertificate,
    /// No root certificate to verify HTTPS origins with (none built in selected, none added).
    NoRootCertificates,
    /// The TLS configuration could not be built.
    Tls,
}

impl ProxyErrorKind {
    /// A short machine name, `snake_case`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyErrorKind::InvalidOrigin => "invalid_origin",
            ProxyErrorKind::OriginUserinfo => "origin_userinfo",
            ProxyErrorKind::OriginQuery => "origin_query",
            ProxyErrorKind::OriginFragment => "origin_fragment",
            ProxyErrorKind::InvalidRootCertificate => "invalid_root_certificate",
            ProxyErrorKind::NoRootCertificates => "no_root_certificates",
            ProxyErrorKind::Tls => "tls",
        }
    }
}

impl fmt::Display for ProxyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a [`Proxy`](crate::Proxy) or an [`OriginClient`](crate::OriginClient) could not be
/// built. Opaque: match on [`kind`](Self::kind). The message never repeats the origin URL (it
/// might hold a password).
///
/// ```
/// use tollgate_gateway::{Proxy, ProxyErrorKind};
///
/// let error = Proxy::new("ftp://files.internal").unwrap_err();
/// assert_eq!(error.kind(), ProxyErrorKind::InvalidOrigin);
/// let error = Proxy::new("http://admin:hunter2@app.internal").unwrap_err();
/// assert_eq!(error.kind(), ProxyErrorKind::OriginUserinfo);
/// assert!(!error.to_string().contains("hunter2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    kind: ProxyErrorKind,
    detail: &'static str,
}

impl ProxyError {
    pub(crate) fn new(kind: ProxyErrorKind, detail: &'static str) -> Self {
        Self { kind, detail }
    }

    /// The category.
    pub fn kind(&self) -> ProxyErrorKind {
        self.kind
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail)
    }
}

impl std::error::Error for ProxyError {}
