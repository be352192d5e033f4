//! The notification outbox's storage contract ([`NotificationStore`]), one suite for every
//! backend: `MemoryStore`, SQLite and PostgreSQL (tollgate-store's `tests/auth_log.rs` runs all
//! three) with [`outbox_contract!`](crate::outbox_contract!). It reuses the store contract's
//! [`Database`], for stores that also implement [`NotificationStore`].

use std::collections::HashSet;

use tollgate_issue::{DeliveryOutcome, NotificationStore, OutboxEntry, Revision};

use crate::store_contract::Database;

/// Declares the suite as `#[tokio::test]`s in the calling module, each calling
/// `$run(name, test).await` like [`store_contract!`](crate::store_contract!).
#[macro_export]
macro_rules! outbox_contract {
    ($run:path $(,)?) => {
        $crate::__outbox_case!($run, outbox_enqueues_each_occurrence_once_per_target);
        $crate::__outbox_case!($run, outbox_claims_lease_and_count_attempts);
        $crate::__outbox_case!($run, outbox_outcomes_are_final_or_rescheduled);
        $crate::__outbox_case!($run, outbox_prunes_only_finished_old_deliveries);
        $crate::__outbox_case!($run, outbox_claimers_never_share_a_delivery);
    };
}

/// One test of [`outbox_contract!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __outbox_case {
    ($run:path, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $run(stringify!($name), $crate::outbox_contract::$name).await;
        }
    };
}

const T0: i64 = 1_700_000_000_000;
const LEASE: i64 = 60_000;

fn entry(key: &str, at_ms: i64) -> OutboxEntry {
    OutboxEntry::new(
        key,
        format!("id-{key}"),
        "token.expiring",
        format!("{{\"key\":\"{key}\"}}"),
        at_ms,
    )
}

fn targets(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| format!("http://127.0.0.1:9/{n}"))
        .collect()
}

/// The same occurrence enqueued again (another instance, a restart) adds nothing; a new target
/// gets its own delivery; the revision does not move.
pub async fn outbox_enqueues_each_occurrence_once_per_target<D: Database>(db: D)
where
    D::Store: NotificationStore,
{
    let store = db.open().await;
    let before = store.revision().await.unwrap();
    let two = targets(&["a", "b"]);
    assert_eq!(store.enqueue(&entry("k1", T0), &two).await.unwrap(), 2);
    assert_eq!(store.enqueue(&entry("k1", T0 + 5), &two).await.unwrap(), 0);
    let other = db.open().await;
    assert_eq!(other.enqueue(&entry("k1", T0 + 9), &two).await.unwrap(), 0);
    let three = targets(&["a", "b", "c"]);
    assert_eq!(store.enqueue(&entry("k1", T0), &three).await.unwrap(), 1);
    assert_eq!(
        store.enqueue(&entry("k2", T0), &three[..1]).await.unwrap(),
        1
    );
    assert_eq!(store.enqueue(&entry("k3", T0), &[]).await.unwrap(), 0);
    assert_eq!(store.pending_deliveries().await.unwrap(), 4);
    assert_eq!(
        store.revision().await.unwrap(),
        before,
        "the outbox is not a change to reload"
    );
    let claimed = store.claim_due(T0, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let first = claimed.iter().find(|d| d.event_id == "id-k1").unwrap();
    assert_eq!(
        first.body, "{\"key\":\"k1\"}",
        "the first enqueue's body is kept"
    );
    assert_eq!(first.created_at_ms, T0);
    assert_eq!(first.kind, "token.expiring");
}

/// A claim leases: nobody gets the delivery again until the lease ends, and each claim counts
/// an attempt. Not yet due is not claimed; the limit is honoured.
pub async fn outbox_claims_lease_and_count_attempts<D: Database>(db: D)
where
    D::Store: NotificationStore,
{
    let store = db.open().await;
    store
        .enqueue(&entry("later", T0 + 1_000), &targets(&["a"]))
        .await
        .unwrap();
    store
        .enqueue(&entry("now", T0), &targets(&["a", "b"]))
        .await
        .unwrap();
    assert!(store.claim_due(T0 - 1, LEASE, 10).await.unwrap().is_empty());
    let one = store.claim_due(T0, LEASE, 1).await.unwrap();
    assert_eq!(one.len(), 1, "limit");
    let rest = store.claim_due(T0, LEASE, 10).await.unwrap();
    assert_eq!(rest.len(), 1, "the leased one is not claimed again");
    assert_ne!(one[0].id, rest[0].id);
    assert_eq!((one[0].attempts, rest[0].attempts), (1, 1));
    let later = store.claim_due(T0 + 1_000, LEASE, 10).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].event_id, "id-later");
    assert!(
        store
            .claim_due(T0 + LEASE - 1, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_due(T0 + LEASE, LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 2, "a lease that ran out is claimed again");
    assert!(again.iter().all(|d| d.attempts == 2));
    assert_eq!(store.pending_deliveries().await.unwrap(), 3);
}

/// Delivered and given-up deliveries are never claimed again (and a late report does not
/// revive them); a retry is due at its time.
pub async fn outbox_outcomes_are_final_or_rescheduled<D: Database>(db: D)
where
    D::Store: NotificationStore,
{
    let store = db.open().await;
    store
        .enqueue(&entry("k", T0), &targets(&["ok", "retry", "give-up"]))
        .await
        .unwrap();
    let claimed = store.claim_due(T0, LEASE, 10).await.unwrap();
    let by = |name: &str| {
        claimed
            .iter()
            .find(|d| d.target.ends_with(name))
            .unwrap()
            .id
    };
    store
        .finish_delivery(by("ok"), DeliveryOutcome::Delivered { at_ms: T0 + 1 })
        .await
        .unwrap();
    let retry_at = T0 + 5_000;
    store
        .finish_delivery(
            by("retry"),
            DeliveryOutcome::Retry {
                next_attempt_ms: retry_at,
                error: "answered 503".into(),
            },
        )
        .await
        .unwrap();
    store
        .finish_delivery(
            by("give-up"),
            DeliveryOutcome::GaveUp {
                at_ms: T0 + 2,
                error: "answered 404".into(),
            },
        )
        .await
        .unwrap();
    // A late report on a finished delivery changes nothing.
    store
        .finish_delivery(
            by("ok"),
            DeliveryOutcome::Retry {
                next_attempt_ms: T0,
                error: "late".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert!(
        store
            .claim_due(retry_at - 1, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.claim_due(retry_at, LEASE, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, by("retry"));
    assert_eq!(due[0].attempts, 2);
    assert!(
        store
            .claim_due(T0 + 10 * LEASE, LEASE, 10)
            .await
            .unwrap()
            .len()
            <= 1
    );
}

/// Pruning drops finished deliveries created before the cut, never pending ones; a pruned
/// occurrence's dedupe key is gone with it.
pub async fn outbox_prunes_only_finished_old_deliveries<D: Database>(db: D)
where
    D::Store: NotificationStore,
{
    let store = db.open().await;
    let a = targets(&["a"]);
    store.enqueue(&entry("old-done", T0), &a).await.unwrap();
    store.enqueue(&entry("old-pending", T0), &a).await.unwrap();
    store
        .enqueue(&entry("new-done", T0 + 10_000), &a)
        .await
        .unwrap();
    for delivery in store.claim_due(T0 + 10_000, LEASE, 10).await.unwrap() {
        if delivery.event_id != "id-old-pending" {
            store
                .finish_delivery(
                    delivery.id,
                    DeliveryOutcome::Delivered { at_ms: T0 + 10_001 },
                )
                .await
                .unwrap();
        }
    }
    assert_eq!(store.prune_deliveries(T0 + 5_000).await.unwrap(), 1);
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(store.enqueue(&entry("new-done", T0), &a).await.unwrap(), 0);
    assert_eq!(
        store.enqueue(&entry("old-pending", T0), &a).await.unwrap(),
        0
    );
    assert_eq!(
        store.enqueue(&entry("old-done", T0), &a).await.unwrap(),
        1,
        "pruned with its key"
    );
}

/// Two handles claiming at once never get the same delivery, and together get all of them.
pub async fn outbox_claimers_never_share_a_delivery<D: Database>(db: D)
where
    D::Store: NotificationStore,
{
    let store = db.open().await;
    let all = targets(&["a", "b", "c", "d", "e"]);
    for n in 0..20 {
        store
            .enqueue(&entry(&format!("k{n}"), T0), &all)
            .await
            .unwrap();
    }
    let claimers: Vec<_> = [db.open().await, db.open().await]
        .into_iter()
        .map(|handle| {
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let batch = handle.claim_due(T0, LEASE, 7).await.unwrap();
                    if batch.is_empty() {
                        return ids;
                    }
                    ids.extend(batch.into_iter().map(|d| d.id));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(seen.insert(id), "delivery {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 100);
}
