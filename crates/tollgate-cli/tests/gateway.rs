//! `tollgate serve` as a gateway: the real binary, applications routed by domain and path,
//! hostile request targets sent byte for byte over a raw socket (an HTTP client library would
//! normalise them before they left), and origins reached only by authenticated requests.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tollgate_test::cli::{CliEnv, ServeProcess};
use tollgate_test::http::wait_until;

fn scratch() -> CliEnv {
    CliEnv::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// `tollgate token create --name <name> --json`: the new token's client ID and secret.
fn create_token(env: &CliEnv, name: &str) -> (String, String) {
    let token = env.json(&["token", "create", "--name", name, "--json"]);
    let field = |name: &str| token[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// `tollgate app create NAME --domain DOMAIN [extra…] --json`: the new application's AUD.
fn create_app(env: &CliEnv, name: &str, domain: &str, extra: &[&str]) -> String {
    let mut args = vec!["app", "create", name, "--domain", domain];
    args.extend_from_slice(extra);
    args.push("--json");
    let app = env.json(&args);
    let canonical = domain.to_ascii_lowercase();
    assert_eq!(app["domain"], Value::from(canonical.trim_end_matches("/*")));
    app["aud"].as_str().unwrap().to_owned()
}

/// A response read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn reason(&self) -> Option<String> {
        self.json()["reason"].as_str().map(str::to_owned)
    }

    /// The AUD of the identity the echo answered with.
    fn aud(&self) -> Option<String> {
        let json = self.json();
        let aud = &json["aud"];
        aud.as_str()
            .or_else(|| aud.get(0).and_then(Value::as_str))
            .map(str::to_owned)
    }
}

/// Sends `target` exactly as written, with `headers` (`Name: value` lines), on a fresh
/// connection to `server`; reads the whole response (`Connection: close`).
async fn raw(server: &ServeProcess, target: &str, headers: &[&str]) -> Raw {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {target} HTTP/1.1\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("the response arrives")
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // The echo answers small JSON; a chunked body is one chunk and its terminator.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n").nth(1).unwrap_or_default().to_owned()
    } else {
        body.to_owned()
    };
    Raw {
        status,
        head: head.to_owned(),
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_are_routed_by_host_and_normalised_path() {
    let env = scratch();
    let site = create_app(&env, "site", "example.test", &[]);
    let bots = create_app(&env, "bots", "example.test/service-token/*", &[]);
    let admin = create_app(&env, "admin", "example.test/admin", &[]);
    let tenants = create_app(&env, "tenants", "*.example.test", &[]);
    let api = create_app(&env, "api", "API.example.test", &[]);
    // Overlaps are refused when created or changed, whatever the spelling.
    let error = env.fails(&["app", "create", "twin", "--domain", "Example.TEST./admin/"]);
    assert!(error.contains("example.test/admin"), "{error}");
    let error = env.fails(&["app", "set", "api", "--domain", "example.test"]);
    assert!(error.contains("example.test"), "{error}");
    let error = env.fails(&["app", "create", "bad", "--domain", "https://example.test"]);
    assert!(error.contains("no scheme"), "{error}");

    let (id, secret) = create_token(&env, "bot");
    let server = env.serve(&[]);
    assert_eq!(
        server.aud, "",
        "no fallback once an application has a domain"
    );
    let creds = [
        format!("CF-Access-Client-Id: {id}"),
        format!("CF-Access-Client-Secret: {secret}"),
    ];
    let with = |host: &str| {
        let mut lines = vec![format!("Host: {host}")];
        lines.extend(creds.iter().cloned());
        lines
    };
    let get = |target: &'static str, host: &'static str| {
        let lines = with(host);
        let server = &server;
        async move {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            raw(server, target, &refs).await
        }
    };

    for (target, host, expected) in [
        ("/", "example.test", &site),
        ("/anything", "EXAMPLE.test.", &site),
        ("/service-token", "example.test", &bots),
        ("/service-token/x", "example.test:8443", &bots),
        ("/service-tokens", "example.test", &site),
        ("/Service-Token/x", "example.test", &bots),
        ("/admin", "example.test", &admin),
        ("/admin/x?y=1", "example.test", &admin),
        // Hostile spellings resolve to the application they really name.
        ("/service-token/../admin", "example.test", &admin),
        ("/service-token/%2e%2e/admin/", "example.test", &admin),
        ("/%61dmin", "example.test", &admin),
        ("//admin//x", "example.test", &admin),
        ("/admin/../service-token/", "example.test", &bots),
        ("/x/..%2F", "example.test", &site),
        ("/", "acme.example.test", &tenants),
        ("/", "api.example.test", &api),
        ("/", "Api.Example.Test:80", &api),
    ] {
        let reply = get(target, host).await;
        if target == "/x/..%2F" {
            // An encoded slash has no single meaning: refused, not routed.
            assert_eq!(reply.status, 400, "{target} {}", reply.body);
            assert_eq!(reply.reason().as_deref(), Some("ambiguous_request"));
            continue;
        }
        assert_eq!(reply.status, 200, "{host}{target}: {}", reply.body);
        assert_eq!(reply.aud().as_ref(), Some(expected), "{host}{target}");
    }

    // No application: 404 in the usual JSON shape, before any credential is looked at.
    for host in ["other.test", "a.b.example.test", "example.test.evil"] {
        let reply = get("/", host).await;
        assert_eq!(reply.status, 404, "{host}");
        assert_eq!(reply.reason().as_deref(), Some("no_application"));
    }
    // Ambiguous requests: refused, never guessed.
    for (target, headers) in [
        ("/service-token/..;/admin", vec!["Host: example.test"]),
        ("/a%5c..%5cadmin", vec!["Host: example.test"]),
        ("/", vec!["Host: example.test", "Host: api.example.test"]),
        ("http://api.example.test/", vec!["Host: example.test"]),
        ("/", vec!["Host: example.test/admin"]),
    ] {
        let reply = raw(&server, target, &headers).await;
        assert_eq!(reply.status, 400, "{target} {headers:?}: {}", reply.head);
        assert_eq!(reply.reason().as_deref(), Some("ambiguous_request"));
    }
    // Unauthenticated requests to a routed application are refused by its layer.
    let reply = raw(&server, "/admin", &["Host: example.test"]).await;
    assert_eq!(reply.status, 401);

    // The certs route answers on every host, routed or not.
    for host in ["example.test", "unknown.test"] {
        let reply = raw(
            &server,
            "/cdn-cgi/access/certs",
            &[&format!("Host: {host}")],
        )
        .await;
        assert_eq!(reply.status, 200, "{host}");
        assert!(reply.json()["keys"].is_array());
    }

    // An application created by another CLI call is served without a restart.
    let late = create_app(&env, "late", "late.example.test", &[]);
    wait_until(
        Duration::from_secs(5),
        "the new application is routed",
        || async { get("/", "late.example.test").await.aud().as_ref() == Some(&late) },
    )
    .await;
    // And one moved to another domain follows; its old host falls to the wildcard.
    env.ok(&["app", "set", "late", "--domain", "later.test"]);
    wait_until(
        Duration::from_secs(5),
        "the moved application is routed",
        || async {
            get("/", "late.example.test").await.aud().as_ref() == Some(&tenants)
                && get("/", "later.test").await.aud().as_ref() == Some(&late)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_everything_only_until_an_application_has_a_domain() {
    let env = scratch();
    let server = env.serve(&[]);
    let (id, secret) = server.first_token.clone().unwrap();
    let creds = [
        format!("CF-Access-Client-Id: {id}"),
        format!("CF-Access-Client-Secret: {secret}"),
    ];
    let get = |host: &'static str| {
        let mut lines = vec![format!("Host: {host}")];
        lines.extend(creds.iter().cloned());
        let server = &server;
        async move {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            raw(server, "/", &refs).await
        }
    };
    let demo = server.aud.clone();
    assert_eq!(demo.len(), 64);
    assert_eq!(get("anything.test").await.aud(), Some(demo.clone()));

    let api = create_app(&env, "api", "api.test", &[]);
    wait_until(
        Duration::from_secs(5),
        "routing by domain starts",
        || async { get("api.test").await.aud().as_ref() == Some(&api) },
    )
    .await;
    let reply = get("anything.test").await;
    assert_eq!(reply.status, 404, "no fallback once a domain exists");

    // `--app NAME` names a fallback that stays.
    drop(server);
    let server = env.serve(&["--app", "demo"]);
    assert_eq!(server.aud, demo);
    let mut lines = vec!["Host: anything.test".to_owned()];
    lines.extend(creds.iter().cloned());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(raw(&server, "/", &refs).await.aud(), Some(demo));
}
