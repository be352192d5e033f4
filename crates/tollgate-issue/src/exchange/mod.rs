//! The service-token exchange, as Cloudflare's edge does it, in front of your service.
//!
//! For each request, [`ExchangeLayer`] (built by [`Issuer::exchange_layer`](crate::Issuer::exchange_layer))
//! finds the credentials or token by [`tollgate_core::request`]'s rules (two different
//! credentials in one request are refused, never one picked), then:
//!
//! 1. removes any client-supplied `Cf-Access-Jwt-Assertion` / `Cf-Access-Authenticated-User-Email`
//!    (in every `-`/`_` spelling);
//! 2. with `CF-Access-Client-Id` + `CF-Access-Client-Secret` (or, if the application enables it,
//!    both as JSON in one header): checks them against the issuer's snapshot (a lookup and a
//!    constant-time hash comparison), applies the application's policy, mints an application
//!    token with Cloudflare's exact claims, and answers with
//!    `Set-Cookie: CF_Authorization=…; Expires=…; Path=/; SameSite=None; Secure; HttpOnly`
//!    (no cookie when the session duration is zero). `Secure` follows the application's
//!    `cookie_secure` setting, or else the issuer URL's scheme (https: `Secure` and
//!    `SameSite=None`; http: neither, `SameSite=Lax`), never a request header;
//! 3. with the `CF_Authorization` cookie or a `cf-access-token` header: verifies the token
//!    in-process (tollgate-verify's [`Verifier`](tollgate_verify::Verifier) over the issuer's
//!    [`KeySource`](tollgate_verify::KeySource), no HTTP) for the application's *current* AUD
//!    (an application deleted and recreated under the same name refuses the old one's
//!    tokens), then checks that its service token still exists, is unexpired and is allowed
//!    (an application restricted to listed service tokens refuses user identities: 403);
//! 4. counts failed exchanges per source: past a [`Throttle`]'s limits (30 a minute for one
//!    address and client ID, 300 for one address, by default) the source gets 429 with
//!    `Retry-After` before any secret is checked (the address comes from axum's `ConnectInfo`;
//!    see [`Throttle`]);
//! 5. removes the credentials (`CF-Access-Client-Id`, `CF-Access-Client-Secret`, and the
//!    application's single header when it carried them), so the inner service never sees a
//!    secret — after an exchange the `CF_Authorization` cookie it sees is the new token, as
//!    an origin behind Cloudflare sees on its first request — and passes the request on with
//!    `Cf-Access-Jwt-Assertion: <token>` and the
//!    [`AccessIdentity`](tollgate_core::AccessIdentity) in its extensions — or answers 401
//!    (missing, wrong, expired, revoked) / 403 (policy) with a JSON reason that never echoes a
//!    secret or a token.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use axum::{Router, body::Body, routing::get};
//! use http::Request;
//! use tollgate_core::AccessIdentity;
//! use tollgate_issue::{AppSettings, Issuer, MemoryStore};
//! use tower::ServiceExt;
//!
//! let issuer = Issuer::builder("team.example.com").store(Arc::new(MemoryStore::new())).build().await?;
//! issuer.apps().create("api", AppSettings::new()).await?;
//! let (token, secret) = issuer.tokens().create("bot", Default::default()).await?;
//!
//! let app = Router::new()
//!     .route("/", get(|who: AccessIdentity| async move { who.name().to_owned() }))
//!     .layer(issuer.exchange_layer("api")?);
//!
//! let anonymous = app.clone().oneshot(Request::new(Body::empty())).await?;
//! assert_eq!(anonymous.status(), 401);
//!
//! let bot = Request::builder()
//!     .header("CF-Access-Client-Id", &token.client_id)
//!     .header("CF-Access-Client-Secret", secret.expose_secret())
//!     .body(Body::empty())?;
//! let response = app.oneshot(bot).await?;
//! assert_eq!(response.status(), 200);
//! assert!(response.headers()["set-cookie"].to_str()?.starts_with("CF_Authorization="));
//! # Ok(()) }
//! ```

mod layer;
mod service;
mod throttle;

pub use layer::ExchangeLayer;
pub use service::Exchange;
pub use throttle::Throttle;
/// The response future of [`Exchange`]: shared with tollgate-verify's `Verify`.
pub use tollgate_verify::layer::ResponseFuture;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use axum::body::Body;
    use axum::response::Response;
    use http::Request;
    use http_body_util::BodyExt;
    use tollgate_core::AccessIdentity;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use crate::{
        AppSettings, ClientSecret, Issuer, MemoryStore, ServiceAuthPolicy, ServiceTokenRecord,
    };

    /// An echo service: answers the identity it was handed and the assertion header.
    async fn echo(request: Request<Body>) -> Result<Response, std::convert::Infallible> {
        let who = request
            .extensions()
            .get::<AccessIdentity>()
            .map(|id| id.name().to_owned())
            .unwrap_or_default();
        let assertion = request.headers().contains_key("cf-access-jwt-assertion");
        Ok(Response::new(Body::from(format!("{who} {assertion}"))))
    }

    async fn setup() -> (Issuer, ServiceTokenRecord, ClientSecret) {
        let issuer = Issuer::builder("team.example.com")
            .store(Arc::new(MemoryStore::new()))
            .build()
            .await
            .unwrap();
        issuer
            .apps()
            .create("api", AppSettings::new())
            .await
            .unwrap();
        let (token, secret) = issuer
            .tokens()
            .create("bot", Default::default())
            .await
            .unwrap();
        (issuer, token, secret)
    }

    async fn text(response: Response) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn exchange_then_cookie_then_policy_change() {
        let (issuer, token, secret) = setup().await;
        let service = ServiceBuilder::new()
            .layer(issuer.exchange_layer("api").unwrap())
            .service(service_fn(echo));
        let exchange = Request::builder()
            .header("cf-access-client-id", &token.client_id)
            .header("cf-access-client-secret", secret.expose_secret())
            .body(Body::empty())
            .unwrap();
        let response = service.clone().oneshot(exchange).await.unwrap();
        assert_eq!(response.status(), 200);
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        assert_eq!(text(response).await, format!("{} true", token.client_id));

        let ride = || {
            Request::builder()
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap()
        };
        let response = service.clone().oneshot(ride()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("set-cookie"));

        // The policy is read per request: a valid cookie of a token no longer allowed is a 403.
        let (other, _) = issuer
            .tokens()
            .create("other", crate::TokenDuration::Forever)
            .await
            .unwrap();
        issuer
            .apps()
            .update(
                "api",
                AppSettings::new().policy(ServiceAuthPolicy::Tokens(vec![other.client_id])),
            )
            .await
            .unwrap();
        let response = service.clone().oneshot(ride()).await.unwrap();
        assert_eq!(response.status(), 403);

        // A deleted application is a server misconfiguration, never a pass.
        issuer.apps().delete("api").await.unwrap();
        let response = service.oneshot(ride()).await.unwrap();
        assert_eq!(response.status(), 500);
    }

    /// Exchanges the credentials and returns the `CF_Authorization=…` cookie pair.
    async fn exchange<S>(service: S, token: &ServiceTokenRecord, secret: &ClientSecret) -> String
    where
        S: tower::Service<Request<Body>, Response = Response, Error = std::convert::Infallible>,
    {
        let request = Request::builder()
            .header("cf-access-client-id", &token.client_id)
            .header("cf-access-client-secret", secret.expose_secret())
            .body(Body::empty())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    fn with_cookie(cookie: &str) -> Request<Body> {
        Request::builder()
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap()
    }

    /// `revoke_tokens` refuses every application token minted before the call — as a cookie,
    /// in `cf-access-token`, in `Cf-Access-Jwt-Assertion` behind the in-process verifier —
    /// even one minted in the call's own second, while a fresh exchange in that same second
    /// works, with credentials alone or sent along with the revoked cookie.
    #[tokio::test]
    async fn revoked_application_tokens_are_refused_on_every_path_and_fresh_ones_work() {
        use tollgate_core::{Clock as _, ManualClock, RejectionKind};
        let clock = ManualClock::at_unix(1_700_000_000);
        let issuer = Issuer::builder("team.example.com")
            .store(Arc::new(MemoryStore::new()))
            .clock(Arc::new(clock.clone()))
            .build()
            .await
            .unwrap();
        let app = issuer
            .apps()
            .create("api", AppSettings::new())
            .await
            .unwrap();
        let (token, secret) = issuer
            .tokens()
            .create("bot", Default::default())
            .await
            .unwrap();
        let service = ServiceBuilder::new()
            .layer(issuer.exchange_layer("api").unwrap())
            .service(service_fn(echo));
        let behind = ServiceBuilder::new()
            .layer(tollgate_verify::VerifyLayer::new(
                issuer.verifier(&app.aud).unwrap(),
            ))
            .service(service_fn(echo));
        let old = exchange(service.clone(), &token, &secret).await;
        let old_jwt = old.trim_start_matches("CF_Authorization=").to_owned();
        let in_header = |name: &str, jwt: &str| {
            Request::builder()
                .header(name, jwt)
                .body(Body::empty())
                .unwrap()
        };
        let assertion = || in_header("cf-access-jwt-assertion", &old_jwt);
        assert_eq!(
            service
                .clone()
                .oneshot(with_cookie(&old))
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            behind.clone().oneshot(assertion()).await.unwrap().status(),
            200
        );

        // Revoked in the same second the old token was minted.
        let revoked = issuer.apps().revoke_tokens("api").await.unwrap();
        let now = clock.unix_now();
        assert_eq!(revoked.tokens_revoked_before, Some(now + 1));
        assert_eq!(revoked.updated_at, now);
        for request in [with_cookie(&old), in_header("cf-access-token", &old_jwt)] {
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 401);
            assert!(text(response).await.contains("\"revoked\""));
        }
        let response = behind.clone().oneshot(assertion()).await.unwrap();
        assert_eq!(
            response.status(),
            401,
            "the in-process verifier refuses it too"
        );
        let refused = issuer.verifier(&app.aud).unwrap().verify(&old_jwt).await;
        assert_eq!(refused.unwrap_err().kind(), RejectionKind::Revoked);

        // A fresh exchange, still in the revocation's second, mints past the revoked range.
        let fresh = exchange(service.clone(), &token, &secret).await;
        let fresh_jwt = fresh.trim_start_matches("CF_Authorization=").to_owned();
        let identity = issuer.verifier(&app.aud).unwrap().verify(&fresh_jwt).await;
        assert_eq!(identity.unwrap().claims().issued_at(), Some(now + 1));
        assert_eq!(
            service
                .clone()
                .oneshot(with_cookie(&fresh))
                .await
                .unwrap()
                .status(),
            200
        );
        let response = behind
            .clone()
            .oneshot(in_header("cf-access-jwt-assertion", &fresh_jwt))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);

        // Credentials sent along with the revoked cookie are a fresh exchange.
        let both = Request::builder()
            .header("cookie", &old)
            .header("cf-access-client-id", &token.client_id)
            .header("cf-access-client-secret", secret.expose_secret())
            .body(Body::empty())
            .unwrap();
        let response = service.clone().oneshot(both).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("set-cookie"));

        // Later exchanges mint at the clock again; a second revocation never moves back.
        clock.advance(std::time::Duration::from_secs(10));
        let later = exchange(service.clone(), &token, &secret).await;
        let later_jwt = later.trim_start_matches("CF_Authorization=");
        let identity = issuer.verifier(&app.aud).unwrap().verify(later_jwt).await;
        assert_eq!(identity.unwrap().claims().issued_at(), Some(now + 10));
        assert_eq!(issuer.apps().get("api").await.unwrap().updated_at, now);
    }

    #[tokio::test]
    async fn a_disabled_token_is_refused_and_its_cookie_stops_riding() {
        let (issuer, token, secret) = setup().await;
        let service = ServiceBuilder::new()
            .layer(issuer.exchange_layer("api").unwrap())
            .service(service_fn(echo));
        let cookie = exchange(service.clone(), &token, &secret).await;
        issuer
            .tokens()
            .set_enabled(&token.client_id, false)
            .await
            .unwrap();
        let credentials = |secret: &str| {
            Request::builder()
                .header("cf-access-client-id", &token.client_id)
                .header("cf-access-client-secret", secret)
                .body(Body::empty())
                .unwrap()
        };
        let response = service
            .clone()
            .oneshot(credentials(secret.expose_secret()))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert!(text(response).await.contains("\"service_token_disabled\""));
        // Only a caller with the secret learns the token is disabled.
        let response = service
            .clone()
            .oneshot(credentials("tgs_wrong"))
            .await
            .unwrap();
        assert!(text(response).await.contains("\"invalid_credentials\""));
        let response = service.clone().oneshot(with_cookie(&cookie)).await.unwrap();
        assert_eq!(
            response.status(),
            401,
            "the cookie of a disabled token is refused"
        );

        issuer
            .tokens()
            .set_enabled(&token.client_id, true)
            .await
            .unwrap();
        let response = service.clone().oneshot(with_cookie(&cookie)).await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "enabled again: the cookie rides again"
        );
        exchange(service, &token, &secret).await;
    }

    #[tokio::test]
    async fn a_recreated_application_follows_its_new_aud() {
        let (issuer, token, secret) = setup().await;
        let service = ServiceBuilder::new()
            .layer(issuer.exchange_layer("api").unwrap())
            .service(service_fn(echo));
        let old = exchange(service.clone(), &token, &secret).await;
        let response = service.clone().oneshot(with_cookie(&old)).await.unwrap();
        assert_eq!(response.status(), 200);

        // Deleted and recreated under the same name: a new AUD.
        let old_aud = issuer.app("api").unwrap().aud;
        issuer.apps().delete("api").await.unwrap();
        issuer
            .apps()
            .create("api", AppSettings::new())
            .await
            .unwrap();
        assert_ne!(issuer.app("api").unwrap().aud, old_aud);

        let response = service.clone().oneshot(with_cookie(&old)).await.unwrap();
        assert_eq!(response.status(), 401, "the old application's cookie");
        assert!(
            text(response)
                .await
                .contains(r#""reason":"wrong_audience""#)
        );
        let new = exchange(service.clone(), &token, &secret).await;
        let response = service.oneshot(with_cookie(&new)).await.unwrap();
        assert_eq!(response.status(), 200, "the new application's cookie");
        assert_eq!(text(response).await, format!("{} true", token.client_id));
    }

    #[tokio::test]
    async fn user_identities_need_an_allow_policy() {
        let (issuer, _, _) = setup().await;
        let service = ServiceBuilder::new()
            .layer(issuer.exchange_layer("api").unwrap())
            .service(service_fn(echo));
        // A user token signed by the issuer's own key, for the application's AUD.
        let now = issuer.now();
        let claims = tollgate_core::AccessClaims::user(
            vec![issuer.app("api").unwrap().aud],
            issuer.issuer_url(),
            "jane@example.com",
            "7335d417-61da-459d-899c-0a01c76a2f94",
            now,
            now + 3600,
        );
        let jwt = {
            let snapshot = issuer.snapshot();
            snapshot
                .ring
                .signing_key(now)
                .unwrap()
                .sign(&claims)
                .unwrap()
        };
        let ride = || {
            Request::builder()
                .header("cf-access-token", &jwt)
                .body(Body::empty())
                .unwrap()
        };
        let response = service.clone().oneshot(ride()).await.unwrap();
        assert_eq!(
            response.status(),
            403,
            "Service Auth admits service tokens only"
        );

        let domain = |domain: &str| {
            crate::PolicyRules::including(vec![crate::PolicyRule::EmailDomain {
                domain: domain.into(),
            }])
        };
        let staff = issuer
            .policies()
            .create("staff", crate::PolicyDecision::Allow, domain("example.com"))
            .await
            .unwrap();
        issuer
            .apps()
            .edit_policies("api", |policies, _| {
                policies.push(crate::AppPolicy {
                    precedence: 2,
                    policy: staff.clone(),
                });
                Ok(())
            })
            .await
            .unwrap();
        let response = service.clone().oneshot(ride()).await.unwrap();
        assert_eq!(response.status(), 200, "admitted by the allow policy");
        assert_eq!(text(response).await, "jane@example.com true");

        // The reusable policy's change reaches the application it is linked to.
        issuer
            .policies()
            .update(
                &staff.id,
                "staff",
                crate::PolicyDecision::Allow,
                domain("example.org"),
            )
            .await
            .unwrap();
        let response = service.clone().oneshot(ride()).await.unwrap();
        assert_eq!(response.status(), 403, "no longer in the allowed domain");
    }

    #[tokio::test]
    async fn unknown_application_fails_at_build_time() {
        let (issuer, _, _) = setup().await;
        let err = issuer.exchange_layer("nope").unwrap_err();
        assert_eq!(err.kind(), crate::ManageErrorKind::NotFound);
    }

    #[tokio::test]
    async fn the_rejection_handler_answers_every_refusal() {
        use axum::response::IntoResponse;
        use tollgate_core::Rejection;

        let (issuer, token, _) = setup().await;
        let plain = |rejection: Rejection| {
            (http::StatusCode::IM_A_TEAPOT, rejection.kind().as_str()).into_response()
        };
        let service = ServiceBuilder::new()
            .layer(
                issuer
                    .exchange_layer("api")
                    .unwrap()
                    .with_rejection_handler(plain),
            )
            .service(service_fn(echo));
        let cases = [
            (Request::new(Body::empty()), "missing_credentials"),
            (
                Request::builder()
                    .header("cf-access-client-id", &token.client_id)
                    .header("cf-access-client-secret", "wrong")
                    .body(Body::empty())
                    .unwrap(),
                "invalid_credentials",
            ),
            (with_cookie("CF_Authorization=not.a.jwt"), "malformed_token"),
        ];
        for (request, reason) in cases {
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), http::StatusCode::IM_A_TEAPOT);
            assert_eq!(text(response).await, reason);
        }
    }
}
