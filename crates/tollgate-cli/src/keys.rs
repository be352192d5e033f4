//! `tollgate keys …`

use clap::Subcommand;
use tollgate_issue::keys::SigningKeys;
use tollgate_issue::{KeyStore, SigningKeyRecord};

use crate::output::{opt_time, print_json, print_table, rfc3339};
use crate::tokens::Json;
use crate::{CliResult, clock, open_store, warn_if_keys_unencrypted};

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// List the signing keys (public facts only: kid and times).
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Rotate now (emergency): a new key signs from now on, the previous one stays accepted
    /// for its overlap. Safe with several instances: only one rotation wins.
    Rotate,
}

fn status(key: &SigningKeyRecord, now: i64) -> &'static str {
    if key.activates_at > now {
        "next"
    } else if key.retires_at.is_some_and(|at| at <= now) {
        "previous"
    } else {
        "signing"
    }
}

fn list(ring: &[SigningKeyRecord], encrypted: bool, json: bool) {
    let now = clock().unix_now();
    if json {
        let keys: Vec<serde_json::Value> = ring
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kid": k.kid,
                    "status": status(k, now),
                    "created_at": rfc3339(k.created_at),
                    "activates_at": rfc3339(k.activates_at),
                    "retires_at": k.retires_at.map(rfc3339),
                    "expires_at": k.expires_at.map(rfc3339),
                    "encrypted_at_rest": encrypted,
                })
            })
            .collect();
        print_json(&keys.into());
        return;
    }
    let rows: Vec<Vec<String>> = ring
        .iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                status(k, now).to_owned(),
                rfc3339(k.activates_at),
                opt_time(k.retires_at, "-"),
                opt_time(k.expires_at, "-"),
            ]
        })
        .collect();
    print_table(
        &["KID", "STATUS", "ACTIVE FROM", "RETIRES", "EXPIRES"],
        &rows,
    );
}

pub(crate) async fn run(database: &str, command: KeysCommand) -> CliResult {
    let store = open_store(database).await?;
    warn_if_keys_unencrypted(&store);
    match command {
        KeysCommand::List { json } => {
            let (_, ring) = store.load_ring().await?;
            if ring.is_empty() && !json.json {
                println!(
                    "No signing keys yet: `tollgate serve` or `tollgate keys rotate` creates one."
                );
                return Ok(());
            }
            list(&ring, store.encrypts_keys(), json.json);
        }
        KeysCommand::Rotate => {
            // A compare-and-swap on the stored ring: safe while instances serve; they pick the
            // new key up on their next poll of the store (250 ms).
            SigningKeys::new(store.clone(), clock())
                .rotate_now()
                .await?;
            let (_, ring) = store.load_ring().await?;
            let now = clock().unix_now();
            if let Some(key) = ring.iter().rev().find(|k| status(k, now) == "signing") {
                println!("Rotated: key {} signs from now on.", key.kid);
            }
            list(&ring, store.encrypts_keys(), false);
        }
    }
    Ok(())
}
