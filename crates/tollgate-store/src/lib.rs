//! # tollgate-store
//!
//! SQL backends for tollgate's [token](TokenStore), [signing-key](KeyStore) and
//! [application](AppStore) stores: **SQLite** (embedded default, one file, no server) for a
//! single instance, and **PostgreSQL** for several instances sharing tokens, keys and
//! revocations.
//!
//! [`connect`] picks the backend from the URL, creates the database (SQLite) and the schema on
//! first use, and returns a [`Store`] that implements all three traits:
//!
//! ```
//! use std::sync::Arc;
//! use tollgate_issue::{Revision, TokenStore};
//! use tollgate_store::{StoreOptions, connect};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
//! let store = connect(&url, StoreOptions::new().with_master_key_from_env()?).await?;
//! let tokens: Arc<dyn TokenStore> = Arc::new(store.clone());
//! assert!(tokens.list_tokens().await?.is_empty());
//! assert_eq!(store.revision().await?, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Guarantees
//! - **Atomic.** Every method is one transaction; a crash or error mid-way leaves the store as
//!   it was.
//! - **One schema**, versioned migrations under `migrations/sqlite` and `migrations/postgres`
//!   (same tables and columns), applied on connect. A database migrated by a newer tollgate is
//!   refused rather than misread.
//! - **Authentication log.** [`Store`] implements [`AuthLogStore`](tollgate_issue::AuthLogStore)
//!   on table `auth_events` (migration 0003); its writes do not bump the revision.
//! - **Notification outbox.** [`Store`] implements
//!   [`NotificationStore`](tollgate_issue::NotificationStore) on table `notifications`
//!   (migration 0004): unique per (occurrence, webhook), leased with `FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL; its writes do not bump the revision.
//! - **Account.** [`Store`] implements [`AccountStore`] on tables
//!   `account` (one 32-hex account ID, made by whichever instance asks first) and `api_tokens`
//!   (hashes only), migration 0005.
//! - **Change counter.** Every write bumps [`Revision::revision`] in its own transaction
//!   ([`TokenStore::record_last_seen`] does not), so other instances poll one row and reload
//!   only on change. This crate does not push changes (no `LISTEN/NOTIFY` yet): the bound on how
//!   fast another instance learns of a revocation or key rotation is the issuer's poll interval
//!   (250 ms) plus one reload.
//! - **Single rotation.** [`KeyStore::swap_ring`] is a compare-and-swap on the ring generation
//!   under the writer lock (SQLite `BEGIN IMMEDIATE`; a row lock on PostgreSQL): of two instances
//!   rotating from the same generation, exactly one wins.
//! - **Keys at rest.** With a [`MasterKey`] (`TOLLGATE_MASTER_KEY`, 32 bytes as hex or base64)
//!   private keys are sealed with AES-256-GCM, a random nonce per key and the `kid` as associated
//!   data; [`Store::encrypts_keys`] says whether they are. Without one they are stored as plain
//!   PKCS#8. Reading with the wrong master key fails with [`ErrorKind::WrongMasterKey`].
//!
//! ## Cargo features
//! | feature | default | what |
//! |---|---|---|
//! | `sqlite` | yes | SQLite backend (bundled SQLite) |
//! | `postgres` | no | PostgreSQL backend |

mod account;
mod auth_log;
mod error;
mod master_key;
mod notifications;
mod rows;
mod store;

pub use error::{Error, ErrorKind};
pub use master_key::MasterKey;
pub use store::{Backend, Store, StoreOptions};
#[doc(no_inline)]
pub use tollgate_issue::{AccountStore, AppStore, KeyStore, Revision, TokenStore};

/// Opens the store at `url` (`sqlite://file.db`, `sqlite::memory:`, `postgres://…`); see
/// [`Store::connect`].
///
/// # Errors
/// See [`Store::connect`].
pub async fn connect(url: &str, options: StoreOptions) -> Result<Store, Error> {
    Store::connect(url, options).await
}
