//! `…/access/apps`: self-hosted applications — create, list, get, replace, delete,
//! `revoke_tokens`.

use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_core::clock::rfc3339;
use tollgate_issue::{AppSettings, ApplicationRecord, DEFAULT_SESSION_DURATION, format_duration};

use crate::AdminState;
use crate::auth::Caller;
use crate::envelope::{ApiError, ApiResult, code, ok, ok_page};
use crate::policies::{PolicyView, links};
use crate::request::{Body, Query, parse_go_duration};

/// An application as the API shows it: Cloudflare's self-hosted application, plus tollgate's
/// `origin` and `tokens_revoked_before`.
#[derive(Serialize)]
pub(crate) struct AppView<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    domain: Option<&'a str>,
    aud: &'a str,
    session_duration: String,
    read_service_tokens_from_header: Option<&'a str>,
    http_only_cookie_attribute: bool,
    created_at: String,
    updated_at: String,
    /// Its policies in precedence order, each with its `precedence`.
    policies: Vec<PolicyView<'a>>,
    origin: Option<&'a str>,
    tokens_revoked_before: Option<String>,
}

impl<'a> AppView<'a> {
    fn new(app: &'a ApplicationRecord) -> Self {
        Self {
            id: &app.id,
            name: &app.name,
            kind: "self_hosted",
            domain: app.domain.as_deref(),
            aud: &app.aud,
            session_duration: format_duration(Duration::from_secs(app.session_duration)),
            read_service_tokens_from_header: app.read_service_tokens_from_header.as_deref(),
            http_only_cookie_attribute: app.cookie_http_only,
            created_at: rfc3339(app.created_at),
            updated_at: rfc3339(app.updated_at),
            policies: app.policies.iter().map(PolicyView::linked).collect(),
            origin: app.origin.as_deref(),
            tokens_revoked_before: app.tokens_revoked_before.map(rfc3339),
        }
    }
}

/// The document of a create or a replace. Fields Cloudflare has and tollgate does not use
/// are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct AppFields {
    name: Option<String>,
    domain: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    session_duration: Option<String>,
    read_service_tokens_from_header: Option<String>,
    http_only_cookie_attribute: Option<bool>,
    origin: Option<String>,
    policies: Option<Vec<Value>>,
}

impl AppFields {
    /// The settings the document describes, whole: what it leaves out takes its default
    /// (Cloudflare's PUT replaces the application) — but for `policies`: a document without
    /// them creates an application with none (nobody admitted, as at Cloudflare) and keeps an
    /// existing application's.
    fn settings(&self, creating: bool) -> Result<AppSettings, ApiError> {
        let domain = self
            .domain
            .as_deref()
            .ok_or_else(|| ApiError::field("domain", "is required"))?;
        match self.kind.as_deref() {
            Some("self_hosted") => {}
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    code::NOT_SUPPORTED,
                    format!(
                        "access.api.error.not_supported: type: tollgate serves self_hosted applications, not {other:?}"
                    ),
                ));
            }
            None => return Err(ApiError::field("type", "is required (self_hosted)")),
        }
        let session = match &self.session_duration {
            Some(text) => {
                parse_go_duration(text).map_err(|why| ApiError::field("session_duration", why))?
            }
            None => DEFAULT_SESSION_DURATION,
        };
        if session.subsec_nanos() != 0 {
            return Err(ApiError::field(
                "session_duration",
                "must be a whole number of seconds",
            ));
        }
        let mut settings = AppSettings::new()
            .domain(domain)
            .session_duration(session)
            .cookie_http_only(self.http_only_cookie_attribute.unwrap_or(true));
        settings = match &self.read_service_tokens_from_header {
            Some(header) => settings.read_service_tokens_from_header(header),
            None => settings.no_single_header(),
        };
        settings = match &self.origin {
            Some(origin) => settings.origin(origin),
            None => settings.no_origin(),
        };
        match &self.policies {
            Some(field) => settings = settings.reusable_policies(links(field)?),
            None if creating => settings = settings.reusable_policies(Vec::new()),
            None => {}
        }
        Ok(settings)
    }
}

/// The application with API id `id`, or a 404.
pub(crate) async fn find(state: &AdminState, id: &str) -> Result<ApplicationRecord, ApiError> {
    state.issuer.apps().get_by_id(id).await.map_err(|e| {
        let mut error = ApiError::from_manage(&e);
        if error.status == StatusCode::NOT_FOUND {
            error.code = code::UNKNOWN_APPLICATION;
            error.message = format!("access.api.error.unknown_application: {e}");
        }
        error
    })
}

fn show(app: &ApplicationRecord) -> ApiResult {
    ok(AppView::new(app))
}

/// A manager's error; a linked policy that does not exist is a bad field, not a missing
/// application.
fn from_manage(error: &tollgate_issue::ManageError) -> ApiError {
    let mut answer = ApiError::from_manage(error);
    if answer.status == StatusCode::NOT_FOUND && error.to_string().contains("policy") {
        answer = ApiError::field("policies", format!("links no reusable policy ({error})"));
    }
    answer
}

pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Body(fields): Body<AppFields>,
) -> ApiResult {
    let settings = fields.settings(true)?;
    let name = fields
        .name
        .as_deref()
        .ok_or_else(|| ApiError::field("name", "is required"))?;
    let app = state
        .issuer
        .apps()
        .create(name, settings)
        .await
        .map_err(|e| from_manage(&e))?;
    state
        .audit(&caller, "app.create", |e| e.with_app(&app.name))
        .await;
    show(&app)
}

pub(crate) async fn list(State(state): State<AdminState>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref())?;
    let page = query.page()?;
    let mut apps = state
        .issuer
        .apps()
        .list()
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    if let Some(name) = query.get("name") {
        apps.retain(|a| a.name == name);
    }
    if let Some(aud) = query.get("aud") {
        apps.retain(|a| a.aud == aud);
    }
    if let Some(domain) = query.get("domain") {
        let domain = domain.to_ascii_lowercase();
        apps.retain(|a| a.domain.as_deref() == Some(domain.as_str()));
    }
    if let Some(search) = query.get("search") {
        let search = search.to_lowercase();
        apps.retain(|a| {
            a.name.to_lowercase().contains(&search)
                || a.domain.as_deref().is_some_and(|d| d.contains(&search))
        });
    }
    let (apps, paged) = page.of(apps);
    let views: Vec<AppView<'_>> = apps.iter().map(AppView::new).collect();
    ok_page(&views, &paged)
}

pub(crate) async fn get(
    State(state): State<AdminState>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let app = find(&state, &id).await?;
    show(&app)
}

pub(crate) async fn update(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
    Body(fields): Body<AppFields>,
) -> ApiResult {
    let settings = fields.settings(false)?;
    let app = find(&state, &id).await?;
    if let Some(name) = &fields.name
        && *name != app.name
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::NOT_SUPPORTED,
            format!(
                "access.api.error.not_supported: name: tollgate names an application for life \
                 ({:?}); create another one to rename",
                app.name
            ),
        ));
    }
    let app = state
        .issuer
        .apps()
        .update(&app.name, settings)
        .await
        .map_err(|e| from_manage(&e))?;
    state
        .audit(&caller, "app.update", |e| e.with_app(&app.name))
        .await;
    show(&app)
}

pub(crate) async fn delete(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let app = find(&state, &id).await?;
    state
        .issuer
        .apps()
        .delete(&app.name)
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "app.delete", |e| e.with_app(&app.name))
        .await;
    ok(json!({"id": app.id}))
}

pub(crate) async fn revoke_tokens(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let app = find(&state, &id).await?;
    let app = state
        .issuer
        .apps()
        .revoke_tokens(&app.name)
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "app.revoke_tokens", |e| e.with_app(&app.name))
        .await;
    ok(Value::Null)
}
