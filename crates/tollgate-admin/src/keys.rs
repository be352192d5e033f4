//! `…/access/keys`: the signing-key configuration, and rotation.

use axum::Extension;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::clock::rfc3339;

use crate::AdminState;
use crate::auth::Caller;
use crate::envelope::{ApiError, ApiResult, code, ok};
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

/// The rotation interval is the server's (`RotationPolicy`, the same for every instance
/// sharing the store); asking for the interval it has is a no-op, asking for another is
/// refused rather than pretended.
pub(crate) async fn update(
    State(state): State<AdminState>,
    Body(fields): Body<KeyFields>,
) -> ApiResult {
    const FIELD: &str = "key_rotation_interval_days";
    let asked = fields
        .key_rotation_interval_days
        .ok_or_else(|| ApiError::field(FIELD, "is required"))?;
    if !(21..=365).contains(&asked) {
        return Err(ApiError::field(FIELD, "must be from 21 to 365"));
    }
    let interval = state.rotation_interval_days();
    if asked != interval {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::NOT_SUPPORTED,
            format!(
                "access.api.error.not_supported: {FIELD}: this server rotates every \
                 {interval} days, set where it starts (the issuer's rotation policy); \
                 rotate now with POST …/access/keys/rotate"
            ),
        ));
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
