//! The real `tollgate` binary against real SQLite files in temp dirs (and a real server on
//! 127.0.0.1:0 for `serve`).

#![allow(clippy::unwrap_used)]

/// Writes straight to the process's stderr, past the test harness's output capture, so a
/// skipped suite is visible in every run.
macro_rules! skipped {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A scratch directory with its own database.
struct Env {
    dir: tempfile::TempDir,
    database: String,
    master_key: Option<String>,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("tollgate.db").display());
        Self {
            dir,
            database,
            master_key: None,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("TOLLGATE_DATABASE_URL", &self.database)
            .env_remove("TOLLGATE_LOG")
            .env_remove("RUST_LOG");
        match &self.master_key {
            Some(key) => command.env("TOLLGATE_MASTER_KEY", key),
            None => command.env_remove("TOLLGATE_MASTER_KEY"),
        };
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`tollgate {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Runs a command that must fail; returns its one-line stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "`tollgate {}` succeeded",
            args.join(" ")
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "one error line expected, got: {stderr}");
        assert!(output.stdout.is_empty(), "nothing on stdout on failure");
        errors[0].to_owned()
    }
}

#[test]
fn token_lifecycle() {
    let env = Env::new();
    let created = env.json(&["token", "create", "--name", "ci-bot", "--json"]);
    assert_eq!(created["name"], "ci-bot");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(client_id.ends_with(".access") && client_id.len() == 32 + 7);
    assert!(secret.len() >= 40);
    assert_eq!(created["duration"], "8760h");
    assert!(created["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(Path::new(&env.dir.path().join("tollgate.db")).exists());

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
    assert_eq!(
        env.json(&["token", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn token_errors_are_one_line_and_change_nothing() {
    let env = Env::new();
    env.ok(&["token", "create", "--name", "bot"]);
    let error = env.fails(&["token", "create", "--name", "bot"]);
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(
        env.json(&["token", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Usage errors are clap's (exit 2) and also write nothing.
    let output = env.run(&["token", "create", "--name", "x", "--duration", "soon"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid duration"));
    assert_eq!(
        env.json(&["token", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let error = env.fails(&["--database", "mysql://localhost/x", "token", "list"]);
    assert!(error.contains("sqlite:"), "{error}");
    let error = env.fails(&["--database", "sqlite:///no/such/dir/t.db", "token", "list"]);
    assert!(error.contains("/no/such/dir/t.db"), "{error}");
}

#[test]
fn token_import_reads_the_secret_from_stdin_or_env() {
    use std::io::Write as _;

    let env = Env::new();
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
    assert_eq!(
        env.json(&["token", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn app_commands() {
    let env = Env::new();
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

#[test]
fn keys_rotate_and_master_key() {
    let mut env = Env::new();
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
    let plain = Env::new();
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

/// A running `tollgate serve`, killed on drop.
struct Server {
    child: Child,
    base: String,
    aud: String,
    first_token: Option<(String, String)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env, extra: &[&str]) -> Server {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = env
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Server {
        child,
        base: String::new(),
        aud: String::new(),
        first_token: None,
    };
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("serve printed its banner");
        if let Some(rest) = line.strip_prefix("tollgate: serving application") {
            server.base = rest.rsplit(' ').next().unwrap().to_owned();
            server.aud = rest.split("(AUD ").nth(1).unwrap()[..64].to_owned();
        }
        if line.trim_start().starts_with("curl -i -c") {
            let header = |name: &str| {
                let start = line.find(&format!("{name}: ")).unwrap() + name.len() + 2;
                line[start..].split('\'').next().unwrap().to_owned()
            };
            server.first_token = Some((
                header("CF-Access-Client-Id"),
                header("CF-Access-Client-Secret"),
            ));
        }
        if line.starts_with("Press Ctrl-C") {
            return server;
        }
    }
}

async fn wait_for_status(
    client: &reqwest::Client,
    url: &str,
    status: u16,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = client.get(url).send().await.unwrap().status().as_u16();
        if got == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still {got} after {within:?}, wanted {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_first_run_exchange_cookie_revocation_and_verify() {
    let env = Env::new();
    let server = serve(&env, &[]);
    let (client_id, secret) = server
        .first_token
        .clone()
        .expect("first run prints a curl command");
    assert!(server.base.starts_with("http://127.0.0.1:"));
    let url = format!("{}/", server.base);

    // The certs endpoint is public.
    let certs: Value = reqwest::get(format!("{}/cdn-cgi/access/certs", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!certs["keys"].as_array().unwrap().is_empty());

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let response = client
        .get(format!("{url}anything"))
        .header("CF-Access-Client-Id", &client_id)
        .header("CF-Access-Client-Secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let jwt = cookie
        .strip_prefix("CF_Authorization=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let identity: Value = response.json().await.unwrap();
    assert_eq!(identity["common_name"], client_id.as_str());
    assert_eq!(identity["iss"], server.base.as_str());

    // Cookie reuse: no credentials, still in.
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    // `tollgate verify` accepts the minted token against the live certs URL, and explains
    // a refusal.
    let verified = env.json(&[
        "verify",
        "--team-domain",
        &server.base,
        "--aud",
        &server.aud,
        &jwt,
    ]);
    assert_eq!(verified["common_name"], client_id.as_str());
    let error = env.fails(&[
        "verify",
        "--team-domain",
        &server.base,
        "--aud",
        &server.aud,
        "--at",
        "4000000000",
        &jwt,
    ]);
    assert!(error.contains("expired"), "{error}");
    let error = env.fails(&[
        "verify",
        "--team-domain",
        &server.base,
        "--aud",
        &"0".repeat(64),
        &jwt,
    ]);
    assert!(error.contains("audience"), "{error}");
    // Offline: keys from a saved certs document; the issuer and audience pinned.
    let certs_file = env.dir.path().join("certs.json");
    std::fs::write(&certs_file, certs.to_string()).unwrap();
    let certs_path = certs_file.display().to_string();
    let verified = env.json(&[
        "verify",
        "--team-domain",
        &server.base,
        "--aud",
        &server.aud,
        "--certs",
        &certs_path,
        &jwt,
    ]);
    assert_eq!(verified["common_name"], client_id.as_str());
    let error = env.fails(&[
        "verify",
        "--team-domain",
        "https://other.example.com",
        "--aud",
        &server.aud,
        "--certs",
        &certs_path,
        &jwt,
    ]);
    assert!(error.contains("issuer"), "{error}");
    // Unpinned, the token's own iss is never trusted to say where its keys are: a forger would
    // host their own key there. With --certs pinning the keys, its iss is accepted.
    let error = env.fails(&["verify", "--aud", &server.aud, &jwt]);
    assert!(error.contains("--team-domain"), "{error}");
    let verified = env.json(&["verify", "--aud", &server.aud, "--certs", &certs_path, &jwt]);
    assert_eq!(verified["common_name"], client_id.as_str());

    // A token created by another CLI invocation works on the running server within a second.
    let other = env.json(&["token", "create", "--name", "second", "--json"]);
    let fresh = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let status = fresh
            .get(&url)
            .header("CF-Access-Client-Id", other["client_id"].as_str().unwrap())
            .header(
                "CF-Access-Client-Secret",
                other["client_secret"].as_str().unwrap(),
            )
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "new token not honoured within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Revocation by another CLI invocation: the cookie stops working within a second.
    env.ok(&["token", "delete", &client_id]);
    let took = wait_for_status(&client, &url, 401, Duration::from_secs(1)).await;
    eprintln!("revocation honoured after {took:?}");
}

/// A fresh PostgreSQL database for one test, dropped at the end (`None`: skipped).
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(test: &str) -> Option<Self> {
        use sqlx::Connection as _;
        let Ok(admin_url) = std::env::var("TOLLGATE_TEST_POSTGRES_URL") else {
            skipped!("SKIPPED: TOLLGATE_TEST_POSTGRES_URL not set ({test} did not run)");
            return None;
        };
        let name = format!("tollgate_cli_{}_{test}", std::process::id());
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(admin) => admin,
            Err(error) => {
                skipped!("SKIPPED: PostgreSQL unreachable ({error}); {test} did not run");
                return None;
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = admin_url.split('?').next().unwrap();
        let authority = base.find("://").unwrap() + 3;
        let root = match base[authority..].find('/') {
            Some(slash) => &base[..authority + slash],
            None => base,
        };
        let url = format!("{root}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    async fn drop_database(self) {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

/// Exchanges credentials on `exchange_at`, then reuses the cookie on `reuse_at`; returns the
/// two statuses.
async fn exchange_then_reuse(
    exchange_at: &str,
    reuse_at: &str,
    id: &str,
    secret: &str,
) -> (u16, u16) {
    let client = reqwest::Client::new();
    let response = client
        .get(exchange_at)
        .header("CF-Access-Client-Id", id)
        .header("CF-Access-Client-Secret", secret)
        .send()
        .await
        .unwrap();
    let first = response.status().as_u16();
    let Some(cookie) = response.headers().get("set-cookie") else {
        return (first, 0);
    };
    let pair = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let second = client
        .get(reuse_at)
        .header("cookie", pair)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_instances_share_postgres() {
    let Some(db) = PgDatabase::create("two_instances").await else {
        return;
    };
    let mut env = Env::new();
    env.database = db.url.clone();
    // Instances behind one load balancer share one team domain (the `iss` of their tokens).
    let team = ["--team-domain", "https://team.example.com"];
    let a = serve(&env, &team);
    let b = serve(&env, &team);
    assert!(
        b.first_token.is_none(),
        "B found A's token: no second demo token"
    );
    assert_eq!(a.aud, b.aud, "one application, shared");
    let (url_a, url_b) = (format!("{}/", a.base), format!("{}/", b.base));

    // Created through the CLI (as A's operator), used on B within a second; cookies minted by
    // one instance are honoured by the other (one shared key ring).
    let token = env.json(&["token", "create", "--name", "shared", "--json"]);
    let id = token["client_id"].as_str().unwrap().to_owned();
    let secret = token["client_secret"].as_str().unwrap().to_owned();
    let start = Instant::now();
    while exchange_then_reuse(&url_b, &url_a, &id, &secret).await != (200, 200) {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B did not honour the new token within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        exchange_then_reuse(&url_a, &url_b, &id, &secret).await,
        (200, 200)
    );

    // Revoked through the CLI: B refuses within a second.
    let client = reqwest::Client::new();
    env.ok(&["token", "delete", &id]);
    let start = Instant::now();
    loop {
        let status = client
            .get(&url_b)
            .header("CF-Access-Client-Id", &id)
            .header("CF-Access-Client-Secret", &secret)
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B still accepts a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("revocation honoured by B after {:?}", start.elapsed());

    drop((a, b));
    db.drop_database().await;
}

/// `tollgate keys rotate` run while two instances serve: the new key is published at once and
/// signs only after `RotationPolicy::rotate_now_lead` (1 s), so both instances know it before any
/// token carries it and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_on_one_instance_fails_no_request_on_another() {
    let Some(db) = PgDatabase::create("rotation").await else {
        return;
    };
    let mut env = Env::new();
    env.database = db.url.clone();
    let team = ["--team-domain", "https://team.example.com"];
    let a = serve(&env, &team);
    let b = serve(&env, &team);
    let (url_a, url_b) = (format!("{}/", a.base), format!("{}/", b.base));
    let token = env.json(&["token", "create", "--name", "shared", "--json"]);
    let id = token["client_id"].as_str().unwrap().to_owned();
    let secret = token["client_secret"].as_str().unwrap().to_owned();
    let start = Instant::now();
    while exchange_then_reuse(&url_b, &url_a, &id, &secret).await != (200, 200) {
        assert!(start.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Rotate keys while both serve: no request fails.
    let hammer = {
        let (url_a, url_b, id, secret) = (url_a.clone(), url_b.clone(), id.clone(), secret.clone());
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
    let before: Value = reqwest::get(format!("{}/cdn-cgi/access/certs", a.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    env.ok(&["keys", "rotate"]);
    let outcomes = hammer.await.unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|o| **o != (200, 200)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} exchanges failed during rotation: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    let after: Value = reqwest::get(format!("{}/cdn-cgi/access/certs", b.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        before["public_cert"]["kid"], after["public_cert"]["kid"],
        "B signs with the new key"
    );

    drop((a, b));
    db.drop_database().await;
}
