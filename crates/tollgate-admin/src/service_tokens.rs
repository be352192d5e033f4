//! `…/access/service_tokens`: create, list, get, update, delete, refresh, rotate.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use serde::{Deserialize, Serialize};
use tollgate_core::clock::rfc3339;
use tollgate_issue::{
    ClientSecret, DEFAULT_TOKEN_DURATION, ServiceTokenRecord, TokenChange, TokenDuration,
};

use crate::AdminState;
use crate::auth::Caller;
use crate::envelope::{ApiError, ApiResult, ok, ok_page};
use crate::request::{Body, Query, nullable, parse_go_duration, parse_time};

/// A token as the API shows it; `client_secret` only when one was just made.
#[derive(Serialize)]
pub(crate) struct TokenView<'a> {
    id: &'a str,
    name: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    duration: String,
    expires_at: Option<String>,
    enabled: bool,
    client_secret_version: u64,
    previous_client_secret_expires_at: Option<String>,
    created_at: String,
    updated_at: String,
    last_seen_at: Option<String>,
}

impl<'a> TokenView<'a> {
    pub(crate) fn new(token: &'a ServiceTokenRecord, secret: Option<&'a ClientSecret>) -> Self {
        let time = |t: Option<i64>| t.map(rfc3339);
        Self {
            id: &token.id,
            name: &token.name,
            client_id: &token.client_id,
            client_secret: secret.map(ClientSecret::expose_secret),
            duration: token.duration.to_string(),
            expires_at: time(token.expires_at),
            enabled: token.enabled,
            client_secret_version: token.client_secret_version,
            previous_client_secret_expires_at: time(token.previous_secret_expires_at),
            created_at: rfc3339(token.created_at),
            updated_at: rfc3339(token.updated_at),
            last_seen_at: time(token.last_seen_at),
        }
    }
}

/// `duration` as Cloudflare spells it: a Go duration of whole seconds, or `forever`.
fn parse_token_duration(text: &str) -> Result<TokenDuration, ApiError> {
    if text.eq_ignore_ascii_case("forever") {
        return Ok(TokenDuration::Forever);
    }
    let duration = parse_go_duration(text).map_err(|why| ApiError::field("duration", why))?;
    if duration.is_zero() || duration.subsec_nanos() != 0 {
        return Err(ApiError::field(
            "duration",
            "must be a whole number of seconds, at least 1s (e.g. 8760h), or forever",
        ));
    }
    Ok(TokenDuration::Seconds(duration.as_secs()))
}

/// The fields of a create or update; unknown fields are ignored, as Cloudflare's SDKs send
/// whatever their model holds.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenFields {
    name: Option<String>,
    duration: Option<String>,
    enabled: Option<bool>,
    client_secret_version: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    previous_client_secret_expires_at: Option<Option<String>>,
}

impl TokenFields {
    fn previous_expiry(&self) -> Result<Option<Option<i64>>, ApiError> {
        const FIELD: &str = "previous_client_secret_expires_at";
        self.previous_client_secret_expires_at
            .as_ref()
            .map(|at| at.as_deref().map(|at| parse_time(FIELD, at)).transpose())
            .transpose()
    }
}

pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Body(fields): Body<TokenFields>,
) -> ApiResult {
    let name = fields
        .name
        .as_deref()
        .ok_or_else(|| ApiError::field("name", "is required"))?;
    let duration = match &fields.duration {
        Some(text) => parse_token_duration(text)?,
        None => DEFAULT_TOKEN_DURATION,
    };
    // A new token has no previous secret; the field is checked, then has nothing to do.
    fields.previous_expiry()?;
    let (token, secret) = state
        .issuer
        .tokens()
        .create_with_settings(
            name,
            duration,
            fields.enabled.unwrap_or(true),
            fields.client_secret_version.unwrap_or(1),
        )
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "token.create", |e| {
            e.with_client_id(&token.client_id)
                .with_token(&token.id, &token.name)
        })
        .await;
    ok(TokenView::new(&token, Some(&secret)))
}

pub(crate) async fn list(State(state): State<AdminState>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref())?;
    let page = query.page()?;
    let Some(search) = query.get("search") else {
        // The store reads the page only (and counts the rest).
        let (offset, limit) = page.window();
        let (total, tokens) = state
            .issuer
            .tokens()
            .list_page(query.get("name"), offset, limit)
            .await
            .map_err(|e| ApiError::from_manage(&e))?;
        let views: Vec<TokenView<'_>> = tokens.iter().map(|t| TokenView::new(t, None)).collect();
        return ok_page(&views, &page.paged(tokens.len() as u64, total));
    };
    let mut tokens = state
        .issuer
        .tokens()
        .list()
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    if let Some(name) = query.get("name") {
        tokens.retain(|t| t.name == name);
    }
    let search = search.to_lowercase();
    tokens.retain(|t| {
        t.name.to_lowercase().contains(&search)
            || t.client_id.contains(&search)
            || t.id.contains(&search)
    });
    // The paged path's order: name, then id.
    tokens.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let (tokens, paged) = page.of(tokens);
    let views: Vec<TokenView<'_>> = tokens.iter().map(|t| TokenView::new(t, None)).collect();
    ok_page(&views, &paged)
}

/// The token with API id `id`, or a 404.
async fn find(state: &AdminState, id: &str) -> Result<ServiceTokenRecord, ApiError> {
    state
        .issuer
        .tokens()
        .get_by_id(id)
        .await
        .map_err(|e| ApiError::from_manage(&e))
}

pub(crate) async fn get(
    State(state): State<AdminState>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let token = find(&state, &id).await?;
    ok(TokenView::new(&token, None))
}

pub(crate) async fn update(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
    Body(fields): Body<TokenFields>,
) -> ApiResult {
    let mut change = TokenChange::default();
    change.name = fields.name.clone();
    change.duration = fields
        .duration
        .as_deref()
        .map(parse_token_duration)
        .transpose()?;
    change.enabled = fields.enabled;
    change.client_secret_version = fields.client_secret_version;
    change.previous_secret_expires_at = fields.previous_expiry()?;
    apply(&state, &caller, &id, &change, "token.update").await
}

/// The body of `…/rotate`.
#[derive(Debug, Deserialize)]
pub(crate) struct RotateFields {
    #[serde(default, deserialize_with = "nullable")]
    previous_client_secret_expires_at: Option<Option<String>>,
}

pub(crate) async fn rotate(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
    Body(fields): Body<RotateFields>,
) -> ApiResult {
    const FIELD: &str = "previous_client_secret_expires_at";
    let mut change = TokenChange::default();
    change.rotate = true;
    // Omitted: the old secret stops now, as Cloudflare's default.
    change.previous_secret_expires_at = Some(
        fields
            .previous_client_secret_expires_at
            .flatten()
            .map(|at| parse_time(FIELD, &at))
            .transpose()?,
    );
    apply(&state, &caller, &id, &change, "token.rotate").await
}

async fn apply(
    state: &AdminState,
    caller: &Caller,
    id: &str,
    change: &TokenChange,
    action: &str,
) -> ApiResult {
    let token = find(state, id).await?;
    let (token, secret) = state
        .issuer
        .tokens()
        .change(&token.client_id, change)
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    let action = if secret.is_some() && action == "token.update" {
        "token.rotate"
    } else {
        action
    };
    state
        .audit(caller, action, |e| {
            e.with_client_id(&token.client_id)
                .with_token(&token.id, &token.name)
        })
        .await;
    ok(TokenView::new(&token, secret.as_ref()))
}

pub(crate) async fn refresh(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let token = find(&state, &id).await?;
    let token = state
        .issuer
        .tokens()
        .refresh(&token.client_id)
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "token.refresh", |e| {
            e.with_client_id(&token.client_id)
                .with_token(&token.id, &token.name)
        })
        .await;
    ok(TokenView::new(&token, None))
}

pub(crate) async fn delete(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let token = find(&state, &id).await?;
    state
        .issuer
        .tokens()
        .delete(&token.client_id, false)
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state
        .audit(&caller, "token.delete", |e| {
            e.with_client_id(&token.client_id)
                .with_token(&token.id, &token.name)
        })
        .await;
    ok(TokenView::new(&token, None))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_durations_are_go_durations_of_whole_seconds_or_forever() {
        assert_eq!(
            parse_token_duration("8760h").unwrap(),
            TokenDuration::Seconds(8760 * 3600)
        );
        assert_eq!(
            parse_token_duration("Forever").unwrap(),
            TokenDuration::Forever
        );
        assert_eq!(
            parse_token_duration("1h30m").unwrap(),
            TokenDuration::Seconds(5400)
        );
        for bad in ["0s", "1.5s", "300ms", "soon", ""] {
            let error = parse_token_duration(bad).unwrap_err();
            assert!(
                error.message.contains("duration:"),
                "{bad}: {}",
                error.message
            );
        }
    }
}
