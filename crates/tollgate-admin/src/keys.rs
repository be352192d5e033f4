//! `…/access/keys`: the signing-key configuration, and rotation.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::clock::rfc3339;

use crate::AdminState;
use crate::auth::Caller;
use crate::envelope::{ApiError, ApiResult, ok};
use crate::request::Body;

const DAY: i64 = 86_400;
/// How far ahead a key's activation still counts as "now" (an emergency rotation's lead).
const ROTATION_SLACK_SECS: i64 = 60;

/// Cloudflare's key object (`key_rotation_interval_days`, `days_until_next_rotation`,
/// `last_key_rotation_at`), plus tollgate's published keys (`keys`: kid and times, never key
/// material), which the SDKs keep as an extra field.
fn keys_json(state: &AdminState) -> Value {
    let status = state.issuer.key_ring_status();
    let interval = state.rotation_interval_days();
    let until_next = status
        .next_rotation_at
        .map(|at| (at.saturating_sub(status.now)).max(0).div_euclid(DAY));
    let time = |t: Option<i64>| t.map(rfc3339);
    let ring = state.issuer.signing_keys();
    // The last rotation: the newest key that signs now or is about to (an emergency rotation's
    // key signs a second after it is made); keys published ahead of their turn do not count.
    let last_rotation = ring
        .iter()
        .map(|key| key.activates_at)
        .filter(|at| *at <= status.now.saturating_add(ROTATION_SLACK_SECS))
        .max();
    let keys: Vec<Value> = ring
        .iter()
        .map(|key| {
            json!({
                "kid": key.kid,
                "created_at": rfc3339(key.created_at),
                "activates_at": rfc3339(key.activates_at),
                "retires_at": time(key.retires_at),
                "expires_at": time(key.expires_at),
            })
        })
        .collect();
    json!({
        "key_rotation_interval_days": interval,
        "days_until_next_rotation": until_next,
        "last_key_rotation_at": time(last_rotation),
        "keys": keys,
    })
}

pub(crate) async fn get(State(state): State<AdminState>) -> ApiResult {
    ok(keys_json(&state))
}

/// The body of `PUT …/keys`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyFields {
    key_rotation_interval_days: Option<i64>,
}

/// Sets the rotation interval of every instance sharing the store (21 to 365 days, as
/// Cloudflare's schema bounds it). It governs the next rotation; a key already scheduled keeps
/// its time.
pub(crate) async fn update(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Body(fields): Body<KeyFields>,
) -> ApiResult {
    const FIELD: &str = "key_rotation_interval_days";
    let asked = fields
        .key_rotation_interval_days
        .ok_or_else(|| ApiError::field(FIELD, "is required"))?;
    let days = u64::try_from(asked)
        .ok()
        .filter(|days| (21..=365).contains(days))
        .ok_or_else(|| ApiError::field(FIELD, "must be a whole number of days from 21 to 365"))?;
    if i64::try_from(days).ok() != Some(state.rotation_interval_days()) {
        state
            .issuer
            .set_rotation_period(Some(Duration::from_secs(days * 86_400)))
            .await
            .map_err(|e| ApiError::from_manage(&e))?;
        state
            .audit(&caller, "keys.update", |e| {
                e.with_detail(format!("{FIELD}={days}"))
            })
            .await;
    }
    ok(keys_json(&state))
}

pub(crate) async fn rotate(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    state
        .issuer
        .rotate_keys_now()
        .await
        .map_err(|e| ApiError::from_manage(&e))?;
    state.audit(&caller, "keys.rotate", |e| e).await;
    ok(keys_json(&state))
}
