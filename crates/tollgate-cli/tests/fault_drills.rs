//! Fault drills against the real `tollgate` binary (issue 11, part 5):
//!
//! - PostgreSQL stopped (`-m fast`, then `-m immediate`) and started again under a running
//!   `tollgate serve` that takes exchange and token-reuse traffic all along: authentication keeps
//!   working from the in-memory snapshot, CLI writes fail with a clear one-line error, and after
//!   the restart writes succeed and `serve` picks them (and its own last-use writes) up without
//!   being restarted. It runs on a throwaway server of its own (`initdb` in a temp dir), never
//!   on the shared one.
//! - `kill -9` of concurrent CLI writers, at random moments, round after round, on one SQLite
//!   file: afterwards the file passes `PRAGMA integrity_check`, every row is whole, every write
//!   a process reported done is there, and `serve` starts on it.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tollgate_test::cli::{CliEnv, ServeProcess};
use tollgate_test::http::{RequestExt as _, wait_until};
use tollgate_test::pg_cluster::{PgCluster, StopMode};

fn scratch() -> CliEnv {
    CliEnv::new(env!("CARGO_BIN_EXE_tollgate"))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs a blocking CLI call from inside the async drill without stalling the traffic task.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

// ---------------------------------------------------------------------------------------------
// Drill 1: PostgreSQL stopped and restarted under traffic.
// ---------------------------------------------------------------------------------------------

/// One request of the traffic loop and its status (0: no answer at all).
#[derive(Debug, Clone)]
struct Outcome {
    at: Instant,
    what: &'static str,
    status: u16,
}

/// Exchange and token-reuse requests against `serve`, one round every 10 ms, until stopped.
#[derive(Debug)]
struct Traffic {
    stop: Arc<AtomicBool>,
    /// When set, every round also exchanges the second token's credentials.
    second: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(url: String, first: (String, String), second: (String, String)) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let use_second = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (stop, use_second, outcomes) = (stop.clone(), use_second.clone(), outcomes.clone());
            async move {
                let client = reqwest::Client::new();
                let record = |what, status| {
                    outcomes.lock().unwrap().push(Outcome {
                        at: Instant::now(),
                        what,
                        status,
                    });
                };
                let status = |r: Result<reqwest::Response, reqwest::Error>| {
                    r.map_or(0, |r| r.status().as_u16())
                };
                // A token minted before any outage: the verified-token cache answers for it.
                let mut long_lived: Option<String> = None;
                while !stop.load(Ordering::SeqCst) {
                    let exchange = client.get(&url).credentials(&first.0, &first.1).send();
                    let (code, jwt) = match exchange.await {
                        Ok(response) => {
                            let code = response.status().as_u16();
                            let jwt = response
                                .headers()
                                .get("set-cookie")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|c| c.split(';').next())
                                .and_then(|p| p.strip_prefix("CF_Authorization="))
                                .map(str::to_owned);
                            (code, jwt)
                        }
                        Err(_) => (0, None),
                    };
                    record("exchange", code);
                    if let Some(jwt) = jwt {
                        let cookie = format!("CF_Authorization={jwt}");
                        record(
                            "cookie reuse",
                            status(client.get(&url).header("cookie", cookie).send().await),
                        );
                        record(
                            "cf-access-token reuse",
                            status(client.get(&url).access_token(&jwt).send().await),
                        );
                        long_lived.get_or_insert(jwt);
                    }
                    if let Some(jwt) = &long_lived {
                        let cookie = format!("CF_Authorization={jwt}");
                        record(
                            "first cookie reuse",
                            status(client.get(&url).header("cookie", cookie).send().await),
                        );
                    }
                    if use_second.load(Ordering::SeqCst) {
                        let exchange = client.get(&url).credentials(&second.0, &second.1);
                        record("second token exchange", status(exchange.send().await));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Self {
            stop,
            second: use_second,
            outcomes,
            task,
        }
    }

    /// Asserts that every request since `since` succeeded, and that there were at least
    /// `min_rounds` exchanges; returns how many requests that was.
    fn all_ok_since(&self, since: Instant, phase: &str, min_rounds: usize) -> usize {
        let outcomes: Vec<Outcome> = self
            .outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.at >= since)
            .cloned()
            .collect();
        let failed: Vec<_> = outcomes.iter().filter(|o| o.status != 200).collect();
        assert!(
            failed.is_empty(),
            "{phase}: {} of {} requests failed, first: {:?}",
            failed.len(),
            outcomes.len(),
            failed.first()
        );
        let exchanges = outcomes.iter().filter(|o| o.what == "exchange").count();
        assert!(
            exchanges >= min_rounds,
            "{phase}: only {exchanges} exchanges were made"
        );
        for kind in [
            "cookie reuse",
            "cf-access-token reuse",
            "first cookie reuse",
        ] {
            assert!(
                outcomes.iter().any(|o| o.what == kind),
                "{phase}: no {kind} request was made"
            );
        }
        outcomes.len()
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
    }
}

/// `tollgate token create --name <name> --json`: the new token's client ID and secret.
fn create_token(env: &CliEnv, name: &str) -> (String, String) {
    let token = env.json(&["token", "create", "--name", name, "--json"]);
    let field = |name: &str| token[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// A write while the database is down: refused on one clear line naming the database, with no
/// panic, no backtrace and no password.
fn write_fails_clearly(env: &CliEnv, pg: &PgCluster, password: &str, name: &str) {
    let started = Instant::now();
    let output = env.run(&["token", "create", "--name", name, "--json"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "a write succeeded with PostgreSQL down"
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {output:?}");
    let line = env.fails(&["token", "create", "--name", name]);
    let target = format!("cannot connect to PostgreSQL at 127.0.0.1:{}", pg.port());
    assert!(line.starts_with("tollgate: error: "), "{line}");
    assert!(
        line.contains(&target),
        "the message names the database: {line}"
    );
    for leak in [password, "panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(leak), "{leak:?} in: {stderr}");
    }
    assert!(
        took < Duration::from_secs(6),
        "the write took {took:?} to fail"
    );
    eprintln!("write with PostgreSQL down failed after {took:?}: {line}");
}

/// How soon after a restart `serve` must honour a token created then.
const RELOAD_BOUND: Duration = Duration::from_secs(7);

/// After a restart: a CLI write succeeds, and the running `serve` honours the token it created
/// (reloading through its own reconnected pool). Returns how long `serve` took.
async fn write_recovers(env: &CliEnv, server: &ServeProcess, name: &str) -> Duration {
    let (id, secret) = blocking(|| create_token(env, name));
    let client = reqwest::Client::new();
    let url = server.url();
    let start = Instant::now();
    loop {
        let status = client
            .get(&url)
            .credentials(&id, &secret)
            .send_status()
            .await;
        if status == 200 {
            break;
        }
        // Each refusal counts as a failed exchange: polling faster than the throttle allows
        // (30 a minute per client ID) would lock the new token out for a minute.
        assert_eq!(status, 401, "{name}: refused with {status}");
        let log = std::fs::read_to_string(env.dir().join("serve.log")).unwrap_or_default();
        assert!(
            start.elapsed() < RELOAD_BOUND,
            "serve did not honour a token created after the restart within {RELOAD_BOUND:?}; \
             its log: {log}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let took = start.elapsed();
    eprintln!("token {name:?} created after the restart honoured by serve after {took:?}");
    took
}

/// The `last_seen_at` (unix seconds) of `client_id` in `token list --json`.
fn last_seen(env: &CliEnv, client_id: &str) -> Option<i64> {
    let tokens = env.json(&["token", "list", "--json"]);
    let token = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["client_id"] == client_id)
        .unwrap()
        .clone();
    token["last_seen_at"].as_str().map(parse_rfc3339)
}

/// `YYYY-MM-DDTHH:MM:SSZ` to unix seconds.
fn parse_rfc3339(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (y, m, d) = (number(0..4), number(5..7), number(8..10));
    let (hh, mm, ss) = (number(11..13), number(14..16), number(17..19));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn postgres_stopped_and_restarted_under_traffic() {
    let Some(pg) = blocking(|| PgCluster::start("the PostgreSQL restart drill")) else {
        return;
    };
    let drill = Instant::now();
    // Trust authentication never asks for it, so the password must never show up anywhere.
    let password = "drill-password-never-printed";
    let mut env = scratch();
    env.database = format!(
        "postgres://postgres:{password}@127.0.0.1:{}/postgres",
        pg.port()
    );
    let mut server = blocking(|| env.serve_logged(&[], "serve.log"));
    let serve_started = Instant::now();
    let first = server
        .first_token
        .clone()
        .expect("first run prints a demo token");
    // A token used only while the database is down: its last use can only reach the store
    // through a background write after the restart.
    let second = blocking(|| create_token(&env, "used-only-during-outage"));
    // Several polls (250 ms each) for serve to load it without using it.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let traffic = Traffic::start(server.url(), first.clone(), second.clone());
    let before = Instant::now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    traffic.all_ok_since(before, "before the outage", 5);

    // Outage 1: a clean (`-m fast`) shutdown, long enough that serve's 10 s last-use flush
    // falls due while the database is gone.
    blocking(|| pg.stop(StopMode::Fast));
    let outage = Instant::now();
    let outage_unix = unix_now();
    traffic.second.store(true, Ordering::SeqCst);
    blocking(|| write_fails_clearly(&env, &pg, password, "during-outage"));
    let line = blocking(|| env.fails(&["token", "list"]));
    assert!(line.contains("cannot connect to PostgreSQL"), "{line}");
    let flush_due = serve_started + Duration::from_secs(11);
    let until = flush_due.max(outage + Duration::from_secs(2));
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    traffic.second.store(false, Ordering::SeqCst);
    let during = traffic.all_ok_since(outage, "PostgreSQL stopped (-m fast)", 20);
    assert!(
        server.is_running(),
        "serve exited while PostgreSQL was down"
    );
    assert!(
        traffic
            .outcomes
            .lock()
            .unwrap()
            .iter()
            .any(|o| o.at >= outage && o.what == "second token exchange"),
        "the second token was used during the outage"
    );
    eprintln!(
        "{during} requests, all 200, during a {:?} outage",
        outage.elapsed()
    );

    blocking(|| pg.restart());
    let restarted_unix = unix_now();
    let reconnect_fast = write_recovers(&env, &server, "after-fast-restart").await;
    // The last uses recorded while the store was down are written once it is back.
    let second_seen = {
        let mut seen = None;
        wait_until(
            Duration::from_secs(15),
            "last use of a token used during the outage never reached the store",
            || {
                seen = blocking(|| last_seen(&env, &second.0));
                std::future::ready(seen.is_some())
            },
        )
        .await;
        seen.unwrap()
    };
    assert!(
        (outage_unix..=restarted_unix).contains(&second_seen),
        "last use {second_seen} lies in the outage {outage_unix}..={restarted_unix}"
    );
    let first_seen = blocking(|| last_seen(&env, &first.0)).unwrap();
    assert!(
        first_seen >= outage_unix,
        "the demo token's last use moved on"
    );

    // Outage 2: every server process killed at once (`-m immediate`); the restart recovers.
    blocking(|| pg.stop(StopMode::Immediate));
    let outage = Instant::now();
    blocking(|| write_fails_clearly(&env, &pg, password, "during-crash"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    traffic.all_ok_since(outage, "PostgreSQL killed (-m immediate)", 10);
    blocking(|| pg.restart());
    let reconnect_immediate = write_recovers(&env, &server, "after-immediate-restart").await;

    let after = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    traffic.all_ok_since(after, "after both restarts", 5);
    traffic.stop().await;
    assert!(server.is_running(), "serve is still up");
    assert_eq!(
        blocking(|| env.count(&["token", "list", "--json"])),
        4,
        "demo, used-only-during-outage and one per restart; nothing from the outages"
    );

    let log = std::fs::read_to_string(env.dir().join("serve.log")).unwrap();
    assert!(
        log.contains("serving the last snapshot"),
        "serve said it kept serving from its snapshot: {log}"
    );
    for leak in [password, first.1.as_str(), second.1.as_str(), "panicked"] {
        assert!(!log.contains(leak), "{leak:?} in serve's log");
    }
    eprintln!(
        "PostgreSQL drill: serve honoured new tokens {reconnect_fast:?} after the fast restart \
         and {reconnect_immediate:?} after the immediate one; whole drill {:?}",
        drill.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Drill 2: kill -9 of concurrent CLI writers on one SQLite file.
// ---------------------------------------------------------------------------------------------

/// xorshift64*: enough randomness for kill timings, reproducible from the printed seed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    /// Seeded from `TOLLGATE_DRILL_SEED`, else from the clock.
    fn new() -> Self {
        let seed = std::env::var("TOLLGATE_DRILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("kill -9 drill: TOLLGATE_DRILL_SEED={seed}");
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

/// What one writer process was asked to do, for the bookkeeping after it ends.
#[derive(Debug, Clone)]
enum Write {
    CreateToken,
    RefreshToken,
    SetDuration,
    RotateSecret(String),
    DeleteToken(String),
    CreateApp(String),
    SetApp,
    DeleteApp(String),
    RotateKeys,
}

/// A random CLI write; `targets` are client IDs the burst may change.
fn random_write(
    rng: &mut Rng,
    name: &str,
    targets: &[String],
    apps: &[String],
) -> (Write, Vec<String>) {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let target = rng.pick(targets).cloned();
    let app = rng.pick(apps).cloned();
    let roll = rng.below(100);
    match (roll, target, app) {
        (0..30, _, _) | (_, None, _) => {
            let duration = ["8760h", "720h", "forever"][rng.below(3) as usize];
            let args = [
                "token",
                "create",
                "--name",
                name,
                "--duration",
                duration,
                "--json",
            ];
            (Write::CreateToken, owned(&args))
        }
        (30..45, Some(id), _) => (Write::RefreshToken, owned(&["token", "refresh", &id])),
        (45..55, Some(id), _) => {
            let duration = ["720h", "forever"][rng.below(2) as usize];
            let args = ["token", "set-duration", &id, duration];
            (Write::SetDuration, owned(&args))
        }
        (55..65, Some(id), _) => {
            let grace = ["1h", "0"][rng.below(2) as usize];
            let args = owned(&["token", "rotate-secret", &id, "--grace", grace, "--json"]);
            (Write::RotateSecret(id), args)
        }
        (65..80, Some(id), _) => (
            Write::DeleteToken(id.clone()),
            owned(&["token", "delete", &id]),
        ),
        (80..86, _, _) => (
            Write::CreateApp(name.to_owned()),
            owned(&["app", "create", name, "--session-duration", "1h"]),
        ),
        (86..91, _, _) => (
            Write::SetApp,
            owned(&["app", "set", "demo", "--session-duration", "2h"]),
        ),
        (91..94, _, Some(app)) => (
            Write::DeleteApp(app.clone()),
            owned(&["app", "delete", &app]),
        ),
        _ => (Write::RotateKeys, owned(&["keys", "rotate"])),
    }
}

/// What the burst knows for certain about the store it wrote to.
#[derive(Debug, Default)]
struct Ledger {
    /// Tokens that must exist: created with a reported success, never the target of a delete.
    tokens: BTreeMap<String, (String, Option<String>)>,
    /// Tokens whose delete reported success.
    deleted: BTreeSet<String>,
    /// Names of every token a create was attempted for.
    attempted_names: BTreeSet<String>,
    /// Applications created with a reported success and never the target of a delete.
    apps: BTreeSet<String>,
    /// Writes that reported success.
    acknowledged: u64,
    /// Whether a `keys rotate` reported success (the one-shot commands create no key otherwise).
    rotated: bool,
    killed: usize,
    completed: usize,
    /// Errors of writers that ended on their own with a failure (e.g. a token another writer
    /// deleted first).
    errors: BTreeSet<String>,
}

impl Ledger {
    fn targets(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }

    fn record(&mut self, write: &Write, name: &str, child: Child) {
        use std::os::unix::process::ExitStatusExt as _;
        let output = child.wait_with_output().unwrap();
        // A target of a delete may be gone, whatever the writer managed to say.
        match write {
            Write::DeleteToken(id) => {
                self.tokens.remove(id);
            }
            Write::DeleteApp(app) => {
                self.apps.remove(app);
            }
            // Its secret is no longer the one we know.
            Write::RotateSecret(id) => {
                if let Some(token) = self.tokens.get_mut(id) {
                    token.1 = None;
                }
            }
            _ => {}
        }
        if output.status.signal() == Some(9) {
            self.killed += 1;
            return;
        }
        self.completed += 1;
        let stderr = String::from_utf8_lossy(&output.stderr);
        for bad in ["panicked", "corrupt", "malformed"] {
            assert!(!stderr.contains(bad), "{write:?}: {stderr}");
        }
        if !output.status.success() {
            let line = stderr.lines().find(|l| l.contains("error")).unwrap_or("");
            assert!(line.starts_with("tollgate: error: "), "{write:?}: {stderr}");
            // Strip the IDs so that the distinct kinds of error remain.
            let kind: Vec<&str> = line
                .split_whitespace()
                .map(|word| {
                    if word.contains(".access") {
                        "<id>"
                    } else {
                        word
                    }
                })
                .collect();
            self.errors.insert(kind.join(" "));
            return;
        }
        self.acknowledged += 1;
        match write {
            Write::RotateKeys => self.rotated = true,
            Write::CreateToken => {
                let token: Value = serde_json::from_slice(&output.stdout).unwrap();
                let id = token["client_id"].as_str().unwrap().to_owned();
                let secret = token["client_secret"].as_str().unwrap().to_owned();
                self.tokens.insert(id, (name.to_owned(), Some(secret)));
            }
            Write::DeleteToken(id) => {
                self.deleted.insert(id.clone());
            }
            Write::CreateApp(app) => {
                self.apps.insert(app.clone());
            }
            _ => {}
        }
    }
}

/// Runs one round: `writers` random writes at once, most of them killed with SIGKILL at a
/// random moment within `window` of their start.
fn burst_round(
    env: &CliEnv,
    rng: &mut Rng,
    ledger: &mut Ledger,
    round: usize,
    writers: usize,
    window: Duration,
) {
    let apps: Vec<String> = ledger.apps.iter().cloned().collect();
    let targets = ledger.targets();
    let mut running: Vec<(Write, String, Child, Option<Duration>)> = (0..writers)
        .map(|i| {
            let name = format!("burst-{round}-{i}");
            let (write, args) = random_write(rng, &name, &targets, &apps);
            if matches!(write, Write::CreateToken) {
                ledger.attempted_names.insert(name.clone());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = env
                .command(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // One in five runs to its end; the others die at a random moment.
            let kill_at = (rng.below(5) != 0)
                .then(|| Duration::from_micros(rng.below(window.as_micros() as u64)));
            (write, name, child, kill_at)
        })
        .collect();
    let start = Instant::now();
    let mut order: Vec<usize> = (0..running.len()).collect();
    order.sort_by_key(|&i| running[i].3);
    for i in order {
        let Some(at) = running[i].3 else { continue };
        std::thread::sleep(at.saturating_sub(start.elapsed()));
        let child = &mut running[i].2;
        if matches!(child.try_wait(), Ok(None)) {
            child.kill().unwrap();
        }
    }
    for (write, name, child, _) in running {
        ledger.record(&write, &name, child);
    }
}

/// The checks SQLite itself can make, and the rows' own promises, straight from the file.
async fn check_file(path: &std::path::Path) -> (i64, i64, i64) {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
    let dangling: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(dangling.is_empty(), "foreign keys: {dangling:?}");
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM service_tokens WHERE length(secret_hash) != 32 \
             OR (previous_secret_hash IS NULL) != (previous_secret_expires_at IS NULL) \
             OR (expires_at IS NULL) != (duration_seconds IS NULL) \
             OR updated_at < created_at OR client_id NOT LIKE '%.access'"
        )
        .await,
        0,
        "half-written or inconsistent service-token rows"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM application_policies \
             WHERE policy NOT IN (SELECT id FROM access_policies) \
             OR application NOT IN (SELECT id FROM applications)"
        )
        .await,
        0,
        "policy links naming a missing policy or application"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM access_policies WHERE application IS NOT NULL \
             AND (application NOT IN (SELECT id FROM applications) \
             OR id NOT IN (SELECT policy FROM application_policies))"
        )
        .await,
        0,
        "scoped policies of no application, or not linked to theirs"
    );
    assert_eq!(count("SELECT COUNT(*) FROM tollgate_meta").await, 1);
    let keys = count("SELECT COUNT(*) FROM signing_keys").await;
    let revision = count("SELECT revision FROM tollgate_meta").await;
    let tokens = count("SELECT COUNT(*) FROM service_tokens").await;
    pool.close().await;
    (revision, tokens, keys)
}

#[test]
fn kill_9_of_concurrent_writers_leaves_sqlite_consistent() {
    const ROUNDS: usize = 24;
    const WRITERS: usize = 4;
    let drill = Instant::now();
    let env = scratch();
    let mut rng = Rng::new();
    let mut ledger = Ledger::default();
    env.ok(&["app", "create", "demo"]);
    ledger.apps.insert("demo".to_owned());
    // The token checked at the end; no writer ever targets it.
    let keeper = create_token(&env, "keeper");
    // How long one write takes here: kills land anywhere from before the store is opened to
    // after the commit.
    let timed = Instant::now();
    for i in 0..3 {
        let (id, secret) = create_token(&env, &format!("seed-{i}"));
        ledger
            .tokens
            .insert(id, (format!("seed-{i}"), Some(secret)));
        ledger.acknowledged += 1;
    }
    let one_write = timed.elapsed() / 3;
    let window = one_write * 2;
    for round in 0..ROUNDS {
        burst_round(&env, &mut rng, &mut ledger, round, WRITERS, window);
    }
    eprintln!(
        "kill -9 drill: {ROUNDS} rounds of {WRITERS} writers (one write ≈ {one_write:?}, kills \
         within {window:?}): {} killed, {} ended on their own ({} acknowledged writes); \
         errors seen: {:?}",
        ledger.killed, ledger.completed, ledger.acknowledged, ledger.errors
    );
    assert!(ledger.killed > ROUNDS / 2, "many writers were killed");

    let path = env.dir().join("tollgate.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (revision, rows, keys) = runtime.block_on(check_file(&path));
    // Every acknowledged write bumped the revision (the seeds and the keeper's too).
    assert!(
        revision as u64 >= ledger.acknowledged + 2,
        "revision {revision} < {} acknowledged writes",
        ledger.acknowledged + 2
    );

    // The CLI reads it all back.
    let listed = env.json(&["token", "list", "--json"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len() as i64, rows, "token list shows every row");
    let listed_ids: BTreeSet<&str> = listed
        .iter()
        .map(|t| t["client_id"].as_str().unwrap())
        .collect();
    for token in listed {
        let name = token["name"].as_str().unwrap();
        assert!(
            name == "keeper" || name.starts_with("seed-") || ledger.attempted_names.contains(name),
            "a token nobody created: {token}"
        );
    }
    for (id, (name, _)) in &ledger.tokens {
        assert!(
            listed_ids.contains(id.as_str()),
            "acknowledged token {name} lost"
        );
    }
    for id in &ledger.deleted {
        assert!(
            !listed_ids.contains(id.as_str()),
            "deleted token {id} is back"
        );
    }
    assert!(listed_ids.contains(keeper.0.as_str()));
    assert_eq!(env.count(&["keys", "list", "--json"]) as i64, keys);
    assert!(
        !ledger.rotated || keys >= 1,
        "an acknowledged rotation left no key"
    );
    let app_names: BTreeSet<String> = env
        .json(&["app", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    for app in &ledger.apps {
        assert!(
            app_names.contains(app),
            "acknowledged application {app} lost"
        );
    }

    // `serve` starts on the file, and the acknowledged secrets still work.
    let server = env.serve(&[]);
    assert!(server.first_token.is_none(), "tokens exist: no demo token");
    let mut known: Vec<(String, String)> = ledger
        .tokens
        .iter()
        .filter_map(|(id, (_, secret))| Some((id.clone(), secret.clone()?)))
        .collect();
    known.push(keeper);
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for (id, secret) in &known {
            let reply = client
                .get(server.url())
                .credentials(id, secret)
                .reply()
                .await;
            assert_eq!(reply.code(), 200, "exchange with {id}: {}", reply.text);
            let jwt = reply.cookie_token().unwrap();
            let reuse = client.get(server.url()).access_token(jwt).send_status();
            assert_eq!(reuse.await, 200);
        }
    });
    eprintln!(
        "kill -9 drill: {} tokens, {} exchanged after the burst; whole drill {:?}",
        rows,
        known.len(),
        drill.elapsed()
    );
}
