//! The outbox's storage contract: [`NotificationStore`], what goes in ([`OutboxEntry`]), what
//! comes out to deliver ([`Delivery`]) and how a delivery ended ([`DeliveryOutcome`]).

use crate::store::StoreFuture;

/// One notice to deliver, as it is stored: the body is made once, so every attempt and every
/// target gets the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// Names the occurrence ([`Notice::dedupe_key`](tollgate_core::notice::Notice::dedupe_key)):
    /// an entry whose key is already in the outbox for a target adds nothing for it.
    pub dedupe_key: String,
    /// The id receivers see (stable across attempts, targets and instances).
    pub event_id: String,
    /// The notice's kind (`token.expiring`, …).
    pub kind: String,
    /// What is delivered (a JSON document).
    pub body: String,
    /// When it was enqueued, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

impl OutboxEntry {
    /// An entry.
    pub fn new(
        dedupe_key: impl Into<String>,
        event_id: impl Into<String>,
        kind: impl Into<String>,
        body: impl Into<String>,
        created_at_ms: i64,
    ) -> Self {
        Self {
            dedupe_key: dedupe_key.into(),
            event_id: event_id.into(),
            kind: kind.into(),
            body: body.into(),
            created_at_ms,
        }
    }
}

/// A delivery leased by [`NotificationStore::claim_due`]: one entry for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The delivery's id in the store.
    pub id: i64,
    /// Where it goes (a webhook URL).
    pub target: String,
    /// The entry's [`event_id`](OutboxEntry::event_id).
    pub event_id: String,
    /// The entry's kind.
    pub kind: String,
    /// The entry's body.
    pub body: String,
    /// When the entry was enqueued (ms since the epoch).
    pub created_at_ms: i64,
    /// Attempts so far, this one included (1 on the first).
    pub attempts: u32,
}

impl Delivery {
    /// A delivery of `entry` (its dedupe key aside) to `target`, as store `id`, on attempt
    /// `attempts`.
    pub fn new(id: i64, target: impl Into<String>, entry: OutboxEntry, attempts: u32) -> Self {
        Self {
            id,
            target: target.into(),
            event_id: entry.event_id,
            kind: entry.kind,
            body: entry.body,
            created_at_ms: entry.created_at_ms,
            attempts,
        }
    }
}

/// How an attempt ended, reported with [`NotificationStore::finish_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// Delivered at this time (ms since the epoch): never attempted again.
    Delivered {
        /// When.
        at_ms: i64,
    },
    /// Failed; due again at `next_attempt_ms`.
    Retry {
        /// When to try next (ms since the epoch).
        next_attempt_ms: i64,
        /// Why it failed (operator-facing).
        error: String,
    },
    /// Failed for good at this time: never attempted again.
    GaveUp {
        /// When.
        at_ms: i64,
        /// Why.
        error: String,
    },
}

/// Where the outbox is kept.
///
/// Rules every backend keeps:
/// - [`enqueue`](Self::enqueue) is idempotent per `(dedupe_key, target)`: whoever enqueues an
///   occurrence first wins, later copies (another instance, the same one after a restart) add
///   nothing;
/// - [`claim_due`](Self::claim_due) is atomic: of instances claiming at once each due delivery
///   goes to one, which holds it for the lease (its `next attempt` moves to the lease's end, so
///   a deliverer that dies mid-attempt is retried by someone else after the lease);
/// - writes here never bump the store's [`revision`](crate::Revision).
pub trait NotificationStore: Send + Sync + 'static {
    /// Adds one pending delivery of `entry` per target, due at once, skipping targets that
    /// already hold its dedupe key. Returns how many were added.
    fn enqueue<'a>(&'a self, entry: &'a OutboxEntry, targets: &'a [String])
    -> StoreFuture<'a, u32>;

    /// Leases up to `limit` deliveries due at `now_ms` (neither delivered nor given up, next
    /// attempt at or before now) for `lease_ms`, counting the attempt; oldest due first.
    fn claim_due(&self, now_ms: i64, lease_ms: i64, limit: u32) -> StoreFuture<'_, Vec<Delivery>>;

    /// Records how the attempt on delivery `id` ended. A delivery already delivered or given
    /// up is left as it is.
    fn finish_delivery(&self, id: i64, outcome: DeliveryOutcome) -> StoreFuture<'_, ()>;

    /// Deletes deliveries created before `before_ms` that are delivered or given up (pending
    /// ones stay); returns how many. Their dedupe keys go with them, so keep them longer than
    /// any occurrence can be reported again (tollgate reports expiring tokens within 7 days of
    /// expiry and expired ones within 7 days after).
    fn prune_deliveries(&self, before_ms: i64) -> StoreFuture<'_, u64>;

    /// Pending deliveries (neither delivered nor given up), for health checks and tests.
    fn pending_deliveries(&self) -> StoreFuture<'_, u64>;
}
