//! The verifier's integration tests in one binary: one link and one copy of the monomorphised
//! client and server stacks, instead of one per file (the log test keeps a binary of its own: it
//! installs a process-wide subscriber).
#![allow(clippy::unwrap_used)]

mod key_outage;
mod keys;
mod layer;
mod proptest_jws;
mod tokens;
