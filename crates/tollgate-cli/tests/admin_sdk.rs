//! The admin API driven by a client someone else wrote: Cloudflare's Python SDK (`cloudflare`
//! 5.9.0, from the test venv) against a real `tollgate serve --admin-addr` on 127.0.0.1:0 and a
//! SQLite file. The script (`tollgate-test/origins/cloudflare_sdk.py`) creates, lists over
//! several pages, refreshes, rotates (with and without grace, and by a version bump),
//! disables, deletes, is refused with the field named, and rotates keys; creates a reusable
//! policy admitting one token and not another, an application using it, rotates the token the
//! Terraform way (new token, policy moved, old one deleted — refused while named), adds and
//! removes an application-scoped bypass policy; after each change it asks the public listener
//! whether the bot gets in. Then the audit log names the API token.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;
use tollgate_test::cli::{CliEnv, ServeProcess};
use tollgate_test::origins::{cloudflare_sdk_node, cloudflare_sdk_python};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tollgate-test/origins/cloudflare_sdk.py"
);
const NODE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tollgate-test/origins/cloudflare-node/sdk.cjs"
);

/// Takes the variables the SDKs read off a command: a stray one (`CLOUDFLARE_EMAIL` above all)
/// changes what they send.
trait WithoutCloudflareEnv {
    fn env_clear_cloudflare(&mut self) -> &mut Self;
}

impl WithoutCloudflareEnv for Command {
    fn env_clear_cloudflare(&mut self) -> &mut Self {
        for name in [
            "CLOUDFLARE_EMAIL",
            "CLOUDFLARE_API_KEY",
            "CLOUDFLARE_API_TOKEN",
            "CLOUDFLARE_BASE_URL",
        ] {
            self.env_remove(name);
        }
        self
    }
}

fn api_token(env: &CliEnv, name: &str, read_only: bool) -> String {
    let mut args = vec!["api-token", "create", "--name", name, "--json"];
    if read_only {
        args.push("--read-only");
    }
    env.json(&args)["token"].as_str().unwrap().to_owned()
}

/// Runs the Python SDK script against the admin API of `admin` (a serve started with
/// `--admin-addr`), checking exchanges at `public` (the same instance, or another sharing the
/// store); then checks its report and the audit log.
fn run_python_sdk(python: &std::path::Path, env: &CliEnv, admin: &ServeProcess, public: &str) {
    let token = api_token(env, "sdk-admin", false);
    let read_token = api_token(env, "sdk-reader", true);
    let (admin_url, account) = admin.admin.clone().expect("the banner names the admin API");
    let output = Command::new(python)
        .arg(SCRIPT)
        .args(["--admin", &admin_url, "--account", &account])
        .args(["--token", &token, "--read-token", &read_token])
        .args(["--public", public])
        .env_clear_cloudflare()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // The demo token, ci-bot's 24 siblings and ci-bot itself.
    assert_eq!(report["listed"], 26);
    assert_eq!(report["kids"], 2, "the rotated-out key stays published");

    // Every change is in the authentication log under the API token's name; reads are not.
    let audit: Vec<Value> = env
        .ok(&["logs", "--kind", "admin", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|event: &Value| {
            event["actor"]
                .as_str()
                .unwrap()
                .starts_with("api-token:sdk-admin ")
        })
        .collect();
    let count = |action: &str| audit.iter().filter(|e| e["action"] == action).count();
    assert_eq!(
        count("token.create"),
        29,
        "ci-bot, 24 bulk, one duplicate, app-bot, stranger, app-bot-v2"
    );
    assert_eq!(count("token.rotate"), 3, "two rotates and a version bump");
    assert_eq!(count("token.refresh"), 1);
    assert_eq!(count("token.update"), 3, "a duration and disable/enable");
    assert_eq!(count("token.delete"), 3, "the duplicate, ci-bot, app-bot");
    assert_eq!(count("policy.create"), 1);
    assert_eq!(count("policy.update"), 2, "the rotation's two moves");
    assert_eq!(count("policy.delete"), 1);
    assert_eq!(count("keys.rotate"), 1);
    assert_eq!(count("keys.update"), 2, "to 30 days and back to 42");
    for action in [
        "app.create",
        "app.update",
        "app.revoke_tokens",
        "app.delete",
        "app.policy.create",
        "app.policy.delete",
    ] {
        assert_eq!(count(action), 1, "{action}");
    }
    assert!(
        audit.iter().all(|e| !e.to_string().contains(&token)),
        "no API token in the log"
    );
}

#[test]
fn cloudflares_python_sdk_manages_tokens_apps_policies_and_keys() {
    let Some(python) = cloudflare_sdk_python() else {
        return;
    };
    let env = CliEnv::new(env!("CARGO_BIN_EXE_tollgate"));
    let server = env.serve(&["--admin-addr", "127.0.0.1:0"]);
    run_python_sdk(&python, &env, &server, &server.url());
}

/// The same SDK run with the admin API on instance A and every exchange on instance B, both
/// serving one PostgreSQL database: what the SDK creates, disables, deletes, revokes or leaves
/// out of a policy through A is honoured by B within a second (the script waits at most that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_on_one_instance_governs_another_sharing_postgres() {
    let Some(python) = cloudflare_sdk_python() else {
        return;
    };
    tollgate_test::postgres::with_database("admin_sdk::two_instances", |database| async move {
        tokio::task::spawn_blocking(move || {
            let mut env = CliEnv::new(env!("CARGO_BIN_EXE_tollgate"));
            env.database = database;
            let team = ["--team-domain", "https://team.example.com"];
            let a = env.serve(&[team[0], team[1], "--admin-addr", "127.0.0.1:0"]);
            let b = env.serve(&team);
            run_python_sdk(&python, &env, &a, &b.url());
        })
        .await
        .unwrap();
    })
    .await;
}

/// Cloudflare's TypeScript SDK (npm `cloudflare` 7.3.0, from scripts/test-deps.sh) against a real
/// `tollgate serve --admin-addr`: tokens created, paged through, rotated with grace; a reusable
/// policy and an application linking it, an application-scoped policy; a token a policy names
/// refused deletion with 12139; keys and the access-request log read; exchanges on the public
/// listener following each change.
#[test]
fn cloudflares_typescript_sdk_manages_tokens_apps_and_policies() {
    let Some((node, modules)) = cloudflare_sdk_node() else {
        return;
    };
    let env = CliEnv::new(env!("CARGO_BIN_EXE_tollgate"));
    let token = api_token(&env, "ts-admin", false);
    let server = env.serve(&["--admin-addr", "127.0.0.1:0"]);
    let (admin, account) = server
        .admin
        .clone()
        .expect("the banner names the admin API");
    let output = Command::new(node)
        .arg(NODE_SCRIPT)
        .args(["--admin", &admin, "--account", &account, "--token", &token])
        .args(["--public", &server.url()])
        .env("NODE_PATH", &modules)
        .env_clear_cloudflare()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // The demo token, ts-bot and its 6 siblings.
    assert_eq!(report["listed"], 8);
}
