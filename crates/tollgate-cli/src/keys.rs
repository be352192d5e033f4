//! `tollgate keys …`

use clap::Subcommand;
use tollgate_issue::SigningKeys;
use tollgate_issue::{KeyStore, SigningKeyRecord};

use crate::logs::{admin, record_admin};
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
    Rotate {
        /// Revoke the previous keys at once (a compromised key): tokens they signed stop
        /// verifying, so every cookie is refused and clients exchange again; instances that
        /// have not yet polled the store may refuse new tokens for under a second.
        #[arg(long)]
        revoke_previous: bool,
    },
    /// Set how often the signing key rotates, for every instance sharing the store: DAYS
    /// (21 to 365, as the admin API's key_rotation_interval_days), or `default` for each
    /// server's own (42 days). It governs the next rotation; a key already scheduled keeps
    /// its time.
    SetInterval {
        /// DAYS, or `default`.
        interval: String,
    },
}

fn status(key: &SigningKeyRecord, now: i64) -> &'static str {
    if key.activates_at > now {
        "next"
    } else if key.expires_at.is_some_and(|at| at <= now) {
        "unpublished"
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
        KeysCommand::SetInterval { interval } => {
            let days = match interval.as_str() {
                "default" => None,
                text => Some(
                    text.trim_end_matches('d')
                        .parse::<u64>()
                        .ok()
                        .filter(|days| (21..=365).contains(days))
                        .ok_or_else(|| {
                            format!("{text:?}: the interval is 21 to 365 days, or `default`")
                        })?,
                ),
            };
            store.set_rotation_period(days.map(|d| d * 86_400)).await?;
            let detail = days.map_or_else(|| "default".to_owned(), |d| format!("{d}d"));
            record_admin(&store, admin("keys.update").with_detail(&detail)).await;
            match days {
                Some(days) => println!(
                    "Signing keys rotate every {days} days from the next rotation on (serving \
                     instances follow within a second)"
                ),
                None => println!(
                    "Signing keys rotate on each server's own schedule (42 days by default)"
                ),
            }
        }
        KeysCommand::Rotate { revoke_previous } => {
            // A compare-and-swap on the stored ring: safe while instances serve; they pick the
            // new key up on their next poll of the store (250 ms).
            let keys = SigningKeys::new(store.clone(), clock());
            if revoke_previous {
                keys.rotate_now_revoking().await?;
            } else {
                keys.rotate_now().await?;
            }
            let (_, ring) = store.load_ring().await?;
            let now = clock().unix_now();
            let signing = ring.iter().rev().find(|k| status(k, now) == "signing");
            let action = if revoke_previous {
                "keys.rotate_revoking"
            } else {
                "keys.rotate"
            };
            let mut event = admin(action);
            if let Some(key) = signing {
                event = event.with_detail(format!("key {} signs", key.kid));
            }
            record_admin(&store, event).await;
            if let Some(key) = signing {
                println!("Rotated: key {} signs from now on.", key.kid);
            }
            if revoke_previous {
                println!("Previous keys revoked: tokens they signed are no longer accepted.");
            }
            list(&ring, store.encrypts_keys(), false);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Keys {
        #[command(subcommand)]
        command: KeysCommand,
    }

    #[tokio::test]
    async fn rotate_revoke_previous_unpublishes_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("tollgate.db").display());
        let rotate = |args: &[&str]| {
            let mut argv = vec!["keys"];
            argv.extend_from_slice(args);
            Keys::try_parse_from(argv).unwrap().command
        };
        run(&database, rotate(&["rotate"])).await.unwrap();
        let store = open_store(&database).await.unwrap();
        let (_, first) = store.load_ring().await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(matches!(
            rotate(&["rotate"]),
            KeysCommand::Rotate {
                revoke_previous: false
            }
        ));

        run(&database, rotate(&["rotate", "--revoke-previous"]))
            .await
            .unwrap();
        let (_, ring) = store.load_ring().await.unwrap();
        let now = clock().unix_now();
        let old = ring.iter().find(|k| k.kid == first[0].kid).unwrap();
        assert!(old.expires_at.is_some_and(|at| at <= now), "{old:?}");
        assert_eq!(status(old, now), "unpublished");
        let signing: Vec<_> = ring
            .iter()
            .filter(|k| status(k, now) == "signing")
            .collect();
        assert_eq!(signing.len(), 1);
        assert_ne!(signing[0].kid, first[0].kid);
    }
}
