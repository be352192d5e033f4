//! `tollgate app …`

use clap::{Args, Subcommand};
use std::collections::HashMap;
use tollgate_issue::parse_duration;

use tollgate_issue::{AppSettings, ApplicationRecord, Applications, Policies, ServiceAuthPolicy};

use crate::logs::{admin, record_admin};
use crate::output::{app_json, print_json, print_table, rfc3339, session};
use crate::tokens::Json;
use crate::{CliResult, clock, open_store};

#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// Create an application; prints its AUD tag.
    Create {
        /// A unique name.
        name: String,
        #[command(flatten)]
        settings: SettingArgs,
        #[command(flatten)]
        json: Json,
    },
    /// List applications.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Show one application.
    Show {
        /// The application's name.
        name: String,
        #[command(flatten)]
        json: Json,
    },
    /// Change an application's settings (those given; the rest stay).
    Set {
        /// The application's name.
        name: String,
        #[command(flatten)]
        settings: SettingArgs,
        /// Stop accepting credentials in a single header.
        #[arg(long, conflicts_with = "read_service_tokens_from_header")]
        no_read_service_tokens_from_header: bool,
        /// Remove the domain: `serve` no longer routes requests to the application by host.
        #[arg(long, conflicts_with = "domain")]
        no_domain: bool,
        /// Remove the origin: `serve` answers the application's requests itself.
        #[arg(long, conflicts_with = "origin")]
        no_origin: bool,
        /// Admit any valid service token (replaces the policies with one Service Auth policy).
        #[arg(long, conflicts_with_all = ["allow_tokens", "policies"])]
        any_token: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Delete an application.
    Delete {
        /// The application's name.
        name: String,
    },
    /// Revoke every application token (cookie) issued for the application so far; service
    /// tokens keep working and exchange for new ones.
    RevokeTokens {
        /// The application's name.
        name: String,
        #[command(flatten)]
        json: Json,
    },
}

/// The settings `create` and `set` share.
#[derive(Debug, Args)]
pub(crate) struct SettingArgs {
    /// Application-token (cookie) lifetime, e.g. 24h (the default), 30m; 0 = no cookie.
    #[arg(long, value_parser = parse_duration)]
    session_duration: Option<std::time::Duration>,
    /// Accept both credentials as JSON in this one header (e.g. Authorization).
    #[arg(long, value_name = "HEADER")]
    read_service_tokens_from_header: Option<String>,
    /// Where the application lives, for `serve` to route by: host, host/path or *.host, with
    /// an optional :port (e.g. example.com/service-token). Unique among applications.
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// The origin `serve` proxies the application's authenticated requests to
    /// (http:// or https:// URL, optional path prefix).
    #[arg(long, value_name = "URL")]
    origin: Option<String>,
    /// Admit only this service token (a client ID; repeat the flag for several) instead of
    /// any valid one: the application's policies become one Service Auth policy naming them.
    #[arg(long = "allow-token", value_name = "CLIENT_ID")]
    allow_tokens: Vec<String>,
    /// Use these reusable policies (names or ids, from `tollgate policy`; repeat the flag, in
    /// precedence order) instead of the application's current ones.
    #[arg(
        long = "policy",
        value_name = "POLICY",
        conflicts_with = "allow_tokens"
    )]
    policies: Vec<String>,
}

impl SettingArgs {
    async fn into_settings(self, policies: &Policies) -> CliResult<AppSettings> {
        let mut settings = AppSettings::new();
        if let Some(duration) = self.session_duration {
            settings = settings.session_duration(duration);
        }
        if let Some(header) = self.read_service_tokens_from_header {
            settings = settings.read_service_tokens_from_header(header);
        }
        if let Some(domain) = self.domain {
            settings = settings.domain(domain);
        }
        if let Some(origin) = self.origin {
            settings = settings.origin(origin);
        }
        if !self.allow_tokens.is_empty() {
            settings = settings.policy(ServiceAuthPolicy::Tokens(self.allow_tokens));
        }
        if !self.policies.is_empty() {
            let links = crate::policies::links(policies, &self.policies).await?;
            settings = settings.reusable_policies(links);
        }
        Ok(settings)
    }
}

fn dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

fn show(app: &ApplicationRecord, json: bool, client_ids: &HashMap<String, String>) {
    if json {
        print_json(&app_json(app, client_ids));
        return;
    }
    println!("Application {:?}", app.name);
    println!("  ID:               {}", app.id);
    println!("  AUD tag:          {}", app.aud);
    println!("  Domain:           {}", dash(app.domain.as_deref()));
    println!("  Origin:           {}", dash(app.origin.as_deref()));
    println!("  Session duration: {}", session(app.session_duration));
    println!(
        "  Single header:    {}",
        dash(app.read_service_tokens_from_header.as_deref())
    );
    crate::policies::print_app_policies(&app.policies, client_ids);
    println!(
        "  Tokens revoked:   {}",
        app.tokens_revoked_before.map_or_else(
            || "never".to_owned(),
            |t| format!("issued before {}", rfc3339(t))
        )
    );
}

pub(crate) async fn run(database: &str, command: AppCommand) -> CliResult {
    let store = open_store(database).await?;
    let apps = Applications::new(store.clone(), clock()).with_tokens(store.clone());
    let policies = Policies::new(store.clone(), store.clone(), clock());
    let ids = crate::policies::client_ids(store.as_ref()).await?;
    match command {
        AppCommand::Create {
            name,
            settings,
            json,
        } => {
            let settings = settings.into_settings(&policies).await?;
            let app = apps.create(&name, settings).await?;
            record_admin(&store, admin("app.create").with_app(&app.name)).await;
            show(&app, json.json, &ids);
        }
        AppCommand::List { json } => {
            let list = apps.list().await?;
            if json.json {
                print_json(&list.iter().map(|a| app_json(a, &ids)).collect());
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            a.aud.clone(),
                            dash(a.domain.as_deref()).to_owned(),
                            dash(a.origin.as_deref()).to_owned(),
                            session(a.session_duration),
                            dash(a.read_service_tokens_from_header.as_deref()).to_owned(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "NAME",
                        "AUD",
                        "DOMAIN",
                        "ORIGIN",
                        "SESSION",
                        "SINGLE HEADER",
                    ],
                    &rows,
                );
            }
        }
        AppCommand::Show { name, json } => show(&apps.get(&name).await?, json.json, &ids),
        AppCommand::Set {
            name,
            settings,
            no_read_service_tokens_from_header,
            no_domain,
            no_origin,
            any_token,
            json,
        } => {
            let mut settings = settings.into_settings(&policies).await?;
            if no_read_service_tokens_from_header {
                settings = settings.no_single_header();
            }
            if no_domain {
                settings = settings.no_domain();
            }
            if no_origin {
                settings = settings.no_origin();
            }
            if any_token {
                settings = settings.policy(ServiceAuthPolicy::AnyValidServiceToken);
            }
            let app = apps.update(&name, settings).await?;
            record_admin(&store, admin("app.update").with_app(&app.name)).await;
            show(&app, json.json, &ids);
        }
        AppCommand::Delete { name } => {
            apps.delete(&name).await?;
            record_admin(&store, admin("app.delete").with_app(&name)).await;
            println!("Deleted application {name:?}");
        }
        AppCommand::RevokeTokens { name, json } => {
            let app = apps.revoke_tokens(&name).await?;
            record_admin(&store, admin("app.revoke_tokens").with_app(&app.name)).await;
            if json.json {
                print_json(&app_json(&app, &ids));
            } else {
                println!(
                    "Revoked the application tokens of {:?} issued before {}; service tokens \
                     exchange for new ones (other instances follow within a second)",
                    app.name,
                    app.tokens_revoked_before.map_or_else(String::new, rfc3339)
                );
            }
        }
    }
    Ok(())
}
