//! # tollgate-verify
//!
//! Verify Cloudflare Access JWTs (work in progress).
