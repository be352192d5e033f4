//! `…/access/logs/access_requests`: the authentication log, as Cloudflare's access requests.

use axum::extract::{RawQuery, State};
use http::StatusCode;
use serde::Serialize;
use tollgate_core::clock::{parse_rfc3339_ms, rfc3339_ms};
use tollgate_core::events::EventKind;
use tollgate_issue::{LogQuery, LoggedEvent, Order};

use crate::AdminState;
use crate::envelope::{ApiError, ApiResult, code, ok};
use crate::request::Query;

/// How many requests a call answers by default, and at most.
const DEFAULT_LIMIT: u32 = 25;
const MAX_LIMIT: u32 = 1000;

/// One authentication attempt, with Cloudflare's fields (`action`, `allowed`, `app_domain`,
/// `app_uid`, `connection`, `created_at`, `ip_address`, `ray_id`, `user_email`) and tollgate's
/// (`app_name`, `service_token_id`, `client_id`, `reason`).
#[derive(Serialize)]
struct AccessRequest {
    /// `login`: credentials exchanged (or refused); `token`: an application token refused.
    action: &'static str,
    allowed: bool,
    app_domain: Option<String>,
    app_uid: Option<String>,
    app_name: Option<String>,
    /// `nonidentity` for service tokens, as Cloudflare names them.
    connection: &'static str,
    created_at: String,
    ip_address: Option<String>,
    /// The request id the client or a proxy sent (`cf-ray`, `x-request-id`), if any.
    ray_id: Option<String>,
    user_email: String,
    service_token_id: Option<String>,
    client_id: Option<String>,
    /// Why it was refused (`invalid_credentials`, `forbidden`, …).
    reason: Option<&'static str>,
}

impl AccessRequest {
    fn new(logged: LoggedEvent, state: &AdminState) -> Self {
        let event = logged.event;
        let app = event.app.as_deref().and_then(|name| state.issuer.app(name));
        let user_email = match (&event.client_id, &event.identity) {
            (None, Some(identity)) if identity.contains('@') => identity.clone(),
            _ => String::new(),
        };
        Self {
            action: match event.kind {
                EventKind::Exchange => "login",
                _ => "token",
            },
            allowed: event.allowed,
            app_domain: app.as_ref().and_then(|a| a.domain.clone()),
            app_uid: app.as_ref().map(|a| a.id.clone()),
            app_name: event.app,
            connection: if event.client_id.is_some() {
                "nonidentity"
            } else {
                ""
            },
            created_at: rfc3339_ms(event.at_ms),
            ip_address: event.source_ip.map(|ip| ip.to_string()),
            ray_id: event.request_id,
            user_email,
            service_token_id: event.token_id,
            client_id: event.client_id,
            reason: event.reason.map(|r| r.as_str()),
        }
    }
}

/// A time parameter, in ms since the epoch.
fn time(query: &Query, name: &str) -> Result<Option<i64>, ApiError> {
    query
        .get(name)
        .map(|text| {
            parse_rfc3339_ms(text).ok_or_else(|| {
                parameter(
                    name,
                    "expected an RFC 3339 time such as 2026-12-01T22:18:51Z",
                )
            })
        })
        .transpose()
}

fn parameter(name: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        code::INVALID_PARAMETER,
        format!("access.api.error.invalid_url_parameter_value: {name}: {why}"),
    )
}

/// `GET logs/access_requests`: `limit` (default 25, at most 1000), `direction` (`desc`, the
/// default, or `asc`), `since`/`until` (RFC 3339), `email` with `email_exact` or `emailOp`
/// (`eq`, `neq`, `contains`). Answers an array, not paged (as Cloudflare's). Admin events are
/// not access requests: `tollgate logs --kind admin` has them.
pub(crate) async fn access_requests(
    State(state): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let query = Query::parse(raw.as_deref())?;
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| parameter("limit", "must be a whole number from 1 to 1000"))?,
    };
    let order = match query.get("direction") {
        None | Some("desc") => Order::NewestFirst,
        Some("asc") => Order::OldestFirst,
        Some(_) => return Err(parameter("direction", "must be desc or asc")),
    };
    let since = time(&query, "since")?;
    let until = time(&query, "until")?;
    let exact = match query.get("email_exact") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(parameter("email_exact", "must be true or false")),
    };
    let email_op = match query.get("emailOp") {
        None if exact => "eq",
        None => "contains",
        Some(op @ ("eq" | "neq" | "contains")) => op,
        Some(_) => return Err(parameter("emailOp", "must be eq, neq or contains")),
    };
    let email = query.get("email").map(str::to_lowercase);
    let Some(log) = state.log() else {
        return ok(Vec::<AccessRequest>::new());
    };
    // Exchanges and refused tokens, each kind read with the window and the order, merged; an
    // e-mail filter reads up to the most a call may answer, as few events carry one.
    let read = if email.is_some() { MAX_LIMIT } else { limit };
    let mut events = Vec::new();
    for kind in [EventKind::Exchange, EventKind::Token] {
        let mut query = LogQuery::new().kind(kind).limit(read).order(order);
        if let Some(ms) = since {
            query = query.since_ms(ms);
        }
        if let Some(ms) = until {
            query = query.until_ms(ms);
        }
        events.extend(
            log.select_events(&query)
                .await
                .map_err(|e| ApiError::from_manage(&e.into()))?,
        );
    }
    events.sort_by_key(|e| (e.event.at_ms, e.id));
    if order == Order::NewestFirst {
        events.reverse();
    }
    let requests: Vec<AccessRequest> = events
        .into_iter()
        .map(|e| AccessRequest::new(e, &state))
        .filter(|r| match &email {
            None => true,
            Some(wanted) => {
                let have = r.user_email.to_lowercase();
                match email_op {
                    "eq" => have == *wanted,
                    "neq" => have != *wanted,
                    _ => have.contains(wanted.as_str()),
                }
            }
        })
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    ok(requests)
}
