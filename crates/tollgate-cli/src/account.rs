//! `tollgate account …` and `tollgate api-token …`: the store's account ID and the admin API's
//! tokens.

use clap::Subcommand;
use tollgate_core::events::AuthEvent;
use tollgate_issue::{ApiPermission, ApiTokenRecord, ApiTokens};

use crate::logs::{admin, record_admin};
use crate::output::{opt_time, print_json, print_table, rfc3339};
use crate::tokens::Json;
use crate::{CliResult, clock, open_store};

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Print the store's account ID (32 hex, made once per store), as the admin API's paths
    /// spell it: /client/v4/accounts/ACCOUNT_ID/access/…
    Show {
        #[command(flatten)]
        json: Json,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiTokenCommand {
    /// Create an API token for the admin API; it is printed once and stored only hashed.
    Create {
        /// A name for the token (audit logs name callers by it).
        #[arg(long)]
        name: String,
        /// Read-only: the token may read but change nothing (default: read and edit).
        #[arg(long)]
        read_only: bool,
        #[command(flatten)]
        json: Json,
    },
    /// List API tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Delete an API token: it stops working at once.
    Delete {
        /// The token's id (from `api-token list`).
        id: String,
    },
}

fn api_token_json(token: &ApiTokenRecord) -> serde_json::Value {
    serde_json::json!({
        "id": token.id,
        "name": token.name,
        "permission": token.permission.as_str(),
        "created_at": rfc3339(token.created_at),
        "last_used_at": token.last_used_at.map(rfc3339),
    })
}

/// The admin event of `action` on the API token `token` (its name and id, never the token).
fn api_token_event(action: &str, token: &ApiTokenRecord) -> AuthEvent {
    admin(action).with_detail(format!(
        "API token {:?} ({}), {}",
        token.name, token.id, token.permission
    ))
}

pub(crate) async fn run_account(database: &str, command: AccountCommand) -> CliResult {
    let store = open_store(database).await?;
    let api_tokens = ApiTokens::new(store, clock());
    match command {
        AccountCommand::Show { json } => {
            let account_id = api_tokens.account_id().await?;
            if json.json {
                print_json(&serde_json::json!({ "account_id": account_id }));
            } else {
                println!("{account_id}");
            }
        }
    }
    Ok(())
}

pub(crate) async fn run_api_token(database: &str, command: ApiTokenCommand) -> CliResult {
    let store = open_store(database).await?;
    let api_tokens = ApiTokens::new(store.clone(), clock());
    match command {
        ApiTokenCommand::Create {
            name,
            read_only,
            json,
        } => {
            let permission = if read_only {
                ApiPermission::Read
            } else {
                ApiPermission::Edit
            };
            let (record, token) = api_tokens.create(&name, permission).await?;
            record_admin(&store, api_token_event("api_token.create", &record)).await;
            if json.json {
                let mut value = api_token_json(&record);
                value["token"] = token.expose_secret().into();
                print_json(&value);
            } else {
                println!(
                    "Created API token {:?} ({})",
                    record.name, record.permission
                );
                println!("  ID:    {}", record.id);
                println!("  Token: {}", token.expose_secret());
                println!("The token is shown only now: store it somewhere safe.");
            }
        }
        ApiTokenCommand::List { json } => {
            let list = api_tokens.list().await?;
            if json.json {
                print_json(&list.iter().map(api_token_json).collect());
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.id.clone(),
                            t.permission.to_string(),
                            rfc3339(t.created_at),
                            opt_time(t.last_used_at, "-"),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "ID", "PERMISSION", "CREATED", "LAST USED"], &rows);
            }
        }
        ApiTokenCommand::Delete { id } => {
            let record = api_tokens.delete(&id).await?;
            record_admin(&store, api_token_event("api_token.delete", &record)).await;
            println!("Deleted API token {:?} ({})", record.name, record.id);
        }
    }
    Ok(())
}
