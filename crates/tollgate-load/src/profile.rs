//! `tollgate-load profile`: one variant's service called directly, no sockets, for
//! `valgrind --tool=callgrind` (instructions are counted, so the machine's load does not
//! matter). Run it twice with different `--requests` and take the difference per request to
//! cancel the setup; compare with `--variant bare`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use tollgate::verify::VerifyLayer;
use tower_service::Service;

use crate::tokens::Fixture;
use crate::variants::{issuer, verifier};

async fn ok() -> &'static str {
    "ok"
}

pub(crate) fn run(variant: &str, requests: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let fixture = Arc::new(Fixture::load());
    let user_token = fixture.user_token(0);
    runtime.block_on(async {
        let base = Router::new().route("/", get(ok));
        let mut header = ("cf-access-jwt-assertion", user_token.clone());
        let mut router = match variant {
            "bare" => base,
            "hit" => base.layer(VerifyLayer::new(verifier(&fixture, 10_000).await)),
            "miss" => base.layer(VerifyLayer::new(verifier(&fixture, 0).await)),
            "cookie" => {
                let (issuer, _, _, client_id, secret) = issuer().await;
                let mut router = base.layer(issuer.exchange_layer("bench").expect("the app"));
                let exchange = Request::builder()
                    .uri("/")
                    .header("cf-access-client-id", client_id)
                    .header("cf-access-client-secret", secret)
                    .body(Body::empty())
                    .expect("a request");
                let response = router.call(exchange).await.expect("infallible");
                let cookie = response
                    .headers()
                    .get("set-cookie")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .expect("the exchange sets a cookie")
                    .to_owned();
                header = ("cookie", cookie);
                std::mem::forget(issuer);
                router
            }
            other => panic!("unknown variant {other:?}: bare, hit, miss or cookie"),
        };
        let mut statuses = 0usize;
        let started = std::time::Instant::now();
        for _ in 0..requests {
            // What hyper hands a service: a fresh request with the client's headers.
            let request = Request::builder()
                .uri("/")
                .header("host", "bench.example.com")
                .header(header.0, header.1.as_str())
                .body(Body::empty())
                .expect("a request");
            let response = router.call(request).await.expect("infallible");
            statuses += usize::from(response.status() == 200);
        }
        assert_eq!(statuses, requests, "every request answered 200");
        let each = started.elapsed().as_secs_f64() / requests as f64;
        println!(
            "{variant}: {requests} requests answered 200, {:.0} ns each (wall clock, not callgrind)",
            each * 1e9
        );
    });
}
