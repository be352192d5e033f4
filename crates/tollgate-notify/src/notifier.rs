//! [`Notifier`]: notices into the outbox, and the background task that delivers them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use futures_util::future::join_all;
use reqwest::header as http_header;
use serde_json::json;
use tokio::sync::{Notify, broadcast};
use tollgate_core::clock::{rfc3339, unix_millis, unix_seconds};
use tollgate_core::notice::Notice;
use tollgate_core::{SharedClock, SystemClock};
use tollgate_issue::{
    Delivery, DeliveryOutcome, Issuer, NotificationStore, OutboxEntry, StoreError,
};

use crate::error::{NotifyError, NotifyErrorKind};
use crate::retry::RetryPolicy;
use crate::signature::{
    EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSecret, sign,
};

/// How often the outbox is checked for due deliveries (a new notice wakes it at once).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long one webhook request may take, connection included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is held by the instance attempting it; past it, another may
/// try (the holder died mid-attempt). Longer than the request timeout.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// How long delivered and given-up deliveries (and so their dedupe keys) are kept.
pub const DEFAULT_OUTBOX_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// How many deliveries one pass claims.
const CLAIM_BATCH: u32 = 32;
/// How often finished deliveries past the retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The id receivers see for the occurrence `dedupe_key`: the first 16 bytes of its SHA-256 as
/// 32 lowercase hex digits — the same on every instance, target and retry.
///
/// ```
/// assert_eq!(tollgate_notify::event_id("key.rotated:abc").len(), 32);
/// ```
pub fn event_id(dedupe_key: &str) -> String {
    let digest = digest::digest(&digest::SHA256, dedupe_key.as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

/// The JSON document delivered for `notice`, created at `at` (Unix seconds):
/// `{"id", "type", "created_at", "text", "data"}`.
///
/// ```
/// use tollgate_core::notice::Notice;
///
/// let notice = Notice::KeyRotated { kid: "b".into(), previous_kid: "a".into(), at: 0 };
/// let body: serde_json::Value = serde_json::from_str(&tollgate_notify::event_body(&notice, 0))?;
/// assert_eq!(body["type"], "key.rotated");
/// assert_eq!(body["data"]["kid"], "b");
/// assert_eq!(body["id"], tollgate_notify::event_id(&notice.dedupe_key()));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn event_body(notice: &Notice, at: i64) -> String {
    json!({
        "id": event_id(&notice.dedupe_key()),
        "type": notice.kind(),
        "created_at": rfc3339(at),
        "text": format!("tollgate: {notice}"),
        "data": notice.data(),
    })
    .to_string()
}

/// Counters of a [`Notifier`] since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotifyStats {
    /// Deliveries added to the outbox (occurrences already there not counted).
    pub enqueued: u64,
    /// Deliveries a receiver accepted (2xx).
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Deliveries given up.
    pub given_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    enqueued: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    given_up: AtomicU64,
}

/// Builds a [`Notifier`]; see [`Notifier::builder`].
#[must_use]
pub struct NotifierBuilder {
    store: Arc<dyn NotificationStore>,
    webhooks: Vec<String>,
    secret: Option<WebhookSecret>,
    clock: SharedClock,
    retry: RetryPolicy,
    request_timeout: Duration,
    poll_interval: Duration,
    lease: Duration,
    retention: Duration,
}

impl fmt::Debug for NotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierBuilder")
            .field(
                "webhooks",
                &self
                    .webhooks
                    .iter()
                    .map(|u| redacted(u))
                    .collect::<Vec<_>>(),
            )
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl NotifierBuilder {
    /// Adds a webhook (repeatable): every notice is posted to each.
    ///
    /// # Errors
    /// [`NotifyErrorKind::InvalidUrl`] unless `url` is an absolute `http://` or `https://` URL
    /// with a host and without credentials.
    pub fn webhook(mut self, url: &str) -> Result<Self, NotifyError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            NotifyError::new(
                NotifyErrorKind::InvalidUrl,
                format!("a webhook URL is invalid: {e}"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(NotifyError::new(
                NotifyErrorKind::InvalidUrl,
                "a webhook URL must be http:// or https:// with a host",
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(NotifyError::new(
                NotifyErrorKind::InvalidUrl,
                "a webhook URL must not carry credentials (they would be logged); \
                 requests are signed instead",
            ));
        }
        let url = parsed.to_string();
        if !self.webhooks.contains(&url) {
            self.webhooks.push(url);
        }
        Ok(self)
    }

    /// Signs every request with `secret` (at least [`MIN_SECRET_LEN`](crate::MIN_SECRET_LEN)
    /// bytes). Required when there is a webhook.
    ///
    /// # Errors
    /// [`NotifyErrorKind::InvalidSecret`] if it is too short.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, NotifyError> {
        self.secret = Some(WebhookSecret::new(secret)?);
        Ok(self)
    }

    /// The clock deliveries are timed by (system clock by default).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// When failed deliveries are retried and given up ([`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long one request may take ([`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How often the outbox is polled for due deliveries ([`DEFAULT_POLL_INTERVAL`]).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long finished deliveries are kept ([`DEFAULT_OUTBOX_RETENTION`]).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Starts the delivery task (on the current tokio runtime). It stops when the last clone
    /// of the notifier is dropped.
    ///
    /// # Errors
    /// [`NotifyErrorKind::InvalidSecret`] if there are webhooks but no secret;
    /// [`NotifyErrorKind::HttpClient`] if the client cannot be built;
    /// [`NotifyErrorKind::NoRuntime`] outside a runtime.
    pub fn start(self) -> Result<Notifier, NotifyError> {
        if !self.webhooks.is_empty() && self.secret.is_none() {
            return Err(NotifyError::new(
                NotifyErrorKind::InvalidSecret,
                "webhooks need a signing secret, so receivers can tell tollgate's requests \
                 from anyone else's",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            NotifyError::new(
                NotifyErrorKind::NoRuntime,
                "Notifier::start needs a tokio runtime",
            )
        })?;
        let client = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tollgate-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                NotifyError::new(NotifyErrorKind::HttpClient, format!("HTTP client: {e}"))
            })?;
        for url in &self.webhooks {
            if url.starts_with("http://") && !is_loopback_url(url) {
                tracing::warn!(
                    webhook = %redacted(url),
                    "webhook is plain http: notices travel unencrypted (signed, so not forgeable)"
                );
            }
        }
        let lease = self
            .lease
            .max(self.request_timeout + Duration::from_secs(5));
        let shared = Arc::new(Shared {
            store: self.store,
            targets: self.webhooks,
            secret: self.secret,
            client,
            clock: self.clock,
            retry: self.retry,
            poll_interval: self.poll_interval,
            lease,
            retention: self.retention,
            wake: Arc::new(Notify::new()),
            counters: Counters::default(),
        });
        if !shared.targets.is_empty() {
            runtime.spawn(deliver_loop(
                Arc::downgrade(&shared),
                shared.wake.clone(),
                shared.poll_interval,
            ));
        }
        Ok(Notifier { shared })
    }
}

/// A webhook URL as logs and `Debug` show it: scheme, host and port only. Many receivers
/// (chat incoming webhooks) hold their secret in the path or query, so the rest never leaves
/// the store.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!("{}/…", parsed.origin().ascii_serialization()),
        Err(_) => "<webhook>".to_owned(),
    }
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

struct Shared {
    store: Arc<dyn NotificationStore>,
    targets: Vec<String>,
    secret: Option<WebhookSecret>,
    client: reqwest::Client,
    clock: SharedClock,
    retry: RetryPolicy,
    poll_interval: Duration,
    lease: Duration,
    retention: Duration,
    wake: Arc<Notify>,
    counters: Counters,
}

/// Delivers [`Notice`]s to webhooks through the store's outbox, once per occurrence; see the
/// [crate docs](crate). Cheap to clone; the delivery task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "webhooks",
                &self
                    .shared
                    .targets
                    .iter()
                    .map(|u| redacted(u))
                    .collect::<Vec<_>>(),
            )
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts building a notifier whose outbox is `store` (share it between instances, e.g.
    /// one PostgreSQL database, and each occurrence is delivered once).
    pub fn builder(store: Arc<dyn NotificationStore>) -> NotifierBuilder {
        NotifierBuilder {
            store,
            webhooks: Vec::new(),
            secret: None,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            lease: DEFAULT_LEASE,
            retention: DEFAULT_OUTBOX_RETENTION,
        }
    }

    /// The webhooks, as normalised URLs (they may hold a receiver's secret: do not log them).
    pub fn webhooks(&self) -> &[String] {
        &self.shared.targets
    }

    /// Counters since the notifier started.
    pub fn stats(&self) -> NotifyStats {
        let c = &self.shared.counters;
        NotifyStats {
            enqueued: c.enqueued.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            given_up: c.given_up.load(Ordering::Relaxed),
        }
    }

    /// Puts `notice` in the outbox for every webhook (unless that occurrence is there
    /// already) and wakes the delivery task. Returns how many deliveries were added.
    ///
    /// # Errors
    /// The store's, if it cannot be written (the caller may retry; nothing was added).
    pub async fn notify(&self, notice: &Notice) -> Result<u32, StoreError> {
        self.shared.enqueue(notice).await
    }

    /// Enqueues every notice `notices` yields, on a task of its own, until the sender closes or
    /// the notifier is dropped. A receiver that lags loses the oldest notices (logged).
    pub fn watch(&self, mut notices: broadcast::Receiver<Notice>) {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            loop {
                let notice = match notices.recv().await {
                    Ok(notice) => notice,
                    Err(broadcast::error::RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "notifier fell behind; notices were lost");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                shared.enqueue_logged(&notice).await;
            }
        });
    }

    /// Watches `issuer`'s notices ([`Issuer::subscribe_notices`]) and enqueues the ones
    /// already in force ([`Issuer::current_notices`], raised before this call).
    pub async fn watch_issuer(&self, issuer: &Issuer) {
        self.watch(issuer.subscribe_notices());
        for notice in issuer.current_notices() {
            self.shared.enqueue_logged(&notice).await;
        }
    }

    /// Attempts every due delivery now, and waits for the attempts (the task does this on its
    /// own; this is for shutdown and tests).
    pub async fn deliver_due(&self) {
        self.shared.deliver_due().await;
    }
}

impl Shared {
    async fn enqueue(&self, notice: &Notice) -> Result<u32, StoreError> {
        if self.targets.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let key = notice.dedupe_key();
        let entry = OutboxEntry::new(
            key.clone(),
            event_id(&key),
            notice.kind(),
            event_body(notice, unix_seconds(now)),
            unix_millis(now),
        );
        let added = self.store.enqueue(&entry, &self.targets).await?;
        if added > 0 {
            self.counters
                .enqueued
                .fetch_add(u64::from(added), Ordering::Relaxed);
            tracing::debug!(kind = notice.kind(), added, "notice enqueued");
            self.wake.notify_one();
        }
        Ok(added)
    }

    async fn enqueue_logged(&self, notice: &Notice) {
        if let Err(error) = self.enqueue(notice).await {
            tracing::error!(%error, kind = notice.kind(), "could not enqueue a notice");
        }
    }

    /// Claims due deliveries and attempts them together, until none is due.
    async fn deliver_due(&self) {
        loop {
            let now_ms = unix_millis(self.clock.now());
            let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
            let due = match self.store.claim_due(now_ms, lease_ms, CLAIM_BATCH).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "could not read the notification outbox");
                    return;
                }
            };
            let full = due.len() == CLAIM_BATCH as usize;
            join_all(due.into_iter().map(|delivery| self.attempt(delivery))).await;
            if !full {
                return;
            }
        }
    }

    async fn attempt(&self, delivery: Delivery) {
        let outcome = match self.post(&delivery).await {
            Ok(()) => {
                self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(webhook = %redacted(&delivery.target), kind = %delivery.kind, "notice delivered");
                DeliveryOutcome::Delivered {
                    at_ms: unix_millis(self.clock.now()),
                }
            }
            Err(failure) => self.after_failure(&delivery, failure),
        };
        if let Err(error) = self.store.finish_delivery(delivery.id, outcome).await {
            // The lease runs out and the delivery is attempted again (possibly twice: receivers
            // dedupe on the event id).
            tracing::warn!(%error, "could not record a delivery's outcome");
        }
    }

    async fn post(&self, delivery: &Delivery) -> Result<(), Failure> {
        let timestamp = unix_seconds(self.clock.now());
        let mut request = self
            .client
            .post(&delivery.target)
            .header(http_header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(EVENT_ID_HEADER, &delivery.event_id)
            .header(EVENT_HEADER, &delivery.kind)
            .body(delivery.body.clone());
        if let Some(secret) = &self.secret {
            request = request.header(
                SIGNATURE_HEADER,
                sign(secret, timestamp, delivery.body.as_bytes()),
            );
        }
        let response = request.send().await.map_err(|e| Failure {
            status: None,
            retry_after: None,
            message: describe(e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(http_header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(Failure {
            status: Some(status.as_u16()),
            retry_after,
            message: format!("answered {status}"),
        })
    }

    fn after_failure(&self, delivery: &Delivery, failure: Failure) -> DeliveryOutcome {
        let now_ms = unix_millis(self.clock.now());
        let age = Duration::from_millis(
            u64::try_from(now_ms.saturating_sub(delivery.created_at_ms)).unwrap_or(0),
        );
        let refused = failure
            .status
            .is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429);
        let give_up = age >= self.retry.give_up_after
            || (refused && delivery.attempts >= self.retry.client_error_attempts);
        if give_up {
            self.counters.given_up.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                webhook = %redacted(&delivery.target),
                kind = %delivery.kind,
                attempts = delivery.attempts,
                error = %failure.message,
                "giving up on a notice"
            );
            return DeliveryOutcome::GaveUp {
                at_ms: now_ms,
                error: failure.message,
            };
        }
        let mut delay = self.retry.delay(delivery.attempts, jitter());
        if let Some(asked) = failure.retry_after {
            delay = delay.max(asked.min(self.retry.max));
        }
        self.counters.retried.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            webhook = %redacted(&delivery.target),
            kind = %delivery.kind,
            attempts = delivery.attempts,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %failure.message,
            "notice delivery failed; retrying"
        );
        DeliveryOutcome::Retry {
            next_attempt_ms: now_ms
                .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            error: failure.message,
        }
    }

    async fn prune(&self) {
        let retention_ms = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let before = unix_millis(self.clock.now()).saturating_sub(retention_ms);
        match self.store.prune_deliveries(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "old deliveries pruned from the outbox"),
            Err(error) => tracing::warn!(%error, "could not prune the notification outbox"),
        }
    }
}

/// Why an attempt failed.
struct Failure {
    status: Option<u16>,
    retry_after: Option<Duration>,
    message: String,
}

/// A transport error, without the URL's query (which might hold a receiver's token).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        format!("request failed: {}", error.without_url())
    }
}

/// A number in `[0, 1)` from the system's random source (0 if it fails).
fn jitter() -> f64 {
    let mut bytes = [0u8; 2];
    match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => f64::from(u16::from_le_bytes(bytes)) / 65_536.0,
        Err(_) => 0.0,
    }
}

/// The delivery task: a pass when woken by a new notice or every poll interval, until the
/// notifier is dropped; finished deliveries pruned hourly.
async fn deliver_loop(weak: Weak<Shared>, wake: Arc<Notify>, interval: Duration) {
    let mut last_prune: Option<Instant> = None;
    loop {
        {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            shared.deliver_due().await;
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                shared.prune().await;
                last_prune = Some(Instant::now());
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn logged_urls_keep_only_the_origin() {
        assert_eq!(
            redacted("https://hooks.slack.com/services/T0/B0/s3cr3t?token=x"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redacted("http://127.0.0.1:9000/hook"),
            "http://127.0.0.1:9000/…"
        );
        assert_eq!(redacted("not a url"), "<webhook>");
    }
}
