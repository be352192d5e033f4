//! The facade's integration tests in one binary: one link and one copy of the monomorphised
//! client and server stacks, instead of one per file. Each module needs the features named on
//! it. Two tests keep binaries of their own: `logs_and_secrets` installs a process-wide log
//! subscriber, and `auth_log_flood` measures latency under a flood.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "issue")]
mod auth_events;
#[cfg(feature = "verify")]
mod behind_cloudflare;
#[cfg(feature = "issue")]
mod cloudflare_origins;
#[cfg(feature = "issue")]
mod examples;
#[cfg(feature = "issue")]
mod exchange;
#[cfg(feature = "issue")]
mod forwarded_headers;
#[cfg(feature = "issue")]
mod key_rotation;
#[cfg(feature = "issue")]
mod memory_store;
#[cfg(feature = "issue")]
mod multi_instance;
#[cfg(all(feature = "issue", feature = "verify"))]
mod pipeline;
#[cfg(feature = "issue")]
mod routes;
#[cfg(feature = "issue")]
mod throttle;
#[cfg(feature = "issue")]
mod token_lifecycle;
