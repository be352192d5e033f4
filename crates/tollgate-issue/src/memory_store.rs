//! [`MemoryStore`]: every store trait in memory, for tests, development and single-process
//! apps that can afford to lose their tokens on restart.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::policy::PolicyRecord;
use crate::records::{ApiTokenRecord, ApplicationRecord, ServiceTokenRecord, SigningKeyRecord};
use crate::store::{
    AccountStore, AppStore, KeyStore, Revision, StoreError, StoreFuture, TokenStore,
};

/// Tokens, keys, applications and the account in memory. Implements [`TokenStore`],
/// [`KeyStore`], [`AppStore`] and [`AccountStore`]; share one `Arc<MemoryStore>` between them.
#[derive(Default)]
pub struct MemoryStore {
    revision: AtomicU64,
    inner: Mutex<Inner>,
    auth_log: crate::auth_log::MemoryLog,
    outbox: crate::outbox::MemoryOutbox,
}

#[derive(Default)]
struct Inner {
    tokens: BTreeMap<String, ServiceTokenRecord>,
    /// Token id → client ID.
    token_ids: HashMap<String, String>,
    apps: BTreeMap<String, ApplicationRecord>,
    /// Application id → name.
    app_ids: HashMap<String, String>,
    /// Reusable policies by id (applications hold their scoped ones, and link these by id).
    policies: BTreeMap<String, PolicyRecord>,
    ring: (u64, Vec<SigningKeyRecord>),
    rotation_period: Option<u64>,
    account_id: Option<String>,
    api_tokens: BTreeMap<String, ApiTokenRecord>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("revision", &self.revision.load(Ordering::SeqCst))
            .field("tokens", &inner.tokens.len())
            .field("apps", &inner.apps.len())
            .field("keys", &inner.ring.1.len())
            .field("auth_events", &self.auth_log.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The authentication log (`auth_log/memory.rs` implements `AuthLogStore` on it); its writes
    /// never bump the revision.
    pub(crate) fn auth_log(&self) -> &crate::auth_log::MemoryLog {
        &self.auth_log
    }

    /// The notification outbox (`outbox/memory.rs` implements `NotificationStore` on it); its
    /// writes never bump the revision.
    pub(crate) fn outbox(&self) -> &crate::outbox::MemoryOutbox {
        &self.outbox
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.revision.fetch_add(1, Ordering::SeqCst);
    }

    fn ready<'a, T: Send + 'a>(result: Result<T, StoreError>) -> StoreFuture<'a, T> {
        Box::pin(std::future::ready(result))
    }
}

/// Whether the stored token is still `expected`, `last_seen_at` aside (it moves without an
/// update).
fn same_token(stored: &ServiceTokenRecord, expected: &ServiceTokenRecord) -> bool {
    let mut stored = stored.clone();
    stored.last_seen_at = expected.last_seen_at;
    stored == *expected
}

impl Revision for MemoryStore {
    fn revision(&self) -> StoreFuture<'_, u64> {
        Self::ready(Ok(self.revision.load(Ordering::SeqCst)))
    }
}

impl MemoryStore {
    /// Inserts `token` under the lock already held; with `name_free`, only if no token has its
    /// name (`Ok(false)` otherwise).
    fn insert_locked(
        &self,
        inner: &mut Inner,
        token: &ServiceTokenRecord,
        name_free: bool,
    ) -> Result<bool, StoreError> {
        if inner.tokens.contains_key(&token.client_id) {
            return Err(StoreError::Conflict(format!(
                "service token {}",
                token.client_id
            )));
        }
        if inner.token_ids.contains_key(&token.id) {
            return Err(StoreError::Conflict(format!(
                "a service token with id {}",
                token.id
            )));
        }
        if name_free && inner.tokens.values().any(|t| t.name == token.name) {
            return Ok(false);
        }
        inner.tokens.insert(token.client_id.clone(), token.clone());
        inner
            .token_ids
            .insert(token.id.clone(), token.client_id.clone());
        self.bump();
        Ok(true)
    }
}

impl TokenStore for MemoryStore {
    fn insert_token<'a>(&'a self, token: &'a ServiceTokenRecord) -> StoreFuture<'a, ()> {
        let result = self.insert_locked(&mut self.lock(), token, false).map(drop);
        Self::ready(result)
    }

    fn insert_token_if_name_free<'a>(
        &'a self,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        let result = self.insert_locked(&mut self.lock(), token, true);
        Self::ready(result)
    }

    fn get_token<'a>(&'a self, client_id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        Self::ready(Ok(self.lock().tokens.get(client_id).cloned()))
    }

    fn get_token_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ServiceTokenRecord>> {
        let inner = self.lock();
        let token = inner
            .token_ids
            .get(id)
            .and_then(|client_id| inner.tokens.get(client_id))
            .cloned();
        Self::ready(Ok(token))
    }

    fn list_tokens(&self) -> StoreFuture<'_, Vec<ServiceTokenRecord>> {
        let mut tokens: Vec<_> = self.lock().tokens.values().cloned().collect();
        tokens.sort_by(|a, b| a.name.cmp(&b.name));
        Self::ready(Ok(tokens))
    }

    fn update_token<'a>(
        &'a self,
        expected: &'a ServiceTokenRecord,
        token: &'a ServiceTokenRecord,
    ) -> StoreFuture<'a, bool> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let result = if token.client_id != expected.client_id {
            Err(StoreError::Conflict(format!(
                "service token {}: the client ID cannot change",
                expected.client_id
            )))
        } else if inner
            .token_ids
            .get(&token.id)
            .is_some_and(|holder| *holder != token.client_id)
        {
            Err(StoreError::Conflict(format!(
                "a service token with id {}",
                token.id
            )))
        } else {
            match inner.tokens.get_mut(&expected.client_id) {
                Some(stored) if !same_token(stored, expected) => Ok(false),
                Some(stored) => {
                    let last_seen_at = stored.last_seen_at;
                    let old_id = std::mem::replace(stored, token.clone()).id;
                    stored.last_seen_at = last_seen_at;
                    inner.token_ids.remove(&old_id);
                    inner
                        .token_ids
                        .insert(token.id.clone(), token.client_id.clone());
                    self.bump();
                    Ok(true)
                }
                None => Err(StoreError::NotFound(format!(
                    "service token {}",
                    expected.client_id
                ))),
            }
        };
        Self::ready(result)
    }

    fn delete_token<'a>(&'a self, client_id: &'a str, detach: bool) -> StoreFuture<'a, bool> {
        let mut inner = self.lock();
        let Some(token_id) = inner.tokens.get(client_id).map(|t| t.id.clone()) else {
            return Self::ready(Ok(false));
        };
        let users = inner.policies_naming(&token_id);
        if !users.is_empty() && !detach {
            return Self::ready(Err(StoreError::token_in_use(client_id, &users)));
        }
        for policy in inner.policies.values_mut() {
            policy.rules.forget_token(&token_id);
        }
        for app in inner.apps.values_mut() {
            for linked in app.policies.iter_mut().filter(|p| !p.policy.reusable) {
                linked.policy.rules.forget_token(&token_id);
            }
        }
        inner.tokens.remove(client_id);
        inner.token_ids.remove(&token_id);
        self.bump();
        Self::ready(Ok(true))
    }

    fn record_last_seen<'a>(&'a self, seen: &'a [(String, i64)]) -> StoreFuture<'a, ()> {
        let mut inner = self.lock();
        for (client_id, at) in seen {
            if let Some(token) = inner.tokens.get_mut(client_id)
                && token.last_seen_at.is_none_or(|old| old < *at)
            {
                token.last_seen_at = Some(*at);
            }
        }
        Self::ready(Ok(()))
    }
}

impl KeyStore for MemoryStore {
    fn load_ring(&self) -> StoreFuture<'_, (u64, Vec<SigningKeyRecord>)> {
        Self::ready(Ok(self.lock().ring.clone()))
    }

    fn swap_ring<'a>(
        &'a self,
        expected: u64,
        ring: &'a [SigningKeyRecord],
    ) -> StoreFuture<'a, bool> {
        let distinct = ring
            .iter()
            .enumerate()
            .all(|(i, key)| ring[..i].iter().all(|k| k.kid != key.kid));
        if !distinct {
            return Self::ready(Err(StoreError::Conflict(
                "a signing key with the same kid".to_owned(),
            )));
        }
        let mut inner = self.lock();
        let swapped = inner.ring.0 == expected;
        if swapped {
            inner.ring = (expected + 1, ring.to_vec());
            self.bump();
        }
        Self::ready(Ok(swapped))
    }

    fn rotation_period(&self) -> StoreFuture<'_, Option<u64>> {
        Self::ready(Ok(self.lock().rotation_period))
    }

    fn set_rotation_period(&self, seconds: Option<u64>) -> StoreFuture<'_, ()> {
        self.lock().rotation_period = seconds;
        self.bump();
        Self::ready(Ok(()))
    }
}

impl AccountStore for MemoryStore {
    fn account_id<'a>(&'a self, candidate: &'a str, _now: i64) -> StoreFuture<'a, String> {
        let id = self
            .lock()
            .account_id
            .get_or_insert_with(|| candidate.to_owned())
            .clone();
        Self::ready(Ok(id))
    }

    fn insert_api_token<'a>(&'a self, token: &'a ApiTokenRecord) -> StoreFuture<'a, ()> {
        let mut inner = self.lock();
        let result = if inner
            .api_tokens
            .values()
            .any(|t| t.id == token.id || t.token_hash == token.token_hash)
        {
            Err(StoreError::Conflict(format!("API token {}", token.id)))
        } else {
            inner.api_tokens.insert(token.id.clone(), token.clone());
            self.bump();
            Ok(())
        };
        Self::ready(result)
    }

    fn list_api_tokens(&self) -> StoreFuture<'_, Vec<ApiTokenRecord>> {
        let mut tokens: Vec<_> = self.lock().api_tokens.values().cloned().collect();
        tokens.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Self::ready(Ok(tokens))
    }

    fn delete_api_token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let removed = self.lock().api_tokens.remove(id).is_some();
        if removed {
            self.bump();
        }
        Self::ready(Ok(removed))
    }

    fn record_api_token_use<'a>(&'a self, id: &'a str, at: i64) -> StoreFuture<'a, ()> {
        if let Some(token) = self.lock().api_tokens.get_mut(id)
            && token.last_used_at.is_none_or(|old| old < at)
        {
            token.last_used_at = Some(at);
        }
        Self::ready(Ok(()))
    }
}

impl Inner {
    /// The names of the policies (reusable, and scoped to applications) naming `token_id`.
    fn policies_naming(&self, token_id: &str) -> Vec<String> {
        let names = |p: &PolicyRecord| p.rules.token_ids().any(|id| id == token_id);
        let reusable = self.policies.values().filter(|p| names(p));
        let scoped = self
            .apps
            .values()
            .flat_map(|a| a.policies.iter().map(|p| &p.policy))
            .filter(|p| !p.reusable && names(p));
        reusable.chain(scoped).map(|p| p.name.clone()).collect()
    }

    /// `app` with its reusable policies as they are now.
    fn resolved(&self, app: &ApplicationRecord) -> ApplicationRecord {
        let mut app = app.clone();
        for linked in app.policies.iter_mut().filter(|p| p.policy.reusable) {
            if let Some(now) = self.policies.get(&linked.policy.id) {
                linked.policy = now.clone();
            }
        }
        app
    }

    /// Checks `app`'s policies before it is written: linked reusable policies exist, scoped
    /// ids are nobody else's.
    fn check_policies(&self, app: &ApplicationRecord) -> Result<(), StoreError> {
        for linked in &app.policies {
            let id = &linked.policy.id;
            if linked.policy.reusable {
                if !self.policies.contains_key(id) {
                    return Err(StoreError::NotFound(format!("reusable policy {id}")));
                }
            } else if self.policies.contains_key(id)
                || self.apps.values().any(|other| {
                    other.name != app.name && other.policies.iter().any(|p| p.policy.id == *id)
                })
            {
                return Err(StoreError::Conflict(format!("a policy with id {id}")));
            }
        }
        Ok(())
    }
}

/// The other application that already has `app`'s domain.
fn domain_holder<'a>(
    mut apps: impl Iterator<Item = &'a ApplicationRecord>,
    app: &ApplicationRecord,
) -> Option<&'a ApplicationRecord> {
    let domain = app.domain.as_ref()?;
    apps.find(|a| a.name != app.name && a.domain.as_ref() == Some(domain))
}

fn domain_conflict(app: &ApplicationRecord, other: &ApplicationRecord) -> StoreError {
    StoreError::Conflict(format!(
        "the domain {} (application {:?} has it)",
        app.domain.as_deref().unwrap_or_default(),
        other.name
    ))
}

impl AppStore for MemoryStore {
    fn insert_app<'a>(&'a self, app: &'a ApplicationRecord) -> StoreFuture<'a, ()> {
        let mut inner = self.lock();
        let result = if inner.apps.contains_key(&app.name) {
            Err(StoreError::Conflict(format!("application {}", app.name)))
        } else if inner.apps.values().any(|a| a.aud == app.aud) {
            Err(StoreError::Conflict(format!("application AUD {}", app.aud)))
        } else if let Some(other) = domain_holder(inner.apps.values(), app) {
            Err(domain_conflict(app, other))
        } else if inner.app_ids.contains_key(&app.id) {
            Err(StoreError::Conflict(format!(
                "an application with id {}",
                app.id
            )))
        } else if let Err(err) = inner.check_policies(app) {
            Err(err)
        } else {
            inner.apps.insert(app.name.clone(), app.clone());
            inner.app_ids.insert(app.id.clone(), app.name.clone());
            self.bump();
            Ok(())
        };
        Self::ready(result)
    }

    fn get_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        let inner = self.lock();
        Self::ready(Ok(inner.apps.get(name).map(|a| inner.resolved(a))))
    }

    fn get_app_by_id<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ApplicationRecord>> {
        let inner = self.lock();
        let app = inner
            .app_ids
            .get(id)
            .and_then(|name| inner.apps.get(name))
            .map(|a| inner.resolved(a));
        Self::ready(Ok(app))
    }

    fn list_apps(&self) -> StoreFuture<'_, Vec<ApplicationRecord>> {
        let inner = self.lock();
        Self::ready(Ok(inner.apps.values().map(|a| inner.resolved(a)).collect()))
    }

    fn update_app<'a>(
        &'a self,
        expected: &'a ApplicationRecord,
        app: &'a ApplicationRecord,
    ) -> StoreFuture<'a, bool> {
        let mut inner = self.lock();
        let result = if app.name != expected.name {
            Err(StoreError::Conflict(format!(
                "application {:?}: the name cannot change",
                expected.name
            )))
        } else if app.id != expected.id {
            Err(StoreError::Conflict(format!(
                "application {:?}: the id cannot change",
                expected.name
            )))
        } else if inner
            .apps
            .values()
            .any(|a| a.name != app.name && a.aud == app.aud)
        {
            Err(StoreError::Conflict(format!(
                "an application with AUD tag {}",
                app.aud
            )))
        } else if let Some(other) = domain_holder(inner.apps.values(), app) {
            Err(domain_conflict(app, other))
        } else if let Err(err) = inner.check_policies(app) {
            Err(err)
        } else {
            match inner.apps.get(&expected.name).map(|a| inner.resolved(a)) {
                Some(stored) if stored != *expected => Ok(false),
                Some(_) => {
                    inner.apps.insert(app.name.clone(), app.clone());
                    self.bump();
                    Ok(true)
                }
                None => Err(StoreError::NotFound(format!("application {}", app.name))),
            }
        };
        Self::ready(result)
    }

    fn delete_app<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        let mut inner = self.lock();
        let removed = inner.apps.remove(name);
        if let Some(app) = &removed {
            inner.app_ids.remove(&app.id);
            self.bump();
        }
        Self::ready(Ok(removed.is_some()))
    }

    fn insert_policy<'a>(&'a self, policy: &'a PolicyRecord) -> StoreFuture<'a, ()> {
        let mut inner = self.lock();
        let taken = inner.policies.contains_key(&policy.id)
            || inner
                .apps
                .values()
                .any(|a| a.policies.iter().any(|p| p.policy.id == policy.id));
        let result = if !policy.reusable {
            Err(StoreError::Conflict(format!(
                "policy {}: only reusable policies stand alone",
                policy.id
            )))
        } else if taken {
            Err(StoreError::Conflict(format!(
                "a policy with id {}",
                policy.id
            )))
        } else {
            inner.policies.insert(policy.id.clone(), policy.clone());
            self.bump();
            Ok(())
        };
        Self::ready(result)
    }

    fn get_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PolicyRecord>> {
        let inner = self.lock();
        let found = inner.policies.get(id).cloned().or_else(|| {
            inner
                .apps
                .values()
                .flat_map(|a| a.policies.iter())
                .find(|p| p.policy.id == id)
                .map(|p| p.policy.clone())
        });
        Self::ready(Ok(found))
    }

    fn list_policies(&self) -> StoreFuture<'_, Vec<PolicyRecord>> {
        let mut all: Vec<PolicyRecord> = self.lock().policies.values().cloned().collect();
        all.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Self::ready(Ok(all))
    }

    fn update_policy<'a>(
        &'a self,
        expected: &'a PolicyRecord,
        policy: &'a PolicyRecord,
    ) -> StoreFuture<'a, bool> {
        let mut inner = self.lock();
        let result = if policy.id != expected.id || !policy.reusable {
            Err(StoreError::Conflict(format!(
                "policy {}: the id and reusability cannot change",
                expected.id
            )))
        } else {
            match inner.policies.get_mut(&expected.id) {
                Some(stored) if stored != expected => Ok(false),
                Some(stored) => {
                    *stored = policy.clone();
                    self.bump();
                    Ok(true)
                }
                None => Err(StoreError::NotFound(format!(
                    "reusable policy {}",
                    expected.id
                ))),
            }
        };
        Self::ready(result)
    }

    fn delete_policy<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let mut inner = self.lock();
        if !inner.policies.contains_key(id) {
            return Self::ready(Ok(false));
        }
        let users: Vec<String> = inner
            .apps
            .values()
            .filter(|a| {
                a.policies
                    .iter()
                    .any(|p| p.policy.reusable && p.policy.id == id)
            })
            .map(|a| a.name.clone())
            .collect();
        if !users.is_empty() {
            return Self::ready(Err(StoreError::policy_in_use(id, &users)));
        }
        inner.policies.remove(id);
        self.bump();
        Self::ready(Ok(true))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn ring_swap_is_compare_and_swap() {
        let store = MemoryStore::new();
        assert_eq!(store.load_ring().await.unwrap(), (0, vec![]));
        let r0 = store.revision().await.unwrap();
        assert!(store.swap_ring(0, &[]).await.unwrap());
        assert!(!store.swap_ring(0, &[]).await.unwrap(), "stale generation");
        assert_eq!(store.load_ring().await.unwrap().0, 1);
        assert!(store.revision().await.unwrap() > r0);
    }

    /// A service token record named `bot`, its ID, client ID and hash derived from `n`.
    fn bot_token(n: u8) -> ServiceTokenRecord {
        ServiceTokenRecord {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            name: "bot".to_owned(),
            client_id: format!("{}.access", format!("{n:02}").repeat(16)),
            secret_hash: [n; 32],
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            duration: crate::records::TokenDuration::Forever,
            created_at: 1,
            updated_at: 1,
            expires_at: None,
            last_seen_at: None,
            enabled: true,
            client_secret_version: 1,
        }
    }

    fn app(policies: Vec<crate::policy::AppPolicy>) -> ApplicationRecord {
        ApplicationRecord {
            id: "00000000-0000-4000-8000-00000000000a".to_owned(),
            name: "api".to_owned(),
            aud: "ab".repeat(32),
            session_duration: 0,
            read_service_tokens_from_header: None,
            cookie_http_only: true,
            cookie_secure: None,
            policies,
            created_at: 1,
            updated_at: 1,
            tokens_revoked_before: None,
            domain: None,
            origin: None,
        }
    }

    fn policy(id: &str, reusable: bool, include: Vec<PolicyRule>) -> PolicyRecord {
        PolicyRecord {
            id: id.to_owned(),
            name: format!("p{}", &id[34..]),
            decision: crate::policy::PolicyDecision::NonIdentity,
            rules: crate::policy::PolicyRules::including(include),
            reusable,
            created_at: 1,
            updated_at: 1,
        }
    }

    use crate::policy::{AppPolicy, PolicyRule};

    #[tokio::test]
    async fn a_token_a_policy_names_is_deleted_only_detached() {
        let store = MemoryStore::new();
        let token = bot_token(1);
        let names = vec![
            PolicyRule::ServiceToken {
                token_id: token.id.clone(),
            },
            PolicyRule::AnyValidServiceToken {},
        ];
        let shared = policy("00000000-0000-4000-8000-0000000000b1", true, names.clone());
        store.insert_token(&token).await.unwrap();
        store.insert_policy(&shared).await.unwrap();
        let scoped = policy("00000000-0000-4000-8000-0000000000b2", false, names);
        let linked = |precedence, policy: &PolicyRecord| AppPolicy {
            precedence,
            policy: policy.clone(),
        };
        store
            .insert_app(&app(vec![linked(1, &shared), linked(2, &scoped)]))
            .await
            .unwrap();
        let revision = store.revision().await.unwrap();
        let err = store
            .delete_token(&token.client_id, false)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InUse(_)), "{err}");
        assert!(err.to_string().contains("\"pb1\", \"pb2\""), "{err}");
        assert_eq!(store.revision().await.unwrap(), revision, "nothing changed");
        assert!(store.delete_token(&token.client_id, true).await.unwrap());
        let stored = store.get_app("api").await.unwrap().unwrap();
        for linked in &stored.policies {
            assert_eq!(
                linked.policy.rules.include,
                [PolicyRule::AnyValidServiceToken {}],
                "detached from {}",
                linked.policy.name
            );
        }
        let err = store.delete_policy(&shared.id).await.unwrap_err();
        assert!(matches!(err, StoreError::InUse(_)), "{err}");
        let missing = app(vec![linked(
            1,
            &policy("00000000-0000-4000-8000-0000000000b9", true, vec![]),
        )]);
        let mut other = missing.clone();
        other.name = "other".into();
        other.id = "00000000-0000-4000-8000-00000000000c".into();
        other.aud = "cd".repeat(32);
        assert!(matches!(
            store.insert_app(&other).await.unwrap_err(),
            StoreError::NotFound(_)
        ));
        assert!(store.delete_app("api").await.unwrap());
        assert!(
            store.get_policy(&scoped.id).await.unwrap().is_none(),
            "deleted with its app"
        );
        assert!(store.delete_policy(&shared.id).await.unwrap());
    }

    #[tokio::test]
    async fn updates_are_compare_and_swap() {
        let store = MemoryStore::new();
        let token = bot_token(2);
        store.insert_token(&token).await.unwrap();
        store
            .record_last_seen(&[(token.client_id.clone(), 5)])
            .await
            .unwrap();
        let mut rotated = token.clone();
        rotated.secret_hash = [3; 32];
        assert!(
            store.update_token(&token, &rotated).await.unwrap(),
            "last use is not a change"
        );
        let revision = store.revision().await.unwrap();
        let mut stale = token.clone();
        stale.expires_at = Some(100);
        assert!(!store.update_token(&token, &stale).await.unwrap());
        let stored = store.get_token(&token.client_id).await.unwrap().unwrap();
        assert_eq!(stored.secret_hash, [3; 32]);
        assert_eq!(stored.last_seen_at, Some(5));

        let app = app(vec![]);
        store.insert_app(&app).await.unwrap();
        let mut changed = app.clone();
        changed.session_duration = 60;
        assert!(store.update_app(&app, &changed).await.unwrap());
        let revision_after = store.revision().await.unwrap();
        assert_eq!(revision_after, revision + 2);
        assert!(!store.update_app(&app, &app).await.unwrap());
        assert_eq!(store.get_app("api").await.unwrap(), Some(changed));
        assert_eq!(store.revision().await.unwrap(), revision_after);
    }
}
