//! `tollgate-load`: bare axum, a `from_fn` no-op, hand-written baselines and tollgate's layers
//! in one binary, loaded side by side on loopback — the server runtime pinned to one core, the
//! load to the other — in interleaved rounds, with per-round ratios and their medians.
//!
//! ```sh
//! cargo run --release -p tollgate-load                    # the comparison (about 3 minutes)
//! cargo run --release -p tollgate-load -- --rounds 3 --seconds 2
//! cargo run --release -p tollgate-load -- memory          # 1 M distinct tokens through the cache
//! cargo run --release -p tollgate-load -- gateway         # an origin direct, behind nginx, behind tollgate
//! cargo run --release -p tollgate-load -- admin           # admin API calls with 1,000 tokens
//! valgrind --tool=callgrind target/release/tollgate-load profile --variant hit
//! ```

mod admin;
mod client;
mod cpu;
mod gateway;
mod logged;
mod memory;
mod profile;
mod tokens;
mod variants;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::tokens::Fixture;
use crate::variants::{Inputs, Variant};

/// mimalloc rather than glibc's malloc, as `tollgate serve` runs: the gateway allocates and frees a few dozen small
/// blocks per request, and glibc's consolidation showed up in its profile (about 3 % of the
/// proxy's CPU per request in `tollgate-load gateway`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Loopback load runner: tollgate's layers against bare axum, side by side")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Rounds; every variant runs once per round, in a rotated order.
    #[arg(long, default_value_t = 5, global = true)]
    rounds: usize,
    /// Seconds of load per variant per round.
    #[arg(long, default_value_t = 3.0, global = true)]
    seconds: f64,
    /// Seconds of unmeasured load before each measurement.
    #[arg(long, default_value_t = 0.5, global = true)]
    warmup: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32, global = true)]
    connections: usize,
    /// Only variants whose name contains this (bare axum always runs).
    #[arg(long)]
    only: Option<String>,
    /// Distinct tokens the flood variants cycle through.
    #[arg(long, default_value_t = 8192)]
    flood_tokens: usize,
    /// Verified-token cache capacity of the "cache full" flood variant.
    #[arg(long, default_value_t = 2048)]
    flood_capacity: usize,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Feeds distinct valid tokens (ES256, cheap to sign) through one verifier and reports
    /// resident memory and the cost per token, cache off against cache at capacity.
    Memory {
        /// Distinct tokens.
        #[arg(long, default_value_t = 1_000_000)]
        tokens: usize,
        /// Cache capacity (the default verifier's is 10,000).
        #[arg(long, default_value_t = 10_000)]
        capacity: usize,
    },
    /// Calls one variant's service directly, without sockets, for callgrind.
    Profile {
        /// bare, hit, miss (VerifyLayer) or cookie (ExchangeLayer, cookie reuse).
        #[arg(long, default_value = "hit")]
        variant: String,
        /// Requests to make.
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
    },
    /// A hello-world origin reached directly, through nginx as a plain reverse proxy and
    /// through tollgate's gateway riding a cookie: req/s, p50/p99 latency, origin and proxy
    /// CPU per request (takes --rounds, --seconds, --warmup, --connections).
    Gateway,
    /// Admin API calls with 1,000 service tokens in a SQLite store, and in PostgreSQL when
    /// TOLLGATE_TEST_POSTGRES_URL names a server: p50/p99 per call (takes --rounds, --seconds).
    Admin {
        /// Service tokens in the store.
        #[arg(long, default_value_t = 1000)]
        tokens: usize,
    },
}

fn main() {
    let args = Args::parse();
    match &args.command {
        Some(Command::Memory { tokens, capacity }) => return memory::run(*tokens, *capacity),
        Some(Command::Profile { variant, requests }) => return profile::run(variant, *requests),
        Some(Command::Gateway) => {
            return gateway::run(gateway::Load {
                rounds: args.rounds,
                seconds: args.seconds,
                warmup: args.warmup,
                connections: args.connections,
            });
        }
        Some(Command::Admin { tokens }) => return admin::run(*tokens, args.rounds, args.seconds),
        None => {}
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.len() < 2 {
        eprintln!("warning: fewer than two cores visible; server and load share one");
    }
    let (server_core, load_core) = (cores.first().copied(), cores.get(1).copied());

    let fixture = Arc::new(Fixture::load());
    let inputs = Inputs {
        user_token: fixture.user_token(0),
        flood: sign_flood(&fixture, args.flood_tokens),
        flood_capacity: args.flood_capacity,
    };
    println!(
        "user token {} bytes; {} flood tokens, flood cache capacity {}",
        inputs.user_token.len(),
        inputs.flood.len(),
        inputs.flood_capacity
    );

    let (tx, rx) = std::sync::mpsc::channel();
    let server_fixture = fixture.clone();
    std::thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            if let Some(core) = server_core {
                core_affinity::set_for_current(core);
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the server runtime");
            runtime.block_on(async move {
                let variants = variants::start(server_fixture, inputs).await;
                let _ = tx.send(variants);
                std::future::pending::<()>().await;
            });
        })
        .expect("spawn the server thread");
    let mut variants: Vec<Variant> = rx.recv().expect("the server started");
    if let Some(only) = &args.only {
        variants.retain(|v| v.name == "bare axum" || v.name.contains(only.as_str()));
    }

    if let Some(core) = load_core {
        core_affinity::set_for_current(core);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the load runtime");
    let local = tokio::task::LocalSet::new();
    let results = local.block_on(&runtime, measure(&args, &variants));
    report(&args, &variants, &results);
}

/// Signs the flood's distinct tokens on every core.
fn sign_flood(fixture: &Fixture, count: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
                scope.spawn(move || {
                    (start..(start + chunk).min(count))
                        .map(|i| fixture.user_token(i as u64 + 1))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a signing thread"))
            .collect()
    })
}

/// One variant's measurement in one round.
#[derive(Debug, Clone, Copy)]
struct Sample {
    outcome: client::Outcome,
    /// Share of one core the server used (everything but the load thread).
    server_cpu: f64,
    load_cpu: f64,
}

/// `results[round][variant]`.
async fn measure(args: &Args, variants: &[Variant]) -> Vec<Vec<Sample>> {
    let requests: Vec<client::Requests> = variants
        .iter()
        .map(|v| client::Requests::new(v.requests.clone()).expecting(v.expected))
        .collect();
    let measured = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup);
    let mut results = Vec::new();
    for round in 0..args.rounds {
        let mut samples = vec![None; variants.len()];
        for step in 0..variants.len() {
            let i = (round + step) % variants.len();
            let v = &variants[i];
            client::run(v.addr, &requests[i], args.connections, warmup).await;
            let (process0, load0) = (cpu::process(), cpu::this_thread());
            let outcome = client::run(v.addr, &requests[i], args.connections, measured).await;
            let (process1, load1) = (cpu::process(), cpu::this_thread());
            let wall = outcome.elapsed.as_secs_f64();
            let load = load1.saturating_sub(load0).as_secs_f64();
            let server = (process1.saturating_sub(process0).as_secs_f64() - load).max(0.0);
            samples[i] = Some(Sample {
                outcome,
                server_cpu: server / wall,
                load_cpu: load / wall,
            });
            eprintln!(
                "round {}/{} {:40} {:>8.0} req/s  server {:>3.0}%  load {:>3.0}%  failed {}",
                round + 1,
                args.rounds,
                v.name,
                outcome.rate(),
                100.0 * server / wall,
                100.0 * load / wall,
                outcome.failed
            );
        }
        results.push(samples.into_iter().flatten().collect());
    }
    results
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn report(args: &Args, variants: &[Variant], results: &[Vec<Sample>]) {
    let index = |name: &str| variants.iter().position(|v| v.name == name);
    let bare = index("bare axum");
    let ratio_to = |i: usize, base: Option<usize>| -> String {
        let Some(base) = base else {
            return String::from("");
        };
        let ratios: Vec<f64> = results
            .iter()
            .map(|round| round[i].outcome.rate() / round[base].outcome.rate())
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        format!("{:.3} ({lo:.2}–{hi:.2})", median(ratios))
    };
    println!(
        "\n{} rounds × {} s per variant, {} connections; server on one core, load on the other\n",
        args.rounds, args.seconds, args.connections
    );
    println!(
        "| variant | req/s (median) | × bare axum (median, range) | × its baseline | server CPU | load CPU | failed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, v) in variants.iter().enumerate() {
        let rate = median(results.iter().map(|r| r[i].outcome.rate()).collect());
        let server = median(results.iter().map(|r| r[i].server_cpu).collect());
        let load = median(results.iter().map(|r| r[i].load_cpu).collect());
        let failed: u64 = results.iter().map(|r| r[i].outcome.failed).sum();
        let own = match v.baseline.and_then(index) {
            Some(b) => format!("{} × {}", ratio_to(i, Some(b)), variants[b].name),
            None => String::new(),
        };
        let vs_bare = if Some(i) == bare {
            String::from("1")
        } else {
            ratio_to(i, bare)
        };
        println!(
            "| {} | {rate:.0} | {vs_bare} | {own} | {:.0} % | {:.0} % | {failed} |",
            v.name,
            100.0 * server,
            100.0 * load
        );
    }
    let load_bound = variants
        .iter()
        .enumerate()
        .filter(|(i, _)| median(results.iter().map(|r| r[*i].load_cpu).collect()) > 0.95)
        .map(|(_, v)| v.name)
        .collect::<Vec<_>>();
    if !load_bound.is_empty() {
        println!(
            "\nwarning: the load core was saturated for {load_bound:?}; their ratios understate the gap"
        );
    }
}
