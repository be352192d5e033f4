//! `tollgate`: manage service tokens, applications, signing keys and API tokens, run a protected server,
//! and verify Access JWTs from the command line.
//!
//! Every command works on the store named by `--database` (env `TOLLGATE_DATABASE_URL`,
//! default `sqlite://tollgate.db`). Errors are one line on stderr and a non-zero exit.

mod account;
mod admin;
mod apps;
mod gateway;
mod keys;
mod logs;
mod metrics;
mod notify;
mod output;
mod policies;
mod serve;
mod tokens;
mod verify;

use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tollgate_core::SystemClock;
use tollgate_store::{Backend, MasterKey, Store, StoreOptions};

/// mimalloc rather than glibc's malloc: the gateway allocates and frees a few dozen small
/// blocks per request, and glibc's consolidation showed up in its profile (about 3 % of the
/// proxy's CPU per request in `tollgate-load gateway`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Errors bubble up to `main`, which prints them on one line.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;
pub(crate) type CliResult<T = ()> = Result<T, BoxError>;

/// Cloudflare Access service tokens and JWTs, in-process: manage tokens, applications and
/// signing keys, serve a protected app, verify tokens.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, propagate_version = true)]
struct Cli {
    /// The store: sqlite://FILE, sqlite::memory: or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_DATABASE_URL",
        default_value = "sqlite://tollgate.db",
        hide_env_values = true
    )]
    database: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Service tokens: create, list, refresh, re-time, rotate secrets, delete.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Applications: create, list, show, change settings.
    #[command(subcommand)]
    App(apps::AppCommand),
    /// Reusable Access policies: create, list, show, set, delete.
    #[command(subcommand)]
    Policy(policies::PolicyCommand),
    /// The store's account: its ID (as the admin API's paths spell it).
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// API tokens for the admin API: create (shown once), list, delete.
    #[command(subcommand)]
    ApiToken(account::ApiTokenCommand),
    /// Signing keys: list, rotate now.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Query the authentication log: exchanges, refusals and changes, newest last.
    Logs(logs::LogsArgs),
    /// Serve the certs and get-identity routes and every application by its domain: proxied
    /// to its origin, or answered with the caller's identity (the demo).
    Serve(serve::ServeArgs),
    /// Verify an Access JWT (from Cloudflare or tollgate) and print its identity and claims.
    Verify(verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(&cli))),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error.as_ref()),
    }
}

/// `serve` logs its work; one-shot commands only warn.
fn default_log_filter(cli: &Cli) -> &'static str {
    match cli.command {
        Command::Serve(_) => "info,sqlx=warn",
        _ => "warn,sqlx=error",
    }
}

/// Prints `tollgate: error: <message>: <cause>: …` on one line and exits 1.
fn fail(error: &(dyn StdError + 'static)) -> ExitCode {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    eprintln!("tollgate: error: {}", line.replace('\n', " "));
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Token(command) => tokens::run(&cli.database, command).await,
        Command::App(command) => apps::run(&cli.database, command).await,
        Command::Policy(command) => policies::run(&cli.database, command).await,
        Command::Account(command) => account::run_account(&cli.database, command).await,
        Command::ApiToken(command) => account::run_api_token(&cli.database, command).await,
        Command::Keys(command) => keys::run(&cli.database, command).await,
        Command::Logs(args) => logs::run(&cli.database, args).await,
        Command::Serve(args) => serve::run(&cli.database, args).await,
        Command::Verify(args) => verify::run(args).await,
    }
}

/// Opens the store, with the master key from `TOLLGATE_MASTER_KEY` if set.
pub(crate) async fn open_store(database: &str) -> CliResult<Arc<Store>> {
    let options = StoreOptions::new()
        .with_master_key_from_env()?
        .with_acquire_timeout(Duration::from_secs(5));
    Ok(Arc::new(tollgate_store::connect(database, options).await?))
}

/// The system clock, shared.
pub(crate) fn clock() -> tollgate_core::SharedClock {
    Arc::new(SystemClock)
}

/// Where the store is, without a password.
pub(crate) fn describe_database(database: &str, store: &Store) -> String {
    match store.backend() {
        Backend::Postgres => "PostgreSQL".to_owned(),
        _ => database.to_owned(),
    }
}

/// Says plainly, on stderr, when signing keys are kept unencrypted.
pub(crate) fn warn_if_keys_unencrypted(store: &Store) {
    if !store.encrypts_keys() {
        eprintln!(
            "tollgate: note: {} is not set: signing keys are stored unencrypted in the database",
            MasterKey::ENV
        );
    }
}
