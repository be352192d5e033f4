//! API tokens: the admin API's credentials, and the account they belong to.
//!
//! An API token is `tga_` followed by 58 base32 characters (32 random bytes and a CRC-32, the
//! format of client secrets with its own prefix, so secret scanners can tell them apart). It is
//! shown once, at creation, and stored only as its SHA-256; a presented token is checked
//! against every stored hash in constant time.

use std::fmt;
use std::sync::Arc;

use subtle::{Choice, ConstantTimeEq};
use tollgate_core::SharedClock;

use crate::error::ManageError;
use crate::records::{ApiPermission, ApiTokenRecord};
use crate::secret::{self, generate_prefixed, hash_secret};
use crate::service_tokens::validate_name;
use crate::store::AccountStore;

/// The prefix of every API token.
pub const API_TOKEN_PREFIX: &str = "tga_";

/// An API token as created: shown once, never stored. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct ApiTokenSecret(String);

/// How stale a token's `last_used_at` may get before a use is written again (seconds).
const USE_RECORD_INTERVAL_SECS: i64 = 60;

impl ApiTokenSecret {
    fn generate() -> Self {
        Self(generate_prefixed(API_TOKEN_PREFIX))
    }

    /// The token itself, to show the operator once. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTokenSecret([redacted])")
    }
}

impl fmt::Display for ApiTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tga_[redacted]")
    }
}

/// Manages the account ID and the API tokens of an [`AccountStore`]. Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tollgate_core::SystemClock;
/// use tollgate_issue::{ApiPermission, ApiTokens, MemoryStore};
///
/// let api_tokens = ApiTokens::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock));
/// let account_id = api_tokens.account_id().await?;
/// assert_eq!(account_id.len(), 32);
/// assert_eq!(api_tokens.account_id().await?, account_id, "made once");
///
/// let (record, token) = api_tokens.create("terraform", ApiPermission::Edit).await?;
/// assert!(token.expose_secret().starts_with("tga_"));
/// let caller = api_tokens.authenticate(token.expose_secret()).await?;
/// assert_eq!(caller.map(|t| t.id), Some(record.id.clone()));
/// assert!(api_tokens.authenticate("tga_wrong").await?.is_none());
/// api_tokens.delete(&record.id).await?;
/// assert!(api_tokens.authenticate(token.expose_secret()).await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiTokens {
    store: Arc<dyn AccountStore>,
    clock: SharedClock,
}

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokens")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl ApiTokens {
    /// A manager over `store`, reading "now" from `clock`.
    pub fn new(store: Arc<dyn AccountStore>, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// The store's account ID, 32 lowercase hex: made by the first caller on a store (any
    /// instance), the same ever after.
    pub async fn account_id(&self) -> Result<String, ManageError> {
        let candidate = secret::random_hex(16);
        Ok(self
            .store
            .account_id(&candidate, self.clock.unix_now())
            .await?)
    }

    /// Creates an API token named `name` with `permission`. Returns the record and the token,
    /// which is not stored and cannot be shown again.
    pub async fn create(
        &self,
        name: &str,
        permission: ApiPermission,
    ) -> Result<(ApiTokenRecord, ApiTokenSecret), ManageError> {
        let name = validate_name(name)?;
        let token = ApiTokenSecret::generate();
        let record = ApiTokenRecord {
            id: secret::random_uuid(),
            name: name.to_owned(),
            token_hash: hash_secret(token.expose_secret()),
            permission,
            created_at: self.clock.unix_now(),
            last_used_at: None,
        };
        self.store.insert_api_token(&record).await?;
        tracing::info!(id = %record.id, name = %record.name, permission = %permission, "API token created");
        Ok((record, token))
    }

    /// The API token `presented` is, if any. Its hash is compared with every stored hash in
    /// constant time (no early exit), so timing tells nothing about which tokens exist. A
    /// match records the use (`last_used_at`), at most once a minute per token.
    pub async fn authenticate(
        &self,
        presented: &str,
    ) -> Result<Option<ApiTokenRecord>, ManageError> {
        let hash = hash_secret(presented);
        let mut found: Option<ApiTokenRecord> = None;
        let mut any = Choice::from(0);
        for token in self.store.list_api_tokens().await? {
            let matches = token.token_hash.ct_eq(&hash);
            if bool::from(matches & !any) {
                found = Some(token);
            }
            any |= matches;
        }
        if let Some(token) = &mut found {
            let now = self.clock.unix_now();
            // A busy script calls many times a second: one write a minute keeps `last_used_at`
            // true to the minute without a store write per call.
            if token
                .last_used_at
                .is_none_or(|last| now.saturating_sub(last) >= USE_RECORD_INTERVAL_SECS)
            {
                self.store.record_api_token_use(&token.id, now).await?;
                token.last_used_at = Some(token.last_used_at.map_or(now, |old| old.max(now)));
            }
        }
        Ok(found)
    }

    /// All API tokens (hashes only), ordered by name, then id.
    pub async fn list(&self) -> Result<Vec<ApiTokenRecord>, ManageError> {
        Ok(self.store.list_api_tokens().await?)
    }

    /// Deletes the API token `id`; [`NotFound`](crate::ManageErrorKind::NotFound) if there is
    /// none. Returns the deleted record.
    pub async fn delete(&self, id: &str) -> Result<ApiTokenRecord, ManageError> {
        let not_found = || ManageError::not_found(&format!("API token {id}"));
        let record = self
            .list()
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(not_found)?;
        if !self.store.delete_api_token(id).await? {
            return Err(not_found());
        }
        tracing::info!(id, name = %record.name, "API token deleted");
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ManageErrorKind, MemoryStore};
    use tollgate_core::ManualClock;

    #[tokio::test]
    async fn tokens_are_shown_once_stored_hashed_and_checked() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let store = Arc::new(MemoryStore::new());
        let api = ApiTokens::new(store.clone(), Arc::new(clock.clone()));
        let (read, read_token) = api.create("reader", ApiPermission::Read).await.unwrap();
        let (edit, edit_token) = api.create("writer", ApiPermission::Edit).await.unwrap();
        assert_eq!(read_token.expose_secret().len(), 4 + 58);
        assert_ne!(read_token.expose_secret(), edit_token.expose_secret());
        assert_eq!(
            format!("{read_token} {read_token:?}")
                .matches("redacted")
                .count(),
            2
        );
        assert_eq!(read.token_hash, hash_secret(read_token.expose_secret()));
        assert!(!format!("{read:?}").contains(read_token.expose_secret()));

        clock.advance(std::time::Duration::from_secs(5));
        let who = api
            .authenticate(edit_token.expose_secret())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (who.id.as_str(), who.permission),
            (edit.id.as_str(), ApiPermission::Edit)
        );
        assert_eq!(who.last_used_at, Some(1_700_000_005));
        let listed = api.list().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            listed[1].last_used_at,
            Some(1_700_000_005),
            "the use is stored"
        );
        // Within a minute another use writes nothing; a minute on, it is written again.
        clock.advance(std::time::Duration::from_secs(30));
        api.authenticate(edit_token.expose_secret()).await.unwrap();
        assert_eq!(
            api.list().await.unwrap()[1].last_used_at,
            Some(1_700_000_005)
        );
        clock.advance(std::time::Duration::from_secs(30));
        api.authenticate(edit_token.expose_secret()).await.unwrap();
        assert_eq!(
            api.list().await.unwrap()[1].last_used_at,
            Some(1_700_000_065)
        );
        for wrong in ["", "tga_", &read_token.expose_secret()[..20]] {
            assert!(api.authenticate(wrong).await.unwrap().is_none());
        }
        assert!(validate_name("  ").is_err());
        assert_eq!(
            api.create(" ", ApiPermission::Read)
                .await
                .unwrap_err()
                .kind(),
            ManageErrorKind::InvalidArgument
        );

        assert_eq!(api.delete(&read.id).await.unwrap().name, "reader");
        assert!(
            api.authenticate(read_token.expose_secret())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            api.delete(&read.id).await.unwrap_err().kind(),
            ManageErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn the_account_id_is_made_once() {
        let store = Arc::new(MemoryStore::new());
        let a = ApiTokens::new(store.clone(), Arc::new(ManualClock::at_unix(1)));
        let b = ApiTokens::new(store, Arc::new(ManualClock::at_unix(2)));
        let id = a.account_id().await.unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(b.account_id().await.unwrap(), id);
    }
}
