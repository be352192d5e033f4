//! `GET /cdn-cgi/access/certs` and `GET /cdn-cgi/access/get-identity`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use tollgate_core::names::{CERTS_PATH, GET_IDENTITY_PATH};
use tollgate_core::request::{self, RefusalContext, TokenLocation};
use tollgate_core::{AccessClaims, Rejection, RejectionKind};

use crate::Issuer;

// Defined here, on the issuer: the routes depend on the issuer, never the reverse.
impl Issuer {
    /// `GET /cdn-cgi/access/certs` (the published keys, Cloudflare's format) and
    /// `GET /cdn-cgi/access/get-identity` (the caller's identity, from its cookie or
    /// `cf-access-token`). Merge it into your router outside the [`ExchangeLayer`](crate::ExchangeLayer).
    pub fn routes(&self) -> axum::Router {
        router(self.clone())
    }
}

fn router(issuer: Issuer) -> Router {
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
    let certs = issuer.snapshot().certs_json(issuer.now());
    json(Body::from(certs.to_string()), "public, max-age=300")
}

async fn get_identity(State(issuer): State<Issuer>, request: axum::extract::Request) -> Response {
    // The socket peer, for policies with `ip` rules (what the exchange sees without trusted
    // proxies).
    let ip = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    match identity_document(&issuer, request.headers(), ip).await {
        Ok(body) => json(Body::from(body), "no-store"),
        Err(rejection) => {
            let context = RefusalContext {
                source: Some(GET_IDENTITY_PATH),
                ..RefusalContext::default()
            };
            request::log_rejection(&rejection, context);
            rejection.into_response()
        }
    }
}

async fn identity_document(
    issuer: &Issuer,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Result<String, Rejection> {
    // The same lookup as the exchange: `cf-access-token`, then the cookie, one set of rules.
    let token = request::find_token(headers, &TokenLocation::CLIENT_ORDER)?
        .ok_or(Rejection::new(RejectionKind::MissingCredentials))?;
    let token = token.as_str();
    // Only to pick the application (and so the verifier); the verifier checks everything.
    // A token whose payload cannot even be read is malformed, as the verifier would say.
    let aud_app = unverified_audiences(token)
        .ok_or(
            Rejection::new(RejectionKind::MalformedToken)
                .with_detail("token payload is unreadable"),
        )?
        .into_iter()
        .find_map(|aud| issuer.app_by_aud(&aud))
        .ok_or(Rejection::new(RejectionKind::WrongAudience))?;
    let verifier = issuer.verifier(&aud_app.aud).map_err(|_| {
        Rejection::new(RejectionKind::Misconfigured).with_detail("no verifier for the application")
    })?;
    let identity = verifier.verify(token).await?;
    issuer.check_identity(&aud_app, &identity, ip)?;
    let snapshot = issuer.snapshot();
    let now = issuer.now();
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

/// The `aud` of a token's payload, read without checking anything; `None` when the payload
/// is not a readable claims set.
fn unverified_audiences(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    if payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims = AccessClaims::from_json(&bytes).ok()?;
    Some(claims.audience().iter().map(str::to_owned).collect())
}
