//! [`AccessIdentity`]: who a verified Access JWT says is calling.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderValue;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::claims::{AccessClaims, Audience};
use crate::clock::from_unix_seconds;
use crate::rejection::{Rejection, RejectionKind};

/// Whether an identity is a person or a service token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityKind {
    /// A person who signed in through an identity provider (`email`, `sub`).
    User,
    /// A service token (`common_name` = its client ID, `sub:""`).
    Service,
}

impl IdentityKind {
    /// `"user"` or `"service"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::User => "user",
            IdentityKind::Service => "service",
        }
    }
}

/// The identity carried by a verified Access JWT. Cheap to clone.
///
/// A verifier puts it in the request's extensions; handlers take it as an extractor (see
/// `tollgate-verify`).
///
/// ```
/// use tollgate_core::{AccessClaims, AccessIdentity, IdentityKind};
///
/// let claims = AccessClaims::service_token("aud", "https://team.example", "abc.access", 0, 60);
/// let identity = AccessIdentity::from_claims(claims)?;
/// assert_eq!(identity.kind(), IdentityKind::Service);
/// assert_eq!(identity.client_id(), Some("abc.access"));
/// assert_eq!(identity.name(), "abc.access");
/// # Ok::<(), tollgate_core::Rejection>(())
/// ```
#[derive(Clone)]
pub struct AccessIdentity {
    inner: Arc<Inner>,
}

struct Inner {
    kind: IdentityKind,
    claims: AccessClaims,
    /// A user's e-mail as the `Cf-Access-Authenticated-User-Email` value, made once per
    /// verified token rather than once per request.
    email_header: Option<HeaderValue>,
    /// The token the identity was verified from, when a verifier made it.
    token: Option<HeaderValue>,
}

impl AccessIdentity {
    /// Classifies verified claims: a non-empty `common_name` makes a service identity; otherwise
    /// an `email` or a non-empty `sub` makes a user identity. Claims with neither are refused
    /// ([`RejectionKind::MissingClaim`]).
    pub fn from_claims(claims: AccessClaims) -> Result<Self, Rejection> {
        Self::build(claims, None)
    }

    /// As [`from_claims`](Self::from_claims), for claims verified from `token`, which the
    /// identity then carries ([`token`](Self::token)): a verifier's cache hands it on with the
    /// identity, so forwarding it as `Cf-Access-Jwt-Assertion` costs no check per request.
    pub fn from_verified(claims: AccessClaims, token: &str) -> Result<Self, Rejection> {
        Self::build(claims, HeaderValue::from_str(token).ok())
    }

    fn build(claims: AccessClaims, token: Option<HeaderValue>) -> Result<Self, Rejection> {
        let kind = if claims.common_name().is_some_and(|cn| !cn.is_empty()) {
            IdentityKind::Service
        } else if claims.email().is_some_and(|e| !e.is_empty()) || !claims.subject().is_empty() {
            IdentityKind::User
        } else {
            return Err(Rejection::new(RejectionKind::MissingClaim).with_detail(
                "token names neither a user (email/sub) nor a service (common_name)",
            ));
        };
        let email_header = match kind {
            IdentityKind::User => claims
                .email()
                .and_then(|email| HeaderValue::from_str(email).ok()),
            IdentityKind::Service => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                kind,
                claims,
                email_header,
                token,
            }),
        })
    }

    /// User or service.
    pub fn kind(&self) -> IdentityKind {
        self.inner.kind
    }
    /// Whether this is a service token.
    pub fn is_service(&self) -> bool {
        self.inner.kind == IdentityKind::Service
    }
    /// Whether this is a person.
    pub fn is_user(&self) -> bool {
        self.inner.kind == IdentityKind::User
    }
    /// The user's e-mail (user identities).
    pub fn email(&self) -> Option<&str> {
        match self.inner.kind {
            IdentityKind::User => self.inner.claims.email(),
            IdentityKind::Service => None,
        }
    }
    /// The token this identity was verified from ([`from_verified`](Self::from_verified)):
    /// what to send on to a service that checks it again. A bearer credential: never log it.
    pub fn token(&self) -> Option<&str> {
        self.token_header().and_then(|value| value.to_str().ok())
    }
    /// [`token`](Self::token) as a header value, made once when the token was verified: a
    /// proxy setting `Cf-Access-Jwt-Assertion` clones it (a reference count) instead of
    /// copying and checking the token again on every request.
    pub fn token_header(&self) -> Option<&HeaderValue> {
        self.inner.token.as_ref()
    }
    /// [`email`](Self::email) as a header value, made once per verified token (`None` too
    /// for an e-mail that cannot be one): the `Cf-Access-Authenticated-User-Email` value.
    pub fn email_header(&self) -> Option<&HeaderValue> {
        self.inner.email_header.as_ref()
    }
    /// The user's ID, `sub` (user identities).
    pub fn user_id(&self) -> Option<&str> {
        let sub = self.inner.claims.subject();
        (self.inner.kind == IdentityKind::User && !sub.is_empty()).then_some(sub)
    }
    /// The service token's client ID, `common_name` (service identities).
    pub fn client_id(&self) -> Option<&str> {
        match self.inner.kind {
            IdentityKind::Service => self.inner.claims.common_name(),
            IdentityKind::User => None,
        }
    }
    /// A display name for logs: the client ID, else the e-mail, else the user ID.
    pub fn name(&self) -> &str {
        self.client_id()
            .or_else(|| self.email())
            .or_else(|| self.user_id())
            .unwrap_or_default()
    }
    /// The audiences (`aud`).
    pub fn audience(&self) -> &Audience {
        self.inner.claims.audience()
    }
    /// The issuer (`iss`): the team domain.
    pub fn issuer(&self) -> &str {
        self.inner.claims.issuer()
    }
    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        from_unix_seconds(self.inner.claims.expires_at())
    }
    /// When the token was issued (`iat`).
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.inner.claims.issued_at().map(from_unix_seconds)
    }
    /// `identity_nonce` (user identities), the key to Cloudflare's get-identity endpoint.
    pub fn identity_nonce(&self) -> Option<&str> {
        self.inner.claims.identity_nonce()
    }
    /// All claims, including custom ones.
    pub fn claims(&self) -> &AccessClaims {
        &self.inner.claims
    }
}

impl fmt::Debug for AccessIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessIdentity")
            .field("kind", &self.inner.kind)
            .field("name", &self.name())
            .field("aud", self.audience())
            .field("iss", &self.issuer())
            .field("exp", &self.inner.claims.expires_at())
            .finish()
    }
}

impl PartialEq for AccessIdentity {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.claims == other.inner.claims
    }
}

impl Serialize for AccessIdentity {
    /// `{"type":"service","name":…,"common_name":…,"aud":[…],"iss":…,"iat":…,"exp":…,"claims":{…}}`
    /// (`email`/`sub` in place of `common_name` for users).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let claims = &self.inner.claims;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.kind().as_str())?;
        map.serialize_entry("name", self.name())?;
        match self.kind() {
            IdentityKind::Service => map.serialize_entry("common_name", &self.client_id())?,
            IdentityKind::User => {
                map.serialize_entry("email", &self.email())?;
                map.serialize_entry("sub", claims.subject())?;
            }
        }
        let aud: Vec<&str> = claims.audience().iter().collect();
        map.serialize_entry("aud", &aud)?;
        map.serialize_entry("iss", claims.issuer())?;
        map.serialize_entry("iat", &claims.issued_at())?;
        map.serialize_entry("exp", &claims.expires_at())?;
        if let Some(nonce) = claims.identity_nonce() {
            map.serialize_entry("identity_nonce", nonce)?;
        }
        map.serialize_entry("claims", claims)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_identity() {
        let claims = AccessClaims::user(
            vec!["aud".into()],
            "https://team.example",
            "jane@example.com",
            "7335d417",
            0,
            60,
        );
        let id = AccessIdentity::from_claims(claims).expect("user");
        assert!(id.is_user());
        assert_eq!(id.email(), Some("jane@example.com"));
        assert_eq!(id.user_id(), Some("7335d417"));
        assert_eq!(id.client_id(), None);
        assert_eq!(id.name(), "jane@example.com");
        let json = serde_json::to_value(&id).expect("json");
        assert_eq!(json["type"], "user");
        assert_eq!(json["aud"][0], "aud");
    }

    #[test]
    fn anonymous_claims_are_refused() {
        let claims = AccessClaims::from_json(br#"{"aud":"a","iss":"i","exp":1,"sub":""}"#)
            .expect("claims parse");
        let err = AccessIdentity::from_claims(claims).expect_err("no identity");
        assert_eq!(err.kind(), RejectionKind::MissingClaim);
    }
}
