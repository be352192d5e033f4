//! `tollgate app …`

use clap::Subcommand;
use tollgate_issue::parse_duration;
use tollgate_issue::{AppSettings, Applications};

use crate::output::{app_json, print_json, print_table, session};
use crate::tokens::Json;
use crate::{CliResult, clock, open_store};

#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// Create an application; prints its AUD tag.
    Create {
        /// A unique name.
        name: String,
        /// Application-token (cookie) lifetime, e.g. 24h (the default), 30m; 0 = no cookie.
        #[arg(long, value_parser = parse_duration)]
        session_duration: Option<std::time::Duration>,
        /// Accept both credentials as JSON in this one header (e.g. Authorization).
        #[arg(long, value_name = "HEADER")]
        read_service_tokens_from_header: Option<String>,
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
    /// Change an application's settings.
    Set {
        /// The application's name.
        name: String,
        /// Application-token (cookie) lifetime, e.g. 24h; 0 = no cookie.
        #[arg(long, value_parser = parse_duration)]
        session_duration: Option<std::time::Duration>,
        /// Accept both credentials as JSON in this one header (e.g. Authorization).
        #[arg(long, value_name = "HEADER")]
        read_service_tokens_from_header: Option<String>,
        /// Stop accepting credentials in a single header.
        #[arg(long, conflicts_with = "read_service_tokens_from_header")]
        no_read_service_tokens_from_header: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Delete an application.
    Delete {
        /// The application's name.
        name: String,
    },
}

fn settings(
    session_duration: Option<std::time::Duration>,
    header: Option<String>,
    no_header: bool,
) -> AppSettings {
    let mut settings = AppSettings::new();
    if let Some(duration) = session_duration {
        settings = settings.session_duration(duration);
    }
    if let Some(header) = header {
        settings = settings.read_service_tokens_from_header(header);
    }
    if no_header {
        settings = settings.no_single_header();
    }
    settings
}

fn show(app: &tollgate_issue::ApplicationRecord, json: bool) {
    if json {
        print_json(&app_json(app));
        return;
    }
    println!("Application {:?}", app.name);
    println!("  AUD tag:          {}", app.aud);
    println!("  Session duration: {}", session(app.session_duration));
    println!(
        "  Single header:    {}",
        app.read_service_tokens_from_header
            .as_deref()
            .unwrap_or("-")
    );
}

pub(crate) async fn run(database: &str, command: AppCommand) -> CliResult {
    let apps = Applications::new(open_store(database).await?, clock());
    match command {
        AppCommand::Create {
            name,
            session_duration,
            read_service_tokens_from_header,
            json,
        } => {
            let app = apps
                .create(
                    &name,
                    settings(session_duration, read_service_tokens_from_header, false),
                )
                .await?;
            show(&app, json.json);
        }
        AppCommand::List { json } => {
            let list = apps.list().await?;
            if json.json {
                print_json(&list.iter().map(app_json).collect());
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            a.aud.clone(),
                            session(a.session_duration),
                            a.read_service_tokens_from_header
                                .clone()
                                .unwrap_or_else(|| "-".to_owned()),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "AUD", "SESSION", "SINGLE HEADER"], &rows);
            }
        }
        AppCommand::Show { name, json } => show(&apps.get(&name).await?, json.json),
        AppCommand::Set {
            name,
            session_duration,
            read_service_tokens_from_header,
            no_read_service_tokens_from_header,
            json,
        } => {
            let app = apps
                .update(
                    &name,
                    settings(
                        session_duration,
                        read_service_tokens_from_header,
                        no_read_service_tokens_from_header,
                    ),
                )
                .await?;
            show(&app, json.json);
        }
        AppCommand::Delete { name } => {
            apps.delete(&name).await?;
            println!("Deleted application {name:?}");
        }
    }
    Ok(())
}
