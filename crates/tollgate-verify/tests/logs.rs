//! Log hygiene, in a test binary of its own so a process-wide subscriber sees every event:
//! decisions are logged with their reason and the identity's name, never a token.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tollgate_core::{AccessIdentity, ManualClock};
use tollgate_test::{
    AUD, CLIENT_ID, ISS, JwksServer, LogCapture, NOW, keys, service_payload, user_payload,
};
use tollgate_verify::authorize::email_domain;
use tollgate_verify::{RemoteKeySource, Verifier, VerifyConfig, VerifyLayer};

async fn serve(layer: VerifyLayer) -> String {
    let app = Router::new()
        .fallback(get(
            |id: AccessIdentity| async move { id.name().to_owned() },
        ))
        .layer(layer);
    format!("{}/", tollgate_test::serve(app).await)
}

#[tokio::test]
async fn logs_name_the_reason_and_identity_never_the_token() {
    let logs = LogCapture::global();
    let k = keys();
    let jwks = JwksServer::start(vec![k[0].jwk()]).await;
    let clock = ManualClock::at_unix(NOW);
    let verifier = Verifier::new(
        VerifyConfig::new(ISS).audience(AUD).clock(Arc::new(clock)),
        RemoteKeySource::new(&jwks.certs_url()).unwrap(),
    )
    .unwrap();
    let url =
        serve(VerifyLayer::new(verifier).with_authorization(email_domain("example.com"))).await;
    let client = reqwest::Client::new();
    let good_user = k[0].sign(&k[0].header(), &user_payload("jane@example.com", NOW, 3600));
    let bot = k[0].service_token(NOW, 3600);
    let forged = k[1].sign(&k[0].header(), &service_payload(NOW, 3600));
    let unknown = k[2].sign(r#"{"alg":"RS256","kid":"nope"}"#, &service_payload(NOW, 60));
    let tokens = [&good_user, &bot, &forged, &unknown];
    let mut statuses = Vec::new();
    for token in tokens {
        let response = client
            .get(&url)
            .header("cf-access-token", token.as_str())
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 403, 401, 401]);
    let text = logs.text();
    assert!(text.contains("access refused by policy"), "{text}");
    assert!(text.contains(CLIENT_ID), "the refused identity is named");
    assert!(text.contains("invalid_signature"), "{text}");
    assert!(text.contains("unknown_key"), "{text}");
    for token in tokens {
        for part in token.split('.') {
            assert!(!text.contains(part), "a token part leaked into the logs");
        }
    }
}
