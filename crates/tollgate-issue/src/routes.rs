//! `GET /cdn-cgi/access/certs` and `GET /cdn-cgi/access/get-identity`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::Cookie;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE};
use http::{HeaderMap, HeaderValue};
use tollgate_core::names::{CERTS_PATH, CF_ACCESS_TOKEN, COOKIE_NAME, GET_IDENTITY_PATH};
use tollgate_core::{AccessClaims, Rejection, RejectionKind};

use crate::Issuer;

pub(crate) fn router(issuer: Issuer) -> Router {
    Router::new()
        .route(CERTS_PATH, get(certs))
        .route(GET_IDENTITY_PATH, get(get_identity))
        .with_state(issuer)
}

fn json(body: Body, cache: &'static str) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn certs(State(issuer): State<Issuer>) -> Response {
    // Short enough that a rotation reaches HTTP verifiers quickly; the next key is published a
    // day before it signs anyway.
    let now = issuer.shared().now();
    let certs = issuer.shared().snapshot.load().certs_json(now);
    json(Body::from(certs.to_string()), "public, max-age=300")
}

async fn get_identity(State(issuer): State<Issuer>, headers: HeaderMap) -> Response {
    match identity_document(&issuer, &headers).await {
        Ok(body) => json(Body::from(body), "no-store"),
        Err(rejection) => rejection.into_response(),
    }
}

async fn identity_document(issuer: &Issuer, headers: &HeaderMap) -> Result<String, Rejection> {
    let token =
        presented_token(headers).ok_or(Rejection::new(RejectionKind::MissingCredentials))?;
    // Only to pick the application (and so the verifier); the verifier checks everything.
    let aud_app = unverified_audiences(&token)
        .into_iter()
        .find_map(|aud| issuer.shared().app_by_aud(&aud))
        .ok_or(Rejection::new(RejectionKind::WrongAudience))?;
    let verifier = issuer.verifier(&aud_app.aud).map_err(|_| {
        Rejection::new(RejectionKind::Misconfigured).with_detail("no verifier for the application")
    })?;
    let identity = verifier.verify(&token).await?;
    let inner = issuer.shared();
    let snapshot = inner.snapshot.load();
    let now = inner.now();
    inner.check_identity(&snapshot, &aud_app, &identity, now)?;
    let claims = identity.claims();
    let body = match identity.client_id() {
        Some(client_id) => {
            let token = snapshot.live_token(client_id, now);
            serde_json::json!({
                "id": token.map(|t| t.id.as_str()),
                "name": token.map(|t| t.name.as_str()),
                "email": "",
                "common_name": client_id,
                "service_token_id": token.map(|t| t.id.as_str()),
                "service_token_status": token.is_some(),
                "is_warp": false,
                "is_gateway": false,
                "aud": claims.audience().iter().collect::<Vec<_>>(),
                "iss": claims.issuer(),
                "iat": claims.issued_at(),
                "exp": claims.expires_at(),
            })
        }
        None => serde_json::to_value(&identity).unwrap_or_default(),
    };
    Ok(body.to_string())
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers.get(CF_ACCESS_TOKEN).and_then(|v| v.to_str().ok()) {
        return Some(token.trim().to_owned());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|text| Cookie::split_parse(text).flatten())
        .find(|c| c.name() == COOKIE_NAME)
        .map(|c| c.value().to_owned())
}

fn unverified_audiences(token: &str) -> Vec<String> {
    let Some(payload) = token.split('.').nth(1) else {
        return Vec::new();
    };
    if payload.len() > 16 * 1024 {
        return Vec::new();
    }
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| AccessClaims::from_json(&bytes).ok())
        .map(|claims| claims.audience().iter().map(str::to_owned).collect())
        .unwrap_or_default()
}
