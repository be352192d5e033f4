//! [`AuthLogStore`] for [`MemoryStore`]: the log in a vector, pruned like the SQL tables.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tollgate_core::events::AuthEvent;

use super::store::{AuthLogStore, LogQuery, LoggedEvent, Order};
use crate::memory_store::MemoryStore;
use crate::store::StoreFuture;

/// The events a [`MemoryStore`] holds, oldest first, and the last id given.
#[derive(Debug, Default)]
pub(crate) struct MemoryLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    last_id: i64,
    events: Vec<(i64, AuthEvent)>,
}

impl MemoryLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many events it holds.
    pub(crate) fn len(&self) -> usize {
        self.lock().events.len()
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl AuthLogStore for MemoryStore {
    fn append_events<'a>(&'a self, events: &'a [AuthEvent]) -> StoreFuture<'a, ()> {
        let mut log = self.auth_log().lock();
        for event in events {
            log.last_id += 1;
            let id = log.last_id;
            log.events.push((id, event.clone()));
        }
        ready(())
    }

    fn select_events<'a>(&'a self, query: &'a LogQuery) -> StoreFuture<'a, Vec<LoggedEvent>> {
        let log = self.auth_log().lock();
        let matching = log.events.iter().filter(|(id, e)| query.matches(*id, e));
        let limit = query.limit.map_or(usize::MAX, |l| l as usize);
        let pick = |(id, event): &(i64, AuthEvent)| LoggedEvent::new(*id, event.clone());
        let events = match query.order {
            Order::OldestFirst => matching.take(limit).map(pick).collect(),
            _ => {
                let all: Vec<_> = matching.collect();
                all.into_iter().rev().take(limit).map(pick).collect()
            }
        };
        ready(events)
    }

    fn latest_token_names<'a>(
        &'a self,
        client_ids: &'a [String],
    ) -> StoreFuture<'a, HashMap<String, (Option<String>, String)>> {
        let log = self.auth_log().lock();
        let mut names = HashMap::new();
        for (_, event) in log.events.iter().rev() {
            if let (Some(client_id), Some(name)) = (&event.client_id, &event.token_name)
                && client_ids.contains(client_id)
                && !names.contains_key(client_id)
            {
                names.insert(client_id.clone(), (event.token_id.clone(), name.clone()));
            }
        }
        ready(names)
    }

    fn prune_events(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        let mut log = self.auth_log().lock();
        let before = log.events.len();
        log.events.retain(|(_, e)| e.at_ms >= before_ms);
        ready((before - log.events.len()) as u64)
    }
}
