//! The authentication log end to end: the real `tollgate` binary, a real `tollgate serve` on
//! 127.0.0.1:0 and a SQLite file. A mixed run (good bots, a wrong secret, an expired token, a
//! deleted token and its cookie) is explained by `tollgate logs --failed --json`, every refusal
//! with the token's name, and the counters of `/metrics` (read with a Prometheus text parser)
//! say the same; the filters select what they say; `token list --unused` finds the token
//! nobody used.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_parse::Scrape;
use serde_json::Value;
use tollgate_test::cli::CliEnv;
use tollgate_test::http::{RequestExt as _, wait_until};

fn scratch() -> CliEnv {
    CliEnv::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// `tollgate logs <args> --json`: one object per line.
fn logs(env: &CliEnv, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["logs", "--json"];
    argv.extend_from_slice(args);
    env.ok(&argv)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn created(env: &CliEnv, name: &str, duration: &str) -> (String, String) {
    let token = env.json(&[
        "token",
        "create",
        "--name",
        name,
        "--duration",
        duration,
        "--json",
    ]);
    (
        token["client_id"].as_str().unwrap().to_owned(),
        token["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_run_is_explained_by_the_log() {
    let env = scratch();
    let (good_id, good_secret) = created(&env, "good-bot", "720h");
    let (idle_id, _) = created(&env, "idle-bot", "720h");
    let (doomed_id, doomed_secret) = created(&env, "doomed-bot", "720h");
    let (short_id, short_secret) = created(&env, "short-bot", "2s");
    let mut server = env.serve(&["--log-retention", "90d", "--metrics-addr", "127.0.0.1:0"]);
    let url = server.url();
    let http = reqwest::Client::new();
    let status = |id: &str, secret: &str, request_id: &str| {
        http.get(&url)
            .credentials(id, secret)
            .header("x-request-id", request_id)
            .send_status()
    };

    for n in 0..3 {
        assert_eq!(
            status(&good_id, &good_secret, &format!("good-{n}")).await,
            200
        );
    }
    assert_eq!(status(&good_id, "not-the-secret", "wrong-1").await, 401);
    let doomed = http
        .get(&url)
        .credentials(&doomed_id, &doomed_secret)
        .reply()
        .await;
    assert_eq!(doomed.code(), 200);
    let cookie = doomed.cookie_pair().unwrap().to_owned();
    env.ok(&["token", "delete", "doomed-bot"]);
    // The server learns of the deletion within a poll; then credentials and cookie fail.
    wait_until(Duration::from_secs(10), "deletion applied", || async {
        status(&doomed_id, &doomed_secret, "deleted-1").await == 401
    })
    .await;
    let ride = http.get(&url).header("cookie", &cookie).send_status().await;
    assert_eq!(ride, 401);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(status(&short_id, &short_secret, "expired-1").await, 401);

    // The log is written in batches, every 250 ms.
    let mut failed = Vec::new();
    wait_until(Duration::from_secs(10), "refusals logged", || {
        failed = logs(&env, &["--failed"]);
        let seen = failed.iter().any(|e| e["request_id"] == "expired-1");
        async move { seen }
    })
    .await;
    for event in &failed {
        assert_eq!(event["allowed"], false);
        assert!(event["token_name"].is_string(), "unexplained: {event}");
        assert!(
            event["detail"].is_string() && event["reason"].is_string(),
            "{event}"
        );
    }
    let find = |request_id: &str| {
        failed
            .iter()
            .find(|e| e["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no refusal {request_id}: {failed:?}"))
    };
    let wrong = find("wrong-1");
    assert_eq!(
        (&wrong["token_name"], &wrong["detail"], &wrong["kind"]),
        (
            &"good-bot".into(),
            &"wrong secret".into(),
            &"exchange".into()
        )
    );
    assert_eq!(wrong["reason"], "invalid_credentials");
    assert_eq!(wrong["source_ip"], "127.0.0.1");
    assert_eq!(wrong["app"], "demo");
    assert_eq!(wrong["token_deleted"], false);
    let deleted = find("deleted-1");
    assert_eq!(deleted["token_name"], "doomed-bot");
    assert_eq!(deleted["detail"], "unknown client ID");
    assert_eq!(deleted["token_deleted"], true);
    let expired = find("expired-1");
    assert_eq!(expired["token_name"], "short-bot");
    assert_eq!(expired["detail"], "service token expired");
    let cookie_refusal = failed
        .iter()
        .find(|e| e["kind"] == "token" && e["client_id"] == doomed_id.as_str())
        .unwrap_or_else(|| panic!("the deleted token's cookie: {failed:?}"));
    assert_eq!(cookie_refusal["reason"], "revoked");
    assert_eq!(cookie_refusal["token_name"], "doomed-bot");
    assert_eq!(cookie_refusal["token_deleted"], true);
    assert_metrics_match_the_log(&http, server.metrics.as_deref().unwrap(), &env).await;
    // Never a secret in the log.
    let everything = env.ok(&["logs", "--json", "--limit", "1000"]);
    for secret in [&good_secret, &doomed_secret, &short_secret] {
        assert!(!everything.contains(secret.as_str()));
    }

    // Filters.
    let good = logs(&env, &["--client-id", &good_id]);
    assert!(good.iter().all(|e| e["client_id"] == good_id.as_str()));
    let kinds: Vec<(&str, bool)> = good
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["allowed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("admin", true),
            ("exchange", true),
            ("exchange", true),
            ("exchange", true),
            ("exchange", false)
        ],
        "oldest first: created, three exchanges, the wrong secret"
    );
    assert_eq!(good[0]["action"], "token.create");
    assert_eq!(good[0]["actor"], "cli");
    let demo = logs(&env, &["--app", "demo"]);
    assert!(!demo.is_empty() && demo.iter().all(|e| e["app"] == "demo"));
    assert!(logs(&env, &["--app", "nope"]).is_empty());
    let all = logs(&env, &["--since", "1h"]);
    assert!(all.len() > demo.len(), "admin events have no application");
    assert!(logs(&env, &["--until", "1h"]).is_empty());
    assert!(logs(&env, &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(logs(&env, &["--limit", "2"]).len(), 2);
    let admin = logs(&env, &["--kind", "admin"]);
    let actions: Vec<&str> = admin
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.create",
            "token.create",
            "token.create",
            "token.create",
            "token.delete"
        ]
    );
    // The table says the same, deleted tokens marked.
    let table = env.ok(&["logs", "--failed"]);
    assert!(table.starts_with("TIME"), "{table}");
    assert!(table.contains("doomed-bot (deleted)"), "{table}");
    assert!(table.contains("wrong secret"), "{table}");

    // An orderly stop writes the last-seen times; the idle token is the unused one.
    server.interrupt();
    let unused = env.json(&["token", "list", "--unused", "90d", "--json"]);
    let names: Vec<&str> = unused
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"idle-bot"), "{names:?}");
    assert!(!names.contains(&"good-bot"), "{names:?}");
    let recent = env.json(&["token", "list", "--json"]);
    let idle = recent
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["client_id"] == idle_id.as_str())
        .unwrap();
    assert!(idle["last_seen_at"].is_null());
}

/// `/metrics` of the listener at `metrics` (`http://ADDR`): the text, and parsed.
async fn scrape(http: &reqwest::Client, metrics: &str) -> (String, Scrape) {
    let text = http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, parsed)
}

/// The counters of `/metrics` and the log's events, grouped alike: refusals by application, kind
/// and reason; exchanges by application and result. Folded refusals count as many as they fold.
async fn assert_metrics_match_the_log(http: &reqwest::Client, metrics: &str, env: &CliEnv) {
    type Groups = BTreeMap<(String, String, String), f64>;
    let (text, scrape) = scrape(http, metrics).await;
    let counted = |name: &str, labels: [&str; 3]| -> Groups {
        let mut groups = Groups::new();
        for sample in scrape.samples.iter().filter(|s| s.metric == name) {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{name}: not a counter: {other:?}"),
            };
            let label = |l: &str| sample.labels.get(l).unwrap_or("").to_owned();
            if value > 0.0 {
                *groups
                    .entry((label(labels[0]), label(labels[1]), label(labels[2])))
                    .or_default() += value;
            }
        }
        groups
    };
    let all = logs(env, &["--limit", "1000"]);
    let text_of = |event: &Value, field: &str| event[field].as_str().unwrap_or("").to_owned();
    let mut refusals = Groups::new();
    let mut exchanges = Groups::new();
    for event in all.iter().filter(|e| e["kind"] != "admin") {
        let count = event["count"].as_f64().unwrap();
        if event["allowed"] == false {
            *refusals
                .entry((
                    text_of(event, "app"),
                    text_of(event, "kind"),
                    text_of(event, "reason"),
                ))
                .or_default() += count;
        }
        if event["kind"] == "exchange" {
            let result = if event["allowed"] == true {
                "allowed"
            } else {
                "refused"
            };
            *exchanges
                .entry((text_of(event, "app"), result.to_owned(), String::new()))
                .or_default() += count;
        }
    }
    assert!(!refusals.is_empty() && !exchanges.is_empty());
    assert_eq!(
        counted("tollgate_refusals_total", ["app", "kind", "reason"]),
        refusals,
        "/metrics against `logs --json`:\n{text}"
    );
    assert_eq!(
        counted("tollgate_exchanges_total", ["app", "result", ""]),
        exchanges,
        "/metrics against `logs --json`:\n{text}"
    );
}

#[test]
fn logs_reject_bad_times_and_kinds() {
    let env = scratch();
    let error = env.fails(&["logs", "--since", "yesterday"]);
    assert!(error.contains("RFC 3339"), "{error}");
    let error = env.fails(&["logs", "--kind", "login"]);
    assert!(error.contains("exchange, token or admin"), "{error}");
    // An empty log is an empty table, or no lines.
    assert!(env.ok(&["logs", "--json"]).is_empty());
    assert!(env.ok(&["logs"]).starts_with("TIME"));
}

#[test]
fn every_change_is_an_admin_event() {
    let env = scratch();
    env.ok(&["app", "create", "api"]);
    env.ok(&["app", "set", "api", "--session-duration", "1h"]);
    env.ok(&["token", "create", "--name", "bot"]);
    env.ok(&["token", "refresh", "bot"]);
    env.ok(&["token", "set-duration", "bot", "48h"]);
    env.ok(&["token", "rotate-secret", "bot", "--grace", "1h"]);
    env.ok(&["keys", "rotate"]);
    env.ok(&["token", "delete", "bot"]);
    env.ok(&["app", "delete", "api"]);
    let admin = logs(&env, &["--kind", "admin"]);
    let actions: Vec<&str> = admin
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "app.create",
            "app.update",
            "token.create",
            "token.refresh",
            "token.set_duration",
            "token.rotate_secret",
            "keys.rotate",
            "token.delete",
            "app.delete"
        ]
    );
    assert!(
        admin
            .iter()
            .all(|e| e["actor"] == "cli" && e["allowed"] == true)
    );
    assert_eq!(admin[0]["app"], "api");
    assert_eq!(admin[2]["token_name"], "bot");
    assert!(admin[7]["client_id"].as_str().unwrap().ends_with(".access"));
}

/// The webhook secret of the notification tests.
const WEBHOOK_SECRET: &str = "cli-webhook-secret-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_expiry_webhook_per_token_even_across_a_restart_of_serve() {
    use tollgate_test::webhook::WebhookReceiver;

    let receiver = WebhookReceiver::start(WEBHOOK_SECRET).await;
    let env = scratch();
    let (nightly, _) = created(&env, "nightly-bot", "100h");
    created(&env, "yearly-bot", "8760h");
    let flags = [
        "--notify-webhook",
        receiver.url(),
        "--notify-secret",
        WEBHOOK_SECRET,
    ];
    let mut server = env.serve(&flags);
    let got = receiver
        .wait_for_delivered(1, Duration::from_secs(20))
        .await;
    assert_eq!(got[0].kind(), "token.expiring");
    assert!(got[0].signature_ok);
    assert_eq!(got[0].json["data"]["client_id"], nightly.as_str());
    assert_eq!(got[0].json["data"]["name"], "nightly-bot");
    server.interrupt();

    // A restart: the same token, the same expiry, still within the window — no second one.
    let mut with_metrics = flags.to_vec();
    with_metrics.extend(["--metrics-addr", "127.0.0.1:0"]);
    let server = env.serve(&with_metrics);
    // While it runs, an emergency rotation from another CLI process: its new key signs after
    // the 1 s lead, and the running serve reports it.
    env.ok(&["keys", "rotate"]);
    let got = receiver
        .wait_for_delivered(2, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let kinds: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.kind().to_owned())
        .collect();
    assert_eq!(kinds, ["token.expiring", "key.rotated"], "{got:?}");
    // This instance delivered the rotation, and says so on /metrics.
    let (_, scrape) = scrape(&reqwest::Client::new(), server.metrics.as_ref().unwrap()).await;
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(value("tollgate_notifications_delivered_total"), Some(1.0));
    assert_eq!(value("tollgate_notifications_given_up_total"), Some(0.0));
}

#[test]
fn webhooks_without_a_secret_are_refused_before_anything_is_opened() {
    let env = scratch();
    let error = env.fails(&["serve", "--notify-webhook", "https://hooks.example.com/x"]);
    assert!(error.contains("--notify-secret"), "{error}");
    let error = env.fails(&[
        "serve",
        "--notify-webhook",
        "ftp://hooks.example.com/x",
        "--notify-secret",
        WEBHOOK_SECRET,
    ]);
    assert!(error.contains("http"), "{error}");
    assert!(!error.contains(WEBHOOK_SECRET), "{error}");
    assert!(
        !env.dir().join("tollgate.db").exists(),
        "no store was created"
    );
}
