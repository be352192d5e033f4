//! [`Exchange`]: the exchange middleware service.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request};
use tollgate_core::names::{
    CF_ACCESS_AUTHENTICATED_USER_EMAIL, CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET,
    CF_ACCESS_JWT_ASSERTION, CF_ACCESS_TOKEN, COOKIE_NAME, strip_identity_headers,
};
use tollgate_core::{AccessIdentity, Rejection, RejectionKind};
use tower_service::Service;

use super::ResponseFuture;
use super::layer::Shared;
use crate::store::ApplicationRecord;

/// The service built by [`ExchangeLayer`](super::ExchangeLayer). See the [module docs](super).
pub struct Exchange<S> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared>,
}

impl<S> Exchange<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for Exchange<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Exchange<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("inner", &self.inner)
            .field("app", &self.shared.app_name)
            .finish()
    }
}

/// What the request presented.
enum Presented {
    Credentials {
        client_id: String,
        secret: String,
        /// Whether they came from the application's single JSON header.
        single_header: bool,
    },
    Token(String),
    Nothing,
}

/// What the inner request gets once authorized.
struct Authorized {
    token: String,
    identity: AccessIdentity,
    set_cookie: Option<HeaderValue>,
}

impl<S, B> Service<Request<B>> for Exchange<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        strip_identity_headers(request.headers_mut());
        let shared = self.shared.clone();
        let issuer = shared.issuer.shared();
        let snapshot = issuer.snapshot.load_full();
        let Some(app) = snapshot.apps.get(&shared.app_name).cloned() else {
            return reject(
                Rejection::new(RejectionKind::Misconfigured)
                    .with_detail("the protected application no longer exists"),
                &shared.app_name,
            );
        };
        let presented = match presented(request.headers(), &app) {
            Ok(presented) => presented,
            Err(rejection) => return reject(rejection, &app.name),
        };
        let now = issuer.now();
        if let Presented::Nothing = presented {
            return reject(Rejection::new(RejectionKind::MissingCredentials), &app.name);
        }
        if let Presented::Credentials {
            client_id,
            secret,
            single_header,
        } = &presented
        {
            if let Err(rejection) =
                issuer.check_credentials(&snapshot, &app, client_id, secret, now)
            {
                return reject_client(rejection, &app.name, client_id);
            }
            // The inner service gets the identity, never the credentials.
            let headers = request.headers_mut();
            headers.remove(CF_ACCESS_CLIENT_ID);
            headers.remove(CF_ACCESS_CLIENT_SECRET);
            if let (true, Some(name)) = (*single_header, &app.read_service_tokens_from_header) {
                headers.remove(name.as_str());
            }
        }
        // The ready service moves into the future; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match presented {
            // Answered above.
            Presented::Nothing => {
                reject(Rejection::new(RejectionKind::MissingCredentials), &app.name)
            }
            Presented::Credentials {
                client_id, secret, ..
            } => {
                drop(secret);
                let secure = app.cookie_secure.unwrap_or(shared.secure_by_default);
                ResponseFuture::waiting(Box::pin(async move {
                    let issuer = shared.issuer.shared();
                    let minted = match issuer.mint(&snapshot, &app, &client_id, now).await {
                        Ok(minted) => minted,
                        Err(rejection) => return Ok(rejection.into_response()),
                    };
                    let set_cookie = (app.session_duration > 0)
                        .then(|| set_cookie(&app, &minted.jwt, minted.expires_at, secure))
                        .flatten();
                    tracing::debug!(app = %app.name, client_id = %client_id, "service token exchanged");
                    let authorized = Authorized {
                        token: minted.jwt,
                        identity: minted.identity,
                        set_cookie,
                    };
                    call_inner(&mut inner, request, authorized).await
                }))
            }
            Presented::Token(token) => {
                let current = match shared.verifier_for(&app) {
                    Ok(current) => current,
                    Err(rejection) => return reject(rejection, &app.name),
                };
                // A cached token verifies without waiting: poll once, in place.
                let ready = {
                    let attempt = pin!(current.verifier.verify(&token));
                    match attempt.poll(&mut Context::from_waker(Waker::noop())) {
                        Poll::Ready(result) => Some(result),
                        Poll::Pending => None,
                    }
                };
                match ready {
                    Some(result) => match authorize_token(&shared, &app, token, result) {
                        Ok(authorized) => {
                            let request = prepare(request, authorized.token, authorized.identity);
                            ResponseFuture::called(inner.call(request))
                        }
                        Err(rejection) => reject(rejection, &app.name),
                    },
                    None => ResponseFuture::waiting(Box::pin(async move {
                        let result = current.verifier.verify(&token).await;
                        match authorize_token(&shared, &app, token, result) {
                            Ok(authorized) => call_inner(&mut inner, request, authorized).await,
                            Err(rejection) => {
                                log_rejection(&rejection, &app.name);
                                Ok(rejection.into_response())
                            }
                        }
                    })),
                }
            }
        }
    }
}

/// A verified token must be for the application's current AUD and still belong to an identity
/// the policy allows (a live service token).
fn authorize_token(
    shared: &Shared,
    app: &ApplicationRecord,
    token: String,
    verified: Result<AccessIdentity, Rejection>,
) -> Result<Authorized, Rejection> {
    let identity = verified?;
    let issuer = shared.issuer.shared();
    let snapshot = issuer.snapshot.load();
    issuer.check_identity(&snapshot, app, &identity, issuer.now())?;
    Ok(Authorized {
        token,
        identity,
        set_cookie: None,
    })
}

fn prepare<B>(mut request: Request<B>, token: String, identity: AccessIdentity) -> Request<B> {
    let headers = request.headers_mut();
    if let Ok(value) = HeaderValue::try_from(token) {
        headers.insert(CF_ACCESS_JWT_ASSERTION, value);
    }
    if let Some(email) = identity.email().and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert(CF_ACCESS_AUTHENTICATED_USER_EMAIL, email);
    }
    request.extensions_mut().insert(identity);
    request
}

async fn call_inner<S, B>(
    inner: &mut S,
    request: Request<B>,
    authorized: Authorized,
) -> Result<Response, S::Error>
where
    S: Service<Request<B>, Response = Response>,
{
    let request = prepare(request, authorized.token, authorized.identity);
    let mut response = inner.call(request).await?;
    if let Some(cookie) = authorized.set_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

fn reject<F: Future>(rejection: Rejection, app: &str) -> ResponseFuture<F> {
    log_rejection(&rejection, app);
    ResponseFuture::rejected(rejection.into_response())
}

fn reject_client<F: Future>(rejection: Rejection, app: &str, client_id: &str) -> ResponseFuture<F> {
    // A client ID is not a secret, but it is request data: log it only in its valid shape.
    let client_id = if crate::secret::is_client_id(client_id) {
        client_id
    } else {
        "(malformed)"
    };
    tracing::debug!(app, client_id, reason = %rejection.kind(), detail = rejection.detail(), "service-token credentials refused");
    ResponseFuture::rejected(rejection.into_response())
}

fn log_rejection(rejection: &Rejection, app: &str) {
    tracing::debug!(app, reason = %rejection.kind(), detail = rejection.detail(), "request refused");
}

/// Finds the credentials or token in the request. Service-token headers come first (a bot with
/// credentials is never blocked by a stale cookie), then the application's single header, then
/// `cf-access-token`, then the `CF_Authorization` cookie.
fn presented(headers: &HeaderMap, app: &ApplicationRecord) -> Result<Presented, Rejection> {
    let invalid = |detail| Rejection::new(RejectionKind::InvalidCredentials).with_detail(detail);
    let id = headers.get(CF_ACCESS_CLIENT_ID);
    let secret = headers.get(CF_ACCESS_CLIENT_SECRET);
    match (id, secret) {
        (Some(id), Some(secret)) => {
            let (Ok(client_id), Ok(secret)) = (id.to_str(), secret.to_str()) else {
                return Err(invalid("credentials are not visible ASCII"));
            };
            return Ok(Presented::Credentials {
                client_id: client_id.trim().to_owned(),
                secret: secret.trim().to_owned(),
                single_header: false,
            });
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid(
                "both CF-Access-Client-Id and CF-Access-Client-Secret are needed",
            ));
        }
        (None, None) => {}
    }
    if let Some(value) = app
        .read_service_tokens_from_header
        .as_deref()
        .and_then(|name| headers.get(name))
    {
        let text = value.as_bytes().trim_ascii();
        if text.starts_with(b"{") {
            return single_header(text).ok_or_else(|| {
                invalid("single-header credentials must be JSON with cf-access-client-id and cf-access-client-secret")
            });
        }
    }
    if let Some(token) = headers.get(CF_ACCESS_TOKEN).and_then(|v| v.to_str().ok()) {
        return Ok(Presented::Token(token.trim().to_owned()));
    }
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name() == COOKIE_NAME {
                return Ok(Presented::Token(cookie.value().to_owned()));
            }
        }
    }
    Ok(Presented::Nothing)
}

/// `{"cf-access-client-id":"…","cf-access-client-secret":"…"}`, any key case, `_` for `-`.
fn single_header(json: &[u8]) -> Option<Presented> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).ok()?;
    let mut client_id = None;
    let mut secret = None;
    for (key, value) in object {
        let key = key.to_ascii_lowercase().replace('_', "-");
        let slot = match key.as_str() {
            "cf-access-client-id" => &mut client_id,
            "cf-access-client-secret" => &mut secret,
            _ => continue,
        };
        if slot.is_some() {
            return None; // the same credential twice, in two spellings
        }
        *slot = Some(value.as_str()?.trim().to_owned());
    }
    Some(Presented::Credentials {
        client_id: client_id?,
        secret: secret?,
        single_header: true,
    })
}

/// `CF_Authorization=<jwt>; Expires=<exp>; Path=/; SameSite=None; Secure; HttpOnly`, as
/// Cloudflare sends it. `secure` is the application's setting, or else the issuer URL's scheme
/// (never anything the client sends, such as `X-Forwarded-Proto`). Without it (plain-http
/// development) `SameSite=Lax` replaces `None`, which browsers refuse without `Secure`.
fn set_cookie(
    app: &ApplicationRecord,
    jwt: &str,
    expires_at: i64,
    secure: bool,
) -> Option<HeaderValue> {
    let expires = cookie::time::OffsetDateTime::from_unix_timestamp(expires_at).ok()?;
    let cookie = Cookie::build((COOKIE_NAME, jwt))
        .expires(expires)
        .path("/")
        .same_site(if secure {
            SameSite::None
        } else {
            SameSite::Lax
        })
        .secure(secure)
        .http_only(app.cookie_http_only)
        .build();
    HeaderValue::try_from(cookie.to_string()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::ServiceAuthPolicy;

    fn app(header: Option<&str>) -> ApplicationRecord {
        ApplicationRecord {
            name: "api".into(),
            aud: "a".repeat(64),
            session_duration: 86_400,
            read_service_tokens_from_header: header.map(str::to_owned),
            cookie_http_only: true,
            cookie_secure: None,
            policy: ServiceAuthPolicy::AnyValidServiceToken,
            created_at: 0,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn finds_credentials_and_tokens_in_order() {
        let plain = app(None);
        let found = presented(
            &headers(&[
                ("cf-access-client-id", "id.access"),
                ("CF-Access-Client-Secret", " s "),
                ("cookie", "CF_Authorization=jwt"),
            ]),
            &plain,
        );
        assert!(
            matches!(found, Ok(Presented::Credentials { ref client_id, ref secret, single_header: false }) if client_id == "id.access" && secret == "s")
        );
        let lone = presented(&headers(&[("cf-access-client-id", "id.access")]), &plain);
        assert_eq!(
            lone.err().map(|r| r.kind()),
            Some(RejectionKind::InvalidCredentials)
        );
        let cookie = presented(
            &headers(&[("cookie", "a=b; CF_Authorization=jwt; c=d")]),
            &plain,
        );
        assert!(matches!(cookie, Ok(Presented::Token(ref t)) if t == "jwt"));
        let header = presented(
            &headers(&[("cf-access-token", "h"), ("cookie", "CF_Authorization=c")]),
            &plain,
        );
        assert!(matches!(header, Ok(Presented::Token(ref t)) if t == "h"));
        assert!(matches!(
            presented(&HeaderMap::new(), &plain),
            Ok(Presented::Nothing)
        ));
    }

    #[test]
    fn single_header_accepts_documented_variants() {
        let configured = app(Some("authorization"));
        for json in [
            r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"}"#,
            r#"{"CF-Access-Client-Id":"i","CF-Access-Client-Secret":"s"}"#,
            r#"{"cf_access_client_id":"i","cf_access_client_secret":"s"}"#,
        ] {
            let mut map = HeaderMap::new();
            map.insert("authorization", HeaderValue::from_str(json).unwrap());
            let found = presented(&map, &configured);
            assert!(
                matches!(found, Ok(Presented::Credentials { ref client_id, single_header: true, .. }) if client_id == "i"),
                "{json}"
            );
        }
        let bad = presented(
            &headers(&[("authorization", r#"{"cf-access-client-id":"i"}"#)]),
            &configured,
        );
        assert_eq!(
            bad.err().map(|r| r.kind()),
            Some(RejectionKind::InvalidCredentials)
        );
        let twice = presented(
            &headers(&[(
                "authorization",
                r#"{"cf-access-client-id":"i","cf_access_client_id":"j","cf-access-client-secret":"s"}"#,
            )]),
            &configured,
        );
        assert!(twice.is_err());
        // Not JSON: someone else's Authorization header, not ours to judge.
        let bearer = presented(&headers(&[("authorization", "Bearer x")]), &configured);
        assert!(matches!(bearer, Ok(Presented::Nothing)));
        // Without the setting the header is ignored.
        let ignored = presented(
            &headers(&[(
                "authorization",
                r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"}"#,
            )]),
            &app(None),
        );
        assert!(matches!(ignored, Ok(Presented::Nothing)));
    }

    #[test]
    fn cookie_attributes() {
        let secure = set_cookie(&app(None), "jwt", 1_700_000_000, true).unwrap();
        assert_eq!(
            secure.to_str().unwrap(),
            "CF_Authorization=jwt; HttpOnly; SameSite=None; Secure; Path=/; Expires=Tue, 14 Nov 2023 22:13:20 GMT"
        );
        let mut plain_app = app(None);
        plain_app.cookie_http_only = false;
        let plain = set_cookie(&plain_app, "jwt", 1_700_000_000, false).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(
            !plain.contains("Secure") && !plain.contains("HttpOnly"),
            "{plain}"
        );
        assert!(plain.contains("SameSite=Lax"), "{plain}");
    }
}
