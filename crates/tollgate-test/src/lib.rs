//! Shared fixtures for tollgate's test trees (`tests/` of the facade, tollgate-verify,
//! tollgate-store and tollgate-cli), so each fixture exists once:
//!
//! - [`keys`](mod@keys): RSA signing keys generated once per test binary, and tokens built byte by byte
//!   (hostile headers, payloads and signatures included);
//! - [`claims`]: the issuer, audience, client ID and payloads of Cloudflare-shaped test tokens;
//! - [`wycheproof`]: the Project Wycheproof vectors and their RS256 signing key (Apache-2.0,
//!   see `tests/fixtures/wycheproof/PROVENANCE.md`), signed with jsonwebtoken as an
//!   independent implementation;
//! - [`independent`]: checks a token with jsonwebtoken against a certs document, and its
//!   header and claims against Cloudflare's exact shape;
//! - [`jwks`]: a certs endpoint on 127.0.0.1:0 that serves, rotates, fails, stalls and counts;
//! - [`flaky_certs`]: a certs endpoint on a fixed port switched between serving, failing and
//!   refusing connections (an outage of hours, driven with a manual clock);
//! - [`http`]: serving a router on loopback, reading replies, credential headers, cookies,
//!   polling until something happens;
//! - [`logs`]: a process-wide capture of every `tracing` event;
//! - [`origins`]: the seed origins, Cloudflare's Python (PyJWT, cookie) and Go (go-oidc,
//!   header) origin examples as child processes on 127.0.0.1:0 (installed by
//!   `scripts/test-deps.sh`);
//! - [`webhook`]: a webhook receiver on 127.0.0.1:0 checking signatures independently and
//!   answering scripted statuses;
//! - [`skipped()`]: the loud `SKIPPED:` line of suites that need an external service.
//!
//! Behind features: `issue` (an issuer on a `MemoryStore` with its protected app), `store-contract`
//! (the storage contract suites, generic over the store traits, the authentication log's included), `cli` (the `tollgate` binary in
//! a scratch directory), `postgres` (a fresh PostgreSQL database per test, and a throwaway
//! PostgreSQL server to stop and restart).
//!
//! The default build depends on no tollgate crate: tollgate-verify's tests use it without a
//! second copy of tollgate-verify in their build.
//!
//! Everything here panics on failure: a fixture that cannot be built is a failed test.
#![allow(
    clippy::unwrap_used,
    reason = "test fixtures: a failure to build one is a test failure"
)]

pub mod claims;
pub mod flaky_certs;
pub mod http;
pub mod independent;
pub mod jwks;
pub mod keys;
pub mod logs;
pub mod origins;
pub mod webhook;
pub mod wycheproof;

#[cfg(feature = "store-contract")]
pub mod auth_log_contract;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "issue")]
pub mod issue;
#[cfg(feature = "store-contract")]
pub mod outbox_contract;
#[cfg(feature = "postgres")]
pub mod pg_cluster;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "store-contract")]
pub mod store_contract;

pub use claims::{AUD, CLIENT_ID, ISS, NOW, service_payload, user_payload};
pub use http::{Reply, serve};
pub use jwks::{Behaviour, JwksServer};
pub use keys::{TestKey, b64, keys};
pub use logs::LogCapture;
pub use origins::SeedOrigin;

/// Writes `message` straight to the process's stderr, past the test harness's output capture,
/// so that a suite skipped for want of an external service is visible in every run.
pub fn skipped(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
}
