//! Applications: what an [`ExchangeLayer`](crate::exchange::ExchangeLayer) protects.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use tollgate_core::{AppDomain, OriginUrl, SharedClock};

use crate::cas;
use crate::error::ManageError;
use crate::policy::{AppPolicy, PolicyDecision, PolicyRecord, PolicyRule, PolicyRules, is_uuid};
use crate::records::{ApplicationRecord, ServiceAuthPolicy};
use crate::reload::ReloadHandle;
use crate::secret::{random_hex, random_uuid};
use crate::service_tokens::validate_name;
use crate::store::{AppStore, TokenStore};

/// The name of the policy [`AppSettings::policy`] gives an application.
pub const SERVICE_AUTH_POLICY_NAME: &str = "Service Auth";

/// The default session duration, `24h`.
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(86_400);
/// The longest session duration Cloudflare offers, one month (`730h`).
pub const MAX_SESSION_DURATION: Duration = Duration::from_secs(730 * 3_600);

/// Settings to create or change an application with. Unset fields keep their current value on
/// [`Applications::update`] and take their default on [`Applications::create`].
///
/// An application has a name, an AUD tag (64 random hex, stable for its life: every token minted
/// for it carries the tag in `aud`), a session duration (the application token's lifetime;
/// `24h` by default, zero for "no cookie, re-authenticate every request"), an optional single
/// header carrying both credentials as JSON, cookie settings and a service-auth policy.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::{Arc, Weak};
/// use std::time::Duration;
/// use tollgate_core::SystemClock;
/// use tollgate_issue::{AppSettings, Applications, MemoryStore};
///
/// let apps = Applications::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock));
/// let app = apps
///     .create("internal-api", AppSettings::new().read_service_tokens_from_header("Authorization"))
///     .await?;
/// assert_eq!(app.aud.len(), 64);
/// assert_eq!(app.session_duration, 86_400);
/// let app = apps.update("internal-api", AppSettings::new().session_duration(Duration::ZERO)).await?;
/// assert_eq!(app.session_duration, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct AppSettings {
    session_duration: Option<Duration>,
    header: Option<Option<String>>,
    http_only: Option<bool>,
    secure: Option<Option<bool>>,
    policy: Option<PolicyChoice>,
    domain: Option<Option<String>>,
    origin: Option<Option<String>>,
}

impl AppSettings {
    /// No changes / all defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Application-token lifetime (default 24 h, at most 730 h); zero sets no cookie and makes
    /// every request authenticate with its credentials.
    pub fn session_duration(mut self, duration: Duration) -> Self {
        self.session_duration = Some(duration);
        self
    }

    /// Also accept both credentials as JSON in this header
    /// (`{"cf-access-client-id":"…","cf-access-client-secret":"…"}`).
    pub fn read_service_tokens_from_header(mut self, header: impl Into<String>) -> Self {
        self.header = Some(Some(header.into()));
        self
    }

    /// Stop accepting credentials in a single header.
    pub fn no_single_header(mut self) -> Self {
        self.header = Some(None);
        self
    }

    /// `HttpOnly` on the cookie (default on).
    pub fn cookie_http_only(mut self, on: bool) -> Self {
        self.http_only = Some(on);
        self
    }

    /// `Secure` on the cookie: `Some(true/false)` forces it, `None` (the default) follows the
    /// request's scheme (on for https, off for plain-http development).
    pub fn cookie_secure(mut self, secure: Option<bool>) -> Self {
        self.secure = Some(secure);
        self
    }

    /// Which service tokens may pass: replaces the application's policies with one Service
    /// Auth (`non_identity`) policy scoped to it, named [`SERVICE_AUTH_POLICY_NAME`]. The
    /// default of [`Applications::create`] is
    /// [`AnyValidServiceToken`](ServiceAuthPolicy::AnyValidServiceToken). Tokens may be named
    /// by id, or by client ID when the manager knows the token store
    /// ([`Applications::with_tokens`]; an [`Issuer`](crate::Issuer)'s does).
    pub fn policy(mut self, policy: ServiceAuthPolicy) -> Self {
        self.policy = Some(PolicyChoice::ServiceAuth(policy));
        self
    }

    /// Replaces the application's policies with links to these reusable policies, as
    /// `(precedence, policy id)` (precedences unique; evaluated lowest first). Empty: no
    /// policies, nobody admitted — what an application created through Cloudflare's API
    /// without `policies` is.
    pub fn reusable_policies(mut self, links: Vec<(u32, String)>) -> Self {
        self.policy = Some(PolicyChoice::Reusable(links));
        self
    }

    /// Where the application lives: `host`, `host/path` or `*.host`, with an optional
    /// `:port` (see [`AppDomain`]). Stored in its canonical spelling; a domain another
    /// application already has is refused (a conflict), so no request is ever ambiguous.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(Some(domain.into()));
        self
    }

    /// No domain: the application is not routed by `Host` and path.
    pub fn no_domain(mut self) -> Self {
        self.domain = Some(None);
        self
    }

    /// The origin a gateway proxies the application's requests to (`http://` or `https://`,
    /// optional path prefix; see [`OriginUrl`]).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(Some(origin.into()));
        self
    }

    /// No origin: tollgate answers the application's requests itself.
    pub fn no_origin(mut self) -> Self {
        self.origin = Some(None);
        self
    }

    /// Applies every setting but the policies (which [`Applications`] resolves).
    fn apply(self, app: &mut ApplicationRecord) -> Result<(), ManageError> {
        if let Some(domain) = self.domain {
            app.domain = match domain {
                Some(domain) => Some(
                    AppDomain::parse(&domain)
                        .map_err(|e| ManageError::invalid(e.to_string()))?
                        .as_str()
                        .to_owned(),
                ),
                None => None,
            };
        }
        if let Some(origin) = self.origin {
            app.origin = match origin {
                Some(origin) => Some(
                    OriginUrl::parse(&origin)
                        .map_err(|e| ManageError::invalid(e.to_string()))?
                        .as_str()
                        .to_owned(),
                ),
                None => None,
            };
        }
        if let Some(duration) = self.session_duration {
            if duration > MAX_SESSION_DURATION {
                return Err(ManageError::invalid(
                    "session duration must be at most 730h",
                ));
            }
            app.session_duration = duration.as_secs();
        }
        if let Some(header) = self.header {
            if let Some(name) = &header
                && HeaderName::try_from(name.as_str()).is_err()
            {
                return Err(ManageError::invalid(format!(
                    "{name:?} is not a valid header name"
                )));
            }
            app.read_service_tokens_from_header = header.map(|h| h.to_ascii_lowercase());
        }
        if let Some(http_only) = self.http_only {
            app.cookie_http_only = http_only;
        }
        if let Some(secure) = self.secure {
            app.cookie_secure = secure;
        }
        Ok(())
    }
}

/// How [`AppSettings`] sets the policies.
#[derive(Debug, Clone)]
enum PolicyChoice {
    ServiceAuth(ServiceAuthPolicy),
    Reusable(Vec<(u32, String)>),
}

/// Manages applications in an [`AppStore`]. Cheap to clone.
#[derive(Clone)]
pub struct Applications {
    store: Arc<dyn AppStore>,
    tokens: Option<Arc<dyn TokenStore>>,
    clock: SharedClock,
    reload: ReloadHandle,
}

impl fmt::Debug for Applications {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applications").finish_non_exhaustive()
    }
}

impl Applications {
    /// A manager over `store`.
    pub fn new(store: Arc<dyn AppStore>, clock: SharedClock) -> Self {
        Self {
            store,
            tokens: None,
            clock,
            reload: ReloadHandle::default(),
        }
    }

    /// Lets [`AppSettings::policy`] name service tokens by client ID, looked up in `tokens`.
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenStore>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The policies `choice` stands for, at `now`.
    async fn resolve(&self, choice: PolicyChoice, now: i64) -> Result<Vec<AppPolicy>, ManageError> {
        match choice {
            PolicyChoice::ServiceAuth(policy) => {
                let include = match policy {
                    ServiceAuthPolicy::AnyValidServiceToken => {
                        vec![PolicyRule::AnyValidServiceToken {}]
                    }
                    ServiceAuthPolicy::Tokens(names) => {
                        let mut rules = Vec::with_capacity(names.len());
                        for name in names {
                            rules.push(PolicyRule::ServiceToken {
                                token_id: self.token_id(&name).await?,
                            });
                        }
                        rules
                    }
                };
                Ok(vec![AppPolicy {
                    precedence: 1,
                    policy: PolicyRecord {
                        id: random_uuid(),
                        name: SERVICE_AUTH_POLICY_NAME.to_owned(),
                        decision: PolicyDecision::NonIdentity,
                        rules: PolicyRules::including(include),
                        reusable: false,
                        created_at: now,
                        updated_at: now,
                    },
                }])
            }
            PolicyChoice::Reusable(mut links) => {
                links.sort_by_key(|(precedence, _)| *precedence);
                let mut policies: Vec<AppPolicy> = Vec::with_capacity(links.len());
                for (precedence, id) in links {
                    let policy = self
                        .store
                        .get_policy(&id)
                        .await?
                        .filter(|p| p.reusable)
                        .ok_or_else(|| ManageError::not_found(&format!("reusable policy {id}")))?;
                    policies.push(AppPolicy { precedence, policy });
                }
                check_precedences(&policies)?;
                Ok(policies)
            }
        }
    }

    /// The id of the service token `name` names: its id, or its client ID.
    async fn token_id(&self, name: &str) -> Result<String, ManageError> {
        let tokens = self.tokens.as_ref();
        let found = if is_uuid(name) {
            match tokens {
                Some(tokens) => tokens.get_token_by_id(name).await?.map(|t| t.id),
                None => Some(name.to_owned()),
            }
        } else if tollgate_core::request::is_client_id(name) {
            let tokens = tokens.ok_or_else(|| {
                ManageError::invalid(format!(
                    "{name:?}: naming a service token by client ID needs the token store \
                     (Applications::with_tokens)"
                ))
            })?;
            tokens.get_token(name).await?.map(|t| t.id)
        } else {
            return Err(ManageError::invalid(format!(
                "{name:?} is not a client ID (32 hex digits and .access) or a token id"
            )));
        };
        found.ok_or_else(|| ManageError::not_found(&format!("service token {name}")))
    }

    /// Wires the manager to an issuer, whose snapshot is reloaded after every change.
    pub(crate) fn with_reload(mut self, reload: ReloadHandle) -> Self {
        self.reload = reload;
        self
    }

    /// Creates an application with a fresh id (a UUID) and AUD tag; `updated_at` is its
    /// creation time, and no tokens are revoked.
    pub async fn create(
        &self,
        name: &str,
        settings: AppSettings,
    ) -> Result<ApplicationRecord, ManageError> {
        let name = validate_name(name)?;
        let now = self.clock.unix_now();
        let mut app = ApplicationRecord {
            id: random_uuid(),
            name: name.to_owned(),
            aud: random_hex(32),
            session_duration: DEFAULT_SESSION_DURATION.as_secs(),
            read_service_tokens_from_header: None,
            cookie_http_only: true,
            cookie_secure: None,
            policies: Vec::new(),
            created_at: now,
            updated_at: now,
            tokens_revoked_before: None,
            domain: None,
            origin: None,
        };
        let choice = settings.policy.clone().unwrap_or(PolicyChoice::ServiceAuth(
            ServiceAuthPolicy::AnyValidServiceToken,
        ));
        settings.apply(&mut app)?;
        app.policies = self.resolve(choice, now).await?;
        self.store.insert_app(&app).await?;
        tracing::info!(app = %app.name, aud = %app.aud, "application created");
        self.reload.reload().await;
        Ok(app)
    }

    /// The application named `name`.
    pub async fn get(&self, name: &str) -> Result<ApplicationRecord, ManageError> {
        self.store
            .get_app(name)
            .await?
            .ok_or_else(|| ManageError::not_found(&format!("application {name}")))
    }

    /// The application with this id (its UUID, as the admin API addresses it).
    pub async fn get_by_id(&self, id: &str) -> Result<ApplicationRecord, ManageError> {
        self.store
            .get_app_by_id(id)
            .await?
            .ok_or_else(|| ManageError::not_found(&format!("application with id {id}")))
    }

    /// All applications, ordered by name.
    pub async fn list(&self) -> Result<Vec<ApplicationRecord>, ManageError> {
        Ok(self.store.list_apps().await?)
    }

    /// Applies the settings that are set and stamps `updated_at`; the id and the AUD tag never
    /// change.
    ///
    /// The write is compare-and-swap ([`AppStore::update_app`]): when another instance changes
    /// the application between this one's read and write, the settings are applied again on
    /// top of that change, so neither is lost; [`ManageErrorKind::Conflict`](crate::ManageErrorKind::Conflict) if it keeps
    /// changing after a few tries.
    pub async fn update(
        &self,
        name: &str,
        settings: AppSettings,
    ) -> Result<ApplicationRecord, ManageError> {
        let policies = match settings.policy.clone() {
            Some(choice) => Some(self.resolve(choice, self.clock.unix_now()).await?),
            None => None,
        };
        let (settings, policies) = (&settings, &policies);
        let app = cas::retry(&format!("application {name}"), || async move {
            let current = self.get(name).await?;
            let mut app = current.clone();
            settings.clone().apply(&mut app)?;
            if let Some(policies) = policies {
                app.policies = policies.clone();
            }
            app.updated_at = self.clock.unix_now();
            let landed = self.store.update_app(&current, &app).await?;
            Ok(landed.then_some(app))
        })
        .await?;
        self.reload.reload().await;
        Ok(app)
    }

    /// Edits the application's policies with `edit` (given them in precedence order, and the
    /// time), by compare-and-swap like [`update`](Self::update): `edit` may run more than once.
    /// Precedences must stay unique; the list is stored sorted by them. Reusable policies
    /// added must exist. Returns what `edit` returned on the run that landed, and the record.
    pub async fn edit_policies<T, F>(
        &self,
        name: &str,
        edit: F,
    ) -> Result<(T, ApplicationRecord), ManageError>
    where
        F: Fn(&mut Vec<AppPolicy>, i64) -> Result<T, ManageError>,
    {
        let edit = &edit;
        let (value, app) = cas::retry(&format!("application {name}"), || async move {
            let current = self.get(name).await?;
            let mut app = current.clone();
            let now = self.clock.unix_now();
            let value = edit(&mut app.policies, now)?;
            app.policies.sort_by_key(|p| p.precedence);
            check_precedences(&app.policies)?;
            for linked in &app.policies {
                linked
                    .policy
                    .rules
                    .validate()
                    .map_err(|e| ManageError::invalid(e.to_string()))?;
            }
            app.updated_at = now;
            let landed = self.store.update_app(&current, &app).await?;
            Ok(landed.then_some((value, app)))
        })
        .await?;
        self.reload.reload().await;
        Ok((value, app))
    }

    /// Cloudflare's `revoke_tokens`: every application token (cookie, `cf-access-token`,
    /// `Cf-Access-Jwt-Assertion`) minted for the application before this call is refused from
    /// now on, as [`Revoked`](tollgate_core::RejectionKind::Revoked); service-token credentials
    /// still exchange for new tokens, which work. Returns the updated record.
    ///
    /// # The rule
    ///
    /// Tokens carry `iat` in whole seconds, so a token minted earlier in the very second of the
    /// call has the same `iat` as one minted later in it. The rule, applied on every verify path
    /// of the issuer:
    ///
    /// - this call sets [`tokens_revoked_before`](ApplicationRecord::tokens_revoked_before) to
    ///   `T = now + 1` (never lower than a `T` already set, so a clock stepping back does not
    ///   un-revoke anything);
    /// - a token with `iat < T` is refused: every token minted before the call has
    ///   `iat <= now < T`, those of the call's own second included;
    /// - the exchange mints with `iat = max(now, T)`: a token minted after the call is never in
    ///   the revoked range, even within the call's second (its `iat` is then up to one second
    ///   ahead of the clock, well within verifiers' 60 s `iat` leeway).
    ///
    /// Other instances sharing the store honour the revocation at their next snapshot reload
    /// (the revision poll, < 1 s); until then they may still mint and accept tokens with
    /// `iat < T`, which are refused once they reload.
    ///
    /// The write is compare-and-swap, like [`update`](Self::update); `updated_at` moves too.
    pub async fn revoke_tokens(&self, name: &str) -> Result<ApplicationRecord, ManageError> {
        let app = cas::retry(&format!("application {name}"), || async move {
            let current = self.get(name).await?;
            let now = self.clock.unix_now();
            let mut app = current.clone();
            let revoked_before = now.saturating_add(1);
            app.tokens_revoked_before = Some(
                current
                    .tokens_revoked_before
                    .map_or(revoked_before, |before| before.max(revoked_before)),
            );
            app.updated_at = now;
            let landed = self.store.update_app(&current, &app).await?;
            Ok(landed.then_some(app))
        })
        .await?;
        tracing::info!(
            app = %app.name,
            revoked_before = app.tokens_revoked_before,
            "application tokens revoked"
        );
        self.reload.reload().await;
        Ok(app)
    }

    /// Deletes the application; its tokens stop verifying (their AUD is no longer served).
    pub async fn delete(&self, name: &str) -> Result<(), ManageError> {
        if !self.store.delete_app(name).await? {
            return Err(ManageError::not_found(&format!("application {name}")));
        }
        self.reload.reload().await;
        Ok(())
    }
}

/// Precedences (already sorted) must be unique and at least 1, and no policy may appear twice.
fn check_precedences(policies: &[AppPolicy]) -> Result<(), ManageError> {
    if policies.first().is_some_and(|p| p.precedence == 0) {
        return Err(ManageError::invalid("policy precedence starts at 1"));
    }
    let mut ids: Vec<&str> = policies.iter().map(|p| p.policy.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ManageError::invalid(format!(
            "policy {} is listed twice",
            pair[0]
        )));
    }
    if let Some(pair) = policies
        .windows(2)
        .find(|pair| pair[0].precedence == pair[1].precedence)
    {
        return Err(ManageError::invalid(format!(
            "two policies have precedence {}",
            pair[0].precedence
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::MemoryStore;
    use crate::error::ManageErrorKind;
    use tollgate_core::ManualClock;

    #[tokio::test]
    async fn reusable_links_are_checked_and_kept_in_precedence_order() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::at_unix(5));
        let apps = Applications::new(store.clone(), clock.clone());
        let policies = crate::Policies::new(store.clone(), store.clone(), clock);
        let everyone = || PolicyRules::including(vec![PolicyRule::Everyone {}]);
        let a = policies
            .create("a", PolicyDecision::Deny, everyone())
            .await
            .unwrap();
        let b = policies
            .create("b", PolicyDecision::Bypass, everyone())
            .await
            .unwrap();
        let links = |l: &[(u32, &str)]| {
            AppSettings::new()
                .reusable_policies(l.iter().map(|(p, id)| (*p, (*id).to_owned())).collect())
        };
        let app = apps
            .create("api", links(&[(7, &a.id), (3, &b.id)]))
            .await
            .unwrap();
        let order: Vec<(u32, &str)> = app
            .policies
            .iter()
            .map(|p| (p.precedence, p.policy.id.as_str()))
            .collect();
        assert_eq!(order, [(3, b.id.as_str()), (7, a.id.as_str())]);
        let kind = |r: Result<ApplicationRecord, ManageError>| r.unwrap_err().kind();
        for (bad, expected) in [
            (
                links(&[(1, &a.id), (2, &a.id)]),
                ManageErrorKind::InvalidArgument,
            ),
            (
                links(&[(1, &a.id), (1, &b.id)]),
                ManageErrorKind::InvalidArgument,
            ),
            (links(&[(0, &a.id)]), ManageErrorKind::InvalidArgument),
            (
                links(&[(1, "00000000-0000-4000-8000-000000000000")]),
                ManageErrorKind::NotFound,
            ),
        ] {
            assert_eq!(kind(apps.update("api", bad).await), expected);
        }
        assert_eq!(
            apps.get("api").await.unwrap(),
            app,
            "refusals change nothing"
        );
        let none = apps.update("api", links(&[])).await.unwrap();
        assert!(none.policies.is_empty());
    }

    #[tokio::test]
    async fn defaults_and_updates() {
        let apps = Applications::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::at_unix(5)),
        );
        let app = apps.create("api", AppSettings::new()).await.unwrap();
        assert!(app.aud.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(app.cookie_http_only);
        assert_eq!(app.cookie_secure, None);
        let [only] = app.policies.as_slice() else {
            panic!("one default policy: {:?}", app.policies);
        };
        assert_eq!(only.policy.decision, PolicyDecision::NonIdentity);
        assert_eq!(only.policy.name, SERVICE_AUTH_POLICY_NAME);
        assert!(!only.policy.reusable);
        assert_eq!(
            only.policy.rules.include,
            [PolicyRule::AnyValidServiceToken {}]
        );
        assert_eq!(app.created_at, 5);
        let updated = apps
            .update(
                "api",
                AppSettings::new()
                    .read_service_tokens_from_header("Authorization")
                    .policy(ServiceAuthPolicy::Tokens(vec![
                        "00000000-0000-4000-8000-00000000000a".into(),
                    ])),
            )
            .await
            .unwrap();
        assert_eq!(updated.aud, app.aud);
        assert_eq!(
            updated.read_service_tokens_from_header.as_deref(),
            Some("authorization")
        );
        let err = apps
            .update(
                "api",
                AppSettings::new().read_service_tokens_from_header("bad header"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ManageErrorKind::InvalidArgument);
        let err = apps
            .update(
                "api",
                AppSettings::new().session_duration(Duration::from_secs(731 * 3600)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ManageErrorKind::InvalidArgument);
        assert_eq!(
            apps.create("api", AppSettings::new())
                .await
                .unwrap_err()
                .kind(),
            ManageErrorKind::Conflict
        );
        apps.delete("api").await.unwrap();
        assert!(apps.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn ids_times_and_revocation() {
        let clock = ManualClock::at_unix(1_000);
        let apps = Applications::new(Arc::new(MemoryStore::new()), Arc::new(clock.clone()));
        let app = apps.create("api", AppSettings::new()).await.unwrap();
        let other = apps.create("other", AppSettings::new()).await.unwrap();
        assert_ne!(app.id, other.id);
        assert_eq!(app.id.len(), 36);
        assert_eq!((app.created_at, app.updated_at), (1_000, 1_000));
        assert_eq!(app.tokens_revoked_before, None);
        assert!(!app.revokes_token_issued_at(Some(0)));
        assert_eq!(app.issue_time(1_000), 1_000);
        assert_eq!(apps.get_by_id(&app.id).await.unwrap(), app);
        assert_eq!(
            apps.get_by_id("api").await.unwrap_err().kind(),
            ManageErrorKind::NotFound
        );

        clock.advance(Duration::from_secs(5));
        let updated = apps
            .update(
                "api",
                AppSettings::new().session_duration(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        assert_eq!(
            (updated.id.as_str(), updated.updated_at),
            (app.id.as_str(), 1_005)
        );
        assert_eq!(updated.created_at, 1_000);

        clock.advance(Duration::from_secs(5));
        let revoked = apps.revoke_tokens("api").await.unwrap();
        assert_eq!(revoked.tokens_revoked_before, Some(1_011));
        assert_eq!(revoked.updated_at, 1_010);
        assert_eq!(revoked.session_duration, 60, "nothing else changes");
        assert_eq!(apps.get("api").await.unwrap(), revoked);
        // Everything minted up to and in the revocation's second is revoked, nothing after.
        assert!(revoked.revokes_token_issued_at(Some(1_010)));
        assert!(revoked.revokes_token_issued_at(Some(0)));
        assert!(revoked.revokes_token_issued_at(None), "no iat, no proof");
        assert!(!revoked.revokes_token_issued_at(Some(1_011)));
        assert_eq!(revoked.issue_time(1_010), 1_011, "minted past the range");
        assert_eq!(revoked.issue_time(1_020), 1_020);
        assert_eq!(
            apps.get("other").await.unwrap().tokens_revoked_before,
            None,
            "only that application"
        );

        // A clock stepping back never un-revokes.
        let earlier = ManualClock::at_unix(900);
        let behind = Applications::new(apps.store.clone(), Arc::new(earlier));
        let again = behind.revoke_tokens("api").await.unwrap();
        assert_eq!(again.tokens_revoked_before, Some(1_011));
        clock.advance(Duration::from_secs(10));
        let later = apps.revoke_tokens("api").await.unwrap();
        assert_eq!(later.tokens_revoked_before, Some(1_021));
        assert_eq!(
            apps.revoke_tokens("ghost").await.unwrap_err().kind(),
            ManageErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn domains_and_origins() {
        let apps = Applications::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::at_unix(5)),
        );
        let bots = apps
            .create(
                "bots",
                AppSettings::new()
                    .domain("Example.COM/Service-Token/*")
                    .origin("HTTP://127.0.0.1:5000/"),
            )
            .await
            .unwrap();
        assert_eq!(bots.domain.as_deref(), Some("example.com/service-token"));
        assert_eq!(bots.origin.as_deref(), Some("http://127.0.0.1:5000"));
        let kind = |r: Result<ApplicationRecord, ManageError>| r.unwrap_err().kind();
        // The same domain, however spelled, is a conflict; nothing is created.
        let twin = AppSettings::new().domain("example.com./service-token");
        assert_eq!(
            kind(apps.create("twin", twin).await),
            ManageErrorKind::Conflict
        );
        assert_eq!(apps.list().await.unwrap().len(), 1);
        for bad in [
            AppSettings::new().domain("https://example.com"),
            AppSettings::new().domain("example.com/a%2fb"),
            AppSettings::new().origin("ftp://example.com"),
            AppSettings::new().origin("http://user:pw@example.com"),
            AppSettings::new().policy(ServiceAuthPolicy::Tokens(vec!["bot".into()])),
        ] {
            assert_eq!(
                kind(apps.create("bad", bad.clone()).await),
                ManageErrorKind::InvalidArgument
            );
            assert_eq!(
                kind(apps.update("bots", bad).await),
                ManageErrorKind::InvalidArgument
            );
        }
        assert_eq!(apps.get("bots").await.unwrap(), bots);
        let plain = apps
            .update("bots", AppSettings::new().no_domain().no_origin())
            .await
            .unwrap();
        assert_eq!((plain.domain, plain.origin), (None, None));
        // Freed: another application may take it now.
        let twin = AppSettings::new().domain("example.com/service-token");
        apps.create("twin", twin).await.unwrap();
    }
}
