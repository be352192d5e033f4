//! # tollgate-issue
//!
//! Cloudflare Access's service-token flow, in-process: an axum/tower app checks
//! `CF-Access-Client-Id` / `CF-Access-Client-Secret` itself, mints an application token with
//! Cloudflare's exact header and claims, sets `CF_Authorization`, and serves its signing keys on
//! `/cdn-cgi/access/certs` — so bots, origins and verifiers written for Cloudflare work against
//! it unchanged.
//!
//! ## Quickstart
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use tollgate_core::AccessIdentity;
//! use tollgate_issue::{AppSettings, Issuer, MemoryStore, TokenDuration};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::builder("team.example.com")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()
//!     .await?;
//! issuer.apps().create("api", AppSettings::new()).await?;
//! let (token, secret) = issuer.tokens().create("ci-bot", TokenDuration::default()).await?;
//! println!("client id {}, secret {} (shown once)", token.client_id, secret.expose_secret());
//!
//! let app = Router::new()
//!     .route("/", get(|who: AccessIdentity| async move {
//!         format!("hello, {}", who.name())
//!     }))
//!     .layer(issuer.exchange_layer("api")?)
//!     .merge(issuer.routes()); // certs + get-identity, outside the layer
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! ## The parts
//!
//! Every type has one path, at the crate root; the modules behind them are private, named
//! after what they hold.
//!
//! - [`ServiceTokens`] (`service_tokens.rs`) — create (secret shown once as a checksummed
//!   [`ClientSecret`], stored as SHA-256), list, refresh, change duration, rotate with a grace
//!   period, delete, `expiring(within)`; usable with no server (the CLI does).
//! - [`Applications`] (`applications.rs`) — AUD tag, session duration, single-header
//!   credentials, cookie settings, service-auth policy.
//! - [`ApiTokens`] (`api_tokens.rs`) — the store's account ID and the admin API's tokens
//!   (`tga_…`, shown once, stored as SHA-256, checked in constant time; read or edit).
//! - [`SigningKeys`] and [`RotationPolicy`] (`signing_keys.rs`) — the RSA-2048 signing keys,
//!   rotated every 42 days with the next key published a day before it signs and the previous
//!   one accepted 7 more days; compare-and-swap in the store so two instances never both
//!   rotate. The loaded ring, signing and the certs document are `key_ring.rs`.
//! - [`Issuer`] (`issuer/`) — ties stores, clock and [`TeamDomain`](tollgate_core::TeamDomain)
//!   together; keeps an in-memory snapshot reloaded when the store's revision changes (other
//!   processes' changes apply within one poll, 250 ms by default); signs on the blocking pool;
//!   [`IssuerKeySource`] lets tollgate-verify check its tokens with no HTTP.
//! - [`exchange`]: [`ExchangeLayer`], the middleware.
//! - The records ([`ServiceTokenRecord`], [`ApplicationRecord`], [`SigningKeyRecord`], in
//!   `records.rs`, with what they know about themselves) and the storage traits
//!   ([`TokenStore`], [`KeyStore`], [`AppStore`], [`AccountStore`], in `store.rs`); [`MemoryStore`] implements
//!   them here, `tollgate-store` in SQLite and PostgreSQL.
//! - [`AuthLog`] and [`AuthLogStore`] (`auth_log/`) — the authentication log: a non-blocking
//!   event sink writing batches to the store, and the query over it.
//! - [`NotificationStore`] (`outbox/`) — the notification outbox: notices
//!   ([`Notice`](tollgate_core::notice::Notice), raised by the issuer's background task and on
//!   [`Issuer::subscribe_notices`]) waiting for `tollgate-notify` to deliver them, once per
//!   occurrence across restarts and instances.
//!
//! ## Costs (2-core box, loopback, server on one core)
//!
//! An exchange is dominated by one RSA-2048 signature (≈0.5 ms): ≈2,200 exchanges/s. A request
//! riding its cookie costs a verified-token cache hit plus a snapshot lookup (revocation,
//! expiry, policy): ≈30,000 req/s in quiet runs. `benches/exchange.rs` measures both.

mod api_tokens;
mod applications;
mod auth_log;
mod cas;
mod duration;
mod error;
pub mod exchange;
mod issuer;
mod key_ring;
mod memory_store;
mod outbox;
mod policies;
pub mod policy;
mod records;
mod reload;
mod routes;
mod secret;
mod service_tokens;
mod signing_keys;
mod store;

pub use api_tokens::{API_TOKEN_PREFIX, ApiTokenSecret, ApiTokens};
pub use applications::{
    AppSettings, Applications, DEFAULT_SESSION_DURATION, MAX_SESSION_DURATION,
    SERVICE_AUTH_POLICY_NAME,
};
pub use auth_log::{
    AuthLog, AuthLogBuilder, AuthLogStore, DEFAULT_LOG_BATCH_INTERVAL, DEFAULT_LOG_BATCH_SIZE,
    DEFAULT_LOG_CAPACITY, DEFAULT_LOG_PRUNE_INTERVAL, DEFAULT_LOG_RETENTION, DROPPED_ACTION,
    LogQuery, LoggedEvent, MAX_DETAIL_LEN, MAX_FIELD_LEN, Order, bound_event,
};
pub use duration::{DEFAULT_TOKEN_DURATION, DurationError, format_duration, parse_duration};
pub use error::{ManageError, ManageErrorKind};
pub use exchange::{ExchangeLayer, Throttle};
pub use issuer::{
    DEFAULT_LAST_SEEN_FLUSH, DEFAULT_POLL_INTERVAL, Issuer, IssuerBuilder, IssuerKeySource,
    SIGNING_BUCKETS, SigningStats, ZERO_SESSION_TOKEN_LIFETIME,
};
pub use memory_store::MemoryStore;
pub use outbox::{Delivery, DeliveryOutcome, NotificationStore, OutboxEntry};
pub use policies::Policies;
pub use policy::{
    AppPolicy, IpNetwork, PolicyDecision, PolicyError, PolicyRecord, PolicyRule, PolicyRules,
};
pub use records::{
    ApiPermission, ApiTokenRecord, ApplicationRecord, ServiceAuthPolicy, ServiceTokenRecord,
    SigningKeyRecord, TokenDuration,
};
pub use secret::{ClientSecret, SECRET_PREFIX, SecretFormatError, generate_client_id, random_uuid};
pub use service_tokens::{
    EXPIRY_WARNING_WINDOW, ExpiryWarning, MAX_GRACE, MIN_GRACE, ServiceTokens, TokenChange,
};
pub use signing_keys::{KeyInfo, KeyRingStatus, RotationPolicy, SigningKeys};
pub use store::{AccountStore, AppStore, KeyStore, Revision, StoreError, StoreFuture, TokenStore};
pub use tollgate_core::request::is_client_id;
