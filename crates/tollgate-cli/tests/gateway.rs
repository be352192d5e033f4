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

/// A bot's client: a cookie store, and every `*.test` name used here resolved to `server`.
fn bot_client(server: &ServeProcess, hosts: &[&str]) -> reqwest::Client {
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let mut builder = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10));
    for host in hosts {
        builder = builder.resolve(host, addr);
    }
    builder.build().unwrap()
}

/// `https://<host>:<port><path>` for `server`'s port, over plain http.
fn at(server: &ServeProcess, host: &str, path: &str) -> String {
    let port = server.base.rsplit(':').next().unwrap();
    format!("http://{host}:{port}{path}")
}

/// Cloudflare's own origin examples, unchanged, behind `tollgate serve`: the Python one reads
/// the `CF_Authorization` cookie and verifies it with PyJWT, the Go one verifies
/// `Cf-Access-Jwt-Assertion` with go-oidc, both against tollgate's certs endpoint. A bot that
/// exchanged its headers at tollgate gets through (path-routed to one, host-routed to the
/// other); nobody else ever reaches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflares_seed_origins_serve_an_exchanged_bot_and_nobody_else() {
    use tollgate_test::http::RequestExt as _;
    use tollgate_test::origins::SeedOrigin;

    let env = scratch();
    let py_aud = create_app(&env, "py", "example.test/service-token", &[]);
    let go_aud = create_app(&env, "go", "go.example.test", &[]);
    let (id, secret) = create_token(&env, "bot");
    let issuer = "http://tollgate.test";
    let server = env.serve(&["--team-domain", issuer]);
    let certs = format!("{}/cdn-cgi/access/certs", server.base);
    let (Some(python), Some(go)) = (
        SeedOrigin::python_cookie(&certs, issuer, &py_aud),
        SeedOrigin::go_oidc(&certs, issuer, &go_aud),
    ) else {
        return; // SKIPPED: printed by the harness, with what to install.
    };
    env.ok(&["app", "set", "py", "--origin", &python.url()]);
    env.ok(&["app", "set", "go", "--origin", &go.url()]);

    let bot = bot_client(&server, &["example.test", "go.example.test"]);
    let py_url = at(&server, "example.test", "/service-token/hello?x=1");
    wait_until(Duration::from_secs(5), "the origins are routed", || async {
        let reply = bot.get(&py_url).credentials(&id, &secret).reply().await;
        // The origin's answer, not tollgate's own identity echo.
        reply.json["header_names"].is_array()
    })
    .await;
    let before = python.counts().await;

    // The first request after an exchange: the Python origin, which reads only the cookie,
    // already sees it, and it is the assertion's token; no credential reaches it.
    let fresh = bot_client(&server, &["example.test", "go.example.test"]);
    let reply = fresh.get(&py_url).credentials(&id, &secret).reply().await;
    assert_eq!(reply.code(), 200, "{}", reply.text);
    assert_eq!(reply.json["common_name"], id.as_str());
    assert_eq!(
        reply.json["path"], "/service-token/hello?x=1",
        "{}",
        reply.text
    );
    assert_eq!(reply.json["assertion_matches_cookie"], true);
    let names: Vec<&str> = reply.json["header_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for hidden in [
        "cf-access-client-id",
        "cf-access-client-secret",
        "cf-access-token",
    ] {
        assert!(
            !names.contains(&hidden),
            "{hidden} reached the origin: {names:?}"
        );
    }
    for set in [
        "cf-access-jwt-assertion",
        "x-forwarded-for",
        "x-forwarded-host",
    ] {
        assert!(names.contains(&set), "{set} missing: {names:?}");
    }
    let cookie = reply.cookie_token().unwrap().to_owned();
    // Later requests ride the cookie (from the client's cookie store).
    let reply = fresh.get(&py_url).reply().await;
    assert_eq!(reply.code(), 200, "{}", reply.text);
    assert_eq!(python.counts().await.verified, before.verified + 2);

    // Host-routed to the Go origin, which verifies the assertion header.
    let go_url = at(&server, "go.example.test", "/any/path");
    let reply = fresh.get(&go_url).credentials(&id, &secret).reply().await;
    assert_eq!(reply.code(), 200, "{}", reply.text);
    assert_eq!(reply.json["common_name"], id.as_str());
    let go_before = go.counts().await;

    // Everyone else is refused at tollgate: the origins see nothing.
    let stranger = bot_client(&server, &["example.test", "go.example.test"]);
    let forged = format!("{}.{}", &cookie[..cookie.len() - 10], "AAAAAAAAAA");
    for (url, request) in [
        (&py_url, stranger.get(&py_url)),
        (
            &py_url,
            stranger.get(&py_url).credentials(&id, "wrong-secret"),
        ),
        (
            &py_url,
            stranger
                .get(&py_url)
                .header("Cf-Access-Jwt-Assertion", &cookie),
        ),
        (
            &py_url,
            stranger
                .get(&py_url)
                .header("cookie", format!("CF_Authorization={forged}")),
        ),
        // The py application's cookie is not the go application's.
        (
            &go_url,
            stranger
                .get(&go_url)
                .header("cookie", format!("CF_Authorization={cookie}")),
        ),
        (&go_url, stranger.get(&go_url).access_token(&cookie)),
    ] {
        let reply = request.reply().await;
        assert_eq!(reply.code(), 401, "{url}: {}", reply.text);
        assert!(!reply.text.contains(&secret) && !reply.text.contains(&cookie[20..]));
    }
    // A path outside the application, however spelled, does not reach it either.
    for path in [
        "/service-token/../x",
        "/service-tokens",
        "/service-token/%2e%2e/x",
    ] {
        let reply = fresh.get(at(&server, "example.test", path)).reply().await;
        assert_eq!(reply.code(), 404, "{path}: {}", reply.text);
    }
    assert_eq!(python.counts().await.requests, before.requests + 2);
    assert_eq!(go.counts().await.requests, go_before.requests);

    // A spoofed identity from the client never arrives: the origin verifies the real token.
    let reply = fresh
        .get(&go_url)
        .header("cf_access_jwt_assertion", "forged")
        .header("Cf-Access-Authenticated-User-Email", "admin@example.com")
        .header("X-Forwarded-For", "10.0.0.1")
        .reply()
        .await;
    assert_eq!(reply.code(), 200, "{}", reply.text);
    assert_eq!(reply.json["email"], Value::Null);
}

/// An origin that is down answers 502 in the JSON shape; pointing the application elsewhere,
/// or at no origin, takes effect without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_change_without_a_restart_and_a_dead_one_is_a_502() {
    use tollgate_test::http::RequestExt as _;

    let env = scratch();
    // A port nobody listens on.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let aud = create_app(
        &env,
        "api",
        "api.test",
        &["--origin", &format!("http://{dead}")],
    );
    let (id, secret) = create_token(&env, "bot");
    let server = env.serve(&[]);
    let bot = bot_client(&server, &["api.test"]);
    let url = at(&server, "api.test", "/");
    let reply = bot.get(&url).credentials(&id, &secret).reply().await;
    assert_eq!(
        reply.refusal(),
        (502, Some("origin_unreachable")),
        "{}",
        reply.text
    );
    let token = reply.cookie_token().unwrap().to_owned();

    // A live origin: a tiny axum app that echoes what it saw.
    let origin = tollgate_test::http::serve(axum::Router::new().fallback(
        |headers: http::HeaderMap| async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            axum::Json(serde_json::json!({
                "assertion": header("cf-access-jwt-assertion").is_some(),
                "cookie": header("cookie"),
                "forwarded_for": header("x-forwarded-for"),
            }))
        },
    ))
    .await;
    env.ok(&["app", "set", "api", "--origin", &origin]);
    wait_until(Duration::from_secs(5), "the new origin is used", || async {
        bot.get(&url).reply().await.json["assertion"] == true
    })
    .await;
    let reply = bot
        .get(&url)
        .header("cookie", format!("theme=dark; CF_Authorization={token}"))
        .header("X-Forwarded-For", "10.9.9.9")
        .reply()
        .await;
    assert_eq!(reply.json["assertion"], true, "{}", reply.text);
    assert_eq!(reply.json["forwarded_for"], "127.0.0.1");
    let cookie = reply.json["cookie"].as_str().unwrap();
    assert!(
        cookie.contains("theme=dark") && cookie.contains("CF_Authorization="),
        "{cookie}"
    );

    env.ok(&["app", "set", "api", "--no-origin"]);
    wait_until(
        Duration::from_secs(5),
        "tollgate answers itself",
        || async {
            let reply = bot.get(&url).reply().await;
            let json = &reply.json;
            json["aud"] == aud.as_str() || json["aud"][0] == aud.as_str()
        },
    )
    .await;
    let shown = env.json(&["app", "show", "api", "--json"]);
    assert_eq!(shown["origin"], Value::Null);
    assert_eq!(shown["domain"], "api.test");
}
