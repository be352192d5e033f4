//! Service tokens: create, list, refresh, rotate, revoke.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::SharedClock;

use crate::cas;
use crate::error::{ManageError, ManageErrorKind};
use crate::records::{ServiceTokenRecord, TokenDuration};
use crate::reload::ReloadHandle;
use crate::secret::{self, ClientSecret};
use crate::store::TokenStore;

/// Tokens expiring within this window raise a warning (one week, as Cloudflare's e-mails do).
pub const EXPIRY_WARNING_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// The shortest grace period for a rotated secret (1 h).
pub const MIN_GRACE: Duration = Duration::from_secs(3_600);
/// The longest grace period for a rotated secret (30 days).
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);

/// A token about to expire: what the expiry hook receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpiryWarning {
    /// The token's client ID.
    pub client_id: String,
    /// The token's name.
    pub name: String,
    /// When it expires (unix seconds).
    pub expires_at: i64,
}

/// Manages service tokens in a [`TokenStore`]. Cheap to clone.
///
/// Changes to an existing token (refresh, new duration, secret rotation) are compare-and-swap
/// ([`TokenStore::update_token`]): when another instance changes the same token between this
/// one's read and write, the change is re-applied on top of the other, so neither is lost. If
/// the token keeps changing under it, the call fails with [`ManageErrorKind::Conflict`]
/// after a few tries.
///
/// [`ServiceTokens`] manages the tokens of a [`TokenStore`] on its own, with no server running
/// (the `tollgate` CLI uses it directly); an [`Issuer`](crate::Issuer) hands out one wired to
/// its store so that changes show up in its snapshot at once.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tollgate_core::ManualClock;
/// use tollgate_issue::{MemoryStore, ServiceTokens, TokenDuration};
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// let tokens = ServiceTokens::new(Arc::new(MemoryStore::new()), Arc::new(clock.clone()));
/// let (token, secret) = tokens.create("ci-bot", "8760h".parse()?).await?;
/// assert!(token.client_id.ends_with(".access"));
/// assert!(token.accepts_secret(secret.expose_secret(), clock_now(&clock)));
///
/// // Rotate, keeping the old secret valid for a day.
/// let new_secret = tokens.rotate_secret(&token.client_id, Some(Duration::from_secs(86_400))).await?;
/// let token = tokens.get(&token.client_id).await?;
/// assert!(token.accepts_secret(secret.expose_secret(), clock_now(&clock)));
/// assert!(token.accepts_secret(new_secret.expose_secret(), clock_now(&clock)));
/// # fn clock_now(c: &ManualClock) -> i64 { use tollgate_core::Clock; c.unix_now() }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServiceTokens {
    store: Arc<dyn TokenStore>,
    clock: SharedClock,
    reload: ReloadHandle,
}

impl fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// A manager over `store`, reading "now" from `clock`.
    pub fn new(store: Arc<dyn TokenStore>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            reload: ReloadHandle::default(),
        }
    }

    /// Wires the manager to an issuer, whose snapshot is reloaded after every change.
    pub(crate) fn with_reload(mut self, reload: ReloadHandle) -> Self {
        self.reload = reload;
        self
    }

    fn now(&self) -> i64 {
        self.clock.unix_now()
    }

    /// Creates a token named `name` living `duration` from now. Returns the record and the
    /// secret, which is not stored and cannot be shown again. Names need not be unique (as at
    /// Cloudflare); [`create_unique`](Self::create_unique) refuses a name in use.
    pub async fn create(
        &self,
        name: &str,
        duration: TokenDuration,
    ) -> Result<(ServiceTokenRecord, ClientSecret), ManageError> {
        self.create_with(name, duration, NameRule::Any).await
    }

    /// [`create`](Self::create), unless a token already has the name:
    /// [`ManageErrorKind::Conflict`] then, decided atomically in the store, so of two instances
    /// creating one name at once exactly one succeeds (the CLI's `token create` and the
    /// first-run demo token use this).
    pub async fn create_unique(
        &self,
        name: &str,
        duration: TokenDuration,
    ) -> Result<(ServiceTokenRecord, ClientSecret), ManageError> {
        self.create_with(name, duration, NameRule::Unique).await
    }

    async fn create_with(
        &self,
        name: &str,
        duration: TokenDuration,
        rule: NameRule,
    ) -> Result<(ServiceTokenRecord, ClientSecret), ManageError> {
        let secret = ClientSecret::generate();
        let record = self
            .insert(name, secret::generate_client_id(), &secret, duration, rule)
            .await?;
        Ok((record, secret))
    }

    /// Imports an existing token (e.g. one created in Cloudflare's dashboard) with its client ID
    /// and secret; legacy 64-hex secrets are accepted (see [`ClientSecret::parse`]). Like
    /// [`create_unique`](Self::create_unique), refuses a name already in use.
    pub async fn import(
        &self,
        name: &str,
        client_id: &str,
        secret: &ClientSecret,
        duration: TokenDuration,
    ) -> Result<ServiceTokenRecord, ManageError> {
        if !tollgate_core::request::is_client_id(client_id) {
            return Err(ManageError::invalid(
                "client ID must be 32 lowercase hex digits followed by `.access`",
            ));
        }
        self.insert(
            name,
            client_id.to_owned(),
            secret,
            duration,
            NameRule::Unique,
        )
        .await
    }

    async fn insert(
        &self,
        name: &str,
        client_id: String,
        secret: &ClientSecret,
        duration: TokenDuration,
        rule: NameRule,
    ) -> Result<ServiceTokenRecord, ManageError> {
        self.insert_with(name, client_id, secret, duration, rule, |_| ())
            .await
    }

    async fn insert_with(
        &self,
        name: &str,
        client_id: String,
        secret: &ClientSecret,
        duration: TokenDuration,
        rule: NameRule,
        settings: impl FnOnce(&mut ServiceTokenRecord),
    ) -> Result<ServiceTokenRecord, ManageError> {
        let name = validate_name(name)?;
        let now = self.now();
        let mut record = ServiceTokenRecord {
            id: secret::random_uuid(),
            name: name.to_owned(),
            client_id,
            secret_hash: secret.hash(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            duration,
            created_at: now,
            updated_at: now,
            expires_at: duration.expiry_from(now),
            last_seen_at: None,
            enabled: true,
            client_secret_version: 1,
        };
        settings(&mut record);
        match rule {
            NameRule::Any => self.store.insert_token(&record).await?,
            NameRule::Unique => {
                if !self.store.insert_token_if_name_free(&record).await? {
                    return Err(ManageError::new(
                        ManageErrorKind::Conflict,
                        format!("a service token named {name:?} already exists"),
                    ));
                }
            }
        }
        tracing::info!(client_id = %record.client_id, name = %record.name, "service token created");
        self.reload.reload().await;
        Ok(record)
    }

    /// All tokens, ordered by name.
    pub async fn list(&self) -> Result<Vec<ServiceTokenRecord>, ManageError> {
        Ok(self.store.list_tokens().await?)
    }

    /// One page of the tokens named `name` (all, for `None`), ordered by name then id: how
    /// many there are in all, and at most `limit` of them after the first `offset`. SQL stores
    /// read only that page.
    pub async fn list_page(
        &self,
        name: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(u64, Vec<ServiceTokenRecord>), ManageError> {
        Ok(self.store.list_tokens_page(name, offset, limit).await?)
    }

    /// The token with this client ID.
    pub async fn get(&self, client_id: &str) -> Result<ServiceTokenRecord, ManageError> {
        self.store
            .get_token(client_id)
            .await?
            .ok_or_else(|| ManageError::not_found(&format!("service token {client_id}")))
    }

    /// The token with this id (the UUID Cloudflare's API paths key on).
    pub async fn get_by_id(&self, id: &str) -> Result<ServiceTokenRecord, ManageError> {
        self.store
            .get_token_by_id(id)
            .await?
            .ok_or_else(|| ManageError::not_found(&format!("service token with id {id}")))
    }

    /// The token with this client ID, or else the one token with this name (for CLIs); names
    /// are not unique, so a name several tokens share is refused, asking for the client ID.
    pub async fn find(&self, client_id_or_name: &str) -> Result<ServiceTokenRecord, ManageError> {
        if let Some(token) = self.store.get_token(client_id_or_name).await? {
            return Ok(token);
        }
        let mut named = self.list().await?;
        named.retain(|t| t.name == client_id_or_name);
        match named.len() {
            0 => Err(ManageError::not_found(&format!(
                "service token {client_id_or_name}"
            ))),
            1 => Ok(named.remove(0)),
            n => Err(ManageError::invalid(format!(
                "{n} service tokens are named {client_id_or_name:?}: name one by its client ID"
            ))),
        }
    }

    /// Applies `change` to the token by compare-and-swap: when another writer changed the token
    /// between our read and our write, reload and apply `change` again, so neither change is
    /// lost.
    async fn update(
        &self,
        client_id: &str,
        change: impl Fn(&mut ServiceTokenRecord, i64),
    ) -> Result<ServiceTokenRecord, ManageError> {
        let change = &change;
        let token = cas::retry(&format!("service token {client_id}"), || async move {
            let current = self.get(client_id).await?;
            let mut token = current.clone();
            let now = self.now();
            change(&mut token, now);
            token.updated_at = now;
            let landed = self.store.update_token(&current, &token).await?;
            Ok(landed.then_some(token))
        })
        .await?;
        self.reload.reload().await;
        Ok(token)
    }

    /// Extends the token's life by its duration, counted from now.
    pub async fn refresh(&self, client_id: &str) -> Result<ServiceTokenRecord, ManageError> {
        let token = self
            .update(client_id, |t, now| {
                t.expires_at = t.duration.expiry_from(now)
            })
            .await?;
        tracing::info!(client_id, expires_at = ?token.expires_at, "service token refreshed");
        Ok(token)
    }

    /// Changes the token's duration; the new duration applies from now (as a refresh would).
    pub async fn set_duration(
        &self,
        client_id: &str,
        duration: TokenDuration,
    ) -> Result<ServiceTokenRecord, ManageError> {
        self.update(client_id, |t, now| {
            t.duration = duration;
            t.expires_at = duration.expiry_from(now);
        })
        .await
    }

    /// Replaces the token's secret and returns the new one, bumping `client_secret_version`. With
    /// `grace`, the previous secret stays valid that long (1 h to 30 days); with `None` it stops
    /// working at once.
    ///
    /// Sessions already established (application tokens, i.e. cookies) are not ended: they
    /// live until their `exp`, as at Cloudflare. To end them too, [`delete`](Self::delete) the
    /// token.
    pub async fn rotate_secret(
        &self,
        client_id: &str,
        grace: Option<Duration>,
    ) -> Result<ClientSecret, ManageError> {
        if let Some(grace) = grace
            && !(MIN_GRACE..=MAX_GRACE).contains(&grace)
        {
            return Err(ManageError::invalid(
                "grace period must be between 1h and 30 days (720h), or none",
            ));
        }
        let secret = ClientSecret::generate();
        let hash = secret.hash();
        self.update(client_id, |t, now| {
            match grace {
                Some(grace) => {
                    let secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
                    t.previous_secret_hash = Some(t.secret_hash);
                    t.previous_secret_expires_at = Some(now.saturating_add(secs));
                }
                None => {
                    t.previous_secret_hash = None;
                    t.previous_secret_expires_at = None;
                }
            }
            t.secret_hash = hash;
            t.client_secret_version = t.client_secret_version.saturating_add(1);
        })
        .await?;
        tracing::info!(client_id, grace_secs = ?grace.map(|g| g.as_secs()), "service token secret rotated");
        Ok(secret)
    }

    /// Enables or disables the token. A disabled token keeps its record and secrets, but its
    /// exchanges are refused (`service_token_disabled`) and its application tokens (cookies) stop
    /// working, on other instances sharing the store within their reload interval, as a deleted
    /// token's do; enabling it restores both.
    pub async fn set_enabled(
        &self,
        client_id: &str,
        enabled: bool,
    ) -> Result<ServiceTokenRecord, ManageError> {
        let token = self.update(client_id, |t, _| t.enabled = enabled).await?;
        tracing::info!(client_id, enabled, "service token enabled or disabled");
        Ok(token)
    }

    /// Deletes (revokes) the token. Its secret and every application token minted for it stop
    /// working (on other instances sharing the store, within their reload interval).
    ///
    /// While a policy names the token, [`InUse`](crate::ManageErrorKind::InUse) (Cloudflare's
    /// `service_token_in_use`), changing nothing — unless `detach`, which removes it from those
    /// policies in the same step. [`set_enabled`](Self::set_enabled) stops a token at once
    /// without touching any policy.
    pub async fn delete(&self, client_id: &str, detach: bool) -> Result<(), ManageError> {
        if !self.store.delete_token(client_id, detach).await? {
            return Err(ManageError::not_found(&format!(
                "service token {client_id}"
            )));
        }
        tracing::info!(client_id, "service token deleted");
        self.reload.reload().await;
        Ok(())
    }

    /// Creates a token as [`create`](Self::create) does, with its `enabled` flag and its
    /// starting `client_secret_version` (≥ 1) given, in one step (the admin API's create,
    /// which may make a token disabled from the start).
    pub async fn create_with_settings(
        &self,
        name: &str,
        duration: TokenDuration,
        enabled: bool,
        client_secret_version: u64,
    ) -> Result<(ServiceTokenRecord, ClientSecret), ManageError> {
        if client_secret_version == 0 {
            return Err(ManageError::invalid(
                "client_secret_version must be 1 or more",
            ));
        }
        let secret = ClientSecret::generate();
        let client_id = secret::generate_client_id();
        let record = self
            .insert_with(name, client_id, &secret, duration, NameRule::Any, |t| {
                t.enabled = enabled;
                t.client_secret_version = client_secret_version;
            })
            .await?;
        Ok((record, secret))
    }

    /// Applies every field of `change` to the token `client_id` at once, by compare-and-swap:
    /// all of it lands or, on a refusal, nothing does. Returns the new record and, when the
    /// change rotated the secret, the new secret (shown once).
    ///
    /// Rules (Cloudflare's, for its `PUT …/service_tokens/{id}` and `…/rotate`):
    /// - a new `duration` applies from now, as a refresh would;
    /// - the secret rotates when [`rotate`](TokenChange::rotate) is set (the version goes up by
    ///   one) or when [`client_secret_version`](TokenChange::client_secret_version) is above the
    ///   current one (it becomes that version); a version below the current one is refused;
    /// - on a rotation the old secret stays valid until
    ///   [`previous_secret_expires_at`](TokenChange::previous_secret_expires_at), at most 30
    ///   days ahead; no time, or one not in the future, ends it at once;
    /// - without a rotation, a `previous_secret_expires_at` moves the end of the current grace
    ///   period (into the past: the previous secret stops now).
    pub async fn change(
        &self,
        client_id: &str,
        change: &TokenChange,
    ) -> Result<(ServiceTokenRecord, Option<ClientSecret>), ManageError> {
        let name = change.name.as_deref().map(validate_name).transpose()?;
        let max_grace = i64::try_from(MAX_GRACE.as_secs()).unwrap_or(i64::MAX);
        if let Some(Some(at)) = change.previous_secret_expires_at
            && at > self.now().saturating_add(max_grace)
        {
            return Err(ManageError::invalid(
                "previous_client_secret_expires_at may be at most 30 days (720h) from now",
            ));
        }
        let secret = ClientSecret::generate();
        let hash = secret.hash();
        let what = format!("service token {client_id}");
        let (token, rotated) = cas::retry(&what, || async {
            let current = self.get(client_id).await?;
            let mut token = current.clone();
            let now = self.now();
            let version = current.client_secret_version;
            let rotate = match change.client_secret_version {
                Some(v) if v < version => {
                    return Err(ManageError::invalid(format!(
                        "client_secret_version may only grow: it is {version}, not {v}"
                    )));
                }
                Some(v) if v > version => {
                    token.client_secret_version = v;
                    true
                }
                _ if change.rotate => {
                    token.client_secret_version = version.saturating_add(1);
                    true
                }
                _ => false,
            };
            let grace_end = change.previous_secret_expires_at.flatten();
            if rotate {
                match grace_end {
                    Some(at) if at > now => {
                        token.previous_secret_hash = Some(current.secret_hash);
                        token.previous_secret_expires_at = Some(at);
                    }
                    _ => {
                        token.previous_secret_hash = None;
                        token.previous_secret_expires_at = grace_end;
                    }
                }
                token.secret_hash = hash;
            } else if let Some(at) = change.previous_secret_expires_at {
                token.previous_secret_expires_at = at;
                if at.is_none_or(|at| at <= now) {
                    token.previous_secret_hash = None;
                }
            }
            if let Some(name) = name {
                token.name = name.to_owned();
            }
            if let Some(duration) = change.duration {
                token.duration = duration;
                token.expires_at = duration.expiry_from(now);
            }
            if let Some(enabled) = change.enabled {
                token.enabled = enabled;
            }
            if token == current {
                return Ok(Some((token, false)));
            }
            token.updated_at = now;
            let landed = self.store.update_token(&current, &token).await?;
            Ok(landed.then_some((token, rotate)))
        })
        .await?;
        self.reload.reload().await;
        tracing::info!(
            client_id,
            rotated,
            enabled = token.enabled,
            "service token changed"
        );
        Ok((token, rotated.then_some(secret)))
    }

    /// Tokens not yet expired that expire within `within` from now, soonest first.
    pub async fn expiring(&self, within: Duration) -> Result<Vec<ServiceTokenRecord>, ManageError> {
        let now = self.now();
        let mut tokens = self.list().await?;
        tokens.retain(|t| t.expires_within(now, within));
        tokens.sort_by_key(|t| t.expires_at);
        Ok(tokens)
    }
}

/// Several changes to one service token, applied at once by [`ServiceTokens::change`]; a
/// field left `None` is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenChange {
    /// A new name (1 to 200 characters, no control characters).
    pub name: Option<String>,
    /// A new lifetime, applied from now.
    pub duration: Option<TokenDuration>,
    /// Enable or disable the token.
    pub enabled: Option<bool>,
    /// A `client_secret_version` above the current one rotates the secret; the current one
    /// changes nothing; a lower one is refused.
    pub client_secret_version: Option<u64>,
    /// Rotate the secret, the version going up by one (the `…/rotate` call).
    pub rotate: bool,
    /// The end of the previous secret's grace period (unix seconds): `Some(None)` or a time
    /// not in the future ends it now.
    pub previous_secret_expires_at: Option<Option<i64>>,
}

/// Whether a new token's name may be one another token has.
#[derive(Debug, Clone, Copy)]
enum NameRule {
    Any,
    Unique,
}

pub(crate) fn validate_name(name: &str) -> Result<&str, ManageError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ManageError::invalid(
            "name must be 1 to 200 characters with no control characters",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::MemoryStore;
    use crate::store::{Revision, StoreFuture};
    use tollgate_core::{Clock, ManualClock};

    /// A store where another writer changes the token right after every read, so every
    /// compare-and-swap loses.
    struct AlwaysRaced(MemoryStore);

    impl Revision for AlwaysRaced {
        fn revision(&self) -> StoreFuture<'_, u64> {
            self.0.revision()
        }
    }

    impl TokenStore for AlwaysRaced {
        fn insert_token<'a>(&'a self, token: &'a ServiceTokenRecord) -> StoreFuture<'a, ()> {
            self.0.insert_token(token)
        }
        fn insert_token_if_name_free<'a>(
            &'a self,
            token: &'a ServiceTokenRecord,
        ) -> StoreFuture<'a, bool> {
            self.0.insert_token_if_name_free(token)
        }
        fn get_token<'a>(
            &'a self,
            client_id: &'a str,
        ) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
            Box::pin(async move {
                let read = self.0.get_token(client_id).await?;
                if let Some(read) = &read {
                    let mut other = read.clone();
                    other.updated_at += 1;
                    assert!(self.0.update_token(read, &other).await?);
                }
                Ok(read)
            })
        }
        fn get_token_by_id<'a>(
            &'a self,
            id: &'a str,
        ) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
            self.0.get_token_by_id(id)
        }
        fn list_tokens(&self) -> StoreFuture<'_, Vec<ServiceTokenRecord>> {
            self.0.list_tokens()
        }
        fn update_token<'a>(
            &'a self,
            expected: &'a ServiceTokenRecord,
            token: &'a ServiceTokenRecord,
        ) -> StoreFuture<'a, bool> {
            self.0.update_token(expected, token)
        }
        fn delete_token<'a>(&'a self, client_id: &'a str, detach: bool) -> StoreFuture<'a, bool> {
            self.0.delete_token(client_id, detach)
        }
        fn record_last_seen<'a>(&'a self, seen: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
            self.0.record_last_seen(seen)
        }
    }

    #[tokio::test]
    async fn updates_that_always_lose_the_race_give_up_with_a_conflict() {
        let store = Arc::new(AlwaysRaced(MemoryStore::new()));
        let tokens = ServiceTokens::new(store.clone(), Arc::new(ManualClock::at_unix(10)));
        let (token, secret) = tokens.create("bot", TokenDuration::Forever).await.unwrap();
        let revision = store.revision().await.unwrap();
        let err = tokens
            .rotate_secret(&token.client_id, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ManageErrorKind::Conflict);
        assert_eq!(
            store.revision().await.unwrap(),
            revision + crate::cas::ATTEMPTS as u64,
            "one competing write per attempt, ours never landed, then no more tries"
        );
        let stored = store.0.get_token(&token.client_id).await.unwrap().unwrap();
        assert_eq!(
            stored.secret_hash, token.secret_hash,
            "nothing of ours landed"
        );
        assert!(stored.accepts_secret(secret.expose_secret(), 10));
    }

    fn manager() -> (ServiceTokens, ManualClock, Arc<MemoryStore>) {
        let clock = ManualClock::at_unix(1_700_000_000);
        let store = Arc::new(MemoryStore::new());
        (
            ServiceTokens::new(store.clone(), Arc::new(clock.clone())),
            clock,
            store,
        )
    }

    #[tokio::test]
    async fn create_list_get_delete() {
        let (tokens, clock, _) = manager();
        let (token, secret) = tokens
            .create("bot", TokenDuration::default())
            .await
            .unwrap();
        assert_eq!(token.expires_at, Some(clock.unix_now() + 31_536_000));
        assert_ne!(token.secret_hash, [0; 32]);
        assert!(token.accepts_secret(secret.expose_secret(), clock.unix_now()));
        assert!(!token.accepts_secret("tgs_wrong", clock.unix_now()));
        let err = tokens
            .create_unique(" bot ", TokenDuration::Forever)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ManageErrorKind::Conflict);
        assert_eq!(tokens.list().await.unwrap().len(), 1);
        assert_eq!(tokens.find("bot").await.unwrap().client_id, token.client_id);
        assert_eq!(tokens.get_by_id(&token.id).await.unwrap(), token);
        assert_eq!(
            tokens.get_by_id("nope").await.unwrap_err().kind(),
            ManageErrorKind::NotFound
        );

        // Names need not be unique; a shared name no longer finds one token.
        let (twin, _) = tokens.create("bot", TokenDuration::Forever).await.unwrap();
        assert_ne!(twin.client_id, token.client_id);
        let err = tokens.find("bot").await.unwrap_err();
        assert_eq!(err.kind(), ManageErrorKind::InvalidArgument);
        assert!(err.to_string().contains("client ID"), "{err}");
        tokens.delete(&twin.client_id, false).await.unwrap();
        tokens.delete(&token.client_id, false).await.unwrap();
        assert_eq!(
            tokens.get(&token.client_id).await.unwrap_err().kind(),
            ManageErrorKind::NotFound
        );
        assert_eq!(
            tokens
                .delete(&token.client_id, false)
                .await
                .unwrap_err()
                .kind(),
            ManageErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn disabled_tokens_keep_their_record() {
        let (tokens, clock, _) = manager();
        let (token, secret) = tokens.create("bot", TokenDuration::Forever).await.unwrap();
        assert!(token.enabled);
        assert_eq!(token.client_secret_version, 1);
        let disabled = tokens.set_enabled(&token.client_id, false).await.unwrap();
        assert!(!disabled.enabled);
        assert_eq!(disabled.secret_hash, token.secret_hash);
        assert!(disabled.accepts_secret(secret.expose_secret(), clock.unix_now()));
        assert!(!tokens.get(&token.client_id).await.unwrap().enabled);
        assert!(
            tokens
                .set_enabled(&token.client_id, true)
                .await
                .unwrap()
                .enabled
        );
        assert_eq!(
            tokens
                .set_enabled("nobody.access", true)
                .await
                .unwrap_err()
                .kind(),
            ManageErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn refresh_and_duration() {
        let (tokens, clock, _) = manager();
        let (token, _) = tokens.create("bot", "1h".parse().unwrap()).await.unwrap();
        clock.advance(Duration::from_secs(1800));
        let token = tokens.refresh(&token.client_id).await.unwrap();
        assert_eq!(token.expires_at, Some(clock.unix_now() + 3600));
        let token = tokens
            .set_duration(&token.client_id, TokenDuration::Forever)
            .await
            .unwrap();
        assert_eq!(token.expires_at, None);
        assert!(!token.is_expired_at(i64::MAX));
    }

    #[tokio::test]
    async fn rotation_with_and_without_grace() {
        let (tokens, clock, _) = manager();
        let (token, old) = tokens
            .create("bot", TokenDuration::default())
            .await
            .unwrap();
        for bad in [Duration::from_secs(60), Duration::from_secs(31 * 86_400)] {
            let err = tokens
                .rotate_secret(&token.client_id, Some(bad))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ManageErrorKind::InvalidArgument);
        }
        let new = tokens
            .rotate_secret(&token.client_id, Some(MIN_GRACE))
            .await
            .unwrap();
        let record = tokens.get(&token.client_id).await.unwrap();
        assert_eq!(
            record.client_secret_version, 2,
            "a rotation bumps the version"
        );
        let now = clock.unix_now();
        assert!(record.accepts_secret(old.expose_secret(), now));
        assert!(record.accepts_secret(new.expose_secret(), now));
        assert!(!record.accepts_secret(old.expose_secret(), now + 3600));
        assert!(record.accepts_secret(new.expose_secret(), now + 3600));

        let newest = tokens.rotate_secret(&token.client_id, None).await.unwrap();
        let record = tokens.get(&token.client_id).await.unwrap();
        assert!(!record.accepts_secret(new.expose_secret(), now));
        assert!(record.accepts_secret(newest.expose_secret(), now));
    }

    #[tokio::test]
    async fn expiring_lists_tokens_inside_the_window() {
        let (tokens, clock, _) = manager();
        tokens.create("soon", "48h".parse().unwrap()).await.unwrap();
        tokens
            .create("later", "8760h".parse().unwrap())
            .await
            .unwrap();
        tokens
            .create("never", TokenDuration::Forever)
            .await
            .unwrap();
        let soon = tokens.expiring(EXPIRY_WARNING_WINDOW).await.unwrap();
        assert_eq!(soon.len(), 1);
        assert_eq!(soon[0].name, "soon");
        clock.advance(Duration::from_secs(3 * 86_400));
        assert!(
            tokens
                .expiring(EXPIRY_WARNING_WINDOW)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn import_accepts_legacy_secrets() {
        let (tokens, clock, _) = manager();
        let legacy = "0f6e4b4c9a1d2e3f405162738495a6b7c8d9eafb0c1d2e3f405162738495a6b7";
        let secret = ClientSecret::parse(legacy).unwrap();
        let token = tokens
            .import(
                "legacy",
                "0123456789abcdef0123456789abcdef.access",
                &secret,
                TokenDuration::Forever,
            )
            .await
            .unwrap();
        assert!(token.accepts_secret(legacy, clock.unix_now()));
        let err = tokens
            .import("x", "nope", &secret, TokenDuration::Forever)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ManageErrorKind::InvalidArgument);
    }
}
