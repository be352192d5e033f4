//! The real `tollgate` binary against real SQLite files in temp dirs (and a real server on
//! 127.0.0.1:0 for `serve`).

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_test::cli::{CliEnv, ServeProcess};
use tollgate_test::http::{
    RequestExt as _, certs, cookie_client, exchange_then_reuse, signing_kid, wait_for_status,
    wait_until,
};

/// A scratch directory with its own SQLite database, running this package's binary.
fn scratch() -> CliEnv {
    CliEnv::new(env!("CARGO_BIN_EXE_tollgate"))
}

#[test]
fn token_lifecycle() {
    let env = scratch();
    let created = env.json(&["token", "create", "--name", "ci-bot", "--json"]);
    assert_eq!(created["name"], "ci-bot");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(client_id.ends_with(".access") && client_id.len() == 32 + 7);
    assert!(secret.len() >= 40);
    assert_eq!(created["duration"], "8760h");
    assert!(created["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(Path::new(&env.dir().join("tollgate.db")).exists());

    let forever = env.json(&[
        "token",
        "create",
        "--name",
        "forever",
        "--duration",
        "forever",
        "--json",
    ]);
    assert_eq!(forever["expires_at"], Value::Null);

    let list = env.json(&["token", "list", "--json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci-bot", "forever"]);
    assert!(
        !env.ok(&["token", "list", "--json"]).contains(&secret),
        "list never shows a secret"
    );
    assert!(env.ok(&["token", "list"]).contains(&client_id));

    assert_eq!(
        env.json(&["token", "list", "--expiring", "7d", "--json"]),
        Value::Array(vec![])
    );
    env.ok(&["token", "set-duration", &client_id, "72h"]);
    let expiring = env.json(&["token", "list", "--expiring", "7d", "--json"]);
    assert_eq!(expiring.as_array().unwrap().len(), 1);
    assert_eq!(expiring[0]["client_id"], client_id.as_str());
    assert_eq!(expiring[0]["duration"], "72h");

    let refreshed = env.json(&["token", "refresh", &client_id, "--json"]);
    assert_eq!(refreshed["duration"], "72h");

    let rotated = env.json(&[
        "token",
        "rotate-secret",
        &client_id,
        "--grace",
        "1h",
        "--json",
    ]);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_secret_expires_at"].is_string());
    let rotated = env.json(&["token", "rotate-secret", "ci-bot", "--json"]);
    assert_eq!(
        rotated["previous_secret_expires_at"],
        Value::Null,
        "no grace by default"
    );
    let error = env.fails(&["token", "rotate-secret", &client_id, "--grace", "31d"]);
    assert!(error.contains("grace"), "{error}");

    assert!(
        env.ok(&["token", "delete", &client_id])
            .contains(&client_id)
    );
    let error = env.fails(&["token", "delete", &client_id]);
    assert!(
        error.starts_with("tollgate: error:") && error.contains("not found"),
        "{error}"
    );
    assert_eq!(env.count(&["token", "list", "--json"]), 1);
}

#[test]
fn token_errors_are_one_line_and_change_nothing() {
    let env = scratch();
    env.ok(&["token", "create", "--name", "bot"]);
    let error = env.fails(&["token", "create", "--name", "bot"]);
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(env.count(&["token", "list", "--json"]), 1);

    // Usage errors are clap's (exit 2) and also write nothing.
    let output = env.run(&["token", "create", "--name", "x", "--duration", "soon"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid duration"));
    assert_eq!(env.count(&["token", "list", "--json"]), 1);

    let error = env.fails(&["--database", "mysql://localhost/x", "token", "list"]);
    assert!(error.contains("sqlite:"), "{error}");
    let error = env.fails(&["--database", "sqlite:///no/such/dir/t.db", "token", "list"]);
    assert!(error.contains("/no/such/dir/t.db"), "{error}");

    // serve refuses a bad trusted proxy before it opens or creates anything.
    let fresh = scratch();
    let db = fresh.dir().join("never.db");
    let database = format!("sqlite://{}", db.display());
    let error = fresh.fails(&[
        "--database",
        &database,
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--trusted-proxy",
        "10.0.0.0/99",
    ]);
    assert!(error.contains("CIDR"), "{error}");
    assert!(!db.exists(), "nothing was created");
}

#[test]
fn token_import_reads_the_secret_from_stdin_or_env() {
    use std::io::Write as _;

    let env = scratch();
    let client_id = format!("{}.access", "ab".repeat(16));
    let legacy_secret = "0123456789abcdef".repeat(4);
    let mut child = env
        .command(&[
            "token",
            "import",
            "--name",
            "from-cf",
            "--client-id",
            &client_id,
            "--json",
        ])
        .env_remove("TOLLGATE_CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{legacy_secret}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let imported: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(imported["client_id"], client_id.as_str());
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&legacy_secret));

    let output = env
        .command(&[
            "token",
            "import",
            "--name",
            "typo",
            "--client-id",
            &format!("{}.access", "cd".repeat(16)),
        ])
        .env("TOLLGATE_CLIENT_SECRET", "tgs_notavalidsecret")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot import the secret") && !stderr.contains("notavalid"),
        "{stderr}"
    );
    let error = env.fails(&["token", "import", "--name", "bad", "--client-id", "nope"]);
    assert!(
        error.contains("no secret given") || error.contains("client ID"),
        "{error}"
    );
    assert_eq!(env.count(&["token", "list", "--json"]), 1);
}

#[test]
fn app_commands() {
    let env = scratch();
    let api = env.json(&[
        "app",
        "create",
        "api",
        "--session-duration",
        "1h",
        "--read-service-tokens-from-header",
        "Authorization",
        "--json",
    ]);
    assert_eq!(api["name"], "api");
    assert_eq!(api["session_duration"], "1h");
    assert_eq!(api["read_service_tokens_from_header"], "authorization");
    let aud = api["aud"].as_str().unwrap();
    assert_eq!(aud.len(), 64);

    env.ok(&["app", "create", "web"]);
    let shown = env.json(&["app", "show", "web", "--json"]);
    assert_eq!(shown["session_duration"], "24h");
    assert_eq!(shown["read_service_tokens_from_header"], Value::Null);

    let changed = env.json(&[
        "app",
        "set",
        "api",
        "--session-duration",
        "30m",
        "--no-read-service-tokens-from-header",
        "--json",
    ]);
    assert_eq!(changed["session_duration"], "30m");
    assert_eq!(changed["read_service_tokens_from_header"], Value::Null);
    assert_eq!(changed["aud"], aud, "the AUD tag is stable");

    let list = env.json(&["app", "list", "--json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert!(env.ok(&["app", "list"]).contains(aud));

    assert!(env.fails(&["app", "show", "nope"]).contains("not found"));
    assert!(
        env.fails(&["app", "create", "web"])
            .contains("already exists")
    );
    assert!(
        env.fails(&["app", "set", "api", "--session-duration", "800h"])
            .contains("730h")
    );
    env.ok(&["app", "delete", "web"]);
    assert!(env.fails(&["app", "show", "web"]).contains("not found"));
}

/// The fields Cloudflare's v4 API keys on (`id`, `type`, `updated_at`,
/// `tokens_revoked_before`) in `app show/list --json`, and `app revoke-tokens`, which is logged.
#[test]
fn app_ids_and_revoke_tokens() {
    let env = scratch();
    let api = env.json(&["app", "create", "api", "--json"]);
    let id = api["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.as_bytes()[14], b'4', "a v4 UUID: {id}");
    assert_eq!(api["type"], "self_hosted");
    assert_eq!(api["updated_at"], api["created_at"]);
    assert_eq!(api["tokens_revoked_before"], Value::Null);
    env.ok(&["app", "create", "web"]);
    let list = env.json(&["app", "list", "--json"]);
    let listed = list.as_array().unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_ne!(listed[1]["id"], listed[0]["id"]);
    assert!(listed.iter().all(|a| a["type"] == "self_hosted"));
    assert!(env.ok(&["app", "show", "api"]).contains(&id));

    let said = env.ok(&["app", "revoke-tokens", "api"]);
    assert!(
        said.contains("Revoked") && said.contains("\"api\""),
        "{said}"
    );
    let shown = env.json(&["app", "show", "api", "--json"]);
    assert_eq!(shown["id"], id.as_str(), "the id never changes");
    let revoked = shown["tokens_revoked_before"].as_str().unwrap();
    assert!(revoked.ends_with('Z') && revoked.contains('T'), "{revoked}");
    assert!(said.contains(revoked), "{said}");
    assert!(shown["updated_at"].as_str().unwrap() <= revoked);
    let web = env.json(&["app", "show", "web", "--json"]);
    assert_eq!(
        web["tokens_revoked_before"],
        Value::Null,
        "only that application"
    );
    let again = env.json(&["app", "revoke-tokens", "api", "--json"]);
    assert_eq!(again["id"], id.as_str());
    assert!(again["tokens_revoked_before"].as_str().unwrap() >= revoked);

    assert!(
        env.fails(&["app", "revoke-tokens", "nope"])
            .contains("not found")
    );
    let actions: Vec<String> = env
        .ok(&["logs", "--json", "--kind", "admin"])
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "app.revoke_tokens").count(),
        2,
        "{actions:?}"
    );
}

#[test]
fn keys_rotate_and_master_key() {
    let mut env = scratch();
    env.master_key = Some("11".repeat(32));
    assert!(env.ok(&["keys", "list"]).contains("No signing keys"));
    let output = env.run(&["keys", "rotate"]);
    assert!(output.status.success());
    assert!(!String::from_utf8_lossy(&output.stderr).contains("unencrypted"));
    env.ok(&["keys", "rotate"]);
    let keys = env.json(&["keys", "list", "--json"]);
    let keys = keys.as_array().unwrap();
    assert!(keys.len() >= 2, "{keys:?}");
    assert!(keys.iter().all(|k| k["encrypted_at_rest"] == true));
    assert_eq!(
        keys.iter().filter(|k| k["status"] == "signing").count(),
        1,
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| k["kid"].as_str().unwrap().len() == 64));
    let listing = env.ok(&["keys", "list", "--json"]);
    assert!(!listing.contains("PRIVATE") && !listing.contains("pkcs8"));

    env.master_key = Some("22".repeat(32));
    let error = env.fails(&["keys", "list"]);
    assert!(error.contains("TOLLGATE_MASTER_KEY"), "{error}");
    env.master_key = None;
    let error = env.fails(&["keys", "list"]);
    assert!(
        error.contains("encrypted") && error.contains("TOLLGATE_MASTER_KEY"),
        "{error}"
    );
    env.master_key = Some("not a key".to_owned());
    let error = env.fails(&["token", "list"]);
    assert!(
        error.contains("TOLLGATE_MASTER_KEY") && !error.contains("not a key"),
        "{error}"
    );

    // Without a master key the CLI says plainly that keys are stored unencrypted.
    let plain = scratch();
    let output = plain.run(&["keys", "rotate"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unencrypted"));
    let keys = plain.json(&["keys", "list", "--json"]);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["encrypted_at_rest"] == false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_first_run_exchange_cookie_revocation_and_verify() {
    let env = scratch();
    let server = env.serve(&[]);
    let (client_id, secret) = server
        .first_token
        .clone()
        .expect("first run prints a curl command");
    assert!(server.base.starts_with("http://127.0.0.1:"));
    let url = server.url();

    // The certs endpoint is public.
    let certs = certs(&server.base).await;
    assert!(!certs["keys"].as_array().unwrap().is_empty());

    let client = cookie_client();
    assert_eq!(client.get(&url).send_status().await, 401);
    let exchange = client
        .get(format!("{url}anything"))
        .credentials(&client_id, &secret)
        .reply()
        .await;
    assert_eq!(exchange.status, 200);
    let cookie = exchange.set_cookie().unwrap();
    assert!(cookie.starts_with("CF_Authorization="), "{cookie}");
    let jwt = exchange.cookie_token().unwrap().to_owned();
    let identity = &exchange.json;
    assert_eq!(identity["common_name"], client_id.as_str());
    assert_eq!(identity["iss"], server.base.as_str());

    // Cookie reuse: no credentials, still in.
    assert_eq!(client.get(&url).send_status().await, 200);

    // `tollgate verify` accepts the minted token against the live certs URL, and explains
    // a refusal.
    let online: [&str; 4] = ["--team-domain", &server.base, "--aud", &server.aud];
    let verified = env.json(&verify(&jwt, &online));
    assert_eq!(verified["common_name"], client_id.as_str());
    let error = env.fails(&verify(
        &jwt,
        &[&online[..], &["--at", "4000000000"]].concat(),
    ));
    assert!(error.contains("expired"), "{error}");
    // Any spelling of the team domain is the same issuer (it was compared as typed before).
    let shouted = format!("{}/", server.base.to_uppercase());
    let verified = env.json(&verify(
        &jwt,
        &["--team-domain", &shouted, "--aud", &server.aud],
    ));
    assert_eq!(verified["common_name"], client_id.as_str());
    let refused = env.run(&verify(
        &jwt,
        &["--team-domain", "https://team.example.com/path"],
    ));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not a team domain"), "{stderr}");
    let zeros = "0".repeat(64);
    let error = env.fails(&verify(
        &jwt,
        &["--team-domain", &server.base, "--aud", &zeros],
    ));
    assert!(error.contains("audience"), "{error}");
    // Offline: keys from a saved certs document; the issuer and audience pinned.
    let certs_file = env.dir().join("certs.json");
    std::fs::write(&certs_file, certs.to_string()).unwrap();
    let certs_path = certs_file.display().to_string();
    let pinned: [&str; 4] = ["--aud", &server.aud, "--certs", &certs_path];
    let verified = env.json(&verify(
        &jwt,
        &[&["--team-domain", &server.base][..], &pinned].concat(),
    ));
    assert_eq!(verified["common_name"], client_id.as_str());
    let error = env.fails(&verify(
        &jwt,
        &[&["--team-domain", "https://other.example.com"][..], &pinned].concat(),
    ));
    assert!(error.contains("issuer"), "{error}");
    // Unpinned, the token's own iss is never trusted to say where its keys are: a forger would
    // host their own key there. With --certs pinning the keys, its iss is accepted.
    let error = env.fails(&verify(&jwt, &["--aud", &server.aud]));
    assert!(error.contains("--team-domain"), "{error}");
    let verified = env.json(&verify(&jwt, &pinned));
    assert_eq!(verified["common_name"], client_id.as_str());

    // A token created by another CLI invocation works on the running server within a second.
    let (other_id, other_secret) = create_token(&env, "second");
    let fresh = reqwest::Client::new();
    wait_until(
        Duration::from_secs(1),
        "new token not honoured within 1 s",
        || {
            let request = fresh.get(&url).credentials(&other_id, &other_secret);
            async move { request.send_status().await == 200 }
        },
    )
    .await;

    // Revocation by another CLI invocation: the cookie stops working within a second.
    env.ok(&["token", "delete", &client_id]);
    let took = wait_for_status(&client, &url, 401, Duration::from_secs(1)).await;
    eprintln!("revocation honoured after {took:?}");
}

/// The arguments `verify <extra> <jwt>`.
fn verify<'a>(jwt: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    args.push(jwt);
    args
}

/// `tollgate token create --name <name> --json`: the new token's client ID and secret.
fn create_token(env: &CliEnv, name: &str) -> (String, String) {
    let token = env.json(&["token", "create", "--name", name, "--json"]);
    let field = |name: &str| token[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// Two `tollgate serve` instances on one fresh PostgreSQL database behind one team domain (the
/// `iss` of their tokens, as behind one load balancer), and a token created through the CLI that
/// B honours, for cookies minted by either, within a second. Skipped without PostgreSQL.
async fn two_instances_with_a_shared_token<F, Fut>(name: &str, test: F)
where
    F: FnOnce(CliEnv, [ServeProcess; 2], (String, String)) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tollgate_test::postgres::with_database(name, |database| async move {
        let mut env = scratch();
        env.database = database;
        let team = ["--team-domain", "https://team.example.com"];
        let a = env.serve(&team);
        let b = env.serve(&team);
        let (id, secret) = create_token(&env, "shared");
        let start = Instant::now();
        while exchange_then_reuse(&b.url(), &a.url(), &id, &secret).await != (200, 200) {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "B did not honour the new token within 1 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        test(env, [a, b], (id, secret)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_instances_share_postgres() {
    two_instances_with_a_shared_token("two_instances", |env, [a, b], (id, secret)| async move {
        assert!(
            b.first_token.is_none(),
            "B found A's token: no second demo token"
        );
        assert_eq!(a.aud, b.aud, "one application, shared");
        // Created through the CLI (as A's operator), used on B within a second (above); cookies
        // minted by one instance are honoured by the other (one shared key ring).
        assert_eq!(
            exchange_then_reuse(&a.url(), &b.url(), &id, &secret).await,
            (200, 200)
        );

        // Revoked through the CLI: B refuses within a second.
        let client = reqwest::Client::new();
        env.ok(&["token", "delete", &id]);
        let took = wait_until(
            Duration::from_secs(1),
            "B still accepts a revoked token",
            || {
                let request = client.get(b.url()).credentials(&id, &secret);
                async move { request.send_status().await == 401 }
            },
        )
        .await;
        eprintln!("revocation honoured by B after {took:?}");
    })
    .await;
}

/// `tollgate keys rotate` run while two instances serve: the new key is published at once and
/// signs only after `RotationPolicy::rotate_now_lead` (1 s), so both instances know it before any
/// token carries it and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_on_one_instance_fails_no_request_on_another() {
    two_instances_with_a_shared_token("rotation", |env, [a, b], (id, secret)| async move {
        // Rotate keys while both serve: no request fails.
        let hammer = {
            let (url_a, url_b) = (a.url(), b.url());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(3500) {
                    outcomes.push(exchange_then_reuse(&url_a, &url_b, &id, &secret).await);
                    outcomes.push(exchange_then_reuse(&url_b, &url_a, &id, &secret).await);
                }
                outcomes
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = signing_kid(&certs(&a.base).await);
        env.ok(&["keys", "rotate"]);
        let outcomes = hammer.await.unwrap();
        let failed: Vec<_> = outcomes.iter().filter(|o| **o != (200, 200)).collect();
        assert!(
            failed.is_empty(),
            "{} of {} exchanges failed during rotation: {failed:?}",
            failed.len(),
            outcomes.len()
        );
        let after = signing_kid(&certs(&b.base).await);
        assert_ne!(before, after, "B signs with the new key");
    })
    .await;
}

/// Replicas started at the same moment on a fresh store all come up, with one signing key and
/// at most one first-run demo token (the loser of the first-run race used to exit with "a
/// service token named demo already exists").
fn replicas_start_together(database: String) {
    let mut env = scratch();
    env.database = database;
    let env = std::sync::Arc::new(env);
    let starting: Vec<_> = (0..3)
        .map(|_| {
            let env = env.clone();
            std::thread::spawn(move || env.serve(&["--team-domain", "https://team.example.com"]))
        })
        .collect();
    let servers: Vec<ServeProcess> = starting.into_iter().map(|t| t.join().unwrap()).collect();
    let printed = servers.iter().filter(|s| s.first_token.is_some()).count();
    assert!(printed <= 1, "{printed} demo tokens printed");
    assert_eq!(env.count(&["token", "list", "--json"]), 1);
    assert_eq!(env.count(&["keys", "list", "--json"]), 1);
}

#[test]
fn replicas_start_together_on_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        replicas_start_together(format!(
            "sqlite://{}/fresh-{round}.db",
            dir.path().display()
        ));
    }
}

#[tokio::test]
async fn replicas_start_together_on_postgres() {
    for round in 0..3 {
        tollgate_test::postgres::with_database(
            &format!("replicas_{round}"),
            |database| async move {
                tokio::task::spawn_blocking(move || replicas_start_together(database))
                    .await
                    .unwrap();
            },
        )
        .await;
    }
}

/// `token disable` refuses the token's exchanges with `service_token_disabled` (logged like
/// other refusals) and ends its cookie within a second, keeping the record; `token enable`
/// brings both back. `token list --json` shows `id` and `enabled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_tokens_are_refused_until_enabled() {
    let env = scratch();
    let (client_id, secret) = create_token(&env, "bot");
    let server = env.serve(&[]);
    let url = server.url();
    let cookies = cookie_client();
    let exchange = cookies
        .get(&url)
        .credentials(&client_id, &secret)
        .reply()
        .await;
    assert_eq!(exchange.status, 200);
    assert_eq!(
        cookies.get(&url).send_status().await,
        200,
        "the cookie rides"
    );

    let disabled = env.json(&["token", "disable", &client_id, "--json"]);
    assert_eq!(disabled["enabled"], false);
    let listed = env.json(&["token", "list", "--json"]);
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["client_id"] == client_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["enabled"], false, "the record is kept, disabled");
    assert!(env.ok(&["token", "list"]).contains("bot (disabled)"));
    assert!(listed["id"].as_str().unwrap().len() == 36, "{listed}");

    let took = wait_for_status(&cookies, &url, 401, Duration::from_secs(1)).await;
    eprintln!("disable honoured for the cookie after {took:?}");
    let fresh = reqwest::Client::new();
    wait_until(
        Duration::from_secs(1),
        "disabled token still exchanged",
        || {
            let request = fresh.get(&url).credentials(&client_id, &secret);
            async move { request.send_status().await == 401 }
        },
    )
    .await;
    let refused = fresh
        .get(&url)
        .credentials(&client_id, &secret)
        .reply()
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.json["reason"], "service_token_disabled",
        "{}",
        refused.text
    );
    // A wrong secret is not told the token is disabled.
    let guessed = fresh
        .get(&url)
        .credentials(&client_id, "tgs_wrong")
        .reply()
        .await;
    assert_eq!(guessed.json["reason"], "invalid_credentials");

    env.ok(&["token", "enable", &client_id]);
    wait_until(Duration::from_secs(1), "enabled token refused", || {
        let request = fresh.get(&url).credentials(&client_id, &secret);
        async move { request.send_status().await == 200 }
    })
    .await;

    // The log has the refusal and both changes.
    let logged = |args: &[&str]| -> Vec<Value> {
        let mut argv = vec!["logs", "--json", "--client-id", &client_id];
        argv.extend_from_slice(args);
        env.ok(&argv)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    wait_until(Duration::from_secs(5), "refusal not logged", || {
        let found = logged(&["--failed"])
            .iter()
            .any(|e| e["kind"] == "exchange" && e["reason"] == "service_token_disabled");
        async move { found }
    })
    .await;
    let cookie_refusal = logged(&["--failed"])
        .into_iter()
        .find(|e| e["kind"] == "token")
        .expect("the disabled token's cookie refusal is logged");
    assert_eq!(cookie_refusal["reason"], "revoked");
    assert_eq!(cookie_refusal["detail"], "service token disabled");
    let actions: Vec<String> = logged(&["--kind", "admin"])
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["token.create", "token.disable", "token.enable"]);
    assert!(
        env.fails(&["token", "disable", "nobody"])
            .contains("not found")
    );
}

/// `api-token create` shows the token once; `list` never does; `delete ID` removes it; each
/// change is in the log.
#[test]
fn api_token_create_list_delete() {
    let env = scratch();
    let edit = env.json(&["api-token", "create", "--name", "terraform", "--json"]);
    assert_eq!(edit["name"], "terraform");
    assert_eq!(edit["permission"], "edit");
    let token = edit["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tga_") && token.len() == 62, "{token}");
    let id = edit["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let read = env.json(&[
        "api-token",
        "create",
        "--name",
        "dashboards",
        "--read-only",
        "--json",
    ]);
    assert_eq!(read["permission"], "read");
    assert_ne!(read["token"], edit["token"]);

    let list = env.json(&["api-token", "list", "--json"]);
    let rows: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["permission"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("dashboards", "read"), ("terraform", "edit")]);
    for listing in [
        env.ok(&["api-token", "list", "--json"]),
        env.ok(&["api-token", "list"]),
    ] {
        assert!(!listing.contains(&token), "list never shows a token");
        assert!(!listing.contains("\"token\""), "{listing}");
    }
    assert!(env.ok(&["api-token", "list"]).contains(&id));

    assert!(env.ok(&["api-token", "delete", &id]).contains(&id));
    assert_eq!(env.count(&["api-token", "list", "--json"]), 1);
    assert!(
        env.fails(&["api-token", "delete", &id])
            .contains("not found")
    );
    assert!(
        env.fails(&["api-token", "create", "--name", " "])
            .contains("name")
    );

    let logged = env.ok(&["logs", "--json", "--kind", "admin"]);
    assert!(!logged.contains(&token), "never a token in the log");
    let actions: Vec<String> = logged
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        ["api_token.create", "api_token.create", "api_token.delete"]
    );
}

/// `account show` prints one 32-lowercase-hex account ID, the same on every call.
#[test]
fn account_id_is_stable_and_32_hex() {
    let env = scratch();
    let shown = env.json(&["account", "show", "--json"]);
    let id = shown["account_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert!(
        id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{id}"
    );
    assert_eq!(
        env.json(&["account", "show", "--json"])["account_id"],
        id.as_str()
    );
    assert_eq!(env.ok(&["account", "show"]).trim(), id);

    // Processes asking at once on a fresh store all get the one ID the first of them made.
    let fresh = std::sync::Arc::new(scratch());
    let asking: Vec<_> = (0..3)
        .map(|_| {
            let env = fresh.clone();
            std::thread::spawn(move || env.json(&["account", "show", "--json"]))
        })
        .collect();
    let ids: Vec<Value> = asking.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(ids.iter().all(|shown| *shown == ids[0]), "{ids:?}");
    assert_eq!(fresh.json(&["account", "show", "--json"]), ids[0]);
}

/// `tollgate policy …`, `app create/set --policy`, `--allow-token`, `--any-token` and
/// `token delete [--detach]`, with the spellings the README shows; then `serve` admits and
/// refuses as the policies say.
#[test]
fn policies_from_the_cli() {
    let env = scratch();
    let (alice, alice_secret) = create_token(&env, "alice");
    let (bob, bob_secret) = create_token(&env, "bob");
    let alice_id = env
        .json(&["token", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "alice")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // An application's own Service Auth policy: any valid token by default, or a list.
    let api = env.json(&["app", "create", "api", "--allow-token", &alice, "--json"]);
    assert_eq!(api["allowed_service_tokens"], serde_json::json!([alice]));
    let [policy] = api["policies"].as_array().unwrap().as_slice() else {
        panic!("{api}");
    };
    assert_eq!(policy["name"], "Service Auth");
    assert_eq!(policy["decision"], "non_identity");
    assert_eq!(policy["reusable"], false);
    assert_eq!(policy["precedence"], 1);
    assert_eq!(
        policy["include"],
        serde_json::json!([{"service_token": {"token_id": alice_id}}])
    );
    assert!(
        env.ok(&["app", "show", "api"])
            .contains(&format!("service-token={alice}"))
    );
    let open = env.json(&["app", "set", "api", "--any-token", "--json"]);
    assert_eq!(open["allowed_service_tokens"], Value::Null);
    assert!(
        env.fails(&[
            "app",
            "create",
            "web",
            "--allow-token",
            &format!("{}.access", "9".repeat(32))
        ])
        .contains("not found")
    );

    // Reusable policies.
    let created = env.json(&[
        "policy",
        "create",
        "bots",
        "--decision",
        "non_identity",
        "--include",
        &format!("service-token={bob}"),
        "--require",
        "ip=127.0.0.0/8",
        "--exclude",
        "email-domain=example.com",
        "--json",
    ]);
    let bots = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["reusable"], true);
    assert_eq!(
        created["require"],
        serde_json::json!([{"ip": {"ip": "127.0.0.0/8"}}])
    );
    assert_eq!(
        created["exclude"],
        serde_json::json!([{"email_domain": {"domain": "example.com"}}])
    );
    for (args, needle) in [
        (
            vec![
                "policy",
                "create",
                "x",
                "--decision",
                "maybe",
                "--include",
                "everyone",
            ],
            "decision",
        ),
        (
            vec![
                "policy",
                "create",
                "x",
                "--decision",
                "allow",
                "--include",
                "ip=10.0.0.1/8",
            ],
            "host bits",
        ),
        (
            vec![
                "policy",
                "create",
                "x",
                "--decision",
                "allow",
                "--include",
                "somebody",
            ],
            "a rule is",
        ),
        (
            vec!["policy", "create", "x", "--decision", "allow"],
            "required",
        ),
    ] {
        let error = env.fails(&args);
        assert!(error.contains(needle), "{args:?}: {error}");
    }
    let listed = env.json(&["policy", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["app_count"], 0);
    assert!(env.ok(&["policy", "list"]).contains("bots"));
    env.ok(&["app", "set", "api", "--policy", "bots"]);
    assert_eq!(
        env.json(&["policy", "show", "bots", "--json"])["app_count"],
        1
    );
    let shown = env.json(&["app", "show", "api", "--json"]);
    assert_eq!(shown["policies"][0]["id"], bots.as_str());
    assert_eq!(
        shown["policies"].as_array().unwrap().len(),
        1,
        "replaced the scoped one"
    );

    // Deleting what is in use is refused, changing nothing.
    let error = env.fails(&["token", "delete", &bob]);
    assert!(
        error.contains("--detach") && error.contains("\"bots\""),
        "{error}"
    );
    assert!(env.fails(&["policy", "delete", "bots"]).contains("\"api\""));

    // serve: bob from loopback passes (the require), alice is not named.
    let server = env.serve(&["--app", "api"]);
    let status = |client: &str, secret: &str| {
        let url = server.url();
        let (client, secret) = (client.to_owned(), secret.to_owned());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                reqwest::Client::new()
                    .get(&url)
                    .credentials(&client, &secret)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
    };
    assert_eq!(status(&bob, &bob_secret), 200);
    assert_eq!(status(&alice, &alice_secret), 403);
    env.ok(&[
        "policy",
        "set",
        "bots",
        "--decision",
        "non_identity",
        "--include",
        &format!("service-token={alice}"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while status(&alice, &alice_secret) != 200 {
        assert!(Instant::now() < deadline, "the policy change reaches serve");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(&bob, &bob_secret), 403);
    drop(server);

    env.ok(&["token", "delete", &alice, "--detach"]);
    assert_eq!(
        env.json(&["policy", "show", &bots, "--json"])["include"],
        serde_json::json!([])
    );
    env.ok(&["app", "set", "api", "--any-token"]);
    env.ok(&["policy", "delete", &bots]);
    assert_eq!(
        env.json(&["policy", "list", "--json"]),
        serde_json::json!([])
    );
}

/// `tollgate keys set-interval DAYS|default`: refused out of 21–365 days, else shared through
/// the store, so a running `serve` answers the new interval on its admin API within a second.
#[test]
fn keys_set_interval_reaches_a_running_server() {
    let env = scratch();
    for bad in ["20", "366", "soon", "30x"] {
        let error = env.fails(&["keys", "set-interval", bad]);
        assert!(error.contains("21 to 365"), "{bad}: {error}");
    }
    let token = env.json(&["api-token", "create", "--name", "ops", "--json"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = env.serve(&["--admin-addr", "127.0.0.1:0"]);
    let (admin, account) = server.admin.clone().unwrap();
    let interval = || {
        let url = format!("{admin}/accounts/{account}/access/keys");
        let token = token.clone();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let body: Value = reqwest::Client::new()
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                body["result"]["key_rotation_interval_days"]
                    .as_i64()
                    .unwrap()
            })
    };
    assert_eq!(interval(), 42);
    assert!(
        env.ok(&["keys", "set-interval", "30"])
            .contains("every 30 days")
    );
    let deadline = Instant::now() + Duration::from_secs(1);
    while interval() != 30 {
        assert!(Instant::now() < deadline, "serve follows within a second");
        std::thread::sleep(Duration::from_millis(50));
    }
    env.ok(&["keys", "set-interval", "default"]);
    let deadline = Instant::now() + Duration::from_secs(1);
    while interval() != 42 {
        assert!(Instant::now() < deadline, "and back");
        std::thread::sleep(Duration::from_millis(50));
    }
}
