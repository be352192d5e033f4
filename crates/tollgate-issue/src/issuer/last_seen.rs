//! [`LastSeen`]: service-token last-use times, recorded lock-free on the request path and
//! written to the store in batches by the issuer's background task.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;

use crate::store::TokenStore;

/// Last-use times gathered in memory and written to the store in batches, so a request never
/// waits on a store write. One atomic cell per client ID: recording a use is a lock-free map
/// read and a `fetch_max`, with no lock shared between requests.
#[derive(Debug, Default)]
pub(crate) struct LastSeen {
    cells: ArcSwap<HashMap<String, Arc<AtomicI64>>>,
}

impl LastSeen {
    /// Keeps one cell per known client ID (reusing existing cells, so no pending time is lost
    /// across reloads; cells of deleted tokens go).
    pub(crate) fn track<'a>(&self, client_ids: impl Iterator<Item = &'a str>) {
        let current = self.cells.load();
        let cells = client_ids
            .map(|id| {
                let cell = current.get(id).cloned().unwrap_or_default();
                (id.to_owned(), cell)
            })
            .collect();
        self.cells.store(Arc::new(cells));
    }

    pub(crate) fn touch(&self, client_id: &str, now: i64) {
        if let Some(cell) = self.cells.load().get(client_id) {
            cell.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Takes the pending times (0 = nothing pending).
    pub(crate) fn drain(&self) -> Vec<(String, i64)> {
        self.cells
            .load()
            .iter()
            .filter_map(|(id, cell)| {
                let at = cell.swap(0, Ordering::Relaxed);
                (at != 0).then(|| (id.clone(), at))
            })
            .collect()
    }

    /// Writes the pending times; on failure they are kept for the next flush.
    pub(crate) async fn flush(&self, store: &dyn TokenStore) {
        let batch = self.drain();
        if batch.is_empty() {
            return;
        }
        if let Err(err) = store.record_last_seen(&batch).await {
            tracing::warn!(error = %err, count = batch.len(), "could not record service-token last use; will retry");
            for (id, at) in batch {
                self.touch(&id, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn last_seen_is_batched() {
        let store = Arc::new(crate::MemoryStore::new());
        let tokens = crate::ServiceTokens::new(store.clone(), Arc::new(tollgate_core::SystemClock));
        let (token, _) = tokens
            .create("bot", crate::TokenDuration::default())
            .await
            .unwrap();
        let seen = LastSeen::default();
        seen.touch(&token.client_id, 5); // not tracked yet: ignored
        seen.track([token.client_id.as_str()].into_iter());
        assert!(seen.drain().is_empty());
        seen.touch(&token.client_id, 10);
        seen.touch(&token.client_id, 30);
        seen.touch(&token.client_id, 20);
        seen.flush(store.as_ref()).await;
        assert_eq!(
            tokens.get(&token.client_id).await.unwrap().last_seen_at,
            Some(30)
        );
        assert!(seen.drain().is_empty());
        seen.touch("unknown.access", 40);
        assert!(seen.drain().is_empty());
    }
}
