//! tollgate's admin API: Cloudflare's v4 Access API, served by tollgate, so that Cloudflare's
//! own SDKs (Python `cloudflare`, TypeScript `cloudflare`, cloudflare-go) and Terraform's
//! provider manage a tollgate deployment once their base URL points at it.
//!
//! Everything hangs off `/client/v4/accounts/{account_id}/access/`, the account being the
//! store's ([`ApiTokens::account_id`]):
//!
//! | path | methods |
//! |---|---|
//! | `service_tokens` | `GET` (`name`, `search`, `page`, `per_page`), `POST` |
//! | `service_tokens/{id}` | `GET`, `PUT` (partial; a `client_secret_version` bump rotates), `DELETE` |
//! | `service_tokens/{id}/refresh`, `…/rotate` | `POST` |
//! | `apps` | `GET` (`name`, `aud`, `domain`, `search`, `page`, `per_page`), `POST` |
//! | `apps/{id}` | `GET`, `PUT` (the whole document: what it leaves out takes its default), `DELETE` |
//! | `apps/{id}/revoke_tokens` | `POST` |
//! | `apps/{id}/policies` | `GET`, `POST` (a policy scoped to the application) |
//! | `apps/{id}/policies/{policy_id}` | `GET`, `PUT`, `DELETE` (scoped policies only) |
//! | `policies` | `GET` (`page`, `per_page`), `POST` (a reusable policy) |
//! | `policies/{id}` | `GET`, `PUT`, `DELETE` (refused while an application links it) |
//! | `logs/access_requests` | `GET` (`limit`, `direction`, `since`, `until`, `email`, `emailOp`) |
//! | `keys` | `GET`, `PUT` |
//! | `keys/rotate` | `POST` |
//!
//! and `GET /client/v4/openapi.json` describes them. Callers authenticate with an API token
//! (`tollgate api-token create`) as `Authorization: Bearer …` or `X-Auth-Key`; read-only
//! tokens may only `GET`. Every change is written to the authentication log as an admin event
//! naming the API token. Answers are Cloudflare's envelope, `{success, errors, messages,
//! result, result_info}`, errors with a status of 400 or more, never a 204; see
//! `README.md` for what differs from Cloudflare.
//!
//! ```no_run
//! # async fn run(issuer: tollgate_issue::Issuer, store: std::sync::Arc<tollgate_issue::MemoryStore>) -> std::io::Result<()> {
//! use tollgate_admin::AdminApi;
//! use tollgate_issue::ApiTokens;
//!
//! let api_tokens = ApiTokens::new(store.clone(), issuer.clock().clone());
//! let admin = AdminApi::new(issuer, api_tokens).audit(store).router();
//! // Its own listener, never the public one.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8787").await?;
//! axum::serve(listener, admin).await
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::OnceCell;
use tollgate_core::clock::unix_millis;
use tollgate_core::events::{AuthEvent, EventKind};
use tollgate_issue::{ApiTokens, AuthLogStore, Issuer, bound_event};

mod apps;
mod auth;
mod envelope;
mod keys;
mod logs;
mod openapi;
mod policies;
mod request;
mod service_tokens;

use envelope::{ApiError, code};

pub use openapi::openapi_json;

/// The admin API, configured; [`router`](Self::router) makes its axum router.
#[derive(Clone)]
pub struct AdminApi {
    state: AdminState,
}

impl fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApi")
            .field("issuer", &self.state.issuer.issuer_url())
            .field("audit", &self.state.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl AdminApi {
    /// The admin API over `issuer`'s stores (its changes reach the issuer's snapshot at once,
    /// and other instances sharing the store within their poll interval), its callers
    /// checked against `api_tokens`.
    pub fn new(issuer: Issuer, api_tokens: ApiTokens) -> Self {
        Self {
            state: AdminState {
                issuer,
                api_tokens,
                audit: None,
                account: Arc::new(OnceCell::new()),
            },
        }
    }

    /// Writes an admin event for every change (action, the API token's name and id, the
    /// object) to `log`, after the change succeeded, and answers `logs/access_requests` from
    /// it. Without it changes are only traced and the access requests are `[]`.
    pub fn audit(mut self, log: Arc<dyn AuthLogStore>) -> Self {
        self.state.audit = Some(log);
        self
    }

    /// The router: the API under `/client/v4`, a v4 404 for every other path.
    pub fn router(self) -> Router {
        let tokens = Router::new()
            .route(
                "/service_tokens",
                get(service_tokens::list).post(service_tokens::create),
            )
            .route(
                "/service_tokens/{id}",
                get(service_tokens::get)
                    .put(service_tokens::update)
                    .delete(service_tokens::delete),
            )
            .route(
                "/service_tokens/{id}/refresh",
                post(service_tokens::refresh),
            )
            .route("/service_tokens/{id}/rotate", post(service_tokens::rotate))
            .route("/apps", get(apps::list).post(apps::create))
            .route(
                "/apps/{id}",
                get(apps::get).put(apps::update).delete(apps::delete),
            )
            .route("/apps/{id}/revoke_tokens", post(apps::revoke_tokens))
            .route(
                "/apps/{id}/policies",
                get(policies::app_list).post(policies::app_create),
            )
            .route(
                "/apps/{id}/policies/{policy_id}",
                get(policies::app_get)
                    .put(policies::app_update)
                    .delete(policies::app_delete),
            )
            .route("/policies", get(policies::list).post(policies::create))
            .route(
                "/policies/{id}",
                get(policies::get)
                    .put(policies::update)
                    .delete(policies::delete),
            )
            .route("/logs/access_requests", get(logs::access_requests))
            .route("/keys", get(keys::get).put(keys::update))
            .route("/keys/rotate", post(keys::rotate));
        let access = tokens
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                auth::authenticate,
            ));
        Router::new()
            .nest("/client/v4/accounts/{account_id}/access", access)
            .route("/client/v4/openapi.json", get(openapi::serve))
            .fallback(no_route)
            .with_state(self.state)
    }
}

async fn no_route() -> ApiError {
    ApiError::no_route()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        "Method not allowed for this endpoint",
    )
}

/// What every handler reaches.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) issuer: Issuer,
    pub(crate) api_tokens: ApiTokens,
    audit: Option<Arc<dyn AuthLogStore>>,
    /// The store's account ID, read once (it never changes).
    account: Arc<OnceCell<String>>,
}

impl AdminState {
    /// The store's account ID.
    pub(crate) async fn account_id(&self) -> Result<String, ApiError> {
        self.account
            .get_or_try_init(|| self.api_tokens.account_id())
            .await
            .cloned()
            .map_err(|e| ApiError::from_manage(&e))
    }

    /// The authentication log, when the API was given one ([`AdminApi::audit`]).
    pub(crate) fn log(&self) -> Option<&Arc<dyn AuthLogStore>> {
        self.audit.as_ref()
    }

    /// The rotation interval in whole days, as Cloudflare's `key_rotation_interval_days`.
    pub(crate) fn rotation_interval_days(&self) -> i64 {
        let secs = self.issuer.rotation_policy().rotation_period().as_secs();
        i64::try_from(secs / 86_400).unwrap_or(i64::MAX)
    }

    /// Records that `caller` did `action` (details added by `detail`). A log that cannot be
    /// written does not undo the change, which has happened: it is said in the server's log.
    pub(crate) async fn audit(
        &self,
        caller: &auth::Caller,
        action: &str,
        detail: impl FnOnce(AuthEvent) -> AuthEvent,
    ) {
        let at_ms = unix_millis(self.issuer.clock().now());
        let event =
            detail(AuthEvent::new(EventKind::Admin, at_ms).with_action(action, caller.actor()));
        tracing::info!(action, actor = %caller.actor(), "admin API change");
        if let Some(log) = &self.audit
            && let Err(error) = log.append_events(&[bound_event(event)]).await
        {
            tracing::warn!(%error, action, "admin API: the change was made but not logged");
        }
    }
}
