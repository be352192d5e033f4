//! [`NotificationStore`] for [`Store`]: table `notifications` (migration 0004), on both
//! backends. Outbox writes never bump the store's revision.

use tollgate_issue::{Delivery, DeliveryOutcome, NotificationStore, OutboxEntry, StoreFuture};

use crate::error::Failure;
use crate::store::{Backend, Begin as _, Pool, Store, finish, with_pool};

/// Leases the due rows. PostgreSQL skips rows another claimer holds (`SKIP LOCKED`), so
/// deliverers never wait on each other; SQLite runs one writer at a time, and the one statement
/// is atomic there.
fn claim_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = $2 \
             WHERE id IN (SELECT id FROM notifications \
                 WHERE delivered_at_ms IS NULL AND gave_up_at_ms IS NULL AND next_attempt_ms <= $1 \
                 ORDER BY next_attempt_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, target, event_id, kind, body, created_at_ms, attempts"
        }
        _ => {
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = $2 \
             WHERE id IN (SELECT id FROM notifications \
                 WHERE delivered_at_ms IS NULL AND gave_up_at_ms IS NULL AND next_attempt_ms <= $1 \
                 ORDER BY next_attempt_ms, id LIMIT $3) \
             RETURNING id, target, event_id, kind, body, created_at_ms, attempts"
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    target: String,
    event_id: String,
    kind: String,
    body: String,
    created_at_ms: i64,
    attempts: i64,
}

impl DeliveryRow {
    fn into_delivery(self) -> Delivery {
        let entry = OutboxEntry::new("", self.event_id, self.kind, self.body, self.created_at_ms);
        let attempts = u32::try_from(self.attempts.max(0)).unwrap_or(u32::MAX);
        Delivery::new(self.id, self.target, entry, attempts)
    }
}

impl NotificationStore for Store {
    fn enqueue<'a>(
        &'a self,
        entry: &'a OutboxEntry,
        targets: &'a [String],
    ) -> StoreFuture<'a, u32> {
        Box::pin(async move {
            if targets.is_empty() {
                return Ok(0);
            }
            finish(with_pool!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let mut added = 0u64;
                for target in targets {
                    added += sqlx::query(
                        "INSERT INTO notifications (dedupe_key, target, event_id, kind, body, \
                         created_at_ms, next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                         ON CONFLICT (dedupe_key, target) DO NOTHING",
                    )
                    .bind(&entry.dedupe_key)
                    .bind(target)
                    .bind(&entry.event_id)
                    .bind(&entry.kind)
                    .bind(&entry.body)
                    .bind(entry.created_at_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok::<_, Failure>(u32::try_from(added).unwrap_or(u32::MAX))
            }
            .await))
        })
    }

    fn claim_due(&self, now_ms: i64, lease_ms: i64, limit: u32) -> StoreFuture<'_, Vec<Delivery>> {
        Box::pin(async move {
            let sql = claim_sql(self.backend());
            let mut rows: Vec<DeliveryRow> = finish(with_pool!(self, |pool| {
                sqlx::query_as(sql)
                    .bind(now_ms)
                    .bind(now_ms.saturating_add(lease_ms))
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                    .map_err(Failure::from)
            }))?;
            // RETURNING gives no order.
            rows.sort_by_key(|row| (row.created_at_ms, row.id));
            Ok(rows.into_iter().map(DeliveryRow::into_delivery).collect())
        })
    }

    fn finish_delivery(&self, id: i64, outcome: DeliveryOutcome) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let (sql, at, error) = match outcome {
                DeliveryOutcome::Delivered { at_ms } => (
                    "UPDATE notifications SET delivered_at_ms = $2, last_error = $3 \
                     WHERE id = $1 AND delivered_at_ms IS NULL AND gave_up_at_ms IS NULL",
                    at_ms,
                    None,
                ),
                DeliveryOutcome::Retry {
                    next_attempt_ms,
                    error,
                } => (
                    "UPDATE notifications SET next_attempt_ms = $2, last_error = $3 \
                     WHERE id = $1 AND delivered_at_ms IS NULL AND gave_up_at_ms IS NULL",
                    next_attempt_ms,
                    Some(error),
                ),
                DeliveryOutcome::GaveUp { at_ms, error } => (
                    "UPDATE notifications SET gave_up_at_ms = $2, last_error = $3 \
                     WHERE id = $1 AND delivered_at_ms IS NULL AND gave_up_at_ms IS NULL",
                    at_ms,
                    Some(error),
                ),
                _ => return Ok(()),
            };
            finish(with_pool!(self, |pool| {
                sqlx::query(sql)
                    .bind(id)
                    .bind(at)
                    .bind(error.as_deref())
                    .execute(pool)
                    .await
                    .map(drop)
                    .map_err(Failure::from)
            }))
        })
    }

    fn prune_deliveries(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            finish(with_pool!(self, |pool| {
                sqlx::query(
                    "DELETE FROM notifications WHERE created_at_ms < $1 \
                     AND (delivered_at_ms IS NOT NULL OR gave_up_at_ms IS NOT NULL)",
                )
                .bind(before_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(Failure::from)
            }))
        })
    }

    fn pending_deliveries(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let pending: i64 = finish(with_pool!(self, |pool| {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM notifications \
                     WHERE delivered_at_ms IS NULL AND gave_up_at_ms IS NULL",
                )
                .fetch_one(pool)
                .await
                .map_err(Failure::from)
            }))?;
            Ok(u64::try_from(pending).unwrap_or(0))
        })
    }
}
