//! [`Verify`]: the service [`VerifyLayer`](super::VerifyLayer) wraps around another.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::response::Response;
use http::Request;
use tollgate_core::events::{AuthEvent, EventKind};
use tollgate_core::names::strip_identity_headers;
use tollgate_core::request::{self, FoundToken, RefusalContext, TokenLocation};
use tollgate_core::{AccessIdentity, Rejection, RejectionKind};
use tower_service::Service;

use super::ResponseFuture;
use super::layer::{Mode, Shared};
use crate::verifier::Attempt;

/// Verifies the Access token of each request before calling the inner service. Built by
/// [`VerifyLayer`](super::VerifyLayer).
#[derive(Clone, Debug)]
pub struct Verify<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Verify<S> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    crate::macros::define_inner_service_accessors!();
}

impl Shared {
    /// Logs the refusal, reports it to the layer's events and answers it through the
    /// rejection handler.
    fn reject<B>(
        &self,
        request: &Request<B>,
        rejection: Rejection,
        location: Option<TokenLocation>,
        identity: Option<&AccessIdentity>,
    ) -> Response {
        let context = RefusalContext {
            source: location.map(TokenLocation::as_str),
            identity: identity.map(AccessIdentity::name),
            ..RefusalContext::default()
        };
        self.events.emit(|| {
            let at_ms = tollgate_core::clock::unix_millis(self.verifier.config().clock.now());
            let mut event = AuthEvent::new(EventKind::Token, at_ms)
                .refused(rejection.kind())
                .with_request_id_from(request.headers());
            event.detail = rejection.detail().map(str::to_owned);
            event.location = context.source.map(str::to_owned);
            if let Some(identity) = identity {
                event = event.with_identity(identity.name());
                if let Some(client_id) = identity.client_id() {
                    event = event.with_client_id(client_id);
                }
            }
            event
        });
        request::log_rejection(&rejection, context);
        self.on_rejection.on_rejection(rejection)
    }

    /// After the lookup and the verification: the authorization predicates, then the identity
    /// forwarded (identity headers replaced, identity in the extensions). The error is the
    /// refusal's response, answered as is.
    #[allow(
        clippy::result_large_err,
        reason = "the response is handed straight back; boxing it would only add an allocation"
    )]
    fn admit<B>(
        &self,
        verified: Result<AccessIdentity, Rejection>,
        token: FoundToken,
        request: &mut Request<B>,
    ) -> Result<(), Response> {
        let location = Some(token.location());
        let identity =
            verified.map_err(|rejection| self.reject(request, rejection, location, None))?;
        if !self.authorizers.iter().all(|p| p.0.authorize(&identity)) {
            let rejection = Rejection::new(RejectionKind::Forbidden)
                .with_detail("an authorization predicate refused the identity");
            return Err(self.reject(request, rejection, location, Some(&identity)));
        }
        tracing::debug!(
            identity = identity.name(),
            kind = identity.kind().as_str(),
            "access granted"
        );
        let token = token.into_assertion(&identity);
        request::forward_identity(request, token, identity);
        request::strip_tokens(request.headers_mut(), &self.ignored);
        Ok(())
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for Verify<S>
where
    S: Service<Request<ReqBody>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let token = match request::find_token(request.headers(), &shared.locations) {
            Ok(Some(token)) => token,
            Ok(None) if shared.mode == Mode::Optional => {
                strip_identity_headers(request.headers_mut());
                request::strip_tokens(request.headers_mut(), &shared.ignored);
                return ResponseFuture::called(self.inner.call(request));
            }
            Ok(None) => {
                let rejection = Rejection::new(RejectionKind::MissingCredentials);
                return ResponseFuture::rejected(shared.reject(&request, rejection, None, None));
            }
            Err(rejection) => {
                return ResponseFuture::rejected(shared.reject(&request, rejection, None, None));
            }
        };
        match shared.verifier.try_verify(token.as_str()) {
            Attempt::Done(verified) => match shared.admit(verified, token, &mut request) {
                Ok(()) => ResponseFuture::called(self.inner.call(request)),
                Err(response) => ResponseFuture::rejected(response),
            },
            Attempt::NeedsKeyFetch => {
                // The ready service moves into the future; a clone stays behind.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = self.shared.clone();
                ResponseFuture::waiting(Box::pin(async move {
                    let verified = shared.verifier.verify_after_fetch(token.as_str()).await;
                    match shared.admit(verified, token, &mut request) {
                        Ok(()) => inner.call(request).await,
                        Err(response) => Ok(response),
                    }
                }))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;

    use axum_core::body::Body;
    use tower::ServiceExt as _;
    use tower_layer::Layer as _;

    use crate::{KeySet, StaticKeySource, Verifier, VerifyConfig, VerifyLayer};

    use super::*;
    use tollgate_core::names::CF_ACCESS_AUTHENTICATED_USER_EMAIL;

    fn layer() -> VerifyLayer {
        let config = VerifyConfig::new("https://team.example").audience("aud");
        let source = StaticKeySource::new(KeySet::from_jwks(Vec::new()));
        VerifyLayer::new(Verifier::new(config, source).unwrap())
    }

    async fn echo(request: Request<Body>) -> Result<Response, Infallible> {
        let seen = request
            .headers()
            .get(CF_ACCESS_AUTHENTICATED_USER_EMAIL)
            .map_or("none", |v| v.to_str().unwrap())
            .to_owned();
        Ok(Response::new(Body::from(seen)))
    }

    #[tokio::test]
    async fn missing_token_is_rejected_before_the_inner_service() {
        let service = layer().layer(tower::service_fn(echo));
        let response = service.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), 401);
    }

    #[tokio::test]
    async fn optional_mode_strips_forged_headers_and_calls_through() {
        let service = layer().optional().layer(tower::service_fn(echo));
        let _inner = service.get_ref();
        let request = Request::builder()
            .header("cf_access_authenticated_user_email", "admin@example.com")
            .body(Body::empty())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"none");
    }

    #[tokio::test]
    async fn no_usable_keys_answers_503_after_the_fetch() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","kid":"k"}"#),
            b64("{}"),
            b64("sig")
        );
        let service = layer().layer(tower::service_fn(echo));
        let request = Request::builder()
            .header("cf-access-token", token)
            .body(Body::empty())
            .unwrap();
        let future = service.oneshot(request);
        let response = future.await.unwrap();
        assert_eq!(response.status(), 503);
    }
}
