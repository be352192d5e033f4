//! [`Exchange`]: the exchange middleware service.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use cookie::{Cookie, SameSite};
use http::header::SET_COOKIE;
use http::{HeaderName, HeaderValue, Request};
use tollgate_core::events::{AuthEvent, EventKind, Events};
use tollgate_core::names::COOKIE_NAME;
use tollgate_core::request::{
    self, FoundToken, Presented, RefusalContext, ServiceCredentials, TokenLocation,
};
use tollgate_core::{AccessIdentity, OnRejection, Rejection, RejectionKind};
use tollgate_verify::Attempt;
use tower_service::Service;

use super::ResponseFuture;
use super::layer::Shared;
use super::throttle::Failures;
use crate::issuer::{EXPIRED_DETAIL, Snapshot};
use crate::records::ApplicationRecord;

/// The service built by [`ExchangeLayer`](super::ExchangeLayer). See the [module docs](super).
pub struct Exchange<S> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared>,
    pub(super) on_rejection: Arc<dyn OnRejection>,
    pub(super) failures: Arc<Failures>,
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
            on_rejection: self.on_rejection.clone(),
            failures: self.failures.clone(),
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

/// How the exchange answers a refusal: logged once (tollgate-core's
/// [`log_rejection`](request::log_rejection)), reported to the issuer's [`Events`], then the
/// layer's rejection handler.
#[derive(Clone)]
struct Refuse {
    on_rejection: Arc<dyn OnRejection>,
    /// The request's side of its events, when a sink listens.
    report: Option<Arc<Report>>,
}

/// What every event of one request shares: read from the request before it moves on, and only
/// when a sink listens.
struct Report {
    events: Events,
    at_ms: i64,
    source_ip: Option<std::net::IpAddr>,
    request_id: Option<String>,
}

impl Report {
    fn event(&self, kind: EventKind) -> AuthEvent {
        let mut event = AuthEvent::new(kind, self.at_ms).with_source_ip(self.source_ip);
        event.request_id.clone_from(&self.request_id);
        event
    }
}

impl Refuse {
    fn response(&self, rejection: Rejection, context: RefusalContext<'_>) -> Response {
        self.refused(&rejection, context, None);
        request::log_rejection(&rejection, context);
        self.on_rejection.on_rejection(rejection)
    }

    /// Reports a refusal: an exchange attempt when credentials were presented, else a refused
    /// token (or request). `detail` is the operator's explanation, if it says more than the
    /// rejection's.
    fn refused(
        &self,
        rejection: &Rejection,
        context: RefusalContext<'_>,
        explained: Option<Explained>,
    ) {
        let Some(report) = &self.report else { return };
        report.events.emit(|| {
            let exchange = context.client_id.is_some()
                || context.source.is_some_and(is_credential_source)
                || explained.is_some();
            let kind = if exchange {
                EventKind::Exchange
            } else {
                EventKind::Token
            };
            let mut event = report.event(kind).refused(rejection.kind());
            event.app = context.app.map(str::to_owned);
            event.location = context.source.map(str::to_owned);
            event.identity = context.identity.map(str::to_owned);
            if let Some(id) = context.client_id.or(context.identity) {
                event = event.with_client_id(id);
            }
            match explained {
                Some(explained) => {
                    if let Some((id, name)) = explained.token {
                        event = event.with_token(id, name);
                    }
                    event.detail = Some(explained.detail);
                }
                None => event.detail = rejection.detail().map(str::to_owned),
            }
            event
        });
    }

    fn now<F: std::future::Future>(
        &self,
        rejection: Rejection,
        context: RefusalContext<'_>,
    ) -> ResponseFuture<F> {
        ResponseFuture::rejected(self.response(rejection, context))
    }

    /// A refused exchange, with what the snapshot says about the client ID.
    fn credentials<F: std::future::Future>(
        &self,
        rejection: Rejection,
        context: RefusalContext<'_>,
        snapshot: &Snapshot,
    ) -> ResponseFuture<F> {
        if self.report.is_some() {
            let explained = context
                .client_id
                .map(|client_id| explain(snapshot, client_id, &rejection));
            self.refused(&rejection, context, explained);
        }
        request::log_rejection(&rejection, context);
        ResponseFuture::rejected(self.on_rejection.on_rejection(rejection))
    }
}

/// The operator's side of a refused exchange: the token's name and the precise cause, which the
/// client is not told (a wrong secret and an unknown client ID look alike to it).
struct Explained {
    token: Option<(String, String)>,
    detail: String,
}

fn explain(snapshot: &Snapshot, client_id: &str, rejection: &Rejection) -> Explained {
    let token = snapshot.tokens.get(client_id);
    let detail = match (token, rejection.kind()) {
        (None, RejectionKind::InvalidCredentials) => "unknown client ID".to_owned(),
        (Some(_), RejectionKind::InvalidCredentials)
            if rejection.detail() == Some(EXPIRED_DETAIL) =>
        {
            EXPIRED_DETAIL.to_owned()
        }
        (Some(_), RejectionKind::InvalidCredentials) => "wrong secret".to_owned(),
        _ => rejection
            .detail()
            .unwrap_or(rejection.kind().as_str())
            .to_owned(),
    };
    Explained {
        token: token.map(|token| (token.id.clone(), token.name.clone())),
        detail,
    }
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let snapshot = self.shared.issuer.snapshot();
        let Some(app) = snapshot.apps.get(&self.shared.app_name).cloned() else {
            let rejection = Rejection::new(RejectionKind::Misconfigured)
                .with_detail("the protected application no longer exists");
            return self
                .refuse(&request)
                .now(rejection, context(&self.shared.app_name, None, None));
        };
        let single_header = single_header(&app);
        // Bypass policies come first, as at Cloudflare: a request one matches goes through
        // with no identity, whatever it presents (taken off it, never checked or forwarded).
        if app.has_bypass() && app.bypasses(self.policy_address(&app, &request)) {
            let mut request = request;
            request::strip_for_bypass(request.headers_mut(), single_header.as_ref());
            request.extensions_mut().insert(request::Bypassed);
            return ResponseFuture::called(self.inner.call(request));
        }
        let presented = request::find(
            request.headers(),
            single_header.as_ref(),
            &TokenLocation::CLIENT_ORDER,
        );
        match presented {
            Ok(Presented::Credentials(credentials)) => {
                self.exchange(request, credentials, snapshot, app)
            }
            Ok(Presented::Token(token)) => self.ride(request, token, app),
            Ok(_) => self.refuse(&request).now(
                Rejection::new(RejectionKind::MissingCredentials),
                context(&app.name, None, None),
            ),
            Err(rejection) if is_credential_failure(&rejection) => {
                // Credentials too garbled or ambiguous to name a client: counted per address.
                let now = self.shared.issuer.now();
                let rejection = match self.failures.source(&request) {
                    Some(source) => {
                        self.failures
                            .check(source, None, now)
                            .err()
                            .unwrap_or_else(|| {
                                self.failures.record(source, None, now);
                                rejection
                            })
                    }
                    None => rejection,
                };
                self.refuse(&request)
                    .now(rejection, context(&app.name, Some(CREDENTIALS), None))
            }
            Err(rejection) => self
                .refuse(&request)
                .now(rejection, context(&app.name, None, None)),
        }
    }
}

impl<S> Exchange<S> {
    /// How this request is refused, with its side of the events read now — only when a sink
    /// listens, and only on the paths that can report (a refusal, an exchange): a cookie ride
    /// that passes builds nothing.
    fn refuse<B>(&self, request: &Request<B>) -> Refuse {
        let events = self.shared.issuer.events();
        let report = events.is_enabled().then(|| {
            Arc::new(Report {
                events: events.clone(),
                at_ms: self.shared.issuer.now_ms(),
                source_ip: self.failures.address(request),
                request_id: tollgate_core::events::request_id(request.headers()),
            })
        });
        Refuse {
            on_rejection: self.on_rejection.clone(),
            report,
        }
    }

    /// The client's address for `app`'s policies, when one of them has an `ip` rule (the
    /// throttle's rule: the socket peer, or what a trusted proxy forwarded).
    fn policy_address<B>(&self, app: &ApplicationRecord, request: &Request<B>) -> Option<IpAddr> {
        if app.needs_ip() {
            self.failures.address(request)
        } else {
            None
        }
    }

    /// The ready inner service, moved out for a future; a fresh clone takes its place.
    fn take_inner(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }

    /// Credentials: checked against the snapshot now, then a token minted off the async
    /// workers, forwarded, and set as the cookie on the inner service's response.
    fn exchange<B>(
        &mut self,
        mut request: Request<B>,
        credentials: ServiceCredentials,
        snapshot: Arc<Snapshot>,
        app: Arc<ApplicationRecord>,
    ) -> ResponseFuture<S::Future>
    where
        S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        let refuse = self.refuse(&request);
        let shared = self.shared.clone();
        let now = shared.issuer.now();
        let client_id = credentials.client_id();
        let location = source_of(credentials.source());
        let source = self.failures.source(&request);
        // A throttled source is answered before any secret is hashed.
        if let Some(source) = source
            && let Err(rejection) = self.failures.check(source, Some(client_id), now)
        {
            return refuse.now(
                rejection,
                context(&app.name, Some(location), Some(client_id)),
            );
        }
        let checked = shared.issuer.check_credentials(
            &snapshot,
            &app,
            client_id,
            credentials.expose_secret(),
            now,
            self.policy_address(&app, &request),
        );
        if let Err(rejection) = checked {
            if let Some(source) = source
                && is_credential_failure(&rejection)
            {
                self.failures.record(source, Some(client_id), now);
            }
            return refuse.credentials(
                rejection,
                context(&app.name, Some(location), Some(client_id)),
                &snapshot,
            );
        }
        // The inner service gets the identity, never the credentials.
        request::remove_credentials(request.headers_mut(), &credentials);
        let client_id = client_id.to_owned();
        drop(credentials);
        let secure = app.cookie_secure.unwrap_or(shared.secure_by_default);
        let mut inner = self.take_inner();
        ResponseFuture::waiting(Box::pin(async move {
            let minted = match shared.issuer.mint(&snapshot, &app, &client_id, now).await {
                Ok(minted) => minted,
                Err(rejection) => {
                    let context = context(&app.name, None, Some(&client_id));
                    return Ok(refuse.response(rejection, context));
                }
            };
            let Ok(token) = HeaderValue::try_from(minted.jwt.as_str()) else {
                let rejection = Rejection::new(RejectionKind::Misconfigured)
                    .with_detail("a minted token is not a header value");
                return Ok(refuse.response(rejection, context(&app.name, None, None)));
            };
            let set_cookie = (app.session_duration > 0)
                .then(|| set_cookie(&app, &minted.jwt, minted.expires_at, secure))
                .flatten();
            tracing::debug!(app = %app.name, client_id = %client_id, "service token exchanged");
            if let Some(report) = &refuse.report {
                report.events.emit(|| {
                    let event = report
                        .event(EventKind::Exchange)
                        .with_app(app.name.as_str())
                        .with_client_id(&client_id)
                        .with_location(location);
                    match snapshot.tokens.get(&client_id) {
                        Some(token) => event.with_token(token.id.as_str(), token.name.as_str()),
                        None => event,
                    }
                });
            }
            request::forward_identity(&mut request, token, minted.identity);
            // A fresh exchange: the inner service sees the new token only, also as the cookie
            // (an origin reading `CF_Authorization` works on this very first request).
            let headers = request.headers_mut();
            request::strip_tokens(headers, &[TokenLocation::AccessTokenHeader]);
            request::set_token_cookie(headers, Some(&minted.jwt));
            let mut response = inner.call(request).await?;
            if let Some(cookie) = set_cookie {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            Ok(response)
        }))
    }

    /// A token: verified in-process for the application's current AUD — without waiting when
    /// it can be (a cached or known-key token calls the inner service at once) — then checked
    /// against the snapshot and forwarded.
    fn ride<B>(
        &mut self,
        mut request: Request<B>,
        token: FoundToken,
        app: Arc<ApplicationRecord>,
    ) -> ResponseFuture<S::Future>
    where
        S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        let location = token.location();
        let ip = self.policy_address(&app, &request);
        let current = match self.shared.verifier_for(&app) {
            Ok(current) => current,
            Err(rejection) => {
                return self
                    .refuse(&request)
                    .now(rejection, context(&app.name, None, None));
            }
        };
        match current.verifier.try_verify(token.as_str()) {
            Attempt::Done(verified) => match admit(&self.shared, &app, verified, location, ip) {
                Ok(identity) => {
                    let token = token.into_assertion(&identity);
                    request::forward_identity(&mut request, token, identity);
                    ResponseFuture::called(self.inner.call(request))
                }
                Err((rejection, refusal)) => {
                    self.refuse(&request).now(rejection, refusal.as_context())
                }
            },
            Attempt::NeedsKeyFetch => {
                let refuse = self.refuse(&request);
                let shared = self.shared.clone();
                let mut inner = self.take_inner();
                ResponseFuture::waiting(Box::pin(async move {
                    let verified = current.verifier.verify(token.as_str()).await;
                    match admit(&shared, &app, verified, location, ip) {
                        Ok(identity) => {
                            let token = token.into_assertion(&identity);
                            request::forward_identity(&mut request, token, identity);
                            inner.call(request).await
                        }
                        Err((rejection, refusal)) => {
                            Ok(refuse.response(rejection, refusal.as_context()))
                        }
                    }
                }))
            }
        }
    }
}

fn context<'a>(
    app: &'a str,
    source: Option<&'a str>,
    client_id: Option<&'a str>,
) -> RefusalContext<'a> {
    RefusalContext {
        app: Some(app),
        source,
        client_id,
        identity: None,
    }
}

/// Wrong, unknown, expired or ambiguous credentials: what the throttle counts (a policy's 403
/// is not a guess).
fn is_credential_failure(rejection: &Rejection) -> bool {
    matches!(
        rejection.kind(),
        RejectionKind::InvalidCredentials | RejectionKind::AmbiguousCredentials
    )
}

/// The location named when credentials were too garbled or ambiguous to name a client.
const CREDENTIALS: &str = "credentials";

/// Whether a refusal's location is where service-token credentials are presented.
fn is_credential_source(source: &str) -> bool {
    matches!(
        source,
        CREDENTIALS | "cf-access-client-id" | "single-header"
    )
}

fn source_of(source: &request::CredentialSource) -> &'static str {
    match source {
        request::CredentialSource::HeaderPair => "cf-access-client-id",
        _ => "single-header",
    }
}

/// The application's single credential header, if it names a valid one.
fn single_header(app: &ApplicationRecord) -> Option<HeaderName> {
    app.read_service_tokens_from_header
        .as_deref()
        .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok())
}

/// Where a token was refused, owned: in the slow path the refusal is logged after the request
/// has moved into the future.
struct TokenRefusal {
    app: String,
    location: TokenLocation,
    identity: Option<String>,
}

impl TokenRefusal {
    fn as_context(&self) -> RefusalContext<'_> {
        RefusalContext {
            app: Some(&self.app),
            source: Some(self.location.as_str()),
            identity: self.identity.as_deref(),
            ..RefusalContext::default()
        }
    }
}

/// A verified token must be for the application's current AUD and still belong to an identity
/// the policy allows (a live service token).
fn admit(
    shared: &Shared,
    app: &ApplicationRecord,
    verified: Result<AccessIdentity, Rejection>,
    location: TokenLocation,
    ip: Option<std::net::IpAddr>,
) -> Result<AccessIdentity, (Rejection, TokenRefusal)> {
    let refusal = |identity: Option<&AccessIdentity>| TokenRefusal {
        app: app.name.clone(),
        location,
        identity: identity.map(|id| id.name().to_owned()),
    };
    let identity = verified.map_err(|rejection| (rejection, refusal(None)))?;
    match shared.issuer.check_identity(app, &identity, ip) {
        Ok(()) => Ok(identity),
        Err(rejection) => Err((rejection, refusal(Some(&identity)))),
    }
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

    fn app(header: Option<&str>) -> ApplicationRecord {
        ApplicationRecord {
            id: "00000000-0000-4000-8000-000000000001".into(),
            name: "api".into(),
            aud: "a".repeat(64),
            session_duration: 86_400,
            read_service_tokens_from_header: header.map(str::to_owned),
            cookie_http_only: true,
            cookie_secure: None,
            policies: vec![],
            created_at: 0,
            updated_at: 0,
            tokens_revoked_before: None,
            domain: None,
            origin: None,
        }
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
