//! [`AccessIdentity`] as an axum extractor.
//!
//! A verifying layer (`tollgate_verify::VerifyLayer`, or the issuer's `ExchangeLayer`) puts the
//! verified identity in the request's extensions; handlers take it as an argument:
//!
//! - `AccessIdentity` — the route requires an identity. Without one the layer would already have
//!   answered 401, so a missing identity means the layer itself is missing: the extractor answers
//!   **500** and says so, rather than letting the route run unauthenticated.
//! - `Option<AccessIdentity>` — for routes behind a layer in optional mode: `None` for anonymous
//!   callers.
//!
//! ```
//! use axum_core::extract::FromRequestParts;
//! use tollgate_core::{AccessClaims, AccessIdentity, RejectionKind};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let identity = AccessIdentity::from_claims(
//!     AccessClaims::service_token("aud", "https://team.example", "abc.access", 0, 60),
//! ).unwrap();
//! let (mut parts, ()) = http::Request::new(()).into_parts();
//! let missing = AccessIdentity::from_request_parts(&mut parts, &()).await.unwrap_err();
//! assert_eq!(missing.kind(), RejectionKind::Misconfigured);
//!
//! parts.extensions.insert(identity.clone());
//! let found = AccessIdentity::from_request_parts(&mut parts, &()).await.unwrap();
//! assert_eq!(found, identity);
//! # }
//! ```

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::identity::AccessIdentity;
use crate::rejection::{Rejection, RejectionKind};

impl<S: Send + Sync> FromRequestParts<S> for AccessIdentity {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AccessIdentity>()
            .cloned()
            .ok_or_else(|| {
                Rejection::new(RejectionKind::Misconfigured).with_detail(
                    "the AccessIdentity extractor needs tollgate's VerifyLayer (or ExchangeLayer) \
                 around this route; none ran for this request",
                )
            })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AccessIdentity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AccessIdentity>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::AccessClaims;

    #[tokio::test]
    async fn optional_extractor_and_the_missing_layer_message() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let none =
            <AccessIdentity as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await;
        assert!(matches!(none, Ok(None)));
        let err = <AccessIdentity as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .expect_err("no layer ran");
        assert_eq!(err.status(), 500);
        assert!(err.to_string().contains("VerifyLayer"), "{err}");

        let claims = AccessClaims::service_token("aud", "https://t.example", "x.access", 0, 9);
        let identity = AccessIdentity::from_claims(claims).expect("service identity");
        parts.extensions.insert(identity.clone());
        let some =
            <AccessIdentity as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await;
        assert!(matches!(some, Ok(Some(found)) if found == identity));
    }
}
