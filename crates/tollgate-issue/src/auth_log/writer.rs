//! [`AuthLog`]: the [`EventSink`] that writes events to an [`AuthLogStore`] off the request
//! path, through a bounded queue, in batches.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tollgate_core::RejectionKind;
use tollgate_core::clock::unix_millis;
use tollgate_core::events::{AuthEvent, EventKind, EventSink};
use tollgate_core::{SharedClock, SystemClock};

use super::store::{AuthLogStore, bound_event};

/// How many events the queue holds by default before [`AuthLog`] drops (and counts) more.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// How long the log keeps events by default: 30 days.
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most events one batch takes from the queue by default.
pub const DEFAULT_LOG_BATCH_SIZE: usize = 1_000;

/// How long a batch waits for more events by default before it is written.
pub const DEFAULT_LOG_BATCH_INTERVAL: Duration = Duration::from_millis(250);

/// How often old events are pruned by default (and once at start).
pub const DEFAULT_LOG_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// The `action` of the event a log writes to report events it had to drop.
pub const DROPPED_ACTION: &str = "log.dropped";

/// How often a failed batch is tried again before its events are counted as dropped.
const WRITE_RETRIES: u32 = 3;

/// The least time between two `tracing` warnings about dropped events.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Builds an [`AuthLog`]; see [`AuthLog::builder`].
#[must_use]
pub struct AuthLogBuilder {
    store: Arc<dyn AuthLogStore>,
    clock: SharedClock,
    capacity: usize,
    batch_size: usize,
    batch_interval: Duration,
    retention: Duration,
    prune_interval: Duration,
}

impl fmt::Debug for AuthLogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLogBuilder")
            .field("capacity", &self.capacity)
            .field("batch_size", &self.batch_size)
            .field("batch_interval", &self.batch_interval)
            .field("retention", &self.retention)
            .field("prune_interval", &self.prune_interval)
            .finish_non_exhaustive()
    }
}

impl AuthLogBuilder {
    /// The clock events' ages are measured by when pruning (the system clock by default).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How many events the queue holds ([`DEFAULT_LOG_CAPACITY`]; at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The most events one batch takes ([`DEFAULT_LOG_BATCH_SIZE`]; at least 1).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// How long a batch waits for more events ([`DEFAULT_LOG_BATCH_INTERVAL`]).
    pub fn batch_interval(mut self, interval: Duration) -> Self {
        self.batch_interval = interval;
        self
    }

    /// How long events are kept ([`DEFAULT_LOG_RETENTION`]).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often old events are pruned ([`DEFAULT_LOG_PRUNE_INTERVAL`]; at least a second).
    pub fn prune_interval(mut self, interval: Duration) -> Self {
        self.prune_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// Starts the writer task and returns the log. Must be called inside a Tokio runtime (it
    /// spawns the writer); the writer prunes once at start, then every prune interval.
    pub fn start(self) -> AuthLog {
        let (events_tx, events_rx) = mpsc::channel(self.capacity);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            store: self.store,
            clock: self.clock,
            events: events_rx,
            control: control_rx,
            counters: counters.clone(),
            batch_size: self.batch_size,
            batch_interval: self.batch_interval,
            retention: self.retention,
            prune_interval: self.prune_interval,
            reported: 0,
            unwarned: 0,
            last_warning: None,
        };
        tokio::spawn(writer.run());
        AuthLog {
            shared: Arc::new(Shared {
                events: events_tx,
                control: control_tx,
                counters,
                capacity: self.capacity,
            }),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    written: AtomicU64,
}

struct Shared {
    events: mpsc::Sender<AuthEvent>,
    control: mpsc::UnboundedSender<Control>,
    counters: Arc<Counters>,
    capacity: usize,
}

enum Control {
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// The authentication log: an [`EventSink`] whose [`record`](EventSink::record) never waits.
///
/// Events go into a bounded queue (10,000 by default); a background task takes them in batches
/// (up to 1,000 events or every 250 ms, whichever comes first), folds identical refusals of one
/// batch (same kind, application, client ID, source address, reason and detail) into one row
/// with a `count`, and writes the batch through an [`AuthLogStore`] in one transaction.
///
/// Nothing is lost silently: an event that finds the queue full, or whose batch the store
/// refused a few times (three retries), is counted ([`dropped`](Self::dropped)), reported in
/// the log itself as an admin event with action [`DROPPED_ACTION`] (refused, `count` = how many)
/// and as a `tracing` warning (at most one every 10 s). Events older than the retention (30
/// days by default) are pruned at start and every hour.
///
/// Cheap to clone; the writer stops when every clone is gone (writing what is queued) or at
/// [`close`](Self::close).
///
/// ```
/// use std::sync::Arc;
/// use tollgate_core::events::{AuthEvent, EventKind, Events};
/// use tollgate_issue::{AuthLog, AuthLogStore, LogQuery, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let log = AuthLog::builder(store.clone()).start();
/// let events = Events::none().with(Arc::new(log.clone()));
/// events.emit(|| AuthEvent::new(EventKind::Exchange, 1_700_000_000_000).with_app("api"));
/// log.flush().await;
/// let logged = store.query_events(&LogQuery::new()).await?;
/// assert_eq!(logged[0].event.app.as_deref(), Some("api"));
/// assert_eq!(log.dropped(), 0);
/// log.close().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AuthLog {
    shared: Arc<Shared>,
}

impl fmt::Debug for AuthLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLog")
            .field("capacity", &self.capacity())
            .field("queued", &self.queued())
            .field("dropped", &self.dropped())
            .field("written", &self.written())
            .finish()
    }
}

impl AuthLog {
    /// A log writing to `store`, with the defaults above; configure it, then
    /// [`start`](AuthLogBuilder::start) it.
    pub fn builder(store: Arc<dyn AuthLogStore>) -> AuthLogBuilder {
        AuthLogBuilder {
            store,
            clock: Arc::new(SystemClock),
            capacity: DEFAULT_LOG_CAPACITY,
            batch_size: DEFAULT_LOG_BATCH_SIZE,
            batch_interval: DEFAULT_LOG_BATCH_INTERVAL,
            retention: DEFAULT_LOG_RETENTION,
            prune_interval: DEFAULT_LOG_PRUNE_INTERVAL,
        }
    }

    /// How many events were dropped so far (queue full, store failing, log closed), counting an
    /// aggregated event as its `count`.
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.load(Ordering::Relaxed)
    }

    /// How many events were written so far (an aggregated row counts as its `count`; reports
    /// of dropped events are not counted).
    pub fn written(&self) -> u64 {
        self.shared.counters.written.load(Ordering::Relaxed)
    }

    /// How many events wait in the queue now (never more than [`capacity`](Self::capacity)).
    pub fn queued(&self) -> usize {
        self.shared.capacity - self.shared.events.capacity()
    }

    /// How many events the queue holds.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Waits until every event recorded before the call is written (or counted as dropped).
    pub async fn flush(&self) {
        self.send(Control::Flush).await;
    }

    /// Writes what is queued and stops the writer; events recorded afterwards are counted as
    /// dropped. For an orderly shutdown.
    pub async fn close(&self) {
        self.send(Control::Close).await;
    }

    async fn send(&self, control: fn(oneshot::Sender<()>) -> Control) {
        let (done, wait) = oneshot::channel();
        if self.shared.control.send(control(done)).is_ok() {
            // An error means the writer is gone: nothing is left to wait for.
            let _ = wait.await;
        }
    }
}

impl EventSink for AuthLog {
    fn record(&self, event: &AuthEvent) {
        let shared = &self.shared;
        // A full queue is the flood case: count the event without even copying it.
        if shared.events.capacity() == 0 || shared.events.try_send(event.clone()).is_err() {
            shared
                .counters
                .dropped
                .fetch_add(u64::from(event.count.max(1)), Ordering::Relaxed);
        }
    }
}

/// What the writer does after taking events.
enum Next {
    /// Write the batch and wait for more.
    Batch,
    /// Write everything queued, then answer.
    Control(Control),
    /// Every handle is gone: write everything queued and stop.
    Ended,
}

/// The background task.
struct Writer {
    store: Arc<dyn AuthLogStore>,
    clock: SharedClock,
    events: mpsc::Receiver<AuthEvent>,
    control: mpsc::UnboundedReceiver<Control>,
    counters: Arc<Counters>,
    batch_size: usize,
    batch_interval: Duration,
    retention: Duration,
    prune_interval: Duration,
    /// How many dropped events the log has reported in itself.
    reported: u64,
    /// Dropped events not yet in a `tracing` warning.
    unwarned: u64,
    last_warning: Option<Instant>,
}

impl Writer {
    async fn run(mut self) {
        let mut prune = tokio::time::interval(self.prune_interval);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: prune at start, before taking any event.
        prune.tick().await;
        self.prune().await;
        loop {
            let mut batch = Vec::new();
            let next = tokio::select! {
                biased;
                _ = prune.tick() => {
                    self.prune().await;
                    continue;
                }
                control = self.control.recv() => match control {
                    Some(control) => Next::Control(control),
                    None => Next::Ended,
                },
                event = self.events.recv() => match event {
                    Some(event) => {
                        batch.push(event);
                        self.fill(&mut batch).await
                    }
                    None => Next::Ended,
                },
            };
            if matches!(next, Next::Batch) {
                self.write(batch).await;
                continue;
            }
            // A flush or close asks for everything queued so far; so does the end.
            while let Ok(event) = self.events.try_recv() {
                batch.push(event);
                if batch.len() >= self.batch_size {
                    self.write(std::mem::take(&mut batch)).await;
                }
            }
            self.write(batch).await;
            match next {
                Next::Control(Control::Flush(done)) => {
                    let _ = done.send(());
                }
                Next::Control(Control::Close(done)) => {
                    self.events.close();
                    let _ = done.send(());
                    return;
                }
                _ => return,
            }
        }
    }

    /// Takes more events into `batch` until it is full or the batch interval has passed, or a
    /// flush or close arrives, or every handle is gone.
    async fn fill(&mut self, batch: &mut Vec<AuthEvent>) -> Next {
        let deadline = Instant::now() + self.batch_interval;
        while batch.len() < self.batch_size {
            tokio::select! {
                biased;
                control = self.control.recv() => return match control {
                    Some(control) => Next::Control(control),
                    None => Next::Ended,
                },
                event = self.events.recv() => match event {
                    Some(event) => batch.push(event),
                    None => return Next::Ended,
                },
                () = tokio::time::sleep_until(deadline) => return Next::Batch,
            }
        }
        Next::Batch
    }

    fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// Writes `batch` aggregated, with a report of dropped events not yet reported.
    async fn write(&mut self, batch: Vec<AuthEvent>) {
        let mut rows: Vec<AuthEvent> = aggregate(batch).into_iter().map(bound_event).collect();
        let events: u64 = rows.iter().map(|e| u64::from(e.count)).sum();
        let unreported = self
            .counters
            .dropped
            .load(Ordering::Relaxed)
            .saturating_sub(self.reported);
        let report = u32::try_from(unreported).unwrap_or(u32::MAX);
        if report > 0 {
            rows.push(dropped_event(self.now_ms(), report));
            self.warn_dropped(u64::from(report));
        }
        if rows.is_empty() {
            return;
        }
        let mut attempt = 0;
        loop {
            match self.store.append_events(&rows).await {
                Ok(()) => {
                    self.reported += u64::from(report);
                    self.counters.written.fetch_add(events, Ordering::Relaxed);
                    return;
                }
                Err(error) if attempt < WRITE_RETRIES => {
                    attempt += 1;
                    tracing::debug!(%error, attempt, "cannot write the authentication log; retrying");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                Err(error) => {
                    // The report is not lost: it is written, larger, with the next batch.
                    self.counters.dropped.fetch_add(events, Ordering::Relaxed);
                    tracing::warn!(
                        %error,
                        dropped = events,
                        "cannot write the authentication log: events dropped"
                    );
                    return;
                }
            }
        }
    }

    fn warn_dropped(&mut self, dropped: u64) {
        self.unwarned += dropped;
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|last| now.duration_since(last) >= WARN_EVERY)
        {
            tracing::warn!(
                dropped = self.unwarned,
                total = self.counters.dropped.load(Ordering::Relaxed),
                "authentication log events dropped (queue full or store failing)"
            );
            self.unwarned = 0;
            self.last_warning = Some(now);
        }
    }

    async fn prune(&self) {
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let before = self.now_ms().saturating_sub(retention);
        match self.store.prune_events(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "authentication log pruned"),
            Err(error) => tracing::warn!(%error, "cannot prune the authentication log"),
        }
    }
}

/// The report of `count` dropped events: a refused admin event, so `--failed` shows it.
fn dropped_event(at_ms: i64, count: u32) -> AuthEvent {
    let mut event = AuthEvent::new(EventKind::Admin, at_ms)
        .with_action(DROPPED_ACTION, "tollgate")
        .with_detail(format!(
            "{count} events dropped: the log's queue was full or the store failed"
        ));
    event.allowed = false;
    event.count = count;
    event
}

/// What makes two refusals identical.
type RefusalKey = (
    EventKind,
    Option<String>,
    Option<String>,
    Option<IpAddr>,
    Option<RejectionKind>,
    Option<String>,
);

/// Folds identical refusals (same kind, application, client ID, source address, reason and
/// detail) into the first of them, adding up their counts; allowed events pass as they are.
/// The order of first occurrences is kept.
fn aggregate(batch: Vec<AuthEvent>) -> Vec<AuthEvent> {
    let mut out: Vec<AuthEvent> = Vec::with_capacity(batch.len());
    let mut seen: HashMap<RefusalKey, usize> = HashMap::new();
    for event in batch {
        if event.allowed {
            out.push(event);
            continue;
        }
        let key = (
            event.kind,
            event.app.clone(),
            event.client_id.clone(),
            event.source_ip,
            event.reason,
            event.detail.clone(),
        );
        match seen.get(&key) {
            Some(&index) => {
                let first = &mut out[index];
                first.count = first.count.saturating_add(event.count.max(1));
            }
            None => {
                seen.insert(key, out.len());
                out.push(event);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::auth_log::{LogQuery, LoggedEvent, Order};
    use crate::memory_store::MemoryStore;
    use crate::store::{StoreError, StoreFuture};

    fn refusal(at_ms: i64, detail: &str) -> AuthEvent {
        AuthEvent::new(EventKind::Exchange, at_ms)
            .refused(RejectionKind::InvalidCredentials)
            .with_app("api")
            .with_detail(detail)
            .with_source_ip(Some("127.0.0.1".parse().unwrap()))
    }

    /// A log that keeps the tests' 1970 events (no pruning by the system clock).
    fn start(store: Arc<dyn AuthLogStore>) -> AuthLogBuilder {
        AuthLog::builder(store).retention(Duration::from_secs(100 * 365 * 86_400))
    }

    async fn all(store: &MemoryStore) -> Vec<LoggedEvent> {
        store
            .query_events(&LogQuery::new().order(Order::OldestFirst))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn events_are_written_in_order_on_flush() {
        let store = Arc::new(MemoryStore::new());
        let log = start(store.clone()).start();
        for at in 0..5 {
            log.record(&AuthEvent::new(EventKind::Exchange, at));
        }
        log.flush().await;
        let times: Vec<i64> = all(&store).await.iter().map(|e| e.event.at_ms).collect();
        assert_eq!(times, [0, 1, 2, 3, 4]);
        assert_eq!((log.written(), log.dropped(), log.queued()), (5, 0, 0));
        log.close().await;
    }

    #[tokio::test]
    async fn identical_refusals_of_a_batch_are_one_row_with_a_count() {
        let store = Arc::new(MemoryStore::new());
        let log = start(store.clone()).start();
        for at in 0..100 {
            log.record(&refusal(at, "wrong secret"));
        }
        log.record(&refusal(100, "unknown client ID"));
        log.record(&AuthEvent::new(EventKind::Exchange, 101).with_app("api"));
        log.record(&AuthEvent::new(EventKind::Exchange, 102).with_app("api"));
        log.flush().await;
        let rows = all(&store).await;
        let summary: Vec<_> = rows
            .iter()
            .map(|e| (e.event.at_ms, e.event.count, e.event.detail.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (0, 100, Some("wrong secret")),
                (100, 1, Some("unknown client ID")),
                (101, 1, None),
                (102, 1, None),
            ],
            "allowed events are never folded"
        );
        assert_eq!(log.written(), 103);
        log.close().await;
    }

    #[tokio::test]
    async fn a_full_queue_drops_counts_and_reports() {
        let store = Arc::new(MemoryStore::new());
        let log = start(store.clone()).capacity(10).start();
        // No await in between: the writer cannot run, the queue fills.
        for at in 0..25 {
            log.record(&AuthEvent::new(EventKind::Exchange, at));
            assert!(log.queued() <= 10);
        }
        assert_eq!(log.dropped(), 15);
        log.flush().await;
        let rows = all(&store).await;
        assert_eq!(rows.len(), 11);
        let report = &rows[10].event;
        assert_eq!(report.action.as_deref(), Some(DROPPED_ACTION));
        assert_eq!((report.allowed, report.count), (false, 15));
        // Reported once, not on every batch.
        log.record(&AuthEvent::new(EventKind::Exchange, 99));
        log.flush().await;
        assert_eq!(all(&store).await.len(), 12);
        assert_eq!(log.written(), 11);
        log.close().await;
    }

    /// A memory store whose appends fail while `failures` is above 0.
    #[derive(Default)]
    struct Flaky {
        inner: MemoryStore,
        failures: AtomicU32,
    }

    impl AuthLogStore for Flaky {
        fn append_events<'a>(&'a self, events: &'a [AuthEvent]) -> StoreFuture<'a, ()> {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Box::pin(std::future::ready(Err(StoreError::Backend(
                    "disk on fire".into(),
                ))));
            }
            self.inner.append_events(events)
        }
        fn select_events<'a>(&'a self, query: &'a LogQuery) -> StoreFuture<'a, Vec<LoggedEvent>> {
            self.inner.select_events(query)
        }
        fn latest_token_names<'a>(
            &'a self,
            client_ids: &'a [String],
        ) -> StoreFuture<'a, HashMap<String, (Option<String>, String)>> {
            self.inner.latest_token_names(client_ids)
        }
        fn prune_events(&self, before_ms: i64) -> StoreFuture<'_, u64> {
            self.inner.prune_events(before_ms)
        }
    }

    #[tokio::test]
    async fn store_errors_are_retried_then_counted_and_reported() {
        let store = Arc::new(Flaky::default());
        let log = start(store.clone()).start();
        // Fails twice, then works: nothing lost.
        store.failures.store(2, Ordering::SeqCst);
        log.record(&AuthEvent::new(EventKind::Exchange, 1));
        log.flush().await;
        assert_eq!((log.written(), log.dropped()), (1, 0));
        // Fails past the retries: the batch (3 events, folded into 1 row) is dropped and counted…
        store.failures.store(WRITE_RETRIES + 1, Ordering::SeqCst);
        for _ in 0..3 {
            log.record(&refusal(2, "wrong secret"));
        }
        log.flush().await;
        assert_eq!(log.dropped(), 3);
        // …and reported with the next batch once the store works again.
        log.record(&AuthEvent::new(EventKind::Exchange, 3));
        log.flush().await;
        let rows = store
            .query_events(&LogQuery::new().order(Order::OldestFirst))
            .await
            .unwrap();
        let summary: Vec<_> = rows
            .iter()
            .map(|e| (e.event.at_ms, e.event.action.as_deref(), e.event.count))
            .collect();
        assert_eq!(summary.len(), 3, "{summary:?}");
        assert_eq!(summary[1], (3, None, 1));
        assert_eq!((summary[2].1, summary[2].2), (Some(DROPPED_ACTION), 3));
        log.close().await;
    }

    #[tokio::test]
    async fn old_events_are_pruned_at_start_and_closing_stops_the_writer() {
        let clock = tollgate_core::ManualClock::at_unix(1_700_000_000);
        let store = Arc::new(MemoryStore::new());
        let day_ms = 86_400_000;
        let now_ms = 1_700_000_000_000;
        store
            .append_events(&[
                AuthEvent::new(EventKind::Exchange, now_ms - 31 * day_ms),
                AuthEvent::new(EventKind::Exchange, now_ms - 29 * day_ms),
            ])
            .await
            .unwrap();
        let log = AuthLog::builder(store.clone())
            .clock(Arc::new(clock))
            .start();
        log.flush().await;
        let left: Vec<i64> = all(&store).await.iter().map(|e| e.event.at_ms).collect();
        assert_eq!(left, [now_ms - 29 * day_ms]);
        log.record(&AuthEvent::new(EventKind::Exchange, now_ms));
        log.close().await;
        assert_eq!(all(&store).await.len(), 2, "close writes what is queued");
        log.record(&AuthEvent::new(EventKind::Exchange, now_ms));
        assert_eq!(log.dropped(), 1, "a closed log counts what it cannot take");
        log.flush().await; // returns at once
    }

    #[tokio::test]
    async fn dropping_every_handle_writes_what_is_queued() {
        let store = Arc::new(MemoryStore::new());
        let log = start(store.clone()).start();
        log.record(&AuthEvent::new(EventKind::Exchange, 1));
        drop(log);
        for _ in 0..200 {
            if store.auth_log().len() == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the queued event was not written");
    }
}
