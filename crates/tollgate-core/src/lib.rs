//! # tollgate-core
//!
//! The vocabulary shared by tollgate's verifier and issuer, with no heavy dependencies:
//!
//! - [`claims`]: [`AccessClaims`], accepting every shape of Cloudflare Access JWT payload;
//! - [`identity`]: [`AccessIdentity`], a verified user or service identity;
//! - [`names`]: the header, cookie and path names of the wire contract;
//! - [`rejection`]: [`Rejection`], an error that is also a 401/403 response, and
//!   [`OnRejection`], how a layer answers one;
//! - [`request`]: the request pipeline every layer shares — where tokens and service-token
//!   credentials are found, how the verified identity is forwarded, how refusals are logged;
//! - [`team_domain`]: [`TeamDomain`], an Access team domain parsed and spelled one way;
//! - [`app_domain`]: [`AppDomain`], where an application lives (`host`, `host/path`, `*.host`),
//!   and [`DomainTable`], which finds the application a request belongs to;
//! - [`clock`]: [`Clock`], so "now" can be fixed in tests and audits;
//! - [`events`]: [`AuthEvent`](events::AuthEvent), what the layers report to an operator's
//!   authentication log and metrics, through [`Events`](events::Events);
//! - [`notice`]: [`Notice`](notice::Notice), what an operator should hear about when no request
//!   fails (a token about to expire, a key rotated, keys that cannot be fetched).
//!
//! [`AccessIdentity`] is also an axum extractor (and `Option<AccessIdentity>` for optional routes):
//! it reads the identity a verifying layer put in the request extensions.

pub mod app_domain;
pub mod claims;
pub mod clock;
pub mod events;
mod extract;
pub mod identity;
pub mod names;
pub mod notice;
pub mod rejection;
pub mod request;
pub mod team_domain;

pub use app_domain::{AppDomain, DomainTable, OriginUrl};
pub use claims::{AccessClaims, Audience};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use identity::{AccessIdentity, IdentityKind};
pub use rejection::{DefaultOnRejection, OnRejection, Rejection, RejectionKind};
pub use request::TokenLocation;
pub use team_domain::TeamDomain;
