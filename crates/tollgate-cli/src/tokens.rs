//! `tollgate token …`

use clap::{Args, Subcommand};
use tollgate_core::events::AuthEvent;
use tollgate_issue::{ClientSecret, ServiceTokenRecord, ServiceTokens, TokenDuration};
use tollgate_issue::{DEFAULT_TOKEN_DURATION, parse_duration};

use crate::logs::{admin, record_admin};
use crate::output::{opt_time, print_json, print_table, rfc3339, token_json};
use tollgate_store::Store;

use crate::{CliResult, clock, open_store};

/// The admin event of `action` on `token`.
fn token_event(action: &str, token: &ServiceTokenRecord) -> AuthEvent {
    admin(action)
        .with_client_id(&token.client_id)
        .with_token(&token.id, &token.name)
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a service token; its secret is printed once and never stored.
    Create {
        /// A unique name.
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 8760h (the default, one year), 720h, 30d, or `forever`.
        #[arg(long, value_parser = parse_token_duration)]
        duration: Option<TokenDuration>,
        #[command(flatten)]
        json: Json,
    },
    /// Import an existing token (e.g. one made in Cloudflare's dashboard). The secret is read
    /// from TOLLGATE_CLIENT_SECRET or else from the first line of standard input, never from
    /// the command line (where `ps` and shell history would keep it).
    Import {
        /// A unique name.
        #[arg(long)]
        name: String,
        /// The existing client ID (32 lowercase hex + `.access`).
        #[arg(long)]
        client_id: String,
        /// Lifetime from now, e.g. 8760h (the default) or `forever`.
        #[arg(long, value_parser = parse_token_duration)]
        duration: Option<TokenDuration>,
        #[command(flatten)]
        json: Json,
    },
    /// List tokens.
    List {
        /// Only tokens expiring within this window, e.g. 7d (soonest first).
        #[arg(long, value_parser = parse_duration)]
        expiring: Option<std::time::Duration>,
        /// Only tokens not used for this long, e.g. 90d, or never used (whatever their age):
        /// by their last-seen time, which `serve` records every 10 s and on shutdown.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        unused: Option<std::time::Duration>,
        #[command(flatten)]
        json: Json,
    },
    /// Extend a token's life by its duration, counted from now.
    Refresh {
        /// The token's client ID (or name).
        client_id: String,
        #[command(flatten)]
        json: Json,
    },
    /// Change a token's duration (applies from now).
    SetDuration {
        /// The token's client ID (or name).
        client_id: String,
        /// The new lifetime, e.g. 720h or `forever`.
        #[arg(value_parser = parse_token_duration)]
        duration: TokenDuration,
        #[command(flatten)]
        json: Json,
    },
    /// Issue a new secret; the old one stays valid for the grace period (1h to 720h) or not at all.
    RotateSecret {
        /// The token's client ID (or name).
        client_id: String,
        /// How long the previous secret keeps working, e.g. 1h or 24h; `0`/`none` for not at all.
        #[arg(long, value_parser = parse_grace)]
        grace: Option<Grace>,
        #[command(flatten)]
        json: Json,
    },
    /// Disable a token: its secrets are refused (`service_token_disabled`) and its application
    /// tokens stop working, but the record is kept; `enable` restores it.
    Disable {
        /// The token's client ID (or name).
        client_id: String,
        #[command(flatten)]
        json: Json,
    },
    /// Enable a disabled token again.
    Enable {
        /// The token's client ID (or name).
        client_id: String,
        #[command(flatten)]
        json: Json,
    },
    /// Delete (revoke) a token: its secret and its application tokens stop working.
    Delete {
        /// The token's client ID (or name).
        client_id: String,
        /// Also remove it from the policies that name it (refused otherwise, as Cloudflare
        /// refuses; `token disable` stops it at once without touching them).
        #[arg(long)]
        detach: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Json {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_token_duration(text: &str) -> Result<TokenDuration, String> {
    text.parse()
        .map_err(|e: tollgate_issue::DurationError| e.to_string())
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Grace(Option<std::time::Duration>);

fn parse_grace(text: &str) -> Result<Grace, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(Grace(None));
    }
    let grace = parse_duration(text).map_err(|e| e.to_string())?;
    Ok(Grace((!grace.is_zero()).then_some(grace)))
}

/// The secret to import: `TOLLGATE_CLIENT_SECRET`, else the first line of standard input.
fn read_secret() -> CliResult<String> {
    if let Ok(secret) = std::env::var("TOLLGATE_CLIENT_SECRET") {
        return Ok(secret);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the secret from standard input: {e}"))?;
    if line.trim().is_empty() {
        return Err(
            "no secret given: set TOLLGATE_CLIENT_SECRET or pipe it on standard input".into(),
        );
    }
    Ok(line)
}

pub(crate) async fn run(database: &str, command: TokenCommand) -> CliResult {
    let store = open_store(database).await?;
    let tokens = ServiceTokens::new(store.clone(), clock());
    match command {
        TokenCommand::Create {
            name,
            duration,
            json,
        } => {
            // The CLI keeps names unique (it also finds tokens by name); the store allows
            // duplicates, as Cloudflare does.
            let (token, secret) = tokens
                .create_unique(&name, duration.unwrap_or(DEFAULT_TOKEN_DURATION))
                .await?;
            record_admin(&store, token_event("token.create", &token)).await;
            if json.json {
                let mut value = token_json(&token);
                value["client_secret"] = secret.expose_secret().into();
                print_json(&value);
            } else {
                println!("Created service token {:?}", token.name);
                println!("  Client ID:     {}", token.client_id);
                println!("  Client Secret: {}", secret.expose_secret());
                println!("  Expires:       {}", opt_time(token.expires_at, "never"));
                println!("The secret is shown only now: store it somewhere safe.");
            }
        }
        TokenCommand::Import {
            name,
            client_id,
            duration,
            json,
        } => {
            let secret = ClientSecret::parse(&read_secret()?)
                .map_err(|e| format!("cannot import the secret: {e}"))?;
            let token = tokens
                .import(
                    &name,
                    &client_id,
                    &secret,
                    duration.unwrap_or(DEFAULT_TOKEN_DURATION),
                )
                .await?;
            record_admin(&store, token_event("token.import", &token)).await;
            if json.json {
                print_json(&token_json(&token));
            } else {
                println!(
                    "Imported service token {:?} ({}): expires {}",
                    token.name,
                    token.client_id,
                    opt_time(token.expires_at, "never")
                );
            }
        }
        TokenCommand::List {
            expiring,
            unused,
            json,
        } => {
            let mut list = match expiring {
                Some(within) => tokens.expiring(within).await?,
                None => tokens.list().await?,
            };
            if let Some(unused) = unused {
                let cutoff = clock()
                    .unix_now()
                    .saturating_sub(i64::try_from(unused.as_secs()).unwrap_or(i64::MAX));
                list.retain(|t| t.last_seen_at.is_none_or(|seen| seen < cutoff));
            }
            if json.json {
                print_json(&list.iter().map(token_json).collect());
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        let name = if t.enabled {
                            t.name.clone()
                        } else {
                            format!("{} (disabled)", t.name)
                        };
                        vec![
                            name,
                            t.client_id.clone(),
                            t.duration.to_string(),
                            opt_time(t.expires_at, "never"),
                            opt_time(t.last_seen_at, "-"),
                        ]
                    })
                    .collect();
                print_table(
                    &["NAME", "CLIENT ID", "DURATION", "EXPIRES", "LAST SEEN"],
                    &rows,
                );
            }
        }
        TokenCommand::Refresh { client_id, json } => {
            let token = tokens.find(&client_id).await?;
            let token = tokens.refresh(&token.client_id).await?;
            record_admin(&store, token_event("token.refresh", &token)).await;
            if json.json {
                print_json(&token_json(&token));
            } else {
                println!(
                    "Refreshed {}: expires {}",
                    token.client_id,
                    opt_time(token.expires_at, "never")
                );
            }
        }
        TokenCommand::SetDuration {
            client_id,
            duration,
            json,
        } => {
            let token = tokens.find(&client_id).await?;
            let token = tokens.set_duration(&token.client_id, duration).await?;
            record_admin(&store, token_event("token.set_duration", &token)).await;
            if json.json {
                print_json(&token_json(&token));
            } else {
                println!(
                    "Set duration of {} to {}: expires {}",
                    token.client_id,
                    token.duration,
                    opt_time(token.expires_at, "never")
                );
            }
        }
        TokenCommand::RotateSecret {
            client_id,
            grace,
            json,
        } => {
            let token = tokens.find(&client_id).await?;
            let grace = grace.and_then(|g| g.0);
            let secret = tokens.rotate_secret(&token.client_id, grace).await?;
            let token = tokens.get(&token.client_id).await?;
            record_admin(&store, token_event("token.rotate_secret", &token)).await;
            if json.json {
                let mut value = token_json(&token);
                value["client_secret"] = secret.expose_secret().into();
                print_json(&value);
            } else {
                println!("New secret for {}", token.client_id);
                println!("  Client Secret: {}", secret.expose_secret());
                match token.previous_secret_expires_at {
                    Some(until) => println!("The previous secret works until {}.", rfc3339(until)),
                    None => println!("The previous secret no longer works."),
                }
            }
        }
        TokenCommand::Disable { client_id, json } => {
            set_enabled(&store, &tokens, &client_id, false, json.json).await?;
        }
        TokenCommand::Enable { client_id, json } => {
            set_enabled(&store, &tokens, &client_id, true, json.json).await?;
        }
        TokenCommand::Delete { client_id, detach } => {
            let token = tokens.find(&client_id).await?;
            match tokens.delete(&token.client_id, detach).await {
                Err(e) if e.kind() == tollgate_issue::ManageErrorKind::InUse => {
                    return Err(format!(
                        "{e}; run `tollgate token delete {} --detach` to remove it from them \
                         too, or `tollgate token disable {}` to stop it now",
                        token.client_id, token.client_id
                    )
                    .into());
                }
                other => other?,
            }
            // Names the token, so later refusals of its client ID show whose it was.
            record_admin(&store, token_event("token.delete", &token)).await;
            println!(
                "Deleted service token {:?} ({})",
                token.name, token.client_id
            );
        }
    }
    Ok(())
}

/// `token enable` / `token disable`.
async fn set_enabled(
    store: &Store,
    tokens: &ServiceTokens,
    client_id: &str,
    enabled: bool,
    json: bool,
) -> CliResult {
    let token = tokens.find(client_id).await?;
    let token = tokens.set_enabled(&token.client_id, enabled).await?;
    let action = if enabled {
        "token.enable"
    } else {
        "token.disable"
    };
    record_admin(store, token_event(action, &token)).await;
    if json {
        print_json(&token_json(&token));
    } else {
        println!(
            "{} service token {:?} ({})",
            if enabled { "Enabled" } else { "Disabled" },
            token.name,
            token.client_id
        );
    }
    Ok(())
}
