//! The key cache: the current key set behind an [`ArcSwap`], read without locks on every
//! request, refreshed by a single flight of fetches.
//!
//! - **Reads** load an `Arc` snapshot: no lock, no await.
//! - **Unknown `kid`**: one fetch at a time (later callers join it), and for remote sources no
//!   new fetch until a cooldown has passed since the last one started, so a flood of bogus
//!   `kid`s costs one fetch per cooldown.
//! - **Background refresh**: a task spawned on the first verification sleeps until the set's
//!   max age (`Cache-Control`) runs out, then refetches, backing off on failure. It holds only a
//!   `Weak` reference and is aborted when the cache is dropped.
//! - **Failures**: the last good keys keep serving until `max_age + max_stale`, with a warning
//!   per failed fetch; past that, verification answers `KeysUnavailable`.
//! - No lock is ever held across a fetch: the mutex guards only the "who is fetching" record.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tollgate_core::SharedClock;
use tollgate_core::notice::Notice;

use crate::algorithm::Algorithm;
use crate::config::VerifyConfig;
use crate::error::{FetchError, FetchErrorKind};
use crate::key_source::{KeySet, KeySource};
use crate::public_key::PublicKey;

/// Upper bound on any max age, whatever the source says.
const MAX_AGE_CAP: Duration = Duration::from_secs(24 * 3600);

/// A `kid`'s entry in the key set.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    Key(Arc<PublicKey>),
    /// Two different keys claimed this `kid`: neither is used.
    Ambiguous,
}

/// One immutable generation of the key set.
#[derive(Debug)]
pub(crate) struct Snapshot {
    keys: HashMap<String, Slot>,
    raw: Option<KeySet>,
    loaded: bool,
    fresh_until: SystemTime,
    usable_until: SystemTime,
}

impl Snapshot {
    fn empty() -> Self {
        Self {
            keys: HashMap::new(),
            raw: None,
            loaded: false,
            fresh_until: SystemTime::UNIX_EPOCH,
            usable_until: SystemTime::UNIX_EPOCH,
        }
    }

    /// Whether the keys may be used at `now`.
    pub(crate) fn usable(&self, now: SystemTime) -> bool {
        self.loaded && now < self.usable_until
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&Slot> {
        self.keys.get(kid)
    }

    /// Whether `key` is still the key this set holds for its `kid`.
    pub(crate) fn holds(&self, key: &Arc<PublicKey>) -> bool {
        matches!(self.keys.get(key.kid()), Some(Slot::Key(k)) if Arc::ptr_eq(k, key))
    }

    fn usable_keys(&self) -> usize {
        self.keys
            .values()
            .filter(|s| matches!(s, Slot::Key(_)))
            .count()
    }
}

/// Why a fetch is wanted; decides whether the cooldown applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A token named a `kid` the set lacks, or there are no usable keys.
    Missing,
    /// The set is past its max age (non-blocking).
    Stale,
    /// The background schedule.
    Background,
    /// An explicit [`Verifier::refresh`](crate::Verifier::refresh).
    Forced,
}

type SharedFetch = Shared<BoxFuture<'static, Result<(), FetchError>>>;

#[derive(Debug, Default)]
struct Flight {
    running: Option<(u64, SharedFetch)>,
    last_started: Option<SystemTime>,
    next_id: u64,
}

pub(crate) struct KeyCache {
    source: Arc<dyn KeySource>,
    local: bool,
    algorithms: Vec<Algorithm>,
    clock: SharedClock,
    max_stale: Duration,
    cooldown: Duration,
    refresh_interval: Duration,
    min_refresh_interval: Duration,
    fetch_timeout: Duration,
    snapshot: ArcSwap<Snapshot>,
    flight: Mutex<Flight>,
    refresher: Mutex<Option<AbortHandle>>,
    refresher_alive: Arc<AtomicBool>,
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    /// When the last fetch succeeded, in unix milliseconds by the cache's clock; 0: never.
    last_success_ms: AtomicU64,
    /// Failed fetches in a row, and when the first of them failed (unix seconds).
    streak: Mutex<(u32, i64)>,
    alert_after: u32,
    notices: broadcast::Sender<Notice>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.snapshot.load();
        let kids: Vec<&String> = snapshot.keys.keys().collect();
        f.debug_struct("KeyCache")
            .field("source", &self.source)
            .field("kids", &kids)
            .field("fresh_until", &snapshot.fresh_until)
            .finish_non_exhaustive()
    }
}

impl Drop for KeyCache {
    fn drop(&mut self) {
        let slot = self
            .refresher
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = slot.take() {
            handle.abort();
        }
    }
}

/// Clears the "refresher running" flag when the refresher task ends or is dropped (also when
/// its runtime shuts down), so the next verification starts a new one.
struct AliveFlag(Arc<AtomicBool>);

impl Drop for AliveFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl KeyCache {
    pub(crate) fn new(config: &VerifyConfig, source: Arc<dyn KeySource>) -> Self {
        Self {
            local: source.is_local(),
            source,
            algorithms: config.algorithms.clone(),
            clock: config.clock.clone(),
            max_stale: config.max_stale,
            cooldown: config.refetch_cooldown,
            refresh_interval: config.refresh_interval,
            min_refresh_interval: config.min_refresh_interval,
            fetch_timeout: config.fetch_timeout,
            snapshot: ArcSwap::from_pointee(Snapshot::empty()),
            flight: Mutex::new(Flight::default()),
            refresher: Mutex::new(None),
            refresher_alive: Arc::new(AtomicBool::new(false)),
            fetches: AtomicU64::new(0),
            fetch_failures: AtomicU64::new(0),
            last_success_ms: AtomicU64::new(0),
            streak: Mutex::new((0, 0)),
            alert_after: config.key_fetch_alert_after,
            notices: broadcast::channel(16).0,
        }
    }

    /// Notices about fetching (failing past the threshold, recovered).
    pub(crate) fn subscribe_notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Counts a failed fetch; at the threshold, raises [`Notice::KeyFetchFailing`].
    fn note_failure(&self, err: &FetchError, now: SystemTime) {
        if self.local || self.alert_after == 0 {
            return;
        }
        let (failures, since) = {
            let mut streak = self.streak.lock().unwrap_or_else(PoisonError::into_inner);
            if streak.0 == 0 {
                streak.1 = tollgate_core::clock::unix_seconds(now);
            }
            streak.0 = streak.0.saturating_add(1);
            *streak
        };
        if failures == self.alert_after {
            let notice = Notice::KeyFetchFailing {
                source: self.source.describe(),
                failures,
                since,
                error: err.to_string(),
            };
            tracing::error!(notice = %notice, "signing keys cannot be fetched");
            let _ = self.notices.send(notice);
        }
    }

    /// Ends a failure streak; raises [`Notice::KeyFetchRecovered`] if it had been reported.
    fn note_success(&self) {
        if self.local || self.alert_after == 0 {
            return;
        }
        let (failures, since) =
            std::mem::take(&mut *self.streak.lock().unwrap_or_else(PoisonError::into_inner));
        if failures >= self.alert_after {
            let notice = Notice::KeyFetchRecovered {
                source: self.source.describe(),
                failures,
                since,
            };
            tracing::info!(notice = %notice, "signing key fetch works again");
            let _ = self.notices.send(notice);
        }
    }

    /// The current snapshot (lock-free).
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// The current snapshot, owned.
    pub(crate) fn load_full(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Fetches started so far.
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Fetches that failed (the source failed, timed out, or served no usable key).
    pub(crate) fn fetch_failure_count(&self) -> u64 {
        self.fetch_failures.load(Ordering::Relaxed)
    }

    /// When a fetch last succeeded, by the cache's clock.
    pub(crate) fn last_fetch_success(&self) -> Option<SystemTime> {
        match self.last_success_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// Starts the background refresher if it is not running (first use, or its runtime shut
    /// down) and a tokio runtime is at hand. One atomic load when it runs.
    pub(crate) fn ensure_refresher(self: &Arc<Self>) {
        if self.refresher_alive.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut slot = self
            .refresher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.refresher_alive.load(Ordering::Acquire) {
            return;
        }
        self.refresher_alive.store(true, Ordering::Release);
        let alive = AliveFlag(self.refresher_alive.clone());
        let weak = Arc::downgrade(self);
        let task = runtime.spawn(async move {
            let _alive = alive;
            refresh_loop(weak).await;
        });
        *slot = Some(task.abort_handle());
    }

    /// Starts a refresh if the snapshot is past its max age, without waiting for it.
    pub(crate) fn kick_if_stale(self: &Arc<Self>, snapshot: &Snapshot, now: SystemTime) {
        if snapshot.loaded && now >= snapshot.fresh_until {
            // The fetch runs on its own (spawned) task; nobody waits for it here.
            drop(self.begin(Reason::Stale));
        }
    }

    /// Fetches (or joins the fetch in flight) and waits for it, bounded by the fetch timeout.
    /// Returns `None` when the cooldown forbids a new fetch.
    pub(crate) async fn refetch(
        self: &Arc<Self>,
        reason: Reason,
    ) -> Option<Result<(), FetchError>> {
        let fetch = self.begin(reason)?;
        Some(
            tokio::time::timeout(self.fetch_timeout, fetch)
                .await
                .unwrap_or_else(|_| Err(FetchError::of_kind(FetchErrorKind::Timeout))),
        )
    }

    /// The fetch in flight, or a new one if `reason` allows it now.
    fn begin(self: &Arc<Self>, reason: Reason) -> Option<SharedFetch> {
        let now = self.clock.now();
        let mut flight = self.flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, running)) = &flight.running {
            return match reason {
                Reason::Stale => None,
                _ => Some(running.clone()),
            };
        }
        // A clock that went backwards ends the cooldown rather than stretching it.
        let cooling = |cooldown: Duration| {
            flight
                .last_started
                .is_some_and(|last| now.duration_since(last).is_ok_and(|since| since < cooldown))
        };
        let blocked = match reason {
            Reason::Missing => !self.local && cooling(self.cooldown),
            Reason::Stale => cooling(self.cooldown.max(self.min_refresh_interval)),
            Reason::Background | Reason::Forced => false,
        };
        if blocked {
            return None;
        }
        let id = flight.next_id;
        flight.next_id += 1;
        flight.last_started = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let shared = self.fetch_future(id);
        flight.running = Some((id, shared.clone()));
        Some(shared)
    }

    /// The fetch itself, spawned when a runtime is at hand so that it completes even if every
    /// waiter goes away. It holds the cache only weakly.
    fn fetch_future(self: &Arc<Self>, id: u64) -> SharedFetch {
        let source = self.source.clone();
        let weak = Arc::downgrade(self);
        let timeout = self.fetch_timeout;
        let work = async move {
            let result = match tokio::time::timeout(timeout, source.fetch()).await {
                Ok(result) => result,
                Err(_) => Err(FetchError::of_kind(FetchErrorKind::Timeout)),
            };
            let Some(cache) = weak.upgrade() else {
                return result.map(drop);
            };
            let outcome = cache.install(result);
            cache.finish_flight(id);
            outcome
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn(work);
                let weak = Arc::downgrade(self);
                async move {
                    task.await.unwrap_or_else(|_| {
                        // The runtime shut down mid-fetch: forget this flight so the next
                        // caller can start another.
                        if let Some(cache) = weak.upgrade() {
                            cache.finish_flight(id);
                        }
                        Err(FetchError::new("key fetch task was cancelled"))
                    })
                }
                .boxed()
                .shared()
            }
            Err(_) => work.boxed().shared(),
        }
    }

    /// Clears the flight record if it is still flight `id`.
    fn finish_flight(&self, id: u64) {
        let mut flight = self.flight.lock().unwrap_or_else(PoisonError::into_inner);
        if flight
            .running
            .as_ref()
            .is_some_and(|(running, _)| *running == id)
        {
            flight.running = None;
        }
    }

    /// Installs a fetched set (or logs the failure and keeps the last good one).
    fn install(&self, result: Result<KeySet, FetchError>) -> Result<(), FetchError> {
        let now = self.clock.now();
        let current = self.snapshot.load_full();
        let set = match result {
            Ok(set) => set,
            Err(err) => {
                self.fetch_failures.fetch_add(1, Ordering::Relaxed);
                self.log_failure(&err, &current, now);
                self.note_failure(&err, now);
                return Err(err);
            }
        };
        let unchanged = current.raw.as_ref().is_some_and(|raw| raw.same_keys(&set));
        let keys = if unchanged {
            current.keys.clone()
        } else {
            self.parse(&set, &current)
        };
        let usable = keys.values().filter(|s| matches!(s, Slot::Key(_))).count();
        if usable == 0 {
            let err = FetchError::of_kind(FetchErrorKind::NoUsableKeys);
            self.fetch_failures.fetch_add(1, Ordering::Relaxed);
            self.log_failure(&err, &current, now);
            self.note_failure(&err, now);
            return Err(err);
        }
        let max_age = set
            .max_age()
            .unwrap_or(self.refresh_interval)
            .clamp(self.min_refresh_interval, MAX_AGE_CAP);
        if !unchanged {
            tracing::info!(
                keys = usable,
                skipped = set.len().saturating_sub(usable),
                max_age_secs = max_age.as_secs(),
                "signing keys loaded"
            );
        }
        let since_epoch = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let ms = u64::try_from(since_epoch.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.last_success_ms.store(ms, Ordering::Relaxed);
        self.note_success();
        self.snapshot.store(Arc::new(Snapshot {
            keys,
            raw: Some(set),
            loaded: true,
            fresh_until: now + max_age,
            usable_until: now + max_age + self.max_stale,
        }));
        Ok(())
    }

    fn log_failure(&self, err: &FetchError, current: &Snapshot, now: SystemTime) {
        if current.usable(now) {
            let stale_secs = now
                .duration_since(current.fresh_until)
                .map_or(0, |d| d.as_secs());
            let left_secs = current
                .usable_until
                .duration_since(now)
                .map_or(0, |d| d.as_secs());
            tracing::warn!(
                error = %err,
                keys = current.usable_keys(),
                stale_secs,
                usable_for_secs = left_secs,
                "signing key fetch failed; serving the last good keys"
            );
        } else if current.loaded {
            tracing::error!(
                error = %err,
                "signing key fetch failed and the last good keys are past max_stale; \
                 refusing tokens until a fetch succeeds"
            );
        } else {
            tracing::error!(error = %err, "signing key fetch failed; no keys yet");
        }
    }

    /// Parses a set, skipping bad JWKs one by one, reusing unchanged keys from `current` (so
    /// verified-token cache entries survive) and refusing `kid`s claimed by different keys.
    fn parse(&self, set: &KeySet, current: &Snapshot) -> HashMap<String, Slot> {
        let mut keys: HashMap<String, Slot> = HashMap::with_capacity(set.len());
        for jwk in set.jwks() {
            let key = match PublicKey::from_jwk(jwk, &self.algorithms) {
                Ok(key) => key,
                Err(reason) => {
                    tracing::warn!(kid = %kid_for_log(jwk), reason, "skipping JWK");
                    continue;
                }
            };
            let key = match current.keys.get(key.kid()) {
                Some(Slot::Key(old)) if old.fingerprint() == key.fingerprint() => old.clone(),
                _ => Arc::new(key),
            };
            match keys.entry(key.kid().to_owned()) {
                Entry::Vacant(vacant) => {
                    vacant.insert(Slot::Key(key));
                }
                Entry::Occupied(mut occupied) => {
                    let same = matches!(occupied.get(), Slot::Key(k) if k.fingerprint() == key.fingerprint());
                    if !same {
                        tracing::error!(
                            kid = %key.kid(),
                            "two different keys share one kid; refusing tokens that name it"
                        );
                        occupied.insert(Slot::Ambiguous);
                    }
                }
            }
        }
        keys
    }

    /// How long the background task sleeps before its next fetch.
    fn next_delay(&self, failures: u32) -> Duration {
        if failures > 0 {
            let backoff = Duration::from_secs(1u64 << failures.min(16));
            return backoff.min(self.refresh_interval.min(Duration::from_secs(300)));
        }
        let snapshot = self.snapshot.load();
        snapshot
            .fresh_until
            .duration_since(self.clock.now())
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1))
    }
}

async fn refresh_loop(weak: Weak<KeyCache>) {
    let mut failures = 0u32;
    loop {
        let Some(delay) = weak.upgrade().map(|cache| cache.next_delay(failures)) else {
            return;
        };
        tokio::time::sleep(delay).await;
        let fetch = {
            let Some(cache) = weak.upgrade() else {
                return;
            };
            let snapshot = cache.load();
            if failures == 0 && snapshot.loaded && cache.clock.now() < snapshot.fresh_until {
                // Someone else refreshed meanwhile.
                continue;
            }
            cache.begin(Reason::Background)
        };
        match fetch {
            Some(fetch) => match fetch.await {
                Ok(()) => failures = 0,
                Err(_) => failures = failures.saturating_add(1),
            },
            None => failures = failures.saturating_add(1),
        }
    }
}

/// A JWK's `kid` for a log line: a short, printable prefix.
fn kid_for_log(jwk: &Value) -> String {
    jwk.get("kid")
        .and_then(Value::as_str)
        .unwrap_or("-")
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect()
}
