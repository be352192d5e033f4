//! # tollgate-notify
//!
//! Signed webhook notifications for tollgate: an operator hears about a service token a week
//! before it expires, once it has expired, when a new signing key starts signing and when a
//! team domain's keys cannot be fetched — where they already look, without polling.
//!
//! A [`Notifier`] takes [`Notice`](tollgate_core::notice::Notice)s (from
//! [`Issuer::subscribe_notices`](tollgate_issue::Issuer::subscribe_notices), a verifier's
//! subscription, or [`Notifier::notify`]), puts each into the store's outbox
//! ([`NotificationStore`](tollgate_issue::NotificationStore)) once per occurrence and target,
//! and a background task posts them:
//!
//! - **Once per occurrence.** The outbox is keyed by the notice's dedupe key (a token's id and
//!   expiry, a key's `kid`): the same occurrence seen again after a restart, or by every
//!   instance sharing a PostgreSQL store, adds nothing. Instances lease deliveries from the
//!   store, so each is attempted by one of them at a time.
//! - **Signed.** Every request carries `Tollgate-Timestamp` (Unix seconds) and
//!   `Tollgate-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, plus
//!   `Tollgate-Event-Id` (stable across retries: dedupe on it) and `Tollgate-Event` (the kind);
//!   [`verify_signature`] is the receiver's check.
//! - **Retried** with exponential backoff ([`RetryPolicy`]: 5 s doubling to 15 min, with
//!   jitter; `Retry-After` honoured), given up after 24 h, or after 3 attempts answered with a
//!   4xx other than 408/429. Redirects are not followed.
//! - **Never in the way.** Enqueueing is one store write on the notifier's own task; nothing
//!   on the request path waits for it.
//!
//! The body is JSON: `{"id", "type", "created_at", "text", "data"}` — `text` a one-line
//! summary (what chat webhooks display), `data` the notice's fields.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tollgate_issue::{Issuer, MemoryStore};
//! use tollgate_notify::Notifier;
//!
//! let store = Arc::new(MemoryStore::new());
//! let issuer = Issuer::builder("team.example.com").store(store.clone()).build().await?;
//! let notifier = Notifier::builder(store)
//!     .webhook("https://hooks.example.com/tollgate")?
//!     .secret("a shared secret of 16+ bytes")?
//!     .start()?;
//! notifier.watch_issuer(&issuer).await;
//! # Ok(()) }
//! ```

mod error;
mod notifier;
mod retry;
mod signature;

pub use error::{NotifyError, NotifyErrorKind};
pub use notifier::{
    DEFAULT_LEASE, DEFAULT_OUTBOX_RETENTION, DEFAULT_POLL_INTERVAL, DEFAULT_REQUEST_TIMEOUT,
    Notifier, NotifierBuilder, NotifyStats, event_body, event_id,
};
pub use retry::RetryPolicy;
pub use signature::{
    EVENT_HEADER, EVENT_ID_HEADER, MIN_SECRET_LEN, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    WebhookSecret, sign, verify_signature,
};
