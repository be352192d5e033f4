//! [`Rejection`]: why a request was refused, as an error and as a response.
//!
//! A rejection is opaque: it has a [`kind`](Rejection::kind) (a `#[non_exhaustive]`
//! [`RejectionKind`]), an HTTP [`status`](Rejection::status), and context that helps an operator
//! (which claim, which times) but never a secret, a token or key material — details are
//! `&'static str` by construction. As a response it answers:
//!
//! - **401** with `WWW-Authenticate` for missing or invalid credentials,
//! - **403** for a valid identity the policy refuses,
//! - **503** when no signing keys could be had, **500** for a server misconfiguration,
//! - and, from a gateway in front of an origin, **413** for a request body over its limit,
//!   **502** when the origin cannot be reached or fails, **504** when it answers too late,
//!
//! with a JSON body `{"error":…,"reason":…,"message":…}` and `Cache-Control: no-store`.
//!
//! ```
//! use axum_core::response::IntoResponse;
//! use tollgate_core::{Rejection, RejectionKind};
//!
//! let rejection = Rejection::expired(1_700_000_000, 1_700_000_100);
//! assert_eq!(rejection.kind(), RejectionKind::Expired);
//! assert_eq!(rejection.to_string(), "token expired at 1700000000 (checked at 1700000100)");
//! let response = rejection.into_response();
//! assert_eq!(response.status(), 401);
//! assert!(response.headers().contains_key("www-authenticate"));
//! ```

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

/// The category of a [`Rejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No token and no service-token credentials were presented. 401.
    MissingCredentials,
    /// Service-token credentials were presented but are wrong, expired or revoked. 401.
    InvalidCredentials,
    /// More than one credential was presented and they differ (two tokens, a token header on
    /// two lines with different values, the header pair and the single header naming different
    /// clients): tollgate never picks one. 401.
    AmbiguousCredentials,
    /// The token is not a well-formed compact JWS/JWT. 401.
    MalformedToken,
    /// The token exceeds the configured size cap. 401.
    TokenTooLarge,
    /// The token's algorithm is not on the allow-list. 401.
    DisallowedAlgorithm,
    /// The token's header uses a JOSE feature tollgate does not implement (`crit`, `b64`,
    /// `zip`, `enc`, `p2c`, `epk`): refused rather than misread. 401.
    UnsupportedHeader,
    /// The token is not an Access application token: its header `typ` is not `JWT`, or its
    /// `type` claim is not `app` (nor `org`, where team-domain tokens are accepted). 401.
    WrongTokenType,
    /// No key in the key set has the token's `kid`. 401.
    UnknownKey,
    /// The signature does not verify. 401.
    InvalidSignature,
    /// `exp` has passed. 401.
    Expired,
    /// `nbf` or `iat` lies in the future (beyond the leeway). 401.
    NotYetValid,
    /// `iss` is not the configured issuer. 401.
    WrongIssuer,
    /// `aud` names none of the configured audiences. 401.
    WrongAudience,
    /// A required claim is missing. 401.
    MissingClaim,
    /// A claim has the wrong type (a time that is `null` or not a number, say). 401.
    InvalidClaim,
    /// `exp` lies further from `iat` (or from now) than the configured maximum lifetime. 401.
    LifetimeTooLong,
    /// The token was valid but its credentials have been revoked since. 401.
    Revoked,
    /// The service token's credentials are right but the token is disabled (its record is kept;
    /// enabling it again restores it). 401, like other credential refusals.
    ServiceTokenDisabled,
    /// The identity is valid, but the policy refuses it. 403.
    Forbidden,
    /// Too many failed exchanges from this source lately; `Retry-After` says when to try
    /// again. 429.
    TooManyFailures,
    /// No signing keys are available to verify with (the certs endpoint is unreachable and
    /// nothing usable is cached). 503.
    KeysUnavailable,
    /// The server is misconfigured (e.g. an extractor used without its layer). 500.
    Misconfigured,
    /// The request's host or path has no single meaning (an encoded `/`, a `..;` segment, two
    /// different hosts): a gateway refuses to guess which application it is for. 400.
    AmbiguousRequest,
    /// No application is served at the request's host and path. 404.
    NoApplication,
    /// The request body is larger than the gateway forwards. 413.
    PayloadTooLarge,
    /// A gateway could not reach the origin, or the origin failed before answering (connection
    /// refused or reset, TLS failure, an invalid response). 502.
    OriginUnreachable,
    /// The origin did not answer in time (connect or response-header timeout). 504.
    OriginTimeout,
}

impl RejectionKind {
    /// Every kind, in declaration order (for tables, metrics and parsing stored reasons).
    pub const ALL: [RejectionKind; 28] = [
        RejectionKind::MissingCredentials,
        RejectionKind::InvalidCredentials,
        RejectionKind::AmbiguousCredentials,
        RejectionKind::MalformedToken,
        RejectionKind::TokenTooLarge,
        RejectionKind::DisallowedAlgorithm,
        RejectionKind::UnsupportedHeader,
        RejectionKind::WrongTokenType,
        RejectionKind::UnknownKey,
        RejectionKind::InvalidSignature,
        RejectionKind::Expired,
        RejectionKind::NotYetValid,
        RejectionKind::WrongIssuer,
        RejectionKind::WrongAudience,
        RejectionKind::MissingClaim,
        RejectionKind::InvalidClaim,
        RejectionKind::LifetimeTooLong,
        RejectionKind::Revoked,
        RejectionKind::ServiceTokenDisabled,
        RejectionKind::Forbidden,
        RejectionKind::TooManyFailures,
        RejectionKind::KeysUnavailable,
        RejectionKind::Misconfigured,
        RejectionKind::AmbiguousRequest,
        RejectionKind::NoApplication,
        RejectionKind::PayloadTooLarge,
        RejectionKind::OriginUnreachable,
        RejectionKind::OriginTimeout,
    ];

    /// The kind whose [`as_str`](Self::as_str) is `reason`.
    pub fn parse(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == reason)
    }

    /// The machine-readable reason, `snake_case`, as it appears in response bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionKind::MissingCredentials => "missing_credentials",
            RejectionKind::InvalidCredentials => "invalid_credentials",
            RejectionKind::AmbiguousCredentials => "ambiguous_credentials",
            RejectionKind::MalformedToken => "malformed_token",
            RejectionKind::TokenTooLarge => "token_too_large",
            RejectionKind::DisallowedAlgorithm => "disallowed_algorithm",
            RejectionKind::UnsupportedHeader => "unsupported_header",
            RejectionKind::WrongTokenType => "wrong_token_type",
            RejectionKind::UnknownKey => "unknown_key",
            RejectionKind::InvalidSignature => "invalid_signature",
            RejectionKind::Expired => "expired",
            RejectionKind::NotYetValid => "not_yet_valid",
            RejectionKind::WrongIssuer => "wrong_issuer",
            RejectionKind::WrongAudience => "wrong_audience",
            RejectionKind::MissingClaim => "missing_claim",
            RejectionKind::InvalidClaim => "invalid_claim",
            RejectionKind::LifetimeTooLong => "lifetime_too_long",
            RejectionKind::Revoked => "revoked",
            RejectionKind::ServiceTokenDisabled => "service_token_disabled",
            RejectionKind::Forbidden => "forbidden",
            RejectionKind::TooManyFailures => "too_many_failures",
            RejectionKind::KeysUnavailable => "keys_unavailable",
            RejectionKind::Misconfigured => "misconfigured",
            RejectionKind::AmbiguousRequest => "ambiguous_request",
            RejectionKind::NoApplication => "no_application",
            RejectionKind::PayloadTooLarge => "payload_too_large",
            RejectionKind::OriginUnreachable => "origin_unreachable",
            RejectionKind::OriginTimeout => "origin_timeout",
        }
    }

    /// The HTTP status this kind answers with.
    pub fn status(self) -> StatusCode {
        match self {
            RejectionKind::Forbidden => StatusCode::FORBIDDEN,
            RejectionKind::TooManyFailures => StatusCode::TOO_MANY_REQUESTS,
            RejectionKind::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectionKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
            RejectionKind::AmbiguousRequest => StatusCode::BAD_REQUEST,
            RejectionKind::NoApplication => StatusCode::NOT_FOUND,
            RejectionKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RejectionKind::OriginUnreachable => StatusCode::BAD_GATEWAY,
            RejectionKind::OriginTimeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// A one-line description for humans.
    pub fn message(self) -> &'static str {
        match self {
            RejectionKind::MissingCredentials => "no Access token or service-token credentials",
            RejectionKind::InvalidCredentials => "service-token credentials are not valid",
            RejectionKind::AmbiguousCredentials => "the request presents conflicting credentials",
            RejectionKind::MalformedToken => "token is not a well-formed JWT",
            RejectionKind::TokenTooLarge => "token is too large",
            RejectionKind::DisallowedAlgorithm => "token algorithm is not allowed",
            RejectionKind::UnsupportedHeader => "token header uses an unsupported feature",
            RejectionKind::WrongTokenType => "token is not an Access application token",
            RejectionKind::UnknownKey => "token was signed by an unknown key",
            RejectionKind::InvalidSignature => "token signature is not valid",
            RejectionKind::Expired => "token expired",
            RejectionKind::NotYetValid => "token is not valid yet",
            RejectionKind::WrongIssuer => "token issuer is not accepted",
            RejectionKind::WrongAudience => "token audience is not accepted",
            RejectionKind::MissingClaim => "token lacks a required claim",
            RejectionKind::InvalidClaim => "token has a claim of the wrong type",
            RejectionKind::LifetimeTooLong => "token lifetime is longer than allowed",
            RejectionKind::Revoked => "token credentials were revoked",
            RejectionKind::ServiceTokenDisabled => "the service token is disabled",
            RejectionKind::Forbidden => "identity is not allowed by the policy",
            RejectionKind::TooManyFailures => "too many failed attempts; retry later",
            RejectionKind::KeysUnavailable => "signing keys are unavailable",
            RejectionKind::Misconfigured => "server is misconfigured",
            RejectionKind::AmbiguousRequest => "the request's host or path is ambiguous",
            RejectionKind::NoApplication => "no application is served here",
            RejectionKind::PayloadTooLarge => "request body is too large",
            RejectionKind::OriginUnreachable => "the origin could not be reached",
            RejectionKind::OriginTimeout => "the origin did not answer in time",
        }
    }

    /// Whether this kind means the client failed to authenticate (401).
    pub fn is_unauthenticated(self) -> bool {
        self.status() == StatusCode::UNAUTHORIZED
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    detail: Option<&'static str>,
    times: Option<Times>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Times {
    claim: i64,
    checked_at: i64,
}

impl Rejection {
    /// A rejection of `kind`.
    pub fn new(kind: RejectionKind) -> Self {
        Self {
            kind,
            detail: None,
            times: None,
        }
    }

    /// Adds a detail for operators (logs, `Display`). It is static so it cannot carry request
    /// data such as a token or a secret.
    #[must_use]
    pub fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// An expired token: `exp` and the time it was checked at (seconds since the epoch).
    pub fn expired(exp: i64, checked_at: i64) -> Self {
        Self {
            kind: RejectionKind::Expired,
            detail: None,
            times: Some(Times {
                claim: exp,
                checked_at,
            }),
        }
    }

    /// Too many failures from this source: try again in `retry_after` seconds (at least 1).
    pub fn throttled(retry_after: i64) -> Self {
        Self {
            kind: RejectionKind::TooManyFailures,
            detail: None,
            times: Some(Times {
                claim: retry_after.max(1),
                checked_at: 0,
            }),
        }
    }

    /// For [`RejectionKind::TooManyFailures`]: seconds until the source may try again.
    pub fn retry_after(&self) -> Option<i64> {
        self.times
            .filter(|_| self.kind == RejectionKind::TooManyFailures)
            .map(|t| t.claim)
    }

    /// A token not valid yet: its `nbf` (or `iat`) and the time it was checked at.
    pub fn not_yet_valid(not_before: i64, checked_at: i64) -> Self {
        Self {
            kind: RejectionKind::NotYetValid,
            detail: None,
            times: Some(Times {
                claim: not_before,
                checked_at,
            }),
        }
    }

    /// The category.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The operator-facing detail, if any.
    pub fn detail(&self) -> Option<&'static str> {
        self.detail
    }

    /// For [`RejectionKind::Expired`]: the token's `exp`.
    pub fn expired_at(&self) -> Option<i64> {
        self.times
            .filter(|_| self.kind == RejectionKind::Expired)
            .map(|t| t.claim)
    }

    /// For [`RejectionKind::NotYetValid`]: the token's `nbf` (or `iat`).
    pub fn not_before(&self) -> Option<i64> {
        self.times
            .filter(|_| self.kind == RejectionKind::NotYetValid)
            .map(|t| t.claim)
    }

    /// For time-based rejections: when the check was made.
    pub fn checked_at(&self) -> Option<i64> {
        self.times
            .filter(|_| self.kind != RejectionKind::TooManyFailures)
            .map(|t| t.checked_at)
    }

    /// The JSON body this rejection answers with.
    pub fn body(&self) -> serde_json::Value {
        let error = match self.kind.status() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::BAD_GATEWAY => "bad_gateway",
            StatusCode::GATEWAY_TIMEOUT => "gateway_timeout",
            _ => "internal",
        };
        serde_json::json!({
            "error": error,
            "reason": self.kind.as_str(),
            "message": self.kind.message(),
        })
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.message())?;
        match (self.kind, self.times) {
            (RejectionKind::Expired, Some(t)) => {
                write!(f, " at {} (checked at {})", t.claim, t.checked_at)?;
            }
            (RejectionKind::NotYetValid, Some(t)) => {
                write!(f, ": valid from {} (checked at {})", t.claim, t.checked_at)?;
            }
            _ => {}
        }
        if let Some(detail) = self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

impl From<RejectionKind> for Rejection {
    fn from(kind: RejectionKind) -> Self {
        Self::new(kind)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = Response::new(axum_core::body::Body::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after()
            && let Ok(value) = HeaderValue::try_from(seconds.to_string())
        {
            headers.insert(RETRY_AFTER, value);
        }
        if self.kind.is_unauthenticated() {
            // RFC 6750 §3: no error code when the request carried no credentials at all.
            let challenge = if self.kind == RejectionKind::MissingCredentials {
                r#"Bearer realm="Cloudflare Access""#
            } else {
                r#"Bearer realm="Cloudflare Access", error="invalid_token""#
            };
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// Turns a [`Rejection`] into the response sent back: the customisation point of every
/// tollgate layer (`VerifyLayer::with_rejection_handler`, `ExchangeLayer::with_rejection_handler`).
/// Closures `Fn(Rejection) -> Response` qualify; [`DefaultOnRejection`] answers the rejection's
/// own JSON response.
///
/// ```
/// use axum_core::response::{IntoResponse, Response};
/// use tollgate_core::{OnRejection, Rejection, RejectionKind};
///
/// let plain = |rejection: Rejection| -> Response {
///     (rejection.status(), rejection.kind().as_str()).into_response()
/// };
/// let response = plain.on_rejection(Rejection::new(RejectionKind::Expired));
/// assert_eq!(response.status(), 401);
/// ```
pub trait OnRejection: Send + Sync + 'static {
    /// The response for `rejection`.
    fn on_rejection(&self, rejection: Rejection) -> Response;
}

impl<F> OnRejection for F
where
    F: Fn(Rejection) -> Response + Send + Sync + 'static,
{
    fn on_rejection(&self, rejection: Rejection) -> Response {
        self(rejection)
    }
}

/// Answers a rejection's own response: 401/403/503/500 with a JSON reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultOnRejection;

impl OnRejection for DefaultOnRejection {
    fn on_rejection(&self, rejection: Rejection) -> Response {
        rejection.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_reason() {
        let mut reasons: Vec<_> = RejectionKind::ALL.iter().map(|k| k.as_str()).collect();
        for kind in RejectionKind::ALL {
            assert_eq!(RejectionKind::parse(kind.as_str()), Some(kind));
        }
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(
            reasons.len(),
            RejectionKind::ALL.len(),
            "reasons are unique"
        );
        assert_eq!(RejectionKind::parse("nope"), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(Rejection::new(RejectionKind::Forbidden).status(), 403);
        assert_eq!(
            Rejection::new(RejectionKind::MissingCredentials).status(),
            401
        );
        assert_eq!(Rejection::new(RejectionKind::KeysUnavailable).status(), 503);
        assert_eq!(Rejection::new(RejectionKind::Misconfigured).status(), 500);
    }

    #[test]
    fn gateway_kinds() {
        for (kind, status, error, reason) in [
            (
                RejectionKind::PayloadTooLarge,
                413,
                "payload_too_large",
                "payload_too_large",
            ),
            (
                RejectionKind::OriginUnreachable,
                502,
                "bad_gateway",
                "origin_unreachable",
            ),
            (
                RejectionKind::OriginTimeout,
                504,
                "gateway_timeout",
                "origin_timeout",
            ),
        ] {
            let rejection = Rejection::new(kind).with_detail("connection refused");
            assert_eq!(rejection.status(), status);
            assert!(!kind.is_unauthenticated());
            let body = rejection.body();
            assert_eq!(
                (&body["error"], &body["reason"]),
                (&error.into(), &reason.into())
            );
            assert!(
                !body.to_string().contains("refused"),
                "the detail stays out of the body"
            );
            let response = rejection.into_response();
            assert_eq!(response.status(), status);
            assert!(!response.headers().contains_key(WWW_AUTHENTICATE));
        }
    }

    #[test]
    fn forbidden_has_no_challenge_and_a_json_reason() {
        let response = Rejection::new(RejectionKind::Forbidden).into_response();
        assert_eq!(response.status(), 403);
        assert!(!response.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn throttled_answers_429_with_retry_after() {
        let rejection = Rejection::throttled(42);
        assert_eq!(rejection.retry_after(), Some(42));
        assert_eq!(rejection.checked_at(), None);
        let response = rejection.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[RETRY_AFTER], "42");
        assert!(!response.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(Rejection::throttled(0).retry_after(), Some(1));
    }

    #[test]
    fn time_context() {
        let r = Rejection::not_yet_valid(200, 100);
        assert_eq!(r.not_before(), Some(200));
        assert_eq!(r.expired_at(), None);
        assert_eq!(r.checked_at(), Some(100));
        assert_eq!(r.body()["reason"], "not_yet_valid");
    }
}
