//! `…/access/policies` (reusable policies) and `…/access/apps/{id}/policies` (an
//! application's policies: its links to reusable ones and those scoped to it).

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_core::clock::rfc3339;
use tollgate_issue::{
    AppPolicy, ApplicationRecord, ManageError, PolicyDecision, PolicyRecord, PolicyRule,
    PolicyRules,
};

use crate::AdminState;
use crate::apps::find as find_app;
use crate::auth::Caller;
use crate::envelope::{ApiError, ApiResult, code, ok, ok_page};
use crate::request::{Body, Query};

/// A policy as the API shows it; `precedence` when shown as one of an application's,
/// `app_count` for a reusable one.
#[derive(Serialize)]
pub(crate) struct PolicyView<'a> {
    id: &'a str,
    name: &'a str,
    decision: PolicyDecision,
    include: &'a [PolicyRule],
    require: &'a [PolicyRule],
    exclude: &'a [PolicyRule],
    reusable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    precedence: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_count: Option<usize>,
    created_at: String,
    updated_at: String,
}

impl<'a> PolicyView<'a> {
    pub(crate) fn new(policy: &'a PolicyRecord) -> Self {
        Self {
            id: &policy.id,
            name: &policy.name,
            decision: policy.decision,
            include: &policy.rules.include,
            require: &policy.rules.require,
            exclude: &policy.rules.exclude,
            reusable: policy.reusable,
            precedence: None,
            app_count: None,
            created_at: rfc3339(policy.created_at),
            updated_at: rfc3339(policy.updated_at),
        }
    }

    /// As one of an application's policies.
    pub(crate) fn linked(linked: &'a AppPolicy) -> Self {
        Self {
            precedence: Some(linked.precedence),
            ..Self::new(&linked.policy)
        }
    }

    fn counted(policy: &'a PolicyRecord, apps: &[ApplicationRecord]) -> Self {
        let count = apps
            .iter()
            .filter(|a| a.policies.iter().any(|p| p.policy.id == policy.id))
            .count();
        Self {
            app_count: Some(count),
            ..Self::new(policy)
        }
    }
}

/// The document of a policy create or replace. Fields Cloudflare has and tollgate does not
/// use (`session_duration`, `approval_*`, `isolation_required`, `purpose_justification_*`,
/// `mfa_config`, …) are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct PolicyFields {
    name: Option<String>,
    decision: Option<PolicyDecision>,
    include: Option<Vec<PolicyRule>>,
    #[serde(default)]
    require: Vec<PolicyRule>,
    #[serde(default)]
    exclude: Vec<PolicyRule>,
    precedence: Option<u32>,
}

impl PolicyFields {
    /// Name, decision and rules, each required as Cloudflare requires them, the rules checked
    /// (and the tokens they name looked up).
    async fn parts(
        self,
        state: &AdminState,
    ) -> Result<(String, PolicyDecision, PolicyRules, Option<u32>), ApiError> {
        let name = self
            .name
            .ok_or_else(|| ApiError::field("name", "is required"))?;
        let decision = self.decision.ok_or_else(|| {
            ApiError::field(
                "decision",
                "is required (allow, deny, non_identity or bypass)",
            )
        })?;
        let include = self
            .include
            .ok_or_else(|| ApiError::field("include", "is required"))?;
        let rules = PolicyRules {
            include,
            require: self.require,
            exclude: self.exclude,
        };
        let name = state
            .issuer
            .policies()
            .check(&name, &rules)
            .await
            .map_err(|e| from_manage(&e))?;
        Ok((name, decision, rules, self.precedence))
    }
}

/// A manager's error, with a missing token of a rule said as a bad field (400), not a
/// missing policy.
fn from_manage(error: &ManageError) -> ApiError {
    let mut answer = ApiError::from_manage(error);
    if answer.status == StatusCode::NOT_FOUND && error.to_string().starts_with("service token") {
        answer = ApiError::field(
            "include",
            format!("names no service token of this account ({error})"),
        );
    }
    answer
}

/// The reusable policy `id`, or a 404.
async fn find(state: &AdminState, id: &str) -> Result<PolicyRecord, ApiError> {
    match state.issuer.policies().get(id).await {
        Ok(policy) if policy.reusable => Ok(policy),
        Ok(_) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            format!(
                "access.api.error.not_found: policy {id} is scoped to an application; \
                 it is under apps/{{app_id}}/policies"
            ),
        )),
        Err(e) => Err(ApiError::from_manage(&e)),
    }
}

fn apps(state: &AdminState) -> Vec<ApplicationRecord> {
    state.issuer.applications().1
}

pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Body(fields): Body<PolicyFields>,
) -> ApiResult {
    let (name, decision, rules, _) = fields.parts(&state).await?;
    let policy = state
        .issuer
        .policies()
        .create(&name, decision, rules)
        .await
        .map_err(|e| from_manage(&e))?;
    state
        .audit(&caller, "policy.create", |e| e.with_detail(&policy.id))
        .await;
    ok(PolicyView::counted(&policy, &[]))
}

pub(crate) async fn list(State(state): State<AdminState>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref())?;
    let page = query.page()?;
    let all = state
        .issuer
        .policies()
        .list()
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    let (policies, paged) = page.of(all);
    let apps = apps(&state);
    let views: Vec<PolicyView<'_>> = policies
        .iter()
        .map(|p| PolicyView::counted(p, &apps))
        .collect();
    ok_page(&views, &paged)
}

pub(crate) async fn get(
    State(state): State<AdminState>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let policy = find(&state, &id).await?;
    ok(PolicyView::counted(&policy, &apps(&state)))
}

pub(crate) async fn update(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
    Body(fields): Body<PolicyFields>,
) -> ApiResult {
    find(&state, &id).await?;
    let (name, decision, rules, _) = fields.parts(&state).await?;
    let policy = state
        .issuer
        .policies()
        .update(&id, &name, decision, rules)
        .await
        .map_err(|e| from_manage(&e))?;
    state
        .audit(&caller, "policy.update", |e| e.with_detail(&policy.id))
        .await;
    ok(PolicyView::counted(&policy, &apps(&state)))
}

pub(crate) async fn delete(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    find(&state, &id).await?;
    state
        .issuer
        .policies()
        .delete(&id)
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "policy.delete", |e| e.with_detail(&id))
        .await;
    ok(json!({"id": id}))
}

/// The application's policy `policy_id`, or a 404.
fn linked<'a>(app: &'a ApplicationRecord, policy_id: &str) -> Result<&'a AppPolicy, ApiError> {
    app.policies
        .iter()
        .find(|p| p.policy.id == policy_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                format!(
                    "access.api.error.not_found: application {} has no policy {policy_id}",
                    app.id
                ),
            )
        })
}

/// Refuses to edit a reusable policy through an application's path, as Cloudflare does.
fn scoped_only(linked: &AppPolicy) -> Result<(), ApiError> {
    if linked.policy.reusable {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::NOT_SUPPORTED,
            format!(
                "access.api.error.not_supported: policy {} is reusable: change it under \
                 policies/{{policy_id}}, or unlink it with the application's policies field",
                linked.policy.id
            ),
        ));
    }
    Ok(())
}

pub(crate) async fn app_list(
    State(state): State<AdminState>,
    Path((_, app_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    // Paged like every list: the SDKs page through it until a page comes back empty.
    let page = Query::parse(raw.as_deref())?.page()?;
    let app = find_app(&state, &app_id).await?;
    let (policies, paged) = page.of(app.policies);
    let views: Vec<PolicyView<'_>> = policies.iter().map(PolicyView::linked).collect();
    ok_page(&views, &paged)
}

pub(crate) async fn app_get(
    State(state): State<AdminState>,
    Path((_, app_id, policy_id)): Path<(String, String, String)>,
) -> ApiResult {
    let app = find_app(&state, &app_id).await?;
    ok(PolicyView::linked(linked(&app, &policy_id)?))
}

pub(crate) async fn app_create(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, app_id)): Path<(String, String)>,
    Body(fields): Body<PolicyFields>,
) -> ApiResult {
    let app = find_app(&state, &app_id).await?;
    let (name, decision, rules, precedence) = fields.parts(&state).await?;
    let id = tollgate_issue::random_uuid();
    let (_, app) = state
        .issuer
        .apps()
        .edit_policies(&app.name, |policies, now| {
            let precedence = precedence.unwrap_or_else(|| {
                policies
                    .iter()
                    .map(|p| p.precedence)
                    .max()
                    .unwrap_or(0)
                    .saturating_add(1)
            });
            policies.push(AppPolicy {
                precedence,
                policy: PolicyRecord {
                    id: id.clone(),
                    name: name.clone(),
                    decision,
                    rules: rules.clone(),
                    reusable: false,
                    created_at: now,
                    updated_at: now,
                },
            });
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "app.policy.create", |e| {
            e.with_app(&app.name).with_detail(&id)
        })
        .await;
    ok(PolicyView::linked(linked(&app, &id)?))
}

pub(crate) async fn app_update(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, app_id, policy_id)): Path<(String, String, String)>,
    Body(fields): Body<PolicyFields>,
) -> ApiResult {
    let app = find_app(&state, &app_id).await?;
    scoped_only(linked(&app, &policy_id)?)?;
    let (name, decision, rules, precedence) = fields.parts(&state).await?;
    let (_, app) = state
        .issuer
        .apps()
        .edit_policies(&app.name, |policies, now| {
            let Some(linked) = policies.iter_mut().find(|p| p.policy.id == policy_id) else {
                return Err(ManageError::not_found(&format!("policy {policy_id}")));
            };
            if let Some(precedence) = precedence {
                linked.precedence = precedence;
            }
            linked.policy.name.clone_from(&name);
            linked.policy.decision = decision;
            linked.policy.rules = rules.clone();
            linked.policy.updated_at = now;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "app.policy.update", |e| {
            e.with_app(&app.name).with_detail(&policy_id)
        })
        .await;
    ok(PolicyView::linked(linked(&app, &policy_id)?))
}

pub(crate) async fn app_delete(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, app_id, policy_id)): Path<(String, String, String)>,
) -> ApiResult {
    let app = find_app(&state, &app_id).await?;
    scoped_only(linked(&app, &policy_id)?)?;
    let (_, app) = state
        .issuer
        .apps()
        .edit_policies(&app.name, |policies, _| {
            policies.retain(|p| p.policy.id != policy_id);
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "app.policy.delete", |e| {
            e.with_app(&app.name).with_detail(&policy_id)
        })
        .await;
    ok(json!({"id": policy_id}))
}

/// The reusable policies an application document's `policies` field links, as
/// `(precedence, id)`: bare ids or `{"id", "precedence"}` objects (a missing precedence is the
/// place in the list). Inline policy documents are refused: they are created under
/// `apps/{id}/policies`.
pub(crate) fn links(field: &[Value]) -> Result<Vec<(u32, String)>, ApiError> {
    let mut links = Vec::with_capacity(field.len());
    for (index, item) in field.iter().enumerate() {
        let place = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let (id, precedence) = match item {
            Value::String(id) => (id.clone(), place),
            Value::Object(link) => {
                if link.contains_key("decision") || link.contains_key("include") {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        code::NOT_SUPPORTED,
                        format!(
                            "access.api.error.not_supported: policies[{index}]: inline policies \
                             are created under apps/{{app_id}}/policies; link reusable ones here \
                             by id"
                        ),
                    ));
                }
                let id = link.get("id").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::field(
                        &format!("policies[{index}].id"),
                        "is required (a policy id)",
                    )
                })?;
                let precedence = match link.get("precedence") {
                    None | Some(Value::Null) => place,
                    Some(value) => value
                        .as_u64()
                        .and_then(|p| u32::try_from(p).ok())
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| {
                            ApiError::field(
                                &format!("policies[{index}].precedence"),
                                "must be a whole number from 1",
                            )
                        })?,
                };
                (id.to_owned(), precedence)
            }
            _ => {
                return Err(ApiError::field(
                    &format!("policies[{index}]"),
                    "must be a policy id or {\"id\": …, \"precedence\": …}",
                ));
            }
        };
        links.push((precedence, id));
    }
    Ok(links)
}
