//! `tollgate serve`: the certs and get-identity routes and a protected demo application.

use std::net::SocketAddr;

use axum::{Json, Router};
use clap::Args;
use tollgate_core::{AccessIdentity, TeamDomain};
use tollgate_issue::{
    AppSettings, ApplicationRecord, ClientSecret, Issuer, ManageErrorKind, ServiceTokenRecord,
    Throttle,
};

use crate::{CliResult, clock, describe_database, open_store, warn_if_keys_unencrypted};

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The application to protect (created if missing).
    #[arg(long, default_value = "demo")]
    app: String,
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
}

/// Every protected path answers with the caller's identity.
async fn whoami(identity: AccessIdentity) -> Json<AccessIdentity> {
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

/// First run: the application, created if missing, and a demo token when the store has none.
/// Replicas started together on a fresh store race here; the one that loses (a Conflict) uses
/// what the winner created.
async fn first_run(
    issuer: &Issuer,
    app: &str,
) -> CliResult<(
    ApplicationRecord,
    Option<(ServiceTokenRecord, ClientSecret)>,
)> {
    let app = match issuer.apps().get(app).await {
        Ok(found) => found,
        Err(e) if e.kind() == ManageErrorKind::NotFound => {
            match issuer.apps().create(app, AppSettings::new()).await {
                Err(e) if e.kind() == ManageErrorKind::Conflict => issuer.apps().get(app).await?,
                created => created?,
            }
        }
        Err(e) => return Err(e.into()),
    };
    let first_token = if issuer.tokens().list().await?.is_empty() {
        match issuer.tokens().create("demo", Default::default()).await {
            Err(e) if e.kind() == ManageErrorKind::Conflict => None,
            created => Some(created?),
        }
    } else {
        None
    };
    // What another replica created a moment ago reaches the snapshot (which the layer is
    // built from) now rather than at the next poll.
    issuer.reload().await?;
    Ok((app, first_token))
}

pub(crate) async fn run(database: &str, args: ServeArgs) -> CliResult {
    let throttle = throttle(&args)?;
    let store = open_store(database).await?;
    warn_if_keys_unencrypted(&store);
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
    let issuer = Issuer::builder(team_domain)
        .store(store.clone())
        .clock(clock())
        .build()
        .await?;
    let (app, first_token) = first_run(&issuer, &args.app).await?;

    let protected = Router::new()
        .fallback(whoami)
        .layer(issuer.exchange_layer(&app.name)?.with_throttle(throttle));
    let router = issuer.routes().merge(protected);

    let base = format!("http://{addr}");
    println!(
        "tollgate: serving application {:?} (AUD {}) on {base}",
        app.name, app.aud
    );
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
    println!("Press Ctrl-C to stop.");

    // The peer address reaches the exchange throttle as `ConnectInfo`.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
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
    Ok(())
}
