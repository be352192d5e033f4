//! [`Policies`]: the reusable Access policies of a store (see [`policy`](crate::policy)).

use std::fmt;
use std::sync::Arc;

use tollgate_core::SharedClock;

use crate::cas;
use crate::error::ManageError;
use crate::policy::{PolicyDecision, PolicyRecord, PolicyRules};
use crate::reload::ReloadHandle;
use crate::secret::random_uuid;
use crate::service_tokens::validate_name;
use crate::store::{AppStore, TokenStore};

/// Manages reusable Access policies: account-level policies applications link to (with
/// [`AppSettings::reusable_policies`](crate::AppSettings::reusable_policies)). Policies scoped
/// to one application are edited through
/// [`Applications::edit_policies`](crate::Applications::edit_policies). Cheap to clone; get
/// one wired to an issuer from [`Issuer::policies`](crate::Issuer::policies).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tollgate_core::SystemClock;
/// use tollgate_issue::{AppSettings, Applications, MemoryStore, Policies, PolicyDecision, PolicyRule, PolicyRules};
///
/// let store = Arc::new(MemoryStore::new());
/// let policies = Policies::new(store.clone(), store.clone(), Arc::new(SystemClock));
/// let office = policies
///     .create("office", PolicyDecision::Bypass, PolicyRules::including(vec![PolicyRule::Ip {
///         ip: "192.0.2.0/24".parse()?,
///     }]))
///     .await?;
/// let apps = Applications::new(store.clone(), Arc::new(SystemClock));
/// let app = apps
///     .create("wiki", AppSettings::new().reusable_policies(vec![(1, office.id.clone())]))
///     .await?;
/// assert_eq!(app.policies[0].policy, office);
/// assert!(policies.delete(&office.id).await.is_err(), "in use by the application");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Policies {
    store: Arc<dyn AppStore>,
    tokens: Arc<dyn TokenStore>,
    clock: SharedClock,
    reload: ReloadHandle,
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies").finish_non_exhaustive()
    }
}

impl Policies {
    /// A manager over `store`, checking the service tokens rules name against `tokens`.
    pub fn new(store: Arc<dyn AppStore>, tokens: Arc<dyn TokenStore>, clock: SharedClock) -> Self {
        Self {
            store,
            tokens,
            clock,
            reload: ReloadHandle::default(),
        }
    }

    /// Wires the manager to an issuer, whose snapshot is reloaded after every change.
    pub(crate) fn with_reload(mut self, reload: ReloadHandle) -> Self {
        self.reload = reload;
        self
    }

    /// Checks a policy's name and rules, and that every service token they name exists.
    pub async fn check(&self, name: &str, rules: &PolicyRules) -> Result<String, ManageError> {
        let name = validate_name(name)?.to_owned();
        rules
            .validate()
            .map_err(|e| ManageError::invalid(e.to_string()))?;
        for id in rules.token_ids() {
            if self.tokens.get_token_by_id(id).await?.is_none() {
                return Err(ManageError::not_found(&format!("service token {id}")));
            }
        }
        Ok(name)
    }

    /// Creates a reusable policy with a fresh id (a UUID).
    pub async fn create(
        &self,
        name: &str,
        decision: PolicyDecision,
        rules: PolicyRules,
    ) -> Result<PolicyRecord, ManageError> {
        let name = self.check(name, &rules).await?;
        let now = self.clock.unix_now();
        let policy = PolicyRecord {
            id: random_uuid(),
            name,
            decision,
            rules,
            reusable: true,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_policy(&policy).await?;
        tracing::info!(policy = %policy.name, id = %policy.id, decision = %decision, "policy created");
        self.reload.reload().await;
        Ok(policy)
    }

    /// The policy with this id, reusable or scoped to an application.
    pub async fn get(&self, id: &str) -> Result<PolicyRecord, ManageError> {
        self.store
            .get_policy(id)
            .await?
            .ok_or_else(|| ManageError::not_found(&format!("policy {id}")))
    }

    /// Every reusable policy, ordered by name, then id.
    pub async fn list(&self) -> Result<Vec<PolicyRecord>, ManageError> {
        Ok(self.store.list_policies().await?)
    }

    /// The reusable policy `name_or_id` names: its id, or a name only one policy has.
    pub async fn find(&self, name_or_id: &str) -> Result<PolicyRecord, ManageError> {
        let all = self.list().await?;
        if let Some(policy) = all.iter().find(|p| p.id == name_or_id) {
            return Ok(policy.clone());
        }
        let mut named = all.into_iter().filter(|p| p.name == name_or_id);
        match (named.next(), named.next()) {
            (Some(policy), None) => Ok(policy),
            (Some(_), Some(_)) => Err(ManageError::invalid(format!(
                "several policies are named {name_or_id:?}: name one by its id"
            ))),
            (None, _) => Err(ManageError::not_found(&format!("policy {name_or_id}"))),
        }
    }

    /// Replaces a reusable policy's name, decision and rules (Cloudflare's PUT), by
    /// compare-and-swap; every application linking it sees the change at its next reload.
    pub async fn update(
        &self,
        id: &str,
        name: &str,
        decision: PolicyDecision,
        rules: PolicyRules,
    ) -> Result<PolicyRecord, ManageError> {
        let name = self.check(name, &rules).await?;
        let (name, rules) = (&name, &rules);
        let policy = cas::retry(&format!("policy {id}"), || async move {
            let current = self
                .store
                .get_policy(id)
                .await?
                .filter(|p| p.reusable)
                .ok_or_else(|| ManageError::not_found(&format!("policy {id}")))?;
            let policy = PolicyRecord {
                name: name.clone(),
                decision,
                rules: rules.clone(),
                updated_at: self.clock.unix_now(),
                ..current.clone()
            };
            let landed = self.store.update_policy(&current, &policy).await?;
            Ok(landed.then_some(policy))
        })
        .await?;
        self.reload.reload().await;
        Ok(policy)
    }

    /// Deletes a reusable policy; [`InUse`](crate::ManageErrorKind::InUse) while an
    /// application links it.
    pub async fn delete(&self, id: &str) -> Result<(), ManageError> {
        if !self.store.delete_policy(id).await? {
            return Err(ManageError::not_found(&format!("policy {id}")));
        }
        self.reload.reload().await;
        Ok(())
    }
}
