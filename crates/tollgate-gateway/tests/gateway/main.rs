//! The gateway's integration tests in one binary: one link and one copy of the monomorphised
//! client and server stacks, instead of one per file (the log test keeps a binary of
//! its own: it installs a process-wide subscriber).
#![allow(clippy::unwrap_used)]

mod common;

mod bodies;
mod exchange_gateway;
mod failures;
mod forwarding;
mod pooling;
mod tls_and_http2;
mod upgrade;
