//! [`TeamDomain`]: an Access team domain, parsed once and spelled one way.
//!
//! A team domain is the origin of an Access issuer: the `iss` of every token it mints and the
//! base of its certs URL. People write it many ways — `team.cloudflareaccess.com`,
//! `https://Team.cloudflareaccess.com/`, `http://127.0.0.1:8080` — and an exact `iss` comparison
//! must not depend on which. [`TeamDomain::parse`] accepts them all and keeps one spelling:
//! scheme (`https` when none is given), host in lowercase, port only when it is not the
//! scheme's default, no path. The verifier, the issuer and the CLI all take their team domain
//! through it, so an issuer built from one spelling mints tokens that a verifier built from
//! another accepts.
//!
//! ```
//! use tollgate_core::TeamDomain;
//!
//! let domain: TeamDomain = "https://Team.CloudflareAccess.com/".parse()?;
//! assert_eq!(domain.as_str(), "https://team.cloudflareaccess.com");
//! assert_eq!(domain, TeamDomain::parse("team.cloudflareaccess.com")?);
//! assert_eq!(domain.certs_url(), "https://team.cloudflareaccess.com/cdn-cgi/access/certs");
//!
//! let local = TeamDomain::parse("http://LOCALHOST:8080")?;
//! assert_eq!((local.as_str(), local.port(), local.is_https()), ("http://localhost:8080", Some(8080), false));
//! assert!(TeamDomain::parse("https://team.example.com/path").is_err());
//! # Ok::<(), tollgate_core::team_domain::TeamDomainError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::names::CERTS_PATH;

/// An Access team domain: `http` or `https`, a host (lowercase), an optional port, no path.
/// See the [module docs](self).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TeamDomain {
    /// `scheme://host[:port]`, the canonical spelling.
    origin: String,
    /// Where the host starts and ends in `origin`.
    host: (usize, usize),
    port: Option<u16>,
    https: bool,
}

/// Why a string is not a team domain. Its message says what is wrong with the input, without
/// repeating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamDomainError {
    reason: &'static str,
}

impl TeamDomainError {
    fn new(reason: &'static str) -> Self {
        Self { reason }
    }

    /// What is wrong, for humans.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for TeamDomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a team domain ({}); write a host name such as team.cloudflareaccess.com \
             or an origin such as https://team.cloudflareaccess.com",
            self.reason
        )
    }
}

impl std::error::Error for TeamDomainError {}

impl TeamDomain {
    /// Parses a host name (`team.example.com`, taken as `https://`) or an origin
    /// (`https://team.example.com`, `http://127.0.0.1:8080`, `http://[::1]:3000`). Surrounding
    /// whitespace and one trailing `/` are ignored; a path, query, fragment, user name, other
    /// scheme, or a host that is not an ASCII DNS name or an IP literal is refused.
    pub fn parse(input: &str) -> Result<Self, TeamDomainError> {
        let input = input.trim();
        let input = input.strip_suffix('/').unwrap_or(input);
        let (https, authority) = match input.split_once("://") {
            None => (true, input),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some(_) => return Err(TeamDomainError::new("the scheme must be http or https")),
        };
        if authority.is_empty() {
            return Err(TeamDomainError::new("no host"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(TeamDomainError::new(
                "a team domain has no path, query or fragment",
            ));
        }
        if authority.contains('@') {
            return Err(TeamDomainError::new("a team domain has no user name"));
        }
        let (host, port) = split_port(authority)?;
        let host = canonical_host(host)?;
        let default_port = if https { 443 } else { 80 };
        let port = port.filter(|&p| p != default_port);
        let scheme = if https { "https://" } else { "http://" };
        let mut origin = String::with_capacity(scheme.len() + host.len() + 6);
        origin.push_str(scheme);
        origin.push_str(&host);
        let host_span = (scheme.len(), origin.len());
        if let Some(port) = port {
            origin.push(':');
            origin.push_str(&port.to_string());
        }
        Ok(Self {
            origin,
            host: host_span,
            port,
            https,
        })
    }

    /// The canonical spelling, `scheme://host[:port]`: the `iss` of the domain's tokens.
    pub fn as_str(&self) -> &str {
        &self.origin
    }

    /// The host, lowercase (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        &self.origin[self.host.0..self.host.1]
    }

    /// The port, when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Whether the host is a loopback address or `localhost` (development and tests, where
    /// plain `http` is acceptable).
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host.ends_with(".localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `<origin>/cdn-cgi/access/certs`, where the domain publishes its signing keys.
    pub fn certs_url(&self) -> String {
        format!("{}{CERTS_PATH}", self.origin)
    }
}

/// `host[:port]` and `[v6][:port]`.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), TeamDomainError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(TeamDomainError::new("an IPv6 literal lacks its closing ]"));
        };
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or(TeamDomainError::new("junk after the IPv6 literal"))?,
            ),
        };
        (&authority[..v6.len() + 2], port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TeamDomainError::new("the port is not a number"));
            }
            match digits.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(TeamDomainError::new("the port is out of range"));
                }
                Ok(port) => Some(port),
            }
        }
    };
    Ok((host, port))
}

/// The host in lowercase, checked: an ASCII DNS name (labels of letters, digits, `-`, `_`, no
/// empty label) or an IP literal.
fn canonical_host(host: &str) -> Result<String, TeamDomainError> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match v6.parse::<std::net::Ipv6Addr>() {
            Ok(addr) => Ok(format!("[{addr}]")),
            Err(_) => Err(TeamDomainError::new("not an IPv6 address")),
        };
    }
    if host.is_empty() {
        return Err(TeamDomainError::new("no host"));
    }
    if !host.is_ascii() {
        return Err(TeamDomainError::new(
            "the host is not ASCII (write internationalised names in punycode)",
        ));
    }
    if host.len() > 253 {
        return Err(TeamDomainError::new("the host name is too long"));
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !host.split('.').all(valid_label) {
        return Err(TeamDomainError::new(
            "the host is not a DNS name (empty label, trailing dot or a character other than letters, digits, - and _)",
        ));
    }
    Ok(host.to_ascii_lowercase())
}

impl FromStr for TeamDomain {
    type Err = TeamDomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for TeamDomain {
    type Error = TeamDomainError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TeamDomain {
    type Error = TeamDomainError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl TryFrom<&String> for TeamDomain {
    type Error = TeamDomainError;

    fn try_from(s: &String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl TryFrom<&TeamDomain> for TeamDomain {
    type Error = TeamDomainError;

    fn try_from(domain: &TeamDomain) -> Result<Self, Self::Error> {
        Ok(domain.clone())
    }
}

impl AsRef<str> for TeamDomain {
    fn as_ref(&self) -> &str {
        &self.origin
    }
}

impl fmt::Display for TeamDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

impl fmt::Debug for TeamDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TeamDomain").field(&self.origin).finish()
    }
}

impl PartialEq<str> for TeamDomain {
    fn eq(&self, other: &str) -> bool {
        self.origin == other
    }
}

impl PartialEq<&str> for TeamDomain {
    fn eq(&self, other: &&str) -> bool {
        self.origin == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_for_many_inputs() {
        for input in [
            "team.cloudflareaccess.com",
            "TEAM.cloudflareaccess.com",
            "https://team.cloudflareaccess.com",
            "https://team.cloudflareaccess.com/",
            "HTTPS://Team.CloudflareAccess.COM:443",
            " https://TEAM.cloudflareaccess.com ",
        ] {
            let domain = TeamDomain::parse(input).expect(input);
            assert_eq!(
                domain.as_str(),
                "https://team.cloudflareaccess.com",
                "{input}"
            );
            assert_eq!(domain.host(), "team.cloudflareaccess.com");
            assert_eq!(domain.port(), None);
            assert!(domain.is_https() && !domain.is_loopback());
        }
        let local = TeamDomain::parse("http://127.0.0.1:8080").expect("loopback");
        assert_eq!(local.as_str(), "http://127.0.0.1:8080");
        assert!(local.is_loopback());
        assert_eq!(
            TeamDomain::parse("http://example.com:80")
                .expect("default port")
                .as_str(),
            "http://example.com"
        );
        assert_eq!(
            TeamDomain::parse("https://example.com:8443")
                .expect("port")
                .as_str(),
            "https://example.com:8443"
        );
        let v6 = TeamDomain::parse("http://[0:0::1]:3000").expect("v6");
        assert_eq!(v6.as_str(), "http://[::1]:3000");
        assert_eq!(v6.host(), "[::1]");
        assert!(v6.is_loopback());
        assert!(
            TeamDomain::parse("http://LocalHost:9")
                .expect("localhost")
                .is_loopback()
        );
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        for bad in [
            "",
            "https://",
            "team.example.com/path",
            "https://team.example.com/path",
            "https://team.example.com?x=1",
            "https://team.example.com#f",
            "ftp://x",
            "a b",
            "h:",
            "h:0",
            "h:99999999",
            "u@h",
            "https://a@team.example",
            "team..example.com",
            "team.example.com.",
            "-team.example.com",
            "tëam.example.com",
            "[::1",
            "[::1]x",
            "[zz]",
            "https://team.example.com//",
        ] {
            let err = TeamDomain::parse(bad).expect_err(bad);
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn error_messages_do_not_repeat_the_input() {
        let err = TeamDomain::parse("https://secret-host.example/p").expect_err("path");
        assert!(!err.to_string().contains("secret-host"), "{err}");
    }
}
