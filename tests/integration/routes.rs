//! The issuer's own routes next to the protected app: the certs document (Cloudflare's shape)
//! and get-identity.

#![allow(clippy::unwrap_used)]

use tollgate::issue::AppSettings;
use tollgate_test::http::RequestExt as _;
use tollgate_test::issue::Harness;

#[tokio::test]
async fn certs_and_get_identity_routes() {
    let h = Harness::start(AppSettings::new()).await;
    let certs = h.certs().await;
    let keys = certs["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = keys[0]["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 64);
    assert_eq!(certs["public_cert"]["kid"], kid);
    assert!(
        certs["public_cert"]["cert"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    assert_eq!(certs["public_certs"][0]["kid"], kid);

    let client = h.client();
    let get_identity = h.at("/cdn-cgi/access/get-identity");
    let anonymous = client.get(&get_identity).reply().await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json["reason"], "missing_credentials");
    h.exchange(&client).await;
    let identity = client.get(&get_identity).reply().await;
    assert_eq!(identity.status, 200);
    assert_eq!(identity.json["common_name"], h.token.client_id);
    assert_eq!(identity.json["service_token_id"], h.token.id);
    assert_eq!(identity.json["service_token_status"], true);
    h.verify_seen_independently().await;
}
