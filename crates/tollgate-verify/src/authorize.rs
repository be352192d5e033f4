//! Authorization predicates: which verified identities a [`VerifyLayer`](crate::VerifyLayer)
//! lets through. A refused identity gets **403**.
//!
//! Any `Fn(&AccessIdentity) -> bool` is a predicate; this module adds the common ones.
//!
//! ```
//! use tollgate_verify::authorize::{Authorize, email_domain, service_tokens};
//! use tollgate_core::{AccessClaims, AccessIdentity};
//!
//! let bot = AccessIdentity::from_claims(AccessClaims::service_token(
//!     "aud", "https://t.example", "0123456789abcdef0123456789abcdef.access", 0, 60,
//! ))?;
//! assert!(service_tokens(["0123456789abcdef0123456789abcdef.access"]).authorize(&bot));
//! assert!(!email_domain("example.com").authorize(&bot));
//! assert!((|id: &AccessIdentity| id.is_service()).authorize(&bot));
//! # Ok::<(), tollgate_core::Rejection>(())
//! ```

use std::collections::HashSet;
use std::fmt;

use tollgate_core::AccessIdentity;

/// Decides whether a verified identity may proceed.
pub trait Authorize: Send + Sync + 'static {
    /// `true` to let `identity` through, `false` to answer 403.
    fn authorize(&self, identity: &AccessIdentity) -> bool;
}

impl<F> Authorize for F
where
    F: Fn(&AccessIdentity) -> bool + Send + Sync + 'static,
{
    fn authorize(&self, identity: &AccessIdentity) -> bool {
        self(identity)
    }
}

/// Only these service tokens (by client ID). See [`service_tokens`].
#[derive(Debug, Clone)]
pub struct ServiceTokens {
    client_ids: HashSet<String>,
}

/// Lets through only service tokens whose client ID (`common_name`) is listed.
pub fn service_tokens<I>(client_ids: I) -> ServiceTokens
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    ServiceTokens {
        client_ids: client_ids.into_iter().map(Into::into).collect(),
    }
}

impl Authorize for ServiceTokens {
    fn authorize(&self, identity: &AccessIdentity) -> bool {
        identity
            .client_id()
            .is_some_and(|id| self.client_ids.contains(id))
    }
}

/// Only users whose e-mail is in a domain. See [`email_domain`].
#[derive(Debug, Clone)]
pub struct EmailDomain {
    suffix: String,
}

/// Lets through only users whose e-mail ends in `@domain` (compared case-insensitively; a
/// subdomain does not match).
pub fn email_domain(domain: impl AsRef<str>) -> EmailDomain {
    let domain = domain.as_ref().trim().trim_start_matches('@');
    EmailDomain {
        suffix: format!("@{}", domain.to_ascii_lowercase()),
    }
}

impl Authorize for EmailDomain {
    fn authorize(&self, identity: &AccessIdentity) -> bool {
        identity.email().is_some_and(|email| {
            email.len() > self.suffix.len()
                && email.is_char_boundary(email.len() - self.suffix.len())
                && email[email.len() - self.suffix.len()..].eq_ignore_ascii_case(&self.suffix)
        })
    }
}

/// Lets through users only (no service tokens).
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersOnly;

impl Authorize for UsersOnly {
    fn authorize(&self, identity: &AccessIdentity) -> bool {
        identity.is_user()
    }
}

/// Lets through service tokens only (no users).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServicesOnly;

impl Authorize for ServicesOnly {
    fn authorize(&self, identity: &AccessIdentity) -> bool {
        identity.is_service()
    }
}

pub(crate) struct DynAuthorize(pub(crate) Box<dyn Authorize>);

impl fmt::Debug for DynAuthorize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::AccessClaims;

    fn user(email: &str) -> AccessIdentity {
        AccessIdentity::from_claims(AccessClaims::user(
            vec!["aud".into()],
            "https://t.example",
            email,
            "sub-1",
            0,
            60,
        ))
        .expect("user identity")
    }

    #[test]
    fn email_domain_matches_exactly() {
        let policy = email_domain("Example.com");
        assert!(policy.authorize(&user("jane@example.com")));
        assert!(policy.authorize(&user("JANE@EXAMPLE.COM")));
        assert!(!policy.authorize(&user("jane@sub.example.com")));
        assert!(!policy.authorize(&user("jane@notexample.com")));
        assert!(!policy.authorize(&user("@example.com")));
        assert!(!policy.authorize(&user("jane@example.com.evil")));
    }

    #[test]
    fn users_and_services_only() {
        assert!(UsersOnly.authorize(&user("a@b.c")));
        assert!(!ServicesOnly.authorize(&user("a@b.c")));
        assert!(!service_tokens(["x.access"]).authorize(&user("a@b.c")));
    }
}
