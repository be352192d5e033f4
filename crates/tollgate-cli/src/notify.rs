//! `tollgate serve --notify-webhook URL --notify-secret SECRET`: signed webhooks for expiring
//! and expired tokens and key rotations, through the store's outbox.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tollgate_issue::Issuer;
use tollgate_notify::{Notifier, RetryPolicy};
use tollgate_store::Store;

use crate::{CliResult, clock};

#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
    /// Post signed JSON notices (token expiring within 7 days, token expired, signing key
    /// rotated) to this URL (it may hold the receiver's secret: it is never logged whole); repeatable, or comma-separated in the variable. Each notice is
    /// delivered once per URL, across restarts and instances sharing the store.
    #[arg(
        long = "notify-webhook",
        value_name = "URL",
        env = "TOLLGATE_NOTIFY_WEBHOOK",
        hide_env_values = true,
        value_delimiter = ','
    )]
    webhooks: Vec<String>,
    /// The secret webhooks are signed with (HMAC-SHA256, at least 16 bytes); required with
    /// --notify-webhook. Prefer the variable: a flag shows in the process list.
    #[arg(
        long = "notify-secret",
        value_name = "SECRET",
        env = "TOLLGATE_NOTIFY_SECRET",
        hide_env_values = true
    )]
    secret: Option<String>,
    /// The first retry's delay, e.g. 5s (doubling up to 15 minutes).
    #[arg(long = "notify-retry-base", value_name = "DURATION", value_parser = tollgate_issue::parse_duration, default_value = "5s", hide = true)]
    retry_base: Duration,
}

impl NotifyArgs {
    /// Checks the flags before anything is opened: a bad URL or a missing secret fails here.
    pub(crate) fn check(&self) -> CliResult {
        if self.webhooks.is_empty() {
            if self.secret.is_some() {
                return Err("--notify-secret without --notify-webhook: nothing to sign".into());
            }
            return Ok(());
        }
        // Builds (without starting) a notifier on a throwaway store: the URLs and the
        // secret are checked as the real one will check them.
        drop(self.builder(Arc::new(tollgate_issue::MemoryStore::new()))?);
        Ok(())
    }

    fn builder(
        &self,
        store: Arc<dyn tollgate_issue::NotificationStore>,
    ) -> CliResult<tollgate_notify::NotifierBuilder> {
        let mut builder = Notifier::builder(store)
            .clock(clock())
            .retry(RetryPolicy::default().with_base(self.retry_base));
        for url in &self.webhooks {
            builder = builder.webhook(url)?;
        }
        match &self.secret {
            Some(secret) => builder = builder.secret(secret)?,
            None => {
                return Err(
                    "--notify-webhook needs --notify-secret (or TOLLGATE_NOTIFY_SECRET): \
                     receivers check the signature"
                        .into(),
                );
            }
        }
        Ok(builder)
    }

    /// Starts the notifier on `store` and attaches it to `issuer`; `None` without webhooks.
    pub(crate) async fn start(
        &self,
        store: Arc<Store>,
        issuer: &Issuer,
    ) -> CliResult<Option<Notifier>> {
        if self.webhooks.is_empty() {
            return Ok(None);
        }
        let notifier = self.builder(store)?.start()?;
        notifier.watch_issuer(issuer).await;
        Ok(Some(notifier))
    }
}
