//! `tollgate policy …`: reusable Access policies, as the admin API's `policies` serve them.

use std::collections::HashMap;

use clap::{Args, Subcommand};
use tollgate_issue::{
    AppPolicy, Policies, PolicyDecision, PolicyRecord, PolicyRule, PolicyRules, TokenStore,
};

use crate::logs::{admin, record_admin};
use crate::output::{print_json, print_table, rfc3339};
use crate::tokens::Json;
use crate::{CliResult, clock, open_store};

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Create a reusable policy; applications use it with `app set NAME --policy POLICY`.
    Create {
        /// Its name (need not be unique; commands then take its id).
        name: String,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        json: Json,
    },
    /// List reusable policies.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Show one policy (a reusable one by name or id, or any by id).
    Show {
        /// The policy's name or id.
        policy: String,
        #[command(flatten)]
        json: Json,
    },
    /// Replace a reusable policy's decision and rules (and name, with --name); every
    /// application using it follows.
    Set {
        /// The policy's name or id.
        policy: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        json: Json,
    },
    /// Delete a reusable policy (refused while an application uses it).
    Delete {
        /// The policy's name or id.
        policy: String,
    },
}

/// Decision and rules. A RULE is `everyone`, `any-valid-service-token`,
/// `service-token=CLIENT_ID` (or the token's id), `ip=CIDR`, `email=ADDRESS` or
/// `email-domain=DOMAIN`.
#[derive(Debug, Args)]
pub(crate) struct RuleArgs {
    /// non_identity (Service Auth: service tokens), allow (users), deny or bypass.
    #[arg(long, value_parser = parse_decision)]
    decision: PolicyDecision,
    /// Admit when at least one of these matches (repeat the flag; at least one).
    #[arg(long = "include", value_name = "RULE", required = true)]
    include: Vec<String>,
    /// ... and all of these match (repeatable).
    #[arg(long = "require", value_name = "RULE")]
    require: Vec<String>,
    /// ... and none of these (repeatable).
    #[arg(long = "exclude", value_name = "RULE")]
    exclude: Vec<String>,
}

fn parse_decision(text: &str) -> Result<PolicyDecision, String> {
    text.replace('-', "_").parse().map_err(|e| format!("{e}"))
}

impl RuleArgs {
    /// The decision and rules, tokens named by client ID looked up in `tokens`.
    async fn resolve(&self, tokens: &dyn TokenStore) -> CliResult<(PolicyDecision, PolicyRules)> {
        let rules = PolicyRules {
            include: parse_rules("--include", &self.include, tokens).await?,
            require: parse_rules("--require", &self.require, tokens).await?,
            exclude: parse_rules("--exclude", &self.exclude, tokens).await?,
        };
        Ok((self.decision, rules))
    }
}

/// The RULEs of `flag`, in order.
async fn parse_rules(
    flag: &str,
    specs: &[String],
    tokens: &dyn TokenStore,
) -> CliResult<Vec<PolicyRule>> {
    let mut rules = Vec::with_capacity(specs.len());
    for spec in specs {
        rules.push(parse_rule(flag, spec, tokens).await?);
    }
    Ok(rules)
}

/// One RULE of `flag`.
async fn parse_rule(flag: &str, spec: &str, tokens: &dyn TokenStore) -> CliResult<PolicyRule> {
    let (kind, value) = match spec.split_once('=') {
        Some((kind, value)) => (kind, Some(value)),
        None => (spec, None),
    };
    let kind = kind.replace('_', "-");
    let rule = match (kind.as_str(), value) {
        ("everyone", None) => PolicyRule::Everyone {},
        ("any-valid-service-token", None) => PolicyRule::AnyValidServiceToken {},
        ("service-token", Some(name)) => {
            let token = if tollgate_issue::is_client_id(name) {
                tokens.get_token(name).await?
            } else {
                tokens.get_token_by_id(name).await?
            };
            let token = token.ok_or_else(|| format!("{flag} {spec}: no service token {name}"))?;
            PolicyRule::ServiceToken { token_id: token.id }
        }
        ("ip", Some(net)) => PolicyRule::Ip {
            ip: net.parse().map_err(|e| format!("{flag} {spec}: {e}"))?,
        },
        ("email", Some(email)) => PolicyRule::Email {
            email: email.to_owned(),
        },
        ("email-domain", Some(domain)) => PolicyRule::EmailDomain {
            domain: domain.trim_start_matches('@').to_owned(),
        },
        _ => {
            return Err(format!(
                "{flag} {spec:?}: a rule is everyone, any-valid-service-token, \
                 service-token=CLIENT_ID, ip=CIDR, email=ADDRESS or email-domain=DOMAIN"
            )
            .into());
        }
    };
    Ok(rule)
}

/// Token id → client ID, to show `service_token` rules as the CLI names tokens.
pub(crate) async fn client_ids(tokens: &dyn TokenStore) -> CliResult<HashMap<String, String>> {
    Ok(tokens
        .list_tokens()
        .await?
        .into_iter()
        .map(|t| (t.id, t.client_id))
        .collect())
}

/// A policy as JSON: Cloudflare's policy object (`precedence` when `linked`), plus `app_count`
/// for a reusable one when known.
pub(crate) fn policy_json(
    policy: &PolicyRecord,
    precedence: Option<u32>,
    app_count: Option<usize>,
) -> serde_json::Value {
    let mut value = serde_json::json!({
        "id": policy.id,
        "name": policy.name,
        "decision": policy.decision,
        "include": policy.rules.include,
        "require": policy.rules.require,
        "exclude": policy.rules.exclude,
        "reusable": policy.reusable,
        "created_at": rfc3339(policy.created_at),
        "updated_at": rfc3339(policy.updated_at),
    });
    if let Some(precedence) = precedence {
        value["precedence"] = precedence.into();
    }
    if let Some(count) = app_count {
        value["app_count"] = count.into();
    }
    value
}

/// One rule as the CLI spells it.
pub(crate) fn rule_text(rule: &PolicyRule, client_ids: &HashMap<String, String>) -> String {
    match rule {
        PolicyRule::ServiceToken { token_id } => format!(
            "service-token={}",
            client_ids.get(token_id).unwrap_or(token_id)
        ),
        PolicyRule::AnyValidServiceToken {} => "any-valid-service-token".to_owned(),
        PolicyRule::Ip { ip } => format!("ip={ip}"),
        PolicyRule::Everyone {} => "everyone".to_owned(),
        PolicyRule::Email { email } => format!("email={email}"),
        PolicyRule::EmailDomain { domain } => format!("email-domain={domain}"),
    }
}

fn rules_text(rules: &[PolicyRule], client_ids: &HashMap<String, String>) -> String {
    if rules.is_empty() {
        return "-".to_owned();
    }
    rules
        .iter()
        .map(|r| rule_text(r, client_ids))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints a policy's lines, indented by `indent`.
pub(crate) fn print_policy(
    indent: &str,
    policy: &PolicyRecord,
    client_ids: &HashMap<String, String>,
) {
    let scope = if policy.reusable {
        "reusable"
    } else {
        "this application's"
    };
    println!(
        "{indent}{:?} ({}, {}): {}",
        policy.name, policy.decision, scope, policy.id
    );
    println!(
        "{indent}  include: {}",
        rules_text(&policy.rules.include, client_ids)
    );
    if !policy.rules.require.is_empty() {
        println!(
            "{indent}  require: {}",
            rules_text(&policy.rules.require, client_ids)
        );
    }
    if !policy.rules.exclude.is_empty() {
        println!(
            "{indent}  exclude: {}",
            rules_text(&policy.rules.exclude, client_ids)
        );
    }
}

/// How many applications use each policy.
fn app_counts(apps: &[tollgate_issue::ApplicationRecord]) -> HashMap<&str, usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for linked in apps.iter().flat_map(|a| a.policies.iter()) {
        *counts.entry(linked.policy.id.as_str()).or_default() += 1;
    }
    counts
}

/// The reusable policies named on the command line, as `(precedence, id)` in the order given.
pub(crate) async fn links(policies: &Policies, names: &[String]) -> CliResult<Vec<(u32, String)>> {
    let mut links = Vec::with_capacity(names.len());
    for (precedence, name) in (1_u32..).zip(names) {
        links.push((precedence, policies.find(name).await?.id));
    }
    Ok(links)
}

/// Prints an application's policies.
pub(crate) fn print_app_policies(policies: &[AppPolicy], client_ids: &HashMap<String, String>) {
    if policies.is_empty() {
        println!("  Policies:         none (nobody is admitted)");
        return;
    }
    println!("  Policies:");
    for linked in policies {
        print_policy(
            &format!("    {}. ", linked.precedence),
            &linked.policy,
            client_ids,
        );
    }
}

pub(crate) async fn run(database: &str, command: PolicyCommand) -> CliResult {
    let store = open_store(database).await?;
    let policies = Policies::new(store.clone(), store.clone(), clock());
    let apps = || tollgate_issue::Applications::new(store.clone(), clock());
    match command {
        PolicyCommand::Create { name, rules, json } => {
            let (decision, rules) = rules.resolve(store.as_ref()).await?;
            let policy = policies.create(&name, decision, rules).await?;
            record_admin(&store, admin("policy.create").with_detail(&policy.id)).await;
            show(
                &policy,
                Some(0),
                json.json,
                &client_ids(store.as_ref()).await?,
            );
        }
        PolicyCommand::List { json } => {
            let list = policies.list().await?;
            let all_apps = apps().list().await?;
            let counts = app_counts(&all_apps);
            let count = |p: &PolicyRecord| counts.get(p.id.as_str()).copied().unwrap_or(0);
            if json.json {
                print_json(
                    &list
                        .iter()
                        .map(|p| policy_json(p, None, Some(count(p))))
                        .collect(),
                );
            } else {
                let ids = client_ids(store.as_ref()).await?;
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.id.clone(),
                            p.decision.to_string(),
                            count(p).to_string(),
                            rules_text(&p.rules.include, &ids),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "ID", "DECISION", "APPS", "INCLUDE"], &rows);
            }
        }
        PolicyCommand::Show { policy, json } => {
            let found = match policies.find(&policy).await {
                Ok(found) => found,
                // A policy scoped to an application is shown by its id.
                Err(_) if tollgate_issue::policy::is_uuid(&policy) => policies.get(&policy).await?,
                Err(e) => return Err(e.into()),
            };
            let all_apps = apps().list().await?;
            let count = app_counts(&all_apps).get(found.id.as_str()).copied();
            show(
                &found,
                found.reusable.then(|| count.unwrap_or(0)),
                json.json,
                &client_ids(store.as_ref()).await?,
            );
        }
        PolicyCommand::Set {
            policy,
            name,
            rules,
            json,
        } => {
            let current = policies.find(&policy).await?;
            let (decision, rules) = rules.resolve(store.as_ref()).await?;
            let name = name.unwrap_or_else(|| current.name.clone());
            let policy = policies.update(&current.id, &name, decision, rules).await?;
            record_admin(&store, admin("policy.update").with_detail(&policy.id)).await;
            let all_apps = apps().list().await?;
            let count = app_counts(&all_apps).get(policy.id.as_str()).copied();
            show(
                &policy,
                Some(count.unwrap_or(0)),
                json.json,
                &client_ids(store.as_ref()).await?,
            );
        }
        PolicyCommand::Delete { policy } => {
            let found = policies.find(&policy).await?;
            policies.delete(&found.id).await?;
            record_admin(&store, admin("policy.delete").with_detail(&found.id)).await;
            println!("Deleted policy {:?} ({})", found.name, found.id);
        }
    }
    Ok(())
}

fn show(
    policy: &PolicyRecord,
    app_count: Option<usize>,
    json: bool,
    client_ids: &HashMap<String, String>,
) {
    if json {
        print_json(&policy_json(policy, None, app_count));
        return;
    }
    print_policy("Policy ", policy, client_ids);
    if let Some(count) = app_count {
        println!("  used by {count} application(s)");
    }
}
