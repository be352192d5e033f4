//! The request pipeline every tollgate layer shares: where a request carries its Access
//! credentials, and what the inner service is handed once they check out.
//!
//! `VerifyLayer`, the issuer's `ExchangeLayer` and the `/cdn-cgi/access/get-identity` route all
//! find tokens and service-token credentials here and forward identities from here, so they
//! cannot drift apart on a rule that decides security. The rules:
//!
//! - **Tokens** ([`find_token`]) are looked for in the configured [`TokenLocation`]s, in order;
//!   the first location holding one wins. A token header (`Cf-Access-Jwt-Assertion`,
//!   `cf-access-token`) sent on more than one line is refused as ambiguous
//!   ([`MalformedToken`](RejectionKind::MalformedToken)); an empty value counts as absent; a
//!   value that is not visible ASCII is refused. In cookies, the first non-empty
//!   `CF_Authorization` wins, over every `Cookie` line; a value in double quotes loses them;
//!   `Cookie` lines that are not visible ASCII are skipped.
//! - **Service-token credentials** ([`find_credentials`]): `CF-Access-Client-Id` with
//!   `CF-Access-Client-Secret` (values trimmed, empty counts as absent, one without the other
//!   or either on more than one line refused as
//!   [`InvalidCredentials`](RejectionKind::InvalidCredentials)), or, when the application names
//!   one, a single header holding both as JSON
//!   (`{"cf-access-client-id":"…","cf-access-client-secret":"…"}`; any key case and `_` for
//!   `-`, as Cloudflare's documentation shows them; a value that does not start with `{` is
//!   someone else's header and ignored). The pair wins over the single header.
//! - **Credentials before tokens** ([`find`]): a bot presenting credentials is never held back
//!   by a stale cookie.
//! - **Forwarding** ([`forward_identity`]): every client-supplied identity header is removed
//!   (in every `-`/`_` spelling), `Cf-Access-Jwt-Assertion` is set to the verified token,
//!   `Cf-Access-Authenticated-User-Email` to a user's verified e-mail, and the
//!   [`AccessIdentity`] goes into the request extensions for the extractor.
//!   [`remove_credentials`] takes the credentials off a request before it goes on.
//! - **Refusals** are logged by [`log_rejection`], at one level on one target
//!   ([`LOG_TARGET`]), with the reason and where the credential was found, never its value.
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use tollgate_core::RejectionKind;
//! use tollgate_core::request::{self, Presented, TokenLocation};
//!
//! let mut headers = HeaderMap::new();
//! headers.append("cookie", HeaderValue::from_static("theme=dark; CF_Authorization="));
//! headers.append("cookie", HeaderValue::from_static("CF_Authorization=eyJ.eyJ.sig"));
//! let found = request::find_token(&headers, &TokenLocation::DEFAULT_ORDER)?.expect("a token");
//! assert_eq!((found.as_str(), found.location()), ("eyJ.eyJ.sig", TokenLocation::Cookie));
//!
//! headers.append("cf-access-token", HeaderValue::from_static("one"));
//! headers.append("cf-access-token", HeaderValue::from_static("two"));
//! let refused = request::find(&headers, None, &TokenLocation::DEFAULT_ORDER).unwrap_err();
//! assert_eq!(refused.kind(), RejectionKind::MalformedToken);
//!
//! headers.insert("cf-access-client-id", HeaderValue::from_static("abc.access"));
//! headers.insert("cf-access-client-secret", HeaderValue::from_static("s3cret"));
//! let Presented::Credentials(credentials) = request::find(&headers, None, &[])? else { panic!() };
//! assert_eq!(credentials.client_id(), "abc.access");
//! assert_eq!(format!("{credentials:?}").contains("s3cret"), false);
//! # Ok::<(), tollgate_core::Rejection>(())
//! ```

use std::fmt;

use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::identity::AccessIdentity;
use crate::names::{
    CF_ACCESS_AUTHENTICATED_USER_EMAIL, CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET,
    CF_ACCESS_JWT_ASSERTION, CF_ACCESS_TOKEN, COOKIE_NAME, strip_identity_headers,
};
use crate::rejection::{Rejection, RejectionKind};

/// The `tracing` target of every refusal tollgate's layers and routes log
/// (see [`log_rejection`]).
pub const LOG_TARGET: &str = "tollgate::rejection";

/// Where a request may carry its Access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenLocation {
    /// The `Cf-Access-Jwt-Assertion` header, as Cloudflare's edge forwards it to an origin.
    JwtAssertionHeader,
    /// The `cf-access-token` header, as a client presents an application token.
    AccessTokenHeader,
    /// The `CF_Authorization` cookie.
    Cookie,
}

impl TokenLocation {
    /// The order an origin behind an Access edge reads: assertion header, `cf-access-token`,
    /// then the cookie.
    pub const DEFAULT_ORDER: [TokenLocation; 3] = [
        TokenLocation::JwtAssertionHeader,
        TokenLocation::AccessTokenHeader,
        TokenLocation::Cookie,
    ];

    /// The order a client-facing edge reads (the issuer's exchange and get-identity):
    /// `cf-access-token`, then the cookie. `Cf-Access-Jwt-Assertion` is what the edge itself
    /// sets, so a client's copy is stripped, never read.
    pub const CLIENT_ORDER: [TokenLocation; 2] =
        [TokenLocation::AccessTokenHeader, TokenLocation::Cookie];

    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenLocation::JwtAssertionHeader => "cf-access-jwt-assertion",
            TokenLocation::AccessTokenHeader => "cf-access-token",
            TokenLocation::Cookie => "cookie",
        }
    }

    /// The token at this location, if any, under the rules of the [module docs](self).
    fn find(self, headers: &HeaderMap) -> Result<Option<HeaderValue>, Rejection> {
        let malformed = |detail| Rejection::new(RejectionKind::MalformedToken).with_detail(detail);
        let header = match self {
            TokenLocation::JwtAssertionHeader => CF_ACCESS_JWT_ASSERTION,
            TokenLocation::AccessTokenHeader => CF_ACCESS_TOKEN,
            TokenLocation::Cookie => return find_cookie(headers),
        };
        let Some(value) = single_value(headers, &header)
            .map_err(|()| malformed("token header sent more than once"))?
        else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .map_err(|_| malformed("token is not visible ASCII"))?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            Ok(None)
        } else if trimmed.len() == text.len() {
            Ok(Some(value.clone()))
        } else {
            HeaderValue::from_str(trimmed)
                .map(Some)
                .map_err(|_| malformed("token is not visible ASCII"))
        }
    }
}

impl fmt::Display for TokenLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one value of `name`, `None` when absent, `Err` when sent on more than one line.
fn single_value<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h HeaderValue>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    Ok(first)
}

/// The first non-empty `CF_Authorization` over every `Cookie` line.
fn find_cookie(headers: &HeaderMap) -> Result<Option<HeaderValue>, Rejection> {
    for line in headers.get_all(COOKIE) {
        let Ok(line) = line.to_str() else {
            continue;
        };
        for pair in line.split(';') {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if name.trim() != COOKIE_NAME {
                continue;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if value.is_empty() {
                continue;
            }
            return HeaderValue::from_str(value).map(Some).map_err(|_| {
                Rejection::new(RejectionKind::MalformedToken)
                    .with_detail("cookie value is not a token")
            });
        }
    }
    Ok(None)
}

/// An Access token found in a request, and where.
#[derive(Clone, PartialEq, Eq)]
pub struct FoundToken {
    value: HeaderValue,
    location: TokenLocation,
}

impl FoundToken {
    /// The token (visible ASCII, non-empty).
    pub fn as_str(&self) -> &str {
        // Checked when found: a token is visible ASCII.
        self.value.to_str().unwrap_or_default()
    }

    /// Where it was found.
    pub fn location(&self) -> TokenLocation {
        self.location
    }

    /// The token as a header value, ready to forward as `Cf-Access-Jwt-Assertion`.
    pub fn into_header_value(self) -> HeaderValue {
        self.value
    }
}

impl fmt::Debug for FoundToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FoundToken")
            .field("location", &self.location)
            .field("bytes", &self.value.len())
            .finish_non_exhaustive()
    }
}

/// The first token in `order`'s locations, under the rules of the [module docs](self).
pub fn find_token(
    headers: &HeaderMap,
    order: &[TokenLocation],
) -> Result<Option<FoundToken>, Rejection> {
    for &location in order {
        if let Some(value) = location.find(headers)? {
            return Ok(Some(FoundToken { value, location }));
        }
    }
    Ok(None)
}

/// Where service-token credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `CF-Access-Client-Id` and `CF-Access-Client-Secret`.
    HeaderPair,
    /// The application's single header, holding both as JSON.
    SingleHeader(HeaderName),
}

/// Service-token credentials found in a request. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ServiceCredentials {
    client_id: String,
    secret: String,
    source: CredentialSource,
}

impl ServiceCredentials {
    /// The client ID, trimmed. Not checked for shape: it is request data.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The secret, trimmed. Compare it in constant time; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// Where the credentials came from.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }
}

impl fmt::Debug for ServiceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceCredentials")
            .field("client_id_bytes", &self.client_id.len())
            .field("secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

fn invalid_credentials(detail: &'static str) -> Rejection {
    Rejection::new(RejectionKind::InvalidCredentials).with_detail(detail)
}

/// The credential header `name` as trimmed text: `None` when absent or empty.
fn credential_value(headers: &HeaderMap, name: &HeaderName) -> Result<Option<String>, Rejection> {
    let value = single_value(headers, name)
        .map_err(|()| invalid_credentials("a credential header was sent more than once"))?;
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| invalid_credentials("credentials are not visible ASCII"))?
        .trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Service-token credentials, under the rules of the [module docs](self): the header pair, or
/// else JSON in `single_header` when the application names one.
pub fn find_credentials(
    headers: &HeaderMap,
    single_header: Option<&HeaderName>,
) -> Result<Option<ServiceCredentials>, Rejection> {
    let client_id = credential_value(headers, &CF_ACCESS_CLIENT_ID)?;
    let secret = credential_value(headers, &CF_ACCESS_CLIENT_SECRET)?;
    match (client_id, secret) {
        (Some(client_id), Some(secret)) => {
            return Ok(Some(ServiceCredentials {
                client_id,
                secret,
                source: CredentialSource::HeaderPair,
            }));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid_credentials(
                "both CF-Access-Client-Id and CF-Access-Client-Secret are needed",
            ));
        }
        (None, None) => {}
    }
    let Some(name) = single_header else {
        return Ok(None);
    };
    let value = single_value(headers, name)
        .map_err(|()| invalid_credentials("the credential header was sent more than once"))?;
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.as_bytes().trim_ascii();
    if !text.starts_with(b"{") {
        // Not JSON: someone else's use of the header (a bearer token, say), not ours to judge.
        return Ok(None);
    }
    let (client_id, secret) = parse_single_header(text).ok_or_else(|| {
        invalid_credentials(
            "single-header credentials must be JSON with cf-access-client-id and cf-access-client-secret",
        )
    })?;
    Ok(Some(ServiceCredentials {
        client_id,
        secret,
        source: CredentialSource::SingleHeader(name.clone()),
    }))
}

/// `{"cf-access-client-id":"…","cf-access-client-secret":"…"}`, any key case, `_` for `-`;
/// the same credential under two spellings is refused.
fn parse_single_header(json: &[u8]) -> Option<(String, String)> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).ok()?;
    let mut client_id = None;
    let mut secret = None;
    for (key, value) in object {
        let key = key.to_ascii_lowercase().replace('_', "-");
        let slot = match key.as_str() {
            "cf-access-client-id" => &mut client_id,
            "cf-access-client-secret" => &mut secret,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(value.as_str()?.trim().to_owned());
    }
    Some((client_id?, secret?)).filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
}

/// What a request presented, by [`find`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Presented {
    /// Service-token credentials, to exchange.
    Credentials(ServiceCredentials),
    /// An application token, to verify.
    Token(FoundToken),
    /// Neither.
    Nothing,
}

/// Credentials (when `single_header` is `Some`, that header too), else a token from `order`:
/// the whole lookup of a client-facing layer. Pass an empty `order` to look for credentials
/// only, [`find_token`] to look for tokens only.
pub fn find(
    headers: &HeaderMap,
    single_header: Option<&HeaderName>,
    order: &[TokenLocation],
) -> Result<Presented, Rejection> {
    if let Some(credentials) = find_credentials(headers, single_header)? {
        return Ok(Presented::Credentials(credentials));
    }
    Ok(match find_token(headers, order)? {
        Some(token) => Presented::Token(token),
        None => Presented::Nothing,
    })
}

/// Takes service-token credentials off a request before it goes on: both pair headers, and
/// the single header when the credentials came from it.
pub fn remove_credentials(headers: &mut HeaderMap, credentials: &ServiceCredentials) {
    headers.remove(CF_ACCESS_CLIENT_ID);
    headers.remove(CF_ACCESS_CLIENT_SECRET);
    if let CredentialSource::SingleHeader(name) = &credentials.source {
        headers.remove(name);
    }
}

/// Hands a verified identity to the inner service, as Cloudflare's edge hands it to an origin:
/// client-supplied identity headers removed (every spelling), `Cf-Access-Jwt-Assertion` set to
/// `token`, `Cf-Access-Authenticated-User-Email` to a user's e-mail, and the identity in the
/// request extensions.
pub fn forward_identity<B>(request: &mut Request<B>, token: HeaderValue, identity: AccessIdentity) {
    let headers = request.headers_mut();
    strip_identity_headers(headers);
    headers.insert(CF_ACCESS_JWT_ASSERTION, token);
    if let Some(email) = identity.email()
        && let Ok(value) = HeaderValue::from_str(email)
    {
        headers.insert(CF_ACCESS_AUTHENTICATED_USER_EMAIL, value);
    }
    request.extensions_mut().insert(identity);
}

/// Where a refusal happened, for [`log_rejection`]. Every field is optional and none is a
/// credential: a client ID is logged only when it has a client ID's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefusalContext<'a> {
    /// The application, when the layer knows it.
    pub app: Option<&'a str>,
    /// Where the refused token or credentials were found.
    pub source: Option<&'a str>,
    /// The service token's client ID, when credentials were presented.
    pub client_id: Option<&'a str>,
    /// The name of a verified identity that was then refused (a policy's 403): a user's
    /// e-mail or a service token's client ID, both taken from a verified token.
    pub identity: Option<&'a str>,
}

/// Logs a refusal: one `INFO` event on [`LOG_TARGET`] with the reason, its detail and the
/// [`RefusalContext`] ("access refused by policy" for a 403, "request refused" otherwise);
/// never a token, a secret or a malformed client ID.
pub fn log_rejection(rejection: &Rejection, context: RefusalContext<'_>) {
    let client_id = context
        .client_id
        .map(|id| if is_client_id(id) { id } else { "(malformed)" })
        .unwrap_or("");
    let reason = rejection.kind().as_str();
    let detail = rejection.detail().unwrap_or("");
    let app = context.app.unwrap_or("");
    let source = context.source.unwrap_or("none");
    let identity = context.identity.unwrap_or("");
    if rejection.kind() == RejectionKind::Forbidden {
        tracing::info!(target: LOG_TARGET, reason, detail, app, source, client_id, identity, "access refused by policy");
    } else {
        tracing::info!(target: LOG_TARGET, reason, detail, app, source, client_id, identity, "request refused");
    }
}

/// `<32 lowercase hex>.access`, the shape of a service token's client ID.
pub fn is_client_id(id: &str) -> bool {
    id.strip_suffix(".access").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn token(pairs: &[(&'static str, &'static str)]) -> Result<Option<String>, RejectionKind> {
        find_token(&headers(pairs), &TokenLocation::DEFAULT_ORDER)
            .map(|found| found.map(|t| t.as_str().to_owned()))
            .map_err(|r| r.kind())
    }

    #[test]
    fn token_rules() {
        assert_eq!(token(&[]), Ok(None));
        assert_eq!(
            token(&[("cf-access-jwt-assertion", "a"), ("cf-access-token", "b")]),
            Ok(Some("a".into()))
        );
        assert_eq!(
            token(&[("cf-access-token", "b"), ("cookie", "CF_Authorization=c")]),
            Ok(Some("b".into()))
        );
        assert_eq!(
            token(&[("cf-access-token", "a"), ("cf-access-token", "a")]),
            Err(RejectionKind::MalformedToken),
            "a repeated token header is ambiguous"
        );
        assert_eq!(
            token(&[("cf-access-token", ""), ("cookie", "CF_Authorization=c")]),
            Ok(Some("c".into())),
            "empty counts as absent"
        );
        assert_eq!(
            token(&[("cookie", "CF_Authorization=; CF_Authorization=\"q\"")]),
            Ok(Some("q".into()))
        );
        assert_eq!(
            token(&[("cookie", "a=b"), ("cookie", " CF_Authorization = x ; c=d")]),
            Ok(Some("x".into()))
        );
        assert_eq!(token(&[("cookie", "cf_authorization=x")]), Ok(None));
        let mut map = HeaderMap::new();
        map.insert(
            CF_ACCESS_TOKEN,
            HeaderValue::from_bytes(b"tok\xffen").unwrap(),
        );
        assert_eq!(
            find_token(&map, &TokenLocation::CLIENT_ORDER).map_err(|r| r.kind()),
            Err(RejectionKind::MalformedToken)
        );
    }

    #[test]
    fn only_the_configured_locations_are_read() {
        let map = headers(&[("cf-access-jwt-assertion", "forged")]);
        assert!(
            find_token(&map, &TokenLocation::CLIENT_ORDER)
                .unwrap()
                .is_none()
        );
    }

    fn credentials(
        pairs: &[(&'static str, &'static str)],
        single: Option<&'static str>,
    ) -> Result<Option<(String, String, bool)>, RejectionKind> {
        let single = single.map(HeaderName::from_static);
        find_credentials(&headers(pairs), single.as_ref())
            .map(|found| {
                found.map(|c| {
                    let from_single = matches!(c.source(), CredentialSource::SingleHeader(_));
                    (
                        c.client_id().to_owned(),
                        c.expose_secret().to_owned(),
                        from_single,
                    )
                })
            })
            .map_err(|r| r.kind())
    }

    #[test]
    fn credential_rules() {
        assert_eq!(
            credentials(
                &[
                    ("cf-access-client-id", "id"),
                    ("cf-access-client-secret", " s ")
                ],
                None
            ),
            Ok(Some(("id".into(), "s".into(), false)))
        );
        assert_eq!(
            credentials(&[("cf-access-client-id", "id")], None),
            Err(RejectionKind::InvalidCredentials)
        );
        assert_eq!(
            credentials(
                &[
                    ("cf-access-client-id", "id"),
                    ("cf-access-client-secret", "")
                ],
                None
            ),
            Err(RejectionKind::InvalidCredentials),
            "an empty secret is no secret"
        );
        assert_eq!(
            credentials(
                &[
                    ("cf-access-client-id", "id"),
                    ("cf-access-client-id", "other"),
                    ("cf-access-client-secret", "s")
                ],
                None
            ),
            Err(RejectionKind::InvalidCredentials),
            "a repeated credential header is ambiguous"
        );
        for json in [
            r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"}"#,
            r#"{"CF-Access-Client-Id":"i","CF-Access-Client-Secret":"s"}"#,
            r#" {"cf_access_client_id":"i","cf_access_client_secret":"s"}"#,
        ] {
            assert_eq!(
                credentials(&[("authorization", json)], Some("authorization")),
                Ok(Some(("i".into(), "s".into(), true))),
                "{json}"
            );
        }
        for bad in [
            r#"{"cf-access-client-id":"i"}"#,
            r#"{"cf-access-client-id":"i","cf_access_client_id":"j","cf-access-client-secret":"s"}"#,
            r#"{"cf-access-client-id":1,"cf-access-client-secret":"s"}"#,
            r#"{"cf-access-client-id":"","cf-access-client-secret":"s"}"#,
            "{not json",
        ] {
            assert_eq!(
                credentials(&[("authorization", bad)], Some("authorization")),
                Err(RejectionKind::InvalidCredentials),
                "{bad}"
            );
        }
        assert_eq!(
            credentials(&[("authorization", "Bearer x")], Some("authorization")),
            Ok(None)
        );
        assert_eq!(
            credentials(
                &[(
                    "authorization",
                    r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"}"#
                )],
                None
            ),
            Ok(None),
            "without the setting the header is not read"
        );
    }

    #[test]
    fn credentials_come_before_tokens() {
        let map = headers(&[
            ("cookie", "CF_Authorization=stale"),
            ("cf-access-client-id", "id"),
            ("cf-access-client-secret", "s"),
        ]);
        assert!(matches!(
            find(&map, None, &TokenLocation::CLIENT_ORDER),
            Ok(Presented::Credentials(_))
        ));
        let map = headers(&[("cookie", "CF_Authorization=t")]);
        assert!(matches!(
            find(&map, None, &TokenLocation::CLIENT_ORDER),
            Ok(Presented::Token(ref t)) if t.as_str() == "t"
        ));
        assert!(matches!(
            find(&HeaderMap::new(), None, &TokenLocation::CLIENT_ORDER),
            Ok(Presented::Nothing)
        ));
    }

    #[test]
    fn removing_credentials() {
        let name = HeaderName::from_static("authorization");
        let mut map = headers(&[(
            "authorization",
            r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"}"#,
        )]);
        let found = find_credentials(&map, Some(&name)).unwrap().unwrap();
        remove_credentials(&mut map, &found);
        assert!(map.is_empty());
    }

    #[test]
    fn client_id_shape() {
        assert!(is_client_id("0123456789abcdef0123456789abcdef.access"));
        assert!(!is_client_id("0123456789ABCDEF0123456789abcdef.access"));
        assert!(!is_client_id("x.access"));
    }
}
