//! `tollgate-load gateway`: what a reverse proxy in front of an origin costs. One hello-world
//! axum origin, reached three ways in one run:
//!
//! - **direct**: the load talks to the origin itself;
//! - **nginx**: Debian's nginx as a plain reverse proxy (one process, no master, a keepalive
//!   upstream), started here from a config in a temp dir, on a free loopback port; the row is
//!   skipped with a message when nginx is not installed (`scripts/test-deps.sh` installs it);
//! - **tollgate**: tollgate's gateway (`ExchangeLayer` + `tollgate_gateway::Proxy`), the bot
//!   riding its cookie: the slot [`tollgate_row`], filled in where tollgate-gateway is built.
//!
//! The origin and the proxy run on the server core (the origin a thread of this process, nginx
//! pinned with `taskset`), the load on the other. Every row runs once per round in a rotated
//! order; a row's ratio to direct is taken per round, then the median and range. Each row
//! reports req/s, p50/p99 latency, and the CPU per request of the origin and of the proxy, read
//! from `/proc` (the origin thread's schedstat; nginx's threads' schedstat; an in-process
//! proxy's time is the process's less the load and origin threads'). The time the origin and
//! load threads waited for a CPU (schedstat again) shows how much other work on the machine
//! took from the measurement (in a proxied row the origin's also holds the proxy's turns on the
//! shared core; the load thread's is other work only). req/s moves with that; the CPU per
//! request hardly does.
//!
//! Every request of every row carries the same `Cookie: CF_Authorization=<866-byte token>`
//! header (the tollgate row its own, of about the same size), so the proxies move the same bytes.

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use axum::Router;
use core_affinity::CoreId;

use crate::client::{self, Latencies, Outcome, Requests};
use crate::cpu;
use crate::median;
use crate::tokens::Fixture;
use crate::variants::serve;

/// How long each measurement runs, as the command line said.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) rounds: usize,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    pub(crate) connections: usize,
}

/// Where a row's proxy CPU time is read from.
#[derive(Debug, Clone, Copy)]
enum ProxyCpu {
    /// Another process (nginx): all its threads.
    Process(u32),
    /// A proxy in this process (tollgate): everything but the load thread and the origin
    /// thread.
    #[allow(dead_code, reason = "the tollgate row's, once tollgate_row builds it")]
    RestOfThisProcess,
}

/// One way of reaching the origin.
struct Row {
    name: &'static str,
    addr: SocketAddr,
    /// The requests the load sends, in turn.
    requests: Vec<Vec<u8>>,
    /// `None`: no proxy (the direct row).
    proxy_cpu: Option<ProxyCpu>,
    /// Whatever must live as long as the row (the nginx process and its directory).
    _keep: Option<Box<dyn std::any::Any>>,
}

/// A thread pinned to a core, running a current-thread runtime that serves one router on
/// `127.0.0.1:0` for the rest of the run.
pub(crate) struct ServerThread {
    /// Where the router listens.
    pub(crate) addr: SocketAddr,
    /// The thread's ID, for its CPU time.
    pub(crate) tid: u32,
}

impl ServerThread {
    /// Starts the thread; `build` runs on it, inside its runtime, and answers the router and
    /// anything the caller needs back from the setup (credentials, say).
    pub(crate) fn start<F, Fut, T>(name: &str, core: Option<CoreId>, build: F) -> (Self, T)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = (Router, T)>,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let tid = cpu::current_tid().expect("/proc/thread-self");
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a server runtime");
                runtime.block_on(async move {
                    let (router, extra) = build().await;
                    let addr = serve(router).await;
                    let _ = tx.send((Self { addr, tid }, extra));
                    std::future::pending::<()>().await;
                });
            })
            .expect("spawn a server thread");
        rx.recv().expect("the server thread started")
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The origin: hello world on every path.
fn start_origin(core: Option<CoreId>) -> ServerThread {
    ServerThread::start("origin", core, || async {
        let router = Router::new().fallback(|| async { "hello, world" });
        (router, ())
    })
    .0
}

pub(crate) fn run(load: Load) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.len() < 2 {
        eprintln!("warning: fewer than two cores visible; server and load share one");
    }
    let (server_core, load_core) = (cores.first().copied(), cores.get(1).copied());
    if let Some(core) = load_core {
        core_affinity::set_for_current(core);
    }
    let fixture = Fixture::load();
    let cookie = format!("CF_Authorization={}", fixture.user_token(0));
    let with_cookie = vec![client::get(&[("Cookie", cookie.as_str())])];

    let origin = start_origin(server_core);
    eprintln!("gateway: origin on {}", origin.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the load runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let mut rows = vec![Row {
            name: "direct",
            addr: origin.addr,
            requests: with_cookie.clone(),
            proxy_cpu: None,
            _keep: None,
        }];
        let mut skipped = Vec::new();
        match nginx_row(&origin, server_core, &with_cookie) {
            Ok(row) => rows.push(row),
            Err(why) => skipped.push(("nginx", why)),
        }
        match tollgate_row(&origin, server_core).await {
            Ok(row) => rows.push(row),
            Err(why) => skipped.push(("tollgate", why)),
        }
        for (name, why) in &skipped {
            eprintln!("gateway: row {name} SKIPPED: {why}");
        }
        for row in &rows {
            let (status, head) = client::once(row.addr, &row.requests[0])
                .await
                .unwrap_or_else(|e| panic!("{}: the first request failed: {e}", row.name));
            assert_eq!(status, 200, "{}: the first request: {head}", row.name);
        }
        let load_before = cpu::load_average();
        let results = measure(load, &origin, &rows).await;
        report(load, &rows, &results, &skipped);
        // Other work on the machine shows in the latency tails and the CPU shares.
        println!(
            "\nmachine load average (1 min) before / after: {load_before} / {}",
            cpu::load_average()
        );
    });
}

/// nginx as a plain reverse proxy to `origin`, pinned to `core`; `Err` says why there is none.
fn nginx_row(
    origin: &ServerThread,
    core: Option<CoreId>,
    requests: &[Vec<u8>],
) -> Result<Row, String> {
    let binary = find_nginx().ok_or_else(|| {
        String::from("nginx is not installed (apt-get install nginx, or scripts/test-deps.sh)")
    })?;
    let nginx = Nginx::start(&binary, origin.addr, core)?;
    Ok(Row {
        name: "nginx (reverse proxy)",
        addr: nginx.addr,
        requests: requests.to_vec(),
        proxy_cpu: Some(ProxyCpu::Process(nginx.child.id())),
        _keep: Some(Box::new(nginx)),
    })
}

/// tollgate's gateway in front of `origin`, on `core`: `ExchangeLayer` + `Proxy`, as `tollgate
/// serve` stacks them for an application with an origin, the bot riding its cookie.
async fn tollgate_row(origin: &ServerThread, core: Option<CoreId>) -> Result<Row, String> {
    let origin_url = format!("http://{}", origin.addr);
    let (proxy, (client_id, secret)) = ServerThread::start("tollgate", core, move || async move {
        let (issuer, _, _, client_id, secret) = crate::variants::issuer().await;
        let layer = issuer
            .exchange_layer("bench")
            .expect("the bench application");
        let proxy = tollgate::gateway::Proxy::new(&origin_url).expect("a valid origin URL");
        let router = Router::new().fallback_service(proxy).layer(layer);
        std::mem::forget(issuer); // its background tasks live on this thread's runtime
        (router, (client_id, secret))
    });
    let exchange = client::get(&[
        ("CF-Access-Client-Id", client_id.as_str()),
        ("CF-Access-Client-Secret", secret.as_str()),
    ]);
    let cookie = crate::variants::first_cookie(proxy.addr, &exchange).await;
    Ok(Row {
        name: "tollgate (cookie reuse)",
        addr: proxy.addr,
        requests: vec![client::get(&[("Cookie", cookie.as_str())])],
        proxy_cpu: Some(ProxyCpu::RestOfThisProcess),
        _keep: Some(Box::new(proxy)),
    })
}

fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nginx"))
            .find(|p| p.exists())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
}

/// An nginx process of this run, with its directory; killed and removed on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Writes a config proxying a free loopback port to `upstream` and starts nginx on it,
    /// pinned to `core` with `taskset`; waits until it accepts connections.
    fn start(binary: &Path, upstream: SocketAddr, core: Option<CoreId>) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("tollgate-load-nginx-")
            .tempdir()
            .map_err(|e| format!("a temp dir: {e}"))?;
        let taskset = Path::new("/usr/bin/taskset");
        if core.is_some() && !taskset.exists() {
            eprintln!("warning: no taskset; nginx is not pinned to the server core");
        }
        // A free port can be taken between our probe and nginx's bind: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| format!("a free port: {e}"))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let config = dir.path().join("nginx.conf");
            std::fs::write(&config, nginx_config(dir.path(), addr, upstream))
                .map_err(|e| format!("writing {}: {e}", config.display()))?;
            let mut command = match core.filter(|_| taskset.exists()) {
                Some(core) => {
                    // taskset execs nginx: the child's pid is nginx's.
                    let mut command = Command::new(taskset);
                    command.args(["-c", &core.id.to_string()]).arg(binary);
                    command
                }
                None => Command::new(binary),
            };
            let mut child = command
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&config)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting {}: {e}", binary.display()))?;
            match wait_ready(&mut child, addr, dir.path(), Duration::from_secs(5)) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        addr,
                        _dir: dir,
                    });
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = error;
                }
            }
        }
        Err(last_error)
    }
}

/// Waits until `addr` accepts connections; the error log when nginx exits first.
fn wait_ready(
    child: &mut Child,
    addr: SocketAddr,
    dir: &Path,
    within: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}): {}", log.trim()));
        }
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if started.elapsed() > within {
            return Err(format!("nginx did not listen on {addr} within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx as a plain reverse proxy: one process, no master, no access log, HTTP/1.1 to a
/// keepalive upstream, connections kept alive for the whole run, everything it writes under
/// `dir`.
fn nginx_config(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # nginx closes a kept-alive connection after 1000 requests by default, on both sides: a
    # closed loop of 32 connections would end in about a second.
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream origin {{
        server {upstream};
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"#
    )
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One row's measurement in one round.
#[derive(Debug, Clone, Copy)]
struct Sample {
    outcome: Outcome,
    p50_us: f64,
    p99_us: f64,
    /// CPU seconds per answered request.
    origin_cpu: f64,
    proxy_cpu: Option<f64>,
    /// Share of one core the origin and proxy used together.
    server_share: f64,
    load_share: f64,
    /// Share of the time the origin and load threads were runnable but waited for a CPU.
    origin_waited: f64,
    load_waited: f64,
}

/// CPU counters read before and after a measurement.
#[derive(Debug, Clone, Copy)]
struct Counters {
    process: Duration,
    load: Duration,
    origin: Duration,
    proxy_process: Duration,
    load_waited: Duration,
    origin_waited: Duration,
}

impl Counters {
    fn read(origin: &ServerThread, load_tid: u32, proxy: Option<ProxyCpu>) -> Self {
        Self {
            load_waited: cpu::thread_waited(load_tid),
            origin_waited: cpu::thread_waited(origin.tid),
            process: cpu::process(),
            load: cpu::this_thread(),
            origin: cpu::thread(origin.tid),
            proxy_process: match proxy {
                Some(ProxyCpu::Process(pid)) => cpu::other_process_threads(pid),
                _ => Duration::ZERO,
            },
        }
    }
}

/// `results[round][row]`.
async fn measure(load: Load, origin: &ServerThread, rows: &[Row]) -> Vec<Vec<Sample>> {
    let requests: Vec<Requests> = rows
        .iter()
        .map(|row| Requests::new(row.requests.clone()))
        .collect();
    let measured = Duration::from_secs_f64(load.seconds);
    let warmup = Duration::from_secs_f64(load.warmup);
    let latencies: Latencies = Rc::default();
    let load_tid = cpu::current_tid().expect("/proc/thread-self");
    let mut results = Vec::new();
    for round in 0..load.rounds {
        let mut samples = vec![None; rows.len()];
        for step in 0..rows.len() {
            let i = (round + step) % rows.len();
            let row = &rows[i];
            client::run(row.addr, &requests[i], load.connections, warmup).await;
            latencies.borrow_mut().clear();
            let before = Counters::read(origin, load_tid, row.proxy_cpu);
            let outcome = client::run_recording(
                row.addr,
                &requests[i],
                load.connections,
                measured,
                Some(&latencies),
            )
            .await;
            let after = Counters::read(origin, load_tid, row.proxy_cpu);
            let secs = |a: Duration, b: Duration| b.saturating_sub(a).as_secs_f64();
            let load_cpu = secs(before.load, after.load);
            let origin_cpu = secs(before.origin, after.origin);
            let proxy_cpu = row.proxy_cpu.map(|proxy| match proxy {
                ProxyCpu::Process(_) => secs(before.proxy_process, after.proxy_process),
                ProxyCpu::RestOfThisProcess => {
                    (secs(before.process, after.process) - load_cpu - origin_cpu).max(0.0)
                }
            });
            let (p50_us, p99_us) = {
                let mut all = latencies.borrow_mut();
                all.sort_unstable();
                (percentile(&all, 0.50), percentile(&all, 0.99))
            };
            let wall = outcome.elapsed.as_secs_f64();
            if outcome.elapsed < measured.mul_f64(0.95) {
                eprintln!(
                    "warning: {}: the connections ended after {:.2} s of {:.2} s ({} failed)",
                    row.name,
                    wall,
                    measured.as_secs_f64(),
                    outcome.failed
                );
            }
            let per_request = |cpu: f64| cpu / (outcome.ok.max(1) as f64);
            let sample = Sample {
                outcome,
                p50_us,
                p99_us,
                origin_cpu: per_request(origin_cpu),
                proxy_cpu: proxy_cpu.map(per_request),
                server_share: (origin_cpu + proxy_cpu.unwrap_or(0.0)) / wall,
                load_share: load_cpu / wall,
                origin_waited: secs(before.origin_waited, after.origin_waited) / wall,
                load_waited: secs(before.load_waited, after.load_waited) / wall,
            };
            eprintln!(
                "round {}/{} {:28} {:>8.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  origin {:>5.1} µs/req  \
                 proxy {:>5} µs/req  load {:>3.0}%  waited for a CPU: origin {:>3.0}% load {:>3.0}%  failed {}",
                round + 1,
                load.rounds,
                row.name,
                outcome.rate(),
                p50_us,
                p99_us,
                1e6 * sample.origin_cpu,
                sample
                    .proxy_cpu
                    .map_or_else(|| String::from("-"), |c| format!("{:.1}", 1e6 * c)),
                100.0 * sample.load_share,
                100.0 * sample.origin_waited,
                100.0 * sample.load_waited,
                outcome.failed
            );
            samples[i] = Some(sample);
        }
        results.push(samples.into_iter().flatten().collect());
    }
    results
}

/// The `q` quantile of sorted microsecond latencies (nearest rank).
pub(crate) fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

fn report(load: Load, rows: &[Row], results: &[Vec<Sample>], skipped: &[(&str, String)]) {
    let column =
        |i: usize, f: &dyn Fn(&Sample) -> f64| median(results.iter().map(|r| f(&r[i])).collect());
    println!(
        "\n{} rounds × {} s per row, {} connections; origin and proxy on one core, load on the other\n",
        load.rounds, load.seconds, load.connections
    );
    println!(
        "| row | req/s (median) | × direct (median, range) | p50 latency | p99 latency | origin CPU / req | proxy CPU / req | server core busy | load CPU | waited for a CPU (origin / load) | failed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, row) in rows.iter().enumerate() {
        let ratios: Vec<f64> = results
            .iter()
            .map(|round| round[i].outcome.rate() / round[0].outcome.rate())
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let vs_direct = if i == 0 {
            String::from("1")
        } else {
            format!("{:.3} ({lo:.2}–{hi:.2})", median(ratios))
        };
        let proxy = if row.proxy_cpu.is_some() {
            format!(
                "{:.1} µs",
                1e6 * column(i, &|s| s.proxy_cpu.unwrap_or(f64::NAN))
            )
        } else {
            String::from("–")
        };
        let failed: u64 = results.iter().map(|r| r[i].outcome.failed).sum();
        println!(
            "| {} | {:.0} | {vs_direct} | {:.0} µs | {:.0} µs | {:.1} µs | {proxy} | {:.0} % | {:.0} % | {:.0} % / {:.0} % | {failed} |",
            row.name,
            column(i, &|s| s.outcome.rate()),
            column(i, &|s| s.p50_us),
            column(i, &|s| s.p99_us),
            1e6 * column(i, &|s| s.origin_cpu),
            100.0 * column(i, &|s| s.server_share),
            100.0 * column(i, &|s| s.load_share),
            100.0 * column(i, &|s| s.origin_waited),
            100.0 * column(i, &|s| s.load_waited),
        );
    }
    for (name, why) in skipped {
        println!("| {name} | skipped: {why} | | | | | | | | | |");
    }
    let load_bound: Vec<&str> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| column(*i, &|s| s.load_share) > 0.95)
        .map(|(_, row)| row.name)
        .collect();
    if !load_bound.is_empty() {
        println!(
            "\nwarning: the load core was saturated for {load_bound:?}; their ratios understate the gap"
        );
    }
    // The load thread has its core to itself: any wait is other work on the machine.
    let contended = results
        .iter()
        .flatten()
        .map(|s| s.load_waited)
        .fold(0.0, f64::max);
    if contended > 0.05 {
        println!(
            "\nwarning: the load thread waited for a CPU up to {:.0} % of a measurement: other work \
             on the machine; req/s and its ratios are unreliable, the CPU per request less so",
            100.0 * contended
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 0.50), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[7], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn nginx_proxies_to_the_origin_and_is_gone_when_dropped() {
        let Some(binary) = find_nginx() else {
            eprintln!("SKIPPED: nginx is not installed (scripts/test-deps.sh installs it)");
            return;
        };
        let origin = start_origin(None);
        let nginx = Nginx::start(&binary, origin.addr, None).expect("nginx starts");
        let mut stream = TcpStream::connect(nginx.addr).expect("connect to nginx");
        stream
            .write_all(
                b"GET /any/path HTTP/1.1\r\nHost: bench.example.com\r\nConnection: close\r\n\r\n",
            )
            .expect("send");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("read");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("hello, world"), "{reply}");
        let (pid, addr) = (nginx.child.id(), nginx.addr);
        drop(nginx);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "nginx {pid} reaped"
        );
        assert!(TcpStream::connect(addr).is_err(), "nothing on {addr}");
    }
}
