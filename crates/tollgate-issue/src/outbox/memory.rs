//! [`NotificationStore`] for [`MemoryStore`]: the outbox in a vector.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::store::{Delivery, DeliveryOutcome, NotificationStore, OutboxEntry};
use crate::memory_store::MemoryStore;
use crate::store::StoreFuture;

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    target: String,
    entry: OutboxEntry,
    attempts: u32,
    next_attempt_ms: i64,
    finished: bool,
}

/// The deliveries a [`MemoryStore`] holds.
#[derive(Debug, Default)]
pub(crate) struct MemoryOutbox {
    inner: Mutex<(i64, Vec<Row>)>,
}

impl MemoryOutbox {
    fn lock(&self) -> MutexGuard<'_, (i64, Vec<Row>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl NotificationStore for MemoryStore {
    fn enqueue<'a>(
        &'a self,
        entry: &'a OutboxEntry,
        targets: &'a [String],
    ) -> StoreFuture<'a, u32> {
        let mut inner = self.outbox().lock();
        let mut added = 0;
        for target in targets {
            let (last_id, rows) = &mut *inner;
            if rows
                .iter()
                .any(|r| r.entry.dedupe_key == entry.dedupe_key && r.target == *target)
            {
                continue;
            }
            *last_id += 1;
            rows.push(Row {
                id: *last_id,
                target: target.clone(),
                entry: entry.clone(),
                attempts: 0,
                next_attempt_ms: entry.created_at_ms,
                finished: false,
            });
            added += 1;
        }
        ready(added)
    }

    fn claim_due(&self, now_ms: i64, lease_ms: i64, limit: u32) -> StoreFuture<'_, Vec<Delivery>> {
        let mut inner = self.outbox().lock();
        let mut due: Vec<&mut Row> = inner
            .1
            .iter_mut()
            .filter(|r| !r.finished && r.next_attempt_ms <= now_ms)
            .collect();
        due.sort_by_key(|r| (r.next_attempt_ms, r.id));
        let claimed = due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|row| {
                row.attempts = row.attempts.saturating_add(1);
                row.next_attempt_ms = now_ms.saturating_add(lease_ms);
                Delivery::new(row.id, row.target.clone(), row.entry.clone(), row.attempts)
            })
            .collect();
        ready(claimed)
    }

    fn finish_delivery(&self, id: i64, outcome: DeliveryOutcome) -> StoreFuture<'_, ()> {
        let mut inner = self.outbox().lock();
        if let Some(row) = inner.1.iter_mut().find(|r| r.id == id && !r.finished) {
            match outcome {
                DeliveryOutcome::Retry {
                    next_attempt_ms, ..
                } => row.next_attempt_ms = next_attempt_ms,
                _ => row.finished = true,
            }
        }
        ready(())
    }

    fn prune_deliveries(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        let mut inner = self.outbox().lock();
        let before = inner.1.len();
        inner
            .1
            .retain(|r| !(r.finished && r.entry.created_at_ms < before_ms));
        ready((before - inner.1.len()) as u64)
    }

    fn pending_deliveries(&self) -> StoreFuture<'_, u64> {
        let inner = self.outbox().lock();
        ready(inner.1.iter().filter(|r| !r.finished).count() as u64)
    }
}
