//! [`Origin`]: where a [`Proxy`](crate::Proxy) sends requests, parsed once at build time.

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use tollgate_core::app_domain::{OriginErrorKind, OriginUrl};

use crate::error::{ProxyError, ProxyErrorKind};

/// An origin: scheme, authority and an optional path prefix, checked when the proxy is built.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// The path prefix without a trailing `/` (`""` for none).
    prefix: String,
    /// `Host` as the origin expects it: the authority, its port left out when it is the
    /// scheme's default.
    host: HeaderValue,
}

impl Origin {
    /// Parses `origin` by tollgate-core's [`OriginUrl`] rules (the same the application
    /// records are checked by): `http://` or `https://`, a host, an optional port and path;
    /// no user information, query or fragment.
    pub(crate) fn parse(origin: &str) -> Result<Self, ProxyError> {
        let url = OriginUrl::parse(origin).map_err(|e| {
            let kind = match e.kind() {
                OriginErrorKind::Userinfo => ProxyErrorKind::OriginUserinfo,
                OriginErrorKind::Query => ProxyErrorKind::OriginQuery,
                OriginErrorKind::Fragment => ProxyErrorKind::OriginFragment,
                _ => ProxyErrorKind::InvalidOrigin,
            };
            ProxyError::new(kind, e.detail())
        })?;
        let invalid =
            || ProxyError::new(ProxyErrorKind::InvalidOrigin, "the origin host is invalid");
        let scheme = if url.is_https() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let authority: Authority = url.authority().parse().map_err(|_| invalid())?;
        let default_port = if url.is_https() { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(port) if port == default_port => authority.host(),
            _ => authority.as_str(),
        };
        let host = HeaderValue::from_str(host).map_err(|_| invalid())?;
        Ok(Self {
            scheme,
            authority,
            prefix: url.path_prefix().to_owned(),
            host,
        })
    }

    /// The authority (`host[:port]`), for logs.
    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The `Host` header value naming the origin itself.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// The path and query a request for `request` goes to: the prefix, then the request's
    /// path and query (`/` for a request without an origin-form path, such as `OPTIONS *`).
    /// What an HTTP/1.1 request line carries.
    pub(crate) fn path_for(&self, request: &Uri) -> Option<PathAndQuery> {
        let path = request.path();
        let path = if path.starts_with('/') { path } else { "/" };
        match (self.prefix.is_empty(), request.query()) {
            (true, None) => Some(match request.path_and_query() {
                Some(pq) if pq.as_str().starts_with('/') => pq.clone(),
                _ => PathAndQuery::from_static("/"),
            }),
            (_, query) => {
                let mut joined = String::with_capacity(
                    self.prefix.len() + path.len() + 1 + query.map_or(0, str::len),
                );
                joined.push_str(&self.prefix);
                joined.push_str(path);
                if let Some(query) = query {
                    joined.push('?');
                    joined.push_str(query);
                }
                PathAndQuery::try_from(joined).ok()
            }
        }
    }

    /// The absolute URI a request for `request` goes to ([`path_for`](Self::path_for) on
    /// the origin): what HTTP/2's pseudo-headers are made of.
    pub(crate) fn uri_for(&self, request: &Uri) -> Option<Uri> {
        self.with_path(self.path_for(request)?)
    }

    /// `scheme://authority/`: where connections go.
    pub(crate) fn target(&self) -> Uri {
        // Made of parts already checked: it always builds.
        self.with_path(PathAndQuery::from_static("/"))
            .unwrap_or_default()
    }

    fn with_path(&self, path_and_query: PathAndQuery) -> Option<Uri> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kind(origin: &str) -> Option<ProxyErrorKind> {
        Origin::parse(origin).err().map(|e| e.kind())
    }

    #[test]
    fn accepted_and_refused_origins() {
        assert_eq!(kind("http://127.0.0.1:8080"), None);
        assert_eq!(kind("https://app.internal/api/"), None);
        assert_eq!(kind("HTTP://app.internal"), None);
        assert_eq!(
            kind("ftp://app.internal"),
            Some(ProxyErrorKind::InvalidOrigin)
        );
        assert_eq!(kind("app.internal:80"), Some(ProxyErrorKind::InvalidOrigin));
        assert_eq!(kind("/just/a/path"), Some(ProxyErrorKind::InvalidOrigin));
        assert_eq!(kind(""), Some(ProxyErrorKind::InvalidOrigin));
        assert_eq!(kind("http://"), Some(ProxyErrorKind::InvalidOrigin));
        assert_eq!(
            kind("http://u:p@app.internal"),
            Some(ProxyErrorKind::OriginUserinfo)
        );
        assert_eq!(
            kind("http://u@app.internal"),
            Some(ProxyErrorKind::OriginUserinfo)
        );
        assert_eq!(
            kind("http://app.internal/?a=b"),
            Some(ProxyErrorKind::OriginQuery)
        );
        assert_eq!(
            kind("http://app.internal/?"),
            Some(ProxyErrorKind::OriginQuery)
        );
        assert_eq!(
            kind("http://app.internal/#top"),
            Some(ProxyErrorKind::OriginFragment)
        );
    }

    #[test]
    fn paths_are_joined_and_queries_kept() {
        let origin = Origin::parse("http://app.internal:8080/api/").unwrap();
        let uri = |s: &str| origin.uri_for(&s.parse().unwrap()).unwrap().to_string();
        assert_eq!(
            uri("/users?x=1&y"),
            "http://app.internal:8080/api/users?x=1&y"
        );
        assert_eq!(uri("/"), "http://app.internal:8080/api/");
        assert_eq!(
            uri("https://front.example/a?b"),
            "http://app.internal:8080/api/a?b"
        );
        assert_eq!(uri("*"), "http://app.internal:8080/api/");
        let bare = Origin::parse("https://app.internal").unwrap();
        assert_eq!(
            bare.uri_for(&"/a/b?c=d".parse().unwrap())
                .unwrap()
                .to_string(),
            "https://app.internal/a/b?c=d"
        );
        assert_eq!(
            bare.path_for(&"/a/b?c=d".parse().unwrap()).unwrap(),
            "/a/b?c=d"
        );
        assert_eq!(origin.path_for(&"*".parse().unwrap()).unwrap(), "/api/");
        assert_eq!(origin.target().to_string(), "http://app.internal:8080/");
        assert_eq!(bare.host(), "app.internal");
        assert_eq!(Origin::parse("https://a:443").unwrap().host(), "a");
        assert_eq!(Origin::parse("http://a:443").unwrap().host(), "a:443");
    }
}
