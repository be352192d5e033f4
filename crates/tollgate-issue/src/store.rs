//! Storage contracts: the traits a backend implements to persist the [records](crate::records).

use std::future::Future;
use std::pin::Pin;

use crate::policy::PolicyRecord;
use crate::records::{ApiTokenRecord, ApplicationRecord, ServiceTokenRecord, SigningKeyRecord};

/// The boxed future every store method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with the same unique key (client ID, application name, kid) already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The record to update does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The record is still referenced, so it cannot be deleted: a policy names the service
    /// token, or an application links the reusable policy. The message names the referrers.
    #[error("{0}")]
    InUse(String),
    /// The backend failed (I/O, connection, corrupt data, decryption).
    #[error("store backend failed: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// [`InUse`](Self::InUse) for the token `client_id` that the policies named `users` name.
    pub fn token_in_use(client_id: &str, users: &[String]) -> Self {
        Self::InUse(format!(
            "service token {client_id} is used by the policies {}",
            quoted(users)
        ))
    }

    /// [`InUse`](Self::InUse) for the reusable policy `id` that the applications named `apps`
    /// link.
    pub fn policy_in_use(id: &str, apps: &[String]) -> Self {
        Self::InUse(format!(
            "policy {id} is used by the applications {}",
            quoted(apps)
        ))
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A cheap change counter: any write anywhere in the store increases it.
pub trait Revision: Send + Sync + 'static {
    /// The current revision. Instances poll it (e.g. every 250 ms) and reload on change; a
    /// backend may also push changes (PostgreSQL `LISTEN/NOTIFY`) but must keep this exact.
    fn revision(&self) -> StoreFuture<'_, u64>;
}

/// Persistence of service tokens.
///
/// Three stores — service tokens, signing keys, applications — each a trait with an in-memory
/// implementation in this crate ([`MemoryStore`](crate::MemoryStore) implements all three) and
/// SQL implementations in `tollgate-store` (SQLite, PostgreSQL).
///
/// Rules every backend keeps:
/// - every method is atomic: it fully happens or not at all (transactions in SQL);
/// - every write bumps the store's [`revision`](Revision::revision), so other instances sharing
///   the store can poll one cheap number and reload only when something changed;
/// - the key ring is replaced whole, by compare-and-swap on its generation
///   ([`KeyStore::swap_ring`]), so two instances can never both rotate the signing key;
/// - tokens and applications are updated by compare-and-swap on the record as it was read
///   ([`TokenStore::update_token`], [`AppStore::update_app`]), so of two instances editing one
///   record at once neither overwrites the other's change with stale data (a refresh cannot
///   bring back a rotated-out secret);
/// - records hold only hashes of secrets. Private keys are held as PKCS#8 DER; a backend may
///   encrypt them at rest and must hand them back decrypted.
///
/// Times are seconds since the Unix epoch (`i64`).
pub trait TokenStore: Revision {
    /// Inserts a new token; [`StoreError::Conflict`] if the client ID or id exists. Names
    /// need not be unique (Cloudflare allows duplicates).
    fn insert_token<'a>(&'a self, token: &'a ServiceTokenRecord) -> StoreFuture<'a, ()>;
    /// Inserts a new token unless a token already has its name, in one atomic step: `false`,
    /// changing nothing, when the name is taken. For callers that keep names unique (the CLI's
    /// `token create`, the first-run demo token of replicas starting together on one store).
    /// [`StoreError::Conflict`] if the client ID or id exists.
    fn insert_token_if_name_free<'a>(
        &'a self,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool>;
    /// The token with this client ID.
    fn get_token<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>>;
    /// The token with this id (its UUID, as the admin API addresses it). An indexed lookup,
    /// not a scan of [`list_tokens`](Self::list_tokens).
    fn get_token_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>>;
    /// All tokens, ordered by name.
    fn list_tokens(&self) -> StoreFuture<'_, Vec<ServiceTokenRecord>>;
    /// One page of the tokens named `name` (all, for `None`), ordered by name then id
    /// (bytewise), skipping `offset` and taking at most `limit`, with how many there are in
    /// all. The default reads [`list_tokens`](Self::list_tokens); SQL backends read the page
    /// only.
    fn list_tokens_page<'a>(
        &'a self,
        name: Option<&'a str>,
        offset: u64,
        limit: u64,
    ) -> StoreFuture<'a, (u64, Vec<ServiceTokenRecord>)> {
        Box::pin(async move {
            let mut tokens = self.list_tokens().await?;
            if let Some(name) = name {
                tokens.retain(|t| t.name == name);
            }
            tokens.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
            let total = tokens.len() as u64;
            let page = tokens
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .collect();
            Ok((total, page))
        })
    }
    /// Replaces the token `expected` with `token`, by compare-and-swap: only if the stored
    /// token still equals `expected` (the record as the caller read it, `last_seen_at` aside).
    /// Returns `false`, changing nothing, if another writer changed it since; the caller
    /// reloads, re-applies its change and tries again. Does not touch `last_seen_at`.
    ///
    /// [`StoreError::NotFound`] if no token has `expected.client_id`;
    /// [`StoreError::Conflict`] if `token` has another client ID, or takes the id of another
    /// token.
    fn update_token<'a>(
        &'a self,
        expected: &'a ServiceTokenRecord,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool>;
    /// Deletes (revokes) a token; `false` if it did not exist.
    ///
    /// While a policy (reusable or scoped to an application) names the token,
    /// [`StoreError::InUse`] naming the policies, changing nothing, unless `detach`: then the
    /// rules naming it are removed from those policies in the same step (a policy left with no
    /// include rule admits nobody).
    fn delete_token<'a>(&'a self, client_id: &'a str, detach: bool) -> StoreFuture<'a, bool>;
    /// Records last use times in one batch (`(client_id, unix time)`); unknown IDs are ignored,
    /// and a time older than the stored one never overwrites it. Does not bump the revision.
    fn record_last_seen<'a>(&'a self, seen: &'a [(String, i64)]) -> StoreFuture<'a, ()>;
}

/// Persistence of the signing-key ring.
pub trait KeyStore: Revision {
    /// The ring and its generation (0 for a store that never held a ring).
    fn load_ring(&self) -> StoreFuture<'_, (u64, Vec<SigningKeyRecord>)>;
    /// Replaces the whole ring if its generation is still `expected`, making it `expected + 1`.
    /// Returns `false`, changing nothing, if another writer got there first.
    fn swap_ring<'a>(
        &'a self,
        expected: u64,
        ring: &'a [SigningKeyRecord],
    ) -> StoreFuture<'a, bool>;
    /// The rotation period (seconds) set for every instance sharing the store (the admin
    /// API's `key_rotation_interval_days`); `None`: each issuer's own
    /// [`RotationPolicy`](crate::RotationPolicy).
    fn rotation_period(&self) -> StoreFuture<'_, Option<u64>>;
    /// Sets (or, with `None`, clears) the shared rotation period; bumps the revision.
    fn set_rotation_period(&self, seconds: Option<u64>) -> StoreFuture<'_, ()>;
}

/// Persistence of applications and their Access policies.
///
/// An [`ApplicationRecord`] carries its policies: those scoped to it are written and deleted
/// with it; reusable ones are linked by id (their contents are the stored policy's, whatever
/// the record holds) and read back as they are now. Linking a reusable policy that does not
/// exist is [`StoreError::NotFound`].
pub trait AppStore: Revision {
    /// Inserts an application with its scoped policies and links;
    /// [`StoreError::Conflict`] if its name, id, AUD tag or domain exists, or a scoped
    /// policy's id does.
    fn insert_app<'a>(&'a self, app: &'a ApplicationRecord) -> StoreFuture<'a, ()>;
    /// The application with this name.
    fn get_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>>;
    /// The application with this id (its UUID, as the admin API addresses it). An indexed
    /// lookup, not a scan of [`list_apps`](Self::list_apps).
    fn get_app_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>>;
    /// All applications, ordered by name, each with its policies.
    fn list_apps(&self) -> StoreFuture<'_, Vec<ApplicationRecord>>;
    /// Replaces the application `expected` with `app`, by compare-and-swap: only if the stored
    /// application (policies included) still equals `expected`, the record as the caller read
    /// it. Returns `false`, changing nothing, if another writer changed it since; the caller
    /// reloads, re-applies its change and tries again.
    ///
    /// [`StoreError::NotFound`] if no application is named `expected.name`;
    /// [`StoreError::Conflict`] if `app` has another name or another id (neither can change),
    /// or another application's AUD tag or domain.
    fn update_app<'a>(
        &'a self,
        expected: &'a ApplicationRecord,
        app: &'a ApplicationRecord,
    ) -> StoreFuture<'a, bool>;
    /// Deletes an application and its scoped policies; `false` if it did not exist.
    fn delete_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool>;
    /// Inserts a reusable policy ([`PolicyRecord::reusable`] must be set);
    /// [`StoreError::Conflict`] if its id exists.
    fn insert_policy<'a>(&'a self, policy: &'a PolicyRecord) -> StoreFuture<'a, ()>;
    /// The policy with this id, reusable or scoped.
    fn get_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PolicyRecord>>;
    /// Every reusable policy, ordered by name, then id.
    fn list_policies(&self) -> StoreFuture<'_, Vec<PolicyRecord>>;
    /// Replaces the reusable policy `expected` with `policy`, by compare-and-swap as
    /// [`update_app`](Self::update_app); [`StoreError::NotFound`] if no reusable policy has
    /// `expected.id`, [`StoreError::Conflict`] if the id or `reusable` would change.
    fn update_policy<'a>(
        &'a self,
        expected: &'a PolicyRecord,
        policy: &'a PolicyRecord,
    ) -> StoreFuture<'a, bool>;
    /// Deletes a reusable policy; `false` if there is none with this id;
    /// [`StoreError::InUse`], changing nothing, while an application links it.
    fn delete_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;
}

/// Persistence of the account and its API tokens (the admin API's credentials).
///
/// The account ID is made once per store: the first [`account_id`](Self::account_id) call
/// keeps its candidate, and every later call, from any handle or instance, answers the kept
/// one (insert-if-absent, then read, in one step), so instances starting together agree.
/// Making it and recording API-token use do not bump the revision; inserting and deleting API
/// tokens do.
pub trait AccountStore: Revision {
    /// The store's account ID: `candidate` (32 lowercase hex) if the store has none yet, made at
    /// `now`; else the one it has.
    fn account_id<'a>(&'a self, candidate: &'a str, now: i64) -> StoreFuture<'a, String>;
    /// Inserts an API token; [`StoreError::Conflict`] if its id or hash exists.
    fn insert_api_token<'a>(&'a self, token: &'a ApiTokenRecord) -> StoreFuture<'a, ()>;
    /// All API tokens, ordered by name, then id.
    fn list_api_tokens(&self) -> StoreFuture<'_, Vec<ApiTokenRecord>>;
    /// Deletes an API token; `false` if it did not exist.
    fn delete_api_token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;
    /// Records that the API token `id` was used at `at`; an older time never overwrites a newer
    /// one, an unknown id is ignored. Does not bump the revision.
    fn record_api_token_use<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ()>;
}
