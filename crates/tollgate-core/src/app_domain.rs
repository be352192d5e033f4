//! [`AppDomain`]: where an application lives, and [`DomainTable`]: which application a request
//! belongs to.
//!
//! An application's `domain` is written as Cloudflare writes it: `host`, `host/path` or
//! `*.host` (exactly one label in place of the `*`), each with an optional `:port`. A request
//! is matched by its host (the `Host` header, or the `:authority` of HTTP/2) and then its path:
//!
//! - hosts compare case-insensitively and a trailing dot is ignored; a domain without a port
//!   matches the host on any port, a domain with one only on that port;
//! - a path matches on segment boundaries (`/service-token` covers `/service-token` and
//!   `/service-token/x`, not `/service-tokens`), case-insensitively, so that an origin on a
//!   case-insensitive file system cannot be reached around its application;
//! - the most specific domain wins: an exact host over a wildcard, then the longer path, then
//!   a domain with a port over one without.
//!
//! Paths are normalised before matching by [`normalize_path`] — percent-encoded unreserved
//! characters decoded, dot segments resolved, empty segments dropped — so that
//! `/service-token/../admin` or `/%61dmin` can neither slip past an application nor into
//! one. What normalisation cannot make unambiguous is refused: an encoded `/`, `\` or NUL,
//! a literal `\`, `..;`-style segments, malformed percent escapes.
//!
//! ```
//! use tollgate_core::app_domain::{AppDomain, DomainTable, normalize_path};
//!
//! let mut table = DomainTable::new();
//! table.insert("example.com".parse::<AppDomain>()?, "site")?;
//! table.insert("example.com/service-token/*".parse()?, "bots")?;
//! table.insert("*.example.com".parse()?, "tenants")?;
//!
//! let path = normalize_path("/service-token/../%61dmin")?;
//! assert_eq!(path, "/admin");
//! assert_eq!(table.find("Example.COM.", &path).map(|(_, app)| *app), Some("site"));
//! assert_eq!(table.find("example.com:8443", "/service-token/x").map(|(_, a)| *a), Some("bots"));
//! assert_eq!(table.find("acme.example.com", "/").map(|(_, a)| *a), Some("tenants"));
//! assert!(table.find("a.b.example.com", "/").is_none());
//! // The same domain twice is ambiguous: refused.
//! assert!(table.insert("EXAMPLE.com/service-token".parse()?, "again").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// An application's domain, parsed and spelled one way (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppDomain {
    /// Lowercase, no trailing dot; for a wildcard, the parent (`example.com` of `*.example.com`).
    host: String,
    wildcard: bool,
    port: Option<u16>,
    /// Normalised and lowercase; empty for the whole host, else `/a/b` without a trailing slash.
    path: String,
    canonical: String,
}

/// Why a string is not an application domain. The message says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDomainError {
    message: String,
}

impl AppDomainError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for AppDomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an application domain: {}; write host, host/path or *.host, \
             with an optional :port",
            self.message
        )
    }
}

impl std::error::Error for AppDomainError {}

impl AppDomain {
    /// Parses `host`, `host/path`, `*.host` or `*.host/path`, each with an optional `:port`;
    /// a trailing `/*` on the path means the same as none.
    pub fn parse(input: &str) -> Result<Self, AppDomainError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(AppDomainError::new("it is empty"));
        }
        if input.contains("://") {
            return Err(AppDomainError::new(
                "a domain has no scheme (the gateway serves it on every scheme it listens on)",
            ));
        }
        if input.contains(['?', '#']) {
            return Err(AppDomainError::new("a domain has no query or fragment"));
        }
        let (authority, path) = match input.find('/') {
            Some(at) => input.split_at(at),
            None => (input, ""),
        };
        let (host, port) = split_port(authority)
            .ok_or_else(|| AppDomainError::new(format!("{authority:?} has a bad port")))?;
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(parent) => (parent.to_owned(), true),
            None => (host, false),
        };
        if !is_host(&host) {
            return Err(AppDomainError::new(format!(
                "{host:?} is not a host name (a wildcard is one leading \"*.\")"
            )));
        }
        let path = domain_path(path)?;
        let canonical = format!(
            "{}{host}{}{path}",
            if wildcard { "*." } else { "" },
            port.map(|p| format!(":{p}")).unwrap_or_default(),
        );
        Ok(Self {
            host,
            wildcard,
            port,
            path,
            canonical,
        })
    }

    /// The canonical spelling: lowercase, no trailing dot, normalised path without `/*`.
    /// Two domains are the same application's exactly when their canonical spellings are equal.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The host (for a wildcard, the parent host `*.` stands in front of).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether this is a `*.host` domain.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The port, if the domain names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The path prefix (`""` for the whole host).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether a request to `port` with the normalised `path` falls under this domain
    /// (the host has been matched by the caller).
    fn covers(&self, port: Option<u16>, path: &str) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        let prefix = self.path.as_bytes();
        let path = path.as_bytes();
        path.len() >= prefix.len()
            && path[..prefix.len()].eq_ignore_ascii_case(prefix)
            && (path.len() == prefix.len() || path[prefix.len()] == b'/')
    }
}

impl FromStr for AppDomain {
    type Err = AppDomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for AppDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// `host[:port]` or `[v6][:port]` → host and port; `None` for a bad port.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let host = &authority[..end + 2];
        match after {
            "" => return Some((host, None)),
            _ => (host, after.strip_prefix(':')?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => return Some((authority, None)),
        }
    };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(port) => Some((host, Some(port))),
    }
}

/// A DNS name (letters, digits, `-`, `_`; labels of 1–63 characters not starting or ending
/// with `-`; 253 at most) or a bracketed IPv6 literal. Lowercase already.
fn is_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// A domain's path: normalised like a request's, lowercase, without a trailing `/` or `/*`.
fn domain_path(path: &str) -> Result<String, AppDomainError> {
    let path = path
        .strip_suffix("/*")
        .or_else(|| path.strip_suffix('*'))
        .unwrap_or(path);
    if path.contains('*') {
        return Err(AppDomainError::new(
            "a path may end in /* but has no other wildcard",
        ));
    }
    if path.is_empty() {
        return Ok(String::new());
    }
    let encoded = encode_path(path);
    let normalized = normalize_path(&encoded)
        .map_err(|e| AppDomainError::new(format!("its path is ambiguous: {e}")))?;
    Ok(normalized.trim_end_matches('/').to_ascii_lowercase())
}

/// Percent-encodes what may not appear literally in a path (spaces, non-ASCII, controls), so a
/// domain typed with `é` matches the request that sends `%C3%A9`.
fn encode_path(path: &str) -> Cow<'_, str> {
    let literal = |b: u8| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'`');
    if path.bytes().all(literal) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() * 3);
    for b in path.bytes() {
        if literal(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

/// Why a request path cannot be matched safely. 400 for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathError(&'static str);

impl PathError {
    /// What is wrong, in a few words (no part of the path itself).
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PathError {}

/// Normalises a request path (no query) so that it has exactly one meaning: percent escapes of
/// unreserved characters decoded (`%61` → `a`), other escapes' hex uppercased, `.` and `..`
/// segments resolved (never above the root), empty segments (`//`) dropped, a trailing `/`
/// kept. Borrowed when the path is already normal.
///
/// Refused, because origins disagree on what they mean: an encoded `/` (`%2F`), `\` (`%5C`) or
/// NUL (`%00`), a literal `\`, a dot segment with parameters (`..;x`, `.;x`), a malformed
/// escape, and anything not starting with `/`.
///
/// ```
/// use tollgate_core::app_domain::normalize_path;
///
/// assert_eq!(normalize_path("/a/./b/../c//d/")?, "/a/c/d/");
/// assert_eq!(normalize_path("/%7euser/%2e%2e/x%3f")?, "/x%3F");
/// assert!(normalize_path("/a%2f..%2fadmin").is_err());
/// assert!(normalize_path("/a/..;/admin").is_err());
/// # Ok::<(), tollgate_core::app_domain::PathError>(())
/// ```
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError("the path does not start with /"));
    }
    if path.contains('\\') {
        return Err(PathError("the path holds a backslash"));
    }
    let already_normal = !path.contains('%')
        && !path.contains("//")
        && !path
            .split('/')
            .any(|segment| matches!(segment_name(segment), "." | ".."));
    if already_normal {
        return Ok(Cow::Borrowed(path));
    }
    let mut segments: Vec<String> = Vec::new();
    let raw: Vec<&str> = path[1..].split('/').collect();
    let mut trailing_slash = false;
    for (i, segment) in raw.iter().enumerate() {
        let last = i + 1 == raw.len();
        let decoded = decode_segment(segment)?;
        let name = segment_name(&decoded);
        if decoded.contains(';') && matches!(name, "." | "..") {
            return Err(PathError("a dot segment has parameters"));
        }
        match decoded.as_str() {
            "" => trailing_slash = last,
            "." => trailing_slash = last,
            ".." => {
                segments.pop();
                trailing_slash = last;
            }
            _ => {
                segments.push(decoded);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// A segment's name before any `;` parameters.
fn segment_name(segment: &str) -> &str {
    segment.split(';').next().unwrap_or(segment)
}

/// Decodes the unreserved escapes of one segment, uppercases the others, refuses the ambiguous.
/// Works on bytes: everything but an escape is copied as it is, multi-byte characters included
/// (an escape's `%` is ASCII, never inside one).
fn decode_segment(segment: &str) -> Result<String, PathError> {
    let bytes = segment.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or(PathError("the path has a malformed percent escape"))?;
        let value = u8::from_str_radix(hex, 16).map_err(|_| PathError("malformed escape"))?;
        match value {
            b'/' | b'\\' => return Err(PathError("the path holds an encoded / or \\")),
            0 => return Err(PathError("the path holds an encoded NUL")),
            v if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') => out.push(v),
            v => out.extend_from_slice(format!("%{v:02X}").as_bytes()),
        }
        i += 3;
    }
    // Valid: the input's characters whole, and ASCII for the escapes.
    String::from_utf8(out).map_err(|_| PathError("the path is not UTF-8"))
}

/// A request's host, split from its port: lowercase, without a trailing dot. `None` when the
/// value is not a host (the request is then refused with 400).
///
/// ```
/// use tollgate_core::app_domain::request_host;
///
/// let (host, port) = request_host("API.Example.com.:8443").unwrap();
/// assert_eq!((host.as_ref(), port), ("api.example.com", Some(8443)));
/// assert!(request_host("evil.com/x").is_none());
/// ```
pub fn request_host(value: &str) -> Option<(Cow<'_, str>, Option<u16>)> {
    let (host, port) = split_port(value)?;
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    };
    is_host(&host).then_some((host, port))
}

/// An application's origin: the `http://` or `https://` URL a gateway proxies to, with an
/// optional path prefix, spelled one way (scheme and host lowercase, no trailing `/`).
///
/// ```
/// use tollgate_core::app_domain::OriginUrl;
///
/// let origin: OriginUrl = "HTTP://127.0.0.1:5000/app/".parse()?;
/// assert_eq!(origin.as_str(), "http://127.0.0.1:5000/app");
/// assert_eq!(origin.path_prefix(), "/app");
/// assert!(!origin.is_https());
/// assert!("ftp://example.com".parse::<OriginUrl>().is_err());
/// assert!("https://user:pw@example.com".parse::<OriginUrl>().is_err());
/// # Ok::<(), tollgate_core::app_domain::OriginError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginUrl {
    canonical: String,
    https: bool,
    /// `host[:port]`, lowercase.
    authority_len: usize,
}

/// Why a string is not an origin URL: a [`kind`](OriginError::kind) and a message that says
/// what is wrong, never echoing the input (it may carry a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginError {
    kind: OriginErrorKind,
    message: &'static str,
}

/// What is wrong with an origin URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OriginErrorKind {
    /// Not `http://` or `https://`, or no host, a bad port, an ambiguous path.
    Invalid,
    /// It carries a user name or password (`user:pw@`).
    Userinfo,
    /// It has a query.
    Query,
    /// It has a fragment.
    Fragment,
}

impl OriginError {
    const fn new(kind: OriginErrorKind, message: &'static str) -> Self {
        Self { kind, message }
    }

    const fn invalid(message: &'static str) -> Self {
        Self::new(OriginErrorKind::Invalid, message)
    }

    /// What is wrong.
    pub fn kind(&self) -> OriginErrorKind {
        self.kind
    }

    /// The message without the "not an origin URL" prefix.
    pub fn detail(&self) -> &'static str {
        self.message
    }
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an origin URL: {}", self.message)
    }
}

impl std::error::Error for OriginError {}

impl OriginUrl {
    /// Parses `http[s]://host[:port][/path]`: no user name or password, query or fragment.
    pub fn parse(input: &str) -> Result<Self, OriginError> {
        let input = input.trim();
        let (scheme, rest) = input.split_once("://").ok_or(OriginError::invalid(
            "write http://host[:port] or https://host[:port]",
        ))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(OriginError::invalid("the scheme must be http or https")),
        };
        if rest.contains('#') {
            return Err(OriginError::new(
                OriginErrorKind::Fragment,
                "an origin has no fragment",
            ));
        }
        if rest.contains('?') {
            return Err(OriginError::new(
                OriginErrorKind::Query,
                "an origin has no query",
            ));
        }
        if rest.contains('@') {
            return Err(OriginError::new(
                OriginErrorKind::Userinfo,
                "an origin carries no user name or password",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (host, port) =
            split_port(authority).ok_or(OriginError::invalid("the port is not valid"))?;
        let host = host.to_ascii_lowercase();
        if !is_host(&host) {
            return Err(OriginError::invalid(
                "the host is not a host name or IP address",
            ));
        }
        let path = path.trim_end_matches('/');
        if !path.is_empty() {
            let normal =
                normalize_path(path).map_err(|_| OriginError::invalid("the path is ambiguous"))?;
            if normal != path || !path.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(OriginError::invalid(
                    "the path must be normalised (no dot segments, //, or escapes to decode)",
                ));
            }
        }
        let authority = match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Ok(Self {
            canonical: format!(
                "{}://{authority}{path}",
                if https { "https" } else { "http" }
            ),
            https,
            authority_len: authority.len(),
        })
    }

    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Whether the origin is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `scheme://host[:port]`, without the path prefix.
    pub fn base(&self) -> &str {
        &self.canonical[..self.scheme_len() + self.authority_len]
    }

    /// `host[:port]`.
    pub fn authority(&self) -> &str {
        &self.canonical[self.scheme_len()..self.scheme_len() + self.authority_len]
    }

    /// The path prefix every request path is appended to (`""` for none).
    pub fn path_prefix(&self) -> &str {
        &self.canonical[self.scheme_len() + self.authority_len..]
    }

    fn scheme_len(&self) -> usize {
        if self.https {
            "https://".len()
        } else {
            "http://".len()
        }
    }
}

impl FromStr for OriginUrl {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for OriginUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// Two applications would claim the same requests: their domains are the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainOverlap {
    domain: String,
}

impl DomainOverlap {
    /// The canonical spelling both applications share.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl fmt::Display for DomainOverlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the domain {} is already taken", self.domain)
    }
}

impl std::error::Error for DomainOverlap {}

/// Domains and what they lead to (an application, a service): finds the most specific entry
/// for a request. Lookups cost a hash of the host and a scan of that host's entries.
#[derive(Debug, Clone)]
pub struct DomainTable<T> {
    exact: HashMap<String, Vec<(AppDomain, T)>>,
    wildcard: HashMap<String, Vec<(AppDomain, T)>>,
    len: usize,
}

impl<T> Default for DomainTable<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            len: 0,
        }
    }
}

impl<T> DomainTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `domain`; a domain already in the table (the same canonical spelling) is refused.
    pub fn insert(&mut self, domain: AppDomain, value: T) -> Result<(), DomainOverlap> {
        let map = if domain.wildcard {
            &mut self.wildcard
        } else {
            &mut self.exact
        };
        let entries = map.entry(domain.host.clone()).or_default();
        if entries.iter().any(|(d, _)| d.canonical == domain.canonical) {
            return Err(DomainOverlap {
                domain: domain.canonical,
            });
        }
        entries.push((domain, value));
        // Longer paths first, then a named port before none: the first cover is the most specific.
        entries.sort_by(|(a, _), (b, _)| {
            (b.path.len(), b.port.is_some()).cmp(&(a.path.len(), a.port.is_some()))
        });
        self.len += 1;
        Ok(())
    }

    /// The number of domains in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most specific entry for a request to `host` (a `Host` value, port included) and the
    /// normalised `path` (see [`normalize_path`]); `None` when no domain covers it or `host`
    /// is not a host.
    pub fn find(&self, host: &str, path: &str) -> Option<(&AppDomain, &T)> {
        let (host, port) = request_host(host)?;
        fn pick<'t, T>(
            entries: Option<&'t Vec<(AppDomain, T)>>,
            port: Option<u16>,
            path: &str,
        ) -> Option<(&'t AppDomain, &'t T)> {
            entries?
                .iter()
                .find(|(d, _)| d.covers(port, path))
                .map(|(d, v)| (d, v))
        }
        if let Some(found) = pick(self.exact.get(host.as_ref()), port, path) {
            return Some(found);
        }
        // `*.parent` stands for exactly one label.
        let (label, parent) = host.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        pick(self.wildcard.get(parent), port, path)
    }

    /// Every domain and its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&AppDomain, &T)> {
        self.exact
            .values()
            .chain(self.wildcard.values())
            .flatten()
            .map(|(d, v)| (d, v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn domain(s: &str) -> AppDomain {
        AppDomain::parse(s).unwrap()
    }

    #[test]
    fn canonical_spellings() {
        for (input, canonical) in [
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("example.com/", "example.com"),
            ("example.com/Service-Token/*", "example.com/service-token"),
            ("example.com/service-token/", "example.com/service-token"),
            ("example.com/a/./b/../c", "example.com/a/c"),
            ("example.com/%7Euser", "example.com/~user"),
            ("*.Example.com:8443/x*", "*.example.com:8443/x"),
            ("[::1]:8080/api", "[::1]:8080/api"),
            ("localhost", "localhost"),
            ("  example.com  ", "example.com"),
            ("example.com/café", "example.com/caf%c3%a9"),
        ] {
            assert_eq!(domain(input).as_str(), canonical, "{input}");
        }
    }

    #[test]
    fn bad_domains_are_refused_with_a_reason() {
        for input in [
            "",
            "https://example.com",
            "example.com?x=1",
            "example.com#top",
            "*.",
            "a.*.example.com",
            "*example.com",
            "**.example.com",
            "example.com:0",
            "example.com:65536",
            "example.com:",
            "example.com:http",
            "-bad.example.com",
            "bad-.example.com",
            "exa mple.com",
            "example..com",
            "example.com/a*b",
            "example.com/a%2fb",
            "example.com/a\\b",
            "[not-v6]",
        ] {
            let error = AppDomain::parse(input).unwrap_err();
            assert!(
                error.to_string().starts_with("not an application domain"),
                "{input}"
            );
        }
    }

    #[test]
    fn paths_normalise_to_one_meaning() {
        for (raw, normal) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/a//b", "/a/b"),
            ("//a", "/a"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/..", "/"),
            ("/a/.", "/a/"),
            ("/%61dmin", "/admin"),
            ("/%2e%2e/admin", "/admin"),
            ("/service-token/%2E%2E/admin", "/admin"),
            ("/a%20b", "/a%20b"),
            ("/x%3f", "/x%3F"),
            ("/a;b/c", "/a;b/c"),
            // Characters beyond ASCII stay whole (the fuzzer found them double-encoded).
            ("/ünï/%61/./x", "/ünï/a/x"),
            ("/Å%2c/ü", "/Å%2C/ü"),
        ] {
            assert_eq!(normalize_path(raw).unwrap(), normal, "{raw}");
        }
        assert!(matches!(normalize_path("/a/b"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for raw in [
            "",
            "*",
            "a/b",
            "/a%2fb",
            "/a%2F..%2Fadmin",
            "/a%5cb",
            "/a\\..\\admin",
            "/a%00",
            "/a/..;/admin",
            "/a/.;x/admin",
            "/a/%2e%2e;x/admin",
            "/a%",
            "/a%4",
            "/a%zz",
        ] {
            assert!(normalize_path(raw).is_err(), "{raw}");
        }
    }

    fn table() -> DomainTable<&'static str> {
        let mut table = DomainTable::new();
        for (d, v) in [
            ("example.com", "root"),
            ("example.com/service-token", "bots"),
            ("example.com/service-token/admin", "admin"),
            ("example.com:8443/service-token", "bots-8443"),
            ("*.example.com", "wild"),
            ("*.example.com/api", "wild-api"),
            ("api.example.com", "api"),
        ] {
            table.insert(domain(d), v).unwrap();
        }
        table
    }

    #[test]
    fn the_most_specific_domain_wins() {
        let table = table();
        let find = |host: &str, path: &str| table.find(host, path).map(|(_, v)| *v);
        assert_eq!(find("example.com", "/"), Some("root"));
        assert_eq!(find("EXAMPLE.com.", "/x"), Some("root"));
        assert_eq!(find("example.com", "/service-token"), Some("bots"));
        assert_eq!(find("example.com", "/service-token/"), Some("bots"));
        assert_eq!(find("example.com", "/Service-Token/x"), Some("bots"));
        assert_eq!(find("example.com", "/service-tokens"), Some("root"));
        assert_eq!(find("example.com", "/service-token/admin/x"), Some("admin"));
        assert_eq!(
            find("example.com:8443", "/service-token/x"),
            Some("bots-8443")
        );
        assert_eq!(find("example.com:8080", "/service-token/x"), Some("bots"));
        assert_eq!(find("example.com:8443", "/other"), Some("root"));
        // Exact host over wildcard, even with a longer wildcard path.
        assert_eq!(find("api.example.com", "/api/x"), Some("api"));
        assert_eq!(find("www.example.com", "/api/x"), Some("wild-api"));
        assert_eq!(find("www.example.com", "/"), Some("wild"));
        // One label only; the parent itself is not covered by the wildcard.
        assert_eq!(find("a.b.example.com", "/"), None);
        assert_eq!(find(".example.com", "/"), None);
        assert_eq!(find("other.com", "/"), None);
        assert_eq!(find("evil.com/example.com", "/"), None);
        assert_eq!(find("example.com:bad", "/"), None);
        assert_eq!(find("", "/"), None);
    }

    #[test]
    fn hostile_paths_cannot_slip_in_or_out() {
        let table = table();
        let route = |raw: &str| {
            let path = normalize_path(raw).ok()?;
            table.find("example.com", &path).map(|(_, v)| *v)
        };
        // Out of an application, into another.
        assert_eq!(route("/service-token/../admin"), Some("root"));
        assert_eq!(
            route("/service-token/%2e%2e/service-token/admin"),
            Some("admin")
        );
        // Into an application by an encoded name.
        assert_eq!(route("/%73ervice-token/x"), Some("bots"));
        assert_eq!(route("//service-token//admin"), Some("admin"));
        // Refused rather than guessed.
        assert_eq!(route("/service-token%2f..%2fadmin"), None);
        assert_eq!(route("/service-token/..;/admin"), None);
    }

    #[test]
    fn origins_are_spelled_one_way() {
        for (input, canonical, base, prefix) in [
            (
                "http://127.0.0.1:5000",
                "http://127.0.0.1:5000",
                "http://127.0.0.1:5000",
                "",
            ),
            (
                "HTTPS://API.internal/",
                "https://api.internal",
                "https://api.internal",
                "",
            ),
            (
                "http://[::1]:8080/app/v1/",
                "http://[::1]:8080/app/v1",
                "http://[::1]:8080",
                "/app/v1",
            ),
        ] {
            let origin = OriginUrl::parse(input).unwrap();
            assert_eq!(origin.as_str(), canonical);
            assert_eq!(origin.base(), base);
            assert_eq!(origin.path_prefix(), prefix);
            assert_eq!(
                format!("{}{}", origin.base(), origin.path_prefix()),
                canonical
            );
        }
        for bad in [
            "",
            "127.0.0.1:5000",
            "ftp://example.com",
            "http://",
            "http://user:secret@example.com",
            "http://example.com?x=1",
            "http://example.com/#x",
            "http://example.com:99999",
            "http://exa mple.com",
            "http://example.com/a/../b",
            "http://example.com/a%2fb",
        ] {
            let error = OriginUrl::parse(bad).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn the_same_domain_twice_is_refused() {
        let mut table = table();
        for same in [
            "Example.com/Service-Token/*",
            "example.com.",
            "*.EXAMPLE.com",
        ] {
            let error = table.insert(domain(same), "dup").unwrap_err();
            assert_eq!(error.domain(), domain(same).as_str());
        }
        assert_eq!(table.len(), 7);
        // Related but distinct domains are fine: the most specific wins.
        table.insert(domain("example.com:8443"), "port").unwrap();
        assert_eq!(table.iter().count(), 8);
    }
}
