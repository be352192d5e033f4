//! `tollgate serve`: the certs and get-identity routes on every host, and every application
//! routed by its domain — proxied to its origin, or answered with the caller's identity.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use clap::Args;
use tollgate_core::events::Events;
use tollgate_core::{AccessIdentity, TeamDomain};
use tollgate_gateway::{OriginClient, Proxy, SENSITIVE_HEADERS};
use tollgate_issue::{
    AppSettings, ApplicationRecord, ClientSecret, Issuer, ManageErrorKind, ServiceTokenRecord,
    Throttle, parse_duration,
};
use tower::util::BoxCloneSyncService;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::gateway::{AppRouter, AppService, Fallback, MakeOrigin};
use crate::{CliResult, clock, describe_database, open_store, warn_if_keys_unencrypted};

/// The application served while no application has a domain (and no `--app` is given).
const DEMO_APP: &str = "demo";
/// The first-run token's name.
const DEMO_TOKEN: &str = "demo";

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The application for requests no application's domain covers (created if missing).
    /// Without it, `demo` serves them while no application has a domain, and they get 404
    /// once one does.
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// The team domain: `iss` of minted tokens and base of the certs URL
    /// [default: http://ADDR].
    #[arg(long, value_name = "URL")]
    team_domain: Option<TeamDomain>,
    /// Failed exchanges allowed a minute for one client address and client ID before 429
    /// (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 30)]
    throttle_per_client: u32,
    /// Failed exchanges allowed a minute from one client address, all client IDs together,
    /// before 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 300)]
    throttle_per_address: u32,
    /// A proxy (address or CIDR block, repeatable) trusted to name the client in
    /// X-Forwarded-For; otherwise the socket's peer is the client.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxies: Vec<String>,
    /// How long an origin may take to accept a connection before 502, e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    origin_connect_timeout: Duration,
    /// How long an origin may take to start its response before 504 (Cloudflare's is 100s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "100s")]
    origin_timeout: Duration,
    /// The largest request body proxied to an origin, in bytes, before 413 (Cloudflare's
    /// default is 100 MB).
    #[arg(long, value_name = "BYTES", default_value_t = 100_000_000)]
    max_body_size: u64,
    #[command(flatten)]
    metrics: crate::metrics::MetricsArgs,
    #[command(flatten)]
    log: crate::logs::LogArgs,
    #[command(flatten)]
    notify: crate::notify::NotifyArgs,
    #[command(flatten)]
    admin: crate::admin::AdminArgs,
}

/// Applications without an origin answer with the caller's identity: `null` for a request a
/// bypass policy let through without one.
async fn whoami(identity: Option<AccessIdentity>) -> Json<Option<AccessIdentity>> {
    Json(identity)
}

/// The throttle the flags describe; a bad `--trusted-proxy` fails here, before anything is
/// opened or created.
fn throttle(args: &ServeArgs) -> CliResult<Throttle> {
    let mut throttle = Throttle::default()
        .per_client(args.throttle_per_client)
        .per_address(args.throttle_per_address);
    for cidr in &args.trusted_proxies {
        throttle = throttle.trust_proxy(cidr)?;
    }
    Ok(throttle)
}

/// The fallback application, created if missing: `--app`, or `demo` while no application has
/// a domain. Replicas started together on a fresh store race here; the one that loses (a
/// Conflict) uses what the winner created.
async fn fallback_app(issuer: &Issuer, app: Option<&str>) -> CliResult<Option<ApplicationRecord>> {
    let name = match app {
        Some(name) => name,
        None if issuer
            .apps()
            .list()
            .await?
            .iter()
            .all(|a| a.domain.is_none()) =>
        {
            DEMO_APP
        }
        None => return Ok(None),
    };
    let app = match issuer.apps().get(name).await {
        Ok(found) => found,
        Err(e) if e.kind() == ManageErrorKind::NotFound => {
            match issuer.apps().create(name, AppSettings::new()).await {
                Err(e) if e.kind() == ManageErrorKind::Conflict => issuer.apps().get(name).await?,
                created => created?,
            }
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Some(app))
}

/// First run: a demo token when the store has none. Names are not unique, so replicas starting
/// together on a fresh store would each make one; `create_unique` decides in the store, under
/// its writer lock, and every loser gets a Conflict.
async fn first_token(issuer: &Issuer) -> CliResult<Option<(ServiceTokenRecord, ClientSecret)>> {
    if !issuer.tokens().list().await?.is_empty() {
        return Ok(None);
    }
    match issuer
        .tokens()
        .create_unique(DEMO_TOKEN, Default::default())
        .await
    {
        Err(e) if e.kind() == ManageErrorKind::Conflict => Ok(None),
        created => Ok(Some(created?)),
    }
}

/// The proxy for applications with an origin: one pooled client for all of them.
fn make_origin(args: &ServeArgs) -> CliResult<MakeOrigin> {
    let client = OriginClient::builder()
        .connect_timeout(args.origin_connect_timeout)
        .build()?;
    let response_timeout = args.origin_timeout;
    let body_limit = args.max_body_size;
    Ok(Arc::new(move |origin| {
        let proxy = Proxy::with_client(origin.as_str(), client.clone())
            .map_err(|e| e.to_string())?
            .with_response_timeout(response_timeout)
            .with_body_limit(body_limit);
        Ok(BoxCloneSyncService::new(proxy))
    }))
}

pub(crate) async fn run(database: &str, args: ServeArgs) -> CliResult {
    let throttle = throttle(&args)?;
    args.notify.check()?;
    let make_origin = make_origin(&args)?;
    let metrics = crate::metrics::ServeMetrics::bind(&args.metrics, args.addr).await?;
    let admin = crate::admin::ServeAdmin::bind(&args.admin, args.addr).await?;
    let store = open_store(database).await?;
    warn_if_keys_unencrypted(&store);
    let measured = metrics.measure(store.clone());
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    let team_domain = match args.team_domain {
        Some(domain) => domain.to_string(),
        None => format!("http://{addr}"),
    };
    // The issuer polls the store's revision every 250 ms, so tokens, applications and keys
    // changed by other CLI invocations or instances apply here within a second.
    let auth_log = args.log.start(store.clone());
    let events = Events::none().with(Arc::new(auth_log.clone()));
    let issuer = Issuer::builder(team_domain)
        .store(measured.clone())
        .events(metrics.events(events))
        .clock(clock())
        .build()
        .await?;
    let fallback = fallback_app(&issuer, args.app.as_deref()).await?;
    let first_token = first_token(&issuer).await?;
    // What another replica created a moment ago reaches the snapshot (which the router is
    // built from) now rather than at the next poll.
    issuer.reload().await?;

    let echo: AppService = BoxCloneSyncService::new(Router::new().fallback(whoami));
    let fallback_rule = match &args.app {
        Some(name) => Fallback::App(name.clone()),
        None => Fallback::WhileNoDomains(DEMO_APP.to_owned()),
    };
    let router = AppRouter::new(issuer.clone(), throttle, fallback_rule, echo, make_origin)?;
    // Outermost first: a request id (kept if the client sent one, and passed to the origin
    // and back), credentials and tokens hidden from any request log, then the trace span.
    let app = issuer
        .routes()
        .fallback_service(router.clone())
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveHeadersLayer::new(SENSITIVE_HEADERS))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));

    let base = format!("http://{addr}");
    let (routed, fallback_name) = router.describe();
    match (&fallback, fallback_name) {
        (Some(app), Some(_)) => println!(
            "tollgate: serving application {:?} (AUD {}) on {base}",
            app.name, app.aud
        ),
        _ => println!("tollgate: serving on {base}"),
    }
    for (domain, name) in &routed {
        println!("  domain:   {domain} → application {name:?}");
    }
    if !routed.is_empty() {
        let other = match &fallback {
            Some(app) if args.app.is_some() => format!("application {:?}", app.name),
            _ => "404 (no application)".to_owned(),
        };
        println!("  other:    {other}");
    }
    println!("  issuer:   {}", issuer.issuer_url());
    println!("  certs:    {base}/cdn-cgi/access/certs");
    println!("  database: {}", describe_database(database, &store));
    if let Some((token, secret)) = first_token {
        println!(
            "Created service token \"demo\" ({}); try it:",
            token.client_id
        );
        println!(
            "  curl -i -c cookies.txt -H 'CF-Access-Client-Id: {}' -H 'CF-Access-Client-Secret: {}' {base}/",
            token.client_id,
            secret.expose_secret()
        );
        println!("  curl -i -b cookies.txt {base}/");
    }
    let notifier = args.notify.start(store.clone(), &issuer).await?;
    if let Some(notifier) = &notifier {
        println!("  notify:   {} webhook(s)", notifier.webhooks().len());
    }
    admin.start(&issuer, store.clone()).await?;
    metrics.start(&issuer, measured, &auth_log, notifier.as_ref())?;
    println!("Press Ctrl-C to stop.");

    // Small requests and responses go out at once, not after Nagle's delay.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    // The peer address reaches the exchange throttle (and X-Forwarded-For) as `ConnectInfo`.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        // If the signal handler cannot be installed, serve until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await?;
    // Last-use times are written in batches; write the pending ones before exiting.
    issuer.flush_last_seen().await;
    auth_log.close().await;
    Ok(())
}
