//! The admin API over real sockets and real stores (a SQLite file; PostgreSQL shared by two
//! instances when `TOLLGATE_TEST_POSTGRES_URL` names a server): the envelope on every answer,
//! who may call, bad bodies refused with the field named and nothing changed, a property-based
//! fuzz of every operation of the OpenAPI document, a change made through one instance's API
//! (a token disabled, left out of a policy, deleted) honoured by another instance's exchange
//! within a second, and Terraform's token rotation under a bot's load losing no request.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_admin::{AdminApi, openapi_json};
use tollgate_issue::{
    ApiPermission, ApiTokens, AppSettings, AppStore as _, Issuer, KeyStore as _, TokenStore as _,
};
use tollgate_store::{Store, StoreOptions};
use tollgate_test::http::{RequestExt as _, serve, wait_until};

/// An admin API on loopback over `store`, with an edit and a read-only API token.
struct Admin {
    /// `http://127.0.0.1:port/client/v4`
    root: String,
    /// `…/accounts/{account_id}/access`
    access: String,
    edit: String,
    read: String,
    issuer: Issuer,
    store: Arc<Store>,
    http: reqwest::Client,
}

impl Admin {
    async fn start(store: Arc<Store>) -> Self {
        let issuer = Issuer::builder("https://team.example.com")
            .store(store.clone())
            .poll_interval(Duration::from_millis(50))
            .build()
            .await
            .unwrap();
        let api_tokens = ApiTokens::new(store.clone(), issuer.clock().clone());
        let (_, edit) = api_tokens.create("ops", ApiPermission::Edit).await.unwrap();
        let (_, read) = api_tokens
            .create("auditor", ApiPermission::Read)
            .await
            .unwrap();
        let account = api_tokens.account_id().await.unwrap();
        let router = AdminApi::new(issuer.clone(), api_tokens)
            .audit(store.clone())
            .router();
        let root = format!("{}/client/v4", serve(router).await);
        Self {
            access: format!("{root}/accounts/{account}/access"),
            root,
            edit: edit.expose_secret().to_owned(),
            read: read.expose_secret().to_owned(),
            issuer,
            store,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.access))
            .bearer_auth(&self.edit);
        if let Some(body) = body {
            request = request.json(&body);
        }
        envelope(request.send().await.unwrap()).await
    }
}

async fn sqlite() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
    let store = tollgate_store::connect(&url, StoreOptions::new())
        .await
        .unwrap();
    (dir, Arc::new(store))
}

/// The answer, checked to be Cloudflare's envelope: JSON, `success` true exactly below 400,
/// `errors` empty on success and holding v4 messages on failure.
async fn envelope(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let text = response.text().await.unwrap();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{status} {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_ne!(status, StatusCode::NO_CONTENT);
    assert_eq!(body["success"], status.as_u16() < 400, "{status} {body}");
    assert!(
        body["messages"].is_array() && body.get("result").is_some(),
        "{body}"
    );
    let errors = body["errors"].as_array().unwrap();
    if status.as_u16() < 400 {
        assert!(errors.is_empty(), "{body}");
    } else {
        assert!(!errors.is_empty(), "{body}");
        for error in errors {
            assert!(error["code"].as_u64().unwrap() >= 1000, "{body}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        assert!(body["result"].is_null());
    }
    (status, body)
}

fn code(body: &Value) -> u64 {
    body["errors"][0]["code"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_the_envelope_and_every_documented_route_exists() {
    let (_dir, store) = sqlite().await;
    let admin = Admin::start(store).await;
    let (status, body) = envelope(
        admin
            .http
            .get(format!("{}/nowhere", admin.root))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, 7003));
    let (status, body) = admin.call(Method::PATCH, "/keys", None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, 7001)
    );

    let served: Value = admin
        .http
        .get(format!("{}/openapi.json", admin.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let document: Value = serde_json::from_str(openapi_json()).unwrap();
    assert_eq!(served, document);
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let path = path
            .trim_start_matches("/accounts/{account_id}/access")
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{policy_id}", "00000000-0000-4000-8000-000000000000");
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() || path.ends_with("/keys/rotate") {
                continue;
            }
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = admin.call(method.clone(), &path, Some(json!({}))).await;
            assert!(
                status.is_success() || ![7001, 7003].contains(&code(&body)),
                "{method} {path} is documented but not routed: {body}"
            );
        }
    }
    assert_eq!(operations, 26, "all but the key rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_api_tokens_may_call_and_read_only_ones_only_read() {
    let (_dir, store) = sqlite().await;
    let admin = Admin::start(store).await;
    let url = format!("{}/service_tokens", admin.access);
    let send = |request: reqwest::RequestBuilder| async move {
        let (status, body) = envelope(request.send().await.unwrap()).await;
        (status.as_u16(), code_or_zero(&body))
    };
    let http = &admin.http;
    assert_eq!(send(http.get(&url)).await, (400, 9106));
    assert_eq!(
        send(http.get(&url).header("x-auth-email", "a@b.c")).await,
        (400, 9106)
    );
    assert_eq!(
        send(http.get(&url).bearer_auth("tga_nope")).await,
        (401, 10000)
    );
    assert_eq!(
        send(http.get(&url).header("authorization", "Basic eDp5")).await,
        (400, 6003)
    );
    assert_eq!(
        send(
            http.get(&url)
                .bearer_auth(&admin.edit)
                .header("x-auth-key", &admin.read)
        )
        .await,
        (400, 6003),
        "two credentials naming different tokens"
    );
    assert_eq!(
        send(http.get(&url).bearer_auth(&admin.read)).await,
        (200, 0)
    );
    assert_eq!(
        send(
            http.get(&url)
                .header("x-auth-email", "ops@example.com")
                .header("x-auth-key", &admin.edit)
        )
        .await,
        (200, 0)
    );
    let create = || http.post(&url).json(&json!({"name": "bot"}));
    assert_eq!(send(create().bearer_auth(&admin.read)).await, (403, 10000));
    assert!(
        admin.store.list_tokens().await.unwrap().is_empty(),
        "the refused create made nothing"
    );
    assert_eq!(send(create().bearer_auth(&admin.edit)).await, (200, 0));
    let other = url
        .replace("/accounts/", "/accounts/0")
        .replacen("/accounts/0", "/accounts/", 0);
    let other = other.replace(
        &other.split('/').nth(6).unwrap().to_owned(),
        &"f".repeat(32),
    );
    assert_eq!(
        send(http.get(&other).bearer_auth(&admin.edit)).await,
        (403, 9109)
    );
    let (status, _) = envelope(http.get(&other).send().await.unwrap()).await;
    assert_eq!(status, 400, "no account check before authentication");
}

fn code_or_zero(body: &Value) -> u64 {
    body["errors"][0]["code"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_with_the_field_named_and_change_nothing() {
    let (_dir, store) = sqlite().await;
    let admin = Admin::start(store).await;
    let (_, created) = admin
        .call(
            Method::POST,
            "/service_tokens",
            Some(json!({"name": "bot"})),
        )
        .await;
    let id = created["result"]["id"].as_str().unwrap().to_owned();
    assert!(
        created["result"]["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("tgs_")
    );
    let before = admin.store.list_tokens().await.unwrap();
    let path = format!("/service_tokens/{id}");
    for (body, field) in [
        (json!({"name": 5}), "name"),
        (json!({"duration": "soon"}), "duration"),
        (json!({"duration": "1.5s"}), "duration"),
        (json!({"enabled": "yes"}), "enabled"),
        (
            json!({"client_secret_version": -1}),
            "client_secret_version",
        ),
        (json!({"client_secret_version": 0}), "client_secret_version"),
        (
            json!({"previous_client_secret_expires_at": "tomorrow"}),
            "previous_client_secret_expires_at",
        ),
        (json!({"name": "ok", "duration": "never"}), "duration"),
    ] {
        let (status, body) = admin.call(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field} not named in {message}");
    }
    let raw = |bytes: Vec<u8>| {
        admin
            .http
            .put(format!("{}{path}", admin.access))
            .bearer_auth(&admin.edit)
            .body(bytes)
    };
    for bytes in [
        b"{".to_vec(),
        b"[]".to_vec(),
        b"\"x\"".to_vec(),
        vec![0xff, 0xfe],
    ] {
        let (status, body) = envelope(raw(bytes).send().await.unwrap()).await;
        assert_eq!((status.as_u16(), code(&body)), (400, 12002));
    }
    let mut huge = b"{\"name\":\"".to_vec();
    huge.resize(2 << 20, b'a');
    let (status, body) = envelope(raw(huge).send().await.unwrap()).await;
    assert_eq!((status.as_u16(), code(&body)), (413, 12413));
    assert_eq!(
        admin.store.list_tokens().await.unwrap(),
        before,
        "nothing changed"
    );

    // Past the last page: an empty page, 200, with a true result_info.
    let (status, body) = admin
        .call(Method::GET, "/service_tokens?page=9&per_page=5", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!([]));
    assert_eq!(
        body["result_info"],
        json!({"page": 9, "per_page": 5, "count": 0, "total_count": 1, "total_pages": 1})
    );
    let (status, body) = admin
        .call(Method::GET, "/service_tokens?per_page=0", None)
        .await;
    assert_eq!((status.as_u16(), code(&body)), (400, 12091));
    let (status, body) = admin.call(Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert!(
        body["result"].get("client_secret").is_none(),
        "never on a read"
    );
}

/// One random call: an operation of the document, an id, a query, a body.
#[derive(Debug, Clone)]
struct Case {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..5).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("8760h"),
            Just("forever"),
            Just("1h30m"),
            Just("0s"),
            Just("300ms"),
            Just(""),
            Just("2030-01-01T00:00:00Z"),
            Just("2000-01-01T00:00:00.5+01:00"),
            Just("\u{0}"),
            Just("../../keys"),
            Just("é🦀"),
            Just("2026-12-01T22:18:51.380971+00:00"),
        ]
        .prop_map(Value::from),
        "[a-z0-9 ]{0,12}".prop_map(Value::from),
        Just(Value::from("x".repeat(300))),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Cases drawn from the OpenAPI document: its operations (but the key rotation, which makes
/// an RSA key each time), ids known and unknown, queries and bodies mixing the documented
/// fields with values of every type.
fn cases(ids: Vec<String>) -> impl Strategy<Value = Case> {
    let document: Value = serde_json::from_str(openapi_json()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" || path.ends_with("/keys/rotate") {
                continue;
            }
            let schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .map(|name| &document["components"]["schemas"][name]["properties"]);
            let fields: Vec<String> = schema
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            let path = path
                .trim_start_matches("/accounts/{account_id}/access")
                .to_owned();
            operations.push((
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                path,
                fields,
            ));
        }
    }
    let mut id_choices = ids;
    id_choices.extend(
        [
            "00000000-0000-4000-8000-000000000000",
            "..",
            "%2e%2e",
            "a%00b",
            "x".repeat(500).as_str(),
        ]
        .map(String::from),
    );
    let queries = prop_oneof![
        Just(String::new()),
        Just("?page=2&per_page=1".to_owned()),
        Just("?page=0".to_owned()),
        Just("?per_page=100000".to_owned()),
        Just("?page=1&page=2".to_owned()),
        Just("?name=bot&search=%00".to_owned()),
        "[a-z=&%0-9]{0,16}".prop_map(|q| format!("?{q}")),
    ];
    (
        0..operations.len(),
        prop::sample::select(id_choices),
        queries,
        any::<bool>(),
        any::<u8>(),
    )
        .prop_flat_map(move |(op, id, query, raw, salt)| {
            let (method, path, fields) = operations[op].clone();
            let path = format!(
                "{}{query}",
                path.replace("{id}", &id).replace("{policy_id}", &id)
            );
            let mut keys: Vec<String> = fields;
            keys.push("unknown_field".to_owned());
            let body = prop::collection::btree_map(prop::sample::select(keys), json_value(), 0..4);
            (Just(method), Just(path), body, Just(raw), Just(salt))
        })
        .prop_map(|(method, path, body, raw, salt)| {
            let body = if raw && salt % 4 == 0 {
                Some(vec![salt; usize::from(salt % 7)])
            } else {
                Some(serde_json::to_vec(&Value::Object(body.into_iter().collect())).unwrap())
            };
            Case { method, path, body }
        })
}

#[test]
fn fuzzed_calls_answer_the_envelope_never_5xx_and_refusals_change_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_dir, store) = runtime.block_on(sqlite());
    let admin = runtime.block_on(Admin::start(store));
    let ids: Vec<String> = runtime.block_on(async {
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            let (_, body) = admin
                .call(Method::POST, "/service_tokens", Some(json!({"name": name})))
                .await;
            ids.push(body["result"]["id"].as_str().unwrap().to_owned());
        }
        let (_, body) = admin
            .call(
                Method::POST,
                "/apps",
                Some(json!({"name": "api", "domain": "api.example.com", "type": "self_hosted"})),
            )
            .await;
        ids.push(body["result"]["id"].as_str().unwrap().to_owned());
        let (_, body) = admin
            .call(
                Method::POST,
                "/policies",
                Some(json!({"name": "bots", "decision": "non_identity",
                            "include": [{"service_token": {"token_id": ids[0]}}]})),
            )
            .await;
        ids.push(body["result"]["id"].as_str().unwrap().to_owned());
        ids
    });
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    runner
        .run(&cases(ids), |case| {
            let (status, state_changed) = runtime.block_on(async {
                let before = (
                    admin.store.list_tokens().await.unwrap(),
                    admin.store.load_ring().await.unwrap().0,
                    admin.store.list_apps().await.unwrap(),
                    admin.store.list_policies().await.unwrap(),
                );
                let mut request = admin
                    .http
                    .request(
                        case.method.clone(),
                        format!("{}{}", admin.access, case.path),
                    )
                    .bearer_auth(&admin.edit);
                if let Some(body) = &case.body {
                    request = request.body(body.clone());
                }
                let (status, body) = envelope(request.send().await.unwrap()).await;
                if case.method == Method::GET {
                    assert!(
                        !body.to_string().contains("client_secret\":\"tgs_"),
                        "{body}"
                    );
                }
                let after = (
                    admin.store.list_tokens().await.unwrap(),
                    admin.store.load_ring().await.unwrap().0,
                    admin.store.list_apps().await.unwrap(),
                    admin.store.list_policies().await.unwrap(),
                );
                (status, before != after)
            });
            prop_assert!(status.as_u16() < 500, "{case:?}: {status}");
            prop_assert!(
                status.as_u16() < 400 || !state_changed,
                "{case:?} was refused ({status}) but changed the store"
            );
            *statuses.lock().unwrap().entry(status.as_u16()).or_default() += 1;
            Ok(())
        })
        .unwrap();
    let statuses = statuses.into_inner().unwrap();
    println!("statuses of 400 fuzzed calls: {statuses:?}");
    assert!(
        statuses.get(&200).is_some_and(|n| *n > 10),
        "some calls succeed: {statuses:?}"
    );
    assert!(
        statuses.get(&400).is_some_and(|n| *n > 10),
        "some are refused: {statuses:?}"
    );
    let _ = &admin.issuer;
}

/// The "Done when" of the admin API: a bot's credentials made through instance A's API
/// exchange on instance B; disabled, or deleted, through A, B refuses them within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_instances_api_reach_another_sharing_postgres_within_a_second() {
    tollgate_test::postgres::with_database("admin::two_instances", |url| async move {
        let (admin, _b, b_url) = two_instances(&url).await;
        let (_, body) = admin
            .call(
                Method::POST,
                "/service_tokens",
                Some(json!({"name": "bot"})),
            )
            .await;
        let token = &body["result"];
        let (id, client_id) = (
            token["id"].as_str().unwrap(),
            token["client_id"].as_str().unwrap(),
        );
        let secret = token["client_secret"].as_str().unwrap().to_owned();
        let http = reqwest::Client::new();
        let status = |wanted: u16| {
            let (http, b_url, client_id, secret) = (&http, &b_url, client_id, &secret);
            async move {
                http.get(b_url)
                    .credentials(client_id, secret)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    == wanted
            }
        };
        wait_until(Duration::from_secs(1), "B admits the new token", || {
            status(200)
        })
        .await;
        admin
            .call(
                Method::PUT,
                &format!("/service_tokens/{id}"),
                Some(json!({"enabled": false})),
            )
            .await;
        wait_until(
            Duration::from_secs(1),
            "B refuses the disabled token",
            || status(401),
        )
        .await;
        admin
            .call(
                Method::PUT,
                &format!("/service_tokens/{id}"),
                Some(json!({"enabled": true})),
            )
            .await;
        wait_until(Duration::from_secs(1), "B admits it again", || status(200)).await;
        // A policy leaving the bot out, given to B's application through A's API.
        let (_, body) = admin
            .call(
                Method::POST,
                "/service_tokens",
                Some(json!({"name": "other"})),
            )
            .await;
        let other = body["result"]["id"].as_str().unwrap().to_owned();
        let (_, body) = admin
            .call(Method::POST, "/policies", Some(naming(&[&other])))
            .await;
        let policy = body["result"]["id"].as_str().unwrap().to_owned();
        let app = app_document(&admin, tollgate_test::issue::APP).await;
        let mut linked = app.clone();
        linked["policies"] = json!([policy]);
        let (status_code, body) = admin
            .call(
                Method::PUT,
                &format!("/apps/{}", app["id"].as_str().unwrap()),
                Some(linked),
            )
            .await;
        assert_eq!(status_code, 200, "{body}");
        wait_until(
            Duration::from_secs(1),
            "B refuses the token the policy leaves out",
            || status(403),
        )
        .await;
        admin
            .call(
                Method::PUT,
                &format!("/policies/{policy}"),
                Some(naming(&[&other, id])),
            )
            .await;
        wait_until(
            Duration::from_secs(1),
            "B admits it once the policy names it",
            || status(200),
        )
        .await;
        let (status_code, body) = admin
            .call(Method::DELETE, &format!("/service_tokens/{id}"), None)
            .await;
        assert_eq!((status_code.as_u16(), code(&body)), (400, 12139), "{body}");
        admin
            .call(
                Method::PUT,
                &format!("/policies/{policy}"),
                Some(naming(&[&other])),
            )
            .await;
        let (status_code, body) = admin
            .call(Method::DELETE, &format!("/service_tokens/{id}"), None)
            .await;
        assert_eq!(status_code, 200, "{body}");
        wait_until(
            Duration::from_secs(1),
            "B refuses the deleted token",
            || status(401),
        )
        .await;
    })
    .await;
}

/// Instance A (an admin API) and instance B (the application `APP` at `api.example.com`, its
/// exchange served on loopback, polling every 250 ms) on the PostgreSQL database `url`; B's
/// URL.
async fn two_instances(url: &str) -> (Admin, Issuer, String) {
    let open = || async {
        Arc::new(
            tollgate_store::connect(url, StoreOptions::new())
                .await
                .unwrap(),
        )
    };
    let admin = Admin::start(open().await).await;
    let b = Issuer::builder("https://team.example.com")
        .store(open().await)
        .poll_interval(Duration::from_millis(250))
        .build()
        .await
        .unwrap();
    b.apps()
        .create(
            tollgate_test::issue::APP,
            AppSettings::new().domain("api.example.com"),
        )
        .await
        .unwrap();
    let b_url = format!(
        "{}/",
        serve(tollgate_test::issue::protected_app(&b, Default::default())).await
    );
    (admin, b, b_url)
}

/// A `non_identity` policy document named `bots` admitting the service tokens `ids`.
fn naming(ids: &[&str]) -> Value {
    let include: Vec<Value> = ids
        .iter()
        .map(|id| json!({"service_token": {"token_id": id}}))
        .collect();
    json!({"name": "bots", "decision": "non_identity", "include": include})
}

/// The application document `name` has, as the API shows it (for a PUT of it).
async fn app_document(admin: &Admin, name: &str) -> Value {
    let (_, body) = admin
        .call(Method::GET, &format!("/apps?name={name}"), None)
        .await;
    body["result"][0].clone()
}

/// Terraform's rotation of a bot's service token through the API — create the new token, add
/// it to the policy, move the bot, take the old one out of the policy, delete it — while the
/// bot exchanges its credentials at `bot_url` as fast as it can: not one request is refused.
/// The bot moves to the new credentials once they work where it sends them (a deployment
/// after `terraform apply`), which on another instance is within its poll interval.
async fn rotation_loses_no_request(admin: &Admin, bot_url: String) {
    let http = reqwest::Client::new();
    let create = |name: &'static str| async move {
        let (_, body) = admin
            .call(Method::POST, "/service_tokens", Some(json!({"name": name})))
            .await;
        let token = &body["result"];
        [&token["id"], &token["client_id"], &token["client_secret"]]
            .map(|v| v.as_str().unwrap().to_owned())
    };
    let [old_id, old_client, old_secret] = create("bot-v1").await;
    let (_, body) = admin
        .call(Method::POST, "/policies", Some(naming(&[&old_id])))
        .await;
    let policy = body["result"]["id"].as_str().unwrap().to_owned();
    let app = app_document(admin, tollgate_test::issue::APP).await;
    let mut linked = app.clone();
    linked["policies"] = json!([policy]);
    let app_path = format!("/apps/{}", app["id"].as_str().unwrap());
    assert_eq!(
        admin.call(Method::PUT, &app_path, Some(linked)).await.0,
        200
    );

    let admitted = |client: String, secret: String| {
        let (http, url) = (http.clone(), bot_url.clone());
        async move {
            http.get(&url)
                .credentials(&client, &secret)
                .send()
                .await
                .unwrap()
                .status()
                == 200
        }
    };
    wait_until(Duration::from_secs(1), "the bot gets in", || {
        admitted(old_client.clone(), old_secret.clone())
    })
    .await;

    let credentials = Arc::new(std::sync::Mutex::new((
        old_client.clone(),
        old_secret.clone(),
    )));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bot = tokio::spawn({
        let (http, url, credentials, stop) = (
            http.clone(),
            bot_url.clone(),
            credentials.clone(),
            stop.clone(),
        );
        async move {
            let mut refused = Vec::new();
            let mut sent = 0_u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (client, secret) = credentials.lock().unwrap().clone();
                let response = http
                    .get(&url)
                    .credentials(&client, &secret)
                    .send()
                    .await
                    .unwrap();
                sent += 1;
                if response.status() != 200 {
                    refused.push((client, response.status(), response.text().await.unwrap()));
                }
            }
            (sent, refused)
        }
    });
    let pause = || tokio::time::sleep(Duration::from_millis(150));
    pause().await;
    let [new_id, new_client, new_secret] = create("bot-v2").await;
    let (status, body) = admin
        .call(
            Method::PUT,
            &format!("/policies/{policy}"),
            Some(naming(&[&old_id, &new_id])),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until(
        Duration::from_secs(1),
        "the new token works where the bot is",
        || admitted(new_client.clone(), new_secret.clone()),
    )
    .await;
    *credentials.lock().unwrap() = (new_client.clone(), new_secret.clone());
    pause().await;
    let (status, body) = admin
        .call(
            Method::PUT,
            &format!("/policies/{policy}"),
            Some(naming(&[&new_id])),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin
        .call(Method::DELETE, &format!("/service_tokens/{old_id}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    pause().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, refused) = bot.await.unwrap();
    println!(
        "rotation: the bot sent {sent} requests during it, {} refused",
        refused.len()
    );
    assert!(sent >= 10, "the bot kept sending ({sent})");
    assert!(refused.is_empty(), "requests lost: {refused:?}");
    wait_until(Duration::from_secs(1), "the old token is refused", || {
        let (http, url) = (http.clone(), bot_url.clone());
        let (client, secret) = (old_client.clone(), old_secret.clone());
        async move {
            http.get(&url)
                .credentials(&client, &secret)
                .send()
                .await
                .unwrap()
                .status()
                == 401
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_style_rotation_loses_no_request() {
    let (_dir, store) = sqlite().await;
    let admin = Admin::start(store).await;
    admin
        .issuer
        .apps()
        .create(
            tollgate_test::issue::APP,
            AppSettings::new().domain("api.example.com"),
        )
        .await
        .unwrap();
    let url = format!(
        "{}/",
        serve(tollgate_test::issue::protected_app(
            &admin.issuer,
            Default::default()
        ))
        .await
    );
    rotation_loses_no_request(&admin, url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_style_rotation_loses_no_request_on_another_instance_sharing_postgres() {
    tollgate_test::postgres::with_database("admin::rotation", |url| async move {
        let (admin, _b, b_url) = two_instances(&url).await;
        rotation_loses_no_request(&admin, b_url).await;
    })
    .await;
}
