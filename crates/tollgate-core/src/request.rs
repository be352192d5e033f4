//! The request pipeline every tollgate layer shares: where a request carries its Access
//! credentials, and what the inner service is handed once they check out.
//!
//! `VerifyLayer`, the issuer's `ExchangeLayer` and the `/cdn-cgi/access/get-identity` route all
//! find tokens and service-token credentials here and forward identities from here, so they
//! cannot drift apart on a rule that decides security. The rules:
//!
//! - **One credential, however presented.** Wherever a request carries more than one token —
//!   across locations, on repeated header lines, in several `CF_Authorization` cookies — they
//!   must be byte-identical, or the request is refused as
//!   [`AmbiguousCredentials`](RejectionKind::AmbiguousCredentials); the same holds for
//!   repeated credential header lines and for the header pair beside the single header. A
//!   layer reading fewer locations ignores the others and [strips](strip_tokens) them.
//! - **Tokens** ([`find_token`]) are read in the configured [`TokenLocation`]s; an empty value
//!   counts as absent; a header value that is not visible ASCII is refused; `Cookie` lines that
//!   are not visible ASCII are skipped, and a cookie value in double quotes loses them.
//! - **Service-token credentials** ([`find_credentials`]): `CF-Access-Client-Id` with
//!   `CF-Access-Client-Secret` (values trimmed, empty counts as absent, one without the other
//!   refused as [`InvalidCredentials`](RejectionKind::InvalidCredentials)), and, when the
//!   application names one, a single header holding both as JSON
//!   (`{"cf-access-client-id":"…","cf-access-client-secret":"…"}`). The JSON is read strictly:
//!   at most [`MAX_SINGLE_HEADER_BYTES`] (checked before parsing), one object of string values
//!   and nothing after it, no key twice; its keys are matched in any case and with `_` for
//!   `-` (`CF-Access-Client-Id`, `cf_access_client_id`), the spellings Cloudflare's
//!   documentation shows. A value that does not start with `{` is someone else's header and
//!   ignored.
//! - **Credentials before tokens** ([`find`]): a bot presenting credentials is never held back
//!   by a stale cookie.
//! - **Forwarding** ([`forward_identity`]): every client-supplied identity header is removed
//!   (in every `-`/`_` spelling), `Cf-Access-Jwt-Assertion` is set to the verified token,
//!   `Cf-Access-Authenticated-User-Email` to a user's verified e-mail, and the
//!   [`AccessIdentity`] goes into the request extensions for the extractor.
//!   [`remove_credentials`] takes the credentials off a request before it goes on;
//!   [`set_token_cookie`] makes its `CF_Authorization` cookie the token it was admitted with.
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
//! headers.append("cf-access-token", HeaderValue::from_static("eyJ.eyJ.sig"));
//! assert!(request::find_token(&headers, &TokenLocation::DEFAULT_ORDER)?.is_some()); // the same one
//! headers.append("cf-access-token", HeaderValue::from_static("two"));
//! let refused = request::find(&headers, None, &TokenLocation::DEFAULT_ORDER).unwrap_err();
//! assert_eq!(refused.kind(), RejectionKind::AmbiguousCredentials);
//!
//! headers.insert("cf-access-client-id", HeaderValue::from_static("abc.access"));
//! headers.insert("cf-access-client-secret", HeaderValue::from_static("s3cret"));
//! let Presented::Credentials(credentials) = request::find(&headers, None, &[])? else { panic!() };
//! assert_eq!(credentials.client_id(), "abc.access");
//! assert_eq!(format!("{credentials:?}").contains("s3cret"), false);
//! # Ok::<(), tollgate_core::Rejection>(())
//! ```

use std::fmt;

use bytes::Bytes;
use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::identity::AccessIdentity;
use crate::names::{
    CF_ACCESS_AUTHENTICATED_USER_EMAIL, CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET,
    CF_ACCESS_JWT_ASSERTION, CF_ACCESS_TOKEN, COOKIE_NAME, strip_other_spellings,
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

    /// The header this location reads, or `None` for the cookie.
    fn header(self) -> Option<HeaderName> {
        match self {
            TokenLocation::JwtAssertionHeader => Some(CF_ACCESS_JWT_ASSERTION),
            TokenLocation::AccessTokenHeader => Some(CF_ACCESS_TOKEN),
            TokenLocation::Cookie => None,
        }
    }

    /// Every non-empty token at this location, in order, with its header value when the token
    /// is the whole of it (forwarded without a copy). Tokens are handed over as bytes, checked
    /// to be ASCII (a header value holds no other control characters, so that is visible ASCII
    /// and tabs, what [`HeaderValue::to_str`] accepts): the one that is used becomes text once.
    fn each<'h>(
        self,
        headers: &'h HeaderMap,
        found: &mut impl FnMut(&'h [u8], Option<&'h HeaderValue>) -> Result<(), Rejection>,
    ) -> Result<(), Rejection> {
        let Some(header) = self.header() else {
            return each_cookie(headers, COOKIE_NAME, |value| found(value.as_bytes(), None));
        };
        for value in headers.get_all(header) {
            let bytes = value.as_bytes();
            if !bytes.is_ascii() {
                return Err(Rejection::new(RejectionKind::MalformedToken)
                    .with_detail("token is not visible ASCII"));
            }
            let trimmed = bytes.trim_ascii();
            if !trimmed.is_empty() {
                found(trimmed, (trimmed.len() == bytes.len()).then_some(value))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for TokenLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Calls `found` with every non-empty value of cookie `name` over every `Cookie` line (lines
/// that are not visible ASCII skipped, a value in double quotes without them).
fn each_cookie<'h>(
    headers: &'h HeaderMap,
    name: &str,
    mut found: impl FnMut(&'h str) -> Result<(), Rejection>,
) -> Result<(), Rejection> {
    for line in headers.get_all(COOKIE) {
        let Some(line) = visible_ascii(line) else {
            continue;
        };
        for pair in line.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            if key.trim() != name {
                continue;
            }
            let value = value.trim();
            // Spaces inside the quotes are not part of a token either (found by the
            // `request` fuzz target: `"tok "` was handed on untrimmed).
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map_or(value, str::trim);
            if !value.is_empty() {
                found(value)?;
            }
        }
    }
    Ok(())
}

/// The value as text when it is visible ASCII (and tabs), as [`HeaderValue::to_str`] answers
/// it, but checked a word at a time: a header value never holds other control characters, so
/// ASCII is the same test, and tokens are checked on every request.
fn visible_ascii(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    if bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

fn ambiguous(detail: &'static str) -> Rejection {
    Rejection::new(RejectionKind::AmbiguousCredentials).with_detail(detail)
}

/// An Access token found in a request, and where.
#[derive(Clone, PartialEq, Eq)]
pub struct FoundToken {
    value: Found,
    location: TokenLocation,
}

/// A token that is a whole header value, or a piece of a `Cookie` line (copied, not checked
/// again: a piece of a header value is one).
#[derive(Clone, PartialEq, Eq)]
enum Found {
    Header(HeaderValue),
    Cookie(Bytes),
}

impl FoundToken {
    fn bytes(&self) -> &[u8] {
        match &self.value {
            Found::Header(value) => value.as_bytes(),
            Found::Cookie(bytes) => bytes,
        }
    }

    /// The token (visible ASCII, non-empty).
    pub fn as_str(&self) -> &str {
        // Checked when found: a token is ASCII.
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }

    /// Where it was found.
    pub fn location(&self) -> TokenLocation {
        self.location
    }

    /// The token as a header value, ready to forward as `Cf-Access-Jwt-Assertion`.
    pub fn into_header_value(self) -> HeaderValue {
        match self.value {
            Found::Header(value) => value,
            // Never fails: the piece of a valid header value is ASCII without control bytes.
            Found::Cookie(bytes) => {
                HeaderValue::from_maybe_shared(bytes).unwrap_or(HeaderValue::from_static(""))
            }
        }
    }

    /// [`into_header_value`](Self::into_header_value), taken from `identity` when it was
    /// verified from this very token ([`AccessIdentity::from_verified`]): a cached
    /// verification then forwards a cookie's token without checking its bytes again.
    pub fn into_assertion(self, identity: &AccessIdentity) -> HeaderValue {
        match identity.token_header() {
            Some(verified) if verified.as_bytes() == self.bytes() => verified.clone(),
            _ => self.into_header_value(),
        }
    }
}

impl fmt::Debug for FoundToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FoundToken")
            .field("location", &self.location)
            .field("bytes", &self.bytes().len())
            .finish_non_exhaustive()
    }
}

/// The token in `order`'s locations, under the rules of the [module docs](self): every token
/// presented there must be the same one.
pub fn find_token(
    headers: &HeaderMap,
    order: &[TokenLocation],
) -> Result<Option<FoundToken>, Rejection> {
    let mut first: Option<(&[u8], Option<&HeaderValue>, TokenLocation)> = None;
    for &location in order {
        location.each(headers, &mut |token, value| match first {
            None => {
                first = Some((token, value, location));
                Ok(())
            }
            Some((agreed, ..)) if agreed == token => Ok(()),
            Some(_) => Err(ambiguous("different tokens in one request")),
        })?;
    }
    let Some((token, value, location)) = first else {
        return Ok(None);
    };
    let value = match value {
        Some(value) => Found::Header(value.clone()),
        None => Found::Cookie(Bytes::copy_from_slice(token)),
    };
    Ok(Some(FoundToken { value, location }))
}

/// Removes the tokens a layer does not read at `locations` (every location but those): the
/// header, or the `CF_Authorization` cookie, so the inner service never meets a token nobody
/// checked.
pub fn strip_tokens(headers: &mut HeaderMap, locations: &[TokenLocation]) {
    for location in locations {
        match location.header() {
            Some(header) => {
                headers.remove(header);
            }
            None => set_token_cookie(headers, None),
        }
    }
}

/// Rewrites the request's cookies so `CF_Authorization` is `token` (or gone, for `None`),
/// every other cookie kept, all on one `Cookie` line (RFC 6265 §5.4: a request carries one).
pub fn set_token_cookie(headers: &mut HeaderMap, token: Option<&str>) {
    // The common case, a client riding its cookie: one line saying exactly this already.
    if let Some(token) = token {
        let mut lines = headers.get_all(COOKIE).iter();
        if let (Some(line), None) = (lines.next(), lines.next())
            && line
                .as_bytes()
                .strip_prefix(COOKIE_NAME.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
                .is_some_and(|value| value == token.as_bytes())
        {
            return;
        }
    }
    let mut has_token_cookie = false;
    let mut others: Vec<&str> = Vec::new();
    for line in headers.get_all(COOKIE) {
        let Ok(line) = line.to_str() else {
            continue;
        };
        for pair in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if pair
                .split_once('=')
                .is_some_and(|(key, _)| key.trim() == COOKIE_NAME)
            {
                has_token_cookie = true;
            } else {
                others.push(pair);
            }
        }
    }
    if !has_token_cookie && token.is_none() {
        return;
    }
    let mut line = others.join("; ");
    if let Some(token) = token {
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(COOKIE_NAME);
        line.push('=');
        line.push_str(token);
    }
    let value = HeaderValue::try_from(line);
    headers.remove(COOKIE);
    if let Ok(value) = value
        && !value.is_empty()
    {
        headers.insert(COOKIE, value);
    }
}

/// Where service-token credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `CF-Access-Client-Id` and `CF-Access-Client-Secret`.
    HeaderPair,
    /// The application's single header, holding both as JSON.
    SingleHeader(HeaderName),
    /// Both, naming the same credentials.
    Both(HeaderName),
}

/// The longest single-header value read (4 KiB): a longer one is refused before parsing.
pub const MAX_SINGLE_HEADER_BYTES: usize = 4096;

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

/// The credential header `name` as trimmed text: `None` when absent or empty, refused when its
/// non-empty lines differ.
fn credential_value<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, Rejection> {
    let mut agreed = None;
    for value in headers.get_all(name) {
        let text = value
            .to_str()
            .map_err(|_| invalid_credentials("credentials are not visible ASCII"))?
            .trim();
        match agreed {
            _ if text.is_empty() => {}
            None => agreed = Some(text),
            Some(first) if first == text => {}
            Some(_) => return Err(ambiguous("a credential header was sent twice, differently")),
        }
    }
    Ok(agreed)
}

/// Service-token credentials, under the rules of the [module docs](self): the header pair,
/// and JSON in `single_header` when the application names one; both present must agree.
pub fn find_credentials(
    headers: &HeaderMap,
    single_header: Option<&HeaderName>,
) -> Result<Option<ServiceCredentials>, Rejection> {
    let client_id = credential_value(headers, &CF_ACCESS_CLIENT_ID)?;
    let secret = credential_value(headers, &CF_ACCESS_CLIENT_SECRET)?;
    let pair = match (client_id, secret) {
        (Some(client_id), Some(secret)) => Some((client_id.to_owned(), secret.to_owned())),
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid_credentials(
                "both CF-Access-Client-Id and CF-Access-Client-Secret are needed",
            ));
        }
        (None, None) => None,
    };
    let single = match single_header {
        Some(name) => single_header_credentials(headers, name)?.map(|found| (name, found)),
        None => None,
    };
    let (client_id, secret, source) = match (pair, single) {
        (None, None) => return Ok(None),
        (Some((id, secret)), None) => (id, secret, CredentialSource::HeaderPair),
        (None, Some((name, (id, secret)))) => {
            (id, secret, CredentialSource::SingleHeader(name.clone()))
        }
        (Some(pair), Some((name, single))) => {
            // Byte-identical, or refused: never pick one of two clients.
            if pair != single {
                return Err(ambiguous(
                    "the header pair and the single header name different credentials",
                ));
            }
            (pair.0, pair.1, CredentialSource::Both(name.clone()))
        }
    };
    Ok(Some(ServiceCredentials {
        client_id,
        secret,
        source,
    }))
}

/// The credentials in the application's single header: `None` when absent, empty or not
/// JSON (someone else's use of the header, a bearer token say, not ours to judge).
fn single_header_credentials(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Option<(String, String)>, Rejection> {
    let mut agreed: Option<&[u8]> = None;
    for value in headers.get_all(name) {
        let text = value.as_bytes().trim_ascii();
        match agreed {
            _ if !text.starts_with(b"{") => {}
            None => agreed = Some(text),
            Some(first) if first == text => {}
            Some(_) => {
                return Err(ambiguous(
                    "the credential header was sent twice, differently",
                ));
            }
        }
    }
    let Some(json) = agreed else {
        return Ok(None);
    };
    if json.len() > MAX_SINGLE_HEADER_BYTES {
        return Err(invalid_credentials(
            "single-header credentials are over 4 KiB",
        ));
    }
    parse_single_header(json).map(Some).ok_or_else(|| {
        invalid_credentials(
            "single-header credentials must be one JSON object of strings with cf-access-client-id and cf-access-client-secret",
        )
    })
}

/// `{"cf-access-client-id":"…","cf-access-client-secret":"…"}`, any key case, `_` for `-`:
/// one object of string values, nothing after it, no key twice (in any spelling).
fn parse_single_header(json: &[u8]) -> Option<(String, String)> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(pair) = map.next_entry::<String, String>()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let pairs = serde::Deserializer::deserialize_map(&mut de, Pairs).ok()?;
    de.end().ok()?;
    let mut client_id = None;
    let mut secret = None;
    for (i, (key, value)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(earlier, _)| earlier == key) {
            return None;
        }
        let slot = match key.to_ascii_lowercase().replace('_', "-").as_str() {
            "cf-access-client-id" => &mut client_id,
            "cf-access-client-secret" => &mut secret,
            _ => continue,
        };
        if slot.is_some() {
            return None; // the same credential under two spellings
        }
        *slot = Some(value.trim().to_owned());
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
/// the single header when the credentials came (also) from it.
pub fn remove_credentials(headers: &mut HeaderMap, credentials: &ServiceCredentials) {
    headers.remove(CF_ACCESS_CLIENT_ID);
    headers.remove(CF_ACCESS_CLIENT_SECRET);
    if let CredentialSource::SingleHeader(name) | CredentialSource::Both(name) = &credentials.source
    {
        headers.remove(name);
    }
}

/// Hands a verified identity to the inner service, as Cloudflare's edge hands it to an origin:
/// client-supplied identity headers removed (every spelling), `Cf-Access-Jwt-Assertion` set to
/// `token`, `Cf-Access-Authenticated-User-Email` to a user's e-mail, and the identity in the
/// request extensions.
pub fn forward_identity<B>(request: &mut Request<B>, token: HeaderValue, identity: AccessIdentity) {
    let headers = request.headers_mut();
    // Every client copy goes: the odd spellings here, the canonical ones replaced below.
    let [_, had_email] = strip_other_spellings(headers);
    headers.insert(CF_ACCESS_JWT_ASSERTION, token);
    match identity.email_header() {
        Some(email) => {
            headers.insert(CF_ACCESS_AUTHENTICATED_USER_EMAIL, email.clone());
        }
        None if had_email => {
            headers.remove(CF_ACCESS_AUTHENTICATED_USER_EMAIL);
        }
        None => {}
    }
    request.extensions_mut().insert(identity);
}

/// Put in a request's extensions when a `bypass` policy let it through with no identity at
/// all (Cloudflare's Bypass): the inner service sees no [`AccessIdentity`], and a proxy
/// forwards the request without one rather than refusing it as unauthenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bypassed;

/// Takes every credential and identity a client sent off a request let through with no
/// identity (a bypass policy): the service-token headers (the pair, and the application's
/// `single_header`), the `cf-access-token` header and `CF_Authorization` cookie, and every
/// spelling of `Cf-Access-Jwt-Assertion` and `Cf-Access-Authenticated-User-Email` — so the
/// inner service never sees a secret, nor mistakes a client's copy for what Access vouched for.
pub fn strip_for_bypass(headers: &mut HeaderMap, single_header: Option<&HeaderName>) {
    headers.remove(CF_ACCESS_CLIENT_ID);
    headers.remove(CF_ACCESS_CLIENT_SECRET);
    if let Some(name) = single_header {
        headers.remove(name);
    }
    strip_tokens(headers, &TokenLocation::CLIENT_ORDER);
    set_token_cookie(headers, None);
    strip_other_spellings(headers);
    headers.remove(CF_ACCESS_JWT_ASSERTION);
    headers.remove(CF_ACCESS_AUTHENTICATED_USER_EMAIL);
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

    #[test]
    fn a_quoted_cookie_token_is_trimmed_inside_the_quotes() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("CF_Authorization=\" tok \"; a=b"),
        );
        headers.append(COOKIE, HeaderValue::from_static("CF_Authorization = tok"));
        let found = find_token(&headers, &[TokenLocation::Cookie])
            .expect("the same token twice")
            .expect("a token");
        assert_eq!(found.as_str(), "tok");
        headers.insert(COOKIE, HeaderValue::from_static("CF_Authorization=\"  \""));
        assert!(
            find_token(&headers, &[TokenLocation::Cookie])
                .expect("ok")
                .is_none()
        );
    }

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
            token(&[("cf-access-jwt-assertion", "a"), ("cf-access-token", "a")]),
            Ok(Some("a".into()))
        );
        assert_eq!(
            token(&[("cf-access-token", "a"), ("cf-access-token", "a")]),
            Ok(Some("a".into())),
            "the same token twice is one token"
        );
        for different in [
            &[("cf-access-token", "a"), ("cf-access-token", "b")][..],
            &[("cf-access-jwt-assertion", "a"), ("cf-access-token", "b")],
            &[("cf-access-token", "a"), ("cookie", "CF_Authorization=b")],
            &[("cookie", "CF_Authorization=a; CF_Authorization=b")],
            &[
                ("cookie", "CF_Authorization=a"),
                ("cookie", "CF_Authorization=b"),
            ],
        ] {
            assert_eq!(
                token(different),
                Err(RejectionKind::AmbiguousCredentials),
                "{different:?}"
            );
        }
        assert_eq!(
            token(&[
                ("cf-access-token", "a"),
                ("cookie", "CF_Authorization=\"a\"")
            ]),
            Ok(Some("a".into()))
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
                    let from_single = matches!(
                        c.source(),
                        CredentialSource::SingleHeader(_) | CredentialSource::Both(_)
                    );
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
            Err(RejectionKind::AmbiguousCredentials),
            "two different client IDs"
        );
        assert_eq!(
            credentials(
                &[
                    ("cf-access-client-id", "id"),
                    ("cf-access-client-id", "id"),
                    ("cf-access-client-secret", "s")
                ],
                None
            ),
            Ok(Some(("id".into(), "s".into(), false))),
            "the same line twice"
        );
        let json = r#"{"cf-access-client-id":"id","cf-access-client-secret":"s"}"#;
        let pair = [
            ("cf-access-client-id", "id"),
            ("cf-access-client-secret", "s"),
        ];
        assert_eq!(
            credentials(
                &[pair[0], pair[1], ("authorization", json)],
                Some("authorization")
            ),
            Ok(Some(("id".into(), "s".into(), true))),
            "the same client in both: once"
        );
        let other = r#"{"cf-access-client-id":"other","cf-access-client-secret":"s"}"#;
        assert_eq!(
            credentials(
                &[pair[0], pair[1], ("authorization", other)],
                Some("authorization")
            ),
            Err(RejectionKind::AmbiguousCredentials),
            "the pair and the single header name different clients"
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
            r#"{"cf-access-client-id":"i","cf-access-client-id":"i","cf-access-client-secret":"s"}"#,
            r#"{"cf-access-client-id":"j","cf-access-client-secret":"s","cf-access-client-id":"i"}"#,
            r#"{"cf-access-client-id":1,"cf-access-client-secret":"s"}"#,
            r#"{"cf-access-client-id":"i","cf-access-client-secret":"s","x":{"nested":"v"}}"#,
            r#"{"cf-access-client-id":"i","cf-access-client-secret":"s","x":null}"#,
            r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"} trailing"#,
            r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"}{}"#,
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
    fn single_header_size_is_capped_before_parsing() {
        let padding = " ".repeat(MAX_SINGLE_HEADER_BYTES);
        let json =
            format!(r#"{{"cf-access-client-id":"i",{padding}"cf-access-client-secret":"s"}}"#);
        let mut map = HeaderMap::new();
        map.insert("authorization", HeaderValue::from_str(&json).unwrap());
        let name = HeaderName::from_static("authorization");
        let refused = find_credentials(&map, Some(&name)).unwrap_err();
        assert_eq!(refused.kind(), RejectionKind::InvalidCredentials);
        assert_eq!(
            refused.detail(),
            Some("single-header credentials are over 4 KiB")
        );
    }

    #[test]
    fn token_cookie_rewrites() {
        let mut map = headers(&[
            ("cookie", "a=1; CF_Authorization=old"),
            ("cookie", "CF_Authorization=older; b=2"),
        ]);
        set_token_cookie(&mut map, Some("new"));
        assert_eq!(map.get_all(COOKIE).iter().count(), 1);
        assert_eq!(map[COOKIE], "a=1; b=2; CF_Authorization=new");
        set_token_cookie(&mut map, None);
        assert_eq!(map[COOKIE], "a=1; b=2");
        let mut only = headers(&[("cookie", "CF_Authorization=x")]);
        set_token_cookie(&mut only, None);
        assert!(!only.contains_key(COOKIE));
        let mut none = HeaderMap::new();
        set_token_cookie(&mut none, None);
        assert!(none.is_empty());
        set_token_cookie(&mut none, Some("t"));
        // Already exactly the token's line: kept as it is.
        let mut same = HeaderMap::new();
        same.insert(COOKIE, HeaderValue::from_static("CF_Authorization=t"));
        set_token_cookie(&mut same, Some("t"));
        assert_eq!(
            same.get_all(COOKIE).iter().collect::<Vec<_>>(),
            ["CF_Authorization=t"]
        );
        // The same token with other cookies, or another token: rewritten.
        same.insert(COOKIE, HeaderValue::from_static("CF_Authorization=t; a=1"));
        set_token_cookie(&mut same, Some("t"));
        assert_eq!(same[COOKIE], "a=1; CF_Authorization=t");
        same.insert(COOKIE, HeaderValue::from_static("CF_Authorization=tt"));
        set_token_cookie(&mut same, Some("t"));
        assert_eq!(same[COOKIE], "CF_Authorization=t");
        assert_eq!(none[COOKIE], "CF_Authorization=t");

        let mut map = headers(&[
            ("cf-access-token", "t"),
            ("cookie", "CF_Authorization=t; k=v"),
        ]);
        strip_tokens(
            &mut map,
            &[TokenLocation::AccessTokenHeader, TokenLocation::Cookie],
        );
        assert!(!map.contains_key(CF_ACCESS_TOKEN));
        assert_eq!(map[COOKIE], "k=v");
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
