//! # tollgate-issue
//!
//! Issue Cloudflare Access JWTs in-process (work in progress).

pub mod store;
