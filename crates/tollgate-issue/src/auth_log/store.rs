//! The authentication log's storage contract: [`AuthLogStore`], the [`LogQuery`] filter and the
//! [`LoggedEvent`]s a query returns.

use std::collections::{BTreeSet, HashMap};

use tollgate_core::events::{AuthEvent, EventKind};

use crate::store::StoreFuture;

/// The longest `detail` a log keeps, in bytes (longer ones are cut at a character boundary).
pub const MAX_DETAIL_LEN: usize = 512;

/// The longest of every other text field a log keeps (names, ids, locations, actions), in bytes.
pub const MAX_FIELD_LEN: usize = 256;

/// In which order a [`LogQuery`] returns events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Order {
    /// The newest first (by id, which is the order they were written in); with a limit, the
    /// newest `limit` events.
    #[default]
    NewestFirst,
    /// The oldest first; with a limit, the oldest `limit` events (what `--follow` pages with,
    /// together with [`LogQuery::after_id`]).
    OldestFirst,
}

/// Which events [`AuthLogStore::query_events`] returns. Every filter is optional; the default
/// returns everything, newest first.
///
/// ```
/// use tollgate_issue::{LogQuery, Order};
///
/// let query = LogQuery::new()
///     .since_ms(1_700_000_000_000)
///     .app("api")
///     .failed_only()
///     .limit(100)
///     .order(Order::OldestFirst);
/// assert_eq!(query.app.as_deref(), Some("api"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogQuery {
    /// Only events at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only events before this time (ms since the epoch, exclusive).
    pub until_ms: Option<i64>,
    /// Only events of this application.
    pub app: Option<String>,
    /// Only events of this client ID.
    pub client_id: Option<String>,
    /// Only refused events (and a log's reports of dropped events).
    pub failed_only: bool,
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// At most this many events.
    pub limit: Option<u32>,
    /// Newest or oldest first.
    pub order: Order,
    /// Only events with an id greater than this one (a cursor: the last id a reader saw).
    pub after_id: Option<i64>,
}

impl LogQuery {
    /// Everything, newest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events at or after `ms` (since the epoch).
    #[must_use]
    pub fn since_ms(mut self, ms: i64) -> Self {
        self.since_ms = Some(ms);
        self
    }

    /// Only events before `ms` (since the epoch).
    #[must_use]
    pub fn until_ms(mut self, ms: i64) -> Self {
        self.until_ms = Some(ms);
        self
    }

    /// Only events of application `name`.
    #[must_use]
    pub fn app(mut self, name: impl Into<String>) -> Self {
        self.app = Some(name.into());
        self
    }

    /// Only events of `client_id`.
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Only refused events.
    #[must_use]
    pub fn failed_only(mut self) -> Self {
        self.failed_only = true;
        self
    }

    /// Only events of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: EventKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// At most `limit` events.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Newest or oldest first.
    #[must_use]
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Only events with an id greater than `id`.
    #[must_use]
    pub fn after_id(mut self, id: i64) -> Self {
        self.after_id = Some(id);
        self
    }

    /// Whether `event`, stored with `id`, passes every filter but the limit and the order.
    pub fn matches(&self, id: i64, event: &AuthEvent) -> bool {
        self.since_ms.is_none_or(|since| event.at_ms >= since)
            && self.until_ms.is_none_or(|until| event.at_ms < until)
            && self.after_id.is_none_or(|after| id > after)
            && self
                .app
                .as_deref()
                .is_none_or(|app| event.app.as_deref() == Some(app))
            && self
                .client_id
                .as_deref()
                .is_none_or(|client_id| event.client_id.as_deref() == Some(client_id))
            && (!self.failed_only || !event.allowed)
            && self.kind.is_none_or(|kind| event.kind == kind)
    }
}

/// One event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedEvent {
    /// Its id in the log: increasing in the order events were written.
    pub id: i64,
    /// The event.
    pub event: AuthEvent,
    /// The token was not known when the event happened (deleted, or its cookie outlived it),
    /// and [`AuthEvent::token_name`] and [`AuthEvent::token_id`] were filled in at query time
    /// from the most recent event of the same client ID that named it (a deleting admin
    /// event names the token it deletes).
    pub token_deleted: bool,
}

impl LoggedEvent {
    /// `event`, stored as `id`, as written.
    pub fn new(id: i64, event: AuthEvent) -> Self {
        Self {
            id,
            event,
            token_deleted: false,
        }
    }
}

/// Where the authentication log is kept. [`MemoryStore`](crate::MemoryStore) implements it, and
/// `tollgate-store` in SQLite and PostgreSQL (table `auth_events`).
///
/// Rules every backend keeps:
/// - [`append_events`](Self::append_events) writes a batch in one transaction, in order, giving
///   each event an id greater than every earlier one;
/// - log writes never bump the store's [`revision`](crate::Revision) (instances reload on a
///   revision change; the log changes all the time);
/// - stored fields are bounded: [`bound_event`] is applied before writing.
pub trait AuthLogStore: Send + Sync + 'static {
    /// Appends `events` (already [bounded](bound_event)) in one transaction.
    fn append_events<'a>(&'a self, events: &'a [AuthEvent]) -> StoreFuture<'a, ()>;

    /// The events `query` selects, as stored (no name resolution; readers call
    /// [`query_events`](Self::query_events)).
    fn select_events<'a>(&'a self, query: &'a LogQuery) -> StoreFuture<'a, Vec<LoggedEvent>>;

    /// For each of `client_ids`, the token id and name of the most recent event of that
    /// client ID that names the token (client IDs no event names are left out).
    fn latest_token_names<'a>(
        &'a self,
        client_ids: &'a [String],
    ) -> StoreFuture<'a, HashMap<String, (Option<String>, String)>>;

    /// Deletes every event older than `before_ms` (ms since the epoch); returns how many.
    fn prune_events(&self, before_ms: i64) -> StoreFuture<'_, u64>;

    /// The events `query` selects, events of an unknown (deleted) token given the name it had:
    /// see [`LoggedEvent::token_deleted`].
    fn query_events<'a>(&'a self, query: &'a LogQuery) -> StoreFuture<'a, Vec<LoggedEvent>> {
        Box::pin(async move {
            let mut events = self.select_events(query).await?;
            let unnamed: BTreeSet<&str> = events
                .iter()
                .filter(|e| e.event.token_name.is_none())
                .filter_map(|e| e.event.client_id.as_deref())
                .collect();
            if unnamed.is_empty() {
                return Ok(events);
            }
            let unnamed: Vec<String> = unnamed.into_iter().map(str::to_owned).collect();
            let names = self.latest_token_names(&unnamed).await?;
            for logged in &mut events {
                let event = &mut logged.event;
                if event.token_name.is_some() {
                    continue;
                }
                let Some((id, name)) = event.client_id.as_ref().and_then(|c| names.get(c)) else {
                    continue;
                };
                event.token_name = Some(name.clone());
                if event.token_id.is_none() {
                    event.token_id.clone_from(id);
                }
                logged.token_deleted = true;
            }
            Ok(events)
        })
    }
}

/// `event` with every text field cut to what a log keeps ([`MAX_DETAIL_LEN`] for `detail`,
/// [`MAX_FIELD_LEN`] for the rest) and a count of at least 1.
///
/// ```
/// use tollgate_core::events::{AuthEvent, EventKind};
/// use tollgate_issue::{MAX_DETAIL_LEN, bound_event};
///
/// let event = AuthEvent::new(EventKind::Exchange, 0).with_detail("é".repeat(1000));
/// let bounded = bound_event(event);
/// assert!(bounded.detail.unwrap().len() <= MAX_DETAIL_LEN);
/// ```
pub fn bound_event(mut event: AuthEvent) -> AuthEvent {
    cut(&mut event.detail, MAX_DETAIL_LEN);
    for field in [
        &mut event.app,
        &mut event.client_id,
        &mut event.token_id,
        &mut event.token_name,
        &mut event.identity,
        &mut event.location,
        &mut event.request_id,
        &mut event.action,
        &mut event.actor,
    ] {
        cut(field, MAX_FIELD_LEN);
    }
    event.count = event.count.max(1);
    event
}

fn cut(field: &mut Option<String>, max: usize) {
    if let Some(text) = field
        && text.len() > max
    {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_at_character_boundaries() {
        let mut event = AuthEvent::new(EventKind::Admin, 0)
            .with_app("a".repeat(MAX_FIELD_LEN + 10))
            .with_detail(format!("x{}", "é".repeat(MAX_DETAIL_LEN)));
        event.count = 0;
        let event = bound_event(event);
        assert_eq!(event.app.map(|a| a.len()), Some(MAX_FIELD_LEN));
        let detail = event.detail.unwrap_or_default();
        assert_eq!(
            detail.len(),
            MAX_DETAIL_LEN - 1,
            "the half of an é is dropped"
        );
        assert_eq!(event.count, 1);
    }

    #[test]
    fn queries_match_every_filter() {
        let event = AuthEvent::new(EventKind::Exchange, 1_000).with_app("api");
        assert!(LogQuery::new().matches(1, &event));
        assert!(
            LogQuery::new()
                .since_ms(1_000)
                .until_ms(1_001)
                .matches(1, &event)
        );
        assert!(!LogQuery::new().until_ms(1_000).matches(1, &event));
        assert!(!LogQuery::new().app("other").matches(1, &event));
        assert!(!LogQuery::new().failed_only().matches(1, &event));
        assert!(!LogQuery::new().kind(EventKind::Token).matches(1, &event));
        assert!(!LogQuery::new().after_id(1).matches(1, &event));
        assert!(!LogQuery::new().client_id("x").matches(1, &event));
    }
}
