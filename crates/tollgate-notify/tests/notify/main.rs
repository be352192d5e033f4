//! tollgate-notify against real parts: SQLite files and PostgreSQL databases as the outbox, a
//! webhook receiver on loopback checking signatures with its own HMAC code, an issuer raising
//! notices, a verifier whose certs endpoint fails.

#![allow(clippy::unwrap_used)]

mod delivery;
mod sources;

use std::sync::Arc;
use std::time::Duration;

use tollgate_notify::{Notifier, NotifierBuilder, RetryPolicy};
use tollgate_store::{Store, StoreOptions, connect};

/// The secret the tests sign with.
pub const SECRET: &str = "test-webhook-secret-0123456789";

/// How long a test waits for a delivery.
pub const WITHIN: Duration = Duration::from_secs(15);

/// A SQLite store in `dir`; every call opens another handle (pool) on the same file.
pub async fn sqlite(dir: &tempfile::TempDir) -> Arc<Store> {
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    Arc::new(connect(&url, StoreOptions::new()).await.unwrap())
}

/// A notifier on `store` posting to `url`, retrying after 50 ms, polling every 50 ms.
pub fn notifier(store: Arc<Store>, url: &str) -> NotifierBuilder {
    Notifier::builder(store)
        .webhook(url)
        .unwrap()
        .secret(SECRET)
        .unwrap()
        .retry(RetryPolicy::default().with_base(Duration::from_millis(50)))
        .poll_interval(Duration::from_millis(50))
}
